/**
 * A host's cgroups: <cgroup2>/ha-lab-<host> (and the same name under the v1 name=systemd tree
 * on hybrid machines). The launcher moves itself there; nspawn adds supervisor/ and payload/.
 * Freezing writes payload/cgroup.freeze (the host's processes only, not its launcher).
 */
import { existsSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cgroupName } from './layout.js';
import { cgroup2Root, cgroupV1SystemdRoot } from './prereqs.js';
import { sleep } from './exec.js';

export function hostCgroupDirs(host: string): string[] {
  const dirs: string[] = [];
  const v2 = cgroup2Root();
  if (v2) dirs.push(join(v2, cgroupName(host)));
  const v1 = cgroupV1SystemdRoot();
  if (v1) dirs.push(join(v1, cgroupName(host)));
  return dirs;
}

function v2Dir(host: string): string | undefined {
  const v2 = cgroup2Root();
  return v2 ? join(v2, cgroupName(host)) : undefined;
}

/** Every pid in the host's cgroup2 subtree (launcher, nspawn, the host's processes). */
export function cgroupPids(host: string): number[] {
  const dir = v2Dir(host);
  if (!dir || !existsSync(dir)) return [];
  const out: number[] = [];
  const walk = (d: string) => {
    try {
      for (const l of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n')) if (l) out.push(Number(l));
      for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
    } catch {
      /* the tree changes while we read it */
    }
  };
  walk(dir);
  return out;
}

/** The host's own processes (payload), without the launcher and nspawn. */
export function payloadPids(host: string): number[] {
  const dir = v2Dir(host);
  if (!dir) return [];
  const all = cgroupPids(host);
  const outside = new Set<number>();
  for (const sub of ['', 'supervisor']) {
    try {
      for (const l of readFileSync(join(dir, sub, 'cgroup.procs'), 'utf8').split('\n')) if (l) outside.add(Number(l));
    } catch {
      /* absent */
    }
  }
  return all.filter((p) => !outside.has(p));
}

export function isFrozen(host: string): boolean {
  const dir = v2Dir(host);
  if (!dir) return false;
  try {
    return /^frozen 1$/m.test(readFileSync(join(dir, 'payload', 'cgroup.events'), 'utf8'));
  } catch {
    return false;
  }
}

/** Freezes (true) or thaws (false) the host's processes, and waits until the kernel says so. */
export async function setFrozen(host: string, frozen: boolean): Promise<void> {
  const dir = v2Dir(host);
  const file = dir && join(dir, 'payload', 'cgroup.freeze');
  if (!file || !existsSync(file)) throw new Error(`${host}: not running (no cgroup ${dir}/payload)`);
  writeFileSync(file, frozen ? '1' : '0');
  const end = Date.now() + 10_000;
  while (isFrozen(host) !== frozen) {
    if (Date.now() > end) throw new Error(`${host}: cgroup did not ${frozen ? 'freeze' : 'thaw'} within 10 s`);
    await sleep(20);
  }
}

/** SIGKILL to everything left in the host's cgroup2 subtree (cgroup.kill), last resort. */
export function killCgroup(host: string): void {
  const dir = v2Dir(host);
  if (!dir) return;
  const file = join(dir, 'cgroup.kill');
  if (existsSync(file)) {
    try {
      writeFileSync(file, '1');
    } catch {
      /* already gone */
    }
  }
}

/** Removes the host's cgroup directories, deepest first. Returns those that could not go. */
export async function removeCgroups(host: string, timeoutMs = 5000): Promise<string[]> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const left: string[] = [];
    for (const dir of hostCgroupDirs(host)) {
      if (!existsSync(dir)) continue;
      for (const d of subdirsDeepestFirst(dir)) {
        try {
          rmdirSync(d);
        } catch {
          left.push(d);
        }
      }
    }
    if (left.length === 0 || Date.now() > end) return left;
    await sleep(100);
  }
}

function subdirsDeepestFirst(dir: string): string[] {
  const out: string[] = [];
  try {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) out.push(...subdirsDeepestFirst(join(dir, e.name)));
    }
  } catch {
    return out;
  }
  out.push(dir);
  return out;
}

/** Names of hosts that have lab cgroups on this machine (any lab dir). */
export function labCgroupHosts(): string[] {
  const names = new Set<string>();
  for (const root of [cgroup2Root(), cgroupV1SystemdRoot()]) {
    if (!root) continue;
    try {
      for (const e of readdirSync(root, { withFileTypes: true })) {
        if (e.isDirectory() && e.name.startsWith('ha-lab-')) names.add(e.name.slice('ha-lab-'.length));
      }
    } catch {
      /* unreadable */
    }
  }
  return [...names];
}

/** memory.current of the host's cgroup when the memory controller is on cgroup2, else undefined. */
export function cgroupMemoryCurrent(host: string): number | undefined {
  const dir = v2Dir(host);
  if (!dir) return undefined;
  try {
    return Number(readFileSync(join(dir, 'memory.current'), 'utf8'));
  } catch {
    return undefined;
  }
}
