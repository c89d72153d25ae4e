/**
 * Facts of the NFS runbook (read-only): on the NFS servers, the packages, the export directory,
 * every file ha-setup writes there, the services and the replication key; on the app servers,
 * the client package, /etc/fstab and what is mounted at the app path.
 */
import { sh } from '../../source/engine/shell.js';
import type { FactDef } from '../../source/engine/step.js';
import { b64, parseKv } from './pg-facts.js';

/** Every path the NFS runbook writes or reads on a server. */
export const NFS_PATHS = {
  exports: '/etc/exports.d/ha-setup.exports',
  ganeshaConf: '/etc/ganesha/ganesha.conf',
  libexec: '/usr/local/libexec/ha-setup',
  replicate: '/usr/local/libexec/ha-setup/nfs-replicate',
  receive: '/usr/local/libexec/ha-setup/nfs-rsync-receive',
  keyGen: '/usr/local/libexec/ha-setup/nfs-replication-key',
  service: '/etc/systemd/system/ha-setup-nfs-replicate.service',
  timer: '/etc/systemd/system/ha-setup-nfs-replicate.timer',
  key: '/root/.ssh/ha-setup-nfs-replication',
  authorizedKeys: '/root/.ssh/authorized_keys',
  knownHosts: '/root/.ssh/ha-setup-nfs-replication.known_hosts',
  replaced: '/var/lib/ha-setup/nfs-replaced',
  fstab: '/etc/fstab',
} as const;

export const REPLICATION_TIMER = 'ha-setup-nfs-replicate.timer';

/** Files whose content the server fact reports (null when absent). */
const SERVER_FILES = {
  exports: NFS_PATHS.exports,
  ganeshaConf: NFS_PATHS.ganeshaConf,
  replicate: NFS_PATHS.replicate,
  receive: NFS_PATHS.receive,
  keyGen: NFS_PATHS.keyGen,
  service: NFS_PATHS.service,
  timer: NFS_PATHS.timer,
  keyPub: `${NFS_PATHS.key}.pub`,
  authorizedKeys: NFS_PATHS.authorizedKeys,
} as const;

export type UnitState = { active: string; enabled: string };

export interface NfsServerFacts {
  /** Installed packages among the ones the runbook may install. */
  packages: string[];
  dir: { exists: boolean; owner: string; mode: string };
  files: Record<keyof typeof SERVER_FILES, string | null>;
  privateKey: boolean;
  units: Record<string, UnitState>;
}

export const SERVER_PACKAGES = ['nfs-kernel-server', 'nfs-utils', 'nfs-ganesha', 'nfs-ganesha-vfs', 'rsync', 'openssl', 'openssh-clients', 'openssh-client'];
export const SERVER_UNITS = ['nfs-server', 'nfs-kernel-server', 'nfs-ganesha', REPLICATION_TIMER];

const pkgScript = (names: string[]): string =>
  [
    `for p in ${sh`${names}`}; do`,
    `  if command -v dpkg-query >/dev/null 2>&1; then s=$(dpkg-query -W -f='\${Status}' "$p" 2>/dev/null || true); case $s in *' installed') echo "PKG=$p";; esac`,
    `  elif command -v rpm >/dev/null 2>&1 && rpm -q "$p" >/dev/null 2>&1; then echo "PKG=$p"; fi`,
    'done',
  ].join('\n');

const fileScript = (key: string, path: string): string =>
  `if [ -f ${sh`${path}`} ]; then echo "F_${key.toUpperCase()}=$(base64 -w0 < ${sh`${path}`})"; else echo "F_${key.toUpperCase()}=-"; fi`;

const unitScript = (units: string[]): string =>
  [
    `for u in ${sh`${units}`}; do`,
    '  a=$(systemctl is-active "$u" 2>/dev/null || true); e=$(systemctl is-enabled "$u" 2>/dev/null || true)',
    '  echo "UNIT=$u ${a:-unknown} ${e:-unknown}"',
    'done',
  ].join('\n');

function lines(stdout: string, key: string): string[] {
  return stdout.split('\n').filter((l) => l.startsWith(`${key}=`)).map((l) => l.slice(key.length + 1));
}

function parseUnits(stdout: string): Record<string, UnitState> {
  const out: Record<string, UnitState> = {};
  for (const l of lines(stdout, 'UNIT')) {
    const [u, active = 'unknown', enabled = 'unknown'] = l.split(' ');
    if (u) out[u] = { active, enabled };
  }
  return out;
}

export function parseServerFacts(stdout: string): NfsServerFacts {
  const kv = parseKv(stdout);
  const [owner = '-', mode = ''] = (kv.DIR ?? '-').split(' ');
  const files = {} as NfsServerFacts['files'];
  for (const k of Object.keys(SERVER_FILES) as (keyof typeof SERVER_FILES)[]) files[k] = b64(kv, `F_${k.toUpperCase()}`);
  return {
    packages: lines(stdout, 'PKG'),
    dir: { exists: owner !== '-', owner, mode },
    files,
    privateKey: kv.PRIVKEY === 'yes',
    units: parseUnits(stdout),
  };
}

/** Everything the server steps read, for the export directory `dir`. */
export function nfsServerFact(dir: string): FactDef<NfsServerFacts> {
  return {
    id: `nfs-server-${dir}`,
    sudo: true,
    script: [
      pkgScript(SERVER_PACKAGES),
      `echo "DIR=$(stat -c '%U %a' ${sh`${dir}`} 2>/dev/null || echo -)"`,
      ...Object.entries(SERVER_FILES).map(([k, p]) => fileScript(k, p)),
      `if [ -f ${NFS_PATHS.key} ]; then echo PRIVKEY=yes; else echo PRIVKEY=no; fi`,
      unitScript(SERVER_UNITS),
    ].join('\n'),
    parse: parseServerFacts,
  };
}

export interface MountEntry {
  source: string;
  target: string;
  fstype: string;
  options: string;
}

export interface NfsClientFacts {
  packages: string[];
  fstab: string | null;
  /** What is mounted at the app path now (the last mount there wins), or null. */
  mounted: MountEntry | null;
  dirExists: boolean;
  /** Entries in the app path when nothing is mounted there (hidden, not lost, by the mount). */
  localEntries: number;
}

/** /proc/self/mounts escapes spaces and the like as \040 ... */
const unescapeMount = (s: string): string => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(Number.parseInt(o, 8)));

export function parseMounts(text: string, target: string): MountEntry | null {
  let found: MountEntry | null = null;
  for (const line of text.split('\n')) {
    const [source, t, fstype, options] = line.split(' ');
    if (!source || !t || unescapeMount(t) !== target) continue;
    found = { source: unescapeMount(source), target, fstype: fstype ?? '', options: options ?? '' };
  }
  return found;
}

export function nfsClientFact(mountPath: string): FactDef<NfsClientFacts> {
  return {
    id: `nfs-client-${mountPath}`,
    sudo: true,
    script: [
      pkgScript(['nfs-common', 'nfs-utils']),
      fileScript('fstab', NFS_PATHS.fstab),
      'echo "MOUNTS=$(base64 -w0 < /proc/self/mounts)"',
      `if [ -d ${sh`${mountPath}`} ]; then echo DIR=yes; echo "LOCAL=$(ls -A ${sh`${mountPath}`} 2>/dev/null | wc -l)"; else echo DIR=no; echo LOCAL=0; fi`,
    ].join('\n'),
    parse(stdout) {
      const kv = parseKv(stdout);
      const mounted = parseMounts(b64(kv, 'MOUNTS') ?? '', mountPath);
      return {
        packages: lines(stdout, 'PKG'),
        fstab: b64(kv, 'F_FSTAB'),
        mounted,
        dirExists: kv.DIR === 'yes',
        localEntries: mounted ? 0 : Number(kv.LOCAL ?? 0) || 0,
      };
    },
  };
}
