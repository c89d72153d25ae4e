/**
 * ha-setup rejoin db --config FILE [--yes] [--allow-data-wipe HOST] [--json]
 *
 * After a failover: the old primary becomes a streaming standby of the new one (pg_rewind, or
 * with --allow-data-wipe <its host name> a fresh base backup). See source/drill/rejoin.ts.
 */
import type { CliIO, CommandArgs } from '../cli.js';
import { runRejoin } from '../drill/rejoin.js';
import { createTransportPool } from '../transport/connect.js';
import { askYesNo } from './prompt.js';
import { loadTable } from './session.js';

const USAGE = `Usage: ha-setup rejoin db --config FILE [--yes] [--allow-data-wipe HOST] [--json]
  The server that lost the VIP (the old primary) becomes a streaming standby of the primary
  holding the VIP: pg_rewind first; a fresh base backup only with --allow-data-wipe <its host name>.`;

export async function run(args: CommandArgs, io: CliIO): Promise<number> {
  const [pair, ...extra] = args.positionals;
  if (pair === undefined) {
    io.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (pair !== 'db' || extra.length) {
    io.stderr.write(`ha-setup rejoin: unknown "${[pair, ...extra].join(' ')}" (only the DB pair rejoins)\n${USAGE}\n`);
    return 2;
  }
  const inventory = await loadTable(args, io);
  if (!args.values.yes) {
    const go = await askYesNo(io, `Turn the DB server that does not hold the VIP into a standby of the one that does (its diverged writes are discarded)?`, '--yes');
    if (!go) {
      io.stderr.write('Not rejoined.\n');
      return 1;
    }
  }
  const pool = createTransportPool(inventory.ssh, { env: io.env, acceptNewHostKeys: Boolean(args.values['accept-new-host-keys']) });
  try {
    const r = await runRejoin({
      inventory,
      env: io.env,
      transport: (h) => pool.get(h),
      allowDataWipe: args.values['allow-data-wipe'],
      log: (line) => io.stderr.write(`${line}\n`),
    });
    if (args.values.json) io.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    else {
      io.stdout.write(
        r.method === 'already'
          ? `${r.rejoined.alias} already streams from ${r.primary.alias}: nothing to do\n`
          : `${r.rejoined.alias} (${r.rejoined.address}) is a streaming standby of ${r.primary.alias} (${r.primary.address}) again, by ${r.method} in ${r.seconds.toFixed(1)} s${r.rewindProblem ? ` (pg_rewind not used: ${r.rewindProblem})` : ''}\n`,
      );
      if (r.tableHint) io.stdout.write(`note: ${r.tableHint}\n`);
    }
    return 0;
  } finally {
    await Promise.race([pool.closeAll(), new Promise((res) => setTimeout(res, 5000))]);
  }
}
