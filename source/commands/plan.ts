/**
 * ha-setup plan: gathers facts on every host (read-only) and shows, per host, the commands and
 * the unified diff of every file each step would change. Writes nothing on any server.
 */
import type { CliIO, CommandArgs } from '../cli.js';
import { planToJson } from '../render/plain.js';
import { chooseRunbooks, loadTable, runSession } from './session.js';

export async function run(args: CommandArgs, io: CliIO): Promise<number> {
  const inventory = await loadTable(args, io);
  const runbooks = chooseRunbooks(args);
  const json = Boolean(args.values.json);
  const { result, events } = await runSession('plan', args, io, inventory, runbooks, { json });
  if (json) io.stdout.write(`${JSON.stringify(planToJson(events), null, 2)}\n`);
  return result.ok ? 0 : 1;
}
