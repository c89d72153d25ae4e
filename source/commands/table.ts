/**
 * ha-setup table [--config FILE | --cluster NAME] [--format text|md|csv|json] [--json]
 * ha-setup table import FILE [--force]
 * ha-setup table export [--config FILE | --cluster NAME] [--out FILE]
 *
 * Plain output, no Ink: it runs headless and in the Node smoke test.
 */
import { writeFileSync } from 'node:fs';
import type { CommandArgs, CliIO } from '../cli.js';
import { formatTable, parseFormat, type TableFormat } from '../inventory/format.js';
import { importConfigFile, resolveInventory, toYaml } from '../inventory/load.js';
import { InventoryError } from '../inventory/validate.js';

const USAGE = 'use: ha-setup table [--format text|md|csv|json], ha-setup table import FILE, ha-setup table export [--out FILE]';

class UsageError extends Error {}

function chosenFormat(values: CommandArgs['values']): TableFormat {
  if (values.json && values.format !== undefined && values.format !== 'json') {
    throw new UsageError(`--json and --format ${values.format} disagree: pass one of them`);
  }
  if (values.json) return 'json';
  try {
    return parseFormat(values.format ?? 'text');
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

async function print(args: CommandArgs, io: CliIO): Promise<number> {
  const format = chosenFormat(args.values);
  const inv = await resolveInventory(args.values, io.env);
  io.stdout.write(formatTable(inv, format));
  return 0;
}

async function importTable(args: CommandArgs, io: CliIO): Promise<number> {
  const [file, ...extra] = args.positionals.slice(1);
  if (!file || extra.length > 0) throw new UsageError(`table import takes one FILE (a YAML table): ${USAGE}`);
  if (args.values.cluster) throw new UsageError('table import saves the table under its own cluster: name; drop --cluster');
  const result = importConfigFile(file, { force: args.values.force }, io.env);
  const name = result.inventory.cluster;
  const count = Object.keys(result.inventory.servers).length;
  const what = { none: 'saved', same: 'unchanged', replaced: 'replaced' }[result.previous];
  const use = name === 'default' ? '' : ` (use it with --cluster ${name})`;
  io.stdout.write(`${what}: cluster "${name}", ${count} servers, in ${result.path}${use}\n`);
  return 0;
}

async function exportTable(args: CommandArgs, io: CliIO): Promise<number> {
  if (args.positionals.length > 1) throw new UsageError(`table export takes no FILE argument (use --out FILE): ${USAGE}`);
  const inv = await resolveInventory(args.values, io.env);
  const yaml = toYaml(inv);
  if (args.values.out) {
    writeFileSync(args.values.out, yaml);
    io.stderr.write(`wrote the table of cluster "${inv.cluster}" to ${args.values.out}\n`);
  } else {
    io.stdout.write(yaml);
  }
  return 0;
}

export async function run(args: CommandArgs, io: CliIO): Promise<number> {
  const sub = args.positionals[0];
  try {
    if (sub === undefined) return await print(args, io);
    if (sub === 'import') return await importTable(args, io);
    if (sub === 'export') return await exportTable(args, io);
    throw new UsageError(`unknown subcommand "${sub}": ${USAGE}`);
  } catch (e) {
    if (e instanceof InventoryError) {
      for (const line of e.lines) io.stderr.write(`${line}\n`);
      return 1;
    }
    if (e instanceof UsageError) {
      io.stderr.write(`ha-setup table: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}
