/**
 * An in-memory Transport for tests: records every script, serves files from a Map (both
 * readFile/writeFile and the scripts of fileFact() from runbooks/facts.ts), answers scripts
 * by regex, and optionally runs everything else through the real local `bash -s` (read-only
 * scripts only: a LocalTransport-like mode for the facts runbook).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Inventory } from '../../source/inventory/types.js';
import type { ExecOptions, ExecResult, Transport, WriteFileOptions, WriteFileResult } from '../../source/transport/types.js';
import type { HostRef } from '../../source/engine/step.js';

export interface FakeFile {
  content: string;
  mode: number;
  owner?: string;
  group?: string;
}

export interface FakeReply {
  code?: number;
  stdout?: string;
  stderr?: string;
  delayMs?: number;
}
export type FakeResponder = FakeReply | ((script: string, match: RegExpExecArray, t: FakeTransport) => FakeReply | Promise<FakeReply>);

/** Shared across the transports of a pool: how many execs ran at the same time. */
export interface FakeStats {
  active: number;
  maxActive: number;
  /** Every exec, in start order: host and script. */
  log: { host: string; script: string }[];
}

export interface FakeOptions {
  user?: string;
  /** Delay of every exec (ms), to make overlap observable. */
  delayMs?: number;
  stats?: FakeStats;
  /** Run scripts that no responder answers with the real local bash. */
  localBash?: boolean;
  /** connect() rejects with this. */
  connectError?: Error;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The path of a fileFact() script: `if [ -e PATH ]; then echo HA_FILE_PRESENT; ...`. */
const FILE_FACT = /^if \[ -e ('(?:[^']|'\\'')*'|\S+) \]; then echo HA_FILE_PRESENT; cat -- \S+; else echo HA_FILE_ABSENT; fi$/;
const unquote = (w: string): string => (w.startsWith("'") ? w.slice(1, -1).replace(/'\\''/g, "'") : w);

function runLocalBash(script: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-s'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(`set -euo pipefail\n${script}\n`);
  });
}

export class FakeTransport implements Transport {
  readonly user: string;
  readonly files = new Map<string, FakeFile>();
  /** Every exec: script and privilege options. */
  readonly execs: { script: string; sudo?: boolean; user?: string }[] = [];
  readonly writes: { path: string; content: string; mode: number; owner?: string; group?: string }[] = [];
  connects = 0;
  closed = false;
  readonly #responders: { pattern: RegExp; reply: FakeResponder }[] = [];

  constructor(
    readonly name: string,
    readonly opts: FakeOptions = {},
  ) {
    this.user = opts.user ?? 'root';
  }

  /** Answer scripts matching `pattern` (first registered match wins). */
  on(pattern: RegExp, reply: FakeResponder): this {
    this.#responders.push({ pattern, reply });
    return this;
  }

  async connect(): Promise<void> {
    this.connects++;
    if (this.opts.connectError) throw this.opts.connectError;
  }

  async exec(script: string, options: ExecOptions = {}): Promise<ExecResult> {
    const started = Date.now();
    this.execs.push({ script, sudo: options.sudo, user: options.user });
    const stats = this.opts.stats;
    if (stats) {
      stats.log.push({ host: this.name, script });
      stats.active++;
      stats.maxActive = Math.max(stats.maxActive, stats.active);
    }
    try {
      if (this.opts.delayMs) await sleep(this.opts.delayMs);
      const reply = await this.#reply(script);
      if (reply.delayMs) await sleep(reply.delayMs);
      const stdout = reply.stdout ?? '';
      const stderr = reply.stderr ?? '';
      const lines = (text: string) => (text ? text.replace(/\n$/, '').split('\n') : []);
      for (const l of lines(stdout)) options.onLine?.('stdout', l);
      for (const l of lines(stderr)) options.onLine?.('stderr', l);
      return { code: reply.code ?? 0, stdout, stderr, durationMs: Date.now() - started };
    } finally {
      if (stats) stats.active--;
    }
  }

  async #reply(script: string): Promise<FakeReply> {
    const file = FILE_FACT.exec(script);
    if (file) {
      const f = this.files.get(unquote(file[1]!));
      return { stdout: f ? `HA_FILE_PRESENT\n${f.content}` : 'HA_FILE_ABSENT\n' };
    }
    for (const { pattern, reply } of this.#responders) {
      const m = pattern.exec(script);
      if (m) return typeof reply === 'function' ? reply(script, m, this) : reply;
    }
    if (this.opts.localBash) return runLocalBash(script);
    return { code: 0 };
  }

  async readFile(path: string): Promise<string | null> {
    return this.files.get(path)?.content ?? null;
  }

  async writeFile(path: string, content: string, options: WriteFileOptions): Promise<WriteFileResult> {
    this.writes.push({ path, content, mode: options.mode, owner: options.owner, group: options.group });
    const old = this.files.get(path);
    const same =
      old && old.content === content && old.mode === options.mode && (options.owner ?? old.owner) === old.owner && (options.group ?? old.group) === old.group;
    if (same) return { changed: false };
    let backupPath: string | undefined;
    if (old && options.backup !== false) {
      backupPath = `${path}.ha-setup.bak`;
      this.files.set(backupPath, { ...old });
    }
    this.files.set(path, { content, mode: options.mode, owner: options.owner ?? old?.owner, group: options.group ?? old?.group });
    return { changed: true, backupPath };
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

/** One FakeTransport per alias, created on first use, sharing stats. */
export class FakePool {
  readonly stats: FakeStats = { active: 0, maxActive: 0, log: [] };
  readonly hosts = new Map<string, FakeTransport>();

  constructor(
    readonly opts: FakeOptions = {},
    readonly setup?: (t: FakeTransport) => void,
  ) {}

  get(alias: string): FakeTransport {
    let t = this.hosts.get(alias);
    if (!t) {
      t = new FakeTransport(alias, { ...this.opts, stats: this.stats });
      this.setup?.(t);
      this.hosts.set(alias, t);
    }
    return t;
  }

  /** What RunOptions.transport expects. */
  readonly transport = (h: HostRef): FakeTransport => this.get(h.alias);
}

const homes: string[] = [];
process.once('exit', () => homes.forEach((h) => rmSync(h, { recursive: true, force: true })));

/** A fresh HA_SETUP_HOME for one test (an env object to pass as RunOptions.env); removed at exit. */
export function tempHome(): { home: string; env: NodeJS.ProcessEnv } {
  const home = mkdtempSync(join(tmpdir(), 'ha-setup-test-'));
  homes.push(home);
  return { home, env: { ...process.env, HA_SETUP_HOME: home } };
}

/** A small inventory on lab addresses. */
export function fakeInventory(servers: Record<string, string>, options: Record<string, unknown> = {}, cluster = 'test'): Inventory {
  return { cluster, topology: 'lb', servers, ssh: {}, options };
}
