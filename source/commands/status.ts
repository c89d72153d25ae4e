/**
 * ha-setup status: the cluster's table, whether a run holds the lock, the last run and where it
 * stopped, and whether every host answers over SSH (in parallel). --json for scripts.
 * Live service health (VIP holder, replication lag, HAProxy backends) joins this view as the
 * runbooks that create those services land.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CliIO, CommandArgs } from '../cli.js';
import { readCheckpoints, resumePoint } from '../engine/checkpoint.js';
import { pidAlive, type LockInfo } from '../engine/lock.js';
import { hostsAndAddresses } from '../inventory/roles.js';
import { clusterDir } from '../paths.js';
import { createTransportPool } from '../transport/connect.js';
import { RUNBOOKS } from '../../runbooks/index.js';
import { loadTable, resumeCommand } from './session.js';

interface HostStatus {
  alias: string;
  address: string;
  reachable: boolean;
  latencyMs?: number;
  error?: string;
}

export async function run(args: CommandArgs, io: CliIO): Promise<number> {
  const inv = await loadTable(args, io);
  const dir = clusterDir(inv.cluster, io.env);
  const lockPath = join(dir, 'lock');
  let lock: (LockInfo & { alive: boolean }) | null = null;
  if (existsSync(lockPath)) {
    try {
      const info = JSON.parse(readFileSync(lockPath, 'utf8')) as LockInfo;
      lock = { ...info, alive: pidAlive(info.pid) };
    } catch {
      lock = null;
    }
  }
  const cps = readCheckpoints(inv.cluster, io.env);
  const resume = resumePoint(cps, RUNBOOKS);

  const { hosts } = hostsAndAddresses(inv);
  const pool = createTransportPool(inv.ssh, { env: io.env, connectTimeoutMs: 5000 });
  let hostStatus: HostStatus[];
  try {
    hostStatus = await Promise.all(
      Object.values(hosts).map(async (h): Promise<HostStatus> => {
        const t0 = Date.now();
        try {
          const t = pool.get(h);
          await t.connect();
          await t.exec('true', { timeoutMs: 5000 });
          return { alias: h.alias, address: h.address, reachable: true, latencyMs: Date.now() - t0 };
        } catch (e) {
          const msg = (e as Error).message;
          return { alias: h.alias, address: h.address, reachable: false, error: msg.startsWith(`${h.alias}: `) ? msg.slice(h.alias.length + 2) : msg };
        }
      }),
    );
  } finally {
    await pool.closeAll();
  }

  const data = {
    cluster: inv.cluster,
    topology: inv.topology,
    lock,
    lastRun: cps.lastRun ?? null,
    resumeAt: resume,
    hosts: hostStatus,
  };
  if (args.values.json) {
    io.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
  } else {
    const w = (s: string) => io.stdout.write(`${s}\n`);
    w(`Cluster ${inv.cluster} (topology ${inv.topology})`);
    if (lock) {
      w(
        lock.alive
          ? `Run in progress: pid ${lock.pid} on ${lock.hostname} since ${lock.startedAt} (${lock.command})`
          : `Stale lock: pid ${lock.pid} on ${lock.hostname} is gone; the next run takes the lock over`,
      );
    }
    if (cps.lastRun) {
      const lr = cps.lastRun;
      w(`Last run ${lr.runId}: ${lr.ok ? 'succeeded' : 'FAILED'} at ${lr.finishedAt}`);
      if (resume) w(`  stopped at step ${resume.stepId} on ${resume.hosts.join(', ')}; resume with: ${resumeCommand(args, 'apply')}`);
    } else {
      w('No run yet: ha-setup plan shows what apply would do.');
    }
    w('Hosts:');
    const width = Math.max(...hostStatus.map((h) => h.alias.length));
    for (const h of hostStatus) {
      w(`  ${h.reachable ? '✓' : '✗'} ${h.alias.padEnd(width)}  ${h.address.padEnd(15)}  ${h.reachable ? `ssh ok (${h.latencyMs} ms)` : h.error}`);
    }
  }
  return hostStatus.every((h) => h.reachable) ? 0 : 1;
}
