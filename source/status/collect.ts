/**
 * Collects the live health of a cluster: one short read-only script per host (./scripts.ts),
 * all hosts in parallel, each under a deadline so that a dead or frozen host delays the answer
 * by at most that deadline and never hides the others; then ./evaluate.ts. Also reads the local
 * state (run lock, last run, where it stopped). No Ink here.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readCheckpoints, resumePoint } from '../engine/checkpoint.js';
import { pidAlive, type LockInfo } from '../engine/lock.js';
import type { HostRef } from '../engine/step.js';
import { hostsAndAddresses } from '../inventory/roles.js';
import type { Inventory } from '../inventory/types.js';
import { clusterDir } from '../paths.js';
import type { Transport } from '../transport/types.js';
import { RUNBOOKS } from '../../runbooks/index.js';
import { evaluate, type HostProbe, type LocalState } from './evaluate.js';
import { splitSections } from './parse.js';
import { hostScript, statusPlan } from './scripts.js';
import type { ClusterHealth } from './types.js';

export interface CollectOptions {
  /** The transport of a host (a pool: connections are kept between refreshes). */
  transport: (host: HostRef) => Transport;
  /** The script's own time limit on the host (ms, default 8000). */
  scriptTimeoutMs?: number;
  /** The most one host may take, connecting included (ms, default 12000). */
  hostDeadlineMs?: number;
  env?: NodeJS.ProcessEnv;
  now?: () => Date;
}

/** The run lock, the last run and where it stopped, from the cluster's state directory. */
export function localState(cluster: string, env: NodeJS.ProcessEnv = process.env): LocalState {
  const lockPath = join(clusterDir(cluster, env), 'lock');
  let lock: LocalState['lock'] = null;
  if (existsSync(lockPath)) {
    try {
      const info = JSON.parse(readFileSync(lockPath, 'utf8')) as LockInfo;
      lock = { ...info, alive: pidAlive(info.pid) };
    } catch {
      lock = null;
    }
  }
  const cps = readCheckpoints(cluster, env);
  return { lock, lastRun: cps.lastRun ?? null, resumeAt: resumePoint(cps, RUNBOOKS) };
}

const withoutAlias = (alias: string, msg: string): string => (msg.startsWith(`${alias}: `) ? msg.slice(alias.length + 2) : msg);

/** One host: connect, run its script (or `true` when status asks it nothing else), parse the sections. */
async function probeHost(host: HostRef, script: string | null, o: Required<Pick<CollectOptions, 'scriptTimeoutMs' | 'hostDeadlineMs'>> & CollectOptions): Promise<HostProbe> {
  const t0 = Date.now();
  const reach = { alias: host.alias, address: host.address };
  let connected = false;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<HostProbe>((resolve) => {
    timer = setTimeout(() => {
      // Drop the connection: the next refresh dials again instead of waiting on a dead one.
      void Promise.resolve(o.transport(host).close()).catch(() => undefined);
      resolve({
        reach: connected
          ? { ...reach, reachable: true, error: `no answer within ${o.hostDeadlineMs / 1000} s (connected, but the checks hung)` }
          : { ...reach, reachable: false, error: `no SSH answer within ${o.hostDeadlineMs / 1000} s` },
        sections: null,
      });
    }, o.hostDeadlineMs);
  });
  const work = (async (): Promise<HostProbe> => {
    const t = o.transport(host);
    try {
      await t.connect();
      connected = true;
    } catch (e) {
      return { reach: { ...reach, reachable: false, error: withoutAlias(host.alias, (e as Error).message) }, sections: null };
    }
    try {
      const r = await t.exec(script ?? 'true', { sudo: script !== null, timeoutMs: o.scriptTimeoutMs });
      const latencyMs = Date.now() - t0;
      if (script === null) return { reach: { ...reach, reachable: true, latencyMs }, sections: {} };
      const sections = splitSections(r.stdout);
      return { reach: { ...reach, reachable: true, latencyMs }, sections };
    } catch (e) {
      // sudo refused, or the connection dropped under the command.
      return { reach: { ...reach, reachable: true, error: withoutAlias(host.alias, (e as Error).message) }, sections: null };
    }
  })();
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

export async function collectHealth(inv: Inventory, opts: CollectOptions): Promise<ClusterHealth> {
  const o = { scriptTimeoutMs: 8000, hostDeadlineMs: 12_000, ...opts };
  const now = o.now ?? (() => new Date());
  const started = now();
  const t0 = Date.now();
  const plan = statusPlan(inv);
  const { hosts } = hostsAndAddresses(inv);
  const entries = await Promise.all(
    Object.values(hosts).map(async (h) => {
      const sections = plan.hosts[h.alias] ?? [];
      const script = sections.length ? hostScript(inv, sections, h.alias) : null;
      return [h.alias, await probeHost(h, script, o)] as const;
    }),
  );
  const probes = Object.fromEntries(entries);
  return evaluate(inv, plan, probes, localState(inv.cluster, o.env), started, Date.now() - t0);
}
