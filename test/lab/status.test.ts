/**
 * `ha-setup status` against real servers (4-host lab, this test's own table): db_primary .11,
 * db_standby .12, db_vip .100, lb .13 (HAProxy: the app backend and the database routing of
 * topology C), app1 .14 (a stand-in TLS app on 8181, test/fixtures/haproxy/standin-tls.py).
 * The PostgreSQL runbooks, keepalived, haproxy and db-routing are applied through the CLI; then
 * `status --json` (the real CLI, over SSH) is asserted against the servers' state:
 *  - healthy: the VIP on db_primary, db_standby a streaming standby with its lag in bytes and
 *    seconds, keepalived active on both, HAProxy's app backend UP and the database routed to
 *    db_primary only; exit code 0;
 *  - PostgreSQL stopped on db_primary (lab fault): after keepalived's failover, the VIP on
 *    db_standby, db_standby the primary, db_primary down and fenced, HAProxy routing the database
 *    to db_standby, exit code 1 with the problem named and its fix (ha-setup rejoin db);
 *  - a frozen host (app1) does not stall the view: status answers within its deadline and
 *    reports that host alone as unreachable.
 * NFS is not in this lab (it would need 4 more hosts): its parsing and evaluation are tested
 * with output captured from a ganesha lab (test/unit/status-*.test.ts, test/fixtures/status/).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useLab, type Lab, writeLabTable } from '../helpers/lab.js';
import { fault } from '../../source/lab/index.js';
import type { ClusterHealth } from '../../source/status/types.js';

const fixture = useLab({ hosts: 4 });
const VIP = '198.18.0.100';
const RUNBOOKS = 'facts,os-prep,pg-primary,pg-ssl,pg-users,pg-standby,keepalived,haproxy,db-routing';
const STANDIN = readFileSync(new URL('../../../test/fixtures/haproxy/standin-tls.py', import.meta.url), 'utf8');
/** This test's roles on the lab's hosts (the lab names them by its own default table). */
const AT = { db_primary: 'db_primary', db_standby: 'db_standby', lb: 'nfs_primary', app1: 'nfs_standby' } as const;

let tableFile: string | undefined;
function table(lab: Lab): string {
  if (tableFile) return tableFile;
  lab.env.HA_SETUP_HOME ??= mkdtempSync(join(tmpdir(), 'ha-status-home-'));
  tableFile = writeLabTable(lab, join(lab.info.dir, 'status.yaml'), {
    cluster: 'status-lab',
    servers: { ...Object.fromEntries(Object.entries(AT).map(([role, h]) => [role, lab.host(h).address])), db_vip: VIP },
    network: true,
    options: { postgres: { version: 15, dbViaHaproxy: true }, haproxy: { appCheckInter: '500ms', appCheckFall: 2, appCheckRise: 2 } },
  });
  return tableFile;
}

async function status(lab: Lab): Promise<{ code: number; health: ClusterHealth; ms: number; stderr: string }> {
  const r = await lab.cli(['status', '--config', table(lab), '--json']);
  assert.ok(r.code === 0 || r.code === 1, `status exit ${r.code}: ${r.stderr}`);
  return { code: r.code, health: JSON.parse(r.stdout) as ClusterHealth, ms: r.ms, stderr: r.stderr };
}

async function until<T>(what: string, ms: number, fn: () => Promise<T | undefined | false>): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

const problems = (h: ClusterHealth): string => h.problems.map((p) => `${p.message}${p.fix ? ` [fix: ${p.fix}]` : ''}`).join('\n');
const node = (h: ClusterHealth, host: string) => h.postgres!.nodes.find((n) => n.host === host)!;
const lbStatus = (h: ClusterHealth) => h.haproxy!.find((x) => x.host === 'lb')!;
const dbRoute = (h: ClusterHealth) =>
  Object.fromEntries(lbStatus(h).proxies.find((p) => p.kind === 'db')!.servers.map((s) => [s.host, s.state]));

test('status: healthy stack, then a failover, then a frozen host', { timeout: 600_000 }, async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  const cfg = table(lab);
  // Each lab host recreates its PostgreSQL cluster on first boot: wait for it (as haproxy-db.test.ts does).
  await Promise.all(['db_primary', 'db_standby'].map((h) => lab.sh(h, 'for i in $(seq 1 150); do [ -f /var/lib/ha-lab/pg-identity-done ] && exit 0; sleep 0.2; done; echo "first-boot cluster not ready" >&2; exit 1')));
  await lab.sh(
    AT.app1,
    [
      'set -e',
      'mkdir -p /opt/standin && cd /opt/standin',
      `cat > standin.py <<'PYEOF'\n${STANDIN}PYEOF`,
      'openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=app1 -days 2 -keyout key.pem -out cert.pem 2>/dev/null',
      'systemd-run --unit=standin-tls --collect python3 /opt/standin/standin.py app1 8181 /opt/standin/cert.pem /opt/standin/key.pem',
      'for i in $(seq 1 50); do ss -Hltn "sport = :8181" | grep -q . && exit 0; sleep 0.1; done; echo "stand-in did not listen" >&2; exit 1',
    ].join('\n'),
  );
  const applied = await lab.cli(['apply', '--config', cfg, '--yes', '--runbook', RUNBOOKS]);
  assert.equal(applied.code, 0, `${applied.stdout}\n${applied.stderr}`);
  t.diagnostic(`apply ${RUNBOOKS}: ${(applied.ms / 1000).toFixed(1)} s`);

  // 1. Healthy. HAProxy needs a few checks (rise 2 x inter 3 s) before the database backend is UP.
  const healthy = await until('status to report a healthy stack', 30_000, async () => {
    const s = await status(lab);
    return s.code === 0 ? s : undefined;
  }).catch(async (e: Error) => {
    const s = await status(lab);
    throw new Error(`${e.message}\nproblems:\n${problems(s.health)}`);
  });
  const h = healthy.health;
  t.diagnostic(`status --json: ${healthy.ms} ms`);
  assert.equal(h.healthy, true);
  assert.deepEqual(h.problems, []);
  assert.deepEqual(h.vips.map((v) => [v.alias, v.holders]), [['db_vip', ['db_primary']]]);
  // ...as the servers say it.
  assert.match(await lab.sh('db_primary', `ip -o addr show | grep -F ' ${VIP}/'`), /host0/);
  assert.equal(h.postgres!.primary, 'db_primary');
  const p = node(h, 'db_primary');
  const s = node(h, 'db_standby');
  assert.deepEqual([p.state, p.role, p.timeline, p.fence?.fenced], ['running', 'primary', 1, false]);
  assert.deepEqual([s.state, s.role, s.standby?.receiver], ['running', 'standby', 'streaming']);
  const link = h.postgres!.replication.find((r) => r.standby === 'db_standby')!;
  assert.equal(link.primary, 'db_primary');
  assert.equal(link.state, 'streaming');
  assert.equal(link.syncState, 'async');
  assert.equal(typeof link.lagBytes, 'number');
  assert.equal(typeof link.lagSeconds, 'number');
  assert.equal(p.replication[0]?.host, 'db_standby');
  const onServer = (await lab.sh('db_primary', `cd / && runuser -u postgres -- psql -X -At -c "select state, sync_state from pg_stat_replication"`)).trim();
  assert.equal(onServer, 'streaming|async');
  assert.deepEqual(h.keepalived!.map((k) => [k.host, k.deployed, k.active]), [['db_primary', true, 'active'], ['db_standby', true, 'active']]);
  const lb = lbStatus(h);
  assert.equal(lb.source, 'stats-page');
  assert.deepEqual(lb.proxies.find((x) => x.kind === 'app')!.servers.map((x) => [x.host, x.state]), [['app1', 'up']]);
  assert.deepEqual(dbRoute(h), { db_primary: 'up', db_standby: 'down' });
  // The stats password (read on the lb from haproxy.cfg) is in no output.
  const secrets = JSON.parse(readFileSync(join(lab.env.HA_SETUP_HOME!, 'clusters/status-lab/secrets.json'), 'utf8')) as { secrets: Record<string, string> };
  const pw = secrets.secrets['haproxy.stats']!;
  assert.ok(pw.length >= 8);
  const plain = await lab.cli(['status', '--config', cfg]);
  assert.equal(plain.code, 0, plain.stdout);
  assert.match(plain.stdout, /^PostgreSQL$/m);
  assert.match(plain.stdout, /db_standby +198\.18\.0\.12 +standby, timeline 1, streaming from db_primary \(async\), lag /);
  assert.match(plain.stdout, /Healthy: no problem found\./);
  for (const out of [plain.stdout, plain.stderr, JSON.stringify(h)]) assert.ok(!out.includes(pw), 'the stats password is in the output');

  // 2. PostgreSQL stops on the primary: keepalived moves the VIP, the standby is promoted.
  const t0 = Date.now();
  await fault('db_primary', 'stop-service', 'postgresql@15-main', { env: lab.env });
  const after = await until('status to show db_standby as the primary holding the VIP, HAProxy following', 60_000, async () => {
    const r = await status(lab);
    const x = r.health;
    const moved = x.vips[0]!.holders.join() === 'db_standby' && x.postgres!.primary === 'db_standby' && dbRoute(x).db_standby === 'up' && dbRoute(x).db_primary === 'down';
    return moved ? r : undefined;
  });
  t.diagnostic(`status showed the failover ${((Date.now() - t0) / 1000).toFixed(1)} s after PostgreSQL stopped`);
  const f = after.health;
  assert.equal(after.code, 1, 'a problem was found');
  assert.equal(f.healthy, false);
  const old = node(f, 'db_primary');
  assert.equal(old.state, 'down');
  assert.equal(old.fence?.fenced, true, 'db_primary is fenced');
  assert.equal(node(f, 'db_standby').role, 'primary');
  assert.equal(node(f, 'db_standby').timeline, 2);
  // ...as the servers say it.
  assert.match(await lab.sh('db_standby', `ip -o addr show | grep -F ' ${VIP}/'`), /host0/);
  assert.equal((await lab.sh('db_primary', 'systemctl is-active postgresql@15-main || true')).trim(), 'inactive');
  assert.match(await lab.sh('db_primary', '/usr/local/lib/ha-setup/keepalived/pg-ha status'), /^FENCED=yes$/m);
  const down = f.problems.find((x) => x.service === 'postgres' && x.host === 'db_primary');
  assert.ok(down, problems(f));
  assert.match(down.message, /PostgreSQL is down on db_primary \(fenced by keepalived/);
  assert.match(down.fix ?? '', /ha-setup rejoin db/);
  assert.ok(f.problems.some((x) => /no standby streams from db_standby/.test(x.message)), problems(f));
  const plainAfter = await lab.cli(['status', '--config', cfg]);
  assert.equal(plainAfter.code, 1);
  assert.match(plainAfter.stdout, /db_vip +198\.18\.0\.100 +on db_standby/);
  assert.match(plainAfter.stdout, /✗ PostgreSQL is down on db_primary/);
  assert.match(plainAfter.stdout, /fix: ha-setup rejoin db/);

  // 3. A frozen host: the others are reported, that one alone is unreachable, within the deadline.
  await fault(AT.app1, 'freeze', undefined, { env: lab.env });
  try {
    const frozen = await status(lab);
    t.diagnostic(`status with app1 frozen: ${frozen.ms} ms`);
    assert.ok(frozen.ms < 25_000, `${frozen.ms} ms`);
    const byHost = Object.fromEntries(frozen.health.hosts.map((x) => [x.alias, x]));
    assert.equal(byHost.app1!.reachable === false || Boolean(byHost.app1!.error), true, JSON.stringify(byHost.app1));
    for (const x of ['db_primary', 'db_standby', 'lb']) assert.equal(byHost[x]!.reachable && !byHost[x]!.error, true, `${x}: ${JSON.stringify(byHost[x])}`);
    assert.equal(node(frozen.health, 'db_standby').role, 'primary');
    assert.ok(frozen.health.problems.some((x) => x.service === 'ssh' && x.host === 'app1'), problems(frozen.health));
  } finally {
    await fault(AT.app1, 'thaw', undefined, { env: lab.env });
  }
});
