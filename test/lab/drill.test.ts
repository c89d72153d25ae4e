/**
 * `ha-setup drill db` on a real DB pair in the lab (3 hosts: the pair, and 198.18.0.13 as app1,
 * where the probe runs): stop-postgres and cut-link through the lab's fault injection, then
 * stop-keepalived through the SSH fault path that real servers use, each followed by
 * `ha-setup rejoin db`. The report's figures are printed as test diagnostics; what the report
 * claims (who holds the VIP, which server is the primary, that the new primary takes writes, that
 * the old one takes none) is checked again on the servers with OpenSSH.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useLab, type Lab, writeLabTable } from '../helpers/lab.js';
import type { DrillReport } from '../../source/drill/run.js';
import { runDrill } from '../../source/drill/run.js';
import { sshFaultDriver } from '../../source/drill/fault.js';
import { loadConfigFile } from '../../source/inventory/load.js';
import { createTransportPool } from '../../source/transport/connect.js';

const fixture = useLab({ hosts: 3 });
const VIP = '198.18.0.100';

/** The lab as a table; `swapped`: the roles after a failover (the lab's db_standby is the primary). */
function table(lab: Lab, replication: 'async' | 'sync' = 'async', swapped = false): string {
  lab.env.HA_SETUP_HOME ??= mkdtempSync(join(tmpdir(), 'ha-drill-home-'));
  const [p, s] = swapped ? ['db_standby', 'db_primary'] : ['db_primary', 'db_standby'];
  return writeLabTable(lab, join(lab.info.dir, `drill-${replication}${swapped ? '-swapped' : ''}.yaml`), {
    cluster: 'drill',
    servers: { db_primary: lab.host(p).address, db_standby: lab.host(s).address, db_vip: VIP, app1: lab.host('nfs_primary').address },
    options: { postgres: { version: 15, replication } },
  });
}

const holdsVip = async (lab: Lab, h: string): Promise<boolean> => (await lab.sh(h, `ip -o addr show | grep -cF ' ${VIP}/' || true`)).trim() !== '0';
const pgRole = async (lab: Lab, h: string): Promise<string> => {
  const r = await lab.ssh(h, `cd / && runuser -u postgres -- psql -X -At -c "select case when pg_is_in_recovery() then 'standby' else 'primary' end" 2>/dev/null`);
  return r.code === 0 ? r.stdout.trim() : 'down';
};
/** A write on the server itself (as postgres): the new primary must take it. */
const writes = async (lab: Lab, h: string): Promise<boolean> =>
  (await lab.ssh(h, `cd / && runuser -u postgres -- psql -X -At -v ON_ERROR_STOP=1 -c "create table if not exists drill_direct (n int); insert into drill_direct values (1)"`)).code === 0;

/** The report's claims: every check passed, the VIP and the primary on the survivor. */
function assertReport(report: DrillReport, survivor: string, target: string): void {
  assert.equal(report.target.alias, target);
  assert.deepEqual(report.after.vipHolders, [survivor]);
  assert.deepEqual(report.after.primaries, [survivor]);
  for (const c of report.checks) assert.ok(c.ok, `${c.name}: ${c.detail}`);
}

/** The same, checked on the servers themselves. */
async function assertServers(lab: Lab, survivor: string, target: string): Promise<void> {
  assert.deepEqual(await Promise.all([survivor, target].map((h) => holdsVip(lab, h))), [true, false], 'the VIP is held by exactly one server, the survivor');
  assert.equal(await pgRole(lab, survivor), 'primary');
  assert.equal(await writes(lab, survivor), true, 'the new primary accepts writes');
  assert.equal(await pgRole(lab, target), 'down', 'the old primary accepts no writes');
}

function figures(t: { diagnostic(s: string): void }, r: DrillReport): void {
  const s = (ms: number | null) => (ms === null ? 'never' : `${(ms / 1000).toFixed(2)} s`);
  t.diagnostic(`${r.fault} (${r.mode}): VIP moved ${s(r.measured.vipMovedMs)}, RTO ${s(r.measured.rtoMs)}, ${r.rpo.missing} of ${r.rpo.acknowledged} acknowledged rows lost`);
}

test('setup: the PostgreSQL pair and keepalived', { timeout: 300_000 }, async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  const r = await lab.cli(['apply', '--config', table(lab), '--yes', '--runbook', 'facts,os-prep,pg-primary,pg-ssl,pg-users,pg-standby,pg-verify,keepalived']);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.deepEqual(await Promise.all(['db_primary', 'db_standby'].map((h) => holdsVip(lab, h))), [true, false]);
});

test('drill stop-postgres (--json): RTO measured, one VIP holder afterwards, the new primary accepts writes', { timeout: 180_000 }, async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  const r = await lab.cli(['drill', 'db', '--config', table(lab), '--fault', 'stop-postgres', '--json']);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const report = JSON.parse(r.stdout) as DrillReport;
  figures(t, report);
  assert.equal(report.mode, 'lab');
  assert.equal(report.measured.failover, true);
  assert.ok(report.measured.rtoMs !== null && report.measured.rtoMs > 0 && report.measured.rtoMs < 10_000, `RTO ${report.measured.rtoMs} ms`);
  assert.ok(report.measured.vipMovedMs !== null && report.measured.vipMovedMs <= report.measured.rtoMs!);
  assert.equal(report.rpo.checkedOn, 'db_standby');
  assert.ok(report.measured.acknowledged > 20 && report.rpo.missing !== null);
  assert.ok(report.decisions.some((d) => d.host === 'db_standby' && /^PROMOTED in \d+ ms/.test(d.message)), 'the promotion is in the journal');
  assertReport(report, 'db_standby', 'db_primary');
  await assertServers(lab, 'db_standby', 'db_primary');
  // The probe's rows and table are gone from the app database.
  const left = await lab.sh('db_standby', `cd / && runuser -u postgres -- psql -X -At -d lunadirectordb -c "select count(*) from pg_tables where tablename = 'ha_setup_drill'"`);
  assert.equal(left.trim(), '0');
});

test('rejoin, then drill cut-link (plain report): the failover goes the other way', { timeout: 240_000 }, async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  const rj = await lab.cli(['rejoin', 'db', '--config', table(lab), '--yes']);
  assert.equal(rj.code, 0, `${rj.stdout}\n${rj.stderr}`);
  assert.equal(await pgRole(lab, 'db_primary'), 'standby');
  const r = await lab.cli(['drill', 'db', '--config', table(lab), '--fault', 'cut-link']);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const rto = /writes succeed again \(RTO\) after\s+(\d+\.\d\d) s/.exec(r.stdout);
  assert.ok(rto, r.stdout);
  t.diagnostic(`cut-link (lab): RTO ${rto[1]} s`);
  assert.match(r.stdout, /VIP held by\s+db_primary \(198\.18\.0\.11\)/);
  assert.match(r.stdout, /^drill passed$/m);
  // The link came back (the drill restores it): the old primary is reachable, stopped and fenced.
  assert.match(await lab.sh('db_standby', '/usr/local/lib/ha-setup/keepalived/pg-ha status'), /POSTGRES=down\nVIP=no\nFENCED=yes/);
  assert.doesNotMatch(r.stdout, /^ {4}FAIL {2}/m, 'no failed check');
  await assertServers(lab, 'db_primary', 'db_standby');
});

test('the real-server path: stop-keepalived injected over SSH (not through the lab)', { timeout: 240_000 }, async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  const rj = await lab.cli(['rejoin', 'db', '--config', table(lab), '--yes']);
  assert.equal(rj.code, 0, `${rj.stdout}\n${rj.stderr}`);
  const inventory = loadConfigFile(table(lab));
  const pool = createTransportPool(inventory.ssh, { env: lab.env });
  try {
    const report = await runDrill({
      inventory,
      fault: 'stop-keepalived',
      env: lab.env,
      transport: (h) => pool.get(h),
      driver: (target, transport) => sshFaultDriver(target, transport, 36),
      log: (l) => t.diagnostic(l),
    });
    figures(t, report);
    assert.equal(report.mode, 'ssh');
    assert.equal(report.undone, 'db_primary: keepalived started again');
    assertReport(report, 'db_standby', 'db_primary');
    await assertServers(lab, 'db_standby', 'db_primary');
    assert.equal((await lab.sh('db_primary', 'systemctl is-active keepalived')).trim(), 'active', 'the drill started keepalived again');
  } finally {
    await pool.closeAll();
  }
});

test('sync replication: no acknowledged row lost in a cut-link failover; rejoin restores synchronous replication', { timeout: 240_000 }, async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  const rj = await lab.cli(['rejoin', 'db', '--config', table(lab), '--yes']);
  assert.equal(rj.code, 0, `${rj.stdout}\n${rj.stderr}`);
  // Switch the running pair to sync (the PostgreSQL runbooks write synchronous_standby_names = '*'),
  // with the table's roles swapped as rejoin asked: the lab's db_standby (.12) is the primary now.
  const sync = table(lab, 'sync', true);
  const ap = await lab.cli(['apply', '--config', sync, '--yes', '--runbook', 'pg-primary,pg-standby']);
  assert.equal(ap.code, 0, `${ap.stdout}\n${ap.stderr}`);
  const state = `cd / && runuser -u postgres -- psql -X -At -c 'show synchronous_standby_names' -c "select coalesce(string_agg(sync_state, ','), 'none') from pg_stat_replication"`;
  assert.equal((await lab.sh('db_standby', state)).trim(), '*\nsync', 'db_standby (the primary since the last drill) waits for its standby');
  const r = await lab.cli(['drill', 'db', '--config', sync, '--fault', 'cut-link', '--json']);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const report = JSON.parse(r.stdout) as DrillReport;
  figures(t, report);
  assert.equal(report.replication, 'sync');
  assert.equal(report.rpo.missing, 0, 'sync: every acknowledged row is on the new primary');
  assert.ok(report.checks.some((c) => c.name === 'no acknowledged row lost (sync replication)' && c.ok));
  // In the swapped table db_primary is .12 (the fault's target) and db_standby .11 (the survivor).
  assertReport(report, 'db_standby', 'db_primary');
  assert.ok(report.decisions.some((d) => /sync replication: no standby is left, so commits no longer wait/.test(d.message)), 'the promoted standby stopped waiting for the standby that is gone');
  await assertServers(lab, 'db_primary', 'db_standby');
  const back = await lab.cli(['rejoin', 'db', '--config', sync, '--yes']);
  assert.equal(back.code, 0, `${back.stdout}\n${back.stderr}`);
  assert.match(back.stderr, /synchronous replication restored on db_standby/);
  assert.equal((await lab.sh('db_primary', state)).trim(), '*\nsync');
});
