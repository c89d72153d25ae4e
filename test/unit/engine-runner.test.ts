import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { runRunbooks, type RunOptions } from '../../source/engine/runner.js';
import { readCheckpoints, resumePoint } from '../../source/engine/checkpoint.js';
import { defineStep, done, planOf, type FactDef, type Runbook } from '../../source/engine/step.js';
import type { EngineEvent } from '../../source/engine/events.js';
import { clusterDir } from '../../source/paths.js';
import { FakePool, fakeInventory, tempHome } from '../helpers/fake-transport.js';

const echoFact = (id: string): FactDef<string> => ({ id, script: `echo fact-${id}`, parse: (out) => out.trim() });

function collect(): { events: EngineEvent[]; sink: (e: EngineEvent) => void } {
  const events: EngineEvent[] = [];
  return { events, sink: (e) => events.push(e) };
}

function baseOpts(over: Partial<RunOptions> & Pick<RunOptions, 'runbooks' | 'inventory' | 'transport' | 'events'>): RunOptions {
  return { mode: 'apply', resumeCommand: 'ha-setup apply --config c.yaml', ...over };
}

const five = { h1: '198.18.0.11', h2: '198.18.0.12', h3: '198.18.0.13', h4: '198.18.0.14', h5: '198.18.0.15', db_vip: '198.18.0.100' };

test('steps run in order; the hosts of a step run in parallel, bounded by concurrency', async () => {
  const { env } = tempHome();
  const pool = new FakePool({ delayMs: 25 });
  const mk = (id: string) =>
    defineStep({
      id,
      title: `step ${id}`,
      targets: ({ hosts }) => Object.keys(hosts),
      facts: { f: echoFact(`${id}-probe`) },
      plan: () => planOf({ kind: 'run', title: `do ${id}`, script: `echo doing ${id}` }),
    });
  const rb: Runbook = { id: 'rb', title: 'rb', description: '', steps: [mk('a'), mk('b')] };
  const { events, sink } = collect();
  const res = await runRunbooks(baseOpts({ runbooks: [rb], inventory: fakeInventory(five), transport: pool.transport, events: sink, env, concurrency: 2 }));
  assert.equal(res.ok, true);
  assert.equal(res.changed, 10);
  assert.equal(pool.stats.maxActive, 2, 'never more than 2 hosts at once, and the 2 were used');
  // Every command of step a (facts and actions) before any of step b.
  const scripts = pool.stats.log.map((l) => l.script);
  const lastA = Math.max(...scripts.map((s, i) => (/\ba\b|a-probe/.test(s) ? i : -1)));
  const firstB = scripts.findIndex((s) => /\bb\b|b-probe/.test(s));
  assert.ok(lastA < firstB, `step a finished before step b started (${lastA} < ${firstB})`);
  assert.equal(scripts.length, 20);
  // VIPs are not hosts: the run never touched db_vip.
  assert.deepEqual([...pool.hosts.keys()].sort(), ['h1', 'h2', 'h3', 'h4', 'h5']);
  const started = events.find((e) => e.type === 'run-started');
  assert.ok(started && started.type === 'run-started');
  assert.deepEqual(started.steps, [
    { id: 'a', title: 'step a', hosts: ['h1', 'h2', 'h3', 'h4', 'h5'] },
    { id: 'b', title: 'step b', hosts: ['h1', 'h2', 'h3', 'h4', 'h5'] },
  ]);
  assert.equal(events.at(-1)?.type, 'run-finished');
});

test('a fact is gathered once per host and run, and again after a step changed that host', async () => {
  const { env } = tempHome();
  const pool = new FakePool();
  const shared = echoFact('shared');
  const s1 = defineStep({ id: 's1', title: 's1', targets: () => ['h1'], facts: { x: shared }, plan: () => done('nothing') });
  const s2 = defineStep({ id: 's2', title: 's2', targets: () => ['h1'], facts: { x: shared }, plan: () => planOf({ kind: 'run', title: 'change', script: 'touch /x' }) });
  const s3 = defineStep({ id: 's3', title: 's3', targets: () => ['h1'], facts: () => ({ x: shared }), plan: () => done('nothing') });
  const rb: Runbook = { id: 'rb', title: 'rb', description: '', steps: [s1, s2, s3] };
  const res = await runRunbooks(baseOpts({ runbooks: [rb], inventory: fakeInventory({ h1: '198.18.0.11' }), transport: pool.transport, events: () => {}, env }));
  assert.equal(res.ok, true);
  const probes = pool.get('h1').execs.filter((e) => e.script === 'echo fact-shared').length;
  assert.equal(probes, 2, 's1 and s2 share one probe; s3 probes again because s2 changed the host');
  assert.equal(pool.get('h1').connects, 1);
});

test('one fact id used for two different scripts is refused', async () => {
  const { env } = tempHome();
  const a: FactDef<string> = { id: 'pkg', script: 'dpkg -l', parse: (o) => o };
  const b: FactDef<string> = { id: 'pkg', script: 'rpm -qa', parse: (o) => o };
  const s1 = defineStep({ id: 's1', title: 's1', targets: () => ['h1'], facts: { a }, plan: () => done('ok') });
  const s2 = defineStep({ id: 's2', title: 's2', targets: () => ['h1'], facts: { b }, plan: () => done('ok') });
  const { events, sink } = collect();
  const res = await runRunbooks(baseOpts({ runbooks: [{ id: 'rb', title: '', description: '', steps: [s1, s2] }], inventory: fakeInventory({ h1: '198.18.0.11' }), transport: new FakePool().transport, events: sink, env }));
  assert.equal(res.ok, false);
  const f = events.find((e) => e.type === 'step-failed');
  assert.ok(f?.type === 'step-failed' && f.stepId === 's2');
  assert.equal(f.error, 'fact id "pkg" is used for two different scripts (step s2); give each fact its own id');
});

test('an empty plan without a reason is a bug: the step fails and says so', async () => {
  const { env } = tempHome();
  const pool = new FakePool();
  const bad = defineStep({ id: 'lazy', title: 'lazy', targets: () => ['h1'], facts: {}, plan: () => ({ actions: [] }) });
  const after = defineStep({ id: 'after', title: 'after', targets: () => ['h1'], facts: {}, plan: () => done('fine') });
  const { events, sink } = collect();
  const res = await runRunbooks(baseOpts({ runbooks: [{ id: 'rb', title: '', description: '', steps: [bad, after] }], inventory: fakeInventory({ h1: '198.18.0.11' }), transport: pool.transport, events: sink, env }));
  assert.equal(res.ok, false);
  const failed = events.find((e) => e.type === 'step-failed');
  assert.ok(failed && failed.type === 'step-failed');
  assert.equal(failed.stepId, 'lazy');
  assert.match(failed.error, /bug in runbook rb: step lazy planned nothing for h1 without saying why/);
  assert.ok(!events.some((e) => e.type === 'step-started' && e.stepId === 'after'));
});

test('plan mode gathers facts, emits actions and diffs, and writes nothing anywhere', async () => {
  const { env } = tempHome();
  const pool = new FakePool({}, (t) => t.on(/^cat \/etc\/app.conf$/, { stdout: 'port = 1\nname = x\n' }));
  const conf: FactDef<string> = { id: 'app-conf', script: 'cat /etc/app.conf', parse: (o) => o };
  const step = defineStep({
    id: 'conf',
    title: 'Configure the app',
    targets: () => ['h1'],
    facts: { conf },
    plan: ({ conf }) =>
      planOf(
        { kind: 'run', title: 'Stop app', script: 'systemctl stop app', sudo: true },
        { kind: 'write', path: '/etc/app.conf', content: 'port = 2\nname = x\n', mode: 0o644, owner: 'root', group: 'root', previous: conf },
      ),
  });
  const { events, sink } = collect();
  const res = await runRunbooks(baseOpts({ mode: 'plan', runbooks: [{ id: 'rb', title: '', description: '', steps: [step] }], inventory: fakeInventory({ h1: '198.18.0.11' }), transport: pool.transport, events: sink, env }));
  assert.equal(res.ok, true);
  const h1 = pool.get('h1');
  assert.deepEqual(h1.execs.map((e) => e.script), ['cat /etc/app.conf'], 'only the read-only fact ran');
  assert.equal(h1.writes.length, 0);
  const planned = events.find((e) => e.type === 'step-planned');
  assert.ok(planned && planned.type === 'step-planned');
  assert.equal(planned.actions.length, 2);
  assert.deepEqual(planned.diffs, [
    { path: '/etc/app.conf', diff: '--- a/etc/app.conf\n+++ b/etc/app.conf\n@@ -1,2 +1,2 @@\n-port = 1\n+port = 2\n name = x\n' },
  ]);
  assert.ok(!events.some((e) => ['command-started', 'file-written', 'step-finished'].includes(e.type)));
  assert.equal(existsSync(join(clusterDir('test', env), 'checkpoints.json')), false, 'no checkpoint in plan mode');
  const fin = events.at(-1);
  assert.ok(fin?.type === 'run-finished' && fin.changed === 1 && fin.unchanged === 0);
});

test('a failure lets the other hosts of the step finish, then stops with a full step-failed', async () => {
  const { env } = tempHome();
  const noisy = Array.from({ length: 20 }, (_, i) => `line ${i + 1}`).join('\n');
  const pool = new FakePool({}, (t) => {
    if (t.name === 'h2') t.on(/^migrate$/, { code: 7, stdout: `${noisy}\n`, stderr: 'fatal: disk full\n' });
  });
  const s1 = defineStep({ id: 'migrate', title: 'Migrate', targets: ({ hosts }) => Object.keys(hosts), facts: {}, plan: () => planOf({ kind: 'run', title: 'Run the migration', script: 'migrate' }) });
  const s2 = defineStep({ id: 'next', title: 'Next', targets: ({ hosts }) => Object.keys(hosts), facts: {}, plan: () => done('x') });
  const rbs: Runbook[] = [{ id: 'rb', title: '', description: '', steps: [s1, s2] }];
  const { events, sink } = collect();
  const res = await runRunbooks(baseOpts({ runbooks: rbs, inventory: fakeInventory({ h1: '198.18.0.11', h2: '198.18.0.12', h3: '198.18.0.13' }), transport: pool.transport, events: sink, env }));
  assert.equal(res.ok, false);
  assert.deepEqual(res.failedAt, { stepId: 'migrate', hosts: ['h2'] });
  const finished = events.filter((e) => e.type === 'step-finished').map((e) => (e as { host: string }).host).sort();
  assert.deepEqual(finished, ['h1', 'h3']);
  assert.ok(!events.some((e) => e.type === 'step-started' && e.stepId === 'next'), 'the next step never starts');
  const f = events.find((e) => e.type === 'step-failed');
  assert.ok(f && f.type === 'step-failed');
  assert.equal(f.host, 'h2');
  assert.equal(f.error, '"Run the migration" failed with exit code 7: fatal: disk full');
  assert.equal(f.command, 'Run the migration');
  assert.equal(f.lastLines.length, 15);
  assert.equal(f.lastLines[0], 'line 7');
  assert.equal(f.lastLines.at(-1), 'stderr: fatal: disk full');
  assert.equal(f.resumeCommand, 'ha-setup apply --config c.yaml');
  assert.equal(f.transcriptPath, res.transcriptPath);
  assert.ok(existsSync(f.transcriptPath));
  const fin = events.at(-1);
  assert.ok(fin?.type === 'run-finished' && !fin.ok && fin.failed === 1 && fin.changed === 2);
  // Checkpoints: done where it worked, failed where it did not; the resume point is that step.
  const cp = readCheckpoints('test', env);
  assert.equal(cp.steps.migrate?.h1?.status, 'done');
  assert.equal(cp.steps.migrate?.h2?.status, 'failed');
  assert.equal(cp.steps.next, undefined);
  assert.deepEqual(cp.lastRun?.failed, { stepId: 'migrate', hosts: ['h2'] });
  assert.deepEqual(resumePoint(cp, rbs), { runbookId: 'rb', stepId: 'migrate', hosts: ['h2'], runId: res.runId });
});

test('a transport that cannot connect fails the step on that host, with the error', async () => {
  const { env } = tempHome();
  const pool = new FakePool({}, (t) => {
    if (t.name === 'h2') (t.opts as { connectError?: Error }).connectError = new Error('h2: connection refused (is sshd running?)');
  });
  const s1 = defineStep({ id: 'probe', title: 'Probe', targets: ({ hosts }) => Object.keys(hosts), facts: { f: echoFact('p') }, plan: () => done('ok') });
  const { events, sink } = collect();
  const res = await runRunbooks(baseOpts({ runbooks: [{ id: 'rb', title: '', description: '', steps: [s1] }], inventory: fakeInventory({ h1: '198.18.0.11', h2: '198.18.0.12' }), transport: pool.transport, events: sink, env }));
  assert.equal(res.ok, false);
  const f = events.find((e) => e.type === 'step-failed');
  assert.ok(f && f.type === 'step-failed' && f.host === 'h2');
  assert.equal(f.error, 'h2: connection refused (is sshd running?)');
});

test('a target alias missing from the table is refused before anything runs', async () => {
  const { env } = tempHome();
  const pool = new FakePool();
  const s = defineStep({ id: 'standby', title: 'Standby', targets: () => ['db_standby'], facts: {}, plan: () => done('x') });
  const { events, sink } = collect();
  await assert.rejects(
    runRunbooks(baseOpts({ runbooks: [{ id: 'postgres', title: '', description: '', steps: [s] }], inventory: fakeInventory({ db_primary: '198.18.0.11' }), transport: pool.transport, events: sink, env })),
    { message: 'step standby (runbook postgres) needs server "db_standby", which is not in the server table of cluster test; add db_standby to servers:' },
  );
  const vip = defineStep({ id: 'onvip', title: 'x', targets: () => ['db_vip'], facts: {}, plan: () => done('x') });
  await assert.rejects(
    runRunbooks(baseOpts({ runbooks: [{ id: 'k', title: '', description: '', steps: [vip] }], inventory: fakeInventory({ db_vip: '198.18.0.100' }), transport: pool.transport, events: sink, env })),
    /targets db_vip, which is an address \(VIP\), not a server/,
  );
  assert.equal(events.length, 0);
  assert.equal(pool.hosts.size, 0);
  assert.equal(existsSync(join(clusterDir('test', env), 'runs')), false);
});

test('checkpoints: atomic file, mode 0600, re-planned each run, a changed input re-opens later steps', async () => {
  const { env } = tempHome();
  const pool = new FakePool();
  const options = { app: { port: 5432 } };
  const inv = fakeInventory({ h1: '198.18.0.11', h2: '198.18.0.12' }, options);
  const factRuns = { n: 0 };
  const counted: FactDef<number> = { id: 'count', script: 'echo counted', parse: () => ++factRuns.n };
  const steps = [
    defineStep({ id: 'one', title: 'one', targets: () => ['h1', 'h2'], facts: { c: counted }, plan: () => done('one is fine') }),
    defineStep({
      id: 'two',
      title: 'two',
      targets: () => ['h1', 'h2'],
      facts: {},
      inputs: (ctx) => ({ port: (ctx.options.app as { port: number }).port }),
      plan: () => done('two is fine'),
    }),
    defineStep({ id: 'three', title: 'three', targets: () => ['h1'], facts: {}, plan: () => done('three is fine') }),
  ];
  const rbs: Runbook[] = [{ id: 'rb', title: '', description: '', steps }];
  const run = async (mode: 'apply' | 'plan' = 'apply', extra: Partial<RunOptions> = {}) => {
    const { events, sink } = collect();
    const res = await runRunbooks(baseOpts({ mode, runbooks: rbs, inventory: inv, transport: pool.transport, events: sink, env, ...extra }));
    const notes = Object.fromEntries(
      events.filter((e) => e.type === 'step-finished').map((e) => [`${(e as { stepId: string }).stepId}@${(e as { host: string }).host}`, (e as { note?: string }).note ?? '']),
    );
    return { res, notes };
  };

  const first = await run();
  assert.equal(first.res.ok, true);
  assert.deepEqual(first.notes, { 'one@h1': '', 'one@h2': '', 'two@h1': '', 'two@h2': '', 'three@h1': '' });
  const dir = clusterDir('test', env);
  const file = join(dir, 'checkpoints.json');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith('.tmp')), [], 'no temp file left behind');
  const cp1 = readCheckpoints('test', env);
  assert.equal(cp1.steps.two?.h1?.status, 'done');
  assert.match(cp1.steps.two?.h1?.inputHash ?? '', /^[0-9a-f]{64}$/);
  assert.equal(cp1.steps.two?.h1?.runId, first.res.runId);

  const second = await run();
  assert.deepEqual(second.notes, {
    'one@h1': 'verified (checkpoint)',
    'one@h2': 'verified (checkpoint)',
    'two@h1': 'verified (checkpoint)',
    'two@h2': 'verified (checkpoint)',
    'three@h1': 'verified (checkpoint)',
  });
  assert.equal(factRuns.n, 4, 'facts are gathered again on every run, checkpoint or not');

  options.app.port = 6432;
  // A plan does not persist the re-opening.
  await run('plan');
  assert.equal(readCheckpoints('test', env).steps.three?.h1?.status, 'done');
  // Resuming after the re-opened step is refused.
  await assert.rejects(run('apply', { fromStep: 'three' }), /cannot start at step three: step two is not done on h1 \(or its inputs changed\); start at two instead/);
  const third = await run();
  assert.deepEqual(third.notes, {
    'one@h1': 'verified (checkpoint)',
    'one@h2': 'verified (checkpoint)',
    'two@h1': '',
    'two@h2': '',
    'three@h1': '',
  });
  const fourth = await run('apply', { fromStep: 'three' });
  assert.deepEqual(fourth.notes, { 'three@h1': 'verified (checkpoint)' });
  assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith('.tmp')), []);
});

test('the transcript: 0600 in a 0700 dir, header, scripts, prefixed output, exit codes, file writes', async () => {
  const { env } = tempHome();
  const pool = new FakePool({}, (t) => t.on(/^echo hello/, { stdout: 'hello\nworld\n', stderr: 'warning: x\n' }));
  const step = defineStep({
    id: 'greet',
    title: 'Greet',
    targets: () => ['h1'],
    facts: { f: echoFact('probe') },
    plan: () =>
      planOf(
        { kind: 'run', title: 'Say hello', script: 'echo hello\necho world' },
        { kind: 'write', path: '/etc/motd', content: 'welcome\n', mode: 0o644, owner: 'root', group: 'root', previous: null },
        { kind: 'write', path: '/etc/app/secret.env', content: 'TOKEN=abc\n', mode: 0o600, owner: 'app', group: 'app', previous: null },
      ),
  });
  pool.get('h1').files.set('/etc/motd', { content: 'old\n', mode: 0o644, owner: 'root', group: 'root' });
  const res = await runRunbooks(
    baseOpts({ command: 'ha-setup apply --config c.yaml', runbooks: [{ id: 'rb', title: '', description: '', steps: [step] }], inventory: fakeInventory({ h1: '198.18.0.11' }), transport: pool.transport, events: () => {}, env }),
  );
  assert.equal(res.ok, true);
  assert.match(res.runId, /^\d{8}T\d{9}Z-[0-9a-f]{6}$/);
  assert.equal(res.transcriptPath, join(clusterDir('test', env), 'runs', `${res.runId}.log`));
  assert.equal(statSync(res.transcriptPath).mode & 0o777, 0o600);
  assert.equal(statSync(join(clusterDir('test', env), 'runs')).mode & 0o777, 0o700);
  const text = readFileSync(res.transcriptPath, 'utf8');
  assert.match(text, new RegExp(`^# ha-setup transcript\nrun: ${res.runId}\ncluster: test\nmode: apply\ncommand: ha-setup apply --config c.yaml\nstarted: \\S+\nrunbooks: rb\nhosts: h1=198.18.0.11\n`));
  assert.match(text, /\[h1\] greet fact: fact probe\n {4}\| echo fact-probe\n/);
  assert.match(text, /\[h1\] greet command: Say hello\n {4}\| echo hello\n {4}\| echo world\n\[h1\] stdout: hello\n\[h1\] stdout: world\n\[h1\] stderr: warning: x\n\S+ \[h1\] greet exit 0 in \d+ ms\n/);
  assert.match(text, /\[h1\] greet write \/etc\/motd mode 0644 owner root:root changed \(8 bytes\) backup \/etc\/motd.ha-setup.bak\n {4}> welcome\n/);
  assert.match(text, /\[h1\] greet write \/etc\/app\/secret.env mode 0600 owner app:app changed \(10 bytes\)\n {4}\(content not logged: secret file\)/);
  assert.ok(!text.includes('TOKEN=abc'));
  assert.match(text, /\[h1\] greet done \(changed\)\n/);
});

test('a partial table leaves out the steps whose servers it does not list, and says so', async () => {
  const { env } = tempHome();
  const pool = new FakePool();
  const primary = defineStep({ id: 'primary', title: 'Primary', targets: () => ['db_primary'], facts: { f: echoFact('p') }, plan: () => done('primary ok') });
  const nfs = defineStep({ id: 'nfs', title: 'NFS', targets: () => ['nfs_primary', 'nfs_standby'], facts: {}, plan: () => done('x') });
  const { events, sink } = collect();
  const notes: string[] = [];
  const inventory = { ...fakeInventory({ db_primary: '198.18.0.11' }), partial: true };
  const res = await runRunbooks(
    baseOpts({ runbooks: [{ id: 'rb', title: '', description: '', steps: [primary, nfs] }], inventory, transport: pool.transport, events: sink, env, note: (l: string) => notes.push(l) }),
  );
  assert.equal(res.ok, true);
  const started = events.filter((e) => e.type === 'step-started').map((e) => (e.type === 'step-started' ? e.stepId : ''));
  assert.deepEqual(started, ['primary']);
  assert.deepEqual(notes, ['left out step nfs (runbook rb): the partial table has no nfs_primary, nfs_standby']);
});
