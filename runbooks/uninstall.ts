/**
 * Uninstall (plan level): undoes what the runbooks did, in the order of issue 6: unmount the
 * share on every app server first (umount -f -l, fstab entry removed), then HAProxy,
 * keepalived, NFS, the standby and the primary; last, what is left on any host.
 *
 * What ha-setup wrote is found on each server, not remembered on the jump host:
 *  - files ha-setup replaced have backups: /var/lib/ha-setup/backups/<path>.<UTC timestamp>
 *    (taken by every write). The oldest backup of a path is the file before ha-setup; when that
 *    oldest copy is itself "Managed by ha-setup", the path did not exist before ha-setup and
 *    is removed instead. A file without backups that says "Managed by ha-setup" is removed too.
 *  - files ha-setup created by name (ha-setup* in the directories it writes to) are removed.
 *  - /etc/fstab, /etc/hosts and root's authorized_keys are edited (ha-setup's lines removed),
 *    never restored: the admin may have changed other lines since.
 * Services are stopped and disabled (the kernel NFS server only when nothing else is exported).
 * Data directories (PostgreSQL data, the NFS share, the replication's replaced files) are kept
 * unless --purge-data is given with the cluster's name typed (withPurgeData).
 * The backups themselves are kept (/var/lib/ha-setup/backups), so a second uninstall plans nothing.
 */
import { clusterName } from '../source/engine/context.js';
import { sh } from '../source/engine/shell.js';
import { defineStep, done, type Action, type FactDef, type HostContext, type HostRef, type Plan, type Runbook } from '../source/engine/step.js';
import { REMOTE_BACKUP_DIR } from '../source/transport/ssh.js';
import { osFact, type OsInfo } from './lib/host-facts.js';
import { keyComment } from './lib/nfs-key.js';
import { NFS_PATHS, REPLICATION_TIMER, nfsClientFact, type NfsClientFacts } from './lib/nfs-facts.js';
import { nfsOptions } from './lib/nfs-options.js';
import { FSTAB_MARK, NFS_NODES, appHosts, fstabWithout, withAuthorizedLine } from './lib/nfs-render.js';
import { pgOptions } from './lib/options.js';
import { b64, parseKv } from './lib/pg-facts.js';
import { layoutFor, type PgLayout } from './lib/pg-layout.js';

/** Where the CLI puts the cluster name typed after --purge-data (no config file can set it). */
export const PURGE_DATA: unique symbol = Symbol.for('ha-setup.purgeData');

export function withPurgeData(options: Record<string, unknown>, typedName: string): Record<string, unknown> {
  return { ...options, [PURGE_DATA]: typedName };
}

/** True when data directories are to be deleted; throws when the typed name is wrong. */
export function purgeRequested(ctx: Pick<HostContext, 'options'>): boolean {
  const typed = (ctx.options as Record<symbol, unknown>)[PURGE_DATA];
  if (typed === undefined) return false;
  const name = clusterName(ctx);
  if (typeof typed !== 'string' || typed.trim() !== name) {
    throw new Error(`--purge-data: the name typed (${JSON.stringify(typed)}) is not this cluster's name "${name}"; type the cluster name exactly to delete the data directories`);
  }
  return true;
}

export const MANAGED_MARK = 'Managed by ha-setup';

/** A path's backups, oldest first; managed = the backup says "Managed by ha-setup". */
export interface BackupSet {
  path: string;
  backups: { file: string; managed: boolean }[];
  /** The file exists now / has the content of the oldest backup now. */
  exists: boolean;
  sameAsOldest: boolean;
}

export interface InstalledFacts {
  backups: BackupSet[];
  /** Files ha-setup created by name (ha-setup* in its directories). */
  owned: string[];
  /** Whether each current file of `backups` and `owned` says "Managed by ha-setup". */
  managedNow: string[];
  units: Record<string, { active: string; enabled: string }>;
  hostsFile: string | null;
  authorizedKeys: string | null;
  postgresqlConf: Record<string, string | null>;
  /** Lines of /etc/exports and files of /etc/exports.d that are not ha-setup's. */
  otherExports: number;
}

/** Never removed: the backups (the originals live there) and their parent. */
const KEEP = ['/var/lib/ha-setup', REMOTE_BACKUP_DIR];

const TS = /\.\d{8}T\d{6}Z(?:\.\d+)?$/;

/** Directories where ha-setup creates files named ha-setup* (depth 2). */
export const OWNED_DIRS = ['/etc/systemd/system', '/etc/sysctl.d', '/etc/keepalived', '/etc/haproxy', '/etc/exports.d', '/etc/ganesha', '/usr/local/libexec/ha-setup', '/usr/local/lib/ha-setup', '/etc/ha-setup', '/root/.ssh', '/var/lib/ha-setup', '/etc/postgresql', '/var/lib/pgsql', '/var/lib/postgresql'];

/**
 * Started with the NFS server as its dependencies (nfs-ganesha wants rpcbind and its lock
 * service; the kernel server rpc-statd). Stopped (not disabled) when running but not enabled:
 * then nothing but the NFS server started them. An enabled rpcbind is the admin's: left alone.
 */
export const NFS_DEPENDENCIES = ['nfs-ganesha-lock', 'rpc-statd', 'rpcbind.socket', 'rpcbind'];

export const UNITS = ['haproxy', 'keepalived', 'nfs-server', 'nfs-ganesha', REPLICATION_TIMER, 'ha-setup-pg-health', ...NFS_DEPENDENCIES];

export function parseInstalled(stdout: string): InstalledFacts {
  const kv = parseKv(stdout);
  const groups = new Map<string, BackupSet>();
  /** Backup files whose content the current file has. */
  const sameAs = new Set<string>();
  const owned: string[] = [];
  const managedNow: string[] = [];
  const units: InstalledFacts['units'] = {};
  const postgresqlConf: InstalledFacts['postgresqlConf'] = {};
  for (const line of stdout.split('\n')) {
    const [tag, a = '', b = '', c = '', d = ''] = line.split(' ');
    if (tag === 'BK') {
      const path = b.slice(REMOTE_BACKUP_DIR.length).replace(TS, '');
      const g = groups.get(path) ?? { path, backups: [], exists: d !== '0', sameAsOldest: false };
      g.backups.push({ file: b, managed: a === '1' });
      if (c === '1') sameAs.add(b);
      groups.set(path, g);
    } else if (tag === 'OWN') owned.push(a);
    else if (tag === 'MANAGED') managedNow.push(a);
    else if (tag === 'UNIT') units[a] = { active: b || 'unknown', enabled: c || 'unknown' };
    else if (tag === 'PGCONF') postgresqlConf[a] = b === '-' ? null : Buffer.from(b, 'base64').toString('utf8');
  }
  for (const g of groups.values()) {
    g.backups.sort((x, y) => (x.file < y.file ? -1 : 1));
    g.sameAsOldest = sameAs.has(g.backups[0]!.file);
  }
  return {
    backups: [...groups.values()].sort((x, y) => (x.path < y.path ? -1 : 1)),
    owned: owned.filter((p) => !KEEP.some((k) => p === k || p.startsWith(`${k}/`))).sort(),
    managedNow,
    units,
    hostsFile: b64(kv, 'HOSTS'),
    authorizedKeys: b64(kv, 'AUTHKEYS'),
    postgresqlConf,
    otherExports: Number(kv.OTHER_EXPORTS ?? 0) || 0,
  };
}

/** What ha-setup installed on a host (read-only). `pgConfs`: postgresql.conf paths to read. */
export function installedFact(units: string[], pgConfs: string[]): FactDef<InstalledFacts> {
  return {
    id: `uninstall-installed-${units.join(',')}-${pgConfs.join(',')}`,
    sudo: true,
    script: [
      sh`if [ -d ${REMOTE_BACKUP_DIR} ]; then find ${REMOTE_BACKUP_DIR} -type f; fi | sort | while IFS= read -r f; do`,
      `  if grep -q ${sh`${MANAGED_MARK}`} -- "$f" 2>/dev/null; then m=1; else m=0; fi`,
      `  o=$(printf '%s' "$f" | sed -E ${sh`${`s#^${REMOTE_BACKUP_DIR}##; s#\.[0-9]{8}T[0-9]{6}Z(\.[0-9]+)?$##`}`})`,
      '  if [ -e "$o" ]; then e=1; else e=0; fi',
      '  if [ -f "$o" ] && [ "$(sha256sum < "$f")" = "$(sha256sum < "$o")" ]; then s=1; else s=0; fi',
      '  echo "BK $m $f $s $e"',
      'done',
      `for d in ${sh`${OWNED_DIRS}`}; do if [ -d "$d" ]; then find "$d" -maxdepth 4 -name '*ha-setup*' ! -name '*.ha-setup.tmp' \\( -type f -o -type d \\) -print; fi; done | sort -u | while IFS= read -r f; do echo "OWN $f"; done`,
      sh`for f in $(if [ -d ${REMOTE_BACKUP_DIR} ]; then find ${REMOTE_BACKUP_DIR} -type f | sed -E ${`s#^${REMOTE_BACKUP_DIR}##; s#\\.[0-9]{8}T[0-9]{6}Z(\\.[0-9]+)?$##`} | sort -u; fi); do`,
      `  if [ -f "$f" ] && grep -q ${sh`${MANAGED_MARK}`} -- "$f" 2>/dev/null; then echo "MANAGED $f"; fi`,
      'done',
      `for u in ${sh`${units}`}; do a=$(systemctl is-active "$u" 2>/dev/null || true); e=$(systemctl is-enabled "$u" 2>/dev/null || true); echo "UNIT $u \${a:-unknown} \${e:-unknown}"; done`,
      `if [ -f /etc/hosts ]; then echo "HOSTS=$(base64 -w0 < /etc/hosts)"; else echo HOSTS=-; fi`,
      sh`if [ -f ${NFS_PATHS.authorizedKeys} ]; then echo "AUTHKEYS=$(base64 -w0 < ${NFS_PATHS.authorizedKeys})"; else echo AUTHKEYS=-; fi`,
      `for f in ${pgConfs.length ? sh`${pgConfs}` : ''}; do if [ -f "$f" ]; then echo "PGCONF $f $(base64 -w0 < "$f")"; else echo "PGCONF $f -"; fi; done`,
      `n=$(grep -Evc '^[[:space:]]*(#|$)' /etc/exports 2>/dev/null || true); o=$( (find /etc/exports.d -maxdepth 1 -name '*.exports' ! -name 'ha-setup*' 2>/dev/null || true) | wc -l); echo "OTHER_EXPORTS=$(( \${n:-0} + o ))"`,
    ].join('\n'),
    parse: parseInstalled,
  };
}

// ---------------------------------------------------------------------------------------------
// Plans

/** Stop and disable the units that run or are enabled. */
function stopUnits(f: InstalledFacts, units: string[]): Action[] {
  return units
    .filter((u) => f.units[u] && (f.units[u]!.active === 'active' || f.units[u]!.enabled === 'enabled'))
    .map((u) => ({ kind: 'run', title: `stop and disable ${u}`, script: sh`systemctl disable --now ${u}`, sudo: true }) as Action);
}

const EDITED = new Set(['/etc/fstab', '/etc/hosts', NFS_PATHS.authorizedKeys]);

/** Restore or remove the files under these prefixes (see the header). */
export function fileActions(f: InstalledFacts, match: (path: string) => boolean): Action[] {
  const out: Action[] = [];
  const handled = new Set<string>();
  for (const g of f.backups) {
    if (!match(g.path) || EDITED.has(g.path)) continue;
    handled.add(g.path);
    const oldest = g.backups[0]!;
    if (oldest.managed ? !g.exists : g.sameAsOldest) continue;
    if (oldest.managed) {
      out.push({ kind: 'run', title: `remove ${g.path} (it did not exist before ha-setup)`, script: sh`rm -f -- ${g.path}`, sudo: true });
    } else {
      out.push({ kind: 'run', title: `restore ${g.path} from ${oldest.file} (as it was before ha-setup)`, script: sh`cp -p -- ${oldest.file} ${g.path}`, sudo: true });
    }
  }
  for (const p of f.managedNow) {
    if (!match(p) || handled.has(p) || EDITED.has(p)) continue;
    handled.add(p);
    out.push({ kind: 'run', title: `remove ${p} (written by ha-setup)`, script: sh`rm -f -- ${p}`, sudo: true });
  }
  for (const p of f.owned) {
    if (!match(p) || handled.has(p) || [...handled].some((h) => p.startsWith(`${h}/`))) continue;
    handled.add(p);
    out.push({ kind: 'run', title: `remove ${p} (created by ha-setup)`, script: sh`rm -rf -- ${p}`, sudo: true });
  }
  return out;
}

const under = (...prefixes: string[]) => (p: string): boolean => prefixes.some((x) => p === x || p.startsWith(x));

function finish(actions: Action[], unitFilesTouched: boolean, what: string, reason: string): Plan {
  if (!actions.length) return done(`nothing of ${what} left on this host`);
  if (unitFilesTouched) actions.push({ kind: 'run', title: 'systemctl daemon-reload', script: 'systemctl daemon-reload', sudo: true });
  return { actions, reason };
}

const touchesUnits = (actions: Action[]): boolean => actions.some((a) => a.kind === 'run' && /\/etc\/systemd\/system\//.test(a.script) && !/^systemctl /.test(a.script));

type T = { hosts: Record<string, HostRef | undefined>; options: Record<string, unknown> };
const present = (hosts: T['hosts'], aliases: readonly string[]): string[] => aliases.filter((a) => hosts[a]);

// 1. App servers: unmount first.
export function unmountPlan(cl: NfsClientFacts, ctx: HostContext): Plan {
  const o = nfsOptions(ctx.options);
  const actions: Action[] = [];
  if (cl.mounted) {
    actions.push({ kind: 'run', title: `unmount ${cl.mounted.source} from ${o.mountPath} (force, lazy: a hung NFS server cannot block it)`, script: sh`umount -f -l ${o.mountPath}`, sudo: true });
  }
  const ours = (cl.fstab ?? '').split('\n').includes(FSTAB_MARK);
  if (ours) {
    const content = fstabWithout(cl.fstab, o.mountPath);
    actions.push({ kind: 'write', title: `remove ha-setup's entry for ${o.mountPath} from /etc/fstab`, path: NFS_PATHS.fstab, content, mode: 0o644, owner: 'root', group: 'root', previous: cl.fstab });
  }
  if (!actions.length) return done(`${o.mountPath} is not mounted and /etc/fstab has no ha-setup entry`);
  return { actions, reason: `the local directory ${o.mountPath} is kept (its own files reappear)` };
}

const unmount = defineStep({
  id: 'uninstall.unmount',
  title: 'App servers: unmount the shared directory (umount -f -l) and remove the fstab entry',
  targets: ({ hosts }) => appHosts(hosts).map((h) => h.alias),
  facts: (ctx) => ({ cl: nfsClientFact(nfsOptions(ctx.options).mountPath) }),
  plan: ({ cl }, ctx) => unmountPlan(cl, ctx),
});

// 2. HAProxy, 3. keepalived
const haproxy = defineStep({
  id: 'uninstall.haproxy',
  title: 'HAProxy: stop, disable, configuration restored',
  targets: ({ hosts }) => present(hosts, ['lb']),
  facts: { inst: installedFact(UNITS, []) },
  plan({ inst }) {
    const actions = [...stopUnits(inst, ['haproxy']), ...fileActions(inst, under('/etc/haproxy/'))];
    return finish(actions, false, 'HAProxy', 'the haproxy package stays installed');
  },
});

const keepalived = defineStep({
  id: 'uninstall.keepalived',
  title: 'keepalived: stop (the VIPs go away), disable, configuration restored',
  targets: ({ hosts }) => present(hosts, ['lb', 'nfs_primary', 'nfs_standby', 'db_standby', 'db_primary']),
  facts: { inst: installedFact(UNITS, []) },
  plan({ inst }) {
    const actions = [...stopUnits(inst, ['keepalived']), ...fileActions(inst, under('/etc/keepalived/'))];
    return finish(actions, false, 'keepalived', 'the keepalived package stays installed');
  },
});

// 4. NFS
const NFS_PREFIXES = ['/etc/exports.d/ha-setup', '/etc/ganesha/', '/usr/local/libexec/ha-setup/nfs-', '/etc/systemd/system/ha-setup-nfs-', '/root/.ssh/ha-setup-nfs-'];
export function nfsUninstallPlan(inst: InstalledFacts, ctx: HostContext): Plan {
  const o = nfsOptions(ctx.options);
  const purge = purgeRequested(ctx);
  const servers = ['nfs-ganesha', ...(inst.otherExports === 0 ? ['nfs-server'] : [])];
  const deps = inst.otherExports === 0 ? NFS_DEPENDENCIES.filter((u) => inst.units[u]?.active === 'active' && inst.units[u]?.enabled !== 'enabled') : [];
  const actions = [
    ...stopUnits(inst, [REPLICATION_TIMER, ...servers]),
    ...deps.map((u) => ({ kind: 'run', title: `stop ${u} (started with the NFS server, not enabled)`, script: sh`systemctl stop ${u}`, sudo: true }) as Action),
    ...fileActions(inst, under(...NFS_PREFIXES)),
  ];
  const peers = NFS_NODES.map(keyComment);
  let keys = inst.authorizedKeys;
  for (const c of peers) keys = keys === null ? null : withAuthorizedLine(keys, c, null);
  if (keys !== inst.authorizedKeys && inst.authorizedKeys !== null) {
    actions.push({ kind: 'write', title: "remove the replication key's line from root's authorized_keys", path: NFS_PATHS.authorizedKeys, content: keys!, mode: 0o600, owner: 'root', group: 'root', previous: inst.authorizedKeys });
  }
  if (inst.otherExports > 0 && (inst.units['nfs-server']?.active === 'active')) {
    actions.push({ kind: 'run', title: 'withdraw ha-setup\'s export (exportfs -ra; nfs-server keeps serving the other exports)', script: 'exportfs -ra', sudo: true });
  }
  if (purge) {
    actions.push({ kind: 'run', title: `delete the shared data ${o.exportDir} and ${NFS_PATHS.replaced} (--purge-data)`, script: sh`rm -rf -- ${o.exportDir} ${NFS_PATHS.replaced}`, sudo: true });
  }
  const kept = purge ? '' : `the shared data in ${o.exportDir} is kept (--purge-data deletes it)`;
  if (!actions.length) return done(`nothing of NFS left on this host; ${kept || 'data purged'}`);
  if (touchesUnits(actions)) actions.push({ kind: 'run', title: 'systemctl daemon-reload', script: 'systemctl daemon-reload', sudo: true });
  return { actions, reason: [kept, inst.otherExports ? `nfs-server keeps running: ${inst.otherExports} other export(s)` : ''].filter(Boolean).join('; ') || 'data purged' };
}

const nfs = defineStep({
  id: 'uninstall.nfs',
  title: 'NFS: replication timer and server stopped, exports and keys removed, configuration restored',
  targets: ({ hosts }) => present(hosts, NFS_NODES),
  facts: { inst: installedFact(UNITS, []) },
  plan: ({ inst }, ctx) => nfsUninstallPlan(inst, ctx),
});

// 5. standby, 6. primary
const pgUnits = (l: PgLayout): string[] => [l.unit, 'ha-setup-pg-health'];
const INCLUDE_COMMENT = '# Added by ha-setup: read the drop-in files of conf.d/ (ha-setup*.conf) after this file.';

export function pgUninstallPlan(f: { os: OsInfo; inst: InstalledFacts }, ctx: HostContext): Plan {
  const o = pgOptions(ctx.options);
  const l = layoutFor(f.os, o.version, ctx.host.alias);
  const purge = purgeRequested(ctx);
  const actions = [
    ...stopUnits(f.inst, pgUnits(l)),
    ...fileActions(f.inst, under(`${l.confDir}/`, '/etc/sysctl.d/90-ha-setup-pg', '/etc/ha-setup/pg-', '/etc/systemd/system/ha-setup-pg-', l.passfile, l.keepDir, l.cloneMarker)),
  ];
  const conf = f.inst.postgresqlConf[l.confFile];
  if (conf?.split('\n').includes(INCLUDE_COMMENT)) {
    actions.push({
      kind: 'run',
      title: `remove ha-setup's include_dir line from ${l.confFile}`,
      script: sh`sed -i ${`/^${INCLUDE_COMMENT.replace(/[./*[\]^$]/g, (c) => `\\${c}`)}$/,+1d`} ${l.confFile}`,
      sudo: true,
    });
  }
  if (purge) actions.push({ kind: 'run', title: `delete the data directory ${l.dataDir} (--purge-data)`, script: sh`rm -rf -- ${l.dataDir}`, sudo: true });
  const kept = purge ? 'data purged' : `the data directory ${l.dataDir} is kept (--purge-data deletes it)`;
  if (!actions.length) return done(`nothing of PostgreSQL's ha-setup configuration left on this host; ${kept}`);
  if (touchesUnits(actions)) actions.push({ kind: 'run', title: 'systemctl daemon-reload', script: 'systemctl daemon-reload', sudo: true });
  return { actions, reason: `${kept}; the PostgreSQL packages stay installed` };
}

function pgStep(alias: 'db_standby' | 'db_primary', title: string) {
  return defineStep({
    id: `uninstall.${alias === 'db_standby' ? 'standby' : 'primary'}`,
    title,
    targets: ({ hosts }) => present(hosts, [alias]),
    facts: (ctx) => {
      const v = pgOptions(ctx.options).version;
      return { os: osFact, inst: installedFact(UNITS.concat([`postgresql@${v}-main`, `postgresql-${v}`]), [`/etc/postgresql/${v}/main/postgresql.conf`, `/var/lib/pgsql/${v}/data/postgresql.conf`]) };
    },
    plan: (f, ctx) => pgUninstallPlan(f, ctx),
  });
}

const standby = pgStep('db_standby', 'PostgreSQL standby: stopped, disabled, ha-setup configuration removed, data kept');
const primary = pgStep('db_primary', 'PostgreSQL primary: stopped, disabled, ha-setup configuration removed, data kept');

// 7. Whatever else ha-setup left on any host.
const HOSTS_MARK = /# added by ha-setup/;
/** What the component steps handle (so that a plan does not list it twice). */
const COMPONENT_PATHS = under(
  '/etc/haproxy/', '/etc/keepalived/',
  ...NFS_PREFIXES,
  '/etc/postgresql/', '/var/lib/pgsql/', '/var/lib/postgresql/', '/etc/sysctl.d/90-ha-setup-pg', '/etc/ha-setup/pg-', '/etc/systemd/system/ha-setup-pg-',
);

export function leftoverPlan(inst: InstalledFacts): Plan {
  const actions = fileActions(inst, (p) => !COMPONENT_PATHS(p));
  if (inst.hostsFile && inst.hostsFile.split('\n').some((l) => HOSTS_MARK.test(l))) {
    const content = inst.hostsFile.split('\n').filter((l) => !HOSTS_MARK.test(l)).join('\n');
    actions.push({ kind: 'write', title: "remove ha-setup's lines from /etc/hosts", path: '/etc/hosts', content, mode: 0o644, owner: 'root', group: 'root', previous: inst.hostsFile });
  }
  return finish(actions, touchesUnits(actions), 'ha-setup', `the backups stay in ${REMOTE_BACKUP_DIR}`);
}

const leftovers = defineStep({
  id: 'uninstall.leftovers',
  title: 'Every host: remaining ha-setup files restored or removed, /etc/hosts lines removed',
  targets: ({ hosts }) => Object.keys(hosts).filter((a) => hosts[a]),
  facts: { inst: installedFact(UNITS, []) },
  plan: ({ inst }) => leftoverPlan(inst),
});

export const uninstallRunbook: Runbook = {
  id: 'uninstall',
  title: 'Uninstall',
  description:
    "Undo ha-setup: unmount the share on every app server first (umount -f -l, fstab entry removed), then HAProxy, keepalived, NFS, the standby and the primary: services stopped and disabled, configuration files restored from the backups taken on apply (/var/lib/ha-setup/backups), data directories kept unless --purge-data with the cluster name typed.",
  steps: [unmount, haproxy, keepalived, nfs, standby, primary, leftovers],
};
