/**
 * Where the last run of a cluster broke, from its checkpoints and transcripts (what the resume
 * offer shows): a step that failed, or, when the tool itself died (crash, kill -9) in the middle
 * of an apply, the first step not done on all its hosts. No Ink here: apply, the wizard and
 * ResumeScreen share it.
 */
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { readCheckpoints, resumePoint, type Checkpoints } from '../engine/checkpoint.js';
import { contextOptions, tableOf } from '../engine/context.js';
import { pidAlive } from '../engine/lock.js';
import { selectSteps } from '../engine/runner.js';
import type { Runbook } from '../engine/step.js';
import type { Inventory } from '../inventory/types.js';
import { clusterDir } from '../paths.js';
import { tailLines } from './log-tail.js';

export type ResumeChoice = 'resume' | 'start-over' | 'cancel';

export interface LastFailure {
  stepId: string;
  title: string;
  hosts: string[];
  /** ISO time it failed (the checkpoint's), or when the interrupted run last wrote its transcript. */
  at: string;
  /** failed: the step failed; interrupted: the tool stopped (killed, crashed) during the run. */
  how?: 'failed' | 'interrupted';
}

/** The first lines of a file (the transcript header). */
function head(path: string, bytes = 2048): string {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    return buf.subarray(0, readSync(fd, buf, 0, bytes, 0)).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** A run holds the lock now (a live process on this machine, or any process elsewhere). */
function runInProgress(dir: string): boolean {
  try {
    const info = JSON.parse(readFileSync(join(dir, 'lock'), 'utf8')) as { pid?: number; hostname?: string };
    if (typeof info.pid !== 'number') return false;
    return info.hostname !== hostname() || pidAlive(info.pid);
  } catch {
    return false;
  }
}

/** The newest apply run that never finished its transcript and is not running, newer than lastRun. */
export function interruptedRun(dir: string, cp: Checkpoints): { runId: string; at: string } | null {
  const runs = join(dir, 'runs');
  if (!existsSync(runs) || runInProgress(dir)) return null;
  const logs = readdirSync(runs)
    .filter((f) => f.endsWith('.log'))
    .sort()
    .reverse();
  for (const file of logs) {
    const path = join(runs, file);
    if (!/^mode: apply$/m.test(head(path))) continue; // plans change nothing
    if (tailLines(path, 3).some((l) => l.startsWith('finished: '))) return null;
    const runId = file.replace(/\.log$/, '');
    if (cp.lastRun && cp.lastRun.runId >= runId) return null;
    return { runId, at: statSync(path).mtime.toISOString() };
  }
  return null;
}

/** Where the last run of this cluster broke (the first failed or unfinished step in runbook order), or null. */
export function lastFailure(inventory: Inventory, runbooks: Runbook[], env: NodeJS.ProcessEnv): LastFailure | null {
  const cp = readCheckpoints(inventory.cluster, env);
  const point = resumePoint(cp, runbooks);
  if (point) {
    const step = runbooks.flatMap((r) => r.steps).find((s) => s.id === point.stepId);
    const at = point.hosts.map((h) => cp.steps[point.stepId]?.[h]?.finishedAt ?? '').sort()[0] ?? '';
    return { stepId: point.stepId, title: step?.title ?? point.stepId, hosts: point.hosts, at, how: 'failed' };
  }
  const dir = clusterDir(inventory.cluster, env);
  const killed = interruptedRun(dir, cp);
  if (!killed) return null;
  let selected;
  try {
    selected = selectSteps(runbooks, tableOf(inventory), contextOptions(inventory), inventory.cluster, { partial: inventory.partial === true });
  } catch {
    return null; // the table no longer fits the runbooks: apply reports that itself
  }
  for (const { step, hosts } of selected) {
    const open = hosts.filter((h) => {
      const status = cp.steps[step.id]?.[h.alias]?.status;
      return status !== 'done' && status !== 'skipped';
    });
    if (open.length > 0) return { stepId: step.id, title: step.title, hosts: open.map((h) => h.alias), at: killed.at, how: 'interrupted' };
  }
  return null;
}

/** "2026-11-22 00:41 UTC" from an ISO time ('' stays ''). */
export function failedWhen(iso: string): string {
  return iso.replace('T', ' ').replace(/:\d\d(\.\d+)?Z$/, ' UTC');
}

/** "failed on db_standby at 2026-11-22 00:41 UTC" / "interrupted on ...". */
export function failedWhere(f: LastFailure): string {
  return `${f.how === 'interrupted' ? 'interrupted' : 'failed'} on ${f.hosts.join(', ')}${f.at ? ` at ${failedWhen(f.at)}` : ''}`;
}

/** "Install PostgreSQL (pg.install), failed on db_standby at 2026-11-22 00:41 UTC". */
export function describeFailure(f: LastFailure): string {
  return `${f.title} (${f.stepId}), ${failedWhere(f)}`;
}
