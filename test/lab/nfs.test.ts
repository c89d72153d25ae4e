/**
 * NFS in the lab (nfs-ganesha; the lab has no kernel NFS): a 4-host lab re-mapped by this
 * test's own partial table (nfs_primary .11, nfs_standby .12, app1 .13, app2 .14, nfs_vip
 * .101), `ha-setup apply --runbook nfs` through the real CLI over SSH, then server state read
 * with OpenSSH and the libnfs clients (nfs-cp / nfs-cat, NFSv4), since nothing here can mount:
 *  - a file written from app1 is read from app2 through nfs_primary;
 *  - a host not in the table (nfs_standby's address) is refused by the export;
 *  - with the NFS VIP on nfs_primary, the replication pass copies the file to nfs_standby;
 *    after the VIP moves to nfs_standby, app2 reads the file there, and the direction reverses;
 *  - a second plan changes nothing.
 * The app servers' mounts (fstab, mount) are not run here (options.nfs.mountClients: false):
 * they are proven by plan fixtures only (test/unit/nfs-plans.test.ts).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { useLab, type Lab, type SshResult, writeLabTable } from '../helpers/lab.js';
import { RUNBOOKS } from '../../runbooks/index.js';

const fixture = useLab({ hosts: 4 });
const A = { nfs_primary: '198.18.0.11', nfs_standby: '198.18.0.12', app1: '198.18.0.13', app2: '198.18.0.14' };
const VIP = '198.18.0.101';
const url = (server: string, file: string) => `nfs://${server}/srv/nfs/${file}?version=4`;

let tableFile: string | undefined;
let tableDir: string | undefined;
// The table, the state and the secrets of this test: removed after it.
after(() => {
  if (tableDir) rmSync(tableDir, { recursive: true, force: true });
});

function table(lab: Lab): string {
  if (tableFile) return tableFile;
  const dir = mkdtempSync(join(tmpdir(), 'ha-nfs-lab-'));
  tableDir = dir;
  lab.env.HA_SETUP_HOME ??= join(dir, 'home');
  tableFile = writeLabTable(lab, join(dir, 'nfs.yaml'), {
    cluster: 'lab-nfs',
    servers: { ...A, nfs_vip: VIP },
    network: true,
    options: { nfs: { server: 'ganesha', exportDir: '/srv/nfs', graceSec: 10, replicationIntervalSec: 15, mountClients: false } },
  });
  return tableFile;
}

/** `ha-setup <args>`: the real CLI, with this lab's environment. */
const cli = (lab: Lab, args: string[]): Promise<SshResult> => lab.cli(args);

/** The lab host (by address) a role of this test's table is. */
const at = (lab: Lab, role: keyof typeof A) => lab.host(A[role]);

/** Retries while the server is in its grace period (NFS4ERR_GRACE) or starting. */
async function nfsTry(lab: Lab, role: keyof typeof A, script: string, ms = 25_000): Promise<{ code: number; stdout: string; stderr: string }> {
  const end = Date.now() + ms;
  for (;;) {
    const r = await lab.ssh(at(lab, role), script);
    if (r.code === 0 || Date.now() > end) return r;
    await new Promise((res) => setTimeout(res, 1000));
  }
}

const vipIface = `ip -o -4 addr show | awk -v a="$(hostname -I | awk '{print $1}')/" 'index($4, a) == 1 {print $2; exit}'`;
/** What uninstall must restore: services, listening TCP ports, the files ha-setup touches. */
const SNAPSHOT = [
  'for u in nfs-ganesha ha-setup-nfs-replicate.timer keepalived; do echo "unit $u $(systemctl is-active $u 2>/dev/null || true) $(systemctl is-enabled $u 2>/dev/null || true)"; done',
  "ss -Hltn | awk '{print \"listen \" $4}' | sort -u",
  'for f in /etc/ganesha/ganesha.conf /root/.ssh/authorized_keys /etc/fstab /etc/hosts; do echo "file $f $(sha256sum < $f 2>/dev/null | cut -c1-16 || echo absent)"; done',
  "find /etc /usr/local/libexec /root/.ssh -name '*ha-setup*' 2>/dev/null | sort | sed 's/^/ha-setup-file /'",
].join('\n');
const snapshots = new Map<string, string>();

/** One replication pass now (the timer's service), with its journal on failure. */
const pass = 'systemctl start ha-setup-nfs-replicate.service || { journalctl -u ha-setup-nfs-replicate.service --no-pager -n 25 >&2; exit 1; }';
const addVip = `ip addr add ${VIP}/24 dev "$(${vipIface})"`;
const delVip = `ip addr del ${VIP}/24 dev "$(${vipIface})"`;

test('ganesha on both NFS servers via the CLI; app1 writes, app2 reads; others refused; replication follows the VIP; idempotent', async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  const cfg = table(lab);
  for (const role of Object.keys(A) as (keyof typeof A)[]) snapshots.set(role, await lab.sh(at(lab, role), SNAPSHOT));
  const t0 = Date.now();
  const r = await cli(lab, ['apply', '--config', cfg, '--runbook', 'nfs', '--yes']);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  t.diagnostic(`apply --runbook nfs: ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  for (const role of ['nfs_primary', 'nfs_standby'] as const) {
    const out = await lab.sh(at(lab, role), 'systemctl is-active nfs-ganesha ha-setup-nfs-replicate.timer; grep -c "Clients = 198.18.0.13, 198.18.0.14;" /etc/ganesha/ganesha.conf');
    assert.deepEqual(out.trim().split('\n'), ['active', 'active', '1'], role);
  }
  const confs = await Promise.all((['nfs_primary', 'nfs_standby'] as const).map((h) => lab.sh(at(lab, h), 'sha256sum < /etc/ganesha/ganesha.conf')));
  assert.equal(confs[0], confs[1], 'identical ganesha.conf (Export_Id, Filesystem_Id) on both servers');

  // app1 writes through nfs_primary, app2 reads it.
  const text = `from app1 ${Date.now()}`;
  const t1 = Date.now();
  const w = await nfsTry(lab, 'app1', `printf '%s\\n' '${text}' > /tmp/f && nfs-cp /tmp/f '${url(A.nfs_primary, 'from-app1.txt')}'`);
  assert.equal(w.code, 0, `nfs-cp from app1: ${w.stderr}`);
  t.diagnostic(`first write accepted ${((Date.now() - t1) / 1000).toFixed(1)} s after apply (grace period 10 s)`);
  const rd = await nfsTry(lab, 'app2', `nfs-cat '${url(A.nfs_primary, 'from-app1.txt')}'`);
  assert.equal(rd.code, 0, rd.stderr);
  assert.equal(rd.stdout.trim(), text);
  assert.equal((await lab.sh(at(lab, 'nfs_primary'), 'cat /srv/nfs/from-app1.txt')).trim(), text, 'the file is in the export directory');

  // A host that is not an app server of the table is refused.
  const refused = await lab.ssh(at(lab, 'nfs_standby'), `nfs-cat '${url(A.nfs_primary, 'from-app1.txt')}'`);
  assert.notEqual(refused.code, 0, 'nfs_standby (not in the export list) must not read the share');

  // Replication: only the VIP holder pushes.
  await lab.sh(at(lab, 'nfs_standby'), pass);
  assert.equal((await lab.ssh(at(lab, 'nfs_standby'), 'test -e /srv/nfs/from-app1.txt')).code, 1, 'no VIP anywhere: nothing replicated');
  await lab.sh(at(lab, 'nfs_primary'), addVip);
  const t2 = Date.now();
  await lab.sh(at(lab, 'nfs_primary'), pass);
  t.diagnostic(`one replication pass: ${Date.now() - t2} ms`);
  assert.equal((await lab.sh(at(lab, 'nfs_standby'), 'cat /srv/nfs/from-app1.txt')).trim(), text, 'replicated to nfs_standby');

  // Failover of the VIP (by hand here; keepalived's job in the stack): files written before it
  // are on the new active server, and the direction reverses.
  await lab.sh(at(lab, 'nfs_primary'), delVip);
  await lab.sh(at(lab, 'nfs_standby'), addVip);
  const after = await nfsTry(lab, 'app2', `nfs-cat '${url(A.nfs_standby, 'from-app1.txt')}'`);
  assert.equal(after.code, 0, after.stderr);
  assert.equal(after.stdout.trim(), text, 'after the failover app2 reads the file from nfs_standby');
  const w2 = await nfsTry(lab, 'app2', `echo after-failover > /tmp/g && nfs-cp /tmp/g '${url(A.nfs_standby, 'from-app2.txt')}'`);
  assert.equal(w2.code, 0, w2.stderr);
  await lab.sh(at(lab, 'nfs_primary'), pass);
  assert.equal((await lab.ssh(at(lab, 'nfs_primary'), 'test -e /srv/nfs/from-app2.txt')).code, 1, 'the old active no longer pushes');
  await lab.sh(at(lab, 'nfs_standby'), pass);
  assert.equal((await lab.sh(at(lab, 'nfs_primary'), 'cat /srv/nfs/from-app2.txt')).trim(), 'after-failover', 'the new VIP holder pushes back');
  await lab.sh(at(lab, 'nfs_standby'), delVip);

  // A second plan changes nothing.
  const plan = await cli(lab, ['plan', '--config', cfg, '--runbook', 'nfs', '--json']);
  assert.equal(plan.code, 0, plan.stderr);
  const data = JSON.parse(plan.stdout) as { hosts: Record<string, { steps: { id: string; status: string }[] }> };
  for (const [h, v] of Object.entries(data.hosts)) for (const s of v.steps) assert.equal(s.status, 'skip', `${h} ${s.id} would change`);
});

test('uninstall brings every host back to its state before apply, the shared data kept', async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  if (snapshots.size === 0) return t.skip('the apply test did not run');
  const cfg = table(lab);
  const t0 = Date.now();
  const r = await cli(lab, ['uninstall', '--config', cfg, '--yes']);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  t.diagnostic(`apply --runbook uninstall: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const diffs: string[] = [];
  for (const role of Object.keys(A) as (keyof typeof A)[]) {
    const before = snapshots.get(role)!.trim().split('\n');
    const after = (await lab.sh(at(lab, role), SNAPSHOT)).trim().split('\n');
    for (const l of before) if (!after.includes(l)) diffs.push(`${role} - ${l}`);
    for (const l of after) if (!before.includes(l)) diffs.push(`${role} + ${l}`);
  }
  if (diffs.length) t.diagnostic(`differences from before apply:\n${diffs.join('\n')}`);
  assert.deepEqual(diffs, [], 'every host as before apply');
  assert.ok((await lab.sh(at(lab, 'nfs_primary'), 'cat /srv/nfs/from-app1.txt')).startsWith('from app1 '), 'the shared data is kept');
  const again = await cli(lab, ['plan', '--config', cfg, '--runbook', 'uninstall', '--json']);
  assert.equal(again.code, 0, again.stderr);
  const data = JSON.parse(again.stdout) as { hosts: Record<string, { steps: { id: string; status: string }[] }> };
  for (const [h, v] of Object.entries(data.hosts)) for (const s of v.steps) assert.equal(s.status, 'skip', `${h} ${s.id}: a second uninstall would change something`);
});
