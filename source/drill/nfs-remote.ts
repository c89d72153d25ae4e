/**
 * The scripts the NFS drill runs on the servers, and parsers of what they print. Built with
 * sh``/quote(); no secrets are involved (NFS access is by client address).
 *
 * The probe runs on an app server (app1), as root, and writes numbered files into the share
 * through the NFS VIP, one file per attempt:
 *   - `mount`:  the share is mounted at options.nfs.mountPath from <nfs_vip>:<exportDir> (what
 *     the nfs runbook sets up on real app servers): each file is written there with
 *     `dd conv=fsync` under `timeout -s KILL`, so a write is acknowledged only once the server
 *     has it on stable storage, and a write blocked by the hard mount during the failover
 *     (exactly what the app sees) counts as failed after the write timeout.
 *   - `nfs-cp`: no such mount (the lab has no kernel NFS client, or mountClients is false): the
 *     libnfs client `nfs-cp` writes nfs://<vip><exportDir>/<file>?version=4. It connects afresh
 *     per file (a reconnecting client); it is acknowledged when nfs-cp reports the bytes copied
 *     (the server accepted the WRITE; nfs-cp does not check the COMMIT at close, so the data
 *     is in the NFS server's memory, not necessarily on its disk).
 * The file names are `.ha-setup-drill.<run>.<seq, 6 digits>` at the top of the share, the
 * content `<run> <seq>`; the watchers on the NFS servers and the after-drill listing look for
 * exactly those names, and the cleanup removes exactly those (also from the replication's
 * kept-aside directory).
 */
import { quote, sh } from '../engine/shell.js';

export interface NfsProbeSpec {
  /** Random id of this drill: part of every file name and of the probe's work directory. */
  run: string;
  vip: string;
  /** The exported directory on the NFS servers (the NFSv4 path of the share). */
  exportDir: string;
  /** Where the app servers mount the share. */
  mountPath: string;
  /** Seconds after which the probe stops by itself (a safety net; the drill stops it earlier). */
  maxSeconds: number;
  /** Seconds one write may take before it counts as failed (and is killed). */
  writeTimeout: number;
  /** Seconds the first (setup) write is retried: an NFS server in its grace period refuses writes. */
  setupSeconds: number;
  /**
   * Seconds to pause after an acknowledged write (default 0.02): nfs-cp takes ~6 ms per file in the
   * lab, so unpaced the probe would create ~170 files a second in the share; paced, ~40, which
   * still times the failover to a few tens of ms.
   */
  gap?: number;
  /** The mount table to read (the tests give their own; servers: /proc/mounts). */
  mountsFile?: string;
}

export const NFS_PROBE_TOOLS = ['mount', 'nfs-cp'] as const;
export type NfsProbeTool = (typeof NFS_PROBE_TOOLS)[number];

/** `.ha-setup-drill.<run>.` : the prefix of every file the drill writes into the share. */
export const drillFilePrefix = (run: string): string => `.ha-setup-drill.${run}.`;
/**
 * The glob of the numbered files: exactly six digits after the prefix. rsync's temporary files
 * while a pass is under way are `<name>.XXXXXX` (no extra dot for a name that starts with one),
 * so a looser `<prefix>[0-9]*` would match them on the receiving server.
 */
const NUMBERED = '[0-9][0-9][0-9][0-9][0-9][0-9]';
export const nfsProbeDir = (run: string): string => `/tmp/ha-setup-drill-nfs.${run}`;

function checkRun(run: string): void {
  if (!/^[a-z0-9]+$/.test(run)) throw new Error(`bug: drill run id "${run}" must be lowercase letters and digits`);
}

/** The libnfs URL of a file in the share (an IPv6 VIP in brackets). */
export function nfsUrl(vip: string, exportDir: string, file: string): string {
  return `nfs://${vip.includes(':') ? `[${vip}]` : vip}${exportDir}/${file}?version=4`;
}

/**
 * Prints `TOOL mount|nfs-cp <detail>`, `READY`, then per numbered write `ACK <n>` or
 * `ERR <n> <error>`, and `DONE <n>` after the stop file appeared; `SETUP-FAILED <why>` when
 * no write through the VIP works at all.
 */
export function nfsProbeScript(p: NfsProbeSpec): string {
  checkRun(p.run);
  const dir = nfsProbeDir(p.run);
  const prefix = drillFilePrefix(p.run);
  const source = `${p.vip}:${p.exportDir}`;
  const w = p.writeTimeout;
  return [
    'set +eu +o pipefail',
    'umask 022',
    sh`rm -rf ${dir} && mkdir -m 700 ${dir} || { echo "SETUP-FAILED cannot create ${dir}"; exit 3; }`,
    `trap ${quote(`rm -rf ${dir}`)} EXIT`,
    `mp=${quote(p.mountPath)}`,
    // The mount must be the share from the VIP: writing into a bare local directory, or through
    // a mount from one server's own address, would measure nothing.
    `from=$(awk -v m="$mp" '$2 == m { s = $1 " (" $3 ")" } END { print s }' ${quote(p.mountsFile ?? '/proc/mounts')} 2>/dev/null)`,
    `case "$from" in`,
    `  ${quote(`${source} (nfs`)}*|${quote(`${source}/ (nfs`)}*) tool=mount; echo "TOOL mount $from on $mp" ;;`,
    '  *)',
    `    if [ -n "$from" ]; then why="$mp is mounted from $from, not from ${source}"; else why="$mp is not mounted"; fi`,
    '    if command -v nfs-cp >/dev/null 2>&1; then tool=nfs-cp; echo "TOOL nfs-cp libnfs, NFSv4 ($why)"',
    `    else echo "SETUP-FAILED $why and nfs-cp (libnfs-utils) is not installed: mount the share (ha-setup apply --runbook nfs) or install libnfs-utils on this app server"; exit 3; fi ;;`,
    'esac',
    'err=',
    // write_one <file name> <content>: returns 0 when the write was acknowledged, else sets err.
    'write_one() {',
    `  printf '%s\\n' "$2" > ${dir}/data`,
    '  if [ "$tool" = mount ]; then',
    `    err=$(timeout -s KILL ${w} dd if=${dir}/data of="$mp/$1" conv=fsync status=none 2>&1); rc=$?`,
    '  else',
    `    err=$(timeout -s KILL ${w} nfs-cp ${dir}/data "${nfsUrl(p.vip, p.exportDir, '$1')}" 2>&1); rc=$?`,
    '    if [ "$rc" -eq 0 ]; then case "$err" in *"copied "*" bytes"*) return 0 ;; esac; rc=1; fi',
    '  fi',
    '  [ "$rc" -eq 0 ] && return 0',
    `  if [ "$rc" -eq 137 ] || [ "$rc" -eq 124 ]; then err="no answer within ${w} s"; fi`,
    '  err=$(printf %s "${err:-exit $rc}" | grep -v "^Failed to open nfs://" | tr \'\\n\' \' \' | cut -c1-200); err=${err% }',
    '  return 1',
    '}',
    `setup_end=$(( $(date +%s) + ${Math.ceil(p.setupSeconds)} ))`,
    `until write_one ${quote(`${prefix}setup`)} ${quote(`${p.run} setup`)}; do`,
    '  if [ "$(date +%s)" -ge "$setup_end" ]; then echo "SETUP-FAILED $err"; exit 3; fi',
    '  sleep 1',
    'done',
    'echo READY',
    `end=$(( $(date +%s) + ${Math.ceil(p.maxSeconds)} ))`,
    'n=0',
    `while [ ! -e ${dir}/stop ] && [ "$(date +%s)" -lt "$end" ]; do`,
    '  n=$((n + 1))',
    `  if write_one "$(printf '${prefix}%06d' "$n")" ${quote(p.run)}" $n"; then echo "ACK $n"; sleep ${p.gap ?? 0.02}; else echo "ERR $n $err"; sleep 0.05; fi`,
    'done',
    'echo "DONE $n"',
  ].join('\n');
}

/** Ends the probe gracefully (it finishes the write under way, then exits). */
export const stopNfsProbeScript = (run: string): string => sh`touch ${`${nfsProbeDir(run)}/stop`} 2>/dev/null || true`;

/** Shell text: `m` = highest drill file number in `dir`, `c` = how many there are. */
function countFiles(dir: string, run: string): string[] {
  return [
    `  set -- ${sh`${dir}/${drillFilePrefix(run)}`}${NUMBERED}`,
    '  if [ -e "$1" ]; then eval "f=\\${$#}"; m=$((10#${f##*.})); c=$#; else m=0; c=0; fi',
  ];
}

/**
 * On an NFS server: `VIP 1` / `VIP 0` each time it starts or stops holding the VIP (checked
 * every 50 ms), and `FILES <highest> <count>` of the drill's files in its copy of the share when
 * that changes (checked every 0.5 s): on the standby, each change is a replication pass arriving.
 */
export function nfsWatchScript(vip: string, exportDir: string, run: string): string {
  checkRun(run);
  return [
    'set +eu +o pipefail',
    'last=; lastf=; i=0',
    'while :; do',
    `  if ip -o addr show 2>/dev/null | grep -qF ${quote(` ${vip}/`)}; then s=1; else s=0; fi`,
    '  if [ "$s" != "$last" ]; then echo "VIP $s"; last=$s; fi',
    '  if [ $((i % 10)) -eq 0 ]; then',
    ...countFiles(exportDir, run).map((l) => `  ${l}`),
    '    if [ "$m $c" != "$lastf" ]; then echo "FILES $m $c"; lastf="$m $c"; fi',
    '  fi',
    '  i=$((i + 1))',
    '  sleep 0.05',
    'done',
  ].join('\n');
}

export interface NfsNodeState {
  holdsVip: boolean;
  /** `systemctl is-active` of the NFS server unit. */
  nfs: string;
  /** Something answers on TCP 2049 here. */
  port: boolean;
  keepalived: string;
  /** `systemctl is-active` of the replication timer. */
  timer: string;
  /** The interface that carries the host's table address. */
  iface: string;
}

/** What an NFS node is now: the VIP, the NFS server unit and port, keepalived, the replication timer. */
export function nfsNodeStateScript(vip: string, unit: string, timer: string, address: string): string {
  return [
    'set +eu +o pipefail',
    `echo "VIP=$(ip -o addr show 2>/dev/null | grep -qF ${quote(` ${vip}/`)} && echo yes || echo no)"`,
    `echo "NFS=$(systemctl is-active ${quote(unit)} 2>/dev/null || true)"`,
    `echo "PORT=$(timeout 1 bash -c 'exec 3<>/dev/tcp/127.0.0.1/2049' 2>/dev/null && echo yes || echo no)"`,
    'echo "KEEPALIVED=$(systemctl is-active keepalived 2>/dev/null || true)"',
    `echo "TIMER=$(systemctl is-active ${quote(timer)} 2>/dev/null || true)"`,
    `echo "IFACE=$(ip -o addr show 2>/dev/null | awk -v a=${quote(address)} '{ split($4, p, "/"); if (p[1] == a) { print $2; exit } }')"`,
  ].join('\n');
}

const kv = (stdout: string): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return out;
};

export function parseNfsNodeState(stdout: string): NfsNodeState {
  const k = kv(stdout);
  return {
    holdsVip: k.VIP === 'yes',
    nfs: k.NFS || 'unknown',
    port: k.PORT === 'yes',
    keepalived: k.KEEPALIVED || 'unknown',
    timer: k.TIMER || 'unknown',
    iface: k.IFACE ?? '',
  };
}

/**
 * The drill's files on an NFS server: `SHARE=` the numbers of the files in the share whose
 * content is right (`<run> <n>`), `BAD=` those present with other content (e.g. empty: copied
 * by a replication pass between their creation and their write), `REPLACED=` those the
 * replication kept aside under `replacedDir`/<date> (comma-separated, sorted).
 */
export function nfsFilesScript(exportDir: string, replacedDir: string, run: string): string {
  checkRun(run);
  const pre = drillFilePrefix(run);
  return [
    'set +eu +o pipefail',
    'good=; bad=; kept=',
    `for f in ${sh`${exportDir}/${pre}`}${NUMBERED}; do`,
    '  [ -f "$f" ] || continue',
    '  n=$((10#${f##*.})); c=',
    '  read -r c < "$f"',
    `  if [ "$c" = ${quote(`${run} `)}"$n" ]; then good="$good,$n"; else bad="$bad,$n"; fi`,
    'done',
    `for f in ${sh`${replacedDir}`}/*/${quote(pre)}${NUMBERED}; do`,
    '  [ -f "$f" ] && kept="$kept,$((10#${f##*.}))"',
    'done',
    'echo "SHARE=${good#,}"',
    'echo "BAD=${bad#,}"',
    'echo "REPLACED=${kept#,}"',
  ].join('\n');
}

export interface NfsFiles {
  share: number[];
  bad: number[];
  replaced: number[];
}

const nums = (s: string | undefined): number[] =>
  [...new Set((s ?? '').split(',').filter((x) => /^\d+$/.test(x)).map(Number))].sort((a, b) => a - b);

export function parseNfsFiles(stdout: string): NfsFiles {
  const k = kv(stdout);
  return { share: nums(k.SHARE), bad: nums(k.BAD), replaced: nums(k.REPLACED) };
}

/**
 * Removes the drill's files (and its setup file, and rsync's temporary files of them) from the
 * share and from the replication's kept-aside directories (a date directory that only held them
 * goes too); prints `REMOVED=<n>` and `LEFT=<n>`.
 */
export function nfsCleanupScript(exportDir: string, replacedDir: string, run: string): string {
  checkRun(run);
  const pre = drillFilePrefix(run);
  const count = [
    `set -- ${sh`${exportDir}/${pre}`}* ${sh`${replacedDir}`}/*/${quote(pre)}*`,
    'n=0; for f in "$@"; do [ -e "$f" ] && n=$((n + 1)); done',
  ];
  return [
    'set +eu +o pipefail',
    ...count,
    'found=$n',
    `rm -f -- ${sh`${exportDir}/${pre}`}*`,
    `for d in ${sh`${replacedDir}`}/*/; do`,
    `  set -- "$d"${quote(pre)}*`,
    '  [ -e "$1" ] || continue',
    '  rm -f -- "$@"',
    '  rmdir -- "$d" 2>/dev/null',
    'done',
    ...count,
    'echo "REMOVED=$((found - n))"',
    'echo "LEFT=$n"',
  ].join('\n');
}

/** What nfsCleanupScript printed (null when it did not run to the end). */
export function parseCleanup(stdout: string): { removed: number; left: number } | null {
  const k = kv(stdout);
  return /^\d+$/.test(k.REMOVED ?? '') && /^\d+$/.test(k.LEFT ?? '') ? { removed: Number(k.REMOVED), left: Number(k.LEFT) } : null;
}

/**
 * Waits (up to about a minute) until no replication pass is under way here: the oneshot service
 * is "activating" while rsync runs. A pass that started before the drill's files were removed
 * would copy them to the peer again, or move them into its kept-aside directory.
 */
export function replicationIdleScript(service: string): string {
  return [
    'set +eu +o pipefail',
    'for i in $(seq 1 120); do',
    `  [ "$(systemctl is-active ${quote(service)} 2>/dev/null)" = activating ] || exit 0`,
    '  sleep 0.5',
    'done',
    'exit 1',
  ].join('\n');
}

/** keepalived's own VRRP state changes since `sinceEpoch` (seconds), in the journal format parseJournal() reads. */
export function vrrpJournalScript(sinceEpoch: number): string {
  return `journalctl -u keepalived --since ${quote(`@${Math.floor(sinceEpoch)}`)} -o short-iso-precise --no-pager -q 2>/dev/null | grep -E 'Entering (MASTER|BACKUP|FAULT) STATE' || true`;
}
