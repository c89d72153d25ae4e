/**
 * Benchmark of the lab: base image build, N hosts (default 8) until every one accepts a real
 * SSH login, memory per idle host, teardown.
 *
 *   node dist/test/bench/lab.js [--hosts 8] [--rebuild]
 *
 * Without --rebuild the build figure is the one recorded when the cached image was built (the
 * image is built first if there is none). --rebuild builds a fresh image from scratch into a
 * temporary cache (minutes; the shared cache is left alone) and uses it for the rest.
 *
 * Memory per host: memory.current of the host's cgroup when the memory controller is on the
 * cgroup2 tree. On hybrid machines like ours it is on cgroup v1, where the hosts are not
 * separated, so the figure is the PSS of the processes in the host's cgroup (shared pages split
 * between the hosts) plus what the host keeps in its tmpfs mounts (/run: the journal, ...);
 * the RSS sum (shared pages counted in full for every host) is printed as an upper bound.
 * Targets: build <= 180 s; 8 hosts ssh-ready <= 15 s; teardown <= 10 s; <= 80 MiB per host.
 */
import { mkdtempSync, readFileSync, rmSync, statfsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { labDown, labUp, labPrerequisites, defaultLabCache, type LabInfo } from '../../source/lab/index.js';
import { ensureImage, cachedImage } from '../../source/lab/image.js';
import { bridgeExists } from '../../source/lab/network.js';
import { cgroupMemoryCurrent, cgroupPids, payloadPids } from '../../source/lab/cgroups.js';
import { hostProcesses } from '../../source/lab/hosts.js';
import { labLayout } from '../../source/lab/layout.js';

const argValue = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : dflt;
  return Number.isInteger(v) && v > 0 ? v : dflt;
};
const MiB = 2 ** 20;
const fmt = (s: number) => `${s.toFixed(1)} s`;
const verdict = (ok: boolean) => (ok ? 'ok' : 'OVER TARGET');

function pss(pids: number[]): number {
  let total = 0;
  for (const pid of pids) {
    try {
      total += Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0) * 1024;
    } catch {
      /* exited */
    }
  }
  return total;
}

function rss(pids: number[]): number {
  let total = 0;
  for (const pid of pids) {
    try {
      total += Number(/^Rss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0) * 1024;
    } catch {
      /* exited */
    }
  }
  return total;
}

/** Bytes used in the host's tmpfs mounts, seen through its PID 1's root. */
function tmpfsUsed(init: number | undefined): number {
  if (!init) return 0;
  let total = 0;
  const seen = new Set<string>();
  for (const line of readFileSync(`/proc/${init}/mountinfo`, 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!pre || !post?.startsWith('tmpfs ')) continue;
    const [, , dev, , mountPoint] = pre.split(' ');
    if (!mountPoint || seen.has(dev!)) continue;
    seen.add(dev!);
    try {
      const st = statfsSync(`/proc/${init}/root${mountPoint}`);
      total += (Number(st.blocks) - Number(st.bfree)) * Number(st.bsize);
    } catch {
      /* not reachable */
    }
  }
  return total;
}

function ssh(info: LabInfo, address: string, command: string): Promise<number> {
  return new Promise((resolve) => {
    const c = spawn('ssh', ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${info.knownHostsFile}`,
      '-o', 'ConnectTimeout=2', '-i', info.keyFile, `root@${address}`, command], { stdio: 'ignore' });
    c.on('close', (code) => resolve(code ?? 255));
  });
}

async function main(): Promise<void> {
  const pre = labPrerequisites();
  if (!pre.ok) {
    console.log(`lab bench: cannot run: ${pre.message}`);
    process.exitCode = 1;
    return;
  }
  if (bridgeExists()) {
    console.log('lab bench: a lab is up on this machine; run ha-setup lab down first');
    process.exitCode = 1;
    return;
  }
  const n = argValue('--hosts', 8);
  const rebuild = process.argv.includes('--rebuild');
  const labDir = mkdtempSync('/tmp/ha-setup-lab-bench-');
  const cacheDir = rebuild ? mkdtempSync(`${defaultLabCache()}-bench-`) : defaultLabCache();
  const env = { ...process.env, HA_SETUP_LAB_DIR: labDir, HA_SETUP_LAB_CACHE: cacheDir };
  const stop = () => {
    void labDown({ env }).finally(() => process.exit(130));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    // 1. The base image.
    const hadCache = Boolean(cachedImage(cacheDir));
    const image = await ensureImage({ cacheDir, rebuild, log: (l) => console.log(`  ${l}`) });
    const how = rebuild ? 'built now from scratch' : hadCache ? `recorded at build, ${image.builtAt}` : 'built now (no cache)';
    const phases = Object.entries(image.phases).map(([k, v]) => `${k} ${v} s`).join(', ');
    console.log(`base image build: ${fmt(image.buildSeconds)} (${how}; ${phases}); ` +
      `${(image.sizeBytes / MiB).toFixed(0)} MiB + repository ${(image.repoBytes / MiB).toFixed(0)} MiB  [target <= 180 s: ${verdict(image.buildSeconds <= 180)}]`);

    // 2. N hosts until each accepts a real SSH login (strict host keys).
    const t0 = Date.now();
    const info = await labUp({ hosts: n, env });
    const banners = (Date.now() - t0) / 1000;
    await Promise.all(info.hosts.map(async (h) => {
      while ((await ssh(info, h.address, 'true')) !== 0) await new Promise((r) => setTimeout(r, 100));
    }));
    const ready = (Date.now() - t0) / 1000;
    console.log(`${n} hosts ssh-ready: ${fmt(ready)} from lab up to a real login on every host ` +
      `(sshd banners after ${fmt(banners)}; launchers to banners ${fmt(info.readySeconds)})  [target <= 15 s: ${verdict(ready <= 15)}]`);

    // 3. Memory per idle host: boot finished on all, then 10 s of quiet.
    await Promise.all(info.hosts.map((h) => ssh(info, h.address, 'systemctl is-system-running --wait >/dev/null')));
    await new Promise((r) => setTimeout(r, 10_000));
    const layout = labLayout(env);
    const perHost = info.hosts.map((h) => ({
      alias: h.alias,
      current: cgroupMemoryCurrent(h.name),
      payload: pss(payloadPids(h.name)),
      all: pss(cgroupPids(h.name)),
      tmpfs: tmpfsUsed(hostProcesses(layout, h.name).init),
      rss: rss(cgroupPids(h.name)),
    }));
    const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const m = (x: number) => `${(x / MiB).toFixed(1)} MiB`;
    const cur = perHost.every((p) => p.current !== undefined) ? avg(perHost.map((p) => p.current!)) : undefined;
    const figure = cur ?? avg(perHost.map((p) => p.all + p.tmpfs));
    console.log(
      `memory per idle host: ${m(figure)} ` +
        (cur !== undefined
          ? '(memory.current)'
          : `(memory.current n/a: memory controller on cgroup v1; PSS ${m(avg(perHost.map((p) => p.payload)))} host processes ` +
            `+ ${m(avg(perHost.map((p) => p.all - p.payload)))} launcher and nspawn + ${m(avg(perHost.map((p) => p.tmpfs)))} tmpfs; ` +
            `RSS upper bound ${m(avg(perHost.map((p) => p.rss + p.tmpfs)))})`) +
        `  [target <= 80 MiB: ${verdict(figure <= 80 * MiB)}]`,
    );
    console.log(`  per host (MiB): ${perHost.map((p) => `${p.alias} ${((p.current ?? p.all + p.tmpfs) / MiB).toFixed(1)}`).join(', ')}`);

    // 4. Teardown.
    const down = await labDown({ env });
    const killed = down.hosts.filter((h) => h.how === 'killed').length;
    console.log(`teardown of ${n} hosts: ${fmt(down.seconds)} (${n - killed} powered off in order, ${killed} killed; ` +
      `${down.left.length ? `LEFT: ${down.left.join('; ')}` : 'nothing left'})  [target <= 10 s: ${verdict(down.seconds <= 10)}]`);
  } finally {
    await labDown({ env }).catch(() => undefined);
    rmSync(labDir, { recursive: true, force: true });
    if (rebuild) rmSync(cacheDir, { recursive: true, force: true });
  }
}

await main();
