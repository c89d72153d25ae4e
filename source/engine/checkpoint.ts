/**
 * What each step did on each host, in <clusterDir>/checkpoints.json (atomic writes, 0600).
 *
 * Checkpoints do not decide whether a step runs: every step is re-planned from fresh facts.
 * They tell the user what happened (a step "verified (checkpoint)"), where the last run broke
 * (resumePoint) and whether the table/options a step depends on changed since it ran
 * (inputHash): a changed hash re-opens that step and every later step on that host.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { clusterDir } from '../paths.js';
import type { Runbook } from './step.js';

export interface CheckpointRecord {
  /** skipped: it failed and the user chose to go on without it (the next run tries it again). */
  status: 'done' | 'failed' | 'skipped';
  inputHash: string;
  /** ISO time. */
  finishedAt: string;
  changed: boolean;
  runId: string;
}

export interface LastRun {
  runId: string;
  ok: boolean;
  finishedAt: string;
  /** Where it stopped, when it failed. */
  failed?: { stepId: string; hosts: string[] };
}

export interface Checkpoints {
  version: 1;
  /** step id -> host alias -> record */
  steps: Record<string, Record<string, CheckpointRecord>>;
  lastRun?: LastRun;
}

/** Create a directory (and parents) and make the last one 0700. */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

/**
 * Write a file atomically: a temp file in the same directory (created with `mode`), fsync,
 * rename over the target, fsync the directory. A crash leaves the old file or the new one,
 * never half of one; a failed write removes its temp file.
 */
export function writeFileAtomic(path: string, content: string, mode: number): void {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'wx', mode);
    writeSync(fd, content);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    chmodSync(tmp, mode); // the umask may have narrowed or the mode argument ignored
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  try {
    const dfd = openSync(dir, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // Some filesystems refuse fsync on a directory; the rename is still atomic.
  }
}

/** JSON with object keys sorted at every level (Secrets and Dates via their toJSON). */
export function stableJson(value: unknown): string {
  const norm = (v: unknown): unknown => {
    if (v && typeof v === 'object' && typeof (v as { toJSON?: unknown }).toJSON === 'function') {
      v = (v as { toJSON(): unknown }).toJSON();
    }
    if (Array.isArray(v)) return v.map(norm);
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) {
        const x = (v as Record<string, unknown>)[k];
        if (x !== undefined) out[k] = norm(x);
      }
      return out;
    }
    return v;
  };
  return JSON.stringify(norm(value ?? null));
}

/** sha256 of the step id, the step's declared inputs and the host's address. */
export function inputHash(stepId: string, inputs: unknown, address: string): string {
  return createHash('sha256').update(stableJson({ step: stepId, inputs: inputs ?? null, address })).digest('hex');
}

function parseCheckpoints(path: string, text: string): Checkpoints {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new Error(`checkpoints file ${path} is not valid JSON (${(e as Error).message}); move it aside to start with no checkpoints`);
  }
  const steps = (data as Partial<Checkpoints> | null)?.steps;
  if (!steps || typeof steps !== 'object') {
    throw new Error(`checkpoints file ${path} has no "steps" object; move it aside to start with no checkpoints`);
  }
  return { version: 1, steps, lastRun: (data as Partial<Checkpoints>).lastRun };
}

export class CheckpointStore {
  readonly path: string;
  data: Checkpoints;

  constructor(readonly dir: string) {
    this.path = join(dir, 'checkpoints.json');
    this.data = existsSync(this.path) ? parseCheckpoints(this.path, readFileSync(this.path, 'utf8')) : { version: 1, steps: {} };
  }

  get(stepId: string, host: string): CheckpointRecord | undefined {
    return this.data.steps[stepId]?.[host];
  }

  /** Set (or with undefined, remove) a record in memory; save() writes the file. */
  set(stepId: string, host: string, record: CheckpointRecord | undefined): void {
    const byHost = (this.data.steps[stepId] ??= {});
    if (record) byHost[host] = record;
    else {
      delete byHost[host];
      if (Object.keys(byHost).length === 0) delete this.data.steps[stepId];
    }
  }

  save(): void {
    ensurePrivateDir(this.dir);
    writeFileAtomic(this.path, `${JSON.stringify(this.data, null, 2)}\n`, 0o600);
  }
}

/** The checkpoints of a cluster (empty when it never ran). */
export function readCheckpoints(cluster: string, env: NodeJS.ProcessEnv = process.env): Checkpoints {
  return new CheckpointStore(clusterDir(cluster, env)).data;
}

export interface ResumePoint {
  runbookId: string;
  stepId: string;
  /** Hosts on which it failed. */
  hosts: string[];
  /** The run that failed there. */
  runId: string;
}

/** The first step, in runbook order, that failed on some host in the last run that reached it. */
export function resumePoint(checkpoints: Checkpoints, runbooks: Runbook[]): ResumePoint | null {
  for (const rb of runbooks) {
    for (const step of rb.steps) {
      const failed = Object.entries(checkpoints.steps[step.id] ?? {}).filter(([, r]) => r.status === 'failed');
      if (failed.length > 0) {
        return { runbookId: rb.id, stepId: step.id, hosts: failed.map(([h]) => h).sort(), runId: failed[0]![1].runId };
      }
    }
  }
  return null;
}
