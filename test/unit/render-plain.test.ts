import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPlainRenderer, formatDuration, planToJson } from '../../source/render/plain.js';
import type { EngineEvent } from '../../source/engine/events.js';

function render(events: EngineEvent[], opts: { color: boolean; verbose?: boolean } = { color: false }): string[] {
  let text = '';
  const sink = createPlainRenderer({ write: (s: string) => (text += s) }, opts);
  events.forEach(sink);
  assert.ok(text.endsWith('\n'));
  return text.slice(0, -1).split('\n');
}

const T = '/home/u/.local/state/ha-setup/clusters/c/runs/R1.log';

const planEvents: EngineEvent[] = [
  { type: 'run-started', runId: 'R1', runbooks: ['facts'], steps: [{ id: 'os-facts', title: 'Read what each server runs', hosts: ['db1', 'db2'] }, { id: 'marker', title: 'Mark servers', hosts: ['db1'] }], transcriptPath: T, dryRun: true },
  { type: 'step-started', stepId: 'os-facts', host: 'db1' },
  { type: 'step-started', stepId: 'os-facts', host: 'db2' },
  { type: 'step-planned', stepId: 'os-facts', host: 'db1', actions: [], reason: 'Debian 12', diffs: [] },
  { type: 'step-skipped', stepId: 'os-facts', host: 'db1', reason: 'Debian 12' },
  { type: 'step-planned', stepId: 'os-facts', host: 'db2', actions: [], reason: 'Rocky 9', diffs: [] },
  { type: 'step-skipped', stepId: 'os-facts', host: 'db2', reason: 'Rocky 9' },
  { type: 'step-started', stepId: 'marker', host: 'db1' },
  {
    type: 'step-planned',
    stepId: 'marker',
    host: 'db1',
    actions: [
      { kind: 'run', title: 'Create /etc/x', script: 'install -d /etc/x\ntrue', sudo: true },
      { kind: 'write', path: '/etc/x/m.json', content: '{}\n', mode: 0o644, owner: 'root', group: 'root', previous: null },
    ],
    diffs: [{ path: '/etc/x/m.json', diff: '--- a/etc/x/m.json\n+++ b/etc/x/m.json\n@@ -0,0 +1,1 @@\n+{}\n' }],
  },
  { type: 'run-finished', ok: true, changed: 1, unchanged: 2, failed: 0, durationMs: 1234, transcriptPath: T },
];

test('plan mode: skip reasons, per-host commands with scripts and diffs, summary', () => {
  assert.deepEqual(render(planEvents), [
    'ha-setup plan (dry run: nothing is changed on the servers): run R1, 2 steps (facts)',
    `transcript: ${T}`,
    '▸ os-facts: Read what each server runs (2 hosts)',
    '[db1] – os-facts: Debian 12',
    '[db2] – os-facts: Rocky 9',
    '▸ marker: Mark servers (1 host)',
    '[db1] → marker: 2 changes',
    '[db1]     $ Create /etc/x (as root)',
    '[db1]         install -d /etc/x',
    '[db1]         true',
    '[db1]     write /etc/x/m.json (0644 root:root)',
    '[db1]         --- a/etc/x/m.json',
    '[db1]         +++ b/etc/x/m.json',
    '[db1]         @@ -0,0 +1,1 @@',
    '[db1]         +{}',
    'Plan: 1 host step to change, 2 already done, in 1.2s. Nothing was changed.',
    `transcript: ${T}`,
  ]);
});

const applyEvents: EngineEvent[] = [
  { type: 'run-started', runId: 'R2', runbooks: ['pg'], steps: [{ id: 'install', title: 'Install PostgreSQL', hosts: ['db1', 'db2'] }], transcriptPath: T, dryRun: false },
  { type: 'step-started', stepId: 'install', host: 'db1' },
  { type: 'step-planned', stepId: 'install', host: 'db1', actions: [], reason: 'postgresql-15 installed', diffs: [] },
  { type: 'step-skipped', stepId: 'install', host: 'db1', reason: 'postgresql-15 installed' },
  { type: 'step-started', stepId: 'install', host: 'db2' },
  { type: 'step-planned', stepId: 'install', host: 'db2', actions: [{ kind: 'run', title: 'apt-get install', script: 'apt-get install -y postgresql-15' }], diffs: [] },
  { type: 'command-started', stepId: 'install', host: 'db2', title: 'apt-get install', script: 'apt-get install -y postgresql-15' },
  { type: 'output', stepId: 'install', host: 'db2', stream: 'stdout', line: 'Reading package lists...' },
  { type: 'output', stepId: 'install', host: 'db2', stream: 'stderr', line: 'E: Unable to locate package' },
  { type: 'step-finished', stepId: 'install', host: 'db1', changed: false, durationMs: 300, note: 'verified (checkpoint)' },
  { type: 'command-finished', stepId: 'install', host: 'db2', title: 'apt-get install', code: 100, durationMs: 2500 },
  {
    type: 'step-failed',
    stepId: 'install',
    host: 'db2',
    error: '"apt-get install" failed with exit code 100: E: Unable to locate package',
    command: 'apt-get install',
    lastLines: ['Reading package lists...', 'stderr: E: Unable to locate package'],
    transcriptPath: T,
    resumeCommand: 'ha-setup apply --config c.yaml',
  },
  { type: 'run-finished', ok: false, changed: 0, unchanged: 1, failed: 1, durationMs: 65_000, transcriptPath: T },
];

test('apply mode: host-prefixed output, final line per host, failure details, summary', () => {
  assert.deepEqual(render(applyEvents), [
    'ha-setup apply: run R2, 1 step (pg)',
    `transcript: ${T}`,
    '▸ install: Install PostgreSQL (2 hosts)',
    '[db2] $ apt-get install',
    '[db2]   Reading package lists...',
    '[db2]   E: Unable to locate package',
    '[db1] – install: postgresql-15 installed (verified (checkpoint))',
    '[db2] exit 100 after 2.5s: apt-get install',
    '[db2] ✗ install: "apt-get install" failed with exit code 100: E: Unable to locate package',
    '[db2]     command: apt-get install',
    '[db2]     last output:',
    '[db2]       Reading package lists...',
    '[db2]       stderr: E: Unable to locate package',
    `[db2]     transcript: ${T}`,
    '[db2]     to resume: ha-setup apply --config c.yaml',
    '✗ FAILED after 1m05s: 1 failed, 0 host steps changed, 1 unchanged.',
    `transcript: ${T}`,
  ]);
});

test('verbose adds scripts and exit codes; color only wraps the same text in ANSI codes', () => {
  const ok: EngineEvent[] = [
    { type: 'run-started', runId: 'R3', runbooks: ['x'], steps: [{ id: 's', title: 'S', hosts: ['h'] }], transcriptPath: T, dryRun: false },
    { type: 'step-started', stepId: 's', host: 'h' },
    { type: 'command-started', stepId: 's', host: 'h', title: 'Do', script: 'echo a\necho b' },
    { type: 'command-finished', stepId: 's', host: 'h', title: 'Do', code: 0, durationMs: 40 },
    { type: 'file-written', stepId: 's', host: 'h', path: '/etc/f', backupPath: '/etc/f.bak', changed: true },
    { type: 'file-written', stepId: 's', host: 'h', path: '/etc/g', changed: false },
    { type: 'step-finished', stepId: 's', host: 'h', changed: true, durationMs: 2000 },
    { type: 'run-finished', ok: true, changed: 1, unchanged: 0, failed: 0, durationMs: 2100, transcriptPath: T },
  ];
  const plain = render(ok, { color: false, verbose: true });
  assert.deepEqual(plain.slice(2), [
    '▸ s: S (1 host)',
    '[h] $ Do',
    '[h]     | echo a',
    '[h]     | echo b',
    '[h] exit 0 after 0.0s',
    '[h] wrote /etc/f (previous kept as /etc/f.bak)',
    '[h] /etc/g already up to date',
    '[h] ✓ s: changed in 2.0s',
    '✓ Done in 2.1s: 1 host step changed, 0 unchanged.',
    `transcript: ${T}`,
  ]);
  assert.equal(render(ok, { color: false }).length, plain.length - 3, 'without verbose: no script lines, no exit 0 line');
  const colored = render(ok, { color: true, verbose: true });
  assert.ok(colored.some((l) => l.includes('\x1b[32m✓\x1b[0m')));
  assert.deepEqual(colored.map((l) => l.replace(/\x1b\[\d+m/g, '')), plain);
  assert.ok(render(applyEvents, { color: true }).some((l) => l.startsWith('\x1b[31m')));
});

test('formatDuration', () => {
  assert.deepEqual([0, 950, 59_949, 59_960, 125_400].map(formatDuration), ['0.0s', '0.9s', '59.9s', '1m00s', '2m05s']);
});

test('planToJson: per host, the steps with status, reasons, actions and diffs', () => {
  const failed: EngineEvent[] = [
    ...planEvents.slice(0, -1),
    { type: 'step-started', stepId: 'marker', host: 'db2' },
    { type: 'step-failed', stepId: 'marker', host: 'db2', error: 'db2 belongs to cluster prod', lastLines: [], transcriptPath: T, resumeCommand: 'x' },
    { type: 'run-finished', ok: false, changed: 1, unchanged: 2, failed: 1, durationMs: 10, transcriptPath: T },
  ];
  const json = planToJson(failed);
  assert.equal(json.runId, 'R1');
  assert.equal(json.ok, false);
  assert.equal(json.transcriptPath, T);
  assert.deepEqual(Object.keys(json.hosts), ['db1', 'db2']);
  assert.deepEqual(json.hosts.db1!.steps.map((s) => [s.id, s.status, s.reason ?? null, s.actions.length, s.diffs.length]), [
    ['os-facts', 'skip', 'Debian 12', 0, 0],
    ['marker', 'change', null, 2, 1],
  ]);
  assert.deepEqual(json.hosts.db2!.steps, [
    { id: 'os-facts', title: 'Read what each server runs', status: 'skip', reason: 'Rocky 9', actions: [], diffs: [] },
    { id: 'marker', title: 'Mark servers', status: 'failed', actions: [], diffs: [], error: 'db2 belongs to cluster prod' },
  ]);
  // JSON-clean (no functions, no cycles).
  assert.deepEqual(JSON.parse(JSON.stringify(json)), json);
});
