/**
 * `ha-setup lab` on the command line: what a machine that cannot host a lab is told, adding
 * hosts to a running lab, status when down, and bad input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, chmodSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { labSkipReason, withLab } from '../helpers/lab.js';
import { hostProcesses } from '../../source/lab/hosts.js';
import { labLayout } from '../../source/lab/layout.js';
import { labShape, labTableYaml } from '../../source/lab/topology.js';
import { waitFor } from '../../source/lab/exec.js';
import { parse } from 'yaml';

const cli = fileURLToPath(new URL('../../../bin/ha-setup.js', import.meta.url));

function ha(args: string[], env: NodeJS.ProcessEnv, asUser?: number) {
  const argv = asUser === undefined ? [process.execPath, cli, ...args] : ['setpriv', `--reuid=${asUser}`, `--regid=${asUser}`, '--clear-groups', process.execPath, cli, ...args];
  return spawnSync(argv[0]!, argv.slice(1), { env, encoding: 'utf8', timeout: 300_000 });
}

test('without root, lab up says exactly what is missing and starts nothing', (t) => {
  if (process.getuid?.() !== 0) {
    t.skip('needs root to run the command as another user');
    return;
  }
  const dir = mkdtempSync('/tmp/ha-setup-lab-nonroot-');
  chmodSync(dir, 0o777);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const r = ha(['lab', 'up'], { PATH: process.env.PATH, HA_SETUP_LAB_DIR: `${dir}/lab`, HOME: dir }, 65534);
  assert.equal(r.status, 3, r.stderr);
  assert.match(r.stderr, /^ha-setup lab: this machine cannot host the lab: .*missing root privileges \(run it as root, e\.g\. with sudo\)/);
  assert.equal(r.stdout, '');
  assert.equal(spawnSync('ls', [dir], { encoding: 'utf8' }).stdout, '', 'nothing was created');
});

test('bad input: one line naming the flag and the fix', () => {
  const env = { ...process.env, HA_SETUP_LAB_DIR: '/tmp/ha-setup-lab-never-created' };
  let r = ha(['lab', 'up', '--hosts', 'three'], env);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^ha-setup lab: --hosts must be a whole number \(got "three"\)/);
  r = ha(['lab', 'up', '--topology', 'mesh'], env);
  assert.equal(r.status, labSkipReason() ? 3 : 1);
  if (!labSkipReason()) assert.equal(r.stderr, 'ha-setup lab: --topology "mesh" is not known (use lb or k8s)\n');
  r = ha(['lab', 'frobnicate'], env);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown lab command "frobnicate"/);
  r = ha(['lab', 'status'], env);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^lab: down \(\/tmp\/ha-setup-lab-never-created\)\n/);
});

test('the tables lab up writes: --topology k8s is cluster-k8s.yaml; --hosts 8 adds app3; limits', () => {
  const paths = { keyFile: '/k/id_ed25519', knownHostsFile: '/k/known_hosts' };
  const k8s = parse(labTableYaml(labShape({ topology: 'k8s' }), paths));
  const fixture = parse(readFileSync(new URL('../../../test/fixtures/cluster-k8s.yaml', import.meta.url), 'utf8'));
  assert.deepEqual(k8s.servers, fixture.servers);
  assert.equal(k8s.topology, 'k8s');
  assert.deepEqual(k8s.ssh, { user: 'root', identity: '/k/id_ed25519', knownHosts: '/k/known_hosts' });
  const eight = labShape({ hosts: 8 });
  assert.deepEqual(eight.hosts.slice(-2).map((h) => `${h.alias}=${h.name}@${h.address}`), ['lb=lb@198.18.0.17', 'app3=app3@198.18.0.18']);
  assert.equal(labShape({ hosts: 7, topology: 'k8s' }).hosts[6]!.name, 'k8s-master');
  assert.throws(() => labShape({ hosts: 0 }), /^Error: --hosts must be a whole number from 1 to 32 \(got 0\)$/);
  assert.throws(() => labShape({ hosts: 5, topology: 'lb' }), /--topology lb needs 7 hosts or more/);
});

test('lab up --hosts 3 on a 2-host lab adds nfs_primary and keeps db_primary and db_standby running', async (t) => {
  await withLab(t, { hosts: 2 }, async (lab) => {
    const layout = labLayout(lab.env);
    const launchers = ['db-primary', 'db-standby'].map((h) => hostProcesses(layout, h).launcher);
    const boots = await Promise.all(['db_primary', 'db_standby'].map((h) => lab.sh(h, 'cat /proc/sys/kernel/random/boot_id')));
    const r = await lab.cli(['lab', 'up', '--hosts', '3']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^lab up: 1 host\(s\) started \(3 hosts/);
    assert.deepEqual(['db-primary', 'db-standby'].map((h) => hostProcesses(layout, h).launcher), launchers);
    assert.deepEqual(await Promise.all(['db_primary', 'db_standby'].map((h) => lab.sh(h, 'cat /proc/sys/kernel/random/boot_id'))), boots);
    assert.equal(readFileSync(layout.knownHostsFile, 'utf8').trim().split('\n').length, 6);
    assert.match(readFileSync(layout.tableFile, 'utf8'), /nfs_primary: 198\.18\.0\.13/);
    // Strict host-key checking works for the new host with the rewritten known_hosts.
    const host3 = { alias: 'nfs_primary', name: 'nfs-primary', address: '198.18.0.13' };
    assert.equal((await lab.sh(host3, 'hostname')).trim(), 'nfs-primary');
    const status = JSON.parse((await lab.cli(['lab', 'status', '--json'])).stdout);
    assert.deepEqual(status.hosts.map((h: { alias: string; state: string }) => `${h.alias}:${h.state}`), ['db_primary:running', 'db_standby:running', 'nfs_primary:running']);

    // A host powered off from inside is "stopped"; restore boots it again, same keys.
    const boot = await lab.sh(host3, 'cat /proc/sys/kernel/random/boot_id');
    await lab.ssh(host3, 'systemctl poweroff');
    const stopped = await waitFor(async () => {
      const s = JSON.parse((await lab.cli(['lab', 'status', '--json'])).stdout);
      return s.hosts[2].state === 'stopped' ? s : undefined;
    }, 30_000, 200);
    assert.ok(stopped, 'nfs_primary shows as stopped after poweroff');
    assert.equal(hostProcesses(layout, 'nfs-primary').launcher, undefined);
    const r2 = await lab.cli(['lab', 'fault', 'nfs-primary', 'restore']);
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stdout, /^nfs_primary: started/);
    assert.notEqual(await lab.sh(host3, 'cat /proc/sys/kernel/random/boot_id'), boot);
    assert.equal((await lab.sh(host3, 'systemctl is-system-running --wait')).trim(), 'running');
  });
});
