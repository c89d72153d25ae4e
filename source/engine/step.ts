/**
 * A step is data: what it targets, the facts it reads, a pure plan() from facts to actions
 * (an empty plan means "already done", with the reason), and optional verify() and undo().
 * A runbook is an ordered list of steps. See source/engine/runner.ts for how they run.
 */
import type { ExecResult, Transport } from '../transport/types.js';
import type { Secret } from './shell.js';

/** One server of the table, as a step sees it. */
export interface HostRef {
  /** The table's alias: db_primary, app1, lb ... */
  alias: string;
  /** IP or hostname from the table. */
  address: string;
}

/** A read-only probe of a host: a script and a parser for its output. */
export interface FactDef<T> {
  id: string;
  /** Read-only shell script (runs under bash -s, set -euo pipefail). */
  script: string;
  sudo?: boolean;
  /** Parse the output. A non-zero exit is passed here too: facts decide what it means. */
  parse(stdout: string, result: ExecResult): T;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type FactMap = Record<string, FactDef<any>>;
export type FactValues<M extends FactMap> = { [K in keyof M]: M[K] extends FactDef<infer T> ? T : never };

export type Action =
  | {
      kind: 'run';
      /** One line for the plan view: what this command does. */
      title: string;
      script: string;
      sudo?: boolean;
      user?: string;
    }
  | {
      kind: 'write';
      title?: string;
      path: string;
      content: string;
      mode: number;
      owner?: string;
      group?: string;
      /** Current content (from a fact), for the diff; null when the file does not exist. */
      previous: string | null;
    };

export interface Plan {
  actions: Action[];
  /** Why nothing needs doing (required when actions is empty), or a note on what will. */
  reason?: string;
}

export const done = (reason: string): Plan => ({ actions: [], reason });
export const planOf = (...actions: (Action | false | null | undefined)[]): Plan => ({
  actions: actions.filter((a): a is Action => Boolean(a)),
});

/** What every phase of a step may read: the host, the whole table, options, secrets. */
export interface HostContext {
  host: HostRef;
  /** All hosts of the table by alias (e.g. ctx.hosts.db_standby?.address). */
  hosts: Record<string, HostRef | undefined>;
  /** The VIPs and other address-only entries of the table, by alias. */
  addresses: Record<string, string | undefined>;
  /** Runbook options from the config (app user, db names, PostgreSQL version ...). */
  options: Record<string, unknown>;
  /** Generated secrets by name; created (0600, on the jump host) on first use. */
  secret(name: string): Secret;
}

export interface ExecContext extends HostContext {
  transport: Transport;
  /** Run a command with events, transcript and redaction (what apply/verify should use). */
  run(title: string, script: string, opts?: { sudo?: boolean; user?: string; check?: boolean }): Promise<ExecResult>;
  /** Write a file with events, transcript and a backup of what it replaces. */
  write(path: string, content: string, opts: { mode: number; owner?: string; group?: string }): Promise<void>;
  log(line: string): void;
}

export interface Step<M extends FactMap = FactMap> {
  id: string;
  title: string;
  /** Aliases of the table this step runs on (missing aliases are an error at plan time). */
  targets: (ctx: {
    hosts: Record<string, HostRef | undefined>;
    options: Record<string, unknown>;
    /** Every alias of the table, VIPs included (the runner always passes it). */
    addresses?: Record<string, string | undefined>;
  }) => string[];
  /** The facts it reads, gathered (read-only) before plan(). May depend on the host. */
  facts: M | ((ctx: HostContext) => M);
  /** The table/option values it depends on: a change re-opens a finished checkpoint. */
  inputs?: (ctx: HostContext) => unknown;
  /** Pure: facts in, actions out. Empty = already done (reason says why). */
  plan: (facts: FactValues<M>, ctx: HostContext) => Plan;
  /** Custom apply; by default the plan's actions are carried out in order. */
  apply?: (plan: Plan, ctx: ExecContext, facts: FactValues<M>) => Promise<void>;
  /** Checks the real outcome on the server; throws with a one-line reason when wrong. */
  verify?: (ctx: ExecContext) => Promise<string | void>;
  /** What skipping this step after a failure risks (shown by the failure menu). */
  skipRisk?: string;
  /** Reverse the step where that is possible. */
  undo?: (ctx: ExecContext) => Promise<void>;
}

export interface Runbook {
  id: string;
  title: string;
  /** What procedure of the vendor guides this automates. */
  description: string;
  steps: Step<FactMap>[];
}

export function defineStep<M extends FactMap>(step: Step<M>): Step<FactMap> {
  return step as unknown as Step<FactMap>;
}
