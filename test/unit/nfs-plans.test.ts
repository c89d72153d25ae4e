/**
 * Plan fixtures of the nfs runbook: facts in -> files and commands out, then the facts an
 * apply leaves behind -> nothing to do. The app servers' mounts (fstab, mount) are proven ONLY
 * here, as plans: the lab cannot mount NFS (no kernel NFS client there). The RHEL-family
 * packages and the kernel server are proven only here too; the lab runs nfs-ganesha on Debian 12.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { contextOptions, createHostContext, tableOf } from '../../source/engine/context.js';
import type { Action, HostContext, Plan } from '../../source/engine/step.js';
import { nfsMountRunbook, nfsRunbook, exportPlan, mountPlan, serverPackages } from '../../runbooks/nfs.js';
import { NFS_PATHS, parseMounts, type NfsClientFacts, type NfsServerFacts } from '../../runbooks/lib/nfs-facts.js';
import { defaultFsid, nfsOptions } from '../../runbooks/lib/nfs-options.js';
import { replicationPublicKey } from '../../runbooks/lib/nfs-key.js';
import { parseSelinuxBool } from '../../runbooks/lib/selinux.js';
import type { OsInfo } from '../../runbooks/lib/host-facts.js';
import { createHash } from 'node:crypto';
import { Secret } from '../../source/engine/shell.js';

/** Deterministic secrets, remembered (like the runner's store, without files). */
export class TestSecrets {
  readonly issued = new Map<string, Secret>();
  get = (name: string): Secret => {
    let s = this.issued.get(name);
    if (!s) this.issued.set(name, (s = new Secret(name, `T${createHash('sha256').update(name).digest('base64url').slice(0, 23)}`)));
    return s;
  };
}

const FIXTURES = new URL('../../../test/fixtures/nfs/', import.meta.url);

export const SERVERS = {
  nfs_primary: '198.18.0.13',
  nfs_standby: '198.18.0.14',
  nfs_vip: '198.18.0.101',
  app1: '198.18.0.15',
  app2: '198.18.0.16',
  db_primary: '198.18.0.11',
};

export const OS: Record<string, OsInfo> = {
  debian12: { id: 'debian', family: 'debian', versionId: '12', major: 12, prettyName: 'Debian GNU/Linux 12 (bookworm)', hostname: 'h', kernel: '6.1.0', init: 'systemd', packageManager: 'apt' },
  rocky9: { id: 'rocky', family: 'rhel', versionId: '9.4', major: 9, prettyName: 'Rocky Linux 9.4 (Blue Onyx)', hostname: 'h', kernel: '5.14.0', init: 'systemd', packageManager: 'dnf' },
};

export function ctxFor(alias: string, options: Record<string, unknown> = {}, servers: Record<string, string> = SERVERS, secrets = new TestSecrets()): HostContext {
  const table = tableOf({ servers });
  return createHostContext({ host: table.hosts[alias]!, table, options: contextOptions({ cluster: 'fixture-lb', options }), secret: secrets.get });
}

export function freshServer(): NfsServerFacts {
  return {
    packages: [],
    dir: { exists: false, owner: '-', mode: '' },
    files: { exports: null, ganeshaConf: null, replicate: null, receive: null, keyGen: null, service: null, timer: null, keyPub: null, authorizedKeys: null },
    privateKey: false,
    units: {},
  };
}

/** The facts after the plan's actions ran (what a real apply leaves behind). */
function applied(f: NfsServerFacts, plan: Plan, unit: string): NfsServerFacts {
  const out = structuredClone(f);
  for (const a of plan.actions) {
    if (a.kind === 'write') {
      if (a.path === NFS_PATHS.exports) out.files.exports = a.content;
      if (a.path === NFS_PATHS.ganeshaConf) out.files.ganeshaConf = a.content;
    } else {
      if (/mkdir -p/.test(a.script)) out.dir = { exists: true, owner: 'root', mode: '755' };
      if (/systemctl enable --now/.test(a.script)) out.units[unit] = { active: 'active', enabled: 'enabled' };
    }
  }
  return out;
}

const titles = (p: Plan): string[] => p.actions.map((a) => a.title ?? (a.kind === 'write' ? a.path : ''));
const writeOf = (p: Plan, path: string): Extract<Action, { kind: 'write' }> => {
  const w = p.actions.find((a): a is Extract<Action, { kind: 'write' }> => a.kind === 'write' && a.path === path);
  assert.ok(w, `no write of ${path}: ${titles(p).join(' | ')}`);
  return w;
};

test('options: defaults (kernel server, CCC path, derived fsid) and one-line errors naming the field', () => {
  const o = nfsOptions({});
  assert.equal(o.server, 'kernel');
  assert.equal(o.exportDir, '/usr/safenet/ccc/packages');
  assert.equal(o.mountPath, o.exportDir);
  assert.equal(o.fsid, defaultFsid(o.exportDir));
  assert.ok(o.fsid >= 1000 && o.fsid < 61000);
  assert.throws(() => nfsOptions({ nfs: { exportDir: 'relative/dir' } }), /^Error: options\.nfs\.exportDir: .*\(got "relative\/dir"\)$/);
  assert.throws(() => nfsOptions({ nfs: { server: 'samba' } }), /options\.nfs\.server/);
  assert.throws(() => nfsOptions({ nfs: { exportDir: '/etc' } }), /system directory/);
  assert.throws(() => nfsOptions({ nfs: { exprtDir: '/srv' } }), /unknown setting "exprtDir"; known: server, exportDir/);
});

test('kernel server on Debian: export to each app address only, same fsid and file on both servers, then nothing to do', () => {
  const contents: string[] = [];
  for (const alias of ['nfs_primary', 'nfs_standby']) {
    const ctx = ctxFor(alias);
    const plan = exportPlan(freshServer(), ctx);
    assert.deepEqual(plan.actions.map((a) => (a.kind === 'run' ? a.script : `write ${a.path}`)), [
      'umask 0022\nmkdir -p /usr/safenet/ccc/packages',
      `write ${NFS_PATHS.exports}`,
      'systemctl enable --now nfs-server',
      'exportfs -ra',
    ]);
    const w = writeOf(plan, NFS_PATHS.exports);
    const fsid = nfsOptions(ctx.options).fsid;
    const line = w.content.split('\n').find((l) => l.startsWith('/usr/safenet/ccc/packages '));
    assert.equal(
      line,
      `/usr/safenet/ccc/packages 198.18.0.15(rw,sync,no_subtree_check,no_root_squash,fsid=${fsid}) 198.18.0.16(rw,sync,no_subtree_check,no_root_squash,fsid=${fsid})`,
    );
    for (const other of ['198.18.0.11', '198.18.0.13', '198.18.0.14', '198.18.0.101', '*']) assert.ok(!line!.includes(`${other}(`), `${other} must not be exported to`);
    contents.push(w.content);
    const after = exportPlan(applied(freshServer(), plan, 'nfs-server'), ctx);
    assert.deepEqual(after.actions, [], titles(after).join(' | '));
    assert.match(after.reason!, /exported by nfs-server to 198\.18\.0\.15, 198\.18\.0\.16/);
  }
  assert.equal(contents[0], contents[1], 'the exports file is identical on both NFS servers');
});

test('adding app3 re-exports (exportfs -ra, no restart) with the new address', () => {
  const ctx = ctxFor('nfs_primary');
  const first = exportPlan(freshServer(), ctx);
  const state = applied(freshServer(), first, 'nfs-server');
  const ctx3 = ctxFor('nfs_primary', {}, { ...SERVERS, app3: '198.18.0.18' });
  const plan = exportPlan(state, ctx3);
  assert.deepEqual(plan.actions.map((a) => (a.kind === 'run' ? a.script : `write ${a.path}`)), [`write ${NFS_PATHS.exports}`, 'exportfs -ra']);
  assert.match(writeOf(plan, NFS_PATHS.exports).content, /198\.18\.0\.18\(rw,/);
});

test('nfs-ganesha: FSAL VFS, Export_Id/Filesystem_Id = fsid, clients = the app servers, restart on change, grace period from the options', () => {
  const options = { nfs: { server: 'ganesha', exportDir: '/srv/nfs', graceSec: 10, fsid: 4242 } };
  const ctx = ctxFor('nfs_standby', options);
  const plan = exportPlan(freshServer(), ctx);
  const conf = writeOf(plan, NFS_PATHS.ganeshaConf).content;
  for (const s of ['Export_Id = 4242;', 'Filesystem_Id = 4242.4242;', 'Path = "/srv/nfs";', 'Pseudo = "/srv/nfs";', 'Name = VFS;', 'Clients = 198.18.0.15, 198.18.0.16;', 'Grace_Period = 10;', 'Lease_Lifetime = 10;', 'Protocols = 4;']) {
    assert.ok(conf.includes(s), `ganesha.conf lacks ${s}:\n${conf}`);
  }
  assert.match(conf, /EXPORT \{[\s\S]*Access_Type = None;[\s\S]*CLIENT \{[\s\S]*Access_Type = RW;/, 'nobody but the listed clients gets access');
  assert.equal(conf, writeOf(exportPlan(freshServer(), ctxFor('nfs_primary', options)), NFS_PATHS.ganeshaConf).content, 'identical on both servers');
  // Running with an older config: restart (a reload does not re-read NFSv4 settings).
  const running = { ...applied(freshServer(), plan, 'nfs-ganesha'), files: { ...freshServer().files, ganeshaConf: 'old' } };
  const again = exportPlan(running, ctx);
  assert.deepEqual(again.actions.map((a) => (a.kind === 'run' ? a.script : 'write')), ['write', 'systemctl restart nfs-ganesha']);
  // The kernel server already running holds 2049: refused, one line, with the fix.
  const clash = { ...freshServer(), units: { 'nfs-server': { active: 'active', enabled: 'enabled' } } };
  assert.throws(() => exportPlan(clash, ctx), /^Error: nfs_standby: nfs-server is running and holds port 2049; .*systemctl disable --now nfs-server/);
});

test('packages: kernel server and ganesha per OS family', () => {
  assert.deepEqual(serverPackages(OS.debian12!, 'nfs_primary', nfsOptions({})), ['nfs-kernel-server', 'rsync', 'openssl', 'openssh-client']);
  assert.deepEqual(serverPackages(OS.rocky9!, 'nfs_primary', nfsOptions({})), ['nfs-utils', 'rsync', 'openssl', 'openssh-clients']);
  assert.deepEqual(serverPackages(OS.debian12!, 'nfs_primary', nfsOptions({ nfs: { server: 'ganesha' } })).slice(0, 2), ['nfs-ganesha', 'nfs-ganesha-vfs']);
  const step = nfsRunbook.steps.find((s) => s.id === 'nfs.packages')!;
  const plan = step.plan({ os: OS.rocky9, srv: { ...freshServer(), packages: ['rsync', 'openssl', 'openssh-clients'] } } as never, ctxFor('nfs_primary', { nfs: { server: 'ganesha' } }));
  assert.equal(plan.actions.length, 1);
  assert.equal((plan.actions[0] as { script: string }).script, 'umask 0022\ndnf install -y nfs-ganesha nfs-ganesha-vfs');
  assert.match(plan.reason!, /CentOS Storage SIG/);
});

test('replication steps: key made on the server from a secret on stdin, peer trusted with a restricted line, timer pushes only from the VIP holder', () => {
  const secrets = new TestSecrets();
  const steps = Object.fromEntries(nfsRunbook.steps.map((s) => [s.id, s]));
  const ctxP = ctxFor('nfs_primary', {}, SERVERS, secrets);
  const ctxS = ctxFor('nfs_standby', {}, SERVERS, secrets);
  const key = steps['nfs.replication-key']!.plan({ srv: freshServer() } as never, ctxP);
  const gen = key.actions.find((a) => a.kind === 'run')!;
  assert.equal(gen.kind, 'run');
  const secret = secrets.get('nfs-replication-key-nfs_primary').reveal();
  const [cmdLine, ...body] = (gen as { script: string }).script.split('\n');
  assert.ok(!cmdLine!.includes(secret), 'the secret is not on the command line');
  assert.equal(body[0], secret, 'the secret is the heredoc body (stdin)');
  // After apply (the public key file matches what the jump host computes): nothing to do.
  const pub = replicationPublicKey(ctxP, 'nfs_primary');
  const keyGen = (key.actions.find((a) => a.kind === 'write') as { content: string }).content;
  const doneKey = steps['nfs.replication-key']!.plan({ srv: { ...freshServer(), privateKey: true, files: { ...freshServer().files, keyPub: `${pub}\n`, keyGen } } } as never, ctxP);
  assert.deepEqual(doneKey.actions, []);

  const trust = steps['nfs.replication-trust']!.plan({ srv: { ...freshServer(), files: { ...freshServer().files, authorizedKeys: 'ssh-ed25519 AAAAadmin admin@jump\n' } } } as never, ctxS);
  const keys = writeOf(trust, NFS_PATHS.authorizedKeys);
  assert.equal(keys.mode, 0o600);
  assert.equal(keys.content, `ssh-ed25519 AAAAadmin admin@jump\nfrom="198.18.0.13,198.18.0.101",restrict,command="${NFS_PATHS.receive}" ${pub}\n`);
  const again = steps['nfs.replication-trust']!.plan({ srv: { ...freshServer(), files: { ...freshServer().files, authorizedKeys: keys.content, receive: writeOf(trust, NFS_PATHS.receive).content } } } as never, ctxS);
  assert.deepEqual(again.actions, [], 'idempotent');

  const timer = steps['nfs.replication-timer']!.plan({ srv: freshServer() } as never, ctxS);
  const script = writeOf(timer, NFS_PATHS.replicate).content;
  assert.match(script, /grep -q '\^198\\\.18\\\.0\\\.101\/'/, 'pushes only while holding the NFS VIP');
  assert.match(script, /root@198\.18\.0\.13:\/usr\/safenet\/ccc\/packages\/$/m, 'nfs_standby pushes to nfs_primary when it holds the VIP');
  assert.match(writeOf(timer, NFS_PATHS.timer).content, /OnUnitActiveSec=60s/);
  assert.deepEqual(timer.actions.filter((a) => a.kind === 'run').map((a) => (a as { script: string }).script), ['systemctl daemon-reload', 'systemctl enable --now ha-setup-nfs-replicate.timer']);
  // Without nfs_vip in the table: one line naming it.
  const noVip = { ...SERVERS } as Record<string, string>;
  delete noVip.nfs_vip;
  assert.throws(() => steps['nfs.replication-timer']!.plan({ srv: freshServer() } as never, ctxFor('nfs_primary', {}, noVip)), /^Error: nfs_vip: not in the server table/);
  // A partial table with one NFS server: no replication steps target it.
  assert.deepEqual(steps['nfs.replication-timer']!.targets({ hosts: tableOf({ servers: { nfs_primary: '198.18.0.13', app1: '198.18.0.15' } }).hosts, options: {} }), []);
});

interface ClientCase {
  name: string;
  os: string;
  options?: Record<string, unknown>;
  facts: NfsClientFacts;
  expect: { empty?: string; commands?: string[]; fstab?: string | null; reason?: string[] };
}

for (const c of (JSON.parse(readFileSync(new URL('client-plans.json', FIXTURES), 'utf8')) as { cases: ClientCase[] }).cases) {
  test(`app server mount (plan fixture only): ${c.name}`, () => {
    const ctx = ctxFor('app2', c.options ?? {});
    const plan = mountPlan({ os: OS[c.os]!, cl: c.facts }, ctx);
    if (c.expect.empty) {
      assert.deepEqual(titles(plan), []);
      assert.ok(plan.reason?.includes(c.expect.empty), plan.reason);
      return;
    }
    const runs = plan.actions.filter((a): a is Extract<Action, { kind: 'run' }> => a.kind === 'run').map((a) => a.script.split('\n').pop()!);
    assert.deepEqual(runs.map((r) => r.replace(/^DEBIAN_FRONTEND=noninteractive /, '')), c.expect.commands);
    const w = plan.actions.find((a) => a.kind === 'write');
    if (c.expect.fstab === null) assert.equal(w, undefined, 'fstab unchanged');
    else {
      assert.equal(w?.kind === 'write' ? w.content : undefined, c.expect.fstab);
      // Idempotent: the written fstab, mounted from the VIP, plans nothing.
      const o = nfsOptions(ctx.options);
      const after = mountPlan({ os: OS[c.os]!, cl: { packages: ['nfs-common', 'nfs-utils'], fstab: c.expect.fstab!, dirExists: true, localEntries: 0, mounted: { source: `198.18.0.101:${o.exportDir}`, target: o.mountPath, fstype: 'nfs4', options: 'rw' } } }, ctx);
      assert.deepEqual(titles(after), []);
    }
    for (const r of c.expect.reason ?? []) assert.ok(plan.reason?.includes(r), `reason "${plan.reason}" lacks "${r}"`);
  });
}

test('mounts are read from /proc/self/mounts with escapes, the last mount on the path wins', () => {
  const text = 'rootfs / rootfs rw 0 0\n/dev/sda1 /srv/a\\040b ext4 rw 0 0\n198.18.0.101:/x /srv/a\\040b nfs4 rw,vers=4.2 0 0\n';
  assert.deepEqual(parseMounts(text, '/srv/a b'), { source: '198.18.0.101:/x', target: '/srv/a b', fstype: 'nfs4', options: 'rw,vers=4.2' });
  assert.equal(parseMounts(text, '/srv'), null);
});

test('mountClients: false leaves the app servers alone; the steps run in the order servers, replication, then (runbook nfs-mount) mounts, verify', () => {
  const hosts = tableOf({ servers: SERVERS }).hosts;
  const mount = nfsMountRunbook.steps.find((s) => s.id === 'nfs.mount')!;
  assert.deepEqual(mount.targets({ hosts, options: {} }), ['app1', 'app2']);
  assert.deepEqual(mount.targets({ hosts, options: { nfs: { mountClients: false } } }), []);
  assert.deepEqual(nfsRunbook.steps.map((s) => s.id), ['nfs.packages', 'nfs.selinux', 'nfs.export', 'nfs.firewall', 'nfs.replication-key', 'nfs.replication-trust', 'nfs.replication-timer']);
  assert.deepEqual(nfsMountRunbook.steps.map((s) => s.id), ['nfs.mount', 'nfs.verify']);
});

const stepOf = (id: string) => nfsRunbook.steps.find((s) => s.id === id)!;
const noFw = {
  firewalld: { running: false, defaultZone: '', runtime: [], permanent: [] },
  ufw: { installed: false, active: false, rules: [] },
  nft: { installed: false, serviceEnabled: false, chains: [], sets: [], tables: [], conf: null, ours: null, accept: null },
  iptables: { v4: null, v6: null, persist: null },
};
const netOf = (address: string) => ({ addresses: [{ iface: 'eth0', family: 'inet', address, prefix: 24, scope: 'global' }], hostname: 'h', fqdn: 'h' });

test('firewall (plan fixtures): tcp 2049 from each app server only, with ufw or firewalld; app servers by host name are resolved on the NFS server', () => {
  const fw = stepOf('nfs.firewall');
  const hosts = tableOf({ servers: SERVERS }).hosts;
  assert.deepEqual(fw.targets({ hosts, options: {} }), ['nfs_primary', 'nfs_standby']);
  const ufw = fw.plan({ fw: { ...noFw, ufw: { installed: true, active: true, rules: [] } }, nft: { rules: [] }, net: netOf(SERVERS.nfs_primary), resolve: {} } as never, ctxFor('nfs_primary'));
  assert.deepEqual(ufw.actions.map((a) => (a.kind === 'run' ? a.script : '')), [
    "ufw allow proto tcp from 198.18.0.15 to any port 2049 comment ha-setup-haproxy",
    "ufw allow proto tcp from 198.18.0.16 to any port 2049 comment ha-setup-haproxy",
  ]);
  const zone = { name: 'public', interfaces: ['eth0'], ports: [], richRules: [] };
  const fwd = fw.plan({ fw: { ...noFw, firewalld: { running: true, defaultZone: 'public', runtime: [zone], permanent: [zone] } }, nft: { rules: [] }, net: netOf(SERVERS.nfs_standby), resolve: {} } as never, ctxFor('nfs_standby'));
  const text = fwd.actions.map((a) => (a.kind === 'run' ? a.script : '')).join('\n');
  for (const ip of [SERVERS.app1, SERVERS.app2]) {
    assert.match(text, new RegExp(`firewall-cmd --zone=public --add-rich-rule='rule family="ipv4" source address="${ip.replace(/\./g, '\\.')}/32" port port="2049" protocol="tcp" accept'`));
    assert.match(text, new RegExp(`firewall-cmd --permanent --zone=public --add-rich-rule='rule family="ipv4" source address="${ip.replace(/\./g, '\\.')}/32" port port="2049"`));
  }
  // No active firewall: nothing to do, and it says so.
  const none = fw.plan({ fw: noFw, nft: { rules: [] }, net: netOf(SERVERS.nfs_primary), resolve: {} } as never, ctxFor('nfs_primary'));
  assert.deepEqual(none.actions, []);
  assert.match(none.reason!, /no firewall is active on nfs_primary: tcp 2049 from 198\.18\.0\.15, 198\.18\.0\.16/);
  // Host names: resolved on the NFS server; one that does not resolve is named with the fix.
  const named = { ...SERVERS, app2: 'app2.example.lan' };
  const viaDns = fw.plan({ fw: { ...noFw, ufw: { installed: true, active: true, rules: [] } }, nft: { rules: [] }, net: netOf(SERVERS.nfs_primary), resolve: { 'app2.example.lan': ['198.18.0.26'] } } as never, ctxFor('nfs_primary', {}, named));
  assert.match(viaDns.actions.map((a) => (a.kind === 'run' ? a.script : '')).join('\n'), /from 198\.18\.0\.26 to any port 2049/);
  assert.throws(() => fw.plan({ fw: noFw, nft: { rules: [] }, net: netOf(SERVERS.nfs_primary), resolve: {} } as never, ctxFor('nfs_primary', {}, named)), /^Error: app2\.example\.lan does not resolve on nfs_primary; put its IP address in the server table/);
});

test('SELinux (plan fixtures, RHEL family only here): the kernel server gets nfs_export_all_rw when it is off; nothing on Debian or with ganesha', () => {
  const se = stepOf('nfs.selinux');
  const hosts = tableOf({ servers: SERVERS }).hosts;
  assert.deepEqual(se.targets({ hosts, options: {} }), ['nfs_primary', 'nfs_standby']);
  assert.deepEqual(se.targets({ hosts, options: { nfs: { server: 'ganesha' } } }), []);
  const off = se.plan({ se: parseSelinuxBool('SELINUX=Enforcing\nBOOL=nfs_export_all_rw --> off\n') } as never, ctxFor('nfs_primary'));
  assert.deepEqual(off.actions.map((a) => (a.kind === 'run' ? a.script : '')), ['setsebool -P nfs_export_all_rw 1']);
  const on = se.plan({ se: parseSelinuxBool('SELINUX=Enforcing\nBOOL=nfs_export_all_rw --> on\n') } as never, ctxFor('nfs_primary'));
  assert.match(on.reason!, /SELinux enforcing: nfs_export_all_rw is on/);
  const debian = se.plan({ se: parseSelinuxBool('SELINUX=absent\n') } as never, ctxFor('nfs_primary'));
  assert.deepEqual(debian.actions, []);
  assert.match(debian.reason!, /SELinux is not installed/);
});
