/**
 * The collector over fake transports that answer with the lab's captured output: one script per
 * host, as root, all hosts at once; a host that hangs or refuses costs at most its deadline and
 * is reported alone; the lock and last run come from the cluster's state directory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { collectHealth } from '../../source/status/collect.js';
import { MARKER } from '../../source/status/scripts.js';
import { FakePool, tempHome } from '../helpers/fake-transport.js';
import { TransportError } from '../../source/transport/types.js';
import { clusterDir } from '../../source/paths.js';
import type { Inventory } from '../../source/inventory/types.js';

const TABLE: Inventory = {
  cluster: 'st-db',
  topology: 'lb',
  partial: true,
  servers: { db_primary: '198.18.0.11', db_standby: '198.18.0.12', lb: '198.18.0.13', app1: '198.18.0.14', db_vip: '198.18.0.100' },
  ssh: {},
  options: { postgres: { version: 15, dbViaHaproxy: true } },
};
const captured = (host: string) => readFileSync(new URL(`../../../test/fixtures/status/db-healthy/${host}.txt`, import.meta.url), 'utf8');
const STATUS_SCRIPT = new RegExp(`^set \\+e \\+o pipefail\\nexport LC_ALL=C\\necho '${MARKER} `);

test('one script per host, as root, in parallel; a host with nothing to check gets `true`; the result is the evaluated health', async () => {
  const { env } = tempHome();
  const pool = new FakePool({ delayMs: 50 }, (t) => {
    t.on(STATUS_SCRIPT, () => ({ stdout: captured(t.name) }));
  });
  const h = await collectHealth(TABLE, { transport: pool.transport, env });
  assert.equal(h.healthy, true, JSON.stringify(h.problems));
  assert.equal(pool.stats.maxActive, 4, 'all four hosts at once');
  assert.deepEqual(
    Object.fromEntries([...pool.hosts].map(([alias, t]) => [alias, t.execs.map((e) => [STATUS_SCRIPT.test(e.script) ? 'status script' : e.script, e.sudo])])),
    { db_primary: [['status script', true]], db_standby: [['status script', true]], lb: [['status script', true]], app1: [['true', false]] },
  );
  assert.deepEqual(h.vips[0]!.holders, ['db_primary']);
  assert.deepEqual(h.hosts.map((x) => [x.alias, x.reachable]), [['db_primary', true], ['db_standby', true], ['app1', true], ['lb', true]]);
  assert.ok(h.hosts.every((x) => typeof x.latencyMs === 'number'));
  assert.equal(h.lock, null);
  assert.equal(h.lastRun, null);
});

test('a hung host costs its deadline, not more, and is named; a refused connection and a refused sudo are named too', async () => {
  const { env } = tempHome();
  const pool = new FakePool({}, (t) => {
    if (t.name === 'lb') t.on(STATUS_SCRIPT, { delayMs: 2500, stdout: captured('lb') });
    else if (t.name === 'app1') t.on(/^true$/, () => Promise.reject(new TransportError('app1', 'sudo', 'sudo -n asks for a password', 'allow NOPASSWD sudo')));
    else t.on(STATUS_SCRIPT, () => ({ stdout: captured(t.name) }));
  });
  const dead = new FakePool({ connectError: new TransportError('db_standby', 'unreachable', 'cannot connect to 198.18.0.12:22: connection refused', 'check that sshd runs') });
  const t0 = Date.now();
  const h = await collectHealth(TABLE, {
    transport: (host) => (host.alias === 'db_standby' ? dead.transport(host) : pool.transport(host)),
    hostDeadlineMs: 400,
    env,
  });
  const ms = Date.now() - t0;
  assert.ok(ms < 2000, `took ${ms} ms with a 400 ms deadline`);
  const by = Object.fromEntries(h.hosts.map((x) => [x.alias, x]));
  assert.deepEqual(by.lb, { alias: 'lb', address: '198.18.0.13', reachable: true, error: 'no answer within 0.4 s (connected, but the checks hung)' });
  assert.equal(pool.get('lb').closed, true, 'the hung connection is dropped so the next refresh dials again');
  assert.deepEqual(by.db_standby, { alias: 'db_standby', address: '198.18.0.12', reachable: false, error: 'cannot connect to 198.18.0.12:22: connection refused (check that sshd runs)' });
  assert.equal(by.app1!.reachable, true);
  assert.equal(by.app1!.error, 'sudo -n asks for a password (allow NOPASSWD sudo)');
  assert.equal(by.db_primary!.error, undefined);
  assert.deepEqual(
    h.problems.filter((p) => p.service === 'ssh').map((p) => p.host),
    ['db_standby', 'app1', 'lb'],
  );
  // What could be asked is still reported: db_primary is the primary and holds the VIP.
  assert.equal(h.postgres!.nodes[0]!.role, 'primary');
  assert.deepEqual(h.vips[0]!.holders, ['db_primary']);
  assert.deepEqual(h.vips[0]!.unknown, ['db_standby']);
  assert.equal(h.haproxy![0]!.error, 'no answer');
});

test('the run lock and the last run come from the state directory, with the step a failed run stopped at', async () => {
  const { env } = tempHome();
  const dir = clusterDir(TABLE.cluster, env);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'lock'), JSON.stringify({ pid: 2 ** 22 + 12345, hostname: 'jump', startedAt: '2026-11-22T04:00:00.000Z', command: 'apply' }));
  writeFileSync(
    join(dir, 'checkpoints.json'),
    JSON.stringify({
      version: 1,
      steps: { 'keepalived.config': { db_primary: { status: 'failed', inputHash: 'x', finishedAt: '2026-11-22T04:01:00.000Z', changed: false, runId: 'r1' } } },
      lastRun: { runId: 'r1', ok: false, finishedAt: '2026-11-22T04:01:00.000Z', failed: { stepId: 'keepalived.config', hosts: ['db_primary'] } },
    }),
  );
  const pool = new FakePool({}, (t) => t.on(STATUS_SCRIPT, () => ({ stdout: captured(t.name) })));
  const h = await collectHealth(TABLE, { transport: pool.transport, env });
  assert.deepEqual(h.lock, { pid: 2 ** 22 + 12345, hostname: 'jump', startedAt: '2026-11-22T04:00:00.000Z', command: 'apply', alive: false });
  assert.equal(h.lastRun!.ok, false);
  assert.deepEqual(h.resumeAt, { runbookId: 'keepalived', stepId: 'keepalived.config', hosts: ['db_primary'], runId: 'r1' });
});
