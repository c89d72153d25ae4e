/**
 * Runs runbooks: steps in order, each step on all its hosts in parallel (bounded), facts
 * first, then a pure plan, then (in apply mode) the actions, verify() and a checkpoint.
 *
 * Events per host and step (what renderers fold):
 *   step-started, step-planned (actions + diffs), then
 *   - empty plan: step-skipped (reason); in apply mode verify() runs and step-finished follows
 *     (changed: false, note e.g. "verified (checkpoint)");
 *   - actions, plan mode: nothing more (step-planned is the last event for that host);
 *   - actions, apply mode: command-* / output / file-written events, then step-finished;
 *   - any failure (facts, plan, a command, verify): step-failed, always the last event.
 * After a step failed on some host, its other hosts finish, then the run stops. Failures of
 * steps are reported (events + RunResult), never thrown; what is thrown is bad input found
 * before anything runs (unknown aliases, a held lock, an unreadable secrets file).
 *
 * No Ink or React here.
 */
import { clusterDir } from '../paths.js';
import type { Inventory } from '../inventory/types.js';
import type { Transport } from '../transport/types.js';
import { CheckpointStore, ensurePrivateDir, inputHash } from './checkpoint.js';
import { contextOptions, createExecContext, createHostContext, StepRecorder, tableOf, type Table } from './context.js';
import { planDiffs } from './diff.js';
import type { EngineEvent, EventSink } from './events.js';
import { acquireLock } from './lock.js';
import { Redactor } from './redact.js';
import { SecretStore } from './secrets.js';
import type { Action, FactDef, FactMap, HostContext, HostRef, Plan, Runbook, Step } from './step.js';
import { newRunId, Transcript } from './transcript.js';

export interface RunOptions {
  runbooks: Runbook[];
  inventory: Inventory;
  /** The caller's connection pool. connect() is called once per host and run before its first command. */
  transport: (host: HostRef) => Transport;
  events: EventSink;
  mode: 'apply' | 'plan';
  /** Overrides HA_SETUP_HOME. */
  home?: string;
  env?: NodeJS.ProcessEnv;
  /** Hosts worked on at once within a step (default 8). */
  concurrency?: number;
  /** Shown on failure: how to run again (e.g. "ha-setup apply --config cluster.yaml"). */
  resumeCommand: string;
  /** The command line, for the lock and the transcript header (default "ha-setup <mode>"). */
  command?: string;
  /** Run only these step ids. */
  onlySteps?: string[];
  /** Start at this step id; every earlier step must be done with unchanged inputs on its hosts. */
  fromStep?: string;
  /** Lines worth telling the user that are not events (e.g. a stale lock taken over). */
  note?: (line: string) => void;
  /**
   * Apply mode: asked after a step failed on some hosts (its other hosts have finished).
   * 'retry' runs the step again on the failed hosts (fresh facts, fresh plan) and asks again if
   * it fails again; 'skip' records the step as skipped on those hosts (checkpoint status
   * 'skipped') and goes on; 'quit' stops the run. Without it (or in plan mode) the run stops.
   */
  onFailure?: (failure: StepFailure) => Promise<FailureDecision>;
}

export type FailureDecision = 'retry' | 'skip' | 'quit';

export interface StepFailure {
  stepId: string;
  title: string;
  runbookId: string;
  /** Hosts it failed on, in table order. */
  hosts: string[];
  /** The (redacted) error per failed host. */
  errors: Record<string, string>;
  /** First line of the error on the first failed host. */
  error: string;
  /** What skipping this step risks: the step's own `skipRisk` sentence or a generic one. */
  skipRisk: string;
  /** 1 on the first failure of this step in this run, 2 after one retry ... */
  attempt: number;
  transcriptPath: string;
}

/** What a skipped step risks when the step does not say (Step.skipRisk). */
export function genericSkipRisk(title: string, hosts: string[]): string {
  return `Later steps may rely on "${title}" having run on ${hosts.join(', ')}: they can fail or leave the cluster half set up. The next run tries this step again.`;
}

export interface RunResult {
  ok: boolean;
  runId: string;
  transcriptPath: string;
  /** Host-steps that changed something (plan mode: that would). */
  changed: number;
  unchanged: number;
  failed: number;
  /** Where the run stopped. */
  failedAt?: { stepId: string; hosts: string[] };
  /** Steps that failed and were skipped by onFailure (the run went on). */
  skipped: { stepId: string; hosts: string[] }[];
  durationMs: number;
}

interface Selected {
  runbook: Runbook;
  step: Step<FactMap>;
  hosts: HostRef[];
}

/** Map over items with at most `limit` running at once, results in input order. */
async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

/** Choose the steps, resolve their targets; throws on anything wrong before a run starts. */
export function selectSteps(
  runbooks: Runbook[],
  table: Table,
  options: Record<string, unknown>,
  cluster: string,
  filter: { onlySteps?: string[]; fromStep?: string; partial?: boolean; onLeftOut?: (line: string) => void } = {},
): Selected[] {
  const all: { runbook: Runbook; step: Step<FactMap> }[] = [];
  const seen = new Map<string, string>();
  for (const runbook of runbooks) {
    for (const step of runbook.steps) {
      const other = seen.get(step.id);
      if (other) throw new Error(`step id "${step.id}" is used twice (runbooks ${other} and ${runbook.id}); step ids must be unique`);
      seen.set(step.id, runbook.id);
      all.push({ runbook, step });
    }
  }
  const known = (id: string, flag: string): void => {
    if (!seen.has(id)) throw new Error(`${flag}: no step "${id}" in runbooks ${runbooks.map((r) => r.id).join(', ')} (steps: ${[...seen.keys()].join(', ')})`);
  };
  let chosen = all;
  if (filter.fromStep) {
    known(filter.fromStep, 'from step');
    chosen = chosen.slice(chosen.findIndex((s) => s.step.id === filter.fromStep));
  }
  if (filter.onlySteps) {
    filter.onlySteps.forEach((id) => known(id, 'only steps'));
    chosen = chosen.filter((s) => filter.onlySteps!.includes(s.step.id));
  }
  const selected: Selected[] = [];
  for (const { runbook, step } of chosen) {
    const aliases = step.targets({ hosts: table.hosts, options, addresses: table.addresses });
    // A partial table (Inventory.partial) lists only some roles on purpose: a step that needs a
    // server the table does not have is left out, and said so, instead of stopping the run.
    const missing = aliases.filter((a) => !table.hosts[a] && table.addresses[a] === undefined);
    if (filter.partial && missing.length > 0) {
      filter.onLeftOut?.(`left out step ${step.id} (runbook ${runbook.id}): the partial table has no ${missing.join(', ')}`);
      continue;
    }
    const hosts = aliases.map((alias) => {
      const h = table.hosts[alias];
      if (h) return h;
      if (table.addresses[alias] !== undefined) {
        throw new Error(`step ${step.id} (runbook ${runbook.id}) targets ${alias}, which is an address (VIP), not a server; fix the step's targets`);
      }
      throw new Error(`step ${step.id} (runbook ${runbook.id}) needs server "${alias}", which is not in the server table of cluster ${cluster}; add ${alias} to servers:`);
    });
    selected.push({ runbook, step, hosts: [...new Map(hosts.map((h) => [h.alias, h])).values()] });
  }
  return selected;
}

function redactAction(a: Action, red: (s: string) => string): Action {
  if (a.kind === 'run') return { ...a, title: red(a.title), script: red(a.script) };
  return {
    ...a,
    title: a.title === undefined ? undefined : red(a.title),
    path: red(a.path),
    content: red(a.content),
    previous: a.previous === null ? null : red(a.previous),
  };
}

export async function runRunbooks(opts: RunOptions): Promise<RunResult> {
  const started = Date.now();
  const env = opts.home ? { ...(opts.env ?? process.env), HA_SETUP_HOME: opts.home } : (opts.env ?? process.env);
  const inv = opts.inventory;
  const dir = clusterDir(inv.cluster, env);
  const table = tableOf(inv);
  const options = contextOptions(inv);
  const leftOut: string[] = [];
  const partial = { partial: inv.partial === true, onLeftOut: (line: string) => leftOut.push(line) };
  const selected = selectSteps(opts.runbooks, table, options, inv.cluster, { ...opts, ...partial });
  const apply = opts.mode === 'apply';
  const command = opts.command ?? `ha-setup ${opts.mode}`;
  const concurrency = opts.concurrency ?? 8;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`concurrency must be a whole number >= 1 (got ${concurrency})`);

  ensurePrivateDir(dir);
  const notes: string[] = [];
  const note = (line: string): void => {
    notes.push(line);
    opts.note?.(line);
  };
  const lock = acquireLock(dir, { cluster: inv.cluster, command, note });
  for (const line of leftOut) note(line);
  let transcript: Transcript | undefined;
  try {
    const secrets = new SecretStore(dir).check();
    const redactor = new Redactor().add(...secrets.all());
    const secret = (name: string) => {
      const s = secrets.get(name);
      redactor.add(s);
      return s;
    };
    const hostCtx = new Map<string, HostContext>();
    for (const h of Object.values(table.hosts)) {
      if (h) hostCtx.set(h.alias, createHostContext({ host: h, table, options, secret }));
    }
    const ctxOf = (h: HostRef): HostContext => hostCtx.get(h.alias)!;
    const hashOf = (step: Step<FactMap>, h: HostRef): string => inputHash(step.id, step.inputs?.(ctxOf(h)), h.address);

    // Re-open: a done checkpoint whose inputs changed, and every later step on that host.
    const checkpoints = new CheckpointStore(dir);
    const allSteps = selectSteps(opts.runbooks, table, options, inv.cluster, { partial: inv.partial === true });
    const reopenedHosts = new Set<string>();
    let reopenedAny = false;
    for (const { step, hosts } of allSteps) {
      for (const h of hosts) {
        const rec = checkpoints.get(step.id, h.alias);
        if (!rec) continue;
        let hash: string | null;
        try {
          hash = hashOf(step, h);
        } catch {
          hash = null; // reported when the step runs
        }
        if (rec.inputHash !== hash) reopenedHosts.add(h.alias);
        if (reopenedHosts.has(h.alias)) {
          checkpoints.set(step.id, h.alias, undefined);
          reopenedAny = true;
        }
      }
    }
    if (opts.fromStep) {
      for (const { step, hosts } of allSteps) {
        if (step.id === opts.fromStep) break;
        for (const h of hosts) {
          const status = checkpoints.get(step.id, h.alias)?.status;
          if (status !== 'done' && status !== 'skipped') {
            throw new Error(
              `cannot start at step ${opts.fromStep}: step ${step.id} is not done on ${h.alias} (or its inputs changed); start at ${step.id} instead`,
            );
          }
        }
      }
    }
    if (apply && reopenedAny) checkpoints.save();

    const runId = newRunId();
    const hostList = [...new Map(selected.flatMap((s) => s.hosts).map((h) => [h.alias, h])).values()];
    transcript = Transcript.create(dir, runId, redactor, {
      command,
      mode: opts.mode,
      cluster: inv.cluster,
      hosts: hostList,
      runbooks: opts.runbooks.map((r) => r.id),
    });
    const tr = transcript;
    for (const n of notes) tr.note(n);
    const emit: EventSink = (e: EngineEvent) => {
      try {
        opts.events(e);
      } catch (err) {
        tr.note(`event sink failed on ${e.type}: ${(err as Error).message}`);
      }
    };
    emit({
      type: 'run-started',
      runId,
      runbooks: opts.runbooks.map((r) => r.id),
      steps: selected.map((s) => ({ id: s.step.id, title: s.step.title, hosts: s.hosts.map((h) => h.alias) })),
      transcriptPath: tr.path,
      dryRun: !apply,
    });

    // Per host: one connection per run, facts cached by id (dropped after a change on that host).
    const transports = new Map<string, { t: Transport; ready: Promise<void> }>();
    const transportFor = async (h: HostRef): Promise<Transport> => {
      let entry = transports.get(h.alias);
      if (!entry) {
        const t = opts.transport(h);
        const made: { t: Transport; ready: Promise<void> } = { t, ready: t.connect() };
        // A failed connect is forgotten, so that a retry (onFailure) connects again.
        made.ready.catch(() => {
          if (transports.get(h.alias) === made) transports.delete(h.alias);
        });
        entry = made;
        transports.set(h.alias, entry);
      }
      await entry.ready;
      return entry.t;
    };
    const factCache = new Map<string, Map<string, { script: string; value: Promise<unknown> }>>();
    const gather = async (step: Step<FactMap>, h: HostRef, rec: StepRecorder): Promise<Record<string, unknown>> => {
      const defs = typeof step.facts === 'function' ? step.facts(ctxOf(h)) : step.facts;
      const cache = factCache.get(h.alias) ?? new Map();
      factCache.set(h.alias, cache);
      const entries = Object.entries(defs) as [string, FactDef<unknown>][];
      const scripts = new Map([...cache].map(([id, c]) => [id, c.script]));
      for (const [, def] of entries) {
        const known = scripts.get(def.id);
        scripts.set(def.id, def.script);
        if (known !== undefined && known !== def.script) {
          throw new Error(`fact id "${def.id}" is used for two different scripts (step ${step.id}); give each fact its own id`);
        }
      }
      // At most 4 probes at once per host (sshd allows 10 sessions per connection by default).
      const results = await mapLimit(entries, 4, ([, def]) => {
        const hit = cache.get(def.id);
        if (hit) return hit.value;
        const value = runFact(def, h, step.id, rec);
        cache.set(def.id, { script: def.script, value });
        return value;
      });
      return Object.fromEntries(entries.map(([key], i) => [key, results[i]]));
    };
    const runFact = async (def: FactDef<unknown>, h: HostRef, stepId: string, rec: StepRecorder): Promise<unknown> => {
      const t = await transportFor(h);
      const title = `fact ${def.id}`;
      rec.startCommand();
      tr.commandStarted(h.alias, stepId, 'fact', title, def.script, def.sudo ? 'root' : undefined);
      try {
        const res = await t.exec(def.script, {
          sudo: def.sudo,
          onLine: (stream, line) => {
            const l = redactor.redact(line);
            rec.line(stream, l);
            tr.output(h.alias, stream, l);
          },
        });
        tr.commandFinished(h.alias, stepId, res.code, res.durationMs, res.killed);
        return def.parse(res.stdout, res);
      } catch (e) {
        rec.failedCommand = title;
        throw e;
      }
    };

    const counts = { changed: 0, unchanged: 0, failed: 0 };
    let failedAt: RunResult['failedAt'];
    const skipped: RunResult['skipped'] = [];
    const errors = new Map<string, string>();

    const runHostStep = async (sel: Selected, h: HostRef): Promise<boolean> => {
      const { step } = sel;
      const t0 = Date.now();
      const rec = new StepRecorder();
      const ctx = ctxOf(h);
      const red = (s: string): string => redactor.redact(s);
      emit({ type: 'step-started', stepId: step.id, host: h.alias });
      const previous = checkpoints.get(step.id, h.alias);
      let hash = '';
      try {
        hash = hashOf(step, h);
        const facts = await gather(step, h, rec);
        rec.startCommand(); // what follows is not about the facts' output
        const plan: Plan = step.plan(facts as never, ctx);
        if (plan.actions.length === 0 && !plan.reason?.trim()) {
          throw new Error(`bug in runbook ${sel.runbook.id}: step ${step.id} planned nothing for ${h.alias} without saying why (an empty plan needs a reason)`);
        }
        const actions = plan.actions.map((a) => redactAction(a, red));
        const diffs = planDiffs(plan.actions).map((d) => ({ path: red(d.path), diff: red(d.diff) }));
        emit({ type: 'step-planned', stepId: step.id, host: h.alias, actions, reason: plan.reason ? red(plan.reason) : undefined, diffs });
        if (actions.length > 0) tr.planned(h.alias, step.id, actions, diffs, plan.reason);
        const empty = plan.actions.length === 0;
        if (empty) emit({ type: 'step-skipped', stepId: step.id, host: h.alias, reason: red(plan.reason!) });
        if (!apply) {
          tr.stepResult(h.alias, step.id, empty ? `nothing to do: ${plan.reason}` : `planned ${plan.actions.length} action(s)`);
          if (empty) counts.unchanged++;
          else counts.changed++;
          return true;
        }

        const exec = createExecContext(ctx, { transport: await transportFor(h), stepId: step.id, events: emit, redactor, transcript: tr, recorder: rec });
        if (!empty) {
          if (step.apply) await step.apply(plan, exec, facts as never);
          else {
            for (const a of plan.actions) {
              if (a.kind === 'run') await exec.run(a.title, a.script, { sudo: a.sudo, user: a.user });
              else await exec.write(a.path, a.content, { mode: a.mode, owner: a.owner, group: a.group });
            }
          }
        }
        rec.phase = 'verify';
        const verified = step.verify ? await step.verify(exec) : undefined;
        const wasDone = previous?.status === 'done' && previous.inputHash === hash;
        const noteParts = [
          wasDone ? (empty ? 'verified (checkpoint)' : 'checkpoint said done, but the facts differ: re-applied') : undefined,
          verified ? red(verified) : undefined,
        ].filter(Boolean);
        if (rec.changed) factCache.delete(h.alias);
        checkpoints.set(step.id, h.alias, { status: 'done', inputHash: hash, finishedAt: new Date().toISOString(), changed: rec.changed, runId });
        checkpoints.save();
        const durationMs = Date.now() - t0;
        tr.stepResult(h.alias, step.id, `done (${rec.changed ? 'changed' : 'no change'})${noteParts.length ? `: ${noteParts.join('; ')}` : ''}`);
        emit({ type: 'step-finished', stepId: step.id, host: h.alias, changed: rec.changed, durationMs, note: noteParts.length ? noteParts.join('; ') : undefined });
        if (rec.changed) counts.changed++;
        else counts.unchanged++;
        return true;
      } catch (e) {
        const err = redactor.redactError(e);
        errors.set(h.alias, err.message);
        counts.failed++;
        factCache.delete(h.alias);
        if (apply) {
          checkpoints.set(step.id, h.alias, { status: 'failed', inputHash: hash, finishedAt: new Date().toISOString(), changed: rec.changed, runId });
          try {
            checkpoints.save();
          } catch (saveErr) {
            tr.note(`could not save checkpoints: ${(saveErr as Error).message}`);
          }
        }
        tr.stepResult(h.alias, step.id, `FAILED: ${err.message}`);
        emit({
          type: 'step-failed',
          stepId: step.id,
          host: h.alias,
          error: err.message,
          command: rec.failedCommand,
          lastLines: [...rec.lastLines],
          transcriptPath: tr.path,
          resumeCommand: opts.resumeCommand,
        });
        return false;
      }
    };

    const red = (s: string): string => redactor.redact(s);
    /** Ask onFailure what to do about the failed hosts of a step (no hook, plan mode, or it threw: quit). */
    const decide = async (sel: Selected, failed: HostRef[], attempt: number): Promise<FailureDecision> => {
      if (!apply || !opts.onFailure) return 'quit';
      const hosts = failed.map((h) => h.alias);
      const errs = Object.fromEntries(hosts.map((a) => [a, errors.get(a) ?? 'failed']));
      const risk = sel.step.skipRisk;
      try {
        return await opts.onFailure({
          stepId: sel.step.id,
          title: sel.step.title,
          runbookId: sel.runbook.id,
          hosts,
          errors: errs,
          error: (errs[hosts[0]!] ?? '').split('\n')[0]!,
          skipRisk: risk?.trim() ? red(risk) : genericSkipRisk(sel.step.title, hosts),
          attempt,
          transcriptPath: tr.path,
        });
      } catch (e) {
        tr.note(`failure prompt failed: ${(e as Error).message}; stopping`);
        return 'quit';
      }
    };

    for (const sel of selected) {
      let hosts = sel.hosts;
      let failed: HostRef[] = [];
      for (let attempt = 1; ; attempt++) {
        const results = await mapLimit(hosts, concurrency, (h) => runHostStep(sel, h));
        failed = hosts.filter((_, i) => !results[i]);
        if (failed.length === 0) break;
        const decision = await decide(sel, failed, attempt);
        tr.note(`step ${sel.step.id} failed on ${failed.map((h) => h.alias).join(', ')}: ${decision === 'quit' ? 'stopping' : decision}`);
        if (decision === 'retry') {
          counts.failed -= failed.length; // counted again if it fails again
          hosts = failed;
          continue;
        }
        if (decision === 'skip') {
          const at = new Date().toISOString();
          for (const h of failed) {
            const rec = checkpoints.get(sel.step.id, h.alias);
            checkpoints.set(sel.step.id, h.alias, {
              status: 'skipped',
              inputHash: rec?.inputHash ?? '',
              finishedAt: at,
              changed: rec?.changed ?? false,
              runId,
            });
            emit({ type: 'step-skipped', stepId: sel.step.id, host: h.alias, reason: 'skipped after a failure (the next run tries it again)' });
          }
          checkpoints.save();
          counts.failed -= failed.length;
          skipped.push({ stepId: sel.step.id, hosts: failed.map((h) => h.alias) });
          failed = [];
        }
        break;
      }
      if (failed.length > 0) {
        failedAt = { stepId: sel.step.id, hosts: failed.map((h) => h.alias) };
        break;
      }
    }

    const ok = !failedAt;
    if (apply) {
      checkpoints.data.lastRun = { runId, ok, finishedAt: new Date().toISOString(), ...(failedAt ? { failed: failedAt } : {}) };
      checkpoints.save();
    }
    const durationMs = Date.now() - started;
    emit({ type: 'run-finished', ok, ...counts, durationMs, transcriptPath: tr.path });
    return { ok, runId, transcriptPath: tr.path, ...counts, failedAt, skipped, durationMs };
  } finally {
    transcript?.close();
    lock.release();
  }
}
