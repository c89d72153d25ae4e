/** RunOptions.onFailure: retry / skip / quit after a failed step (fake transport). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runRunbooks, type StepFailure, type FailureDecision } from '../../source/engine/runner.js';
import { readCheckpoints, resumePoint } from '../../source/engine/checkpoint.js';
import { defineStep, done, planOf, type Runbook } from '../../source/engine/step.js';
import type { EngineEvent } from '../../source/engine/events.js';
import { FakePool, fakeInventory, tempHome } from '../helpers/fake-transport.js';

const hosts = { h1: '198.18.0.11', h2: '198.18.0.12' };

/** s1 on both hosts: a fact reads a flag, the plan installs when missing, the install fails on h2 while `broken` is set. */
function setup(opts: { skipRisk?: string } = {}) {
  const state = { broken: new Set(['h2']), installed: new Set<string>() };
  const pool = new FakePool({}, (t) => {
    t.on(/^probe-installed$/, () => ({ stdout: state.installed.has(t.name) ? 'yes\n' : 'no\n' }));
    t.on(/^install-it$/, () => {
      if (state.broken.has(t.name)) return { code: 1, stderr: 'E: disk full\n' };
      state.installed.add(t.name);
      return { code: 0, stdout: 'installed\n' };
    });
  });
  const s1 = defineStep({
    id: 's1',
    title: 'Install it',
    targets: () => ['h1', 'h2'],
    facts: { installed: { id: 'installed', script: 'probe-installed', parse: (o: string) => o.trim() === 'yes' } },
    plan: (f) => (f.installed ? done('already installed') : planOf({ kind: 'run', title: 'install', script: 'install-it' })),
  });
  if (opts.skipRisk) Object.assign(s1, { skipRisk: opts.skipRisk });
  const s2 = defineStep({
    id: 's2',
    title: 'Afterwards',
    targets: () => ['h1'],
    facts: {},
    plan: () => planOf({ kind: 'run', title: 'after', script: 'echo after' }),
  });
  const rb: Runbook = { id: 'rb', title: 'rb', description: '', steps: [s1, s2] };
  return { state, pool, rb };
}

async function run(rb: Runbook, pool: FakePool, env: NodeJS.ProcessEnv, answers: FailureDecision[] | undefined, onAsk?: (f: StepFailure) => void) {
  const asked: StepFailure[] = [];
  const events: EngineEvent[] = [];
  const res = await runRunbooks({
    runbooks: [rb],
    inventory: fakeInventory(hosts),
    transport: pool.transport,
    events: (e) => events.push(e),
    mode: 'apply',
    env,
    resumeCommand: 'ha-setup apply --yes',
    ...(answers
      ? {
          onFailure: async (f: StepFailure) => {
            asked.push(f);
            onAsk?.(f);
            const a = answers.shift();
            assert.ok(a, 'asked more often than expected');
            return a;
          },
        }
      : {}),
  });
  return { res, asked, events };
}

const count = (pool: FakePool, host: string, script: string) => pool.get(host).execs.filter((e) => e.script === script).length;

test('without onFailure a failed step stops the run, as before', async () => {
  const { env } = tempHome();
  const { pool, rb } = setup();
  const { res } = await run(rb, pool, env, undefined);
  assert.equal(res.ok, false);
  assert.deepEqual(res.failedAt, { stepId: 's1', hosts: ['h2'] });
  assert.deepEqual(res.skipped, []);
  assert.equal(count(pool, 'h1', 'echo after'), 0, 's2 never ran');
  assert.equal(readCheckpoints('test', env).steps.s1?.h2?.status, 'failed');
});

test('retry runs the step again on the failed hosts only, with fresh facts and a fresh plan', async () => {
  const { env } = tempHome();
  const { state, pool, rb } = setup();
  const { res, asked, events } = await run(rb, pool, env, ['retry'], () => state.broken.delete('h2'));
  assert.equal(asked.length, 1);
  assert.equal(asked[0]!.stepId, 's1');
  assert.equal(asked[0]!.title, 'Install it');
  assert.deepEqual(asked[0]!.hosts, ['h2']);
  assert.equal(asked[0]!.attempt, 1);
  assert.match(asked[0]!.errors.h2!, /exit|code|1/);
  assert.equal(asked[0]!.transcriptPath, res.transcriptPath);
  assert.equal(res.ok, true);
  assert.equal(res.failed, 0, 'a failure that a retry fixed is not counted');
  assert.equal(res.changed, 3, 's1 on h1 and h2, s2 on h1');
  assert.equal(count(pool, 'h1', 'install-it'), 1, 'h1 did not run the step again');
  assert.equal(count(pool, 'h2', 'install-it'), 2);
  assert.equal(count(pool, 'h2', 'probe-installed'), 2, 'the facts were gathered again for the retry');
  assert.equal(count(pool, 'h1', 'echo after'), 1, 'the run went on to s2');
  assert.equal(readCheckpoints('test', env).steps.s1?.h2?.status, 'done');
  const h2s1 = events.filter((e) => 'host' in e && e.host === 'h2' && e.stepId === 's1').map((e) => e.type);
  assert.deepEqual(h2s1.filter((t) => t === 'step-started' || t === 'step-failed' || t === 'step-finished'), ['step-started', 'step-failed', 'step-started', 'step-finished']);
  const fin = events.at(-1);
  assert.ok(fin?.type === 'run-finished' && fin.ok && fin.failed === 0);
});

test('a retry that fails again asks again (attempt 2); quit then stops the run there', async () => {
  const { env } = tempHome();
  const { pool, rb } = setup();
  const { res, asked } = await run(rb, pool, env, ['retry', 'quit']);
  assert.deepEqual(
    asked.map((a) => [a.attempt, a.hosts]),
    [
      [1, ['h2']],
      [2, ['h2']],
    ],
  );
  assert.equal(res.ok, false);
  assert.equal(res.failed, 1);
  assert.deepEqual(res.failedAt, { stepId: 's1', hosts: ['h2'] });
  assert.equal(count(pool, 'h2', 'install-it'), 2);
  assert.equal(count(pool, 'h1', 'echo after'), 0);
  const cp = readCheckpoints('test', env);
  assert.equal(cp.steps.s1?.h2?.status, 'failed');
  assert.deepEqual(resumePoint(cp, [rb])?.hosts, ['h2']);
});

test('skip records the step as skipped on the failed hosts and goes on; the next run tries it again', async () => {
  const { env } = tempHome();
  const { state, pool, rb } = setup({ skipRisk: 'The app will not find its library.' });
  const first = await run(rb, pool, env, ['skip']);
  assert.equal(first.asked[0]!.skipRisk, 'The app will not find its library.');
  assert.equal(first.res.ok, true);
  assert.equal(first.res.failed, 0);
  assert.deepEqual(first.res.skipped, [{ stepId: 's1', hosts: ['h2'] }]);
  assert.equal(count(pool, 'h1', 'echo after'), 1, 's2 ran after the skip');
  const skippedEvent = first.events.find((e) => e.type === 'step-skipped' && e.host === 'h2');
  assert.ok(skippedEvent, 'a step-skipped event tells the renderers');
  const cp = readCheckpoints('test', env);
  assert.equal(cp.steps.s1?.h2?.status, 'skipped');
  assert.equal(cp.steps.s1?.h1?.status, 'done');
  assert.equal(cp.lastRun?.ok, true);
  assert.equal(resumePoint(cp, [rb]), null, 'a skipped step is not a failure to resume at');

  state.broken.clear();
  const second = await run(rb, pool, env, []);
  assert.equal(second.res.ok, true);
  assert.equal(count(pool, 'h2', 'install-it'), 2, 'the skipped step ran again on h2');
  assert.equal(count(pool, 'h1', 'install-it'), 1, 'h1 planned nothing (already installed)');
  assert.equal(readCheckpoints('test', env).steps.s1?.h2?.status, 'done');
});

test('the generic skip risk names the step and hosts; plan mode never asks', async () => {
  const { env } = tempHome();
  const { pool, rb } = setup();
  const { asked } = await run(rb, pool, env, ['quit']);
  assert.match(asked[0]!.skipRisk, /"Install it".*h2/);

  const { env: env2 } = tempHome();
  const pool2 = new FakePool({}, (t) => t.on(/^probe-installed$/, { code: 0, stdout: 'x' }));
  const failing = defineStep({
    id: 'p',
    title: 'p',
    targets: () => ['h1'],
    facts: { x: { id: 'x', script: 'probe-installed', parse: () => { throw new Error('cannot parse'); } } },
    plan: () => done('n/a'),
  });
  let calls = 0;
  const res = await runRunbooks({
    runbooks: [{ id: 'r', title: 'r', description: '', steps: [failing] }],
    inventory: fakeInventory(hosts),
    transport: pool2.transport,
    events: () => {},
    mode: 'plan',
    env: env2,
    resumeCommand: 'x',
    onFailure: async () => {
      calls++;
      return 'retry';
    },
  });
  assert.equal(res.ok, false);
  assert.equal(calls, 0);
});

test('an onFailure that throws stops the run like quit', async () => {
  const { env } = tempHome();
  const { pool, rb } = setup();
  const res = await runRunbooks({
    runbooks: [rb],
    inventory: fakeInventory(hosts),
    transport: pool.transport,
    events: () => {},
    mode: 'apply',
    env,
    resumeCommand: 'x',
    onFailure: async () => {
      throw new Error('terminal gone');
    },
  });
  assert.equal(res.ok, false);
  assert.deepEqual(res.failedAt, { stepId: 's1', hosts: ['h2'] });
});

test('retry after a failed connect connects again', async () => {
  const { env } = tempHome();
  const { pool, rb } = setup();
  const h2 = pool.get('h2');
  h2.opts.connectError = new Error('h2: cannot connect to 198.18.0.12:22 (ECONNREFUSED)');
  const { res, asked } = await run(rb, pool, env, ['retry', 'quit'], (f) => {
    if (f.attempt === 1) h2.opts.connectError = undefined;
  });
  assert.match(asked[0]!.errors.h2!, /ECONNREFUSED/);
  assert.equal(h2.connects, 2, 'the retry connected again');
  assert.equal(asked.length, 2, 'then the step itself failed (h2 is broken): asked again');
  assert.match(asked[1]!.errors.h2!, /disk full|exit/);
  assert.equal(res.ok, false);
});
