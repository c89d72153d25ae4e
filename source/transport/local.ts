/**
 * The jump host itself as a Transport, with the same semantics as SshTransport: the script on
 * the stdin of `bash -s` (set -euo pipefail, cd /, LC_ALL=C), `sudo -n` when not root,
 * `runuser` for another user when root, lines as they arrive, a timeout that ends the whole
 * process group, and an atomic writeFile with a backup of the replaced file.
 *
 * zx runs the local process (the command words are fixed; the script goes on stdin).
 */
import { mkdtemp, rm, writeFile as fsWriteFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { $ } from 'zx';
import { haHome } from '../paths.js';
import {
  bashCommand,
  DEFAULT_COMMAND_TIMEOUT_MS,
  OutputCollector,
  parseWriteResult,
  readFileScript,
  SCRIPT_PRELUDE,
  signalExitCode,
  sudoError,
  sudoFailure,
  writeFileScript,
} from './ssh.js';
import { TransportError, type ExecOptions, type ExecResult, type Transport, type WriteFileOptions, type WriteFileResult } from './types.js';

export interface LocalTransportOptions {
  /** Name in events and errors (default "local"). */
  name?: string;
  /** Where replaced files are kept (default <ha-setup home>/backups). */
  backupDir?: string;
  commandTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

function currentUser(): string {
  if (process.getuid?.() === 0) return 'root';
  try {
    return userInfo().username;
  } catch {
    return String(process.getuid?.() ?? 'unknown');
  }
}

export class LocalTransport implements Transport {
  readonly name: string;
  readonly user: string;
  readonly backupDir: string;
  readonly #timeoutMs: number;
  readonly #env: NodeJS.ProcessEnv;

  constructor(options: LocalTransportOptions = {}) {
    this.name = options.name ?? 'local';
    this.user = currentUser();
    this.#env = options.env ?? process.env;
    this.backupDir = options.backupDir ?? join(haHome(this.#env), 'backups');
    this.#timeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  }

  async connect(): Promise<void> {}

  async exec(script: string, options: ExecOptions = {}): Promise<ExecResult> {
    return this.#exec(script, options, undefined);
  }

  async #exec(script: string, options: ExecOptions, cap: number | undefined): Promise<ExecResult> {
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const cmd = bashCommand(this.user, options, timeoutMs);
    if (options.signal?.aborted) return { code: 130, stdout: '', stderr: '', durationMs: 0, killed: 'aborted' };
    const start = performance.now();
    const out = new OutputCollector('stdout', options.onLine, cap);
    const err = new OutputCollector('stderr', options.onLine, cap);
    // No prefix: bash -c then execs `timeout` itself, so a signal to the child reaches its group.
    const p = $({ input: SCRIPT_PRELUDE + script, nothrow: true, quiet: true, verbose: false, prefix: '', postfix: '', env: this.#env, cwd: '/' })`${cmd.words}`;
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d: Buffer) => err.push(d));
    let killed: ExecResult['killed'];
    const kill = (why: 'timeout' | 'aborted') => {
      if (killed) return;
      killed = why;
      p.child?.kill('SIGTERM');
    };
    const timer = setTimeout(() => kill('timeout'), timeoutMs);
    const onAbort = () => kill('aborted');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const o = await p;
      out.end();
      err.end();
      const result: ExecResult = {
        code: o.exitCode ?? signalExitCode(o.signal),
        stdout: out.text,
        stderr: err.text,
        durationMs: Math.round(performance.now() - start),
      };
      if (killed) result.killed = killed;
      if (cmd.via === 'sudo') {
        const why = sudoFailure(result.code, result.stderr);
        if (why) throw sudoError(this.name, this.user, why, cmd.runAs);
      }
      return result;
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  async readFile(path: string): Promise<string | null> {
    const r = await this.#exec(readFileScript(path), { sudo: true }, Infinity);
    if (r.code === 44) return null;
    if (r.code !== 0) throw new TransportError(this.name, 'command', `reading ${path} failed: ${r.stderr.trim().split('\n').pop() || `exit code ${r.code}`}`);
    return r.stdout;
  }

  async writeFile(path: string, content: string, options: WriteFileOptions): Promise<WriteFileResult> {
    const tmpDir = await mkdtemp(join(tmpdir(), 'ha-setup.')); // 0700
    try {
      const source = join(tmpDir, 'content');
      await fsWriteFile(source, content, { mode: 0o600 });
      const script = writeFileScript({
        tmpDir,
        source,
        path,
        mode: options.mode,
        owner: options.owner,
        group: options.group,
        backup: options.backup ?? true,
        backupDir: this.backupDir,
      });
      return parseWriteResult(this.name, path, await this.exec(script, { sudo: true }));
    } finally {
      await rm(tmpDir, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  async close(): Promise<void> {}
}
