import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { render, cleanup } from 'ink-testing-library';
import { RunView } from '../../source/ui/RunView.js';
import { foldRun, initialRunState, type RunState } from '../../source/ui/run-state.js';
import type { EngineEvent } from '../../source/engine/events.js';
import { out, RESUME, started, T } from './run-fixtures.js';
import { plain } from './helpers.js';

afterEach(() => cleanup());

/** Render the view, then feed events one batch at a time (as the engine would). */
function mount() {
  let state: RunState = initialRunState;
  const r = render(<RunView state={state} spinnerFrame="*" />);
  return {
    feed(...events: EngineEvent[]) {
      state = foldRun(events, state);
      r.rerender(<RunView state={state} spinnerFrame="*" />);
      return plain(r.lastFrame());
    },
    r,
  };
}

const startInstall: EngineEvent[] = [
  started,
  { type: 'step-started', stepId: 'pg.install', host: 'db_primary' },
  { type: 'command-started', stepId: 'pg.install', host: 'db_primary', title: 'install packages', script: 'apt-get install -y postgresql-15' },
];

test('a running step shows a spinner, its command and its output, host-prefixed and without ANSI', () => {
  const v = mount();
  const frame = v.feed(...startInstall, out('db_primary', '\x1b[32mReading package lists...\x1b[0m'), out('db_primary', 'Setting up postgresql-15'));
  assert.equal(
    frame,
    [
      '▶ Applying postgres: 2 steps on 2 hosts (run r1)',
      '* Install PostgreSQL · db_primary  install packages',
      '  db_primary │ Reading package lists...',
      '  db_primary │ Setting up postgresql-15',
      '0 of 3 done',
    ].join('\n'),
  );
});

test('more than 15 lines: only the last 15 and how many are hidden, with the transcript path', () => {
  const v = mount();
  v.feed(...startInstall);
  let frame = '';
  for (let i = 1; i <= 40; i++) frame = v.feed(out('db_primary', `unpacking ${i}`));
  assert.equal(
    frame,
    [
      '▶ Applying postgres: 2 steps on 2 hosts (run r1)',
      '* Install PostgreSQL · db_primary  install packages',
      `  … 25 earlier lines hidden (full output: ${T})`,
      ...Array.from({ length: 15 }, (_, k) => `  db_primary │ unpacking ${26 + k}`),
      '0 of 3 done',
    ].join('\n'),
  );
});

test('finished lines stay above (static) and a successful run ends with the summary', () => {
  const v = mount();
  v.feed(...startInstall, out('db_primary', 'noise'));
  v.feed(
    { type: 'step-started', stepId: 'pg.install', host: 'db_standby' },
    { type: 'step-planned', stepId: 'pg.install', host: 'db_standby', actions: [], reason: 'postgresql-15 already installed', diffs: [] },
    { type: 'step-skipped', stepId: 'pg.install', host: 'db_standby', reason: 'postgresql-15 already installed' },
    { type: 'step-finished', stepId: 'pg.install', host: 'db_standby', changed: false, durationMs: 200 },
  );
  v.feed({ type: 'step-finished', stepId: 'pg.install', host: 'db_primary', changed: true, durationMs: 12_300 });
  v.feed(
    { type: 'step-started', stepId: 'pg.config', host: 'db_primary' },
    { type: 'step-finished', stepId: 'pg.config', host: 'db_primary', changed: false, durationMs: 400, note: 'settings already in place' },
  );
  const frame = v.feed({ type: 'run-finished', ok: true, changed: 1, unchanged: 2, failed: 0, durationMs: 13_100, transcriptPath: T });
  assert.equal(
    frame,
    [
      '▶ Applying postgres: 2 steps on 2 hosts (run r1)',
      '✓ Install PostgreSQL · db_standby unchanged · postgresql-15 already installed',
      '✓ Install PostgreSQL · db_primary changed (12.3s)',
      '✓ Configure PostgreSQL · db_primary unchanged (400ms) · settings already in place',
      '',
      '✓ Done: 1 changed, 2 unchanged, 0 failed in 13.1s',
      `  Transcript: ${T}`,
    ].join('\n'),
  );
});

test('a failure shows the red panel with the error, command, last lines, transcript and resume command', () => {
  const v = mount();
  v.feed(...startInstall, out('db_primary', 'E: Unable to locate package postgresql-15'));
  const frame = v.feed(
    {
      type: 'step-failed',
      stepId: 'pg.install',
      host: 'db_primary',
      error: 'install packages exited with code 100',
      command: 'apt-get install -y postgresql-15',
      lastLines: ['Reading package lists...', 'E: Unable to locate package postgresql-15'],
      transcriptPath: T,
      resumeCommand: RESUME,
    },
    { type: 'run-finished', ok: false, changed: 0, unchanged: 0, failed: 1, durationMs: 2_000, transcriptPath: T },
  );
  assert.equal(
    frame,
    [
      '▶ Applying postgres: 2 steps on 2 hosts (run r1)',
      '✗ Install PostgreSQL · db_primary failed: install packages exited with code 100',
      '╭──────────────────────────────────────────────────────────────╮',
      '│ ✗ Install PostgreSQL failed on db_primary                    │',
      '│ install packages exited with code 100                        │',
      '│ Command: apt-get install -y postgresql-15                    │',
      '│ Last lines:                                                  │',
      '│   Reading package lists...                                   │',
      '│   E: Unable to locate package postgresql-15                  │',
      '│ Full log: /tmp/ha/clusters/lab/runs/r1.log                   │',
      '│ Resume with: ha-setup apply --cluster lab --runbook postgres │',
      '╰──────────────────────────────────────────────────────────────╯',
      '',
      '✗ Failed: 0 changed, 0 unchanged, 1 failed, 2 not run in 2.0s',
      `  Transcript: ${T}`,
    ].join('\n'),
  );
});

test('a dry run lists, per host, the commands and the file diff', () => {
  const v = mount();
  const frame = v.feed(
    { ...started, dryRun: true } as EngineEvent,
    {
      type: 'step-planned',
      stepId: 'pg.config',
      host: 'db_primary',
      actions: [
        { kind: 'write', path: '/etc/ha.conf', content: 'b\n', mode: 0o644, previous: 'a\n' },
        { kind: 'run', title: 'reload postgresql', script: 'systemctl reload postgresql' },
      ],
      diffs: [{ path: '/etc/ha.conf', diff: '--- /etc/ha.conf\n+++ /etc/ha.conf\n@@ -1 +1 @@\n-a\n+b\n' }],
    },
    { type: 'step-planned', stepId: 'pg.install', host: 'db_primary', actions: [], reason: 'postgresql-15 is installed', diffs: [] },
    { type: 'step-skipped', stepId: 'pg.install', host: 'db_primary', reason: 'postgresql-15 is installed' },
  );
  assert.equal(
    frame,
    [
      '▶ Planning (dry run, nothing is changed) postgres: 2 steps on 2 hosts (run r1)',
      '• Configure PostgreSQL · db_primary 2 changes',
      '    write /etc/ha.conf',
      '    run   reload postgresql',
      '      --- /etc/ha.conf',
      '      +++ /etc/ha.conf',
      '      @@ -1 +1 @@',
      '      -a',
      '      +b',
      '• Install PostgreSQL · db_primary nothing to do · postgresql-15 is installed',
      '2 of 3 done',
    ].join('\n'),
  );
});
