/**
 * Uninstall: undoes what the runbooks did, in the order of issue 6: unmount the share on every
 * app server first (umount -f -l, fstab entry removed), then HAProxy, keepalived, NFS, the
 * standby and the primary; then ha-setup's firewall rules and, last, what is left on any host.
 * Proven in the lab for the PostgreSQL pair, keepalived and HAProxy behind ufw
 * (test/lab/uninstall.test.ts) and for NFS (test/lab/nfs.test.ts); the nftables path was run
 * by hand in the lab; firewalld, iptables and the RHEL layout are proven by plans only.
 *
 * What ha-setup wrote is found on each server, not remembered on the jump host:
 *  - files ha-setup replaced have backups: /var/lib/ha-setup/backups/<path>.<UTC timestamp>
 *    (taken by every write). The oldest backup of a path is the file before ha-setup; when that
 *    oldest copy is itself "Managed by ha-setup", the path did not exist before ha-setup and
 *    is removed instead. A file without backups that says "Managed by ha-setup" (searched in
 *    the directories ha-setup writes to, MARK_DIRS) did not exist before: removed too.
 *  - files ha-setup created by name (ha-setup* in the directories it writes to) are removed, and
 *    so is its run-time state (STATE_PATHS); a systemd drop-in directory left empty goes too.
 *  - /etc/fstab, /etc/hosts and root's authorized_keys are edited (ha-setup's lines removed),
 *    never restored: the admin may have changed other lines since.
 *  - lines ha-setup appended (postgresql.conf's include_dir on the RHEL family, /etc/nftables.conf's
 *    includes) are removed with the blank line before them, in place (no backup of the edit).
 *  - firewall rules carrying ha-setup's comments (ufw, nftables, iptables) are deleted, and its
 *    nftables table; firewalld rules carry no comment: those ha-setup recorded in its ledger
 *    (/etc/ha-setup/firewalld.ledger, runbooks/lib/firewalld-ledger.ts) when it added them are
 *    removed, and nothing else of firewalld's.
 * Services are stopped and disabled (the kernel NFS server only when nothing else is exported).
 * keepalived stops on the pairs' standbys before their primaries: a standby whose keepalived
 * still ran would take the VIP and promote itself when the primary's keepalived went away.
 * Data directories (PostgreSQL data, the NFS share, the replication's replaced files) are kept
 * unless --purge-data is given with the cluster's name typed (withPurgeData).
 * The backups themselves are kept (/var/lib/ha-setup/backups), so a second uninstall plans nothing.
 */
import { dirname } from 'node:path';
import { clusterName } from '../source/engine/context.js';
import { sh } from '../source/engine/shell.js';
import { defineStep, done, type Action, type FactDef, type HostContext, type HostRef, type Plan, type Runbook } from '../source/engine/step.js';
import { REMOTE_BACKUP_DIR } from '../source/transport/ssh.js';
import { osFact, type OsInfo } from './lib/host-facts.js';
import { STATE_DIR as KEEPALIVED_STATE_DIR } from './lib/keepalived-config.js';
import { keyComment } from './lib/nfs-key.js';
import { NFS_PATHS, REPLICATION_TIMER, nfsClientFact, type NfsClientFacts } from './lib/nfs-facts.js';
import { nfsOptions } from './lib/nfs-options.js';
import { FSTAB_MARK, NFS_NODES, appHosts, fstabWithout, withAuthorizedLine } from './lib/nfs-render.js';
import { pgOptions } from './lib/options.js';
import { FIREWALLD_LEDGER, FIREWALLD_LEDGER_KEPT, firewalldLedgerPlan, type FirewalldLedgerFacts } from './lib/firewalld-ledger.js';
import { b64, parseFirewalldZones, parseKv, parseUfwRules, type UfwRule } from './lib/pg-facts.js';
import { layoutFor, type PgLayout } from './lib/pg-layout.js';
import { nftRulesWithComments } from './lib/nft-rules.js';

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
  /** Files that say "Managed by ha-setup" now: of the paths with backups, and in MARK_DIRS. */
  managedNow: string[];
  units: Record<string, { active: string; enabled: string }>;
  hostsFile: string | null;
  authorizedKeys: string | null;
  postgresqlConf: Record<string, string | null>;
  /** Lines of /etc/exports and files of /etc/exports.d that are not ha-setup's. */
  otherExports: number;
  /** STATE_PATHS that exist. */
  state: string[];
}

/** Never removed: the backups (the originals live there) and their parent. */
const KEEP = ['/var/lib/ha-setup', REMOTE_BACKUP_DIR];

const TS = /\.\d{8}T\d{6}Z(?:\.\d+)?$/;

/** Directories where ha-setup creates files named ha-setup* (depth 4). */
export const OWNED_DIRS = ['/etc/systemd/system', '/etc/sysctl.d', '/etc/keepalived', '/etc/haproxy', '/etc/exports.d', '/etc/ganesha', '/usr/local/libexec/ha-setup', '/usr/local/lib/ha-setup', '/etc/ha-setup', '/root/.ssh', '/var/lib/ha-setup', '/etc/postgresql', '/var/lib/pgsql', '/var/lib/postgresql'];

/**
 * Directories searched (depth 3, files under 512 KiB) for files that say "Managed by ha-setup":
 * a file ha-setup wrote where there was none has no backup and need not be named ha-setup*
 * (/etc/keepalived/keepalived.conf). Never a data directory.
 */
export const MARK_DIRS = ['/etc/keepalived', '/etc/haproxy', '/etc/ganesha', '/etc/exports.d', '/etc/systemd/system', '/etc/sysctl.d', '/etc/ha-setup', '/etc/postgresql', '/usr/local/lib/ha-setup', '/usr/local/libexec/ha-setup'];

/** What keepalived's scripts make while they run (the generation, the fence mark; run/lock files). */
export const KEEPALIVED_RUN_DIR = '/run/ha-setup-keepalived';
export const STATE_PATHS = [KEEPALIVED_STATE_DIR, KEEPALIVED_RUN_DIR];

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
  const managedNow = new Set<string>();
  const state: string[] = [];
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
    else if (tag === 'MANAGED') managedNow.add(a);
    else if (tag === 'STATE') state.push(a);
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
    managedNow: [...managedNow].sort(),
    units,
    hostsFile: b64(kv, 'HOSTS'),
    authorizedKeys: b64(kv, 'AUTHKEYS'),
    postgresqlConf,
    otherExports: Number(kv.OTHER_EXPORTS ?? 0) || 0,
    state,
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
      `for d in ${sh`${MARK_DIRS}`}; do if [ -d "$d" ]; then find "$d" -maxdepth 3 -type f -size -512k ! -name '*.ha-setup.tmp' -exec grep -l -F -- ${sh`${MANAGED_MARK}`} {} + 2>/dev/null || true; fi; done | sort -u | while IFS= read -r f; do echo "MANAGED $f"; done`,
      `for p in ${sh`${STATE_PATHS}`}; do if [ -e "$p" ]; then echo "STATE $p"; fi; done`,
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
  const removed: string[] = [];
  // A file inside a directory ha-setup created goes with the directory (rm -rf below).
  const ownedDirs = f.owned.filter(match);
  const inOwnedDir = (p: string): boolean => ownedDirs.some((d) => p.startsWith(`${d}/`));
  const remove = (p: string, why: string, script: string): void => {
    removed.push(p);
    out.push({ kind: 'run', title: `remove ${p} (${why})`, script, sudo: true });
  };
  for (const g of f.backups) {
    if (!match(g.path) || EDITED.has(g.path)) continue;
    handled.add(g.path);
    const oldest = g.backups[0]!;
    if (oldest.managed ? !g.exists : g.sameAsOldest) continue;
    if (!oldest.managed) {
      out.push({ kind: 'run', title: `restore ${g.path} from ${oldest.file} (as it was before ha-setup)`, script: sh`cp -p -- ${oldest.file} ${g.path}`, sudo: true });
    } else if (!inOwnedDir(g.path)) {
      remove(g.path, 'it did not exist before ha-setup', sh`rm -f -- ${g.path}`);
    }
  }
  for (const p of f.managedNow) {
    if (!match(p) || handled.has(p) || EDITED.has(p) || inOwnedDir(p)) continue;
    handled.add(p);
    remove(p, 'written by ha-setup', sh`rm -f -- ${p}`);
  }
  for (const p of f.owned) {
    if (!match(p) || handled.has(p) || [...handled].some((h) => p.startsWith(`${h}/`))) continue;
    handled.add(p);
    remove(p, 'created by ha-setup', sh`rm -rf -- ${p}`);
  }
  // A unit's drop-in directory (unit.service.d) that held only ha-setup's file goes with it.
  const dirs = new Set(removed.map((p) => p.replace(/\/[^/]+$/, '')).filter((d) => SYSTEMD_DROPIN_DIR.test(d) && !removed.includes(d)));
  for (const d of dirs) out.push({ kind: 'run', title: `remove ${d} if nothing else is in it`, script: sh`rmdir --ignore-fail-on-non-empty -- ${d}`, sudo: true });
  return out;
}

const SYSTEMD_DROPIN_DIR = /^\/etc\/systemd\/system\/[^/]+\.d$/;

/** Remove STATE_PATHS that exist and match. */
function stateActions(f: InstalledFacts, paths: string[]): Action[] {
  return f.state.filter((p) => paths.includes(p)).map((p) => ({ kind: 'run', title: `remove ${p} (state of ha-setup's scripts)`, script: sh`rm -rf -- ${p}`, sudo: true }) as Action);
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
  targets: ({ hosts }) => present(hosts, ['lb', 'lb_standby']),
  facts: { inst: installedFact(UNITS, []) },
  plan({ inst }) {
    const actions = [...stopUnits(inst, ['haproxy']), ...fileActions(inst, under('/etc/haproxy/'))];
    return finish(actions, false, 'HAProxy', 'the haproxy package stays installed');
  },
});

/** Where uninstall tells pg-ha's notify stop that keepalived goes away on both nodes (assets/keepalived/pg-ha.sh). */
export const KEEPALIVED_UNINSTALL_MARK = '/run/ha-setup-keepalived/uninstall';

export function keepalivedUninstallPlan(inst: InstalledFacts): Plan {
  // The mark first: the DB primary's notify stop then knows nobody takes over and does not fence.
  const stop = stopUnits(inst, ['keepalived']).map((a) =>
    a.kind === 'run' ? { ...a, script: `${sh`mkdir -p -- ${dirname(KEEPALIVED_UNINSTALL_MARK)} && date +%s > ${KEEPALIVED_UNINSTALL_MARK}`}\n${a.script}` } : a,
  );
  const actions = [...stop, ...fileActions(inst, under('/etc/keepalived/')), ...stateActions(inst, STATE_PATHS)];
  return finish(actions, false, 'keepalived', 'the keepalived package stays installed');
}

/**
 * The standbys first: a standby whose keepalived still runs when the primary's stops takes the
 * VIP, and its notify script promotes it once the primary is down (the primary's notify_stop
 * fences it when a standby can take over). With the standbys' keepalived gone nothing takes over,
 * and the primary's notify_stop, told so by KEEPALIVED_UNINSTALL_MARK, leaves PostgreSQL to the
 * PostgreSQL step.
 */
const keepalivedStandbys = defineStep({
  id: 'uninstall.keepalived-standbys',
  title: "keepalived on the pairs' standbys: stop (nothing can take a VIP over), disable, configuration restored",
  targets: ({ hosts }) => present(hosts, ['lb_standby', 'nfs_standby', 'db_standby']),
  facts: { inst: installedFact(UNITS, []) },
  plan: ({ inst }) => keepalivedUninstallPlan(inst),
});

const keepalived = defineStep({
  id: 'uninstall.keepalived',
  title: 'keepalived: stop (the VIPs go away), disable, configuration restored',
  targets: ({ hosts }) => present(hosts, ['lb', 'nfs_primary', 'db_primary']),
  facts: { inst: installedFact(UNITS, []) },
  plan: ({ inst }) => keepalivedUninstallPlan(inst),
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
    actions.push({ kind: 'write', title: `remove the replication key's line from ${NFS_PATHS.authorizedKeys}`, path: NFS_PATHS.authorizedKeys, content: keys!, mode: 0o600, owner: 'root', group: 'root', previous: inst.authorizedKeys });
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
/** ha-setup's PostgreSQL files outside the configuration directory (the fence drop-in: postgresql@<v>-main.service.d, postgresql-<v>.service.d). */
const PG_PREFIXES = ['/etc/sysctl.d/90-ha-setup-pg', '/etc/ha-setup/pg-', '/etc/systemd/system/ha-setup-pg-', '/etc/systemd/system/postgresql'];
const pgUnits = (l: PgLayout): string[] => [l.unit, 'ha-setup-pg-health'];

/** The mark of lines ha-setup appends to files it does not own (postgresql.conf, /etc/nftables.conf). */
export const ADDED_MARK = '# Added by ha-setup';

export const hasAddedBlock = (text: string | null | undefined): boolean => (text ?? '').split('\n').some((l) => l.startsWith(ADDED_MARK));

/**
 * Removes in place (same inode, owner and mode; no backup, so that a second uninstall does not
 * restore the edited file) every block ha-setup appended with printf '\n# Added by ha-setup...\n
 * <lines>\n': the mark line, the lines after it matching `follow` (an ERE without backslashes,
 * which awk -v would eat), and the blank line before it.
 */
export function removeAddedBlocks(file: string, follow: string): string {
  const program = [
    '{ line[NR] = $0 }',
    'END {',
    '  for (i = 1; i <= NR; i++) if (index(line[i], mark) == 1) {',
    '    drop[i] = 1',
    '    if (i > 1 && line[i - 1] == "") drop[i - 1] = 1',
    '    for (j = i + 1; j <= NR && line[j] ~ follow; j++) drop[j] = 1',
    '  }',
    '  for (i = 1; i <= NR; i++) if (!(i in drop)) print line[i]',
    '}',
  ].join('\n');
  return [
    'tmp=$(mktemp)',
    sh`awk -v mark=${ADDED_MARK} -v follow=${follow} ${program} ${file} > "$tmp"`,
    sh`cat "$tmp" > ${file}`,
    'rm -f -- "$tmp"',
  ].join('\n');
}

/** rm -rf of a PostgreSQL data directory, refused while a postmaster runs in it. */
export function purgeDataDirScript(dataDir: string): string {
  return [
    sh`d=${dataDir}`,
    'pid=$(head -n 1 "$d/postmaster.pid" 2>/dev/null || true)',
    'if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "ha-setup: PostgreSQL (pid $pid) still runs in $d: not deleting its data directory" >&2; exit 1; fi',
    'rm -rf -- "$d"',
  ].join('\n');
}

export function pgUninstallPlan(f: { os: OsInfo; inst: InstalledFacts }, ctx: HostContext): Plan {
  const o = pgOptions(ctx.options);
  const l = layoutFor(f.os, o.version, ctx.host.alias);
  const purge = purgeRequested(ctx);
  const actions = [
    ...stopUnits(f.inst, pgUnits(l)),
    ...fileActions(f.inst, under(`${l.confDir}/`, ...PG_PREFIXES, l.passfile, l.keepDir, l.cloneMarker)),
  ];
  if (hasAddedBlock(f.inst.postgresqlConf[l.confFile])) {
    actions.push({ kind: 'run', title: `remove ha-setup's include_dir line from ${l.confFile}`, script: removeAddedBlocks(l.confFile, "^include_dir = 'conf[.]d'$"), sudo: true });
  }
  if (purge) actions.push({ kind: 'run', title: `delete the data directory ${l.dataDir} (--purge-data)`, script: purgeDataDirScript(l.dataDir), sudo: true });
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

// 7. Firewall rules with ha-setup's comments.
/** The comments ha-setup puts on its firewall rules (pg-users, haproxy/db-routing, keepalived). */
export const FW_COMMENTS = ['ha-setup-pg', 'ha-setup-haproxy', 'ha-setup-vrrp'];
export const NFT_TABLE = 'inet ha_setup';
const NFTABLES_CONF = '/etc/nftables.conf';

export interface FirewallRemnants {
  /** ufw rules (v4 and v6) with one of FW_COMMENTS. */
  ufw: UfwRule[];
  /** nftables rules with one of FW_COMMENTS, outside ha-setup's own table. */
  nft: { family: string; table: string; chain: string; handle: number; comment: string }[];
  /** ha-setup's own nftables table (pg-users) is loaded. */
  nftTable: boolean;
  /** /etc/nftables.conf, when it exists. */
  nftConf: string | null;
  /** `iptables -S INPUT` / `ip6tables -S INPUT` lines with one of FW_COMMENTS. */
  iptables: string[];
  ip6tables: string[];
  iptablesPersist: 'debian' | 'rhel' | null;
  /** firewalld runs. */
  firewalld: boolean;
  /** firewalld's zones and ha-setup's ledger of the openings it added (firewalld-ledger.ts). */
  fwd: FirewalldLedgerFacts;
}

/** nft -a list ruleset: rules carrying one of FW_COMMENTS, with their chain and handle. */
export function parseNftComments(text: string): FirewallRemnants['nft'] {
  return nftRulesWithComments(text, FW_COMMENTS).map(({ family, table, chain, handle, comment }) => ({ family, table, chain, handle, comment }));
}

export function parseFirewallRemnants(stdout: string): FirewallRemnants {
  const kv = parseKv(stdout);
  const lines = (k: string): string[] => (b64(kv, k) ?? '').split('\n').filter((l) => FW_COMMENTS.some((c) => l.includes(`--comment ${c}`)));
  const nftText = b64(kv, 'NFT') ?? '';
  return {
    ufw: [...parseUfwRules(b64(kv, 'UFW_RULES')), ...parseUfwRules(b64(kv, 'UFW_RULES6'))].filter((r) => FW_COMMENTS.includes(r.comment)),
    nft: parseNftComments(nftText).filter((r) => `${r.family} ${r.table}` !== NFT_TABLE),
    nftTable: nftText.split('\n').some((l) => l.startsWith(`table ${NFT_TABLE} {`)),
    nftConf: b64(kv, 'NFT_CONF'),
    iptables: lines('IPT4'),
    ip6tables: lines('IPT6'),
    iptablesPersist: kv.IPT_PERSIST === 'debian' ? 'debian' : kv.IPT_PERSIST === 'rhel' ? 'rhel' : null,
    firewalld: kv.FIREWALLD === 'running',
    fwd: {
      state: kv.FIREWALLD === 'running' ? 'running' : kv.FIREWALLD === 'offline' ? 'offline' : 'stopped',
      runtime: parseFirewalldZones(b64(kv, 'FWD_RUNTIME') ?? ''),
      permanent: parseFirewalldZones(b64(kv, 'FWD_PERMANENT') ?? ''),
      ledgers: ([[FIREWALLD_LEDGER, 'FWD_LEDGER'], [FIREWALLD_LEDGER_KEPT, 'FWD_LEDGER_KEPT']] as const).flatMap(([path, key]) => {
        const text = b64(kv, key);
        return text === null ? [] : [{ path, text }];
      }),
    },
  };
}

export const firewallRemnantsFact: FactDef<FirewallRemnants> = {
  id: 'uninstall-firewall',
  sudo: true,
  script: [
    'have() { command -v "$1" >/dev/null 2>&1; }',
    'b64() { if [ -f "$1" ]; then echo "$2=$(base64 -w0 < "$1" || true)"; else echo "$2=-"; fi; }',
    'b64cmd() { local k=$1 o; shift; o=$("$@" 2>/dev/null) || true; echo "$k=$(printf %s "$o" | base64 -w0)"; }',
    'if have ufw; then b64 /etc/ufw/user.rules UFW_RULES; b64 /etc/ufw/user6.rules UFW_RULES6; fi',
    `if have nft; then b64cmd NFT nft -a list ruleset; b64 ${NFTABLES_CONF} NFT_CONF; fi`,
    'if have iptables; then b64cmd IPT4 iptables -S INPUT; fi',
    'if have ip6tables; then b64cmd IPT6 ip6tables -S INPUT; fi',
    'if [ -f /etc/iptables/rules.v4 ]; then echo IPT_PERSIST=debian; elif [ -f /etc/sysconfig/iptables ]; then echo IPT_PERSIST=rhel; fi',
    sh`b64 ${FIREWALLD_LEDGER} FWD_LEDGER; b64 ${FIREWALLD_LEDGER_KEPT} FWD_LEDGER_KEPT`,
    'if have firewall-cmd && firewall-cmd --state >/dev/null 2>&1; then',
    '  echo FIREWALLD=running',
    sh`  if [ -f ${FIREWALLD_LEDGER} ] || [ -f ${FIREWALLD_LEDGER_KEPT} ]; then b64cmd FWD_RUNTIME firewall-cmd --list-all-zones; b64cmd FWD_PERMANENT firewall-cmd --permanent --list-all-zones; fi`,
    'elif have firewall-offline-cmd; then',
    '  echo FIREWALLD=offline',
    sh`  if [ -f ${FIREWALLD_LEDGER} ] || [ -f ${FIREWALLD_LEDGER_KEPT} ]; then b64cmd FWD_PERMANENT firewall-offline-cmd --list-all-zones; fi`,
    'fi',
  ].join('\n'),
  parse: parseFirewallRemnants,
};

const anyAddr = (a: string): boolean => a === '0.0.0.0/0' || a === '::/0' || a === 'any';

/** The `ufw delete` rule spec of a rule from user.rules (the v4 and v6 halves of one rule give one spec). */
export function ufwDeleteSpec(r: UfwRule): string[] {
  return [r.action, ...(r.proto === 'any' ? [] : ['proto', r.proto]), 'from', anyAddr(r.src) ? 'any' : r.src, 'to', 'any', ...(r.dport === 'any' ? [] : ['port', r.dport])];
}

export function firewallUninstallPlan(fw: FirewallRemnants): Plan {
  const actions: Action[] = [];
  const specs = new Map<string, { spec: string[]; comment: string }>();
  for (const r of fw.ufw) {
    const spec = ufwDeleteSpec(r);
    specs.set(spec.join(' '), { spec, comment: r.comment });
  }
  for (const [text, { spec, comment }] of specs) {
    actions.push({ kind: 'run', title: `ufw: delete ${text} (${comment})`, script: sh`ufw delete ${spec}`, sudo: true });
  }
  for (const r of fw.nft) {
    actions.push({ kind: 'run', title: `nft: delete the ${r.comment} rule (handle ${r.handle}) from ${r.family} ${r.table} ${r.chain}`, script: sh`nft delete rule ${r.family} ${r.table} ${r.chain} handle ${r.handle}`, sudo: true });
  }
  if (fw.nftTable) actions.push({ kind: 'run', title: `nft: delete table ${NFT_TABLE} (PostgreSQL's allowed clients)`, script: `nft delete table ${NFT_TABLE}`, sudo: true });
  if (hasAddedBlock(fw.nftConf)) {
    actions.push({ kind: 'run', title: `remove ha-setup's include lines from ${NFTABLES_CONF}`, script: removeAddedBlocks(NFTABLES_CONF, '^include "/etc/ha-setup/'), sudo: true });
  }
  for (const [tool, rules] of [['iptables', fw.iptables], ['ip6tables', fw.ip6tables]] as const) {
    for (const r of rules) {
      const words = r.split(/\s+/).filter(Boolean);
      if (words[0] !== '-A') continue;
      actions.push({ kind: 'run', title: `${tool}: delete ${r}`, script: sh`${tool} ${['-D', ...words.slice(1)]}`, sudo: true });
    }
  }
  if ((fw.iptables.length || fw.ip6tables.length) && fw.iptablesPersist) {
    const [v4, v6] = fw.iptablesPersist === 'debian' ? ['/etc/iptables/rules.v4', '/etc/iptables/rules.v6'] : ['/etc/sysconfig/iptables', '/etc/sysconfig/ip6tables'];
    actions.push({ kind: 'run', title: `save the rules (${v4})`, script: sh`iptables-save > ${v4}\nif [ -f ${v6} ]; then ip6tables-save > ${v6}; fi`, sudo: true });
  }
  const commented = actions.length ? "rules carrying ha-setup's comments (ha-setup-pg, ha-setup-haproxy, ha-setup-vrrp)" : '';
  const fwd = firewalldLedgerPlan(fw.fwd);
  actions.push(...fwd.actions);
  const reason = [commented, fwd.note].filter(Boolean).join('; ');
  if (!actions.length) return done(reason || "no firewall rule of ha-setup's on this host");
  return { actions, reason };
}

const firewall = defineStep({
  id: 'uninstall.firewall',
  title: "Firewall: ha-setup's rules deleted (ufw, nftables, iptables: by their comments; firewalld: those in ha-setup's ledger)",
  targets: ({ hosts }) => Object.keys(hosts).filter((a) => hosts[a]),
  facts: { fw: firewallRemnantsFact },
  plan: ({ fw }) => firewallUninstallPlan(fw),
});

// 8. Whatever else ha-setup left on any host.
const HOSTS_MARK = /# added by ha-setup/;
/** What the component steps handle (so that a plan does not list it twice). */
const COMPONENT_PATHS = under('/etc/haproxy/', '/etc/keepalived/', ...NFS_PREFIXES, '/etc/postgresql/', '/var/lib/pgsql/', '/var/lib/postgresql/', ...PG_PREFIXES);

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
    "Undo ha-setup: unmount the share on every app server first (umount -f -l, fstab entry removed), then HAProxy, keepalived (standbys first), NFS, the standby and the primary: services stopped and disabled, configuration files restored from the backups taken on apply (/var/lib/ha-setup/backups), files ha-setup created removed, its firewall rules deleted, data directories kept unless --purge-data with the cluster name typed.",
  steps: [unmount, haproxy, keepalivedStandbys, keepalived, nfs, standby, primary, firewall, leftovers],
};

// ---------------------------------------------------------------------------------------------
// What a plan of this runbook does, in words (the uninstall screen, per host).

export type UninstallKind = 'stop' | 'unmount' | 'restore' | 'remove' | 'edit' | 'firewall' | 'other' | 'purge';

/** The order the screen lists them in; purge (the data directories) apart. */
export const UNINSTALL_KINDS: readonly UninstallKind[] = ['unmount', 'stop', 'restore', 'remove', 'edit', 'firewall', 'other', 'purge'];

/** One action of an uninstall plan as a kind and its object (a unit, a path, a rule), from its title. */
export function classifyUninstallAction(a: Action): { kind: UninstallKind; item: string } {
  const title = a.title ?? (a.kind === 'write' ? a.path : a.script);
  let m: RegExpExecArray | null;
  if ((m = /^delete (?:the data directory|the shared data) (.+) \(--purge-data\)$/.exec(title))) return { kind: 'purge', item: m[1]! };
  if ((m = /^remove (ha-setup's .+|the .+'s line) from (\/\S+)$/.exec(title))) return { kind: 'edit', item: `${m[2]!}: ${m[1]!} removed` };
  if (a.kind === 'write') return { kind: 'edit', item: `${a.path}: ${title}` };
  if ((m = /^stop and disable (\S+)$/.exec(title))) return { kind: 'stop', item: m[1]! };
  if ((m = /^stop (\S+) \(/.exec(title))) return { kind: 'stop', item: `${m[1]!} (stop only)` };
  if ((m = /^unmount \S+ from (\S+)/.exec(title))) return { kind: 'unmount', item: m[1]! };
  if ((m = /^restore (\S+) from /.exec(title))) return { kind: 'restore', item: m[1]! };
  if ((m = /^remove (\/\S+) if nothing else is in it$/.exec(title))) return { kind: 'remove', item: `${m[1]!} (if empty)` };
  if ((m = /^remove (\/\S+) \(/.exec(title))) return { kind: 'remove', item: m[1]! };
  if ((m = /^(ufw|nft|iptables|ip6tables|firewalld): delete (.+)$/.exec(title))) return { kind: 'firewall', item: `${m[1]!}: ${m[2]!}` };
  return { kind: 'other', item: title };
}

/** A host's uninstall plan as lists per kind (in UNINSTALL_KINDS order, empty kinds left out). */
export function summarizeUninstall(actions: Action[]): { kind: UninstallKind; items: string[] }[] {
  const by = new Map<UninstallKind, string[]>();
  for (const a of actions) {
    const { kind, item } = classifyUninstallAction(a);
    const list = by.get(kind) ?? [];
    if (!list.includes(item)) list.push(item);
    by.set(kind, list);
  }
  return UNINSTALL_KINDS.filter((k) => by.has(k)).map((kind) => ({ kind, items: by.get(kind)! }));
}
