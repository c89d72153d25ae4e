import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { stripVTControlCharacters } from 'node:util';
import { renderRun } from '../../source/ui/render-run.js';
import { isInteractive, canPrompt } from '../../source/ui/tty.js';
import { createPlainRenderer } from '../../source/render/plain.js';
import type { EngineEvent } from '../../source/engine/events.js';
import { out, RESUME, started, T } from './run-fixtures.js';

class Sink {
  text = '';
  constructor(readonly isTTY = false) {}
  write(s: string) {
    this.text += s;
    return true;
  }
}

/** What Ink needs of a terminal: write, columns, resize events. */
class FakeTerminal extends EventEmitter {
  isTTY = true;
  columns = 100;
  rows = 40;
  text = '';
  write(s: string) {
    this.text += s;
    return true;
  }
}

const events: EngineEvent[] = [
  started,
  { type: 'step-started', stepId: 'pg.install', host: 'db_primary' },
  { type: 'command-started', stepId: 'pg.install', host: 'db_primary', title: 'install packages', script: 'apt-get install -y postgresql-15' },
  out('db_primary', 'Setting up postgresql-15'),
  { type: 'command-finished', stepId: 'pg.install', host: 'db_primary', title: 'install packages', code: 0, durationMs: 900 },
  { type: 'step-finished', stepId: 'pg.install', host: 'db_primary', changed: true, durationMs: 1000 },
  { type: 'step-started', stepId: 'pg.config', host: 'db_primary' },
  {
    type: 'step-failed',
    stepId: 'pg.config',
    host: 'db_primary',
    error: 'reload exited with code 1',
    command: 'systemctl reload postgresql',
    lastLines: ['Job failed'],
    transcriptPath: T,
    resumeCommand: RESUME,
  },
  { type: 'run-finished', ok: false, changed: 1, unchanged: 0, failed: 1, durationMs: 1500, transcriptPath: T },
];

function plainOutput(color: boolean): string {
  const s = new Sink();
  const sink = createPlainRenderer(s, { color });
  for (const e of events) sink(e);
  return s.text;
}

test('interactive only on a TTY, outside CI, without --json; prompts need both ends to be terminals', () => {
  const tty = { isTTY: true };
  assert.equal(isInteractive({ stdout: tty, env: {} }), true);
  assert.equal(isInteractive({ stdout: { isTTY: false }, env: {} }), false);
  assert.equal(isInteractive({ stdout: tty, env: { CI: 'true' } }), false);
  assert.equal(isInteractive({ stdout: tty, env: { GITHUB_ACTIONS: 'true', CI: 'false' } }), true);
  assert.equal(isInteractive({ stdout: tty, env: { CI_PIPELINE_ID: '7' } }), false);
  assert.equal(isInteractive({ stdout: tty, env: {}, json: true }), false);
  assert.equal(canPrompt({ stdin: { isTTY: false }, stdout: tty, env: {} }), false);
  assert.equal(canPrompt({ stdin: tty, stdout: tty, env: {} }), true);
});

test('not a TTY: the plain renderer writes the run to stdout, line by line', async () => {
  const stdout = new Sink(false);
  const stderr = new Sink(false);
  const r = renderRun({ stdout, stderr, env: {} });
  assert.equal(r.interactive, false);
  for (const e of events) r.sink(e);
  await r.done();
  assert.equal(stdout.text, plainOutput(false));
  assert.match(stdout.text, /to resume: ha-setup apply --cluster lab --runbook postgres/);
  assert.equal(stderr.text, '');
});

test('--json: progress goes to stderr, stdout stays free for the data', async () => {
  const stdout = new Sink(true);
  const stderr = new Sink(true);
  const r = renderRun({ stdout, stderr, env: { NO_COLOR: '1' }, json: true });
  assert.equal(r.interactive, false);
  for (const e of events) r.sink(e);
  await r.done();
  assert.equal(stdout.text, '');
  assert.equal(stderr.text, plainOutput(false));
});

test('NO_COLOR wins over FORCE_COLOR in the plain path (and FORCE_COLOR alone colours it)', async () => {
  const coloured = new Sink(false);
  const r1 = renderRun({ stdout: coloured, stderr: new Sink(), env: { FORCE_COLOR: '1' } });
  for (const e of events) r1.sink(e);
  assert.equal(coloured.text, plainOutput(true));
  assert.match(coloured.text, /\x1b\[/);

  const bare = new Sink(false);
  const r2 = renderRun({ stdout: bare, stderr: new Sink(), env: { FORCE_COLOR: '1', NO_COLOR: '1' } });
  for (const e of events) r2.sink(e);
  assert.doesNotMatch(bare.text, /\x1b\[/);
});

test('a TTY: the Ink run view draws the run; done() waits for the last frame and lets go', async () => {
  const stdout = new FakeTerminal();
  const stderr = new FakeTerminal();
  const r = renderRun({ stdout: stdout as never, stderr: stderr as never, env: {}, interactive: true, spinnerFrame: '*' });
  assert.equal(r.interactive, true);
  for (const e of events) r.sink(e);
  await r.done();
  await r.done(); // twice is harmless
  const screen = stripVTControlCharacters(stdout.text);
  assert.match(screen, /▶ Applying postgres: 2 steps on 2 hosts \(run r1\)/);
  assert.match(screen, /✓ Install PostgreSQL · db_primary changed \(1\.0s\)/);
  assert.match(screen, /✗ Configure PostgreSQL failed on db_primary/);
  assert.match(screen, /Resume with: ha-setup apply --cluster lab --runbook postgres/);
  assert.match(screen, /✗ Failed: 1 changed, 0 unchanged, 1 failed, 1 not run in 1\.5s/);
  // The plain renderer's "[host]" lines are not used on a TTY.
  assert.doesNotMatch(screen, /\[db_primary\]/);
  // Static lines are written once, not re-rendered with every frame.
  assert.equal(screen.split('✓ Install PostgreSQL · db_primary changed').length - 1, 1);
});
