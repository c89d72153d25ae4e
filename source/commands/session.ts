/**
 * What plan and apply share: load the table, choose runbooks, open one SSH connection per
 * host, pick the renderer (Ink only on an interactive terminal), run, close everything.
 */
import type { CliIO, CommandArgs } from '../cli.js';
import { resolveInventory } from '../inventory/load.js';
import type { Inventory } from '../inventory/types.js';
import type { EngineEvent, EventSink } from '../engine/events.js';
import { runRunbooks, type RunOptions, type RunResult } from '../engine/runner.js';
import type { Runbook } from '../engine/step.js';
import { createTransportPool } from '../transport/connect.js';
import { createPlainRenderer } from '../render/plain.js';
import { canPrompt, isInteractive } from '../ui/tty.js';
import { describeFailure, lastFailure, type LastFailure, type ResumeChoice } from '../ui/last-failure.js';
import { RUNBOOKS, findRunbook } from '../../runbooks/index.js';
import { withDataWipeOverride } from '../../runbooks/lib/options.js';
import { askYesNo } from './prompt.js';

export async function loadTable(args: CommandArgs, io: CliIO): Promise<Inventory> {
  const inv = await resolveInventory({ config: args.values.config, cluster: args.values.cluster }, io.env);
  // Command-line SSH flags override the table's ssh settings for every host.
  const v = args.values;
  const ssh = { ...inv.ssh };
  if (v.user) ssh.user = v.user;
  if (v.identity) ssh.identity = v.identity;
  if (v['known-hosts']) ssh.knownHosts = v['known-hosts'];
  if (v['ssh-config']) ssh.configFile = v['ssh-config'];
  // The data-wipe override never comes from a file: only from the flag, with the host name typed.
  const options = v['allow-data-wipe'] ? withDataWipeOverride(inv.options, v['allow-data-wipe']) : inv.options;
  return { ...inv, ssh, options };
}

export function chooseRunbooks(args: CommandArgs): Runbook[] {
  const ids = args.values.runbook ?? [];
  return ids.length ? ids.flatMap((id) => id.split(',')).map((id) => findRunbook(id.trim())) : RUNBOOKS;
}

/** The command that runs the same thing again (shown on failure). */
export function resumeCommand(args: CommandArgs, mode: 'apply' | 'plan'): string {
  const v = args.values;
  const parts = ['ha-setup', mode];
  if (v.config) parts.push('--config', v.config);
  else if (v.cluster) parts.push('--cluster', v.cluster);
  for (const r of v.runbook ?? []) parts.push('--runbook', r);
  if (mode === 'apply') parts.push('--yes');
  return parts.join(' ');
}

type View = { sink: EventSink; done(): Promise<void>; decide?: RunOptions['onFailure'] };

async function renderer(io: CliIO, json: boolean, prompt: boolean): Promise<View> {
  const color = !io.env.NO_COLOR && Boolean((json ? io.stderr : io.stdout).isTTY);
  if (!isInteractive({ stdout: io.stdout, env: io.env, json })) {
    // Headless: never load Ink. With --json, progress goes to stderr and stdout carries data.
    return { sink: createPlainRenderer(json ? io.stderr : io.stdout, { color }), done: async () => {} };
  }
  const { renderRun } = await import('../ui/render-run.js');
  // The failure menu (Retry / Skip / Show full log / Quit) needs keys: only when stdin is a terminal too.
  return renderRun({ stdout: io.stdout, stderr: io.stderr, stdin: io.stdin, env: io.env, prompt: prompt && canPrompt(io) });
}

export interface SessionResult {
  result: RunResult;
  events: EngineEvent[];
}

export async function runSession(
  mode: 'apply' | 'plan',
  args: CommandArgs,
  io: CliIO,
  inventory: Inventory,
  runbooks: Runbook[],
  opts: { json?: boolean; quiet?: boolean; fromStep?: string } = {},
): Promise<SessionResult> {
  const pool = createTransportPool(inventory.ssh, {
    env: io.env,
    acceptNewHostKeys: Boolean(args.values['accept-new-host-keys']),
    onUnknownHostKey: (key) =>
      askYesNo(
        io,
        `${key.host}:${key.port} presents an unknown ${key.keyType} host key ${key.fingerprint}. Trust it and add it to known_hosts?`,
        '--accept-new-host-keys (after checking the fingerprint)',
      ),
  });
  const events: EngineEvent[] = [];
  const view: View = opts.quiet ? { sink: () => {}, done: async () => {} } : await renderer(io, Boolean(opts.json), mode === 'apply');
  try {
    const result = await runRunbooks({
      runbooks,
      inventory,
      transport: (host) => pool.get(host),
      events: (e) => {
        events.push(e);
        view.sink(e);
      },
      mode,
      env: io.env,
      resumeCommand: resumeCommand(args, 'apply'),
      command: ['ha-setup', mode, ...process.argv.slice(3)].join(' '),
      note: (line) => io.stderr.write(`${line}\n`),
      ...(view.decide ? { onFailure: view.decide } : {}),
      ...(opts.fromStep ? { fromStep: opts.fromStep } : {}),
    });
    return { result, events };
  } finally {
    await view.done();
    await pool.closeAll();
  }
}

/**
 * Before an apply: when the last run failed, ask (terminal, no --yes) whether to resume at the
 * failed step, start over or cancel; otherwise say in one line that it resumes there. Returns
 * the step to start at (resume), null (run everything), or 'cancel'.
 */
export async function resumeDecision(
  args: CommandArgs,
  io: CliIO,
  inventory: Inventory,
  runbooks: Runbook[],
  ask?: (f: LastFailure) => Promise<ResumeChoice>,
): Promise<string | null | 'cancel'> {
  const f = lastFailure(inventory, runbooks, io.env);
  if (!f) return null;
  if (!args.values.yes && canPrompt(io)) {
    const choose =
      ask ??
      (async (failure: LastFailure) => {
        const { askResume } = await import('../ui/ask-resume.js');
        return askResume(io, inventory.cluster, failure);
      });
    const choice = await choose(f);
    if (choice === 'cancel') return 'cancel';
    return choice === 'resume' ? f.stepId : null;
  }
  // Steps already done plan nothing, so running everything resumes at the failed step.
  io.stderr.write(`The last run of ${inventory.cluster} stopped at ${describeFailure(f)}: resuming there (steps already done are re-checked, not redone).\n`);
  return null;
}
