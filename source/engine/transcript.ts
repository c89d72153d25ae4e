/**
 * The transcript of a run: <clusterDir>/runs/<runId>.log (0600, directory 0700). Every fact
 * probe and command with its script, every output line (prefixed by host and stream), exit
 * codes and durations, every file write (path, mode, owner, backup; never the content of a
 * secret file). Everything passes through the Redactor. Lines are written synchronously so
 * that the file is complete up to the moment a process dies.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePrivateDir } from './checkpoint.js';
import type { Redactor } from './redact.js';
import type { FileDiff } from './events.js';
import type { Action, HostRef } from './step.js';

/** Sortable run id: UTC time to the millisecond, then 6 random hex digits. */
export function newRunId(now: Date = new Date()): string {
  const t = now.toISOString().replace(/[-:]/g, '').replace('.', ''); // 20261121T235846123Z
  return `${t}-${randomBytes(3).toString('hex')}`;
}

const indent = (text: string, prefix: string): string =>
  text
    .split('\n')
    .map((l) => `${prefix}${l}`)
    .join('\n');

export class Transcript {
  #fd: number | undefined;

  private constructor(
    readonly path: string,
    fd: number,
    private readonly redactor: Redactor,
  ) {
    this.#fd = fd;
  }

  static create(
    dir: string,
    runId: string,
    redactor: Redactor,
    header: { command: string; mode: string; cluster: string; hosts: HostRef[]; runbooks: string[] },
  ): Transcript {
    const runs = join(dir, 'runs');
    ensurePrivateDir(runs);
    const path = join(runs, `${runId}.log`);
    const fd = openSync(path, 'wx', 0o600);
    const t = new Transcript(path, fd, redactor);
    t.#write(
      [
        `# ha-setup transcript`,
        `run: ${runId}`,
        `cluster: ${header.cluster}`,
        `mode: ${header.mode}`,
        `command: ${header.command}`,
        `started: ${new Date().toISOString()}`,
        `runbooks: ${header.runbooks.join(', ')}`,
        `hosts: ${header.hosts.map((h) => `${h.alias}=${h.address}`).join(' ')}`,
      ].join('\n'),
    );
    return t;
  }

  #write(text: string): void {
    if (this.#fd === undefined) return;
    writeSync(this.#fd, `${this.redactor.redact(text)}\n`);
  }

  note(line: string): void {
    this.#write(`${new Date().toISOString()} note: ${line}`);
  }

  commandStarted(host: string, stepId: string, kind: 'command' | 'fact' | 'verify', title: string, script: string, as?: string): void {
    this.#write(
      `\n${new Date().toISOString()} [${host}] ${stepId} ${kind}: ${title}${as ? ` (as ${as})` : ''}\n${indent(script, '    | ')}`,
    );
  }

  output(host: string, stream: 'stdout' | 'stderr', line: string): void {
    this.#write(`[${host}] ${stream}: ${line}`);
  }

  commandFinished(host: string, stepId: string, code: number, durationMs: number, killed?: string): void {
    this.#write(`${new Date().toISOString()} [${host}] ${stepId} exit ${code}${killed ? ` (${killed})` : ''} in ${durationMs} ms`);
  }

  fileWritten(
    host: string,
    stepId: string,
    w: { path: string; mode: number; owner?: string; group?: string; changed: boolean; backupPath?: string; bytes: number; content?: string },
  ): void {
    const owner = `${w.owner ?? '(unchanged)'}:${w.group ?? '(unchanged)'}`;
    const lines = [
      `\n${new Date().toISOString()} [${host}] ${stepId} write ${w.path} mode 0${w.mode.toString(8)} owner ${owner} ` +
        `${w.changed ? 'changed' : 'unchanged'} (${w.bytes} bytes)${w.backupPath ? ` backup ${w.backupPath}` : ''}`,
    ];
    if (w.content !== undefined) lines.push(indent(w.content.replace(/\n$/, ''), '    > '));
    else lines.push('    (content not logged: secret file)');
    this.#write(lines.join('\n'));
  }

  /** The plan of a step on a host: commands with their scripts, writes with their diffs (not for secret files). */
  planned(host: string, stepId: string, actions: Action[], diffs: FileDiff[], reason?: string): void {
    const lines = [`\n${new Date().toISOString()} [${host}] ${stepId} plan: ${actions.length} action(s)${reason ? ` (${reason})` : ''}`];
    let d = 0;
    for (const a of actions) {
      if (a.kind === 'run') {
        lines.push(`    run: ${a.title}${a.user ? ` (as ${a.user})` : a.sudo ? ' (as root)' : ''}`, indent(a.script, '      | '));
      } else {
        const diff = diffs[d++]?.diff ?? '';
        lines.push(`    write: ${a.path} mode 0${a.mode.toString(8)}`);
        if (a.mode & 0o004) lines.push(diff ? indent(diff.replace(/\n$/, ''), '      ') : '      (content unchanged)');
        else lines.push('      (diff not logged: secret file)');
      }
    }
    this.#write(lines.join('\n'));
  }

  stepResult(host: string, stepId: string, text: string): void {
    this.#write(`${new Date().toISOString()} [${host}] ${stepId} ${text}`);
  }

  close(): void {
    if (this.#fd === undefined) return;
    this.#write(`\nfinished: ${new Date().toISOString()}`);
    closeSync(this.#fd);
    this.#fd = undefined;
  }
}
