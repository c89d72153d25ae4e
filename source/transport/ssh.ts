/**
 * The remote transport: one ssh2 connection per host, reused for every command (several
 * channels may run at once), host keys checked against known_hosts, scripts on the stdin of
 * `bash -s` (never in argv), files uploaded over SFTP and moved into place atomically as root.
 *
 * The helpers exported at the top (command line, prelude, output collection, the write script,
 * sudo failure detection) are shared with the local transport (./local.ts).
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { homedir, constants as osConstants } from 'node:os';
import { performance } from 'node:perf_hooks';
import { StringDecoder } from 'node:string_decoder';
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import type { AnyAuthMethod, AuthenticationType, AuthHandlerMiddleware, ClientChannel, NextAuthHandler, SFTPWrapper } from 'ssh2';
import { quote, sh, type Secret } from '../engine/shell.js';
import {
  appendKnownHost,
  fingerprint,
  keyTypeOf,
  knownHostName,
  knownKeyTypes,
  lookupHostKey,
  readKnownHosts,
} from './known-hosts.js';
import {
  TransportError,
  type ExecOptions,
  type ExecResult,
  type Transport,
  type WriteFileOptions,
  type WriteFileResult,
} from './types.js';

const { Client, utils } = ssh2;
type Client = InstanceType<typeof ssh2.Client>;

// ---------------------------------------------------------------------------------------------
// Shared by both transports

/** What every script starts with. */
export const SCRIPT_PRELUDE = 'set -euo pipefail\ncd /\nexport LC_ALL=C\n';
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_COMMAND_TIMEOUT_MS = 10 * 60_000;
/** How much of each of stdout and stderr a result keeps (the first 3/4 and the last 1/4). */
export const OUTPUT_CAP = 1024 * 1024;
/** Where replaced files are kept on the servers. */
export const REMOTE_BACKUP_DIR = '/var/lib/ha-setup/backups';
/** Seconds a timed-out command gets between SIGTERM and SIGKILL. */
const KILL_GRACE_S = 5;

export interface BashCommand {
  /** argv words; no script text in them. */
  words: string[];
  /** The user the script runs as. */
  runAs: string;
  /** How the user is switched. */
  via: 'none' | 'sudo' | 'runuser';
}

/**
 * The command that runs a script read from stdin as the wanted user. It is wrapped in
 * coreutils `timeout` (its own process group, so the timeout, or a SIGTERM it is sent, ends
 * every process the script started). `tag` (a random word, never script text) is passed to
 * bash as $1 so that a second channel can find and end the command (see killScript).
 * A timeoutMs of 0 or Infinity means no timeout.
 */
export function bashCommand(
  loginUser: string,
  opts: Pick<ExecOptions, 'sudo' | 'user'>,
  timeoutMs: number,
  tag?: string,
): BashCommand {
  const runAs = opts.user ?? (opts.sudo ? 'root' : loginUser);
  const seconds = Number.isFinite(timeoutMs) && timeoutMs > 0 ? `${Math.max(1, Math.round(timeoutMs)) / 1000}s` : '0';
  const bash = ['timeout', '-k', `${KILL_GRACE_S}s`, seconds, 'bash', '-s', ...(tag ? [tag] : [])];
  if (runAs === loginUser) return { words: bash, runAs, via: 'none' };
  if (loginUser === 'root') return { words: ['runuser', '-u', runAs, '--', ...bash], runAs, via: 'runuser' };
  if (runAs === 'root') return { words: ['sudo', '-n', '--', ...bash], runAs, via: 'sudo' };
  return { words: ['sudo', '-n', '-u', runAs, '--', ...bash], runAs, via: 'sudo' };
}

/**
 * Ends the process group of the command started with this tag (found by its argv in /proc:
 * `bash -s <tag>`; its group is the one `timeout` leads). Needed because sshd refuses SSH
 * signal requests for root logins (no privilege separation after a root login).
 */
export function killScript(tag: string, signal: 'TERM' | 'KILL' = 'TERM'): string {
  return [
    sh`want=${`bash -s ${tag} `}`,
    'for f in /proc/[0-9]*/cmdline; do',
    '  c=$(tr "\\0" " " < "$f" 2>/dev/null) || continue',
    '  [ "$c" = "$want" ] || continue',
    '  pid=${f#/proc/}; pid=${pid%/cmdline}',
    '  st=$(cat "/proc/$pid/stat" 2>/dev/null) || continue',
    '  set -- ${st##*) }',
    `  kill -${signal} -- "-$3" 2>/dev/null || true`,
    'done',
  ].join('\n');
}

/**
 * Why a sudo'ed command failed before the script ran, from its first stderr lines:
 * 'password' (no NOPASSWD / not allowed) or 'missing' (sudo not installed), else null.
 */
export function sudoFailure(code: number, stderr: string): 'password' | 'missing' | null {
  if (code === 0) return null;
  const head = stderr.split('\n').slice(0, 4);
  if (
    head.some((l) =>
      /^sudo: (a password is required|a terminal is required|.*is not in the sudoers file|.*is not allowed to (execute|run))/.test(
        l,
      ),
    )
  )
    return 'password';
  if (code === 127 && head.some((l) => /\bsudo: (command )?not found/.test(l))) return 'missing';
  return null;
}

export function sudoError(host: string, user: string, kind: 'password' | 'missing', runAs: string): TransportError {
  return kind === 'missing'
    ? new TransportError(host, 'sudo', `sudo is not installed on ${host}, needed to run commands as ${runAs}`, `install sudo there and grant NOPASSWD sudo to ${user}, or log in as root`)
    : new TransportError(host, 'sudo', `sudo -n as ${user} on ${host} needs a password or is not allowed (to run as ${runAs})`, `grant NOPASSWD sudo to ${user} on ${host}, or log in as root`);
}

/**
 * Collects one output stream: complete lines go to onLine as they arrive, and the text is kept
 * up to a cap (head and tail; what was dropped in between is noted in the text).
 */
export class OutputCollector {
  #decoder = new StringDecoder('utf8');
  #partial = '';
  #head = '';
  #tail = '';
  #dropped = 0;
  readonly #headCap: number;
  readonly #tailCap: number;

  constructor(
    readonly stream: 'stdout' | 'stderr',
    readonly onLine?: ExecOptions['onLine'],
    cap = OUTPUT_CAP,
  ) {
    // cap = Infinity keeps everything (readFile).
    this.#headCap = Number.isFinite(cap) ? Math.floor((cap * 3) / 4) : Infinity;
    this.#tailCap = Number.isFinite(cap) ? cap - this.#headCap : 0;
  }

  push(chunk: Buffer | string): void {
    this.#text(typeof chunk === 'string' ? chunk : this.#decoder.write(chunk));
  }

  end(): void {
    this.#text(this.#decoder.end());
    if (this.#partial) {
      this.onLine?.(this.stream, this.#partial.replace(/\r$/, ''));
      this.#partial = '';
    }
  }

  #text(s: string): void {
    if (!s) return;
    this.#keep(s);
    if (!this.onLine) return;
    const parts = (this.#partial + s).split('\n');
    this.#partial = parts.pop() ?? '';
    for (const line of parts) this.onLine(this.stream, line.replace(/\r$/, ''));
  }

  #keep(s: string): void {
    if (this.#head.length < this.#headCap && this.#dropped === 0 && !this.#tail) {
      const room = this.#headCap - this.#head.length;
      this.#head += s.slice(0, room);
      s = s.slice(room);
      if (!s) return;
    }
    this.#tail += s;
    if (this.#tail.length > this.#tailCap * 2) {
      this.#dropped += this.#tail.length - this.#tailCap;
      this.#tail = this.#tail.slice(-this.#tailCap);
    }
  }

  get text(): string {
    let tail = this.#tail;
    let dropped = this.#dropped;
    if (tail.length > this.#tailCap) {
      dropped += tail.length - this.#tailCap;
      tail = tail.slice(-this.#tailCap);
    }
    if (!dropped) return this.#head + tail;
    return `${this.#head}\n[ha-setup: ${dropped} characters of ${this.stream} not kept]\n${tail}`;
  }
}

/** Exit code for a command ended by a signal (128 + number, as a shell reports it). */
export function signalExitCode(signal: string | undefined | null): number {
  if (!signal) return 255;
  const n = (osConstants.signals as Record<string, number>)[`SIG${signal.replace(/^SIG/, '')}`];
  return n ? 128 + n : 255;
}

export interface WriteScriptParams {
  /** Private temp dir holding the uploaded content (removed by the script in all cases). */
  tmpDir: string;
  /** The uploaded content, inside tmpDir. */
  source: string;
  path: string;
  mode: number;
  owner?: string;
  group?: string;
  backup: boolean;
  backupDir: string;
}

/**
 * The root script behind writeFile: compares content (sha256), mode and owner:group with the
 * existing file; when different, keeps a copy (cp -p) under backupDir, installs the new content
 * next to the target and renames it over (same directory: atomic). Last stdout line:
 * `HA_SETUP_WRITE unchanged` or `HA_SETUP_WRITE changed <backup path or nothing>`.
 */
export function writeFileScript(p: WriteScriptParams): string {
  if (!p.path.startsWith('/')) throw new Error(`writeFile: "${p.path}" is not an absolute path`);
  if (!Number.isInteger(p.mode) || p.mode < 0 || p.mode > 0o7777) throw new Error(`writeFile ${p.path}: mode ${p.mode} is not a file mode`);
  return [
    sh`tmpdir=${p.tmpDir}; src=${p.source}; target=${p.path}; mode=${p.mode.toString(8)}`,
    sh`owner=${p.owner ?? 'root'}; group=${p.group ?? ''}; backup=${p.backup ? 1 : 0}; broot=${p.backupDir}`,
    `tmp=`,
    `trap 'rm -rf -- "$tmpdir"; if [ -n "$tmp" ]; then rm -f -- "$tmp"; fi' EXIT`,
    `if [ -z "$group" ]; then group=$(id -gn -- "$owner"); fi`,
    `if [ -L "$target" ]; then target=$(readlink -f -- "$target"); fi`,
    `if [ -e "$target" ] && [ ! -f "$target" ]; then echo "ha-setup: $target exists and is not a regular file" >&2; exit 2; fi`,
    `if [ -f "$target" ] && [ "$(sha256sum < "$target")" = "$(sha256sum < "$src")" ] \\`,
    `   && [ "$(stat -c '%a %U %G' -- "$target")" = "$mode $owner $group" ]; then`,
    `  echo 'HA_SETUP_WRITE unchanged'; exit 0`,
    `fi`,
    `bpath=`,
    `if [ "$backup" = 1 ] && [ -f "$target" ]; then`,
    `  ts=$(date -u +%Y%m%dT%H%M%SZ); bpath="$broot$target.$ts"; n=1`,
    `  while [ -e "$bpath" ]; do bpath="$broot$target.$ts.$n"; n=$((n + 1)); done`,
    `  (umask 077; mkdir -p -- "$(dirname -- "$bpath")")`,
    `  cp -p -- "$target" "$bpath"`,
    `fi`,
    `dir=$(dirname -- "$target")`,
    `(umask 022; mkdir -p -- "$dir")`,
    `tmp="$dir/.$(basename -- "$target").ha-setup.tmp"`,
    `install -m "$mode" -o "$owner" -g "$group" -- "$src" "$tmp"`,
    `mv -f -- "$tmp" "$target"`,
    `tmp=`,
    `echo "HA_SETUP_WRITE changed $bpath"`,
  ].join('\n');
}

/** Reads the write script's verdict from its output. */
export function parseWriteResult(host: string, path: string, r: ExecResult): WriteFileResult {
  const last = r.stdout.trimEnd().split('\n').pop() ?? '';
  const m = /^HA_SETUP_WRITE (unchanged|changed)(?: (.*))?$/.exec(last);
  if (r.code !== 0 || !m) {
    const why = r.stderr.trim().split('\n').pop() || `exit code ${r.code}`;
    throw new TransportError(host, 'command', `writing ${path} failed: ${why}`);
  }
  if (m[1] === 'unchanged') return { changed: false };
  return m[2] ? { changed: true, backupPath: m[2] } : { changed: true };
}

/** The readFile script: file content as is, exit 44 when it does not exist. */
export function readFileScript(path: string): string {
  return sh`if [ ! -e ${path} ]; then exit 44; fi\ncat -- ${path}`;
}

/** At most n at a time. */
export class Slots {
  #free: number;
  #waiting: (() => void)[] = [];
  constructor(n: number) {
    this.#free = n;
  }
  async acquire(): Promise<() => void> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    };
  }
}

// ---------------------------------------------------------------------------------------------
// SSH

export interface UnknownHostKey {
  host: string;
  port: number;
  keyType: string;
  /** SHA256:..., as `ssh-keygen -lf` prints it. */
  fingerprint: string;
  /** Where the key will be added if accepted. */
  knownHostsFile: string;
  /** Key types known_hosts already has for this host (a server offering another is suspicious). */
  otherKeyTypes: string[];
}

export interface SshTransportOptions {
  /** Name in events and errors (the table's alias). */
  name: string;
  host: string;
  port?: number;
  /** Login user (default root). */
  user?: string;
  /** Private key files, tried in order. */
  identityFiles?: string[];
  /** True when the keys came from --identity / ssh.identity (changes the fix in auth errors). */
  identityExplicit?: boolean;
  /** ssh-agent socket (SSH_AUTH_SOCK). */
  agent?: string;
  password?: Secret;
  /** known_hosts files read for lookups; accepted keys are appended to the first. */
  knownHostsFiles?: string[];
  /** Append accepted keys hashed (|1|salt|hash) instead of plain. Default false. */
  hashKnownHosts?: boolean;
  acceptNewHostKeys?: boolean;
  onUnknownHostKey?: (key: UnknownHostKey) => Promise<boolean>;
  /** Connect through this host (ProxyJump); it may have its own jump. */
  jump?: SshTransportOptions;
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
  /** Channels open at once on the connection (sshd's MaxSessions defaults to 10). Default 8. */
  maxChannels?: number;
  /** Home directory, to print key paths as ~/... */
  home?: string;
}

const HOST_KEY_ALGORITHMS: Record<string, string[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
};

function tilde(path: string, home: string): string {
  return home && path.startsWith(`${home}/`) ? `~${path.slice(home.length)}` : path;
}

/**
 * Sends a signal request on a session channel. ssh2's channel.signal() sends nothing once stdin
 * was ended (it checks `writable`), and ours always is (the script is all of stdin), so this goes
 * to the protocol layer directly. sshd (OpenSSH >= 7.9) delivers it to the session's process,
 * `timeout` (or sudo/runuser, which relay it), which passes it to the script's process group.
 */
function signalChannel(channel: ClientChannel, signal: string): void {
  const c = channel as unknown as {
    outgoing?: { state?: string; id?: number };
    _client?: { _protocol?: { signal(id: number, name: string): void } };
  };
  try {
    const out = c.outgoing;
    if (out && (out.state === 'open' || out.state === 'eof') && typeof out.id === 'number') c._client?._protocol?.signal(out.id, signal);
  } catch {
    /* the channel is closing anyway */
  }
}

interface Connection {
  client: Client;
  /** Jump host connections under it, closed with it. */
  jumps: Client[];
  sftp?: Promise<SFTPWrapper>;
}

export class SshTransport implements Transport {
  readonly name: string;
  readonly user: string;
  readonly #o: SshTransportOptions;
  readonly #slots: Slots;
  #conn?: Promise<Connection>;

  constructor(options: SshTransportOptions) {
    this.#o = options;
    this.name = options.name;
    this.user = options.user ?? 'root';
    this.#slots = new Slots(options.maxChannels ?? 8);
  }

  /** host:port this transport reaches. */
  get address(): string {
    return `${this.#o.host}:${this.#o.port ?? 22}`;
  }

  async connect(): Promise<void> {
    await this.#connection();
  }

  #connection(): Promise<Connection> {
    if (!this.#conn) {
      const p = (async () => {
        const jumps: Client[] = [];
        try {
          const client = await dial(this.#o, this.name, jumps);
          client.on('close', () => {
            if (this.#conn === p) this.#conn = undefined;
            for (const j of jumps) j.end();
          });
          return { client, jumps };
        } catch (err) {
          for (const j of jumps) j.end();
          throw err;
        }
      })();
      this.#conn = p;
      p.catch(() => {
        if (this.#conn === p) this.#conn = undefined;
      });
    }
    return this.#conn;
  }

  async exec(script: string, options: ExecOptions = {}): Promise<ExecResult> {
    return this.#exec(script, options, OUTPUT_CAP);
  }

  async #exec(script: string, options: ExecOptions, cap: number): Promise<ExecResult> {
    const timeoutMs = options.timeoutMs ?? this.#o.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    const tag = `ha-setup-${randomBytes(6).toString('hex')}`;
    const cmd = bashCommand(this.user, options, timeoutMs, tag);
    if (options.signal?.aborted) return { code: 130, stdout: '', stderr: '', durationMs: 0, killed: 'aborted' };
    const conn = await this.#connection();
    const release = await this.#slots.acquire();
    try {
      const stop = () => {
        // Not through the slots: they may all be taken by commands that hang.
        const as: ExecOptions = cmd.via === 'none' ? {} : { sudo: true };
        this.#run(conn.client, bashCommand(this.user, as, 10_000), killScript(tag), {}, 10_000, 4096).catch(() => undefined);
      };
      const r = await this.#run(conn.client, cmd, script, options, timeoutMs, cap, stop);
      if (cmd.via === 'sudo') {
        const why = sudoFailure(r.code, r.stderr);
        if (why) throw sudoError(this.name, this.user, why, cmd.runAs);
      }
      return r;
    } finally {
      release();
    }
  }

  async #run(
    client: Client,
    cmd: BashCommand,
    script: string,
    options: ExecOptions,
    timeoutMs: number,
    cap: number,
    stop?: () => void,
  ): Promise<ExecResult> {
    const start = performance.now();
    const channel = await this.#openChannel(client, cmd.words.map((w) => quote(w)).join(' '));
    const result = this.#watch(channel, start, options, timeoutMs, cap, stop);
    channel.end(SCRIPT_PRELUDE + script);
    return result;
  }

  /**
   * Opens an exec channel. sshd frees a session slot a little after the channel closes (when it
   * has reaped the process), so a new channel right after another ends can be refused with
   * "open failed" (no more sessions) although fewer than MaxSessions are open: retry briefly.
   */
  async #openChannel(client: Client, line: string): Promise<ClientChannel> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await new Promise<ClientChannel>((resolve, reject) => client.exec(line, (err, ch) => (err ? reject(err) : resolve(ch))));
      } catch (err) {
        const msg = (err as Error).message;
        if (/open failed/i.test(msg) && attempt < 20) {
          await new Promise((r) => setTimeout(r, 10 * attempt));
          continue;
        }
        throw new TransportError(this.name, 'unreachable', `cannot open a session channel on ${this.address}: ${msg}`, 'check sshd (MaxSessions) on the host and run again');
      }
    }
  }

  #watch(
    channel: ClientChannel,
    start: number,
    options: ExecOptions,
    timeoutMs: number,
    cap: number,
    stop?: () => void,
  ): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      const out = new OutputCollector('stdout', options.onLine, cap);
      const err = new OutputCollector('stderr', options.onLine, cap);
      let code: number | undefined;
      let killed: ExecResult['killed'];
      let hardKill: NodeJS.Timeout | undefined;
      const kill = (why: 'timeout' | 'aborted') => {
        if (killed || code !== undefined) return;
        killed = why;
        signalChannel(channel, 'TERM'); // reaches the command for non-root logins only
        stop?.(); // a second channel ends its process group, for any login
        hardKill = setTimeout(() => channel.close(), (KILL_GRACE_S + 2) * 1000);
      };
      const timer = Number.isFinite(timeoutMs) && timeoutMs > 0 ? setTimeout(() => kill('timeout'), timeoutMs) : undefined;
      const onAbort = () => kill('aborted');
      options.signal?.addEventListener('abort', onAbort, { once: true });
      channel.on('data', (d: Buffer) => out.push(d));
      channel.stderr.on('data', (d: Buffer) => err.push(d));
      // A channel whose connection drops (the host rebooted, a link was cut) may emit 'error'
      // (e.g. the script still being written to its stdin). Unhandled, that ends the process;
      // 'close' follows and reports the lost connection for this command.
      channel.on('error', () => undefined);
      channel.stderr.on('error', () => undefined);
      channel.on('exit', (c: number | null, signal?: string) => {
        code = typeof c === 'number' ? c : signalExitCode(signal);
      });
      channel.on('close', () => {
        clearTimeout(timer);
        clearTimeout(hardKill);
        options.signal?.removeEventListener('abort', onAbort);
        out.end();
        err.end();
        if (code === undefined && !killed) {
          reject(new TransportError(this.name, 'unreachable', `connection to ${this.address} was lost while a command ran`, 'check the host (reboot, network, sshd) and run again'));
          return;
        }
        const durationMs = Math.round(performance.now() - start);
        // The remote `timeout` may fire a moment before our own timer.
        if (!killed && code === 124 && durationMs >= timeoutMs - 50) killed = 'timeout';
        const result: ExecResult = { code: code ?? (killed === 'timeout' ? 124 : 130), stdout: out.text, stderr: err.text, durationMs };
        if (killed) result.killed = killed;
        resolve(result);
      });
    });
  }

  async readFile(path: string): Promise<string | null> {
    const r = await this.#exec(readFileScript(path), { sudo: true }, Infinity);
    if (r.code === 44) return null;
    if (r.code !== 0) {
      throw new TransportError(this.name, 'command', `reading ${path} failed: ${r.stderr.trim().split('\n').pop() || `exit code ${r.code}`}`);
    }
    return r.stdout;
  }

  async writeFile(path: string, content: string, options: WriteFileOptions): Promise<WriteFileResult> {
    const mk = await this.exec('umask 077\nmktemp -d "${TMPDIR:-/tmp}/ha-setup.XXXXXXXX"');
    const tmpDir = mk.stdout.trim().split('\n').pop() ?? ''; // last line: a noisy ~/.bashrc may print first
    if (mk.code !== 0 || !tmpDir.startsWith('/')) {
      throw new TransportError(this.name, 'command', `cannot create a temporary directory: ${mk.stderr.trim() || `exit code ${mk.code}`}`, 'check that /tmp is writable');
    }
    let result: ExecResult | undefined;
    try {
      const source = `${tmpDir}/content`;
      await this.#upload(source, content);
      const script = writeFileScript({
        tmpDir,
        source,
        path,
        mode: options.mode,
        owner: options.owner,
        group: options.group,
        backup: options.backup ?? true,
        backupDir: REMOTE_BACKUP_DIR,
      });
      result = await this.exec(script, { sudo: true }); // once it ran, its trap removed tmpDir
    } finally {
      // Upload failed, or sudo refused before the script ran: remove it as the login user.
      if (!result) await this.exec(sh`rm -rf -- ${tmpDir}`).catch(() => undefined);
    }
    return parseWriteResult(this.name, path, result);
  }

  async #upload(remotePath: string, content: string): Promise<void> {
    const conn = await this.#connection();
    conn.sftp ??= new Promise<SFTPWrapper>((resolve, reject) =>
      conn.client.sftp((err, s) => {
        if (err) return reject(err);
        // The SFTP channel emits 'error' when the connection drops; unhandled, that would end
        // the process. The next upload opens a new channel (or reports the lost connection).
        s.on('error', () => {
          conn.sftp = undefined;
        });
        resolve(s);
      }),
    );
    try {
      const sftp = await conn.sftp;
      await new Promise<void>((resolve, reject) =>
        sftp.writeFile(remotePath, content, { mode: 0o600 }, (err) => (err ? reject(err) : resolve())),
      );
    } catch (err) {
      conn.sftp = undefined;
      throw new TransportError(this.name, 'sftp', `upload to ${this.address}:${remotePath} failed: ${(err as Error).message}`, 'check that sshd has the SFTP subsystem enabled (Subsystem sftp ...) and that /tmp has space');
    }
  }

  async close(): Promise<void> {
    const p = this.#conn;
    this.#conn = undefined;
    if (!p) return;
    const conn = await p.catch(() => undefined);
    if (!conn) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 2000);
      conn.client.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      conn.client.end();
    });
    for (const j of conn.jumps) j.end();
  }
}

/** Connects (through the jump chain if any), checks the host key and logs in. */
async function dial(o: SshTransportOptions, name: string, jumps: Client[]): Promise<Client> {
  const port = o.port ?? 22;
  const user = o.user ?? 'root';
  const where = `${user}@${o.host}:${port}`;
  const home = o.home ?? homedir();
  const knownHostsFiles = o.knownHostsFiles?.length ? o.knownHostsFiles : [`${home}/.ssh/known_hosts`];
  let sock: Duplex | undefined;
  if (o.jump) {
    const jumpClient = await dial(o.jump, name, jumps);
    jumps.push(jumpClient);
    sock = await new Promise<Duplex>((resolve, reject) =>
      jumpClient.forwardOut('127.0.0.1', 0, o.host, port, (err, stream) =>
        err
          ? reject(new TransportError(name, 'unreachable', `jump host ${o.jump!.host} cannot reach ${o.host}:${port}: ${err.message}`, 'check the address and port, and that the jump host may connect there (AllowTcpForwarding)'))
          : resolve(stream),
      ),
    );
  }
  const auth = await authMethods(o, name, user, where, home);
  const known = knownKeyTypes(await readKnownHosts(knownHostsFiles), o.host, port);
  const preferred = known.flatMap((t) => HOST_KEY_ALGORITHMS[t] ?? []);
  const timeoutMs = o.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;

  const client = new Client();
  return new Promise<Client>((resolve, reject) => {
    let settled = false;
    let failure: TransportError | undefined;
    let timer: NodeJS.Timeout | undefined;
    const fail = (e: TransportError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // Destroy, not end(): end() half-closes a socket that is still connecting, which then
      // keeps retrying its SYN (and the process alive) for minutes after the error was reported.
      client.destroy();
      (client as unknown as { _sock?: { destroy(): void } })._sock?.destroy();
      sock?.destroy();
      reject(e);
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(
        () => fail(new TransportError(name, 'timeout', `no SSH answer from ${o.host}:${port} within ${timeoutMs / 1000} s`, `check the address, that sshd runs there and that port ${port} is open`)),
        timeoutMs,
      );
    };
    client.on('ready', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.setNoDelay(true); // small request/response packets: Nagle would add ~40 ms per command
      resolve(client);
    });
    client.on('error', (err: Error & { level?: string; code?: string }) => {
      fail(failure ?? connectError(err, name, o, port, where, auth.describe));
    });
    client.on('close', () => {
      fail(failure ?? new TransportError(name, 'unreachable', `${o.host}:${port} closed the connection during the SSH handshake`, 'check that this port is sshd and its logs (MaxStartups, AllowUsers)'));
    });
    const hostVerifier = (key: Buffer, verify: (ok: boolean) => void): void => {
      clearTimeout(timer); // a prompt for an unknown key must not count against the connect timeout
      checkHostKey(o, name, port, key, knownHostsFiles).then(
        () => {
          arm();
          verify(true);
        },
        (e: unknown) => {
          failure = e instanceof TransportError ? e : new TransportError(name, 'host-key-unknown', `cannot check the host key of ${o.host}:${port}: ${(e as Error).message}`);
          verify(false);
        },
      );
    };
    arm();
    client.connect({
      host: o.host,
      port,
      username: user,
      sock,
      readyTimeout: 0,
      keepaliveInterval: 15_000,
      keepaliveCountMax: 4,
      hostVerifier,
      authHandler: auth.handler,
      ...(preferred.length ? { algorithms: { serverHostKey: { remove: preferred, prepend: preferred } as never } } : {}),
    });
  });
}

function connectError(
  err: Error & { level?: string; code?: string },
  name: string,
  o: SshTransportOptions,
  port: number,
  where: string,
  describeAuth: string,
): TransportError {
  const hp = `${o.host}:${port}`;
  switch (err.code) {
    case 'ECONNREFUSED':
      return new TransportError(name, 'unreachable', `connection refused by ${hp}`, `check that sshd runs on ${o.host} and listens on port ${port} (ssh.port / --port)`);
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EHOSTDOWN':
      return new TransportError(name, 'unreachable', `no route to ${hp}`, 'check the address in the server table and the network');
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new TransportError(name, 'unreachable', `cannot resolve the host name ${o.host}`, 'check the name in the server table, or use its IP address');
    case 'ETIMEDOUT':
      return new TransportError(name, 'timeout', `connecting to ${hp} timed out`, `check the address and that port ${port} is open`);
    case 'ECONNRESET':
      return new TransportError(name, 'unreachable', `${hp} reset the connection during the SSH handshake`, 'check that this port is sshd and its logs');
  }
  if (err.level === 'client-authentication') {
    const fix = o.identityExplicit
      ? 'check --identity'
      : `pass the right key with --identity, or add your public key to ~${where.split('@')[0]}/.ssh/authorized_keys on ${o.host}`;
    return new TransportError(name, 'auth', `authentication failed for ${where} with ${describeAuth}`, fix);
  }
  return new TransportError(name, 'unreachable', `SSH handshake with ${hp} failed: ${err.message.replace(/\s+/g, ' ')}`);
}

async function checkHostKey(o: SshTransportOptions, name: string, port: number, key: Buffer, files: string[]): Promise<void> {
  const entries = await readKnownHosts(files);
  const r = lookupHostKey(entries, o.host, port, key);
  const fp = fingerprint(key);
  const type = keyTypeOf(key);
  const label = knownHostName(o.host, port);
  const target = files[0]!;
  switch (r.status) {
    case 'match':
      return;
    case 'revoked':
      throw new TransportError(name, 'host-key-changed', `the host key of ${label} (${type} ${fp}) is marked @revoked in ${r.file} line ${r.line}`, 'the server needs a new host key; do not connect until it has one');
    case 'changed':
      throw new TransportError(
        name,
        'host-key-changed',
        `the host key of ${label} has CHANGED: it is now ${type} ${fp}, but ${r.file} line ${r.line} has another key for it (possible man-in-the-middle)`,
        `if the server was reinstalled, compare the fingerprint with ssh-keygen -lf on its console, then run: ssh-keygen -R ${quote(label)} -f ${quote(r.file)}`,
      );
    case 'unknown': {
      const info: UnknownHostKey = { host: o.host, port, keyType: type, fingerprint: fp, knownHostsFile: target, otherKeyTypes: r.otherKeyTypes };
      const accepted = o.acceptNewHostKeys === true || (o.onUnknownHostKey ? await o.onUnknownHostKey(info) : false);
      if (!accepted) {
        const others = r.otherKeyTypes.length ? `; ${target} has only ${r.otherKeyTypes.join(', ')} keys for it` : '';
        const keyscan = `ssh-keyscan ${port === 22 ? '' : `-p ${port} `}${quote(o.host)} >> ${quote(target)}`;
        throw new TransportError(
          name,
          'host-key-unknown',
          `the host key of ${label} is not known (${type} ${fp})${others}${o.onUnknownHostKey ? ' and was not accepted' : ''}`,
          `check the fingerprint, then pass --accept-new-host-keys, or add it with: ${keyscan}`,
        );
      }
      await appendKnownHost(target, o.host, port, key, { hashed: o.hashKnownHosts === true });
      return;
    }
  }
}

interface Auth {
  handler: AuthHandlerMiddleware;
  describe: string;
}

async function authMethods(o: SshTransportOptions, name: string, user: string, where: string, home: string): Promise<Auth> {
  const methods: AnyAuthMethod[] = [];
  const keys: string[] = [];
  const encrypted: string[] = [];
  for (const file of o.identityFiles ?? []) {
    let data: Buffer;
    try {
      data = await readFile(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && !o.identityExplicit) continue;
      throw new TransportError(name, 'auth', `cannot read the key ${tilde(file, home)} for ${where} (${code ?? (err as Error).message})`, 'check --identity');
    }
    const parsed = utils.parseKey(data);
    if (parsed instanceof Error) {
      if (/encrypted/i.test(parsed.message)) {
        encrypted.push(tilde(file, home));
        continue;
      }
      throw new TransportError(name, 'auth', `${tilde(file, home)} is not a private key ssh2 can read (${parsed.message})`, 'check --identity');
    }
    methods.push({ type: 'publickey', username: user, key: data });
    keys.push(tilde(file, home));
  }
  const agent = o.agent && existsSync(o.agent) ? o.agent : undefined;
  if (agent) methods.push({ type: 'agent', username: user, agent });
  if (o.password) {
    const pw = o.password.reveal();
    methods.push({ type: 'password', username: user, password: pw });
    methods.push({
      type: 'keyboard-interactive',
      username: user,
      prompt: (_n, _i, _l, prompts, finish) => finish(prompts.map(() => pw)),
    });
  }
  if (methods.length === 0) {
    const why = encrypted.length
      ? `the key ${encrypted.join(', ')} is passphrase-protected and no ssh-agent is running`
      : 'no key file, no ssh-agent and no password';
    const fix = encrypted.length ? `load it into ssh-agent (ssh-add ${encrypted[0]}) and keep SSH_AUTH_SOCK set` : 'pass --identity KEYFILE, or start ssh-agent with your key';
    throw new TransportError(name, 'auth', `cannot log in as ${where}: ${why}`, fix);
  }
  const parts: string[] = [];
  if (keys.length) parts.push(`${keys.length > 1 ? 'keys' : 'key'} ${keys.join(', ')}`);
  if (agent) parts.push("the ssh-agent's keys");
  if (o.password) parts.push('the password');
  const queue = [...methods];
  return {
    describe: parts.join(' and '),
    handler: (methodsLeft: AuthenticationType[] | null, _partial: boolean | null, next: NextAuthHandler) => {
      while (queue.length) {
        const m = queue.shift()!;
        if (!methodsLeft || methodsLeft.includes(m.type)) return next(m);
      }
      return next(false as never); // ssh2: no more methods (the typings omit false)
    },
  };
}
