/**
 * ha-setup uninstall: shows, per host, what will be unmounted, stopped, disabled, restored and
 * removed (the plan of the uninstall runbook), asks once, and runs it. Order: the share is
 * unmounted on every app server first (umount -f -l, fstab entry removed), then HAProxy,
 * keepalived, NFS, the standby, the primary. Configuration files go back to the backups taken
 * on apply. Data directories are kept unless --purge-data is given with the cluster's name.
 */
import type { CliIO, CommandArgs } from '../cli.js';
import { uninstallRunbook, withPurgeData } from '../../runbooks/uninstall.js';
import { applyFlow } from './apply.js';
import { loadTable } from './session.js';

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
  const options = typed ? withPurgeData(inventory.options, typed) : inventory.options;
  if (typed) io.stderr.write(`Data directories of cluster ${inventory.cluster} WILL BE DELETED (--purge-data).\n`);
  return applyFlow(args, io, { ...inventory, options }, [uninstallRunbook], 'Uninstall: make');
}
