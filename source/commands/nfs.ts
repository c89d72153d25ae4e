/**
 * ha-setup nfs: the vendor guides' NFS helper script as a non-interactive subcommand, run ON the
 * server it configures (no SSH, no server table needed):
 *
 *   ha-setup nfs server <app ip> [<app ip> ...]   export the shared directory to these app servers
 *   ha-setup nfs client <nfs vip>                 mount the shared directory from the NFS VIP
 *
 * It runs the same steps as the nfs runbook (server: nfs.packages + nfs.export; client:
 * nfs.mount) against this machine. Without --yes it only prints the plan (every command and
 * file diff) and changes nothing; with --yes it applies it. Options come from --config
 * (options.nfs of a cluster file: server kernel|ganesha, exportDir, mountPath, fsid ...), else
 * the defaults (kernel server, /usr/safenet/ccc/packages). Replication needs both NFS servers:
 * use `ha-setup apply --runbook nfs` from the jump host for that.
 * Bad arguments: one usage line on stderr, exit 2. `ha-setup nfs help` prints this help.
 */
import ipaddr from 'ipaddr.js';
import type { CliIO, CommandArgs } from '../cli.js';
import { runRunbooks } from '../engine/runner.js';
import type { Runbook } from '../engine/step.js';
import type { Inventory } from '../inventory/types.js';
import { resolveInventory } from '../inventory/load.js';
import { createPlainRenderer } from '../render/plain.js';
import { LocalTransport } from '../transport/local.js';
import { REMOTE_BACKUP_DIR } from '../transport/ssh.js';
import { NFS_CLIENT_STEPS, NFS_SERVER_STEPS } from '../../runbooks/nfs.js';

export const USAGE = 'usage: ha-setup nfs server <app ip> [<app ip> ...] | ha-setup nfs client <nfs vip>  [--yes] [--config FILE]';

export const HELP = `${USAGE}

Run on the server itself (as root, or a user with sudo -n), like the guides' helper script:
  server  installs the NFS server (options.nfs.server: kernel, or ganesha) and exports the
          shared directory (options.nfs.exportDir, default /usr/safenet/ccc/packages) to the
          given app server addresses only, with a stable fsid (options.nfs.fsid)
  client  installs the NFS client and mounts <nfs vip>:<exportDir> on options.nfs.mountPath
          (fstab: nfs4 hard,_netdev; mounted now)
Without --yes: prints the plan (commands and file diffs) and changes nothing.
With --yes: applies it. Replaced files are kept under ${REMOTE_BACKUP_DIR}.
`;

export interface NfsRequest {
  mode: 'server' | 'client';
  addresses: string[];
}

/** The request, or null for a usage error. */
export function parseNfsArgs(positionals: string[]): NfsRequest | null {
  const [mode, ...addresses] = positionals;
  if (mode !== 'server' && mode !== 'client') return null;
  if (addresses.length === 0 || !addresses.every((a) => ipaddr.isValid(a))) return null;
  if (mode === 'client' && addresses.length !== 1) return null;
  return { mode, addresses };
}

/** The table the local run uses: this machine as nfs_primary (server) or app1 (client). */
export function localInventory(req: NfsRequest, base?: Pick<Inventory, 'cluster' | 'options'>): Inventory {
  const servers: Record<string, string> =
    req.mode === 'server'
      ? { nfs_primary: '127.0.0.1', ...Object.fromEntries(req.addresses.map((a, i) => [`app${i + 1}`, a])) }
      : { app1: '127.0.0.1', nfs_vip: req.addresses[0]! };
  return { cluster: base?.cluster ?? `local-nfs-${req.mode}`, topology: 'lb', partial: true, servers, ssh: {}, options: base?.options ?? {} };
}

export function localRunbook(req: NfsRequest): Runbook {
  return {
    id: `nfs-${req.mode}`,
    title: `NFS ${req.mode} (this machine)`,
    description: "the guides' NFS helper script",
    steps: req.mode === 'server' ? NFS_SERVER_STEPS : NFS_CLIENT_STEPS,
  };
}

export async function run(args: CommandArgs, io: CliIO): Promise<number> {
  if (args.values.help || args.positionals[0] === 'help') {
    io.stdout.write(HELP);
    return 0;
  }
  const req = parseNfsArgs(args.positionals);
  if (!req) {
    io.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const base = args.values.config ? await resolveInventory({ config: args.values.config }, io.env) : undefined;
  const inventory = localInventory(req, base);
  const apply = Boolean(args.values.yes) && !args.values['dry-run'];
  const sink = createPlainRenderer(io.stdout, { color: !io.env.NO_COLOR && Boolean(io.stdout.isTTY) });
  const result = await runRunbooks({
    runbooks: [localRunbook(req)],
    inventory,
    transport: (host) => new LocalTransport({ name: host.alias, env: io.env, backupDir: REMOTE_BACKUP_DIR }),
    events: sink,
    mode: apply ? 'apply' : 'plan',
    env: io.env,
    resumeCommand: ['ha-setup', 'nfs', req.mode, ...req.addresses, '--yes'].join(' '),
    command: ['ha-setup', 'nfs', req.mode, ...req.addresses].join(' '),
    note: (line) => io.stderr.write(`${line}\n`),
  });
  if (!apply && result.ok && result.changed > 0) io.stdout.write(`To apply: ha-setup nfs ${req.mode} ${req.addresses.join(' ')} --yes\n`);
  return result.ok ? 0 : 1;
}
