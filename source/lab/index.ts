/**
 * The lab: real Debian 12 servers on this machine (systemd-nspawn hosts with systemd as PID 1,
 * each on an overlay of one cached base image, on a bridge 198.18.0.0/24). Library API:
 *
 *   labUp({hosts | topology})  build the image if needed, start the hosts, wait for SSH
 *   labDown()                  stop every host by PID and remove everything but the image cache
 *   labStatus()                hosts, addresses, state, image age and size
 *   fault(host, kind, arg?)    reversible faults (see faults.ts)
 *   labTable()                 the lab's server table (lab.yaml) as an Inventory
 *
 * Every function takes { env } (HA_SETUP_LAB_DIR, HA_SETUP_HOME, HA_SETUP_LAB_CACHE).
 * Source of truth for the design: /work/shared/docs/lab.md (pitfalls 1-10 are handled here,
 * in launcher.sh and in assets/lab/image/build-base.sh).
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import type { Inventory } from '../inventory/types.js';
import { BRIDGE, labLayout, MACHINE_ADDRESS, REPO_URL, type LabLayout } from './layout.js';
import { labPrerequisites, type Prerequisites } from './prereqs.js';
import { cachedImage, ensureImage, type ImageInfo } from './image.js';
import { labInventory, labShape, labTableYaml, type HostSpec, type LabShape } from './topology.js';
import { readState, writeState, findHost, type LabState, type HostState } from './state.js';
import {
  hostDirNames,
  hostProcesses,
  knownHostsLines,
  prepareHost,
  removeHostDir,
  startHost,
  stopHosts,
  waitSsh,
  hostDir,
  type StopReport,
} from './hosts.js';
import { bridgeExists, bridgeOwner, ensureBridge, labInterfaces, linkState, removeBridge } from './network.js';
import { isRepoServer, startRepoServer, stopRepoServer } from './repo.js';
import { cgroupPids, hostCgroupDirs, isFrozen, labCgroupHosts } from './cgroups.js';
import { applyFault, isFaultKind, type FaultKind, FAULT_KINDS } from './faults.js';
import { allPids, alive, cmdline, must, readPid, sleep } from './exec.js';

export { FAULT_KINDS, type FaultKind } from './faults.js';
export { labPrerequisites } from './prereqs.js';
export { labLayout, defaultLabCache } from './layout.js';
export type { HostSpec } from './topology.js';
export type { ImageInfo } from './image.js';

export interface LabEnvOptions {
  env?: NodeJS.ProcessEnv;
  /** Progress lines (to stderr in the CLI). */
  log?: (line: string) => void;
}

export interface LabUpOptions extends LabEnvOptions {
  hosts?: number;
  topology?: string;
  /** How long to wait for every host's SSH (default 120 s). */
  readyTimeoutMs?: number;
}

/** The machine cannot host a lab; message says exactly what is missing. */
export class LabUnavailableError extends Error {
  constructor(readonly prerequisites: Prerequisites) {
    super(prerequisites.message);
    this.name = 'LabUnavailableError';
  }
}

export interface LabInfo {
  dir: string;
  tableFile: string;
  keyFile: string;
  knownHostsFile: string;
  topology: LabShape['topology'];
  scheme: LabShape['scheme'];
  hosts: HostSpec[];
  image: ImageInfo;
  /** Hosts started by this call (empty when the lab was already up as asked). */
  started: string[];
  /** Seconds from starting the hosts until all answered on SSH (0 when none started). */
  readySeconds: number;
}

export type HostStateName = 'running' | 'frozen' | 'link-cut' | 'stopped';

export interface LabHostStatus extends HostSpec {
  state: HostStateName;
  /** Every active fault (a host can be frozen and cut at once); state shows the first. */
  faults: string[];
  stoppedUnits: string[];
  pids: { launcher?: number; nspawn?: number; init?: number };
}

export interface LabStatus {
  dir: string;
  up: boolean;
  tableFile?: string;
  keyFile: string;
  knownHostsFile?: string;
  bridge: { name: string; address: string; present: boolean };
  repo: { url: string; running: boolean; pid?: number };
  image?: { hash: string; builtAt: string; ageSeconds: number; sizeBytes: number; buildSeconds: number; rootfs: string };
  hosts: LabHostStatus[];
}

// ---------------------------------------------------------------------------------------------

export async function labUp(opts: LabUpOptions = {}): Promise<LabInfo> {
  const pre = labPrerequisites();
  if (!pre.ok) throw new LabUnavailableError(pre);
  const env = opts.env ?? process.env;
  const log = opts.log ?? (() => {});
  const layout = labLayout(env);
  for (const [name, path] of [['HA_SETUP_LAB_DIR', layout.dir], ['HA_SETUP_LAB_CACHE', layout.cacheDir]]) {
    if (/[\s,:]/.test(path!)) {
      throw new Error(`${name} "${path}" cannot hold a lab: overlayfs options do not allow spaces, commas or colons in it`);
    }
  }
  const shape = labShape({ hosts: opts.hosts, topology: opts.topology });
  mkdirSync(layout.dir, { recursive: true, mode: 0o700 });
  return withLock(layout, async () => {
    const owner = bridgeOwner();
    if (bridgeExists() && owner !== layout.dir) {
      throw new Error(
        `another lab is up on this machine (${owner ? `from ${owner}` : `bridge ${BRIDGE} exists`}); ` +
          `stop it first: ${owner ? `HA_SETUP_LAB_DIR=${owner} ` : ''}ha-setup lab down`,
      );
    }
    let state = readState(layout);
    if (state && !state.hosts.some((h) => hostProcesses(layout, h.name).launcher)) {
      log('lab: the previous lab is not running any more; cleaning it up');
      await downLocked(layout, log);
      state = undefined;
    }
    let hosts: HostSpec[] = shape.hosts;
    if (state) {
      const current = state.hosts;
      const same = (a: HostSpec, b: HostSpec) => a.alias === b.alias && a.address === b.address;
      // Plain `lab up` on a running lab: whatever it has is what is wanted.
      const asked = opts.hosts !== undefined || opts.topology !== undefined;
      const wantedInCurrent = !asked || shape.hosts.every((w) => current.some((c) => same(c, w)));
      const currentInWanted = current.every((c) => shape.hosts.some((w) => same(c, w)));
      if (!wantedInCurrent && !currentInWanted) {
        throw new Error(
          `the lab is up with ${current.length} hosts (${current.map((h) => h.alias).join(', ')}), ` +
            `not a part of the ${shape.hosts.length} asked for; run ha-setup lab down first to change it`,
        );
      }
      hosts = wantedInCurrent ? current : shape.hosts;
    }

    const image = state ? imageOfState(state, layout) : await ensureImage({ cacheDir: layout.cacheDir, log });
    const pubKey = await ensureKey(layout);
    await ensureBridge(layout.dir);
    let repoPid = state?.repoServerPid;
    if (!isRepoServer(repoPid, image.repo)) repoPid = await startRepoServer(image.repo, layout.dir);

    const next: LabState = {
      version: 1,
      dir: layout.dir,
      createdAt: state?.createdAt ?? new Date().toISOString(),
      topology: state && hosts === state.hosts ? state.topology : shape.topology,
      scheme: state && hosts === state.hosts ? state.scheme : shape.scheme,
      image: { hash: image.hash, rootfs: image.rootfs, repo: image.repo },
      repoServerPid: repoPid,
      hosts: hosts.map((h) => ({ ...h, stoppedUnits: state?.hosts.find((s) => s.alias === h.alias)?.stoppedUnits ?? [] })),
    };
    const toStart = hosts.filter((h) => !hostProcesses(layout, h.name).launcher);
    if (toStart.length) log(`lab: starting ${toStart.map((h) => h.alias).join(', ')}`);
    await Promise.all(toStart.map((h) => prepareHost(layout, h, image.rootfs, pubKey)));
    writeFiles(layout, next);
    writeState(layout, next);
    const t0 = Date.now();
    for (const h of toStart) startHost(layout, h, image.rootfs);
    try {
      await Promise.all(toStart.map((h) => waitSsh(layout, h, opts.readyTimeoutMs ?? 120_000)));
    } catch (e) {
      throw new Error(`${(e as Error).message} (the lab is partly up: ha-setup lab down removes it)`);
    }
    const readySeconds = toStart.length ? (Date.now() - t0) / 1000 : 0;
    if (toStart.length) log(`lab: ${toStart.length} host(s) answering on SSH after ${readySeconds.toFixed(1)} s`);
    return {
      dir: layout.dir,
      tableFile: layout.tableFile,
      keyFile: layout.keyFile,
      knownHostsFile: layout.knownHostsFile,
      topology: next.topology,
      scheme: next.scheme,
      hosts,
      image,
      started: toStart.map((h) => h.alias),
      readySeconds,
    };
  });
}

function imageOfState(state: LabState, layout: LabLayout): ImageInfo {
  const cached = cachedImage(layout.cacheDir);
  if (cached && cached.rootfs === state.image.rootfs) return cached;
  if (!existsSync(state.image.rootfs)) {
    throw new Error(`the lab's image ${state.image.rootfs} is gone; run ha-setup lab down, then lab up`);
  }
  try {
    return JSON.parse(readFileSync(join(state.image.rootfs, '..', 'build.json'), 'utf8')) as ImageInfo;
  } catch {
    throw new Error(`the lab's image ${state.image.rootfs} has no build.json; run ha-setup lab down, then lab up`);
  }
}

async function ensureKey(layout: LabLayout): Promise<string> {
  if (!existsSync(layout.keyFile)) {
    await must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'ha-setup-lab', '-f', layout.keyFile]);
  }
  chmodSync(layout.keyFile, 0o600);
  return readFileSync(`${layout.keyFile}.pub`, 'utf8');
}

/** known_hosts (every host's keys) and lab.yaml (the server table). */
function writeFiles(layout: LabLayout, state: LabState): void {
  const lines = state.hosts.flatMap((h) => knownHostsLines(layout, h));
  writeFileSync(layout.knownHostsFile, `${lines.join('\n')}\n`, { mode: 0o644 });
  const shape: LabShape = { topology: state.topology, scheme: state.scheme, hosts: state.hosts };
  const paths = { keyFile: layout.keyFile, knownHostsFile: layout.knownHostsFile };
  writeFileSync(layout.tableFile, labTableYaml(shape, paths), { mode: 0o644 });
}

// ---------------------------------------------------------------------------------------------

export interface LabDownReport {
  dir: string;
  hosts: StopReport[];
  seconds: number;
  /** Anything of this lab still present afterwards (empty when the machine is clean). */
  left: string[];
}

export async function labDown(opts: LabEnvOptions = {}): Promise<LabDownReport> {
  const layout = labLayout(opts.env ?? process.env);
  if (!existsSync(layout.dir)) return { dir: layout.dir, hosts: [], seconds: 0, left: [] };
  return withLock(layout, () => downLocked(layout, opts.log ?? (() => {})));
}

async function downLocked(layout: LabLayout, log: (l: string) => void): Promise<LabDownReport> {
  const t0 = Date.now();
  const state = readState(layout);
  const names = new Set<string>([...(state?.hosts.map((h) => h.name) ?? []), ...hostDirNames(layout)]);
  // Leftover cgroups of this lab's hosts (or empty ones of any lab): removed too.
  for (const n of labCgroupHosts()) {
    const pids = cgroupPids(n);
    if (pids.length === 0 || pids.some((p) => cmdline(p).some((a) => a.startsWith(layout.hostsDir)))) names.add(n);
  }
  const list = [...names];
  if (list.length) log(`lab: stopping ${list.join(', ')}`);
  const reports = await stopHosts(layout, list);
  const ours = !bridgeExists() || bridgeOwner() === layout.dir;
  if (ours) {
    await stopRepoServer(state?.repoServerPid);
    for (const pid of repoServerPids()) await stopRepoServer(pid);
    await removeBridge();
  }
  for (const n of hostDirNames(layout)) removeHostDir(layout, n);
  rmSync(layout.hostsDir, { recursive: true, force: true });
  for (const f of [layout.stateFile, layout.knownHostsFile, layout.tableFile, join(layout.dir, 'repo-server.log')]) {
    rmSync(f, { force: true });
  }
  const left = leftovers(layout, list);
  const seconds = (Date.now() - t0) / 1000;
  log(`lab: down in ${seconds.toFixed(1)} s${left.length ? `; still present: ${left.join(', ')}` : ''}`);
  return { dir: layout.dir, hosts: reports, seconds, left };
}

function repoServerPids(): number[] {
  return allPids().filter((p) => isRepoServer(p));
}

/** What of this lab is still on the machine: processes, cgroups, interfaces, mounts, dirs. */
export function leftovers(layout: LabLayout, names: string[]): string[] {
  const left: string[] = [];
  for (const pid of allPids()) {
    if (pid === process.pid) continue;
    const argv = cmdline(pid);
    if (alive(pid) && argv.some((a) => a.includes(layout.hostsDir))) left.push(`process ${pid} (${argv.slice(0, 2).join(' ')})`);
  }
  for (const n of names) {
    for (const d of hostCgroupDirs(n)) if (existsSync(d)) left.push(`cgroup ${d}`);
  }
  for (const i of labInterfaces()) {
    if (i === BRIDGE ? bridgeOwner() === layout.dir : names.some((n) => i === `vb-${n}`)) left.push(`interface ${i}`);
  }
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
  if (mounts.includes(layout.hostsDir)) left.push(`mounts under ${layout.hostsDir}`);
  if (existsSync(layout.hostsDir)) left.push(`directory ${layout.hostsDir}`);
  return left;
}

// ---------------------------------------------------------------------------------------------

export function labStatus(opts: LabEnvOptions = {}): LabStatus {
  const layout = labLayout(opts.env ?? process.env);
  const state = readState(layout);
  const hosts: LabHostStatus[] = (state?.hosts ?? []).map((h) => hostStatus(layout, h));
  const cached = cachedImage(layout.cacheDir);
  const img = !state || cached?.rootfs === state.image.rootfs ? cached : safeBuildJson(state.image.rootfs);
  const repoPid = state?.repoServerPid;
  return {
    dir: layout.dir,
    up: hosts.some((h) => h.state !== 'stopped'),
    tableFile: state ? layout.tableFile : undefined,
    keyFile: layout.keyFile,
    knownHostsFile: state ? layout.knownHostsFile : undefined,
    bridge: { name: BRIDGE, address: MACHINE_ADDRESS, present: bridgeExists() && bridgeOwner() === layout.dir },
    repo: { url: REPO_URL, running: isRepoServer(repoPid), pid: isRepoServer(repoPid) ? repoPid : undefined },
    image: img && {
      hash: img.hash,
      builtAt: img.builtAt,
      ageSeconds: Math.round((Date.now() - Date.parse(img.builtAt)) / 1000),
      sizeBytes: img.sizeBytes,
      buildSeconds: img.buildSeconds,
      rootfs: img.rootfs,
    },
    hosts,
  };
}

function safeBuildJson(rootfs: string): ImageInfo | undefined {
  try {
    return JSON.parse(readFileSync(join(rootfs, '..', 'build.json'), 'utf8')) as ImageInfo;
  } catch {
    return undefined;
  }
}

function hostStatus(layout: LabLayout, h: HostState): LabHostStatus {
  const p = hostProcesses(layout, h.name);
  const faults: string[] = [];
  if (!p.nspawn) faults.push('stopped');
  else {
    if (isFrozen(h.name)) faults.push('frozen');
    if (linkState(h.name) === 'down' || existsSync(join(hostDir(layout, h.name), 'link-cut'))) faults.push('link-cut');
  }
  return {
    alias: h.alias,
    name: h.name,
    address: h.address,
    state: (faults[0] as HostStateName | undefined) ?? 'running',
    faults,
    stoppedUnits: h.stoppedUnits,
    pids: p,
  };
}

// ---------------------------------------------------------------------------------------------

/** Injects (or undoes) a fault on one host, by its alias, hostname or address. */
export async function fault(host: string, kind: FaultKind | string, arg?: string, opts: LabEnvOptions = {}): Promise<string> {
  if (!isFaultKind(kind)) throw new Error(`unknown fault "${kind}" (one of: ${FAULT_KINDS.join(', ')})`);
  const layout = labLayout(opts.env ?? process.env);
  return withLock(layout, async () => {
    const state = readState(layout);
    const h = findHost(state, host);
    const restart = async () => {
      const image = imageOfState(state!, layout);
      startHost(layout, h, image.rootfs);
      await waitSsh(layout, h, 120_000);
    };
    const message = await applyFault(layout, h, kind, arg, restart);
    writeState(layout, state!);
    return message;
  });
}

/** The lab's server table: what `ha-setup --config <file>` reads. */
export function labTable(opts: LabEnvOptions = {}): { file: string; inventory: Inventory } {
  const layout = labLayout(opts.env ?? process.env);
  const state = readState(layout);
  if (!state) throw new Error('no lab is up (run: ha-setup lab up)');
  const shape: LabShape = { topology: state.topology, scheme: state.scheme, hosts: state.hosts };
  return { file: layout.tableFile, inventory: labInventory(shape, { keyFile: layout.keyFile, knownHostsFile: layout.knownHostsFile }) };
}

/** Waits until a host answers on SSH again (after a reboot or restore). */
export async function waitHostReady(host: string, timeoutMs = 60_000, opts: LabEnvOptions = {}): Promise<void> {
  const layout = labLayout(opts.env ?? process.env);
  await waitSsh(layout, findHost(readState(layout), host), timeoutMs);
}

// ---------------------------------------------------------------------------------------------

/** One lab operation at a time per lab directory (up, down, fault). */
async function withLock<T>(layout: LabLayout, fn: () => Promise<T>): Promise<T> {
  const end = Date.now() + 10 * 60_000;
  for (;;) {
    try {
      mkdirSync(layout.lockDir);
      writeFileSync(join(layout.lockDir, 'pid'), String(process.pid));
      break;
    } catch {
      const holder = readPid(join(layout.lockDir, 'pid'));
      if (holder === undefined || !alive(holder) || holder === process.pid) {
        // A crashed holder, or a lock dir caught between mkdir and the pid write (retry once).
        if (holder === undefined) await sleep(200);
        if (holder === undefined && existsSync(join(layout.lockDir, 'pid'))) continue;
        rmSync(layout.lockDir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > end) throw new Error(`the lab at ${layout.dir} is busy (process ${holder}); try again later`);
      await sleep(200);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(layout.lockDir, { recursive: true, force: true });
  }
}
