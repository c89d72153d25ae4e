/**
 * The lab, for real: 3 Debian hosts on this machine, reached over SSH with strict host-key
 * checking, then fault injection, then `lab down` leaving nothing behind. Every assertion is on
 * the hosts' or the machine's state. Skips (saying why) only when the machine cannot host a lab.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, readdirSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { parse } from 'yaml';
import { useLab, type Lab } from '../helpers/lab.js';
import { fault, labStatus, labTable, waitHostReady } from '../../source/lab/index.js';
import { hostCgroupDirs } from '../../source/lab/cgroups.js';
import { validateInventory } from '../../source/inventory/validate.js';
import { hostProcesses } from '../../source/lab/hosts.js';
import { labLayout } from '../../source/lab/layout.js';
import { createSshTransport, mergeSshSettings } from '../../source/transport/connect.js';

const fixture = useLab({ hosts: 3 });
const ALIASES = ['db_primary', 'db_standby', 'nfs_primary'];

const bootId = (lab: Lab, h: string) => lab.sh(h, 'cat /proc/sys/kernel/random/boot_id').then((s) => s.trim());

test('lab up: 3 hosts, a server table, the key and a known_hosts written by the lab', (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  const { info } = lab;
  assert.deepEqual(info.hosts.map((h) => [h.alias, h.address]), [
    ['db_primary', '198.18.0.11'],
    ['db_standby', '198.18.0.12'],
    ['nfs_primary', '198.18.0.13'],
  ]);
  const table = parse(readFileSync(info.tableFile, 'utf8'));
  assert.equal(table.cluster, 'lab');
  assert.equal(table.topology, 'lb');
  // A partial table named by role: the database pair (with its VIP) and the first NFS server.
  assert.equal(table.partial, true);
  assert.deepEqual(table.servers, { db_primary: '198.18.0.11', db_standby: '198.18.0.12', db_vip: '198.18.0.100', nfs_primary: '198.18.0.13' });
  assert.deepEqual(table.ssh, { user: 'root', identity: info.keyFile, knownHosts: info.knownHostsFile });
  // ha-setup itself accepts the table as written.
  assert.equal(validateInventory(table).ok, true);
  assert.equal(statSync(info.keyFile).mode & 0o777, 0o600);
  const known = readFileSync(info.knownHostsFile, 'utf8').trim().split('\n');
  assert.equal(known.length, 6, 'an ed25519 and an ecdsa key per host');
  for (const h of info.hosts) assert.equal(known.filter((l) => l.startsWith(`${h.address} `)).length, 2);
  assert.equal(new Set(known.map((l) => l.split(' ')[2])).size, 6, 'every host has its own keys');
  assert.deepEqual(labTable({ env: lab.env }).inventory.servers, table.servers);
});

test('every host: SSH with strict host-key checking, systemd is PID 1, the system is running', async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  const ids = new Set<string>();
  for (const alias of ALIASES) {
    const out = await lab.sh(alias, 'cat /proc/1/comm; hostname; systemctl is-system-running --wait; cat /etc/machine-id; ip -o -4 addr show dev host0');
    const [comm, hostname, running, machineId, addr] = out.trim().split('\n');
    assert.equal(comm, 'systemd');
    assert.equal(hostname, alias.replace(/_/g, '-'));
    assert.equal(running, 'running', `${alias}: ${running}`);
    ids.add(machineId!);
    assert.match(addr!, new RegExp(`inet ${lab.host(alias).address.replace(/\./g, '\\.')}/24`));
  }
  assert.equal(ids.size, 3, 'a machine-id per host');
  // Strictness is real: with no known key, the same ssh refuses the host.
  const r = spawnSync('ssh', ['-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'GlobalKnownHostsFile=/dev/null', '-F', '/dev/null', '-i', lab.info.keyFile, 'root@198.18.0.11', 'true'], { encoding: 'utf8' });
  assert.equal(r.status, 255);
  assert.match(r.stderr, /Host key verification failed/);
});

test('each host sees only its own processes', async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  await lab.sh('db_primary', 'systemd-run --unit=lab-marker --quiet /bin/sleep 4242');
  assert.match(await lab.sh('db_primary', 'pgrep -a -f "sleep 4242"'), /sleep 4242/);
  for (const other of ['db_standby', 'nfs_primary']) {
    const r = await lab.ssh(other, 'pgrep -f "sleep 4242"');
    assert.equal(r.code, 1, `${other} must not see db_primary's process: ${r.stdout}`);
    const count = Number((await lab.sh(other, 'ps -e --no-headers | wc -l')).trim());
    assert.ok(count < 40, `${other} sees ${count} processes`);
    assert.equal((await lab.sh(other, 'ps -o comm= -p 1')).trim(), 'systemd');
  }
  // The process is real, on this machine's kernel, and in db_primary's own cgroup.
  const pid = execFileSync('pgrep', ['-f', '^/bin/sleep 4242$']).toString().trim();
  assert.match(readFileSync(`/proc/${pid}/cgroup`, 'utf8'), /ha-lab-db-primary\/payload\/system\.slice\/lab-marker\.service/);
});

test('sudo: admin has NOPASSWD sudo, nosudo has none', async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  assert.equal((await lab.sh('db_standby', 'sudo -n id -u', { user: 'admin' })).trim(), '0');
  const r = await lab.ssh('db_standby', 'sudo -n true', { user: 'nosudo' });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /password is required/);
  assert.equal((await lab.sh('db_standby', 'id -un', { user: 'nosudo' })).trim(), 'nosudo');
});

test('apt-get installs a package that is not in the image, from the offline repository', async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  const before = await lab.ssh('db_standby', "dpkg-query -W -f='${Status}' chrony");
  assert.notEqual(before.stdout, 'install ok installed', 'chrony must not be in the image');
  const sources = await lab.sh('db_standby', 'cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | grep -v "^#" | grep .');
  assert.equal(sources.trim(), 'deb [trusted=yes] http://198.18.0.1:3142/ ./', 'the lab repository only');
  const update = await lab.ssh('db_standby', 'apt-get update -q');
  assert.equal(update.code, 0, update.stderr);
  assert.ok(update.ms < 10_000, `apt-get update took ${update.ms} ms (a mirror timeout?)`);
  await lab.sh('db_standby', 'DEBIAN_FRONTEND=noninteractive apt-get install -y -q chrony');
  assert.equal(await lab.sh('db_standby', "dpkg-query -W -f='${Status}' chrony"), 'install ok installed');
  assert.match(await lab.sh('db_standby', 'chronyd --version'), /chronyd \(chrony\) version/);
  assert.equal((await lab.sh('db_standby', 'systemctl is-system-running')).trim(), 'running');
});

test('PostgreSQL 15 starts and answers', async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  await lab.sh('db_standby', 'systemctl start postgresql@15-main');
  assert.equal((await lab.sh('db_standby', 'systemctl is-active postgresql@15-main')).trim(), 'active');
  assert.equal((await lab.sh('db_standby', 'cd / && sudo -u postgres psql -Atc "select 6*7"')).trim(), '42');
});

test("the project's SshTransport reaches the hosts with the lab's table", async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  const { inventory } = labTable({ env: lab.env });
  const home = mkdtempSync('/tmp/ha-setup-lab-home-'); // no ~/.ssh/config or keys of this machine
  t.after(() => rmSync(home, { recursive: true, force: true }));
  for (const alias of ALIASES) {
    const tr = createSshTransport({ alias, address: inventory.servers[alias]! }, mergeSshSettings(inventory.ssh, alias), {
      env: { ...process.env, HOME: home, SSH_AUTH_SOCK: '' },
    });
    try {
      const r = await tr.exec('hostname');
      assert.equal(r.stdout.trim(), alias.replace(/_/g, '-'));
    } finally {
      await tr.close();
    }
  }
});

test('fault stop-service / start-service (CLI)', async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  const stop = await lab.cli(['lab', 'fault', 'db_standby', 'stop-service', 'postgresql@15-main']);
  assert.equal(stop.code, 0, stop.stderr);
  const r = await lab.ssh('db_standby', 'systemctl is-active postgresql@15-main');
  assert.equal(r.stdout.trim(), 'inactive');
  const status = JSON.parse((await lab.cli(['lab', 'status', '--json'])).stdout);
  assert.deepEqual(status.hosts.find((h: { alias: string }) => h.alias === 'db_standby').stoppedUnits, ['postgresql@15-main']);
  const start = await lab.cli(['lab', 'fault', 'db_standby', 'start-service', 'postgresql@15-main']);
  assert.equal(start.code, 0, start.stderr);
  assert.equal((await lab.sh('db_standby', 'systemctl is-active postgresql@15-main')).trim(), 'active');
});

test('fault cut-link makes a host unreachable from the machine and its peers; restore-link fixes it', async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  await fault('nfs_primary', 'cut-link', undefined, { env: lab.env });
  const r = await lab.ssh('nfs_primary', 'true', { connectTimeout: 2 });
  assert.equal(r.code, 255);
  assert.ok(r.ms < 5000, `ssh gave up after ${r.ms} ms`);
  assert.equal(readFileSync('/sys/class/net/vb-nfs-primary/operstate', 'utf8').trim(), 'down');
  const ping = await lab.ssh('db_primary', 'ping -c 1 -W 1 198.18.0.13');
  assert.notEqual(ping.code, 0, 'db_primary must not reach nfs_primary');
  assert.equal(labStatus({ env: lab.env }).hosts.find((h) => h.alias === 'nfs_primary')!.state, 'link-cut');
  await fault('nfs_primary', 'restore-link', undefined, { env: lab.env });
  assert.equal((await lab.sh('nfs_primary', 'hostname', { connectTimeout: 5 })).trim(), 'nfs-primary');
  assert.equal((await lab.ssh('db_primary', 'ping -c 1 -W 2 198.18.0.13')).code, 0);
  assert.equal(labStatus({ env: lab.env }).hosts.find((h) => h.alias === 'nfs_primary')!.state, 'running');
});

test('fault freeze stops every process of a host; thaw resumes them', async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  const boot = await bootId(lab, 'db_primary');
  await fault('db_primary', 'freeze', undefined, { env: lab.env });
  const [cg] = hostCgroupDirs('db-primary');
  assert.match(readFileSync(`${cg}/payload/cgroup.events`, 'utf8'), /^frozen 1$/m);
  const r = await lab.ssh('db_primary', 'true', { connectTimeout: 2 });
  assert.equal(r.code, 255, 'a frozen host does not answer');
  assert.equal(labStatus({ env: lab.env }).hosts.find((h) => h.alias === 'db_primary')!.state, 'frozen');
  await fault('db_primary', 'thaw', undefined, { env: lab.env });
  assert.equal(await bootId(lab, 'db_primary'), boot, 'same boot after thaw');
  assert.match(await lab.sh('db_primary', 'pgrep -a -f "sleep 4242"'), /sleep 4242/, 'processes survive a freeze');
});

test('fault reboot: the host comes back with a new boot id', async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  const layout = labLayout(lab.env);
  const before = await bootId(lab, 'db_primary');
  const nspawnBefore = hostProcesses(layout, 'db-primary').nspawn;
  await fault('db_primary', 'reboot', undefined, { env: lab.env });
  await waitHostReady('db_primary', 60_000, { env: lab.env });
  assert.equal((await lab.sh('db_primary', 'systemctl is-system-running --wait')).trim(), 'running');
  const after = await bootId(lab, 'db_primary');
  assert.notEqual(after, before);
  assert.notEqual(hostProcesses(layout, 'db-primary').nspawn, nspawnBefore, 'nspawn was restarted by the launcher (exit 133)');
  assert.equal((await lab.ssh('db_primary', 'pgrep -f "sleep 4242"')).code, 1, 'processes of the old boot are gone');
});

test('fault restore undoes every fault on a host', async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  const env = { env: lab.env };
  await fault('db_standby', 'stop-service', 'postgresql@15-main', env);
  await fault('db_standby', 'cut-link', undefined, env);
  await fault('db_standby', 'freeze', undefined, env);
  assert.deepEqual(labStatus(env).hosts.find((h) => h.alias === 'db_standby')!.faults, ['frozen', 'link-cut']);
  const r = await lab.cli(['lab', 'fault', 'db_standby', 'restore']);
  assert.equal(r.code, 0, r.stderr);
  for (const undone of ['thawed', 'link restored', 'started postgresql@15-main']) assert.ok(r.stdout.includes(undone), r.stdout);
  const s = labStatus(env).hosts.find((h) => h.alias === 'db_standby')!;
  assert.deepEqual([s.state, s.faults, s.stoppedUnits], ['running', [], []]);
  assert.equal((await lab.sh('db_standby', 'systemctl is-active postgresql@15-main')).trim(), 'active');
});

test('lab down leaves nothing: no process, mount, link, address, cgroup or host directory', async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  const layout = labLayout(lab.env);
  const procs = ALIASES.map((a) => hostProcesses(layout, a.replace(/_/g, '-')));
  const pids = procs.flatMap((p) => [p.launcher, p.nspawn, p.init]).filter((p): p is number => Boolean(p));
  assert.equal(pids.length, 9, 'a launcher, an nspawn and a PID 1 per host before down');
  const repoPid = labStatus({ env: lab.env }).repo.pid;
  assert.ok(repoPid);
  const cgroups = ALIASES.flatMap((a) => hostCgroupDirs(a.replace(/_/g, '-')));
  assert.ok(cgroups.every((d) => existsSync(d)));

  const r = await lab.cli(['lab', 'down']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /3 host\(s\) stopped .*: 3 powered off in order, 0 killed/);

  for (const pid of [...pids, repoPid!]) assert.ok(!existsSync(`/proc/${pid}`), `process ${pid} is still there`);
  for (const p of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    let text = '';
    try {
      text = readFileSync(`/proc/${p}/cmdline`, 'utf8') + readFileSync(`/proc/${p}/mountinfo`, 'utf8');
    } catch {
      continue;
    }
    assert.ok(!text.includes(layout.hostsDir), `process ${p} still refers to ${layout.hostsDir}`);
  }
  const links = execFileSync('ip', ['-o', 'link']).toString();
  assert.doesNotMatch(links, /halab0|vb-host\d/);
  assert.doesNotMatch(execFileSync('ip', ['-o', 'addr']).toString(), /198\.18\.0\./);
  for (const d of cgroups) assert.ok(!existsSync(d), `cgroup ${d} is still there`);
  assert.ok(!existsSync(layout.hostsDir));
  assert.ok(!existsSync(layout.stateFile));
  assert.doesNotMatch(execFileSync('ss', ['-Hltn']).toString(), /198\.18\.0\.1:3142/, 'nothing listens for the lab');
  assert.ok(existsSync(lab.info.image.rootfs), 'the image cache is kept');
});
