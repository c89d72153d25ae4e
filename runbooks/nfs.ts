/**
 * NFS sharing (the guides' NFS section and their helper script): an NFS server on nfs_primary
 * and nfs_standby exporting the shared directory to the app servers only, with the same fsid
 * on both; replication of the data from the server that holds the NFS VIP to the other one
 * (rsync over SSH on a systemd timer, so the direction follows the VIP); and on every app
 * server a hard NFSv4 mount from the VIP in /etc/fstab, mounted now. The NFS port (tcp 2049) is opened to
 * the app servers only with the host's firewall tool; on the RHEL family with SELinux the kernel
 * server gets nfs_export_all_rw.
 *
 * Replication: rsync on a timer rather than lsyncd. rsync is in every distribution's base
 * repositories (lsyncd needs EPEL on the RHEL family), each pass is stateless and decides its
 * direction from who holds the VIP at that moment (no daemon for keepalived to start and stop),
 * and a missed pass is simply caught up by the next one. The cost: the standby lags by up to
 * options.nfs.replicationIntervalSec (60 s) plus one pass; a failover loses at most that.
 * After a failover, files the old active had not pushed yet are replaced/deleted on it by the
 * new active's first push: rsync keeps them under /var/lib/ha-setup/nfs-replaced/<date>.
 */
import { heredoc, sh } from '../source/engine/shell.js';
import { defineStep, done, type Action, type ExecContext, type HostContext, type HostRef, type Plan, type Runbook, type Step } from '../source/engine/step.js';
import { addressesFor, firewallStep } from './lib/haproxy-steps.js';
import { osFact, type OsInfo } from './lib/host-facts.js';
import { selinuxBoolFact, selinuxBoolPlan } from './lib/selinux.js';
import { NFS_PATHS, REPLICATION_TIMER, nfsClientFact, nfsServerFact, type NfsClientFacts, type NfsServerFacts } from './lib/nfs-facts.js';
import { keyComment, replicationPublicKey, replicationSecret } from './lib/nfs-key.js';
import { nfsOptions, type NfsOptions } from './lib/nfs-options.js';
import {
  NFS_NODES,
  appHosts,
  authorizedLine,
  exportClients,
  exportsFile,
  fstabLine,
  fstabOthers,
  fstabWith,
  ganeshaConf,
  nfsVip,
  peerOf,
  receiveScript,
  renderNfsAsset,
  replicateScript,
  replicateService,
  replicateTimer,
  withAuthorizedLine,
} from './lib/nfs-render.js';

type Targets = Parameters<Step['targets']>[0];

/** The NFS nodes of the table (a partial table may have only nfs_primary; with none, the runner names them missing). */
const nfsNodes = ({ hosts }: Targets): string[] => {
  const present = NFS_NODES.filter((a) => hosts[a]);
  return present.length ? present : [...NFS_NODES];
};
/** Replication needs the pair: with only nfs_primary in a (partial) table there is nothing to do. */
const nfsPair = ({ hosts }: Targets): string[] => (NFS_NODES.every((a) => hosts[a]) ? [...NFS_NODES] : []);
/** The app servers mount the share when the table has the NFS VIP (a partial table with only the
 *  database pair leaves the NFS side out) and options.nfs.mountClients is not false. */
const appTargets = ({ hosts, options, addresses }: Targets): string[] =>
  nfsOptions(options).mountClients && (!addresses || addresses.nfs_vip !== undefined) ? appHosts(hosts).map((h) => h.alias) : [];

const UMASK = 'umask 0022';

function installCommand(os: OsInfo, alias: string, packages: string[]): string {
  if (os.packageManager === 'apt') return `${UMASK}\n${sh`DEBIAN_FRONTEND=noninteractive apt-get install -y ${packages}`}`;
  if (os.packageManager === 'dnf' || os.packageManager === 'yum') return `${UMASK}\n${sh`${os.packageManager} install -y ${packages}`}`;
  throw new Error(`${alias}: no apt-get, dnf or yum found; install ${packages.join(' ')} yourself`);
}

function family(os: OsInfo, alias: string): 'debian' | 'rhel' {
  if (os.family === 'unknown') throw new Error(`${alias}: ${os.prettyName} is neither Debian- nor RHEL-family; ha-setup knows the NFS packages of those only`);
  return os.family;
}

/** The server packages for the chosen server and OS family. */
export function serverPackages(os: OsInfo, alias: string, o: NfsOptions): string[] {
  const deb = family(os, alias) === 'debian';
  const server = o.server === 'ganesha' ? ['nfs-ganesha', 'nfs-ganesha-vfs'] : [deb ? 'nfs-kernel-server' : 'nfs-utils'];
  return [...server, 'rsync', 'openssl', deb ? 'openssh-client' : 'openssh-clients'];
}

/** The systemd unit of the chosen server (nfs-server is the kernel server's name on both families). */
export const serverUnit = (o: NfsOptions): string => (o.server === 'ganesha' ? 'nfs-ganesha' : 'nfs-server');
const otherUnit = (o: NfsOptions): string => (o.server === 'ganesha' ? 'nfs-server' : 'nfs-ganesha');

const active = (f: NfsServerFacts, unit: string): boolean => f.units[unit]?.active === 'active';
const enabled = (f: NfsServerFacts, unit: string): boolean => f.units[unit]?.enabled === 'enabled';

function write(path: string, content: string, previous: string | null, mode: number, title?: string): Action | null {
  if (previous === content) return null;
  return { kind: 'write', title, path, content, mode, owner: 'root', group: 'root', previous };
}

const planOrDone = (actions: (Action | null)[], reason: string, doneReason: string): Plan => {
  const list = actions.filter((a): a is Action => a !== null);
  return list.length ? { actions: list, reason } : done(doneReason);
};

// ---------------------------------------------------------------------------------------------
// Servers

const packages = defineStep({
  id: 'nfs.packages',
  title: 'NFS server packages (kernel server or nfs-ganesha), rsync, openssl',
  targets: nfsNodes,
  facts: (ctx) => ({ os: osFact, srv: nfsServerFact(nfsOptions(ctx.options).exportDir) }),
  inputs: (ctx) => nfsOptions(ctx.options).server,
  plan({ os, srv }, ctx) {
    const o = nfsOptions(ctx.options);
    const wanted = serverPackages(os, ctx.host.alias, o);
    const missing = wanted.filter((p) => !srv.packages.includes(p));
    if (missing.length === 0) return done(`${wanted.join(', ')} installed`);
    const rhelGanesha = o.server === 'ganesha' && os.family === 'rhel' ? '; on the RHEL family nfs-ganesha comes from the CentOS Storage SIG (centos-release-nfs-ganesha*) or EPEL: enable one first' : '';
    return {
      actions: [{ kind: 'run', title: `install ${missing.join(' ')}`, script: installCommand(os, ctx.host.alias, missing), sudo: true }],
      reason: `${o.server === 'ganesha' ? 'nfs-ganesha (FSAL VFS)' : 'the kernel NFS server'} on ${os.prettyName}${rhelGanesha}`,
    };
  },
});

/** What the export step writes on a server: the config file and its path. */
export function serverConfig(ctx: HostContext): { path: string; content: string } {
  const o = nfsOptions(ctx.options);
  const clients = exportClients(ctx);
  return o.server === 'ganesha'
    ? { path: NFS_PATHS.ganeshaConf, content: ganeshaConf(ctx.host.alias, o, clients) }
    : { path: NFS_PATHS.exports, content: exportsFile(ctx.host.alias, o, clients) };
}

export function exportPlan(srv: NfsServerFacts, ctx: HostContext): Plan {
  const o = nfsOptions(ctx.options);
  const unit = serverUnit(o);
  const other = otherUnit(o);
  if (active(srv, other)) {
    throw new Error(`${ctx.host.alias}: ${other} is running and holds port 2049; options.nfs.server is ${o.server}: stop and disable ${other} (systemctl disable --now ${other}) or set options.nfs.server`);
  }
  const { path, content } = serverConfig(ctx);
  const previous = o.server === 'ganesha' ? srv.files.ganeshaConf : srv.files.exports;
  const actions: Action[] = [];
  if (!srv.dir.exists) {
    actions.push({ kind: 'run', title: `create ${o.exportDir}`, script: `${UMASK}\n${sh`mkdir -p ${o.exportDir}`}`, sudo: true });
  }
  const changed = previous !== content;
  if (changed) actions.push({ kind: 'write', title: `export ${o.exportDir} to the app servers only (fsid ${o.fsid})`, path, content, mode: 0o644, owner: 'root', group: 'root', previous });
  const running = active(srv, unit);
  if (!running || !enabled(srv, unit)) {
    actions.push({ kind: 'run', title: `enable and start ${unit}`, script: sh`systemctl enable --now ${unit}`, sudo: true });
  }
  if (changed && running) {
    actions.push(
      o.server === 'ganesha'
        ? { kind: 'run', title: `restart ${unit} (new configuration; NFSv4 clients reclaim their state within the ${o.graceSec} s grace period)`, script: sh`systemctl restart ${unit}`, sudo: true }
        : { kind: 'run', title: 're-export (exportfs -ra: no restart, no grace period)', script: 'exportfs -ra', sudo: true },
    );
  } else if (changed && o.server === 'kernel') {
    actions.push({ kind: 'run', title: 're-export (exportfs -ra)', script: 'exportfs -ra', sudo: true });
  }
  if (actions.length === 0) return done(`${o.exportDir} is exported by ${unit} to ${exportClients(ctx).join(', ')} (fsid ${o.fsid}); ${unit} is enabled and running`);
  return { actions, reason: `${o.server === 'ganesha' ? 'nfs-ganesha' : 'kernel NFS server'}: NFSv4${o.v3 ? ' and v3' : ''}, ${o.rootSquash ? 'root_squash' : 'no_root_squash'}` };
}

async function verifyExport(ctx: ExecContext): Promise<string> {
  const o = nfsOptions(ctx.options);
  const unit = serverUnit(o);
  const r = await ctx.run(`check that ${unit} serves ${o.exportDir}`, [
    sh`systemctl is-active --quiet ${unit}`,
    o.server === 'kernel' ? sh`exportfs -s | grep -q -- ${`${o.exportDir} `}` : 'for i in $(seq 1 20); do ss -Hltn "sport = :2049" | grep -q . && exit 0; sleep 0.5; done; exit 1',
  ].join('\n'), { sudo: true, check: false });
  if (r.code !== 0) throw new Error(`${ctx.host.alias}: ${unit} does not serve ${o.exportDir} (${o.server === 'kernel' ? 'exportfs -s lacks it' : 'nothing listens on 2049'}); see journalctl -u ${unit}`);
  return `${unit} serves ${o.exportDir}`;
}

const exportStep = defineStep({
  id: 'nfs.export',
  title: 'Export the shared directory to the app servers only, the same fsid on both servers',
  targets: nfsNodes,
  facts: (ctx) => ({ srv: nfsServerFact(nfsOptions(ctx.options).exportDir) }),
  inputs: (ctx) => serverConfig(ctx),
  plan: ({ srv }, ctx) => exportPlan(srv, ctx),
  verify: verifyExport,
});

/** NFSv4 needs one port: tcp 2049 from the app servers (rpcbind and mountd are NFSv3 only). */
export const NFS_PORT = 2049;

const firewall = firewallStep('nfs', {
  title: 'Firewall on the NFS servers: NFSv4 (tcp 2049) from the app servers only',
  targets: nfsNodes,
  rules: (ctx, resolved) => {
    const apps = addressesFor(ctx, resolved, appHosts(ctx.hosts).map((h) => h.alias));
    if (apps.length === 0) throw new Error('the server table has no app servers (app1, app2 ...): nobody would be let in to the NFS port; add them');
    return [{ port: NFS_PORT, from: apps }];
  },
});

/** The kernel server on the RHEL family: exports are read-write only with nfs_export_all_rw on. */
const selinux = defineStep({
  id: 'nfs.selinux',
  title: 'SELinux: nfs_export_all_rw = 1 (the kernel NFS server may export the share read-write)',
  targets: (ctx) => (nfsOptions(ctx.options).server === 'kernel' ? nfsNodes(ctx) : []),
  facts: { se: selinuxBoolFact('nfs_export_all_rw') },
  plan: ({ se }) => selinuxBoolPlan(se, 'nfs_export_all_rw', 'the app servers write to the share'),
});

// ---------------------------------------------------------------------------------------------
// Replication (rsync over SSH, pushed by the VIP holder)

const keyGenScript = (): string => renderNfsAsset('replication-key.sh');

const replicationKey = defineStep({
  id: 'nfs.replication-key',
  title: 'SSH key for the replication (ed25519, made on the server from a generated secret)',
  targets: nfsPair,
  facts: (ctx) => ({ srv: nfsServerFact(nfsOptions(ctx.options).exportDir) }),
  plan({ srv }, ctx) {
    const { alias } = ctx.host;
    const pub = replicationPublicKey(ctx, alias);
    const gen = write(NFS_PATHS.keyGen, keyGenScript(), srv.files.keyGen, 0o755, 'the key maker (bash + openssl)');
    if (srv.privateKey && srv.files.keyPub?.trim() === pub && !gen) return done(`${NFS_PATHS.key} holds the replication key (${pub.split(' ')[1]!.slice(-12)})`);
    const { open, body } = heredoc(replicationSecret(ctx, alias).reveal());
    return planOrDone(
      [
        gen,
        srv.privateKey && srv.files.keyPub?.trim() === pub
          ? null
          : {
              kind: 'run',
              title: `make the replication key ${NFS_PATHS.key} (the secret goes on stdin)`,
              // printf is a shell builtin: the secret is in no process's argv.
              script: `${sh`${NFS_PATHS.keyGen} ${NFS_PATHS.key} ${keyComment(alias)}`} ${open}\n${body}`,
              sudo: true,
            },
      ],
      'the private key is derived on this server; the jump host only computes the public key for the peer',
      'key present',
    );
  },
});

const replicationTrust = defineStep({
  id: 'nfs.replication-trust',
  title: "Trust the peer's replication key: rsync into the share only, from the peer only",
  targets: nfsPair,
  facts: (ctx) => ({ srv: nfsServerFact(nfsOptions(ctx.options).exportDir) }),
  inputs: (ctx) => [ctx.hosts[peerOf(ctx.host.alias)]?.address, ctx.addresses.nfs_vip, nfsOptions(ctx.options).exportDir],
  plan({ srv }, ctx) {
    const o = nfsOptions(ctx.options);
    const peer = peerOf(ctx.host.alias);
    const peerAddress = ctx.hosts[peer]!.address;
    const line = authorizedLine(peerAddress, ctx.addresses.nfs_vip, replicationPublicKey(ctx, peer));
    const keys = withAuthorizedLine(srv.files.authorizedKeys, keyComment(peer), line);
    return planOrDone(
      [
        write(NFS_PATHS.receive, receiveScript(ctx.host.alias, o), srv.files.receive, 0o755, 'the forced command: an rsync receiver into the share, nothing else'),
        srv.files.authorizedKeys === keys
          ? null
          : { kind: 'write', title: `let ${peer} (${peerAddress}) push into ${o.exportDir}`, path: NFS_PATHS.authorizedKeys, content: keys, mode: 0o600, owner: 'root', group: 'root', previous: srv.files.authorizedKeys },
      ],
      `root's authorized_keys gets one restricted line for ${peer}`,
      `${peer} may push into ${o.exportDir} (restricted authorized_keys line, forced rsync receiver)`,
    );
  },
});

const replicationTimer = defineStep({
  id: 'nfs.replication-timer',
  title: 'Replication timer: the NFS VIP holder pushes the share to its peer',
  targets: nfsPair,
  facts: (ctx) => ({ srv: nfsServerFact(nfsOptions(ctx.options).exportDir) }),
  inputs: (ctx) => [ctx.hosts[peerOf(ctx.host.alias)]?.address, ctx.addresses.nfs_vip, nfsOptions(ctx.options)],
  plan({ srv }, ctx) {
    const o = nfsOptions(ctx.options);
    const { alias } = ctx.host;
    const vip = nfsVip(ctx, 'replication pushes from the server that holds it');
    const peer = ctx.hosts[peerOf(alias)]!.address;
    const files = [
      write(NFS_PATHS.replicate, replicateScript(alias, o, peer, vip), srv.files.replicate, 0o755, `push ${o.exportDir}/ to ${peer} while holding ${vip}`),
      write(NFS_PATHS.service, replicateService(alias), srv.files.service, 0o644),
      write(NFS_PATHS.timer, replicateTimer(alias, o), srv.files.timer, 0o644, `every ${o.replicationIntervalSec} s`),
    ].filter((a): a is Action => a !== null);
    const actions: Action[] = [...files];
    if (files.length) actions.push({ kind: 'run', title: 'systemctl daemon-reload', script: 'systemctl daemon-reload', sudo: true });
    if (!active(srv, REPLICATION_TIMER) || !enabled(srv, REPLICATION_TIMER)) {
      actions.push({ kind: 'run', title: `enable and start ${REPLICATION_TIMER}`, script: sh`systemctl enable --now ${REPLICATION_TIMER}`, sudo: true });
    } else if (files.length) {
      actions.push({ kind: 'run', title: `restart ${REPLICATION_TIMER}`, script: sh`systemctl restart ${REPLICATION_TIMER}`, sudo: true });
    }
    if (!actions.length) return done(`${REPLICATION_TIMER} runs every ${o.replicationIntervalSec} s; it pushes to ${peer} while this server holds ${vip}`);
    return { actions, reason: `replication lag: at most about ${o.replicationIntervalSec} s plus one rsync pass` };
  },
  async verify(ctx) {
    const r = await ctx.run(`check ${REPLICATION_TIMER}`, sh`systemctl is-active ${REPLICATION_TIMER}`, { sudo: true, check: false });
    if (r.code !== 0) throw new Error(`${ctx.host.alias}: ${REPLICATION_TIMER} is not active (${r.stdout.trim() || 'unknown'}); see systemctl status ${REPLICATION_TIMER}`);
    return `${REPLICATION_TIMER} active`;
  },
});

// ---------------------------------------------------------------------------------------------
// App servers

export function clientPackages(os: OsInfo, alias: string): string[] {
  return [family(os, alias) === 'debian' ? 'nfs-common' : 'nfs-utils'];
}

export function mountPlan(f: { os: OsInfo; cl: NfsClientFacts }, ctx: HostContext): Plan {
  const o = nfsOptions(ctx.options);
  const vip = nfsVip(ctx, 'the app servers mount the share from it');
  const { os, cl } = f;
  const line = fstabLine(vip, o);
  const source = `${vip}:${o.exportDir}`;
  const actions: Action[] = [];
  const pkgs = clientPackages(os, ctx.host.alias).filter((p) => !cl.packages.includes(p));
  if (pkgs.length) actions.push({ kind: 'run', title: `install ${pkgs.join(' ')}`, script: installCommand(os, ctx.host.alias, pkgs), sudo: true });
  if (!cl.dirExists) actions.push({ kind: 'run', title: `create ${o.mountPath}`, script: `${UMASK}\n${sh`mkdir -p ${o.mountPath}`}`, sudo: true });
  const fstab = fstabWith(cl.fstab, line, o.mountPath);
  const replaced = fstabOthers(cl.fstab, o.mountPath, line);
  if (fstab !== cl.fstab) {
    actions.push({ kind: 'write', title: `fstab: ${source} on ${o.mountPath} (nfs4, hard, _netdev)`, path: NFS_PATHS.fstab, content: fstab, mode: 0o644, owner: 'root', group: 'root', previous: cl.fstab });
  }
  const m = cl.mounted;
  const right = m !== null && m.source === source && m.fstype.startsWith('nfs4');
  if (m && !right) {
    actions.push({ kind: 'run', title: `unmount ${m.source} (${m.fstype}) from ${o.mountPath}`, script: sh`umount ${o.mountPath}`, sudo: true });
  }
  if (!right) actions.push({ kind: 'run', title: `mount ${source} on ${o.mountPath}`, script: sh`mount ${o.mountPath}`, sudo: true });
  const notes = [
    replaced.length ? `replaces the fstab line(s) ${replaced.map((l) => JSON.stringify(l.trim())).join(', ')}` : '',
    !m && cl.localEntries > 0 ? `the ${cl.localEntries} local entries in ${o.mountPath} are hidden (not deleted) under the mount` : '',
  ].filter(Boolean);
  if (!actions.length) return done(`${source} is mounted on ${o.mountPath} and in /etc/fstab (nfs4, hard, _netdev)`);
  return { actions, reason: notes.join('; ') || `mount from the NFS VIP ${vip}` };
}

const MARKER = '.ha-setup-nfs-check';
const markerPath = (o: NfsOptions, alias: string): string => `${o.mountPath}/${MARKER}-${alias}`;

const mount = defineStep({
  id: 'nfs.mount',
  title: 'App servers: mount the share from the NFS VIP (fstab, hard, _netdev), now and at boot',
  targets: appTargets,
  facts: (ctx) => ({ os: osFact, cl: nfsClientFact(nfsOptions(ctx.options).mountPath) }),
  inputs: (ctx) => [ctx.addresses.nfs_vip, nfsOptions(ctx.options)],
  plan: (facts, ctx) => mountPlan(facts, ctx),
  async verify(ctx) {
    // Writes this app server's marker through the mount; nfs.verify reads it from the others.
    const o = nfsOptions(ctx.options);
    const p = markerPath(o, ctx.host.alias);
    await ctx.run(`write ${p} through the NFS mount`, `${sh`mountpoint -q ${o.mountPath}`}\n${sh`printf '%s %s\n' ${ctx.host.alias} "$(date +%s)" > ${p}`}`, { sudo: true });
    return `${p} written through the mount`;
  },
});

const verify = defineStep({
  id: 'nfs.verify',
  title: "Each app server reads the other app servers' files through the NFS VIP",
  targets: appTargets,
  facts: {},
  plan: (_f, ctx) => done(`checks, after nfs.mount, that ${appHosts(ctx.hosts).length} app server(s) see each other's files`),
  async verify(ctx) {
    const o = nfsOptions(ctx.options);
    const others = appHosts(ctx.hosts).filter((h) => h.alias !== ctx.host.alias);
    const bad: string[] = [];
    for (const h of others) {
      const p = markerPath(o, h.alias);
      const r = await ctx.run(`read ${p}`, `cat ${sh`${p}`}; echo "NOW=$(date +%s)"`, { sudo: true, check: false });
      const m = new RegExp(`^${h.alias} (\\d+)\\nNOW=(\\d+)`).exec(r.stdout);
      if (r.code !== 0 || !m || Number(m[2]) - Number(m[1]) > 900) bad.push(h.alias);
    }
    if (bad.length) throw new Error(`${ctx.host.alias}: does not see the files ${bad.join(', ')} wrote through the NFS VIP in the last 15 min; check the exports and mounts (ha-setup plan --runbook nfs)`);
    return `reads the files of ${others.map((h) => h.alias).join(', ') || 'no other app server'} through ${o.mountPath}`;
  },
});

/** Server-side steps, client-side steps: what `ha-setup nfs server|client` run. */
export const NFS_SERVER_STEPS = [packages, selinux, exportStep, firewall];
export const NFS_CLIENT_STEPS = [mount];

export const nfsRunbook: Runbook = {
  id: 'nfs',
  title: 'NFS sharing: the servers and the replication',
  description:
    "The guides' NFS section and helper script, server side: a kernel NFS server (or nfs-ganesha) on nfs_primary and nfs_standby exporting the shared directory (CCC: /usr/safenet/ccc/packages) to the app servers only with one fsid, tcp 2049 open to them only; rsync over SSH every minute from the NFS VIP holder to its peer (restricted key). The app servers mount it in runbook nfs-mount, once keepalived holds the NFS VIP.",
  steps: [packages, selinux, exportStep, firewall, replicationKey, replicationTrust, replicationTimer],
};

/**
 * The app servers' side, after keepalived: a hard mount needs the NFS VIP to answer, and the
 * keepalived runbook starts the NFS pair only once both servers serve the share (so the VIP
 * lands on nfs_primary, not on whichever server's health check passed first).
 */
export const nfsMountRunbook: Runbook = {
  id: 'nfs-mount',
  title: 'NFS on the app servers: mount the share from the NFS VIP',
  description: 'Each app server mounts the share from the NFS VIP (fstab: nfs4, hard, _netdev; now and at boot), writes a marker through the mount, and reads the other app servers\' markers.',
  steps: [mount, verify],
};
