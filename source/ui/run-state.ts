/**
 * The run view's screen state: a pure fold of EngineEvents (source/engine/events.ts).
 * No Ink, no React: RunView renders it, tests check it alone.
 *
 * - `items`: one per step x host, with its status and current command.
 * - `output`: per step, only the last LIVE_LINES lines of output (host-tagged, ANSI stripped,
 *   each line capped at LINE_CHARS) plus how many earlier lines were dropped.
 * - `static`: finished lines, append-only, for <Static> (never re-rendered).
 * - `failures`: what the failure panel shows; `summary`: the end of the run.
 */
import { stripVTControlCharacters } from 'node:util';
import type { EngineEvent, FileDiff } from '../engine/events.js';
import type { Action } from '../engine/step.js';

/** Lines of live output kept per step (all hosts of the step together). */
export const LIVE_LINES = 15;
/** Longest live output line kept, in characters. */
export const LINE_CHARS = 400;

export type ItemStatus = 'pending' | 'running' | 'planned' | 'skipped' | 'done' | 'failed';

export interface RunItem {
  stepId: string;
  title: string;
  host: string;
  status: ItemStatus;
  /** done: whether the step changed something; planned: whether it has actions. */
  changed: boolean;
  /** Skip reason, plan reason or the step's note. */
  reason?: string;
  /** Title of the command running now. */
  command?: string;
  /** Apply run: the plan was empty for this reason; the step still verifies, then finishes. */
  skipReason?: string;
  durationMs?: number;
}

export interface OutputLine {
  host: string;
  text: string;
}

export interface OutputBuffer {
  lines: OutputLine[];
  /** Lines dropped from the front of `lines`. */
  hidden: number;
}

export interface PlannedAction {
  kind: Action['kind'];
  /** The run action's title; for a write, the path (after its title when it has one). */
  title: string;
}

export type StaticEntry =
  | {
      key: string;
      kind: 'header';
      runId: string;
      runbooks: string[];
      dryRun: boolean;
      steps: number;
      hosts: number;
      transcriptPath: string;
    }
  | {
      key: string;
      kind: 'item';
      stepId: string;
      title: string;
      host: string;
      status: 'planned' | 'skipped' | 'done' | 'failed';
      changed: boolean;
      reason?: string;
      durationMs?: number;
      /** planned only */
      actions?: PlannedAction[];
      /** planned only: files whose content would change */
      diffs?: FileDiff[];
      /** skipped only: it failed and the user chose to skip it */
      afterFailure?: boolean;
    };

export interface RunFailure {
  stepId: string;
  title: string;
  host: string;
  error: string;
  command?: string;
  lastLines: string[];
  transcriptPath: string;
  resumeCommand: string;
}

export interface RunSummary {
  ok: boolean;
  changed: number;
  unchanged: number;
  failed: number;
  /** Items that never ran (pending at the end, e.g. after a failure). */
  notRun: number;
  durationMs: number;
  transcriptPath: string;
}

export interface RunState {
  runId?: string;
  dryRun: boolean;
  transcriptPath?: string;
  /** Step ids in run order, with their titles. */
  steps: { id: string; title: string }[];
  /** Keys (itemKey) in display order. */
  order: string[];
  items: Record<string, RunItem>;
  output: Record<string, OutputBuffer>;
  static: StaticEntry[];
  failures: RunFailure[];
  summary?: RunSummary;
}

export const initialRunState: RunState = {
  dryRun: false,
  steps: [],
  order: [],
  items: {},
  output: {},
  static: [],
  failures: [],
};

export function itemKey(stepId: string, host: string): string {
  return `${stepId}@${host}`;
}

/** Output text as the screen shows it: no escape sequences, no CR, capped length. */
export function cleanLine(line: string): string {
  const text = stripVTControlCharacters(line).replace(/\r/g, '').replace(/\t/g, '  ');
  return text.length > LINE_CHARS ? `${text.slice(0, LINE_CHARS - 1)}…` : text;
}

function appendLine(buf: OutputBuffer | undefined, line: OutputLine): OutputBuffer {
  const lines = buf ? buf.lines : [];
  const hidden = buf ? buf.hidden : 0;
  if (lines.length < LIVE_LINES) return { lines: [...lines, line], hidden };
  return { lines: [...lines.slice(lines.length - LIVE_LINES + 1), line], hidden: hidden + lines.length - LIVE_LINES + 1 };
}

function stepTitle(state: RunState, stepId: string): string {
  return state.steps.find((s) => s.id === stepId)?.title ?? stepId;
}

/** The item for (stepId, host), created when an event names one run-started did not list. */
function getItem(state: RunState, stepId: string, host: string): { state: RunState; item: RunItem } {
  const key = itemKey(stepId, host);
  const found = state.items[key];
  if (found) return { state, item: found };
  const item: RunItem = { stepId, title: stepTitle(state, stepId), host, status: 'pending', changed: false };
  return { state: { ...state, order: [...state.order, key], items: { ...state.items, [key]: item } }, item };
}

function putItem(state: RunState, item: RunItem): RunState {
  return { ...state, items: { ...state.items, [itemKey(item.stepId, item.host)]: item } };
}

/** Drop a step's live output once none of its hosts is running any more. */
function pruneOutput(state: RunState, stepId: string): RunState {
  if (!state.output[stepId]) return state;
  const running = state.order.some((k) => {
    const it = state.items[k];
    return it !== undefined && it.stepId === stepId && it.status === 'running';
  });
  if (running) return state;
  const { [stepId]: _dropped, ...rest } = state.output;
  return { ...state, output: rest };
}

function isFinished(item: RunItem): boolean {
  return item.status === 'planned' || item.status === 'skipped' || item.status === 'done' || item.status === 'failed';
}

/** Move a finished item to the static list and drop its step's output when the step is idle. */
function finish(state: RunState, item: RunItem, extra: Partial<Extract<StaticEntry, { kind: 'item' }>> = {}): RunState {
  const status = item.status as Extract<StaticEntry, { kind: 'item' }>['status'];
  const entry: StaticEntry = {
    key: `${itemKey(item.stepId, item.host)}#${state.static.length}`,
    kind: 'item',
    stepId: item.stepId,
    title: item.title,
    host: item.host,
    status,
    changed: item.changed,
    ...(item.reason !== undefined ? { reason: item.reason } : {}),
    ...(item.durationMs !== undefined ? { durationMs: item.durationMs } : {}),
    ...extra,
  };
  const next = putItem(state, item);
  return pruneOutput({ ...next, static: [...next.static, entry] }, item.stepId);
}

function plannedAction(a: Action): PlannedAction {
  return a.kind === 'run' ? { kind: 'run', title: a.title } : { kind: 'write', title: a.title ? `${a.title} (${a.path})` : a.path };
}

export function reduceRun(state: RunState, event: EngineEvent): RunState {
  switch (event.type) {
    case 'run-started': {
      const order: string[] = [];
      const items: Record<string, RunItem> = {};
      const hosts = new Set<string>();
      for (const s of event.steps) {
        for (const h of s.hosts) {
          const key = itemKey(s.id, h);
          order.push(key);
          items[key] = { stepId: s.id, title: s.title, host: h, status: 'pending', changed: false };
          hosts.add(h);
        }
      }
      const header: StaticEntry = {
        key: `header#${state.static.length}`,
        kind: 'header',
        runId: event.runId,
        runbooks: event.runbooks,
        dryRun: event.dryRun,
        steps: event.steps.length,
        hosts: hosts.size,
        transcriptPath: event.transcriptPath,
      };
      return {
        ...initialRunState,
        runId: event.runId,
        dryRun: event.dryRun,
        transcriptPath: event.transcriptPath,
        steps: event.steps.map((s) => ({ id: s.id, title: s.title })),
        order,
        items,
        static: [...state.static, header],
      };
    }
    case 'step-started': {
      const got = getItem(state, event.stepId, event.host);
      const { command: _c, skipReason: _s, ...rest } = got.item;
      // A retry: the earlier failure of this step on this host is no longer the news.
      const failures = got.state.failures.filter((f) => f.stepId !== event.stepId || f.host !== event.host);
      const next = failures.length === got.state.failures.length ? got.state : { ...got.state, failures };
      return putItem(next, { ...rest, status: 'running' });
    }
    case 'step-planned': {
      const got = getItem(state, event.stepId, event.host);
      const changed = event.actions.length > 0;
      const item: RunItem = {
        ...got.item,
        changed,
        ...(event.reason !== undefined ? { reason: event.reason } : {}),
      };
      // In an apply run the plan is only a stage of the step; in a dry run it is the result.
      if (!state.dryRun) return putItem(got.state, item);
      const { command: _c, ...planned } = item;
      return finish(got.state, { ...planned, status: 'planned' }, {
        actions: event.actions.map(plannedAction),
        diffs: event.diffs.filter((d) => d.diff !== ''),
      });
    }
    case 'command-started': {
      const got = getItem(state, event.stepId, event.host);
      return putItem(got.state, { ...got.item, status: 'running', command: event.title });
    }
    case 'command-finished': {
      const got = getItem(state, event.stepId, event.host);
      if (got.item.command !== event.title) return got.state;
      const { command: _c, ...rest } = got.item;
      return putItem(got.state, rest);
    }
    case 'output': {
      const line: OutputLine = { host: event.host, text: cleanLine(event.line) };
      return { ...state, output: { ...state.output, [event.stepId]: appendLine(state.output[event.stepId], line) } };
    }
    case 'file-written': {
      const note = `${event.changed ? 'wrote' : 'unchanged'} ${event.path}${event.backupPath ? ` (backup ${event.backupPath})` : ''}`;
      const line: OutputLine = { host: event.host, text: cleanLine(note) };
      return { ...state, output: { ...state.output, [event.stepId]: appendLine(state.output[event.stepId], line) } };
    }
    case 'step-skipped': {
      const got = getItem(state, event.stepId, event.host);
      if (got.item.status === 'failed' && !state.dryRun) {
        // Failed, then skipped by the user: the run goes on without it.
        const failures = got.state.failures.filter((f) => f.stepId !== event.stepId || f.host !== event.host);
        return finish({ ...got.state, failures }, { ...got.item, status: 'skipped', changed: false, reason: event.reason }, { afterFailure: true });
      }
      if (isFinished(got.item)) return got.state; // a dry run's plan already said so
      const { command: _c, durationMs: _d, ...rest } = got.item;
      // In an apply run the step still verifies and then finishes; in a dry run this is the result.
      if (!state.dryRun) return putItem(got.state, { ...rest, skipReason: event.reason });
      return finish(got.state, { ...rest, status: 'skipped', changed: false, reason: event.reason });
    }
    case 'step-finished': {
      const got = getItem(state, event.stepId, event.host);
      const { command: _c, reason: _r, skipReason, ...rest } = got.item;
      const skipped = skipReason !== undefined && !event.changed;
      const reason = [skipped ? skipReason : undefined, event.note].filter((x) => x !== undefined).join('; ');
      return finish(got.state, {
        ...rest,
        status: skipped ? 'skipped' : 'done',
        changed: event.changed,
        durationMs: event.durationMs,
        ...(reason !== '' ? { reason } : {}),
      });
    }
    case 'step-failed': {
      const got = getItem(state, event.stepId, event.host);
      const { command: _c, skipReason: _s, ...rest } = got.item;
      const failure: RunFailure = {
        stepId: event.stepId,
        title: got.item.title,
        host: event.host,
        error: event.error,
        ...(event.command !== undefined ? { command: event.command } : {}),
        lastLines: event.lastLines.map(cleanLine),
        transcriptPath: event.transcriptPath,
        resumeCommand: event.resumeCommand,
      };
      const next = finish(got.state, { ...rest, status: 'failed', changed: false, reason: event.error });
      return { ...next, failures: [...next.failures, failure] };
    }
    case 'run-finished': {
      // Nothing runs any more: a skipped step that never reported its end is shown as skipped,
      // anything else still marked running did not finish (counted as not run).
      let next = state;
      for (const it of runningItems(state)) {
        const { command: _c, skipReason, ...rest } = it;
        next =
          skipReason !== undefined
            ? finish(next, { ...rest, status: 'skipped', changed: false, reason: skipReason })
            : putItem(next, { ...rest, status: 'pending' });
      }
      const notRun = next.order.filter((k) => next.items[k]?.status === 'pending').length;
      return {
        ...next,
        output: {},
        summary: {
          ok: event.ok,
          changed: event.changed,
          unchanged: event.unchanged,
          failed: event.failed,
          notRun,
          durationMs: event.durationMs,
          transcriptPath: event.transcriptPath,
        },
      };
    }
    default: {
      const never: never = event;
      return never;
    }
  }
}

/** Fold a whole sequence (tests, replays). */
export function foldRun(events: EngineEvent[], state: RunState = initialRunState): RunState {
  return events.reduce(reduceRun, state);
}

/** The items running now, in run order. */
export function runningItems(state: RunState): RunItem[] {
  return state.order.map((k) => state.items[k]).filter((it): it is RunItem => it !== undefined && it.status === 'running');
}

/** How many items have reached an end state, of how many. */
export function progress(state: RunState): { finished: number; total: number } {
  const total = state.order.length;
  const finished = state.order.filter((k) => {
    const it = state.items[k];
    return it !== undefined && isFinished(it);
  }).length;
  return { finished, total };
}

/** "1.2s", "2m 03s", "350ms". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const totalSeconds = Math.round(ms / 1000);
  const m = Math.floor(totalSeconds / 60);
  const s = totalSeconds % 60;
  return `${m}m ${String(s).padStart(2, '0')}s`;
}
