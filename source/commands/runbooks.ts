/** ha-setup runbooks: the runbooks apply runs by default, in order, and their steps. */
import type { CliIO, CommandArgs } from '../cli.js';
import { RUNBOOKS } from '../../runbooks/index.js';

export async function run(args: CommandArgs, io: CliIO): Promise<number> {
  if (args.values.json) {
    const data = RUNBOOKS.map((r) => ({ id: r.id, title: r.title, description: r.description, steps: r.steps.map((s) => ({ id: s.id, title: s.title })) }));
    io.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
    return 0;
  }
  for (const r of RUNBOOKS) {
    io.stdout.write(`${r.id}: ${r.title}\n  ${r.description}\n`);
    for (const s of r.steps) io.stdout.write(`    ${s.id.padEnd(28)} ${s.title}\n`);
  }
  return 0;
}
