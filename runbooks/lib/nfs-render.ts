/**
 * The files the NFS runbook writes, rendered from assets/nfs/*.tmpl, and the few derived
 * values (app clients, fstab line) shared by the runbook, the uninstall plan and the
 * `ha-setup nfs` helper. Pure functions of the table and options.
 */
import { renderAssetTemplate } from './assets.js';
import type { HostContext, HostRef } from '../../source/engine/step.js';
import { NFS_PATHS } from './nfs-facts.js';
import type { NfsOptions } from './nfs-options.js';

/** assets/nfs/<name> with every {{key}} replaced; a missing or unused key is a bug. */
export function renderNfsAsset(name: string, vars: Record<string, string | number> = {}): string {
  return renderAssetTemplate(`nfs/${name}`, vars);
}

/** The NFS server pair. */
export const NFS_NODES: readonly string[] = ['nfs_primary', 'nfs_standby'];

/** app1..appN of the table, in number order. */
export function appHosts(hosts: Record<string, HostRef | undefined>): HostRef[] {
  return Object.values(hosts)
    .filter((h): h is HostRef => Boolean(h && /^app\d+$/.test(h.alias)))
    .sort((a, b) => Number(a.alias.slice(3)) - Number(b.alias.slice(3)));
}

/** The exports' client list: every app server's address; refuses an empty list. */
export function exportClients(ctx: Pick<HostContext, 'hosts'>): string[] {
  const apps = appHosts(ctx.hosts);
  if (apps.length === 0) throw new Error('the server table has no app servers (app1, app2 ...): the NFS export would admit nobody; add them');
  return [...new Set(apps.map((a) => a.address))];
}

/** The other NFS node of the pair. */
export function peerOf(alias: string): string {
  return alias === 'nfs_primary' ? 'nfs_standby' : 'nfs_primary';
}

export function nfsVip(ctx: Pick<HostContext, 'addresses'>, why: string): string {
  const vip = ctx.addresses.nfs_vip;
  if (!vip) throw new Error(`nfs_vip: not in the server table; add the NFS VIP (${why})`);
  return vip;
}

const header = (alias: string) => ({ alias });

/** /etc/exports.d/ha-setup.exports (kernel server). */
export function exportsFile(_alias: string, o: NfsOptions, clients: string[]): string {
  const opts = ['rw', 'sync', 'no_subtree_check', o.rootSquash ? 'root_squash' : 'no_root_squash', `fsid=${o.fsid}`].join(',');
  const line = `${o.exportDir} ${clients.map((c) => `${c}(${opts})`).join(' ')}`;
  return renderNfsAsset('exports.tmpl', { dir: o.exportDir, line });
}

/** /etc/ganesha/ganesha.conf (nfs-ganesha, FSAL VFS). */
export function ganeshaConf(_alias: string, o: NfsOptions, clients: string[]): string {
  return renderNfsAsset('ganesha.conf.tmpl', {
    dir: o.exportDir,
    protocols: o.v3 ? '3, 4' : '4',
    v3: o.v3 ? 'true' : 'false',
    grace: o.graceSec,
    lease: Math.min(60, o.graceSec),
    fsid: o.fsid,
    squash: o.rootSquash ? 'Root_Squash' : 'No_Root_Squash',
    clients: clients.join(', '),
  });
}

/** The forced command of the replication key on the receiving server. */
export function receiveScript(alias: string, o: NfsOptions): string {
  return renderNfsAsset('rsync-receive.sh.tmpl', { ...header(alias), dir: o.exportDir, replaced: NFS_PATHS.replaced });
}

export function replicateScript(alias: string, o: NfsOptions, peer: string, vip: string): string {
  return renderNfsAsset('replicate.sh.tmpl', {
    ...header(alias),
    dir: o.exportDir,
    peer,
    vip,
    vipRe: vip.replace(/\./g, '\\.'),
    interval: o.replicationIntervalSec,
    replaced: NFS_PATHS.replaced,
    key: NFS_PATHS.key,
    knownHosts: NFS_PATHS.knownHosts,
  });
}

export function replicateService(alias: string): string {
  return renderNfsAsset('replicate.service.tmpl', { ...header(alias), script: NFS_PATHS.replicate });
}

export function replicateTimer(alias: string, o: NfsOptions): string {
  return renderNfsAsset('replicate.timer.tmpl', { ...header(alias), interval: o.replicationIntervalSec });
}

/**
 * The authorized_keys entry that lets the peer push: from the peer's address (or the VIP,
 * which it may use as source while holding it) only, no pty/forwarding (restrict), and only
 * the rsync receiver (the forced command checks the rest).
 */
export function authorizedLine(peerAddress: string, vip: string | undefined, publicKey: string): string {
  const from = [peerAddress, vip].filter(Boolean).join(',');
  return `from="${from}",restrict,command="${NFS_PATHS.receive}" ${publicKey}`;
}

/** authorized_keys with the line for `comment` replaced by `line` (or removed when null). */
export function withAuthorizedLine(previous: string | null, comment: string, line: string | null): string {
  const kept = (previous ?? '').split('\n').filter((l) => l !== '' && !l.endsWith(` ${comment}`));
  const out = line ? [...kept, line] : kept;
  return out.length ? `${out.join('\n')}\n` : '';
}

/** The comment line that precedes ha-setup's fstab entry (how uninstall finds it). */
export const FSTAB_MARK = '# ha-setup (nfs): the shared directory from the NFS VIP';

/**
 * nfs4: the NFSv4 client (one TCP connection to 2049, no rpcbind/mountd). hard: a request
 * blocks and retries while the VIP moves instead of failing the app's write with EIO (soft
 * would silently lose writes during a failover). _netdev: mounted after the network is up at
 * boot. timeo=600,retrans=2: the TCP defaults, spelt out (60 s per try, then a "server not
 * responding" message and retry). noatime: no write for every read. No nofail: an app that
 * starts without its share would write into the bare local directory.
 */
export const MOUNT_OPTIONS = 'rw,hard,_netdev,proto=tcp,timeo=600,retrans=2,noatime';

export function fstabLine(vip: string, o: NfsOptions): string {
  return `${vip}:${o.exportDir} ${o.mountPath} nfs4 ${MOUNT_OPTIONS} 0 0`;
}

/** /etc/fstab without ha-setup's entry and any other line mounting something at mountPath. */
export function fstabWithout(previous: string | null, mountPath: string): string {
  const out: string[] = [];
  for (const line of (previous ?? '').split('\n')) {
    if (line === FSTAB_MARK) continue;
    const f = line.trim().split(/\s+/);
    if (!line.trim().startsWith('#') && f.length >= 2 && f[1] === mountPath) continue;
    out.push(line);
  }
  while (out.length && out[out.length - 1] === '') out.pop();
  return out.length ? `${out.join('\n')}\n` : '';
}

/** /etc/fstab with ha-setup's entry (replacing whatever mounted mountPath before). */
export function fstabWith(previous: string | null, line: string, mountPath: string): string {
  return `${fstabWithout(previous, mountPath)}${FSTAB_MARK}\n${line}\n`;
}

/** Other lines of fstab that mount something at mountPath (replaced by ours: say so). */
export function fstabOthers(previous: string | null, mountPath: string, ours: string): string[] {
  return (previous ?? '').split('\n').filter((l) => {
    const f = l.trim().split(/\s+/);
    return !l.trim().startsWith('#') && f[1] === mountPath && l.trim() !== ours;
  });
}
