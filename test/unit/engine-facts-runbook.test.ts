import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statfsSync } from 'node:fs';
import { release } from 'node:os';
import { runRunbooks } from '../../source/engine/runner.js';
import { createExecContext, createHostContext, contextOptions, tableOf } from '../../source/engine/context.js';
import { Redactor } from '../../source/engine/redact.js';
import { Secret } from '../../source/engine/shell.js';
import type { EngineEvent } from '../../source/engine/events.js';
import { clusterMarkerStep, describeHost, diskFact, factsRunbook, formatFree, MARKER_PATH, timeSyncFact } from '../../runbooks/facts.js';
import { findRunbook, ON_DEMAND, RUNBOOKS } from '../../runbooks/index.js';
import { FakePool, FakeTransport, fakeInventory, tempHome } from '../helpers/fake-transport.js';

/** Real bash for the read-only facts; the one command that would touch this machine's /etc is answered by the fake. */
const markerPool = () => new FakePool({ localBash: true }, (t) => t.on(/^install -d /, { code: 0 }));

const servers = { db_primary: '198.18.0.11', db_standby: '198.18.0.12', db_vip: '198.18.0.100' };

async function run(pool: FakePool, env: NodeJS.ProcessEnv, mode: 'apply' | 'plan', cluster = 'test') {
  const events: EngineEvent[] = [];
  const res = await runRunbooks({ mode, runbooks: [factsRunbook], inventory: fakeInventory(servers, {}, cluster), transport: pool.transport, events: (e) => events.push(e), env, resumeCommand: 'ha-setup apply' });
  return { res, events };
}
const of = <T extends EngineEvent['type']>(events: EngineEvent[], type: T, host?: string) =>
  events.filter((e): e is Extract<EngineEvent, { type: T }> => e.type === type && (!host || (e as { host?: string }).host === host));

test('os-facts reports what the host runs (real bash on this machine as the "host")', async () => {
  const { env } = tempHome();
  const pool = markerPool();
  const { res, events } = await run(pool, env, 'plan');
  assert.equal(res.ok, true);
  const skip = of(events, 'step-skipped', 'db_primary').find((e) => e.stepId === 'os-facts');
  assert.ok(skip);
  const pretty = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'))![1]!;
  const init = existsSync('/run/systemd/system') ? 'systemd' : 'no systemd';
  const kernel = /^\d+\.\d+/.exec(release())![0];
  const prefix = `${pretty}, ${init}, apt, kernel ${kernel}, `;
  assert.ok(skip.reason.startsWith(prefix), `${skip.reason} starts with ${prefix}`);
  const m = /, ([\d.]+) (GB|MB) free on \/, (time synchronized|clock NOT synchronized.*|time sync unknown)$/.exec(skip.reason);
  assert.ok(m, skip.reason);
  const st = statfsSync('/');
  const freeGB = (st.bavail * st.bsize) / 1024 ** 3;
  const shown = m[2] === 'GB' ? Number(m[1]) : Number(m[1]) / 1024;
  assert.ok(Math.abs(shown - freeGB) <= Math.max(0.6, freeGB * 0.05), `free space ${shown} GB vs statfs ${freeGB.toFixed(2)} GB`);
  // The VIP is not a host: only the two servers were probed.
  assert.deepEqual([...pool.hosts.keys()].sort(), ['db_primary', 'db_standby']);
});

test('fact parsers and the host description', () => {
  assert.deepEqual(timeSyncFact.parse('HA_SYNC=yes\nHA_NTP=yes\n', { code: 0, stdout: '', stderr: '', durationMs: 1 }), { synchronized: true, ntpEnabled: true });
  assert.deepEqual(timeSyncFact.parse('', { code: 0, stdout: '', stderr: '', durationMs: 1 }), { synchronized: null, ntpEnabled: null });
  assert.deepEqual(diskFact.parse('HA_FREE_KB=12582912\n', { code: 0, stdout: '', stderr: '', durationMs: 1 }), { freeKiB: 12582912 });
  assert.equal(formatFree(12 * 1024 * 1024), '12 GB free on /');
  assert.equal(formatFree(3.5 * 1024 * 1024), '3.5 GB free on /');
  assert.equal(formatFree(300 * 1024), '300 MB free on /');
  assert.equal(formatFree(null), 'free disk unknown');
  const os = { id: 'debian', family: 'debian', versionId: '12', major: 12, prettyName: 'Debian GNU/Linux 12 (bookworm)', hostname: 'db1', kernel: '6.1.0-18-amd64', init: 'systemd', packageManager: 'apt' } as const;
  assert.equal(
    describeHost(os, { synchronized: false, ntpEnabled: false }, { freeKiB: 12 * 1024 * 1024 }),
    'Debian GNU/Linux 12 (bookworm), systemd, apt, kernel 6.1, 12 GB free on /, clock NOT synchronized (NTP off)',
  );
});

test('cluster-marker: written once (0644 root:root), then "already up to date" and verified', async () => {
  const { env } = tempHome();
  const pool = markerPool();
  const plan = await run(pool, env, 'plan');
  const planned = of(plan.events, 'step-planned', 'db_primary').find((e) => e.stepId === 'cluster-marker')!;
  assert.deepEqual(planned.actions.map((a) => (a.kind === 'run' ? a.script : `write ${a.path}`)), ['install -d -m 0755 /etc/ha-setup', `write ${MARKER_PATH}`]);
  assert.match(planned.diffs[0]!.diff, /^--- a\/etc\/ha-setup\/cluster.json\n\+\+\+ b\/etc\/ha-setup\/cluster.json\n@@ -0,0 \+1,6 @@\n\+\{\n\+  "cluster": "test",/);
  assert.equal(pool.get('db_primary').files.size, 0, 'plan wrote nothing');

  const first = await run(pool, env, 'apply');
  assert.equal(first.res.ok, true);
  const f = pool.get('db_standby').files.get(MARKER_PATH);
  assert.deepEqual(f && { ...f, content: JSON.parse(f.content) }, {
    content: { cluster: 'test', alias: 'db_standby', address: '198.18.0.12', managedBy: 'ha-setup' },
    mode: 0o644,
    owner: 'root',
    group: 'root',
  });
  const fin1 = of(first.events, 'step-finished', 'db_standby').find((e) => e.stepId === 'cluster-marker')!;
  assert.equal(fin1.changed, true);
  assert.equal(fin1.note, 'marker names cluster test');
  assert.ok(pool.get('db_standby').execs.find((e) => e.sudo && e.script === 'install -d -m 0755 /etc/ha-setup'));

  const second = await run(pool, env, 'apply');
  assert.equal(second.res.ok, true);
  const skip = of(second.events, 'step-skipped', 'db_standby').find((e) => e.stepId === 'cluster-marker')!;
  assert.equal(skip.reason, 'marker already up to date');
  const fin2 = of(second.events, 'step-finished', 'db_standby').find((e) => e.stepId === 'cluster-marker')!;
  assert.deepEqual([fin2.changed, fin2.note], [false, 'verified (checkpoint); marker names cluster test']);
  assert.equal(second.res.changed, 0);
  assert.equal(pool.get('db_standby').writes.length, 1, 'the second run wrote nothing');
});

test('cluster-marker verify fails when the marker did not land', async () => {
  const { env } = tempHome();
  const pool = new FakePool({ localBash: true }, (t) => {
    t.on(/^install -d /, { code: 0 });
    if (t.name === 'db_standby') t.writeFile = async () => ({ changed: true }); // a write that is lost
  });
  const { res, events } = await run(pool, env, 'apply');
  assert.equal(res.ok, false);
  const failed = of(events, 'step-failed');
  assert.deepEqual(
    failed.map((e) => [e.host, e.stepId, e.error]),
    [['db_standby', 'cluster-marker', '/etc/ha-setup/cluster.json on db_standby does not hold the expected marker after writing it']],
  );
  assert.equal(of(events, 'step-finished', 'db_primary').find((e) => e.stepId === 'cluster-marker')?.changed, true);
});

test('cluster-marker refuses a host that belongs to another cluster', async () => {
  const { env } = tempHome();
  const pool = markerPool();
  const other = { cluster: 'prod', alias: 'db1', address: '198.18.0.11', managedBy: 'ha-setup' };
  pool.get('db_primary').files.set(MARKER_PATH, { content: JSON.stringify(other), mode: 0o644 });
  const { res, events } = await run(pool, env, 'apply');
  assert.equal(res.ok, false);
  const failed = of(events, 'step-failed');
  assert.equal(failed.length, 1);
  assert.equal(failed[0]!.host, 'db_primary');
  assert.equal(
    failed[0]!.error,
    'db_primary (198.18.0.11) already belongs to cluster "prod" (/etc/ha-setup/cluster.json), not "test": use --cluster prod if that is the one you mean, or if cluster prod no longer exists, delete /etc/ha-setup/cluster.json on db_primary and run again',
  );
  assert.equal(JSON.parse(pool.get('db_primary').files.get(MARKER_PATH)!.content).cluster, 'prod', 'left alone');
  assert.equal(pool.get('db_primary').writes.length, 0);
});

test('cluster-marker undo removes the marker (and refuses another cluster’s)', async () => {
  const inv = fakeInventory(servers);
  const t = new FakeTransport('db_primary');
  t.on(/^rm -f -- (\S+)/, (_s, m, tr) => (tr.files.delete(m[1]!), { code: 0 }));
  const hctx = createHostContext({ host: { alias: 'db_primary', address: '198.18.0.11' }, table: tableOf(inv), options: contextOptions(inv), secret: (n) => new Secret(n, 'unused-secret') });
  const events: EngineEvent[] = [];
  const ctx = createExecContext(hctx, { transport: t, stepId: 'cluster-marker', events: (e) => events.push(e), redactor: new Redactor() });
  t.files.set(MARKER_PATH, { content: JSON.stringify({ cluster: 'test' }), mode: 0o644 });
  await clusterMarkerStep.undo!(ctx);
  assert.equal(t.files.has(MARKER_PATH), false);
  assert.ok(t.execs.some((e) => e.sudo && e.script.startsWith('rm -f -- /etc/ha-setup/cluster.json')));
  assert.deepEqual(of(events, 'command-started').map((e) => e.title), ['Remove the cluster marker']);
  await clusterMarkerStep.undo!(ctx); // already gone: a no-op
  t.files.set(MARKER_PATH, { content: JSON.stringify({ cluster: 'prod' }), mode: 0o644 });
  await assert.rejects(clusterMarkerStep.undo!(ctx), /already belongs to cluster "prod"/);
  assert.equal(t.files.has(MARKER_PATH), true);
});

test('the runbook registry', () => {
  assert.equal(RUNBOOKS[0], factsRunbook);
  assert.deepEqual(factsRunbook.steps.map((s) => s.id), ['os-facts', 'cluster-marker']);
  assert.equal(findRunbook('facts'), factsRunbook);
  // The error lists every runbook that can be named: the default ones, then the on-demand ones.
  const known = [...RUNBOOKS, ...ON_DEMAND].map((r) => r.id);
  assert.ok(known.includes('pg-standby') && known.includes('uninstall'));
  assert.throws(() => findRunbook('postgress'), { message: `unknown runbook "postgress" (known: ${known.join(', ')})` });
  // Uninstall can be named but never runs by default.
  assert.equal(findRunbook('uninstall').id, 'uninstall');
  assert.ok(!RUNBOOKS.some((r) => r.id === 'uninstall'));
});
