/**
 * Command-line entry. Parses flags with node:util parseArgs and loads the command's module
 * on demand: --help and --version never import Ink, React, ssh2 or zx.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { readFileSync } from 'node:fs';

export interface CliIO {
  stdout: NodeJS.WriteStream | { write(s: string): unknown; isTTY?: boolean };
  stderr: NodeJS.WriteStream | { write(s: string): unknown; isTTY?: boolean };
  stdin: NodeJS.ReadStream;
  env: NodeJS.ProcessEnv;
}

export interface CommandArgs {
  /** Positional words after the command name. */
  positionals: string[];
  values: GlobalFlags;
}

export interface GlobalFlags {
  config?: string;
  cluster?: string;
  yes?: boolean;
  json?: boolean;
  format?: string;
  runbook?: string[];
  'dry-run'?: boolean;
  'accept-new-host-keys'?: boolean;
  'known-hosts'?: string;
  'ssh-config'?: string;
  identity?: string;
  user?: string;
  hosts?: string;
  topology?: string;
  out?: string;
  force?: boolean;
  'purge-data'?: string;
  'allow-data-wipe'?: string;
  /** drill: the fault to inject (stop-postgres, stop-keepalived, cut-link, freeze, reboot). */
  fault?: string;
  /** status: refresh until Ctrl-C; the interval in seconds is the positional after it (default 2). */
  watch?: boolean;
  help?: boolean;
  version?: boolean;
}

export type CommandModule = { run(args: CommandArgs, io: CliIO): Promise<number> };

const COMMANDS: Record<string, { summary: string; load: () => Promise<CommandModule> }> = {
  wizard: { summary: 'Interactive: server table, checks, plan, run (the default)', load: () => import('./commands/wizard.js') },
  table: { summary: 'Print the filled-in server table (--format text|md|csv|json)', load: () => import('./commands/table.js') },
  plan: { summary: 'Gather facts (read-only) and show, per host, every command and file diff', load: () => import('./commands/plan.js') },
  apply: { summary: 'Run runbooks (--runbook NAME, repeatable; default: all in order)', load: () => import('./commands/apply.js') },
  status: {
    summary: 'Live health: VIP holders, PostgreSQL roles and lag, keepalived, HAProxy backends, NFS, last run (--json, --watch [SEC]); exit 1 on a problem', load: () => import('./commands/status.js'),
  },
  runbooks: { summary: 'List the runbooks and their steps', load: () => import('./commands/runbooks.js') },
  nfs: { summary: "The guides' NFS helper on this server: nfs server <app ip>... | nfs client <nfs vip> (plan; --yes applies)", load: () => import('./commands/nfs.js') },
  uninstall: {
    summary: 'Undo what ha-setup set up: unmount the share, stop services, restore config files (data kept)',
    load: () => import('./commands/uninstall.js'),
  },
  lab: { summary: 'Local rehearsal servers: lab up [--hosts N|--topology lb|k8s], lab down, lab status, lab fault', load: () => import('./commands/lab.js') },
  drill: { summary: 'Break a pair on purpose and measure the failover: drill db|nfs [--fault KIND] (VIP move, RTO, RPO)', load: () => import('./commands/drill.js') },
  rejoin: { summary: 'After a failover: the old DB primary becomes a standby of the new one (rejoin db; pg_rewind)', load: () => import('./commands/rejoin.js') },
};

const FLAGS = {
  config: { type: 'string', short: 'c' },
  cluster: { type: 'string' },
  yes: { type: 'boolean', short: 'y' },
  json: { type: 'boolean' },
  format: { type: 'string', short: 'f' },
  runbook: { type: 'string', short: 'r', multiple: true },
  'dry-run': { type: 'boolean' },
  'accept-new-host-keys': { type: 'boolean' },
  'known-hosts': { type: 'string' },
  'ssh-config': { type: 'string' },
  identity: { type: 'string', short: 'i' },
  user: { type: 'string', short: 'u' },
  hosts: { type: 'string' },
  topology: { type: 'string' },
  out: { type: 'string', short: 'o' },
  force: { type: 'boolean' },
  'purge-data': { type: 'string' },
  'allow-data-wipe': { type: 'string' },
  fault: { type: 'string' },
  watch: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const satisfies ParseArgsConfig['options'];

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export function helpText(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const cmds = Object.entries(COMMANDS)
    .map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`)
    .join('\n');
  return `ha-setup ${version()}: stand up and keep healthy a PostgreSQL + keepalived + NFS + HAProxy HA stack over SSH

Usage: ha-setup [command] [flags]

Commands:
${cmds}

Flags:
  -c, --config FILE           server table and options from a YAML file (non-interactive)
      --cluster NAME          saved cluster to use (default: "default")
  -y, --yes                   answer yes to confirmations
      --json                  machine-readable output where the output is data
  -f, --format FMT            table format: text, md, csv, json
  -r, --runbook NAME          runbook to plan/apply (repeatable)
      --dry-run               apply: show the plan only (same as \`plan\`)
      --accept-new-host-keys  trust SSH host keys not yet in known_hosts (a changed key is always refused)
      --known-hosts FILE      known_hosts file (default ~/.ssh/known_hosts)
      --ssh-config FILE       ssh config file (default ~/.ssh/config)
  -i, --identity FILE         SSH private key
  -u, --user NAME             SSH login user (default: from ssh config, else root)
      --purge-data CLUSTER    uninstall: also delete the database and NFS data directories; type
                              the cluster's name to confirm
      --allow-data-wipe HOST  let the standby step empty HOST's data directory although the
                              data guard found data there; type the standby's host name
      --fault KIND            drill: stop-postgres, stop-keepalived, cut-link, freeze, reboot
      --watch [SECONDS]       status: refresh every SECONDS (default 2) until Ctrl-C; status exits
                              0 when healthy, 1 when it found a problem
  -h, --help                  this help
  -v, --version               the version

Examples:
  npx ha-setup                                  the guided wizard
  npx ha-setup table --config cluster.yaml -f md
  npx ha-setup plan --config cluster.yaml
  npx ha-setup apply --config cluster.yaml --yes
  npx ha-setup lab up --hosts 3
`;
}

export async function main(argv: string[], io: CliIO = process as unknown as CliIO): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: FLAGS, allowPositionals: true, strict: true });
  } catch (e) {
    io.stderr.write(`ha-setup: ${(e as Error).message.split('\n')[0]} (see ha-setup --help)\n`);
    return 2;
  }
  const values = parsed.values as GlobalFlags;
  if (values.version) {
    io.stdout.write(`${version()}\n`);
    return 0;
  }
  const [first, ...rest] = parsed.positionals;
  if (values.help || first === 'help') {
    io.stdout.write(helpText());
    return 0;
  }
  const name = first ?? 'wizard';
  const command = COMMANDS[name];
  if (!command) {
    io.stderr.write(`ha-setup: unknown command "${name}" (commands: ${Object.keys(COMMANDS).join(', ')})\n`);
    return 2;
  }
  const mod = await command.load();
  try {
    return await mod.run({ positionals: rest, values }, io);
  } catch (e) {
    const err = e as Error;
    io.stderr.write(`ha-setup ${name}: ${err.message}\n`);
    if (io.env.HA_SETUP_DEBUG) io.stderr.write(`${err.stack}\n`);
    return 1;
  }
}
