/**
 * The contexts a step's phases receive: HostContext (pure: the host, the table, options,
 * secrets) and ExecContext (adds run/write with events, transcript and redaction).
 */
import type { EventSink } from './events.js';
import type { Redactor } from './redact.js';
import type { Secret } from './shell.js';
import type { ExecContext, HostContext, HostRef } from './step.js';
import type { Transcript } from './transcript.js';
import type { Inventory } from '../inventory/types.js';
import type { ExecResult, Transport } from '../transport/types.js';

export interface Table {
  /** Every alias that is a server to log into. */
  hosts: Record<string, HostRef | undefined>;
  /** Address-only entries (the VIPs). */
  addresses: Record<string, string | undefined>;
}

/** Split the server table: aliases ending in `_vip` are addresses only, every other alias is a host. */
export function tableOf(inv: Pick<Inventory, 'servers'>): Table {
  const hosts: Table['hosts'] = {};
  const addresses: Table['addresses'] = {};
  for (const [alias, address] of Object.entries(inv.servers)) {
    if (alias.endsWith('_vip')) addresses[alias] = address;
    else hosts[alias] = { alias, address };
  }
  return { hosts, addresses };
}

/**
 * The options a HostContext carries: the inventory's options plus `cluster` (the cluster
 * name), which HostContext has no field for. Read it with clusterName(ctx).
 */
export function contextOptions(inv: Pick<Inventory, 'cluster' | 'options'>): Record<string, unknown> {
  return { ...inv.options, cluster: inv.cluster };
}

/** The cluster a step runs for. */
export function clusterName(ctx: Pick<HostContext, 'options'>): string {
  const c = ctx.options.cluster;
  if (typeof c !== 'string' || !c) throw new Error('the step context has no cluster name (options.cluster)');
  return c;
}

export function createHostContext(opts: {
  host: HostRef;
  table: Table;
  options: Record<string, unknown>;
  secret: (name: string) => Secret;
}): HostContext {
  return { host: opts.host, hosts: opts.table.hosts, addresses: opts.table.addresses, options: opts.options, secret: opts.secret };
}

/** What one host's step did, for step-failed and step-finished. */
export class StepRecorder {
  static readonly KEEP = 15;
  /** Title of the command (or fact, or write) that failed, if one did. */
  failedCommand: string | undefined;
  /** The last output lines of the latest command, redacted. */
  lastLines: string[] = [];
  /** Whether the apply phase ran a command or changed a file. */
  changed = false;
  /** Commands and writes in 'apply' count as changes; in 'verify' they do not. */
  phase: 'apply' | 'verify' = 'apply';

  startCommand(): void {
    this.lastLines = [];
  }

  line(stream: 'stdout' | 'stderr', line: string): void {
    this.lastLines.push(stream === 'stderr' ? `stderr: ${line}` : line);
    if (this.lastLines.length > StepRecorder.KEEP) this.lastLines.shift();
  }
}

export interface ExecDeps {
  transport: Transport;
  stepId: string;
  events: EventSink;
  redactor: Redactor;
  transcript?: Transcript;
  recorder?: StepRecorder;
}

/** Call `onLine` for every line of a result that the transport did not stream. */
function splitLines(text: string): string[] {
  if (!text) return [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** Files whose content may be logged: readable by others and holding no known secret. */
function loggable(content: string, mode: number, redactor: Redactor): boolean {
  return (mode & 0o004) !== 0 && redactor.redact(content) === content;
}

export function createExecContext(hctx: HostContext, deps: ExecDeps): ExecContext {
  const { transport, stepId, events, redactor, transcript } = deps;
  const rec = deps.recorder ?? new StepRecorder();
  const host = hctx.host.alias;
  const red = (s: string): string => redactor.redact(s);

  const run: ExecContext['run'] = async (title, script, opts = {}) => {
    const check = opts.check ?? true;
    const rTitle = red(title);
    const as = opts.user ?? (opts.sudo ? 'root' : undefined);
    rec.startCommand();
    events({ type: 'command-started', stepId, host, title: rTitle, script: red(script) });
    transcript?.commandStarted(host, stepId, rec.phase === 'verify' ? 'verify' : 'command', rTitle, script, as);
    const stderrTail: string[] = [];
    let streamed = false;
    const onLine = (stream: 'stdout' | 'stderr', raw: string): void => {
      streamed = true;
      const line = red(raw.replace(/\r$/, ''));
      rec.line(stream, line);
      if (stream === 'stderr') {
        stderrTail.push(line);
        if (stderrTail.length > 5) stderrTail.shift();
      }
      events({ type: 'output', stepId, host, stream, line });
      transcript?.output(host, stream, line);
    };
    const started = Date.now();
    let res: ExecResult;
    try {
      res = await transport.exec(script, { sudo: opts.sudo, user: opts.user, onLine });
    } catch (e) {
      const err = redactor.redactError(e);
      const durationMs = Date.now() - started;
      rec.failedCommand = rTitle;
      events({ type: 'command-finished', stepId, host, title: rTitle, code: -1, durationMs });
      transcript?.commandFinished(host, stepId, -1, durationMs, err.message);
      throw err;
    }
    if (!streamed) {
      for (const l of splitLines(res.stdout)) onLine('stdout', l);
      for (const l of splitLines(res.stderr)) onLine('stderr', l);
    }
    if (rec.phase === 'apply') rec.changed = true;
    events({ type: 'command-finished', stepId, host, title: rTitle, code: res.code, durationMs: res.durationMs });
    transcript?.commandFinished(host, stepId, res.code, res.durationMs, res.killed);
    if (check && (res.code !== 0 || res.killed)) {
      rec.failedCommand = rTitle;
      const why = res.killed === 'timeout' ? 'timed out' : res.killed === 'aborted' ? 'was aborted' : `failed with exit code ${res.code}`;
      const tail = stderrTail.length ? `: ${stderrTail.join(' | ')}` : '';
      throw new Error(`"${rTitle}" ${why}${tail}`);
    }
    return res;
  };

  const write: ExecContext['write'] = async (path, content, opts) => {
    rec.startCommand();
    let result;
    try {
      result = await transport.writeFile(path, content, { mode: opts.mode, owner: opts.owner, group: opts.group, backup: true });
    } catch (e) {
      rec.failedCommand = red(`write ${path}`);
      throw redactor.redactError(e);
    }
    if (result.changed && rec.phase === 'apply') rec.changed = true;
    transcript?.fileWritten(host, stepId, {
      path,
      mode: opts.mode,
      owner: opts.owner,
      group: opts.group,
      changed: result.changed,
      backupPath: result.backupPath,
      bytes: Buffer.byteLength(content),
      content: loggable(content, opts.mode, redactor) ? content : undefined,
    });
    events({ type: 'file-written', stepId, host, path: red(path), backupPath: result.backupPath, changed: result.changed });
  };

  const log: ExecContext['log'] = (line) => {
    const l = red(line);
    events({ type: 'output', stepId, host, stream: 'stdout', line: l });
    transcript?.output(host, 'stdout', l);
  };

  return { ...hctx, transport, run, write, log };
}
