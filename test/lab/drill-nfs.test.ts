/**
 * `ha-setup drill nfs` on a real NFS pair in the lab: 4 hosts re-mapped by this test's table
 * (nfs_primary .11, nfs_standby .12, app1 .13, app2 .14, nfs_vip .101), nfs-ganesha set up by
 * the nfs runbook (replication every 15 s, the option's minimum) and the NFS VIP by the
 * keepalived runbook, as in keepalived-nfs.test.ts. Then the drill through the real CLI:
 * stop-nfs (--json) on nfs_primary, cut-link (plain report) on nfs_standby, which holds the VIP
 * after the first drill, and freeze (--json) on nfs_primary, which holds it after the second.
 * The lab cannot mount NFS, so the probe on app1 writes with nfs-cp.
 *
 * What the report claims is checked again on the servers with OpenSSH: the VIP on exactly one
 * server, the survivor serving the share (app2 writes and reads a file through the VIP, and the
 * file is in the survivor's export directory), a file written through the VIP well over one
 * replication interval before the fault present on the survivor, the fault undone, and none of
 * the drill's files left on either server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useLab, type Lab, writeLabTable } from '../helpers/lab.js';
import type { NfsDrillReport } from '../../source/drill/nfs-run.js';

const fixture = useLab({ hosts: 4 });
const A = { nfs_primary: '198.18.0.11', nfs_standby: '198.18.0.12', app1: '198.18.0.13', app2: '198.18.0.14' };
type Role = keyof typeof A;
const VIP = '198.18.0.101';
const INTERVAL = 15;

function table(lab: Lab): string {
  lab.env.HA_SETUP_HOME ??= mkdtempSync(join(tmpdir(), 'ha-drill-nfs-home-'));
  return writeLabTable(lab, join(lab.info.dir, 'drill-nfs.yaml'), {
    cluster: 'drill-nfs',
    servers: { ...A, nfs_vip: VIP },
    options: { nfs: { server: 'ganesha', exportDir: '/srv/nfs', graceSec: 10, replicationIntervalSec: INTERVAL, mountClients: false } },
  });
}

const at = (lab: Lab, role: Role) => lab.host(A[role]);
const holds = async (lab: Lab, role: Role): Promise<boolean> => (await lab.sh(at(lab, role), `ip -o addr show | grep -cF ' ${VIP}/' || true`)).trim() !== '0';
const url = (file: string) => `nfs://${VIP}/srv/nfs/${file}?version=4`;

/** app2 writes `file` through the VIP (retrying through a grace period). */
async function writeViaVip(lab: Lab, file: string, text: string): Promise<void> {
  const r = await lab.ssh(at(lab, 'app2'), `printf '%s\\n' '${text}' > /tmp/w && for i in $(seq 1 25); do nfs-cp /tmp/w '${url(file)}' >/dev/null && exit 0; sleep 1; done; exit 1`);
  assert.equal(r.code, 0, `nfs-cp ${file} through the VIP: ${r.stderr}`);
}

/** What the servers say after a drill: one VIP holder, the survivor serves, the marker is there, no drill files anywhere. */
async function assertServers(lab: Lab, survivor: Role, old: Role, marker: { file: string; text: string }): Promise<void> {
  assert.deepEqual([await holds(lab, survivor), await holds(lab, old)], [true, false], `the VIP on ${survivor} only`);
  // The survivor serves the share: app2 writes a file through the VIP, it lands in the survivor's
  // export directory, and app2 reads it back through the VIP.
  const check = `after-drill-${Date.now()}`;
  await writeViaVip(lab, `${check}.txt`, check);
  assert.equal((await lab.sh(at(lab, survivor), `cat /srv/nfs/${check}.txt`)).trim(), check, `the write through the VIP landed on ${survivor}`);
  const rd = await lab.ssh(at(lab, 'app2'), `nfs-cat '${url(`${check}.txt`)}'`);
  assert.equal(rd.stdout.trim(), check, rd.stderr);
  // Written through the VIP more than one replication interval before the fault: on the survivor.
  assert.equal((await lab.sh(at(lab, survivor), `cat /srv/nfs/${marker.file}`)).trim(), marker.text, `${marker.file} was replicated to ${survivor} before the fault`);
  assert.equal((await lab.ssh(at(lab, 'app1'), `nfs-cat '${url(marker.file)}'`)).stdout.trim(), marker.text, 'and app1 reads it through the VIP');
  // The drill's files are gone from both servers (share and kept-aside directory).
  for (const role of [survivor, old]) {
    assert.equal((await lab.sh(at(lab, role), "find /srv/nfs /var/lib/ha-setup/nfs-replaced -name '.ha-setup-drill.*' 2>/dev/null | wc -l")).trim(), '0', `no drill files left on ${role}`);
  }
}

function figures(t: { diagnostic(s: string): void }, r: NfsDrillReport): void {
  const s = (ms: number | null) => (ms === null ? 'never' : `${(ms / 1000).toFixed(2)} s`);
  t.diagnostic(
    `${r.fault} (${r.mode}, ${r.probe.tool}): VIP moved ${s(r.measured.vipMovedMs)}, RTO ${s(r.measured.rtoMs)}, ` +
      `${r.rpo.missing} of ${r.rpo.acknowledged} acknowledged files lost (${r.rpo.missingAfterFailover} after the failover), ` +
      `replication lag at the fault ${s(r.replication.lagAtFaultMs)} (max ${s(r.replication.maxLagMs)}, ${r.replication.passes} passes)`,
  );
}

test('setup: nfs-ganesha on the NFS pair, replication every 15 s, the NFS VIP on nfs_primary', { timeout: 300_000 }, async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  const r = await lab.cli(['apply', '--config', table(lab), '--yes', '--runbook', 'nfs,keepalived']);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const end = Date.now() + 20_000;
  while (!(await holds(lab, 'nfs_primary'))) {
    assert.ok(Date.now() < end, 'the NFS VIP on nfs_primary within 20 s');
    await new Promise((res) => setTimeout(res, 200));
  }
  assert.equal(await holds(lab, 'nfs_standby'), false);
});

test('drill nfs --fault stop-nfs --json: the VIP moves, writes resume on nfs_standby, losses only within the replication window', { timeout: 180_000 }, async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  const marker = { file: 'before-stop-nfs.txt', text: `written ${Date.now()}` };
  await writeViaVip(lab, marker.file, marker.text);
  const r = await lab.cli(['drill', 'nfs', '--config', table(lab), '--fault', 'stop-nfs', '--json']);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const report = JSON.parse(r.stdout) as NfsDrillReport;
  figures(t, report);
  assert.equal(report.mode, 'lab');
  assert.equal(report.probe.tool, 'nfs-cp', 'no NFS mount in the lab: the probe says it used nfs-cp');
  assert.deepEqual([report.target.alias, report.survivor.alias], ['nfs_primary', 'nfs_standby']);
  const m = report.measured;
  assert.ok(m.vipMovedMs !== null && m.vipMovedMs < 15_000, `VIP moved after ${m.vipMovedMs} ms`);
  assert.ok(m.rtoMs !== null && m.rtoMs > 0 && m.rtoMs < 20_000, `RTO ${m.rtoMs} ms: the stopped server refused writes until the VIP moved`);
  assert.ok(m.rtoMs + 1000 >= m.vipMovedMs, 'writes came back when the VIP had moved, not before');
  assert.ok(m.acknowledged > 50 && m.failed > 0, `${m.acknowledged} acknowledged, ${m.failed} failed`);
  assert.deepEqual(report.after.vipHolders, ['nfs_standby']);
  assert.equal(report.rpo.checkedOn, 'nfs_standby');
  assert.equal(report.rpo.missingAfterFailover, 0, 'every write acknowledged after the failover is on nfs_standby');
  assert.equal(report.rpo.missingBeyondWindow, 0, 'nothing older than one replication interval is lost');
  assert.ok(report.replication.passes >= 2, `${report.replication.passes} replication passes seen before the fault`);
  assert.ok(report.replication.lagAtFaultMs !== null && report.replication.lagAtFaultMs <= report.replication.windowMs, `lag at the fault ${report.replication.lagAtFaultMs} ms`);
  assert.match(report.rpo.note, /^rsync replication every 15 s: files acknowledged since the standby's last pass are expected to be missing/);
  assert.ok(report.decisions.some((d) => d.host === 'nfs_primary' && /nfs check: FAIL: no NFS server unit is active/.test(d.message)), 'the health check verdict is in the journal');
  assert.ok(report.decisions.some((d) => d.host === 'nfs_standby' && /vrrp: .*Entering MASTER STATE/.test(d.message)), "keepalived's takeover is in the journal");
  for (const c of report.checks) assert.ok(c.ok, `${c.name}: ${c.detail}`);
  assert.ok(report.advice.some((a) => /nfs_primary's copy of \/srv\/nfs diverged from nfs_standby's/.test(a)));
  // The fault was undone: nfs-ganesha runs again on nfs_primary, which stays BACKUP.
  assert.equal(report.undone, 'nfs_primary: started nfs-ganesha');
  assert.equal((await lab.sh(at(lab, 'nfs_primary'), 'systemctl is-active nfs-ganesha keepalived')).trim(), 'active\nactive');
  await assertServers(lab, 'nfs_standby', 'nfs_primary', marker);
});

test('drill nfs --fault cut-link (plain report): the failover goes back to nfs_primary; the link is restored', { timeout: 180_000 }, async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  const marker = { file: 'before-cut-link.txt', text: `written ${Date.now()}` };
  await writeViaVip(lab, marker.file, marker.text);
  const r = await lab.cli(['drill', 'nfs', '--config', table(lab), '--fault', 'cut-link']);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  t.diagnostic(r.stdout.split('\n').slice(0, 12).join('\n'));
  assert.match(r.stdout, /^Drill nfs \(lab\): cut-link on nfs_standby \(198\.18\.0\.12\)/m);
  // The lab's hosts have /srv/nfs as a mount of their own disk, not of the share: the probe says so and uses nfs-cp.
  assert.match(r.stdout, /probe tool: nfs-cp \(libnfs, NFSv4 \(\/srv\/nfs is (not mounted|mounted from \S+ \(\w+\), not from 198\.18\.0\.101:\/srv\/nfs)\)\)/);
  const rto = /writes succeed again \(RTO\) after\s+(\d+\.\d\d) s/.exec(r.stdout);
  assert.ok(rto, r.stdout);
  assert.match(r.stdout, /VIP moved to nfs_primary after\s+\d+\.\d\d s/);
  assert.match(r.stdout, /written after the failover\s+0$/m);
  assert.match(r.stdout, /VIP held by\s+nfs_primary \(198\.18\.0\.11\)$/m);
  assert.doesNotMatch(r.stdout, /^ {4}FAIL {2}/m, 'no failed check');
  assert.match(r.stdout, /^drill passed$/m);
  // The link is back (the drill restored it): nfs_standby is reachable, serves NFS, and is BACKUP.
  assert.equal((await lab.sh(at(lab, 'nfs_standby'), 'systemctl is-active nfs-ganesha keepalived')).trim(), 'active\nactive');
  await assertServers(lab, 'nfs_primary', 'nfs_standby', marker);
});

/**
 * Found by this drill: with fixed priorities (nfs_primary 151, nfs_standby 150) a frozen
 * nfs_primary, still MASTER in its own eyes, outranked nfs_standby when it thawed and took the
 * VIP back with its stale copy (its next replication pass then pushed that copy over the
 * failover's writes). `nopreempt` only restrains a BACKUP. Since commit 7f64929 the keepalived
 * runbook gives the NFS pair a holder generation (track_file, replicated through the share), so
 * the thawed server must give the VIP up. After the cut-link drill the VIP is on nfs_primary.
 */
test('drill nfs --fault freeze on nfs_primary (--json): the thawed server does not take the VIP back', { timeout: 180_000 }, async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  assert.equal(await holds(lab, 'nfs_primary'), true, 'after the cut-link drill the VIP is on nfs_primary');
  const marker = { file: 'before-freeze.txt', text: `written ${Date.now()}` };
  await writeViaVip(lab, marker.file, marker.text);
  const r = await lab.cli(['drill', 'nfs', '--config', table(lab), '--fault', 'freeze', '--json']);
  const report = JSON.parse(r.stdout) as NfsDrillReport;
  figures(t, report);
  for (const c of report.checks) t.diagnostic(`${c.ok ? 'ok  ' : 'FAIL'} ${c.name} (${c.detail})`);
  assert.equal(report.target.alias, 'nfs_primary');
  assert.equal(report.measured.vipBackToOldMs, null, 'nfs_primary took the VIP back');
  assert.deepEqual(report.after.vipHolders, ['nfs_standby']);
  assert.equal(report.rpo.missingAfterFailover, 0);
  assert.equal(report.undone, 'nfs_primary: thawed');
  assert.ok(report.decisions.some((d) => d.host === 'nfs_standby' && /holder generation \d+/.test(d.message)), 'the new holder took a higher generation');
  assert.equal(r.code, 0, r.stderr);
  await assertServers(lab, 'nfs_standby', 'nfs_primary', marker);
});
