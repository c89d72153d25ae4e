/**
 * The interactive failure menu on a real run (runner + fake transport + LiveRun): Retry, Skip,
 * Show full log (the transcript's tail, paged) and back, Quit; and the resume offer.
 */
import { test, afterEach } from 'node:test';
import { EventEmitter } from 'node:events';
import { stripVTControlCharacters } from 'node:util';
import assert from 'node:assert/strict';
import { render, cleanup } from 'ink-testing-library';
import { runRunbooks } from '../../source/engine/runner.js';
import { readCheckpoints } from '../../source/engine/checkpoint.js';
import { defineStep, done, planOf, type Runbook } from '../../source/engine/step.js';
import { LiveRun } from '../../source/ui/LiveRun.js';
import { renderRun } from '../../source/ui/render-run.js';
import { LogView } from '../../source/ui/LogView.js';
import { ResumeScreen } from '../../source/ui/ResumeScreen.js';
import { createRunStore } from '../../source/ui/run-store.js';
import { createDecisionStore } from '../../source/ui/decision-store.js';
import { tailLines } from '../../source/ui/log-tail.js';
import { describeFailure, lastFailure, type LastFailure, type ResumeChoice } from '../../source/ui/last-failure.js';
import { newRunId, Transcript } from '../../source/engine/transcript.js';
import { Redactor } from '../../source/engine/redact.js';
import { clusterDir } from '../../source/paths.js';
import { rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { resumeDecision } from '../../source/commands/session.js';
import type { CliIO, CommandArgs } from '../../source/cli.js';
import { FakePool, fakeInventory, tempHome } from '../helpers/fake-transport.js';
import { FakeStdin, keys, plain, waitFor, waitForText } from './helpers.js';

afterEach(() => cleanup());

const inventory = fakeInventory({ h1: '198.18.0.11' });

function setup() {
  const state = { broken: true, installed: false };
  const pool = new FakePool({}, (t) => {
    t.on(/^probe$/, () => ({ stdout: state.installed ? 'yes\n' : 'no\n' }));
    t.on(/^install-it$/, () => {
      if (state.broken) return { code: 1, stdout: Array.from({ length: 30 }, (_, i) => `progress ${i + 1}`).join('\n') + '\n', stderr: 'E: disk full\n' };
      state.installed = true;
      return { stdout: 'ok\n' };
    });
  });
  const install = defineStep({
    id: 'install',
    title: 'Install it',
    targets: () => ['h1'],
    facts: { installed: { id: 'installed', script: 'probe', parse: (o: string) => o.trim() === 'yes' } },
    plan: (f) => (f.installed ? done('installed') : planOf({ kind: 'run', title: 'install', script: 'install-it' })),
  });
  Object.assign(install, { skipRisk: 'Nothing after it can start.' });
  const after = defineStep({ id: 'after', title: 'After', targets: () => ['h1'], facts: {}, plan: () => planOf({ kind: 'run', title: 'after', script: 'echo after' }) });
  const rb: Runbook = { id: 'rb', title: 'rb', description: '', steps: [install, after] };
  return { state, pool, rb };
}

function start(rb: Runbook, pool: FakePool, env: NodeJS.ProcessEnv) {
  const store = createRunStore();
  const decisions = createDecisionStore();
  const r = render(<LiveRun store={store} decisions={decisions} spinnerFrame="*" logHeight={5} />);
  const result = runRunbooks({
    runbooks: [rb],
    inventory,
    transport: pool.transport,
    events: store.dispatch,
    mode: 'apply',
    env,
    resumeCommand: 'ha-setup apply --yes',
    onFailure: decisions.ask,
  });
  return { r, result };
}

test('a failure opens the menu with what skipping risks; retry after a fix finishes the run', async () => {
  const { env } = tempHome();
  const { state, pool, rb } = setup();
  const { r, result } = start(rb, pool, env);
  const f = await waitForText(r.lastFrame, 'What now?');
  assert.match(f, /✗ Install it failed on h1/);
  assert.match(f, /Last lines:/);
  assert.match(f, /E: disk full/);
  assert.match(f, /❯ Retry \(r\)/);
  assert.match(f, /Skipping risks: Nothing after it can start\./);
  assert.equal(f.match(/✗ Install it failed on h1/g)?.length, 1, 'one panel: the menu does not draw a second');
  assert.match(f, /✗ Install it · h1 failed: "install" failed with exit code 1: E: disk full/);
  state.broken = false;
  r.stdin.write('r');
  const res = await result;
  assert.equal(res.ok, true);
  const end = await waitForText(r.lastFrame, '✓ Done');
  assert.doesNotMatch(end, /What now\?/);
  assert.doesNotMatch(end, /╭/, 'the failure panel is gone after the retry worked');
  assert.match(end, /✓ Install it · h1 changed/);
  assert.match(end, /✓ After · h1 changed/);
});

test('show full log pages the transcript tail and goes back to the menu; skip goes on', async () => {
  const { env } = tempHome();
  const { pool, rb } = setup();
  const { r, result } = start(rb, pool, env);
  await waitForText(r.lastFrame, 'What now?');
  r.stdin.write('l');
  const log = await waitForText(r.lastFrame, 'Transcript: ');
  assert.match(log, /^lines \d+–\d+ of \d+$/m);
  const m = /lines (\d+)–(\d+) of (\d+)/.exec(log)!;
  assert.equal(Number(m[2]), Number(m[3]), 'starts at the end of the log');
  assert.equal(Number(m[2]) - Number(m[1]) + 1, 5, 'five lines at once (logHeight)');
  assert.match(log, /FAILED: /, 'the transcript tail shows the failure');
  assert.doesNotMatch(log, /What now\?/);
  r.stdin.write(keys.up);
  await waitForText(r.lastFrame, `lines ${Number(m[1]) - 1}–${Number(m[2]) - 1} of ${m[3]}`);
  r.stdin.write('g');
  await waitForText(r.lastFrame, `lines 1–5 of ${m[3]}`);
  assert.match(plain(r.lastFrame()), /^lines 1–5 of \d+\n# ha-setup transcript\nrun: /m, 'the top of the transcript (a short one: all of it)');
  r.stdin.write('q');
  await waitForText(r.lastFrame, 'What now?');
  r.stdin.write('s');
  const res = await result;
  assert.equal(res.ok, true);
  assert.deepEqual(res.skipped, [{ stepId: 'install', hosts: ['h1'] }]);
  const end = await waitForText(r.lastFrame, '✓ Done');
  assert.match(end, /↷ Install it · h1 skipped: skipped after a failure/);
  assert.equal(readCheckpoints('test', env).steps.install?.h1?.status, 'skipped');
});

test('quit stops the run where it failed; the next apply offers to resume there', async () => {
  const { env } = tempHome();
  const { pool, rb } = setup();
  const { r, result } = start(rb, pool, env);
  await waitForText(r.lastFrame, 'What now?');
  for (const label of ['Skip this step', 'Show full log', 'Quit (q)']) {
    r.stdin.write(keys.down);
    await waitForText(r.lastFrame, `❯ ${label}`);
  }
  r.stdin.write(keys.enter);
  const res = await result;
  assert.equal(res.ok, false);
  const end = await waitForText(r.lastFrame, '✗ Failed');
  assert.match(end, /1 not run/);

  const failure = lastFailure(inventory, [rb], env);
  assert.ok(failure);
  assert.deepEqual([failure.stepId, failure.title, failure.hosts], ['install', 'Install it', ['h1']]);
  assert.match(failure.at, /^\d{4}-\d\d-\d\dT/);

  // A terminal without --yes: the question is asked, the answer decides fromStep.
  const tty = { isTTY: true, write: () => true };
  const io = { stdin: { isTTY: true } as NodeJS.ReadStream, stdout: tty, stderr: tty, env: { ...env, CI: 'false' } } as CliIO;
  const args = (yes: boolean): CommandArgs => ({ positionals: [], values: yes ? { yes: true } : {} }) as CommandArgs;
  const asked: LastFailure[] = [];
  const answer = (c: ResumeChoice) => async (f: LastFailure) => (asked.push(f), c);
  assert.equal(await resumeDecision(args(false), io, inventory, [rb], answer('resume')), 'install');
  assert.equal(await resumeDecision(args(false), io, inventory, [rb], answer('start-over')), null);
  assert.equal(await resumeDecision(args(false), io, inventory, [rb], answer('cancel')), 'cancel');
  assert.equal(asked.length, 3);
  // --yes (or no terminal): one line, and everything runs (done steps plan nothing).
  let said = '';
  const quiet = { ...io, stderr: { write: (s: string) => (said += s) } } as CliIO;
  assert.equal(await resumeDecision(args(true), quiet, inventory, [rb], answer('cancel')), null);
  assert.match(said, /^The last run of test stopped at Install it \(install\), failed on h1 at \d{4}-\d\d-\d\d \d\d:\d\d UTC: resuming there/);
  assert.equal(said.trim().split('\n').length, 1);
});

test('ResumeScreen: the three choices, exact frame; esc cancels', async () => {
  const choices: ResumeChoice[] = [];
  const f: LastFailure = { stepId: 'pg.standby', title: 'Standby', hosts: ['db_standby'], at: '2026-11-22T00:41:07.123Z' };
  const r = render(<ResumeScreen cluster="prod" failure={f} onChoice={(c) => choices.push(c)} />);
  const frame = await waitForText(r.lastFrame, 'Cancel');
  assert.equal(
    frame,
    [
      'The last run of prod stopped at Standby (pg.standby).',
      '❯ Resume at step pg.standby (failed on db_standby at 2026-11-22 00:41 UTC)',
      '  Start over (steps already done are re-checked, not redone)',
      '  Cancel',
      '',
      '↑/↓ move · enter choose · esc cancel',
    ].join('\n'),
  );
  r.stdin.write(keys.down);
  await waitForText(r.lastFrame, '❯ Start over');
  r.stdin.write(keys.enter);
  await waitFor(() => choices.length === 1, () => plain(r.lastFrame()));
  r.stdin.write(keys.escape);
  await waitFor(() => choices.length === 2, () => plain(r.lastFrame()));
  assert.deepEqual(choices, ['start-over', 'cancel']);
});

test('LogView pages; tailLines reads only the end of a big file', async () => {
  const { home } = tempHome();
  const { writeFileSync } = await import('node:fs');
  const path = `${home}/big.log`;
  writeFileSync(path, Array.from({ length: 100_000 }, (_, i) => `line ${i + 1}`).join('\n') + '\n');
  const tail = tailLines(path, 200);
  assert.equal(tail.length, 200);
  assert.equal(tail[0], 'line 99801');
  assert.equal(tail.at(-1), 'line 100000');

  let back = 0;
  const r = render(<LogView title="Log" lines={tail} height={3} onBack={() => back++} />);
  await waitForText(r.lastFrame, 'lines 198–200 of 200');
  assert.equal(plain(r.lastFrame()).split('\n').slice(0, 5).join('\n'), ['Log', 'lines 198–200 of 200', 'line 99998', 'line 99999', 'line 100000'].join('\n'));
  r.stdin.write('b');
  await waitForText(r.lastFrame, 'lines 195–197 of 200');
  r.stdin.write(' ');
  await waitForText(r.lastFrame, 'lines 198–200 of 200');
  r.stdin.write(keys.escape);
  await waitFor(() => back === 1, () => plain(r.lastFrame()));
});

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

test('renderRun with prompt: the menu on the terminal; ctrl-c while it is open stops the run (no hang)', async () => {
  const { env } = tempHome();
  const { pool, rb } = setup();
  const term = new FakeTerminal();
  const stdin = new FakeStdin();
  const view = renderRun({ stdout: term, stderr: term, stdin: stdin as unknown as NodeJS.ReadStream, env: {}, interactive: true, prompt: true, spinnerFrame: '*' });
  assert.ok(view.decide, 'the failure menu is offered');
  const result = runRunbooks({ runbooks: [rb], inventory, transport: pool.transport, events: view.sink, mode: 'apply', env, resumeCommand: 'x', onFailure: view.decide });
  await waitFor(() => stripVTControlCharacters(term.text).includes('What now?'), () => stripVTControlCharacters(term.text).slice(-2000));
  stdin.write('\u0003');
  const res = await result;
  assert.equal(res.ok, false);
  assert.deepEqual(res.failedAt, { stepId: 'install', hosts: ['h1'] });
  await view.done();
  // Without prompt (stdin not a terminal) there is no menu: the run stops as before.
  const plainView = renderRun({ stdout: term, stderr: term, env: {}, interactive: true, spinnerFrame: '*' });
  assert.equal(plainView.decide, undefined);
  await plainView.done();
});

test('a run killed in the middle (transcript never finished) is offered for resume at the first step not done', async () => {
  const { env } = tempHome();
  const { state, pool, rb } = setup();
  state.broken = false;
  const first = await runRunbooks({ runbooks: [rb], inventory, transport: pool.transport, events: () => {}, mode: 'apply', env, resumeCommand: 'x', onlySteps: ['install'] });
  assert.equal(first.ok, true);
  assert.equal(lastFailure(inventory, [rb], env), null, 'a finished run leaves nothing to resume');
  // What kill -9 in the middle of step "after" leaves: a transcript with a header and no end, a lock of a dead pid.
  const dir = clusterDir('test', env);
  Transcript.create(dir, newRunId(), new Redactor(), { command: 'ha-setup apply', mode: 'apply', cluster: 'test', hosts: [], runbooks: ['rb'] });
  writeFileSync(join(dir, 'lock'), JSON.stringify({ pid: 2 ** 22 + 12345, hostname: hostname(), startedAt: 'x', command: 'ha-setup apply' }));
  const f = lastFailure(inventory, [rb], env);
  assert.deepEqual(f && [f.stepId, f.hosts, f.how], ['after', ['h1'], 'interrupted']);
  assert.match(describeFailure(f!), /^After \(after\), interrupted on h1 at \d{4}-\d\d-\d\d \d\d:\d\d UTC$/);
  // While a live process holds the lock, the run is not interrupted but in progress.
  writeFileSync(join(dir, 'lock'), JSON.stringify({ pid: process.pid, hostname: hostname(), startedAt: 'x', command: 'ha-setup apply' }));
  assert.equal(lastFailure(inventory, [rb], env), null);
  rmSync(join(dir, 'lock'));
  await new Promise((r) => setTimeout(r, 2)); // run ids are by the millisecond: the resumed run is newer
  // The resumed run finishes: nothing left to resume; "install" was not redone.
  const installs = pool.get('h1').execs.filter((e) => e.script === 'install-it').length;
  const second = await runRunbooks({ runbooks: [rb], inventory, transport: pool.transport, events: () => {}, mode: 'apply', env, resumeCommand: 'x', fromStep: 'after' });
  assert.equal(second.ok, true);
  assert.equal(pool.get('h1').execs.filter((e) => e.script === 'install-it').length, installs);
  assert.equal(lastFailure(inventory, [rb], env), null);
});
