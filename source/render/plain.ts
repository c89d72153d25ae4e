/**
 * Line-by-line rendering of engine events for non-TTY runs, CI logs and pipes: no cursor
 * movement, every host line prefixed with [alias], one final line per step and host
 * (✓ done, – nothing to do, ✗ failed, → would change), a closing summary. Color only adds
 * ANSI codes around the same text. Also planToJson() for `plan --json`.
 */
import type { EngineEvent, EventSink, FileDiff } from '../engine/events.js';
import type { Action } from '../engine/step.js';

export interface PlainOptions {
  /** False when NO_COLOR is set or the output is not a TTY. */
  color: boolean;
  /** Also print each command's script and exit code. */
  verbose?: boolean;
}

export const SYMBOLS = { ok: '✓', failed: '✗', skip: '–', change: '→' } as const;

export function formatDuration(ms: number): string {
  if (ms < 59_950) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

export function createPlainRenderer(out: { write(s: string): unknown }, opts: PlainOptions): EventSink {
  const paint = (code: number) => (s: string) => (opts.color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const green = paint(32);
  const red = paint(31);
  const dim = paint(2);
  const bold = paint(1);
  const cyan = paint(36);

  let dryRun = false;
  const titles = new Map<string, string>();
  const stepHosts = new Map<string, number>();
  const announced = new Set<string>();
  const skipped = new Map<string, string>();
  const say = (line: string): void => void out.write(`${line}\n`);
  const hostSay = (host: string, line: string): void => say(`[${host}] ${line}`);
  const block = (host: string, text: string, pad: string): void => {
    for (const l of text.replace(/\n$/, '').split('\n')) hostSay(host, `${pad}${l}`);
  };
  const key = (step: string, host: string): string => `${step}\u0000${host}`;

  const action = (host: string, a: Action): void => {
    if (a.kind === 'run') {
      const as = a.user ? ` (as ${a.user})` : a.sudo ? ' (as root)' : '';
      hostSay(host, `    $ ${a.title}${as}`);
      block(host, a.script, '        ');
    } else {
      const owner = a.owner || a.group ? ` ${a.owner ?? ''}:${a.group ?? ''}` : '';
      hostSay(host, `    write ${a.path} (0${a.mode.toString(8)}${owner})${a.title ? `: ${a.title}` : ''}`);
    }
  };
  const diff = (host: string, d: FileDiff): void => {
    if (!d.diff) hostSay(host, `        (${d.path}: content unchanged)`);
    else block(host, d.diff, '        ');
  };

  return (e: EngineEvent) => {
    switch (e.type) {
      case 'run-started': {
        dryRun = e.dryRun;
        announced.clear();
        skipped.clear();
        for (const s of e.steps) {
          titles.set(s.id, s.title);
          stepHosts.set(s.id, s.hosts.length);
        }
        const what = e.dryRun ? 'plan (dry run: nothing is changed on the servers)' : 'apply';
        say(bold(`ha-setup ${what}: run ${e.runId}, ${plural(e.steps.length, 'step')} (${e.runbooks.join(', ')})`));
        say(dim(`transcript: ${e.transcriptPath}`));
        break;
      }
      case 'step-started':
        if (!announced.has(e.stepId)) {
          announced.add(e.stepId);
          const n = stepHosts.get(e.stepId);
          say(cyan(`▸ ${e.stepId}: ${titles.get(e.stepId) ?? e.stepId}${n ? ` (${plural(n, 'host')})` : ''}`));
        }
        break;
      case 'step-planned':
        if (dryRun && e.actions.length > 0) {
          hostSay(e.host, `${SYMBOLS.change} ${e.stepId}: ${plural(e.actions.length, 'change')}${e.reason ? ` (${e.reason})` : ''}`);
          const diffs = [...e.diffs];
          for (const a of e.actions) {
            action(e.host, a);
            if (a.kind === 'write') {
              const d = diffs.shift();
              if (d) diff(e.host, d);
            }
          }
        }
        break;
      case 'step-skipped':
        if (dryRun) hostSay(e.host, dim(`${SYMBOLS.skip} ${e.stepId}: ${e.reason}`));
        else skipped.set(key(e.stepId, e.host), e.reason);
        break;
      case 'command-started':
        hostSay(e.host, `$ ${e.title}`);
        if (opts.verbose) block(e.host, e.script, '    | ');
        break;
      case 'output':
        hostSay(e.host, `  ${e.line}`);
        break;
      case 'command-finished':
        if (e.code !== 0) hostSay(e.host, red(`exit ${e.code} after ${formatDuration(e.durationMs)}: ${e.title}`));
        else if (opts.verbose) hostSay(e.host, dim(`exit 0 after ${formatDuration(e.durationMs)}`));
        break;
      case 'file-written':
        hostSay(e.host, e.changed ? `wrote ${e.path}${e.backupPath ? ` (previous kept as ${e.backupPath})` : ''}` : dim(`${e.path} already up to date`));
        break;
      case 'step-finished': {
        const reason = skipped.get(key(e.stepId, e.host));
        const note = e.note ? ` (${e.note})` : '';
        if (e.changed) hostSay(e.host, `${green(SYMBOLS.ok)} ${e.stepId}: changed in ${formatDuration(e.durationMs)}${note}`);
        else if (reason !== undefined) hostSay(e.host, dim(`${SYMBOLS.skip} ${e.stepId}: ${reason}${note}`));
        else hostSay(e.host, `${green(SYMBOLS.ok)} ${e.stepId}: no change${note}`);
        break;
      }
      case 'step-failed':
        hostSay(e.host, red(`${SYMBOLS.failed} ${e.stepId}: ${e.error}`));
        if (e.command) hostSay(e.host, `    command: ${e.command}`);
        if (e.lastLines.length > 0) {
          hostSay(e.host, '    last output:');
          for (const l of e.lastLines) hostSay(e.host, `      ${l}`);
        }
        hostSay(e.host, `    transcript: ${e.transcriptPath}`);
        hostSay(e.host, `    to resume: ${e.resumeCommand}`);
        break;
      case 'run-finished': {
        const time = formatDuration(e.durationMs);
        if (dryRun) {
          say(
            e.ok
              ? bold(`Plan: ${plural(e.changed, 'host step')} to change, ${e.unchanged} already done, in ${time}. Nothing was changed.`)
              : red(`Plan FAILED after ${time}: ${e.failed} failed, ${plural(e.changed, 'host step')} to change, ${e.unchanged} already done. Nothing was changed.`),
          );
        } else {
          say(
            e.ok
              ? green(`${SYMBOLS.ok} Done in ${time}: ${plural(e.changed, 'host step')} changed, ${e.unchanged} unchanged.`)
              : red(`${SYMBOLS.failed} FAILED after ${time}: ${e.failed} failed, ${plural(e.changed, 'host step')} changed, ${e.unchanged} unchanged.`),
          );
        }
        say(dim(`transcript: ${e.transcriptPath}`));
        break;
      }
    }
  };
}

export interface PlanJsonStep {
  id: string;
  title: string;
  status: 'change' | 'skip' | 'failed';
  reason?: string;
  actions: Action[];
  diffs: FileDiff[];
  error?: string;
}

export interface PlanJson {
  runId: string;
  ok: boolean;
  transcriptPath: string;
  /** Per host alias, the steps in run order. */
  hosts: Record<string, { steps: PlanJsonStep[] }>;
}

/** The machine-readable plan (`plan --json`), folded from a plan run's events. */
export function planToJson(events: EngineEvent[]): PlanJson {
  const result: PlanJson = { runId: '', ok: false, transcriptPath: '', hosts: {} };
  const titles = new Map<string, string>();
  const find = (host: string, stepId: string): PlanJsonStep => {
    const steps = (result.hosts[host] ??= { steps: [] }).steps;
    let s = steps.find((x) => x.id === stepId);
    if (!s) {
      s = { id: stepId, title: titles.get(stepId) ?? stepId, status: 'change', actions: [], diffs: [] };
      steps.push(s);
    }
    return s;
  };
  for (const e of events) {
    if (e.type === 'run-started') {
      result.runId = e.runId;
      result.transcriptPath = e.transcriptPath;
      for (const s of e.steps) titles.set(s.id, s.title);
    } else if (e.type === 'step-planned') {
      const s = find(e.host, e.stepId);
      s.actions = e.actions;
      s.diffs = e.diffs;
      s.status = e.actions.length ? 'change' : 'skip';
      if (e.reason) s.reason = e.reason;
    } else if (e.type === 'step-skipped') {
      const s = find(e.host, e.stepId);
      s.status = 'skip';
      s.reason = e.reason;
    } else if (e.type === 'step-failed') {
      const s = find(e.host, e.stepId);
      s.status = 'failed';
      s.error = e.error;
    } else if (e.type === 'run-finished') {
      result.ok = e.ok;
    }
  }
  return result;
}
