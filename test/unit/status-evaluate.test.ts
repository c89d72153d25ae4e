/**
 * From the hosts' answers (captured in the lab, test/fixtures/status/) to the cluster's health:
 * VIP holders, PostgreSQL roles and replication, the fence, HAProxy's backends, NFS, and the
 * problems named with their fix; then the plain view of the same.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { evaluate, serverResolver, type HostProbe } from '../../source/status/evaluate.js';
import { splitSections } from '../../source/status/parse.js';
import { statusPlan } from '../../source/status/scripts.js';
import { renderHealth } from '../../source/status/render.js';
import type { Inventory } from '../../source/inventory/types.js';

/** The tables the fixtures were captured with. */
const DB_TABLE: Inventory = {
  cluster: 'st-db',
  topology: 'lb',
  partial: true,
  servers: { db_primary: '198.18.0.11', db_standby: '198.18.0.12', lb: '198.18.0.13', app1: '198.18.0.14', db_vip: '198.18.0.100' },
  ssh: {},
  options: { postgres: { version: 15, dbViaHaproxy: true } },
};
const NFS_TABLE: Inventory = {
  cluster: 'st-nfs',
  topology: 'lb',
  partial: true,
  servers: { nfs_primary: '198.18.0.11', nfs_standby: '198.18.0.12', app1: '198.18.0.13', app2: '198.18.0.14', nfs_vip: '198.18.0.101' },
  ssh: {},
  options: { nfs: { server: 'ganesha', exportDir: '/srv/nfs', mountClients: false } },
};

function fixtureOutput(scenario: string, host: string): string | null {
  const url = new URL(`../../../test/fixtures/status/${scenario}/${host}.txt`, import.meta.url);
  return existsSync(url) ? readFileSync(url, 'utf8') : null;
}

function probes(scenario: string, inv: Inventory, override: Record<string, HostProbe> = {}): Record<string, HostProbe> {
  const out: Record<string, HostProbe> = {};
  for (const [alias, address] of Object.entries(inv.servers)) {
    if (alias.endsWith('_vip')) continue;
    const text = fixtureOutput(scenario, alias);
    out[alias] = override[alias] ?? { reach: { alias, address, reachable: true, latencyMs: 20 }, sections: text === null ? {} : splitSections(text) };
  }
  return out;
}

const local = { lock: null, lastRun: null, resumeAt: null };
const at = new Date('2026-11-22T04:10:20.000Z');
const run = (scenario: string, inv: Inventory, override?: Record<string, HostProbe>) => evaluate(inv, statusPlan(inv), probes(scenario, inv, override), local, at, 300);

test('db-healthy: VIP on db_primary, db_standby streaming with its lag, keepalived active, HAProxy routes to the primary; no problem', () => {
  const h = run('db-healthy', DB_TABLE);
  assert.deepEqual(h.problems, []);
  assert.equal(h.healthy, true);
  assert.deepEqual(h.vips, [{ alias: 'db_vip', address: '198.18.0.100', pair: ['db_primary', 'db_standby'], holders: ['db_primary'], deployed: true, unknown: [] }]);
  assert.equal(h.postgres!.primary, 'db_primary');
  assert.deepEqual(h.postgres!.replication, [
    { standby: 'db_standby', primary: 'db_primary', state: 'streaming', syncState: 'async', receiver: 'streaming', lagBytes: 0, lagSeconds: 0.019, writeLagSeconds: 0.017, flushLagSeconds: 0.019, replayLagSeconds: 0.019 },
  ]);
  assert.equal(h.postgres!.nodes[0]!.replication[0]!.host, 'db_standby');
  assert.deepEqual(h.keepalived!.map((k) => [k.host, k.pair, k.deployed, k.active]), [['db_primary', 'db', true, 'active'], ['db_standby', 'db', true, 'active']]);
  assert.equal(h.haproxy!.length, 1);
  assert.deepEqual(h.haproxy![0]!.proxies.map((p) => p.servers.map((s) => `${s.host}:${s.state}`)), [['app1:up'], ['db_primary:up', 'db_standby:down']]);
  assert.equal(h.nfs, null);
  assert.equal(h.schema, 1);
});

test('db-failover: VIP on db_standby, which is the primary on timeline 2; db_primary down and fenced; the problems name the fix', () => {
  const h = run('db-failover', DB_TABLE);
  assert.equal(h.healthy, false);
  assert.deepEqual(h.vips[0]!.holders, ['db_standby']);
  assert.equal(h.postgres!.primary, 'db_standby');
  const old = h.postgres!.nodes.find((n) => n.host === 'db_primary')!;
  assert.deepEqual([old.state, old.role, old.fence!.fenced, old.unitState], ['down', null, true, 'inactive']);
  assert.deepEqual(
    h.problems.map((p) => [p.service, p.host, p.message, p.fix]),
    [
      ['postgres', 'db_primary', 'PostgreSQL is down on db_primary (fenced by keepalived after a failover: it may start only as a standby)', 'ha-setup rejoin db (makes db_primary a standby of db_standby)'],
      ['postgres', undefined, 'no standby streams from db_standby: a failure of db_standby now loses the database', 'ha-setup rejoin db'],
    ],
  );
  assert.match(h.notes[0]!.message, /db_standby is the writable primary since a failover/);
  // HAProxy already follows: db_standby UP, db_primary DOWN (no problem of its own).
  assert.deepEqual(h.haproxy![0]!.proxies[1]!.servers.map((s) => `${s.host}:${s.state}`), ['db_primary:down', 'db_standby:up']);
});

test('app-down: the app server DOWN in HAProxy, with the app port to check', () => {
  const h = run('app-down', DB_TABLE);
  assert.deepEqual(
    h.problems.map((p) => [p.service, p.host, p.message, p.fix]),
    [
      ['haproxy', 'lb', 'HAProxy backend app: app1 is DOWN (L4CON, for 4 s)', 'check that the app on app1 answers on port 8181'],
      ['haproxy', 'lb', 'HAProxy backend app has no server UP: requests to it fail', undefined],
    ],
  );
});

test('a split brain, a VIP on the wrong node, HAProxy routing to the old primary: each named', () => {
  // db_standby answers as in the failover (primary, VIP) while db_primary still answers as before.
  const p = probes('db-healthy', DB_TABLE);
  const promoted = probes('db-failover', DB_TABLE).db_standby!;
  const h = evaluate(DB_TABLE, statusPlan(DB_TABLE), { ...p, db_standby: promoted }, local, at, 1);
  const msgs = h.problems.map((x) => x.message);
  assert.ok(msgs.includes('db_vip 198.18.0.100 is on both db_primary and db_standby (split brain: clients reach either)'), msgs.join('\n'));
  assert.ok(msgs.some((m) => /^two writable primaries: db_primary \(timeline 1\) and db_standby \(timeline 2\)/.test(m)), msgs.join('\n'));
  assert.equal(h.postgres!.primary, null);

  // The VIP still on db_primary while db_standby is the only primary, and HAProxy not yet following.
  const q = probes('db-failover', DB_TABLE);
  const stale = { ...q, db_primary: { ...q.db_primary!, sections: { ...q.db_primary!.sections!, ip: p.db_primary!.sections!.ip! } }, db_standby: { ...q.db_standby!, sections: { ...q.db_standby!.sections!, ip: p.db_standby!.sections!.ip! } }, lb: p.lb! };
  const s = evaluate(DB_TABLE, statusPlan(DB_TABLE), stale, local, at, 1);
  const smsgs = s.problems.map((x) => x.message);
  assert.ok(smsgs.includes('db_vip is on db_primary, but the writable primary is db_standby: writes through the VIP fail'), smsgs.join('\n'));
  assert.ok(smsgs.some((m) => /^HAProxy routes the database to db_primary, but the writable primary is db_standby/.test(m)), smsgs.join('\n'));
});

test('unreachable and hung hosts: named once as SSH problems, their services unknown, not guessed', () => {
  const h = run('db-healthy', DB_TABLE, {
    db_standby: { reach: { alias: 'db_standby', address: '198.18.0.12', reachable: false, error: 'no SSH answer within 12 s' }, sections: null },
  });
  assert.deepEqual(h.problems.map((p) => [p.service, p.message]), [['ssh', 'db_standby (198.18.0.12) is unreachable: no SSH answer within 12 s']]);
  assert.deepEqual(h.vips[0]!.unknown, ['db_standby']);
  const s = h.postgres!.nodes.find((n) => n.host === 'db_standby')!;
  assert.deepEqual([s.state, s.error], ['unknown', 'host unreachable']);
  // A script cut off by its time limit (no end marker).
  const text = fixtureOutput('db-healthy', 'lb')!;
  const cut = run('db-healthy', DB_TABLE, { lb: { reach: { alias: 'lb', address: '198.18.0.13', reachable: true, latencyMs: 8000 }, sections: splitSections(text.slice(0, text.indexOf('@@ha-status haproxy-stats'))) } });
  assert.ok(cut.problems.some((p) => p.service === 'ssh' && p.host === 'lb' && /did not finish in time/.test(p.message)));
  assert.ok(cut.problems.some((p) => p.service === 'haproxy' && /no statistics/.test(p.message)));
});

test('a table whose services are not set up yet: notes, not problems', () => {
  const none = (alias: string, body: string): HostProbe => ({ reach: { alias, address: '198.18.0.1', reachable: true, latencyMs: 5 }, sections: splitSections(`${body}\n@@ha-status end\n`) });
  const pgMissing = '@@ha-status pg\nUNIT=postgresql@15-main\nUNIT_STATE=inactive\nINSTALLED=no\nPOSTMASTER=no\nERROR=runuser: failed to execute /usr/lib/postgresql/15/bin/psql: No such file or directory\n@@ha-status pg-ha\nINSTALLED=no';
  const ip = (a: string) => `@@ha-status ip\n2: eth0    inet ${a}/24 brd 198.18.0.255 scope global eth0\n@@ha-status keepalived\nCONFIGURED=no\nACTIVE=inactive\nENABLED=`;
  const h = evaluate(
    DB_TABLE,
    statusPlan(DB_TABLE),
    {
      db_primary: none('db_primary', `${ip('198.18.0.11')}\n${pgMissing}`),
      db_standby: none('db_standby', `${ip('198.18.0.12')}\n${pgMissing}`),
      lb: none('lb', '@@ha-status haproxy\nINSTALLED=no\nMANAGED=no\nACTIVE=inactive\n@@ha-status haproxy-stats\nSOURCE=stats-page\nERROR=no stats auth line in the config'),
      app1: { reach: { alias: 'app1', address: '198.18.0.14', reachable: true, latencyMs: 5 }, sections: {} },
    },
    local,
    at,
    1,
  );
  assert.deepEqual(h.problems, []);
  assert.equal(h.healthy, true);
  assert.deepEqual(h.notes.map((n) => n.fix), ['ha-setup apply --runbook keepalived', 'ha-setup apply', 'ha-setup apply --runbook haproxy']);
});

test('NFS: healthy pair, a failover (problem named, export still reachable), both down (the VIP is the problem, clients time out)', () => {
  const ok = run('nfs-healthy', NFS_TABLE);
  assert.deepEqual(ok.problems, []);
  assert.deepEqual(ok.vips[0]!.holders, ['nfs_primary']);
  assert.deepEqual(ok.nfs!.servers.map((s) => [s.host, s.active, s.listening, s.replicationTimer]), [['nfs_primary', 'active', true, 'active'], ['nfs_standby', 'active', true, 'active']]);
  assert.deepEqual(ok.nfs!.clients.map((c) => [c.host, c.method, c.ok]), [['app1', 'nfs-ls', true], ['app2', 'nfs-ls', true]]);
  assert.equal(ok.postgres, null);
  assert.equal(ok.haproxy, null, 'no lb in this table');

  const f = run('nfs-failover', NFS_TABLE);
  assert.deepEqual(f.vips[0]!.holders, ['nfs_standby']);
  assert.deepEqual(f.problems.map((p) => [p.host, p.message, p.fix]), [['nfs_primary', 'nfs-ganesha is inactive on nfs_primary', 'systemctl start nfs-ganesha on nfs_primary (see journalctl -u nfs-ganesha)']]);
  assert.ok(f.nfs!.clients.every((c) => c.ok));

  const d = run('nfs-down', NFS_TABLE);
  assert.deepEqual(d.vips[0]!.holders, []);
  assert.deepEqual(d.problems.map((p) => p.message), [
    'nfs_vip 198.18.0.101 is held by no host: clients cannot reach the NFS share through it',
    'nfs-ganesha is inactive on nfs_primary',
    'nfs-ganesha is inactive on nfs_standby',
  ]);
  assert.deepEqual(d.nfs!.clients.map((c) => [c.ok, c.detail]), [[false, 'no answer within the time limit'], [false, 'no answer within the time limit']]);
});

test('HAProxy server names map to the table: app aliases, db1/db2 in table order; addresses win when HAProxy shows them', () => {
  const r = serverResolver(DB_TABLE);
  assert.equal(r('app1', null), 'app1');
  assert.equal(r('db1', null), 'db_primary');
  assert.equal(r('db2', null), 'db_standby');
  assert.equal(r('app7', null), null);
  assert.equal(r('whatever', '198.18.0.12'), 'db_standby');
});

test('the plain view: a block per service, ✗ on what is wrong, the problems with their fix, the exit code said', () => {
  const text = renderHealth(run('db-failover', DB_TABLE));
  assert.equal(
    text,
    [
      'Cluster st-db (topology lb)  checked 2026-11-22 04:10:20Z in 0.3 s',
      'No run yet: ha-setup plan shows what apply would do.',
      '',
      'Hosts',
      '  ✓ db_primary  198.18.0.11      answered in 20 ms',
      '  ✓ db_standby  198.18.0.12      answered in 20 ms',
      '  ✓ lb          198.18.0.13      answered in 20 ms',
      '  ✓ app1        198.18.0.14      answered in 20 ms',
      '',
      'Virtual IPs',
      '  ✓ db_vip      198.18.0.100     on db_standby',
      '',
      'PostgreSQL',
      '  ✗ db_primary  198.18.0.11      DOWN, FENCED (postgresql@15-main inactive)',
      '  ✓ db_standby  198.18.0.12      primary, timeline 2, no standby connected, health service active',
      '',
      'keepalived',
      '  ✓ db_primary  active  check: FAIL: fenced, PostgreSQL stopped',
      '  ✓ db_standby  active  check: ok: writable primary on timeline 2',
      '',
      'HAProxy on lb (stats page)',
      '  app',
      '    ✓ app1         UP (L4OK, 13 s)',
      '  postgres (database routing: only the writable primary is UP)',
      '    · db1 (db_primary)  DOWN (L7STS, 5 s) (not the writable primary: expected)',
      '    ✓ db2 (db_standby)  UP (L7OK, 7 s)',
      '',
      'Problems (2)',
      '  ✗ PostgreSQL is down on db_primary (fenced by keepalived after a failover: it may start only as a standby)',
      '      fix: ha-setup rejoin db (makes db_primary a standby of db_standby)',
      '  ✗ no standby streams from db_standby: a failure of db_standby now loses the database',
      '      fix: ha-setup rejoin db',
      'Notes',
      '  · db_standby is the writable primary since a failover (the table still names db_primary as the primary)',
      '      once db_primary is a standby again (ha-setup rejoin db), swap db_primary and db_standby in the table',
      '2 problems found (exit code 1).',
      '',
    ].join('\n'),
  );
  const colored = renderHealth(run('db-failover', DB_TABLE), { color: true });
  assert.match(colored, /\x1b\[31m✗\x1b\[0m PostgreSQL is down on db_primary/);
  assert.match(renderHealth(run('nfs-down', NFS_TABLE)), /^ {2}✗ app1 {9}export NOT reachable \(nfs-ls: no answer within the time limit\)$/m);
});
