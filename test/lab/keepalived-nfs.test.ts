/**
 * keepalived for the NFS pair in the lab: 4 hosts re-mapped by this test's table (nfs_primary
 * .11, nfs_standby .12, app1 .13, app2 .14, nfs_vip .101), the NFS servers set up by the nfs
 * runbook, then the keepalived runbook, which configures only the NFS pair (no DB pair in the
 * table). Asserted on the servers: the NFS VIP is on nfs_primary only, with its own
 * virtual_router_id; when nfs-ganesha stops there the VIP moves to nfs_standby and an app
 * server reads the share through the VIP; when nfs-ganesha runs again the VIP stays where it is
 * (nopreempt).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useLab, type Lab, writeLabTable } from '../helpers/lab.js';
import { fault } from '../../source/lab/index.js';

const fixture = useLab({ hosts: 4 });
const A = { nfs_primary: '198.18.0.11', nfs_standby: '198.18.0.12', app1: '198.18.0.13', app2: '198.18.0.14' };
const VIP = '198.18.0.101';

function table(lab: Lab): string {
  lab.env.HA_SETUP_HOME ??= mkdtempSync(join(tmpdir(), 'ha-ka-nfs-home-'));
  return writeLabTable(lab, join(lab.info.dir, 'ka-nfs.yaml'), {
    cluster: 'ka-nfs',
    servers: { ...A, nfs_vip: VIP },
    options: { nfs: { server: 'ganesha', exportDir: '/srv/nfs', graceSec: 10, mountClients: false } },
  });
}

const holds = async (lab: Lab, address: string): Promise<boolean> => (await lab.sh(lab.host(address), `ip -o addr show | grep -cF ' ${VIP}/' || true`)).trim() !== '0';

async function until(what: string, ms: number, fn: () => Promise<boolean>): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await fn().catch(() => false)) return Date.now() - t0;
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('NFS pair: the VIP on nfs_primary only, moved to nfs_standby when the NFS server stops, and not back (nopreempt)', { timeout: 300_000 }, async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  const r = await lab.cli(['apply', '--config', table(lab), '--yes', '--runbook', 'nfs,keepalived']);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  await until('the NFS VIP on nfs_primary', 20_000, () => holds(lab, A.nfs_primary));
  assert.equal(await holds(lab, A.nfs_standby), false);
  const conf = await lab.sh(lab.host(A.nfs_standby), 'cat /etc/keepalived/keepalived.conf');
  for (const want of ['vrrp_instance ha_setup_nfs', 'virtual_router_id 52', 'state BACKUP', 'nopreempt', 'priority 150', `unicast_peer {\n        ${A.nfs_primary}`, 'script "/usr/local/lib/ha-setup/keepalived/nfs-check"']) {
    assert.ok(conf.includes(want), want);
  }
  assert.ok(!conf.includes('pg-ha'), 'no PostgreSQL scripts on the NFS servers');

  // A file through the VIP, then the NFS server on the VIP holder stops.
  const w = await lab.ssh(lab.host(A.app1), `printf 'via vip\\n' > /tmp/v && for i in $(seq 1 25); do nfs-cp /tmp/v 'nfs://${VIP}/srv/nfs/via-vip.txt?version=4' && exit 0; sleep 1; done; exit 1`);
  assert.equal(w.code, 0, w.stderr);
  await fault(A.nfs_primary, 'stop-service', 'nfs-ganesha', { env: lab.env });
  const moved = await until('the NFS VIP on nfs_standby', 20_000, async () => (await holds(lab, A.nfs_standby)) && !(await holds(lab, A.nfs_primary)));
  t.diagnostic(`the NFS VIP moved ${(moved / 1000).toFixed(1)} s after nfs-ganesha stopped`);
  assert.match(await lab.sh(lab.host(A.nfs_primary), 'journalctl -t ha-setup-keepalived -o cat'), /nfs check: FAIL: no NFS server unit is active/);
  // app2 reaches an NFS server through the VIP again (nfs_standby's export; its grace period first).
  const rd = await lab.ssh(lab.host(A.app2), `for i in $(seq 1 30); do nfs-ls 'nfs://${VIP}/srv/nfs?version=4' >/dev/null && exit 0; sleep 1; done; exit 1`);
  assert.equal(rd.code, 0, rd.stderr);

  // nfs-ganesha back on nfs_primary: the VIP stays on nfs_standby.
  await fault(A.nfs_primary, 'start-service', 'nfs-ganesha', { env: lab.env });
  await until('nfs_primary healthy again', 20_000, async () => /nfs check: ok/.test((await lab.sh(lab.host(A.nfs_primary), 'journalctl -t ha-setup-keepalived -o cat -n 1')) ?? ''));
  await new Promise((res) => setTimeout(res, 5000));
  assert.deepEqual([await holds(lab, A.nfs_primary), await holds(lab, A.nfs_standby)], [false, true]);
});
