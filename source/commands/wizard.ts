import type { CommandArgs, CliIO } from '../cli.js';

export async function run(_args: CommandArgs, io: CliIO): Promise<number> {
  io.stderr.write('ha-setup wizard: not built yet\n');
  return 1;
}
