/**
 * ha-setup apply: runs the runbooks. Without --yes it first shows the plan (read-only) and asks
 * once; with --dry-run it only shows the plan. Re-running after a failure converges: steps
 * whose facts say they are done plan nothing. When the last run failed, a terminal without
 * --yes is offered Resume at the failed step / Start over / Cancel; otherwise one line says it
 * resumes there. On a terminal a failed step opens Retry / Skip / Show full log / Quit.
 */
import type { CliIO, CommandArgs } from '../cli.js';
import type { Runbook } from '../engine/step.js';
import type { Inventory } from '../inventory/types.js';
import { lastFailure } from '../ui/last-failure.js';
import { askYesNo } from './prompt.js';
import { chooseRunbooks, loadTable, resumeDecision, runSession } from './session.js';

export async function run(args: CommandArgs, io: CliIO): Promise<number> {
  const inventory = await loadTable(args, io);
  return applyFlow(args, io, inventory, chooseRunbooks(args));
}

/** Plan, ask once (unless --yes), apply: what apply and uninstall share. */
export async function applyFlow(
  args: CommandArgs,
  io: CliIO,
  inventory: Inventory,
  runbooks: Runbook[],
  verb = 'Apply',
): Promise<number> {
  if (args.values['dry-run']) {
    const { result } = await runSession('plan', args, io, inventory, runbooks);
    return result.ok ? 0 : 1;
  }
  const from = await resumeDecision(args, io, inventory, runbooks);
  if (from === 'cancel') {
    io.stderr.write('Cancelled; nothing was applied.\n');
    return 1;
  }
  const session = from ? { fromStep: from } : {};
  if (!args.values.yes) {
    const planned = await runSession('plan', args, io, inventory, runbooks, session);
    if (!planned.result.ok) return 1;
    // After a failed run, apply even with nothing to change: it records the failed step as done.
    if (planned.result.changed === 0 && !lastFailure(inventory, runbooks, io.env)) {
      io.stdout.write('Nothing to change: every step is already done.\n');
      return 0;
    }
    const go = await askYesNo(io, `${verb} ${planned.result.changed} change(s) to ${inventory.cluster}?`, '--yes');
    if (!go) {
      io.stderr.write('Not applied.\n');
      return 1;
    }
  }
  const { result } = await runSession('apply', args, io, inventory, runbooks, session);
  return result.ok ? 0 : 1;
}
