/**
 * Local commands for the lab (on this machine, as root). Arguments are argv arrays: no shell,
 * no quoting. Remote commands never go through here.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Each line of output, as it arrives (for long builds). */
  onLine?: (line: string) => void;
}

/** Runs a command; never throws for a non-zero exit (see must()). */
export function run(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: options.env ?? process.env,
      cwd: options.cwd,
    });
    let stdout = '';
    let stderr = '';
    let partial = '';
    const onData = (chunk: Buffer, which: 'out' | 'err') => {
      const s = chunk.toString();
      if (which === 'out') stdout += s;
      else stderr += s;
      if (options.onLine) {
        partial += s;
        const lines = partial.split('\n');
        partial = lines.pop() ?? '';
        for (const l of lines) if (l.trim()) options.onLine(l);
      }
    };
    child.stdout.on('data', (c: Buffer) => onData(c, 'out'));
    child.stderr.on('data', (c: Buffer) => onData(c, 'err'));
    const timer = options.timeoutMs
      ? setTimeout(() => child.kill('SIGKILL'), options.timeoutMs)
      : undefined;
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(new Error(`${cmd}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 + 9 : 1), stdout, stderr });
    });
  });
}

/** Runs a command and returns its stdout; a failure becomes a one-line error. */
export async function must(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<string> {
  const r = await run(cmd, args, options);
  if (r.code !== 0) {
    const detail = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-1)[0] ?? '';
    throw new Error(`${cmd} ${args.slice(0, 3).join(' ')} failed (exit ${r.code}): ${detail}`);
  }
  return r.stdout;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** True while the process exists and is not a zombie. */
export function alive(pid: number | undefined): boolean {
  if (!pid || pid <= 0) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** The argv of a process, or [] when it is gone. */
export function cmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

/** All process ids on the machine. */
export function allPids(): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number);
}

/** A pid read from a file, or undefined. */
export function readPid(file: string): number | undefined {
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** Looks a command up like a shell would, plus the sbin directories root normally has. */
export function which(cmd: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  for (const d of dirs) {
    if (d && existsSync(`${d}/${cmd}`)) return `${d}/${cmd}`;
  }
  return undefined;
}

/** Polls until fn() is truthy or the time is up; returns the last value. */
export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs: number, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v || Date.now() >= end) return v;
    await sleep(everyMs);
  }
}
