/**
 * `ha-setup` with no command: the guided flow. When the last run of a saved cluster failed, it
 * first offers to resume there (or start over, or go to the table wizard). Then the server
 * table wizard; after saving: connectivity check, runbooks, plan review, the run with its
 * failure menu, and the summary (source/ui/wizard/GuidedFlow.tsx).
 * Without a terminal it never draws a prompt that could hang: it names the flags to use instead.
 */
import type { CommandArgs, CliIO } from '../cli.js';
import type { Inventory } from '../inventory/types.js';
import { loadConfigFile } from '../inventory/load.js';
import { listClusters, loadCluster, saveCluster } from '../inventory/store.js';
import { canPrompt } from '../ui/tty.js';
import { lastFailure, type LastFailure } from '../ui/last-failure.js';
import { RUNBOOKS } from '../../runbooks/index.js';

export const NO_TERMINAL =
  'ha-setup: no terminal for the wizard: pass --config FILE to run non-interactively (ha-setup apply --config FILE), or save a table with `ha-setup table import FILE`';

/** The first saved cluster whose last run stopped at a failed step. */
export function clusterToResume(env: NodeJS.ProcessEnv): { inventory: Inventory; failure: LastFailure } | undefined {
  for (const name of listClusters(env)) {
    let inventory: Inventory | undefined;
    try {
      inventory = loadCluster(name, env);
    } catch {
      continue; // a broken saved table is reported when the user picks it
    }
    if (!inventory) continue;
    const failure = lastFailure(inventory, RUNBOOKS, env);
    if (failure) return { inventory, failure };
  }
  return undefined;
}

/**
 * "Rehearse on a local lab": the 7-host lab (ha-setup lab up --topology lb), its table saved as
 * cluster "lab". Undefined (after saying why) when this machine cannot run it.
 */
async function startLab(io: CliIO): Promise<Inventory | undefined> {
  const { labUp } = await import('../lab/index.js');
  io.stdout.write('Starting the lab: 7 Debian 12 hosts on this machine (the first start builds their image: about 75 s)\n');
  try {
    const info = await labUp({ topology: 'lb', env: io.env, log: (line) => io.stdout.write(`  ${line}\n`) });
    const inv = loadConfigFile(info.tableFile);
    saveCluster(inv, io.env);
    io.stdout.write(`Lab up. Its table is saved as cluster ${inv.cluster} (file ${info.tableFile}); ha-setup lab down removes the lab.\n`);
    return inv;
  } catch (e) {
    io.stderr.write(`ha-setup: the lab did not start: ${(e as Error).message}\n`);
    return undefined;
  }
}

export async function run(_args: CommandArgs, io: CliIO): Promise<number> {
  if (!canPrompt({ stdin: io.stdin, stdout: io.stdout, env: io.env })) {
    io.stderr.write(`${NO_TERMINAL}\n`);
    return 2;
  }
  const wio = io as Parameters<typeof import('../ui/run-wizard.js').runWizard>[0];
  const { runGuided } = await import('../ui/run-guided.js');
  const pending = clusterToResume(io.env);
  if (pending) {
    const { askResume } = await import('../ui/ask-resume.js');
    const choice = await askResume(wio, pending.inventory.cluster, pending.failure);
    if (choice !== 'cancel') {
      const fromStep = choice === 'resume' ? pending.failure.stepId : undefined;
      const guided = await runGuided(wio, pending.inventory, RUNBOOKS, fromStep ? { fromStep } : {});
      return guided.ended === 'ran' && guided.result?.ok ? 0 : 1;
    }
  }
  const { runWizard } = await import('../ui/run-wizard.js');
  const result = await runWizard(wio);
  if (result.lab) {
    const inv = await startLab(io);
    if (!inv) return 1;
    const guided = await runGuided(wio, inv, RUNBOOKS);
    return guided.ended === 'quit' || guided.result?.ok ? 0 : 1;
  }
  if (!result.inventory) {
    io.stderr.write('ha-setup: quit; nothing was saved\n');
    return 130;
  }
  const inv = result.inventory;
  if (!result.proceed) {
    io.stdout.write(`Saved. Next: ha-setup plan --cluster ${inv.cluster}   (then ha-setup apply --cluster ${inv.cluster})\n`);
    return 0;
  }
  const guided = await runGuided(wio, inv, RUNBOOKS);
  if (guided.ended === 'quit') {
    io.stdout.write(`Stopped before applying. Later: ha-setup apply --cluster ${inv.cluster}\n`);
    return 0;
  }
  return guided.result?.ok ? 0 : 1;
}
