/**
 * `ha-setup` with no command: the guided flow. Stage 1 (this file today) is the server table;
 * the connectivity check, plan and run screens come after it, fed with the saved inventory.
 * Without a terminal it never draws a prompt that could hang: it names the flags to use instead.
 */
import type { CommandArgs, CliIO } from '../cli.js';
import { canPrompt } from '../ui/tty.js';

export const NO_TERMINAL =
  'ha-setup: no terminal for the wizard: pass --config FILE to run non-interactively (ha-setup apply --config FILE), or save a table with `ha-setup table import FILE`';

export async function run(_args: CommandArgs, io: CliIO): Promise<number> {
  if (!canPrompt({ stdin: io.stdin, stdout: io.stdout, env: io.env })) {
    io.stderr.write(`${NO_TERMINAL}\n`);
    return 2;
  }
  const { runWizard } = await import('../ui/run-wizard.js');
  const result = await runWizard(io as Parameters<typeof runWizard>[0]);
  if (!result.inventory) {
    io.stderr.write('ha-setup: quit; nothing was saved\n');
    return 130;
  }
  const inv = result.inventory;
  // Seam for the next stages (connectivity check, plan, run): they start here with `inv`.
  io.stdout.write(`Next: ha-setup plan --cluster ${inv.cluster}   (then ha-setup apply --cluster ${inv.cluster})\n`);
  return 0;
}
