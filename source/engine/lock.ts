/**
 * One run at a time per cluster: <clusterDir>/lock, created with O_EXCL, holding who runs
 * (pid, hostname, start time, command). A lock left by a process of this machine that no
 * longer exists is taken over (with a note saying so). Released by release(), on process exit,
 * and on SIGINT/SIGTERM.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';

export interface LockInfo {
  pid: number;
  hostname: string;
  /** ISO time. */
  startedAt: string;
  command: string;
}

export class LockError extends Error {
  constructor(
    message: string,
    readonly holder?: LockInfo,
  ) {
    super(message);
    this.name = 'LockError';
  }
}

export interface Lock {
  path: string;
  info: LockInfo;
  /** Remove the lock if it is still ours. Safe to call twice. */
  release(): void;
}

/** True unless the pid certainly does not exist (EPERM: it exists, owned by someone else). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

function readLock(path: string): LockInfo | null {
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockInfo>;
    if (typeof v.pid === 'number' && typeof v.hostname === 'string') {
      return { pid: v.pid, hostname: v.hostname, startedAt: String(v.startedAt ?? '?'), command: String(v.command ?? '?') };
    }
  } catch {
    // unreadable or half-written: reported below
  }
  return null;
}

function tryCreate(path: string, info: LockInfo): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
  try {
    writeSync(fd, `${JSON.stringify(info)}\n`);
  } finally {
    closeSync(fd);
  }
  return true;
}

export function acquireLock(
  dir: string,
  opts: { cluster: string; command: string; note?: (line: string) => void; hostname?: string },
): Lock {
  const path = join(dir, 'lock');
  const info: LockInfo = {
    pid: process.pid,
    hostname: opts.hostname ?? osHostname(),
    startedAt: new Date().toISOString(),
    command: opts.command,
  };
  if (!tryCreate(path, info)) {
    const holder = readLock(path);
    if (!holder) {
      throw new LockError(
        `cluster ${opts.cluster} is locked by ${path}, which cannot be read; if no ha-setup run is active, remove ${path}`,
      );
    }
    const stale = holder.hostname === info.hostname && holder.pid !== process.pid && !pidAlive(holder.pid);
    if (!stale) {
      throw new LockError(
        `cluster ${opts.cluster} is being changed by pid ${holder.pid} on ${holder.hostname} since ${holder.startedAt} ` +
          `(started: ${holder.command}); wait for it, or if that process is gone remove ${path}`,
        holder,
      );
    }
    rmSync(path, { force: true });
    if (!tryCreate(path, info)) {
      const other = readLock(path);
      throw new LockError(
        `cluster ${opts.cluster} was taken by pid ${other?.pid ?? '?'} while a stale lock was being removed; wait for it, or if that process is gone remove ${path}`,
        other ?? undefined,
      );
    }
    opts.note?.(
      `took over the lock of cluster ${opts.cluster}: pid ${holder.pid} on ${holder.hostname} (started ${holder.startedAt}: ${holder.command}) no longer exists`,
    );
  }

  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    process.off('exit', release);
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
    const current = readLock(path);
    if (current && current.pid === info.pid && current.startedAt === info.startedAt && current.hostname === info.hostname) {
      rmSync(path, { force: true });
    }
  };
  // On a signal nobody else handles: release, then die of it as usual. When another handler
  // exists (a UI that aborts the run cleanly), the run's own finally (or 'exit') releases.
  const onSignal = (signal: NodeJS.Signals): void => {
    if (process.listenerCount(signal) > 1) return;
    release();
    process.kill(process.pid, signal);
  };
  const onSigint = (): void => onSignal('SIGINT');
  const onSigterm = (): void => onSignal('SIGTERM');
  process.on('exit', release);
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  return { path, info, release };
}
