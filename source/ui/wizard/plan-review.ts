/** The plan of a dry run, regrouped per host for the review screen. A pure fold; no Ink here. */
import type { EngineEvent, FileDiff } from '../../engine/events.js';
import type { Action } from '../../engine/step.js';

export interface HostStepPlan {
  stepId: string;
  title: string;
  actions: Action[];
  /** Files whose content changes (non-empty diffs). */
  diffs: FileDiff[];
  reason?: string;
  /** The plan could not be made (facts or plan failed). */
  error?: string;
}

export interface HostPlan {
  host: string;
  steps: HostStepPlan[];
  commands: number;
  writes: number;
  diffs: number;
  errors: number;
}

export function planByHost(events: EngineEvent[]): HostPlan[] {
  const titles = new Map<string, string>();
  const hosts = new Map<string, HostStepPlan[]>();
  const add = (host: string, p: HostStepPlan) => hosts.set(host, [...(hosts.get(host) ?? []), p]);
  for (const e of events) {
    if (e.type === 'run-started') {
      for (const s of e.steps) {
        titles.set(s.id, s.title);
        for (const h of s.hosts) if (!hosts.has(h)) hosts.set(h, []);
      }
    } else if (e.type === 'step-planned') {
      add(e.host, {
        stepId: e.stepId,
        title: titles.get(e.stepId) ?? e.stepId,
        actions: e.actions,
        diffs: e.diffs.filter((d) => d.diff !== ''),
        ...(e.reason !== undefined ? { reason: e.reason } : {}),
      });
    } else if (e.type === 'step-failed') {
      add(e.host, { stepId: e.stepId, title: titles.get(e.stepId) ?? e.stepId, actions: [], diffs: [], error: e.error });
    }
  }
  return [...hosts].map(([host, steps]) => ({
    host,
    steps,
    commands: steps.reduce((n, s) => n + s.actions.filter((a) => a.kind === 'run').length, 0),
    writes: steps.reduce((n, s) => n + s.actions.filter((a) => a.kind === 'write').length, 0),
    diffs: steps.reduce((n, s) => n + s.diffs.length, 0),
    errors: steps.filter((s) => s.error !== undefined).length,
  }));
}

export const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;
