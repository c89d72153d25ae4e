import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  cleanLine,
  foldRun,
  formatDuration,
  initialRunState,
  LINE_CHARS,
  LIVE_LINES,
  progress,
  reduceRun,
  runningItems,
  type RunState,
} from '../../source/ui/run-state.js';
import type { EngineEvent } from '../../source/engine/events.js';
import { out, RESUME, started, T } from './run-fixtures.js';

const header = {
  key: 'header#0',
  kind: 'header',
  runId: 'r1',
  runbooks: ['postgres'],
  dryRun: false,
  steps: 2,
  hosts: 2,
  transcriptPath: T,
} as const;

const pending = (stepId: string, title: string, host: string) => ({ stepId, title, host, status: 'pending', changed: false });

test('run-started lays out every step x host as pending, with a header line', () => {
  const s = reduceRun(initialRunState, started);
  assert.deepEqual(s, {
    runId: 'r1',
    dryRun: false,
    transcriptPath: T,
    steps: [
      { id: 'pg.install', title: 'Install PostgreSQL' },
      { id: 'pg.config', title: 'Configure PostgreSQL' },
    ],
    order: ['pg.install@db_primary', 'pg.install@db_standby', 'pg.config@db_primary'],
    items: {
      'pg.install@db_primary': pending('pg.install', 'Install PostgreSQL', 'db_primary'),
      'pg.install@db_standby': pending('pg.install', 'Install PostgreSQL', 'db_standby'),
      'pg.config@db_primary': pending('pg.config', 'Configure PostgreSQL', 'db_primary'),
    },
    output: {},
    static: [header],
    failures: [],
  });
  assert.deepEqual(progress(s), { finished: 0, total: 3 });
});

test('a running host carries its current command; output is ANSI-stripped and host-tagged', () => {
  const s = foldRun([
    started,
    { type: 'step-started', stepId: 'pg.install', host: 'db_primary' },
    { type: 'command-started', stepId: 'pg.install', host: 'db_primary', title: 'install packages', script: 'apt-get install -y postgresql-15' },
    out('db_primary', '\x1b[1;32mSetting up postgresql-15\x1b[0m\r'),
    out('db_primary', 'a\tb'),
  ]);
  assert.deepEqual(s.items['pg.install@db_primary'], {
    stepId: 'pg.install',
    title: 'Install PostgreSQL',
    host: 'db_primary',
    status: 'running',
    changed: false,
    command: 'install packages',
  });
  assert.deepEqual(s.output, {
    'pg.install': {
      lines: [
        { host: 'db_primary', text: 'Setting up postgresql-15' },
        { host: 'db_primary', text: 'a  b' },
      ],
      hidden: 0,
    },
  });
  const after = reduceRun(s, { type: 'command-finished', stepId: 'pg.install', host: 'db_primary', title: 'install packages', code: 0, durationMs: 5 });
  assert.equal(after.items['pg.install@db_primary']!.command, undefined);
  assert.equal(after.items['pg.install@db_primary']!.status, 'running');
});

test(`live output keeps only the last ${LIVE_LINES} lines of a step (all hosts) and counts the rest`, () => {
  const events: EngineEvent[] = [
    started,
    { type: 'step-started', stepId: 'pg.install', host: 'db_primary' },
    { type: 'step-started', stepId: 'pg.install', host: 'db_standby' },
  ];
  for (let i = 1; i <= 1000; i++) events.push(out(i % 2 ? 'db_primary' : 'db_standby', `line ${i}`));
  const s = foldRun(events);
  const buf = s.output['pg.install']!;
  assert.equal(buf.hidden, 985);
  assert.deepEqual(
    buf.lines,
    Array.from({ length: 15 }, (_, k) => {
      const i = 986 + k;
      return { host: i % 2 ? 'db_primary' : 'db_standby', text: `line ${i}` };
    }),
  );
});

test('a very long line is capped', () => {
  const line = cleanLine('x'.repeat(10_000));
  assert.equal(line.length, LINE_CHARS);
  assert.equal(line.at(-1), '…');
});

test('finished items go to the static list in the order they finish; output is dropped when the step is idle', () => {
  const s = foldRun([
    started,
    { type: 'step-started', stepId: 'pg.install', host: 'db_primary' },
    { type: 'step-started', stepId: 'pg.install', host: 'db_standby' },
    out('db_standby', 'hello'),
    { type: 'step-planned', stepId: 'pg.install', host: 'db_standby', actions: [], reason: 'postgresql-15 already installed', diffs: [] },
    { type: 'step-skipped', stepId: 'pg.install', host: 'db_standby', reason: 'postgresql-15 already installed' },
    { type: 'step-finished', stepId: 'pg.install', host: 'db_standby', changed: false, durationMs: 30 },
  ]);
  // db_primary still runs the step: its output stays.
  assert.deepEqual(s.output['pg.install'], { lines: [{ host: 'db_standby', text: 'hello' }], hidden: 0 });
  const s2 = foldRun(
    [
      { type: 'command-started', stepId: 'pg.install', host: 'db_primary', title: 'install', script: 'x' },
      { type: 'step-finished', stepId: 'pg.install', host: 'db_primary', changed: true, durationMs: 1234, note: 'installed 15.8' },
      { type: 'step-started', stepId: 'pg.config', host: 'db_primary' },
      { type: 'step-finished', stepId: 'pg.config', host: 'db_primary', changed: false, durationMs: 40 },
    ],
    s,
  );
  assert.deepEqual(s2.output, {});
  assert.deepEqual(s2.static, [
    header,
    {
      key: 'pg.install@db_standby#1',
      kind: 'item',
      stepId: 'pg.install',
      title: 'Install PostgreSQL',
      host: 'db_standby',
      status: 'skipped',
      changed: false,
      reason: 'postgresql-15 already installed',
      durationMs: 30,
    },
    {
      key: 'pg.install@db_primary#2',
      kind: 'item',
      stepId: 'pg.install',
      title: 'Install PostgreSQL',
      host: 'db_primary',
      status: 'done',
      changed: true,
      reason: 'installed 15.8',
      durationMs: 1234,
    },
    {
      key: 'pg.config@db_primary#3',
      kind: 'item',
      stepId: 'pg.config',
      title: 'Configure PostgreSQL',
      host: 'db_primary',
      status: 'done',
      changed: false,
      durationMs: 40,
    },
  ]);
  assert.deepEqual(progress(s2), { finished: 3, total: 3 });
});

test('a failure records the panel details; run-finished gives the summary and counts what never ran', () => {
  const s: RunState = foldRun([
    started,
    { type: 'step-started', stepId: 'pg.install', host: 'db_primary' },
    { type: 'command-started', stepId: 'pg.install', host: 'db_primary', title: 'install', script: 'x' },
    out('db_primary', 'E: Unable to locate package postgresql-15'),
    {
      type: 'step-failed',
      stepId: 'pg.install',
      host: 'db_primary',
      error: 'install exited with code 100',
      command: 'apt-get install -y postgresql-15',
      lastLines: ['\x1b[31mE: Unable to locate package postgresql-15\x1b[0m'],
      transcriptPath: T,
      resumeCommand: RESUME,
    },
    { type: 'run-finished', ok: false, changed: 0, unchanged: 0, failed: 1, durationMs: 2500, transcriptPath: T },
  ]);
  assert.equal(s.items['pg.install@db_primary']!.status, 'failed');
  assert.equal(s.items['pg.install@db_primary']!.command, undefined);
  assert.deepEqual(s.failures, [
    {
      stepId: 'pg.install',
      title: 'Install PostgreSQL',
      host: 'db_primary',
      error: 'install exited with code 100',
      command: 'apt-get install -y postgresql-15',
      lastLines: ['E: Unable to locate package postgresql-15'],
      transcriptPath: T,
      resumeCommand: RESUME,
    },
  ]);
  assert.deepEqual(s.static.at(-1), {
    key: 'pg.install@db_primary#1',
    kind: 'item',
    stepId: 'pg.install',
    title: 'Install PostgreSQL',
    host: 'db_primary',
    status: 'failed',
    changed: false,
    reason: 'install exited with code 100',
  });
  assert.deepEqual(s.summary, { ok: false, changed: 0, unchanged: 0, failed: 1, notRun: 2, durationMs: 2500, transcriptPath: T });
  assert.deepEqual(s.output, {});
});

test('in a dry run, step-planned is the result: actions and changed diffs go to the static list', () => {
  const s = foldRun([
    { ...started, dryRun: true } as EngineEvent,
    { type: 'step-started', stepId: 'pg.config', host: 'db_primary' },
    {
      type: 'step-planned',
      stepId: 'pg.config',
      host: 'db_primary',
      actions: [
        { kind: 'write', path: '/etc/postgresql/15/main/conf.d/ha.conf', content: 'wal_level = replica\n', mode: 0o644, previous: null },
        { kind: 'run', title: 'restart postgresql', script: 'systemctl restart postgresql' },
      ],
      diffs: [
        { path: '/etc/postgresql/15/main/conf.d/ha.conf', diff: '+wal_level = replica\n' },
        { path: '/etc/other', diff: '' },
      ],
    },
    { type: 'step-planned', stepId: 'pg.install', host: 'db_standby', actions: [], reason: 'postgresql-15 is installed', diffs: [] },
    // The runner follows an empty plan with step-skipped: one line, not two.
    { type: 'step-skipped', stepId: 'pg.install', host: 'db_standby', reason: 'postgresql-15 is installed' },
  ]);
  assert.deepEqual(s.static.slice(1), [
    {
      key: 'pg.config@db_primary#1',
      kind: 'item',
      stepId: 'pg.config',
      title: 'Configure PostgreSQL',
      host: 'db_primary',
      status: 'planned',
      changed: true,
      actions: [
        { kind: 'write', title: '/etc/postgresql/15/main/conf.d/ha.conf' },
        { kind: 'run', title: 'restart postgresql' },
      ],
      diffs: [{ path: '/etc/postgresql/15/main/conf.d/ha.conf', diff: '+wal_level = replica\n' }],
    },
    {
      key: 'pg.install@db_standby#2',
      kind: 'item',
      stepId: 'pg.install',
      title: 'Install PostgreSQL',
      host: 'db_standby',
      status: 'planned',
      changed: false,
      reason: 'postgresql-15 is installed',
      actions: [],
      diffs: [],
    },
  ]);
});

test('in an apply run, step-planned does not finish the step', () => {
  const s = foldRun([
    started,
    { type: 'step-started', stepId: 'pg.config', host: 'db_primary' },
    { type: 'step-planned', stepId: 'pg.config', host: 'db_primary', actions: [{ kind: 'run', title: 'x', script: 'true' }], diffs: [] },
  ]);
  assert.equal(s.items['pg.config@db_primary']!.status, 'running');
  assert.equal(s.static.length, 1);
});

test('in an apply run, step-skipped waits for step-finished (verify) and keeps its reason', () => {
  const skipped = foldRun([
    started,
    { type: 'step-started', stepId: 'pg.config', host: 'db_primary' },
    { type: 'step-planned', stepId: 'pg.config', host: 'db_primary', actions: [], reason: 'settings in place', diffs: [] },
    { type: 'step-skipped', stepId: 'pg.config', host: 'db_primary', reason: 'settings in place' },
  ]);
  assert.deepEqual(skipped.items['pg.config@db_primary'], {
    stepId: 'pg.config',
    title: 'Configure PostgreSQL',
    host: 'db_primary',
    status: 'running',
    changed: false,
    reason: 'settings in place',
    skipReason: 'settings in place',
  });
  assert.equal(skipped.static.length, 1);
  const s = reduceRun(skipped, { type: 'step-finished', stepId: 'pg.config', host: 'db_primary', changed: false, durationMs: 80, note: 'verified (checkpoint)' });
  assert.deepEqual(s.static.at(-1), {
    key: 'pg.config@db_primary#1',
    kind: 'item',
    stepId: 'pg.config',
    title: 'Configure PostgreSQL',
    host: 'db_primary',
    status: 'skipped',
    changed: false,
    reason: 'settings in place; verified (checkpoint)',
    durationMs: 80,
  });
  // A skipped step whose verify fails is a failure.
  const failed = reduceRun(skipped, {
    type: 'step-failed',
    stepId: 'pg.config',
    host: 'db_primary',
    error: 'verify: port 5432 closed',
    lastLines: [],
    transcriptPath: T,
    resumeCommand: RESUME,
  });
  assert.equal(failed.items['pg.config@db_primary']!.status, 'failed');
  assert.equal(failed.items['pg.config@db_primary']!.skipReason, undefined);
});

test('run-finished: nothing stays running (a lone skip is shown; the rest counts as not run)', () => {
  const s = foldRun([
    started,
    { type: 'step-started', stepId: 'pg.install', host: 'db_primary' },
    { type: 'step-started', stepId: 'pg.install', host: 'db_standby' },
    { type: 'step-skipped', stepId: 'pg.install', host: 'db_standby', reason: 'installed' },
    out('db_primary', 'x'),
    { type: 'run-finished', ok: false, changed: 0, unchanged: 0, failed: 0, durationMs: 10, transcriptPath: T },
  ]);
  assert.deepEqual(runningItems(s), []);
  assert.equal(s.items['pg.install@db_primary']!.status, 'pending');
  assert.deepEqual(s.static.at(-1), {
    key: 'pg.install@db_standby#1',
    kind: 'item',
    stepId: 'pg.install',
    title: 'Install PostgreSQL',
    host: 'db_standby',
    status: 'skipped',
    changed: false,
    reason: 'installed',
  });
  assert.equal(s.summary!.notRun, 2);
  assert.deepEqual(s.output, {});
});

test('events for a step run-started did not list still show up', () => {
  const s = foldRun([started, { type: 'step-started', stepId: 'extra', host: 'lb' }]);
  assert.deepEqual(s.items['extra@lb'], { stepId: 'extra', title: 'extra', host: 'lb', status: 'running', changed: false });
  assert.equal(s.order.at(-1), 'extra@lb');
});

test('formatDuration', () => {
  assert.equal(formatDuration(350), '350ms');
  assert.equal(formatDuration(1234), '1.2s');
  assert.equal(formatDuration(123_000), '2m 03s');
});

test('a retried step drops its failure panel; a failed step skipped by the user becomes a "skipped after a failure" line', () => {
  const failed: EngineEvent = {
    type: 'step-failed',
    stepId: 'pg.config',
    host: 'db_primary',
    error: 'reload exited with code 1',
    lastLines: [],
    transcriptPath: T,
    resumeCommand: RESUME,
  };
  const base = foldRun([started, { type: 'step-started', stepId: 'pg.config', host: 'db_primary' }, failed]);
  assert.equal(base.failures.length, 1);
  assert.equal(base.items['pg.config@db_primary']?.status, 'failed');

  const retried = reduceRun(base, { type: 'step-started', stepId: 'pg.config', host: 'db_primary' });
  assert.deepEqual(retried.failures, []);
  assert.equal(retried.items['pg.config@db_primary']?.status, 'running');

  const skipped = reduceRun(base, { type: 'step-skipped', stepId: 'pg.config', host: 'db_primary', reason: 'skipped after a failure' });
  assert.deepEqual(skipped.failures, []);
  assert.equal(skipped.items['pg.config@db_primary']?.status, 'skipped');
  const last = skipped.static.at(-1);
  assert.ok(last?.kind === 'item');
  assert.deepEqual([last.status, last.reason, last.afterFailure], ['skipped', 'skipped after a failure', true]);
  assert.equal(skipped.static.length, base.static.length + 1, 'the failed line stays, the skip is added after it');
});
