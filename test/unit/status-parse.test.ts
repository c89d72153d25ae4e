/**
 * The status parsers on output captured from the lab (test/fixtures/status/<scenario>/<host>.txt,
 * the raw stdout of the status script on that host; see test/fixtures/status/README.md):
 *   db-healthy   PostgreSQL pair + keepalived + HAProxy (app backend, database routing) on the lb
 *   db-failover  PostgreSQL stopped on db_primary; keepalived moved db_vip and promoted db_standby
 *   app-down     the app on app1 stopped (HAProxy marks it DOWN, L4CON)
 *   nfs-healthy  nfs-ganesha pair + keepalived, app1/app2 list the export through nfs_vip (nfs-ls)
 *   nfs-failover nfs-ganesha stopped on nfs_primary; nfs_vip moved to nfs_standby
 *   nfs-down     nfs-ganesha stopped on both; nfs_vip held by nobody, the export times out
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  httpBody,
  parseHaproxy,
  parseHaproxyCsv,
  parseHaproxyStats,
  parseIpAddr,
  parseKeepalived,
  parseNfsClient,
  parseNfsServer,
  parsePg,
  parsePgHa,
  splitSections,
} from '../../source/status/parse.js';

const fixture = (scenario: string, host: string) =>
  splitSections(readFileSync(new URL(`../../../test/fixtures/status/${scenario}/${host}.txt`, import.meta.url), 'utf8'));

test('ip -o addr show: the VIP as a secondary address of host0', () => {
  const addrs = parseIpAddr(fixture('db-healthy', 'db_primary').ip!);
  assert.deepEqual(
    addrs.filter((a) => a.family === 'inet'),
    [
      { iface: 'lo', family: 'inet', address: '127.0.0.1', prefix: 8 },
      { iface: 'host0', family: 'inet', address: '198.18.0.11', prefix: 24 },
      { iface: 'host0', family: 'inet', address: '198.18.0.100', prefix: 24 },
    ],
  );
  assert.ok(!parseIpAddr(fixture('db-healthy', 'db_standby').ip!).some((a) => a.address === '198.18.0.100'));
  assert.ok(parseIpAddr(fixture('db-failover', 'db_standby').ip!).some((a) => a.address === '198.18.0.100'));
});

test('keepalived: configured for the pair, active, the health check last verdict', () => {
  assert.deepEqual(parseKeepalived(fixture('db-healthy', 'db_standby').keepalived!), {
    configured: true,
    active: 'active',
    enabled: 'enabled',
    check: { ok: true, message: 'healthy standby, can take over' },
  });
  assert.deepEqual(parseKeepalived(fixture('db-failover', 'db_primary').keepalived!).check, { ok: false, message: 'fenced, PostgreSQL stopped' });
  assert.deepEqual(parseKeepalived(fixture('nfs-failover', 'nfs_primary').keepalived!).check, { ok: false, message: 'no NFS server unit is active (nfs-ganesha, nfs-server)' });
});

test('PostgreSQL primary: role, timeline, one pg_stat_replication row with lag in bytes and seconds', () => {
  const pg = parsePg(fixture('db-healthy', 'db_primary').pg!);
  assert.equal(pg.role, 'primary');
  assert.equal(pg.timeline, 1);
  assert.equal(pg.unit, 'postgresql@15-main');
  assert.equal(pg.unitState, 'active');
  assert.equal(pg.health, 'active');
  assert.equal(pg.error, null);
  assert.deepEqual(pg.replication, [
    {
      clientAddr: '198.18.0.12',
      applicationName: 'ha_198_18_0_12',
      state: 'streaming',
      syncState: 'async',
      sentLsn: '0/3000060',
      replayLsn: '0/3000060',
      lagBytes: 0,
      writeLagSeconds: 0.017,
      flushLagSeconds: 0.019,
      replayLagSeconds: 0.019,
    },
  ]);
  assert.equal(pg.standby, null);
});

test('PostgreSQL standby: receiver streaming from the primary, replay position; no replayed commit yet gives nulls', () => {
  const pg = parsePg(fixture('db-healthy', 'db_standby').pg!);
  assert.equal(pg.role, 'standby');
  assert.equal(pg.timeline, 1);
  assert.deepEqual(pg.standby, {
    receiver: 'streaming',
    senderHost: '198.18.0.11',
    receiveLsn: '0/3000060',
    replayLsn: '0/3000060',
    replayBacklogBytes: 0,
    lastReplayAt: null,
    lastReplayAgeSeconds: null,
  });
  assert.deepEqual(pg.replication, []);
});

test('PostgreSQL after the failover: the old primary down with psql error, the promoted one on timeline 2 with no standby', () => {
  const old = parsePg(fixture('db-failover', 'db_primary').pg!);
  assert.equal(old.role, null);
  assert.equal(old.postmaster, false);
  assert.equal(old.unitState, 'inactive');
  assert.match(old.error!, /connection to server on socket "\/var\/run\/postgresql\/\.s\.PGSQL\.5432" failed: No such file or directory/);
  const promoted = parsePg(fixture('db-failover', 'db_standby').pg!);
  assert.deepEqual([promoted.role, promoted.timeline, promoted.replication], ['primary', 2, []]);
});

test('pg-ha status: fenced after the failover, not before', () => {
  assert.deepEqual(parsePgHa(fixture('db-healthy', 'db_primary')['pg-ha']!), { installed: true, fenced: false, postgres: 'primary', generation: '1' });
  assert.deepEqual(parsePgHa(fixture('db-failover', 'db_primary')['pg-ha']!), { installed: true, fenced: true, postgres: 'down', generation: '0' });
  assert.deepEqual(parsePgHa('INSTALLED=no\n'), { installed: false, fenced: null, postgres: null, generation: null });
});

test("HAProxy's stats page: chunked HTTP/1.1 de-chunked, servers mapped to hosts, frontends and the stats proxy left out", () => {
  const lb = fixture('db-healthy', 'lb');
  assert.deepEqual(parseHaproxy(lb.haproxy!), { installed: true, managed: true, active: 'active' });
  const http = httpBody(lb['haproxy-stats']!)!;
  assert.equal(http.status, 200);
  assert.ok(http.body.startsWith('# pxname,svname,'));
  assert.ok(http.body.trimEnd().endsWith(','), 'no chunk sizes left in the body');
  const names: Record<string, string> = { app1: 'app1', db1: 'db_primary', db2: 'db_standby' };
  const stats = parseHaproxyStats(lb['haproxy-stats']!, (name) => names[name] ?? null);
  assert.equal(stats.source, 'stats-page');
  assert.equal(stats.error, null);
  assert.deepEqual(
    stats.proxies.map((p) => [p.name, p.kind, p.status, p.servers.map((s) => `${s.name}/${s.host}:${s.status}:${s.state}:${s.checkStatus}:${s.checkCode ?? ''}`)]),
    [
      ['app', 'app', 'UP', ['app1/app1:UP:up:L4OK:']],
      ['postgres', 'db', 'UP', ['db1/db_primary:UP:up:L7OK:200', 'db2/db_standby:DOWN:down:L7STS:503']],
    ],
  );
  const app1 = stats.proxies[0]!.servers[0]!;
  assert.equal(typeof app1.lastChangeSeconds, 'number');
  assert.equal(app1.sessions, 0);
  // The stats page hides addresses from a non-admin user: the resolver gets null.
  assert.equal(app1.address, null);
});

test('HAProxy after the failover and with the app stopped', () => {
  const after = parseHaproxyStats(fixture('db-failover', 'lb')['haproxy-stats']!);
  assert.deepEqual(after.proxies.find((p) => p.kind === 'db')!.servers.map((s) => [s.name, s.status]), [['db1', 'DOWN'], ['db2', 'UP']]);
  const down = parseHaproxyStats(fixture('app-down', 'lb')['haproxy-stats']!);
  const app = down.proxies.find((p) => p.kind === 'app')!;
  assert.equal(app.status, 'DOWN');
  assert.deepEqual(app.servers.map((s) => [s.name, s.state, s.checkStatus]), [['app1', 'down', 'L4CON']]);
});

test('HAProxy answers that are not statistics: 401, no answer, a socket with an address column', () => {
  assert.deepEqual(parseHaproxyStats('SOURCE=stats-page\nHTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n'), {
    source: 'stats-page',
    error: 'the stats page refused the password of haproxy.cfg (401)',
    proxies: [],
  });
  assert.equal(parseHaproxyStats('SOURCE=stats-page\nERROR=the stats page on 127.0.0.1:7000 did not answer (exit 3)\n').error, 'the stats page on 127.0.0.1:7000 did not answer (exit 3)');
  assert.match(parseHaproxyStats('SOURCE=socket\nPermission denied\n').error!, /no statistics in HAProxy's answer: Permission denied/);
  // The admin socket's `show stat` is the same CSV without HTTP, and shows addresses.
  const csv = '# pxname,svname,status,check_status,addr,\napp,app1,UP,L4OK,198.18.0.15:8181,\napp,app2,MAINT,,[fd00::16]:8181,\napp,BACKEND,UP,,,\n';
  const seen: (string | null)[] = [];
  const proxies = parseHaproxyCsv(csv, (_n, a) => (seen.push(a), a === '198.18.0.15' ? 'app1' : null));
  assert.deepEqual(seen, ['198.18.0.15', 'fd00::16']);
  assert.deepEqual(proxies[0]!.servers.map((s) => [s.host, s.address, s.state]), [['app1', '198.18.0.15:8181', 'up'], [null, '[fd00::16]:8181', 'maint']]);
});

test('NFS server: unit, listening on 2049, replication timer and its last pass', () => {
  const up = parseNfsServer(fixture('nfs-healthy', 'nfs_primary')['nfs-server']!);
  assert.deepEqual(up, { unit: 'nfs-ganesha', managed: true, active: 'active', listening: true, timer: 'active', lastPass: { result: 'success', secondsAgo: 7 } });
  const down = parseNfsServer(fixture('nfs-failover', 'nfs_primary')['nfs-server']!);
  assert.deepEqual([down.active, down.listening], ['inactive', false]);
  // A pass that never ran: systemd shows a zero timestamp.
  assert.equal(parseNfsServer('UNIT=nfs-ganesha\nResult=success\nExecMainExitTimestampMonotonic=0\nUPTIME=12.5\n').lastPass, null);
});

test('NFS client: the export listed through the VIP with nfs-ls, and a timeout when nobody holds the VIP', () => {
  assert.deepEqual(parseNfsClient(fixture('nfs-healthy', 'app1')['nfs-client']!, 'app1'), { host: 'app1', method: 'nfs-ls', ok: true, detail: '', mount: null });
  assert.deepEqual(parseNfsClient(fixture('nfs-down', 'app2')['nfs-client']!, 'app2'), { host: 'app2', method: 'nfs-ls', ok: false, detail: 'no answer within the time limit', mount: null });
  assert.deepEqual(parseNfsClient('MOUNT_SOURCE=198.18.0.101:/srv/nfs\nMOUNT_OK=no\nMETHOD=showmount\nEXIT=1\nDETAIL=/srv/nfs is not in the export list: /other *\n', 'app1'), {
    host: 'app1',
    method: 'showmount',
    ok: false,
    detail: '/srv/nfs is not in the export list: /other *',
    mount: { source: '198.18.0.101:/srv/nfs', ok: false },
  });
});
