/**
 * One lab host: its directory (overlay upper/work/root, the NFS export dir, logs, pid files),
 * what is written into its upper layer before the first boot (hostname, machine-id, host keys,
 * address, authorized keys), its launcher process, and stopping it.
 */
import { spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  statfsSync,
  statSync,
  writeFileSync,
  symlinkSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { assetsDir, BRIDGE, PREFIX, type LabLayout } from './layout.js';
import type { HostSpec } from './topology.js';
import { alive, allPids, cmdline, must, readPid, sleep, waitFor } from './exec.js';
import { cgroup2Root, cgroupV1SystemdRoot } from './prereqs.js';
import { isFrozen, killCgroup, removeCgroups, setFrozen } from './cgroups.js';
import { removeVeth } from './network.js';
import { connect } from 'node:net';

export const launcherScript = join(assetsDir, 'launcher.sh');

export function hostDir(layout: LabLayout, name: string): string {
  return join(layout.hostsDir, name);
}

/** Login users whose ~/.ssh/authorized_keys get the lab key (admin: NOPASSWD sudo; nosudo: none). */
export const LAB_USERS = ['root', 'admin', 'nosudo'];

// Filesystems whose files have NFS file handles (name_to_handle_at), for nfs-ganesha's VFS FSAL.
const HANDLE_FS = new Set([0xef53 /* ext2/3/4 */, 0x58465342 /* xfs */, 0x9123683e /* btrfs */, 0x01021994 /* tmpfs */]);

/**
 * Writes the host's own files into its overlay upper layer. Directories that exist in the base
 * are created with the base's owner and mode (an upper directory's metadata wins in the merge).
 * Idempotent: a host that was prepared before keeps its keys and machine-id.
 */
export async function prepareHost(layout: LabLayout, spec: HostSpec, rootfs: string, pubKey: string): Promise<void> {
  const dir = hostDir(layout, spec.name);
  const upper = join(dir, 'upper');
  for (const d of ['upper', 'work', 'root', 'nfs']) mkdirSync(join(dir, d), { recursive: true, mode: 0o755 });
  // /srv/nfs: a plain directory of the lab dir's filesystem when it has file handles (ext4 here:
  // survives reboots of the host, costs no memory), else a tmpfs the launcher mounts.
  const fsType = Number(statfsSync(dir).type);
  if (!HANDLE_FS.has(fsType)) writeFileSync(join(dir, 'nfs.tmpfs'), '');
  if (existsSync(join(upper, 'etc', 'machine-id'))) return;

  const put = (rel: string, content: string, mode = 0o644, uid = 0, gid = 0) => {
    upperDir(rootfs, upper, dirname(rel));
    const p = join(upper, rel);
    writeFileSync(p, content, { mode });
    chmodSync(p, mode);
    chownSync(p, uid, gid);
  };
  put('etc/hostname', `${spec.name}\n`);
  put('etc/hosts', `127.0.0.1\tlocalhost\n${spec.address}\t${spec.name}\n::1\tlocalhost ip6-localhost ip6-loopback\n`);
  put('etc/machine-id', `${randomBytes(16).toString('hex')}\n`, 0o444);
  put(
    'etc/systemd/network/10-lab.network',
    [
      '# The host\'s static address on the lab bridge (written by ha-setup lab up).',
      '[Match]',
      'Name=host0',
      '',
      '[Network]',
      `Address=${spec.address}/${PREFIX}`,
      'LinkLocalAddressing=no',
      'IPv6AcceptRA=no',
      '# Like a static address on a server: kept while the cable is out (lab fault cut-link).',
      'ConfigureWithoutCarrier=yes',
      'IgnoreCarrierLoss=yes',
      '',
    ].join('\n'),
  );
  // Every host's PostgreSQL cluster comes from the one image, so all would share a system
  // identifier: a runbook's data guard rightly takes such a standby for a second primary.
  // Real servers are installed one by one: recreate the (empty) cluster once, on first boot.
  put(
    'etc/systemd/system/ha-lab-pg-identity.service',
    [
      '[Unit]',
      'Description=Give this lab host its own PostgreSQL cluster (system identifier), once',
      'ConditionPathExists=!/var/lib/ha-lab/pg-identity-done',
      'Before=postgresql.service',
      '',
      '[Service]',
      'Type=oneshot',
      'ExecStart=/bin/sh -c \'for v in $(ls /etc/postgresql 2>/dev/null); do pg_dropcluster --stop "$v" main && pg_createcluster "$v" main >/dev/null; done; mkdir -p /var/lib/ha-lab && touch /var/lib/ha-lab/pg-identity-done\'',
      '',
      '[Install]',
      'WantedBy=multi-user.target',
      '',
    ].join('\n'),
  );
  upperDir(rootfs, upper, 'etc/systemd/system/multi-user.target.wants');
  symlinkSync('/etc/systemd/system/ha-lab-pg-identity.service', join(upper, 'etc/systemd/system/multi-user.target.wants/ha-lab-pg-identity.service'));
  // Pitfall 4: host keys per host, never in the shared base.
  upperDir(rootfs, upper, 'etc/ssh');
  await Promise.all(
    ['ed25519', 'ecdsa'].map((t) =>
      must('ssh-keygen', ['-q', '-t', t, '-N', '', '-C', `root@${spec.name}`, '-f', join(upper, 'etc/ssh', `ssh_host_${t}_key`)]),
    ),
  );
  for (const user of LAB_USERS) {
    const home = user === 'root' ? 'root' : `home/${user}`;
    const st = statSync(join(rootfs, home));
    put(`${home}/.ssh/authorized_keys`, pubKey, 0o600, st.uid, st.gid);
    const sshDir = join(upper, home, '.ssh');
    chmodSync(sshDir, 0o700);
    chownSync(sshDir, st.uid, st.gid);
  }
}

/** Creates upper/<rel> and its parents, each like the base's directory of the same path. */
function upperDir(rootfs: string, upper: string, rel: string): void {
  let cur = '';
  for (const part of rel.split('/').filter(Boolean)) {
    cur = cur ? `${cur}/${part}` : part;
    const target = join(upper, cur);
    if (existsSync(target)) continue;
    mkdirSync(target);
    try {
      const st = statSync(join(rootfs, cur));
      chmodSync(target, st.mode & 0o7777);
      chownSync(target, st.uid, st.gid);
    } catch {
      chmodSync(target, 0o755);
    }
  }
}

/** The host's public host keys as known_hosts lines for its address. */
export function knownHostsLines(layout: LabLayout, spec: HostSpec): string[] {
  const sshDir = join(hostDir(layout, spec.name), 'upper', 'etc', 'ssh');
  return ['ed25519', 'ecdsa'].map((t) => {
    const [type, key] = readFileSync(join(sshDir, `ssh_host_${t}_key.pub`), 'utf8').trim().split(/\s+/);
    return `${spec.address} ${type} ${key}`;
  });
}

/** Starts the host's launcher (detached, own session, logging to launcher.log). */
export function startHost(layout: LabLayout, spec: HostSpec, rootfs: string): number {
  const dir = hostDir(layout, spec.name);
  const cg2 = cgroup2Root();
  if (!cg2) throw new Error('no cgroup2 hierarchy');
  rmSync(join(dir, 'nspawn.pid'), { force: true });
  rmSync(join(dir, 'launcher.pid'), { force: true });
  const log = openSync(join(dir, 'launcher.log'), 'a');
  const child = spawn(
    '/bin/bash',
    [launcherScript, spec.name, dir, rootfs, BRIDGE, cg2, cgroupV1SystemdRoot() ?? ''],
    { detached: true, stdio: ['ignore', log, log], cwd: '/' },
  );
  closeSync(log);
  child.unref();
  if (!child.pid) throw new Error(`${spec.alias}: could not start its launcher`);
  return child.pid;
}

export interface HostProcesses {
  launcher?: number;
  nspawn?: number;
  /** The host's PID 1 (systemd), as seen from the machine. */
  init?: number;
}

function isLauncher(pid: number, dir: string): boolean {
  // By name, not by this package's path: a launcher started by an older copy still counts.
  const argv = cmdline(pid);
  return argv[0] === '/bin/bash' && (argv[1] ?? '').endsWith('/assets/lab/launcher.sh') && argv[3] === dir;
}

function isNspawn(pid: number, dir: string): boolean {
  const argv = cmdline(pid);
  return (argv[0] ?? '').endsWith('systemd-nspawn') && argv.includes(`--directory=${join(dir, 'root')}`);
}

/** The host's processes, each checked against /proc (a stale or reused pid is ignored). */
export function hostProcesses(layout: LabLayout, name: string): HostProcesses {
  const dir = hostDir(layout, name);
  const out: HostProcesses = {};
  const l = readPid(join(dir, 'launcher.pid'));
  if (l && alive(l) && isLauncher(l, dir)) out.launcher = l;
  const n = readPid(join(dir, 'nspawn.pid'));
  if (n && alive(n) && isNspawn(n, dir)) out.nspawn = n;
  if (!out.launcher || !out.nspawn) {
    // Pid files not written yet (or lost): find them by command line.
    for (const pid of allPids()) {
      if (!out.launcher && isLauncher(pid, dir) && alive(pid)) out.launcher = pid;
      else if (!out.nspawn && isNspawn(pid, dir) && alive(pid)) out.nspawn = pid;
    }
  }
  if (out.nspawn) out.init = containerInit(out.nspawn);
  return out;
}

/** The child of nspawn that is PID 1 in its own pid namespace. */
function containerInit(nspawn: number): number | undefined {
  for (const pid of allPids()) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const ppid = /^PPid:\s+(\d+)/m.exec(status)?.[1];
      const nspid = /^NSpid:\s+(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/);
      if (Number(ppid) === nspawn && nspid && nspid.length > 1 && nspid[nspid.length - 1] === '1') return pid;
    } catch {
      /* gone */
    }
  }
  return undefined;
}

/** Waits until the host's sshd answers with its banner; throws with the launcher log's tail. */
export async function waitSsh(layout: LabLayout, spec: HostSpec, timeoutMs: number): Promise<void> {
  const started = Date.now();
  const dir = hostDir(layout, spec.name);
  // Ready = sshd answers and the first-boot PostgreSQL identity (ha-lab-pg-identity.service)
  // is done: a runbook started earlier would race its pg_createcluster.
  const pgIdentityDone = join(dir, 'upper', 'var', 'lib', 'ha-lab', 'pg-identity-done');
  for (;;) {
    if (existsSync(pgIdentityDone) && (await sshBanner(spec.address, 1000))) return;
    const exited = Date.now() - started > 3000 && !hostProcesses(layout, spec.name).launcher;
    if (exited || Date.now() - started > timeoutMs) {
      const tail = logTail(join(dir, 'launcher.log'), 5);
      throw new Error(
        `${spec.alias} (${spec.address}): ${exited ? 'its launcher exited' : `no SSH within ${timeoutMs / 1000} s`}; ` +
          `last lines of ${join(dir, 'launcher.log')}: ${tail}`,
      );
    }
    await sleep(100);
  }
}

export function logTail(file: string, n: number): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-n).join(' | ');
  } catch {
    return '(no log)';
  }
}

/** Waits for an SSH banner (SSH-2.0-...) on host:22. */
export function sshBanner(host: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port: 22 });
    let buf = '';
    const done = (v: boolean) => {
      s.destroy();
      resolve(v);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.startsWith('SSH-')) {
        // Say who we are before leaving, so that sshd logs a closed connection, not an error.
        s.end('SSH-2.0-ha-setup-lab-probe\r\n');
        resolve(true);
      }
    });
    s.once('error', () => done(false));
    s.once('close', () => done(false));
  });
}

export interface StopReport {
  host: string;
  /** How it ended: poweroff (SIGTERM, in order) or killed (SIGKILL after the grace time). */
  how: 'poweroff' | 'killed' | 'not-running';
  /** Cgroup directories that could not be removed (empty when all is clean). */
  leftCgroups: string[];
}

/**
 * Stops hosts by PID (pitfall 10): thaw, SIGTERM to each launcher (which forwards it to nspawn:
 * an orderly poweroff of the host), wait, then SIGKILL and cgroup.kill for any that remain.
 * Then removes the hosts' cgroups and any leftover veth.
 */
export async function stopHosts(layout: LabLayout, names: string[], graceMs = 8000): Promise<StopReport[]> {
  const procs = new Map(names.map((n) => [n, hostProcesses(layout, n)]));
  for (const n of names) {
    if (isFrozen(n)) await setFrozen(n, false).catch(() => undefined);
    const p = procs.get(n)!;
    const target = p.launcher ?? p.nspawn;
    if (target) {
      try {
        process.kill(target, 'SIGTERM');
      } catch {
        /* already gone */
      }
    }
  }
  const pidsOf = (p: HostProcesses) => [p.launcher, p.nspawn].filter((x): x is number => Boolean(x));
  const allGone = () => names.every((n) => pidsOf(procs.get(n)!).every((pid) => !alive(pid)));
  await waitFor(allGone, graceMs, 50);
  const reports: StopReport[] = [];
  for (const n of names) {
    const p = procs.get(n)!;
    const pids = pidsOf(p);
    let how: StopReport['how'] = pids.length ? 'poweroff' : 'not-running';
    if (pids.some((pid) => alive(pid))) {
      how = 'killed';
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      killCgroup(n);
      await waitFor(() => pids.every((pid) => !alive(pid)), 3000, 50);
    }
    reports.push({ host: n, how, leftCgroups: [] });
  }
  await Promise.all(
    reports.map(async (r) => {
      r.leftCgroups = await removeCgroups(r.host);
      await removeVeth(r.host);
    }),
  );
  return reports;
}

/** Removes a host's directory (after its launcher is gone: its mounts went with it). */
export function removeHostDir(layout: LabLayout, name: string): void {
  const dir = hostDir(layout, name);
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => Boolean(m) && (m === dir || m!.startsWith(`${dir}/`)));
  if (mounts.length) throw new Error(`${name}: ${mounts[0]} is still mounted; not removing ${dir}`);
  rmSync(dir, { recursive: true, force: true });
}

/** Host directories present under the lab dir (including ones the state file lost). */
export function hostDirNames(layout: LabLayout): string[] {
  try {
    return readdirSync(layout.hostsDir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    return [];
  }
}
