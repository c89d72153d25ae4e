/**
 * ha-setup uninstall: shows, per host, what will be unmounted, stopped, disabled, restored and
 * removed (the plan of the uninstall runbook), asks once, and runs it. Order: the share is
 * unmounted on every app server first (umount -f -l, fstab entry removed), then HAProxy,
 * keepalived, NFS, the standby, the primary. Configuration files go back to the backups taken
 * on apply. Data directories are kept unless --purge-data is given with the cluster's name.
 *
 * On a terminal without --yes the plan is shown on the uninstall screen (source/ui/
 * UninstallScreen.tsx), which also offers the purge with the cluster's name typed; the run then
 * shows in the usual run view. Otherwise (--yes, --dry-run, --json, no terminal) the plain path
 * of apply: the plan in text and a yes/no prompt, or an error naming --yes.
 */
import type { CliIO, CommandArgs } from '../cli.js';
import type { EngineEvent } from '../engine/events.js';
import type { Inventory } from '../inventory/types.js';
import { uninstallRunbook, withPurgeData } from '../../runbooks/uninstall.js';
import { canPrompt, isInteractive } from '../ui/tty.js';
import { planByHost } from '../ui/wizard/plan-review.js';
import { applyFlow } from './apply.js';
import { loadTable, runSession } from './session.js';

export async function run(args: CommandArgs, io: CliIO): Promise<number> {
  const inventory = await loadTable(args, io);
  const typed = args.values['purge-data'];
  if (typed !== undefined && typed !== inventory.cluster) {
    io.stderr.write(
      `ha-setup uninstall: --purge-data "${typed}" does not match the cluster name "${inventory.cluster}": ` +
        `type the cluster's name to confirm deleting its data directories, or leave --purge-data out to keep the data\n`,
    );
    return 2;
  }
  const purge = typed !== undefined;
  if (wantsScreen(args, io)) return onScreen(args, io, inventory, purge);
  if (purge) io.stderr.write(`Data directories of cluster ${inventory.cluster} WILL BE DELETED (--purge-data).\n`);
  return applyFlow(args, io, purging(inventory, purge), [uninstallRunbook], 'Uninstall: make');
}

/** The uninstall screen: a person at a terminal (stdin and stdout, not CI), no --yes, --dry-run or --json. */
export function wantsScreen(args: Pick<CommandArgs, 'values'>, io: Pick<CliIO, 'stdin' | 'stdout' | 'env'>): boolean {
  return !args.values.yes && !args.values['dry-run'] && canPrompt(io) && isInteractive({ stdout: io.stdout, env: io.env, json: args.values.json });
}

/** The inventory whose runbook options ask for the purge (the cluster's own name, checked above). */
function purging(inventory: Inventory, purge: boolean): Inventory {
  return purge ? { ...inventory, options: withPurgeData(inventory.options, inventory.cluster) } : inventory;
}

/** Plan (read-only, with the purge so that the data directories show), the screen, then the run. */
async function onScreen(args: CommandArgs, io: CliIO, inventory: Inventory, purgeChosen: boolean): Promise<number> {
  io.stderr.write(`Planning the uninstall of ${inventory.cluster} (read-only)…\n`);
  const planned = await runSession('plan', args, io, purging(inventory, true), [uninstallRunbook], { quiet: true });
  if (!planned.result.ok) {
    for (const e of planned.events) if (e.type === 'step-failed') io.stderr.write(`✗ ${e.host} ${e.stepId}: ${e.error.split('\n')[0]}\n`);
    io.stderr.write(`The uninstall plan failed (see above); nothing was changed. Transcript: ${planned.result.transcriptPath}\n`);
    return 1;
  }
  const hosts = planByHost(planned.events);
  if (!hasActions(planned.events)) {
    io.stdout.write(`Nothing to uninstall on ${inventory.cluster}: no host has anything of ha-setup's left.\n`);
    return 0;
  }
  const { askUninstall } = await import('../ui/UninstallScreen.js');
  const choice = await askUninstall(io, { cluster: inventory.cluster, hosts, purgeChosen });
  if (choice === 'cancel') {
    io.stderr.write('Cancelled; nothing was changed.\n');
    return 1;
  }
  if (choice.purge) io.stderr.write(`Data directories of cluster ${inventory.cluster} WILL BE DELETED (--purge-data).\n`);
  const { result } = await runSession('apply', args, io, purging(inventory, choice.purge), [uninstallRunbook]);
  return result.ok ? 0 : 1;
}

const hasActions = (events: EngineEvent[]): boolean => events.some((e) => e.type === 'step-planned' && e.actions.length > 0);
