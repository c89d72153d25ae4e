/**
 * ha-setup drill db [--fault stop-postgres|stop-keepalived|cut-link|freeze|reboot] [--json] [--yes]
 * ha-setup drill nfs [--fault stop-nfs|stop-keepalived|cut-link|freeze|reboot] [--json] [--yes]
 *
 * Breaks the DB pair's primary (or the NFS server holding the NFS VIP) on purpose and reports
 * what an application sees (see source/drill/run.ts and source/drill/nfs-run.ts). In the lab
 * (the pair's servers are lab hosts) the fault goes through the lab's fault injection; on real
 * servers only the fault named here is injected, after the operator typed the server's name (or
 * passed --yes). Progress on stderr; the report on stdout.
 */
import { createInterface } from 'node:readline/promises';
import type { CliIO, CommandArgs } from '../cli.js';
import { DRILL_FAULTS, isDrillFault, labFaultDriver, sshFaultDriver, type DrillFault } from '../drill/fault.js';
import { NFS_DRILL_FAULTS, isNfsDrillFault, nfsLabFaultDriver, nfsSshFaultDriver } from '../drill/nfs-fault.js';
import { formatNfsReport } from '../drill/nfs-report.js';
import { DEFAULT_NFS_TIMING, nfsDrillHosts, runNfsDrill } from '../drill/nfs-run.js';
import { formatReport } from '../drill/report.js';
import { drillHosts, runDrill, type DrillTiming } from '../drill/run.js';
import type { Inventory } from '../inventory/types.js';
import { nfsOptions } from '../../runbooks/lib/nfs-options.js';
import { createTransportPool } from '../transport/connect.js';
import { canPrompt } from '../ui/tty.js';
import { askYesNo } from './prompt.js';
import { loadTable } from './session.js';

const USAGE = `Usage: ha-setup drill db --config FILE [--fault KIND] [--json] [--yes]
  KIND: ${DRILL_FAULTS.join(', ')} (default stop-postgres)
  A probe on app1 writes numbered rows through the DB VIP; the fault hits the primary holding
  the VIP; the report gives the time until the VIP moved, the RTO, the acknowledged rows lost
  (RPO), who holds the VIP and which server is the primary afterwards.
       ha-setup drill nfs --config FILE [--fault KIND] [--json] [--yes]
  KIND: ${NFS_DRILL_FAULTS.join(', ')} (default stop-nfs)
  A probe on app1 writes numbered files into the share through the NFS VIP (through the mount,
  or with nfs-cp where the share is not mounted); the fault hits the NFS server holding the VIP;
  the report gives the time until the VIP moved, the RTO, the acknowledged files lost (RPO:
  rsync replication loses up to one replication interval), the replication lag seen, who holds
  the VIP and keepalived's decisions. The drill's files are removed from both servers afterwards.`;

/** The lab's hosts, when every DB server of the table is one of them (then the lab injects the fault). */
async function labFor(inv: Inventory, env: NodeJS.ProcessEnv): Promise<boolean> {
  const { labStatus } = await import('../lab/index.js');
  const status = labStatus({ env });
  if (!status.up) return false;
  const addresses = new Set(status.hosts.map((h) => h.address));
  const { primary, standby } = drillHosts(inv);
  return addresses.has(primary.address) && addresses.has(standby.address);
}

/** The lab is up and has every one of these addresses (then the lab injects the fault). */
async function labHas(addresses: string[], env: NodeJS.ProcessEnv): Promise<boolean> {
  const { labStatus } = await import('../lab/index.js');
  const status = labStatus({ env });
  if (!status.up) return false;
  const lab = new Set(status.hosts.map((h) => h.address));
  return addresses.every((a) => lab.has(a));
}

/** A typed confirmation: the operator types the name of the server the drill breaks. */
async function typedConfirmation(io: CliIO, alias: string, what: string, impact = 'Clients of the database see an outage.'): Promise<boolean> {
  if (!canPrompt({ stdin: io.stdin, stdout: io.stdout, env: io.env })) {
    throw new Error(`drill on real servers: ${what}; no terminal to confirm it: pass --yes`);
  }
  const rl = createInterface({ input: io.stdin, output: io.stderr as NodeJS.WritableStream });
  try {
    const answer = await rl.question(`This drill will ${what}.\n${impact} Type the server's name (${alias}) to go on: `);
    return answer.trim() === alias;
  } finally {
    rl.close();
  }
}

export async function run(args: CommandArgs, io: CliIO): Promise<number> {
  const [pair, ...extra] = args.positionals;
  if (pair === undefined) {
    io.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (pair === 'nfs' && !extra.length) return runNfs(args, io);
  if (pair !== 'db' || extra.length) {
    io.stderr.write(`ha-setup drill: unknown "${[pair, ...extra].join(' ')}"\n${USAGE}\n`);
    return 2;
  }
  const faultName = args.values.fault ?? 'stop-postgres';
  if (!isDrillFault(faultName)) {
    io.stderr.write(`ha-setup drill: --fault ${faultName} is not known (one of: ${DRILL_FAULTS.join(', ')})\n`);
    return 2;
  }
  const fault: DrillFault = faultName;
  const inventory = await loadTable(args, io);
  const lab = await labFor(inventory, io.env);
  const env = io.env;
  const pool = createTransportPool(inventory.ssh, {
    env,
    acceptNewHostKeys: Boolean(args.values['accept-new-host-keys']),
    onUnknownHostKey: (key) => askYesNo(io, `${key.host}:${key.port} presents an unknown ${key.keyType} host key ${key.fingerprint}. Trust it and add it to known_hosts?`, '--accept-new-host-keys (after checking the fingerprint)'),
  });
  const timing: Partial<DrillTiming> = {};
  const holdSeconds = Math.ceil((30_000 + 6_000) / 1000);
  try {
    let driver: Parameters<typeof runDrill>[0]['driver'];
    if (lab) {
      const { fault: labFault } = await import('../lab/index.js');
      driver = (target) => labFaultDriver(target, (host, kind, arg) => labFault(host, kind, arg, { env }));
    } else {
      driver = (target, transport) => sshFaultDriver(target, transport, holdSeconds);
    }
    const report = await runDrill({
      inventory,
      fault,
      env,
      transport: (h) => pool.get(h),
      driver,
      confirm: lab || args.values.yes ? undefined : (target, what) => typedConfirmation(io, target.alias, what),
      log: (line) => io.stderr.write(`${line}\n`),
      timing,
    });
    io.stdout.write(args.values.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
    return report.ok ? 0 : 1;
  } finally {
    await Promise.race([pool.closeAll(), new Promise((r) => setTimeout(r, 5000))]);
  }
}

/** ha-setup drill nfs: the same flow as the DB drill, for the NFS pair (source/drill/nfs-run.ts). */
async function runNfs(args: CommandArgs, io: CliIO): Promise<number> {
  const faultName = args.values.fault ?? 'stop-nfs';
  if (!isNfsDrillFault(faultName)) {
    io.stderr.write(`ha-setup drill nfs: --fault ${faultName} is not known (one of: ${NFS_DRILL_FAULTS.join(', ')})\n`);
    return 2;
  }
  const inventory = await loadTable(args, io);
  const { primary, standby } = nfsDrillHosts(inventory);
  const server = nfsOptions(inventory.options).server;
  const env = io.env;
  const lab = await labHas([primary.address, standby.address], env);
  const pool = createTransportPool(inventory.ssh, {
    env,
    acceptNewHostKeys: Boolean(args.values['accept-new-host-keys']),
    onUnknownHostKey: (key) => askYesNo(io, `${key.host}:${key.port} presents an unknown ${key.keyType} host key ${key.fingerprint}. Trust it and add it to known_hosts?`, '--accept-new-host-keys (after checking the fingerprint)'),
  });
  // On real servers a cut link or a freeze is undone by the server itself after this long.
  const holdSeconds = Math.ceil((DEFAULT_NFS_TIMING.observeMs + DEFAULT_NFS_TIMING.settleMs) / 1000);
  try {
    let driver: Parameters<typeof runNfsDrill>[0]['driver'];
    if (lab) {
      const { fault: labFault } = await import('../lab/index.js');
      driver = (target) => nfsLabFaultDriver(target, (host, kind, arg) => labFault(host, kind, arg, { env }));
    } else {
      driver = (target, transport) => nfsSshFaultDriver(target, transport, holdSeconds, server);
    }
    const report = await runNfsDrill({
      inventory,
      fault: faultName,
      transport: (h) => pool.get(h),
      driver,
      confirm: lab || args.values.yes ? undefined : (target, what) => typedConfirmation(io, target.alias, what, 'The app servers cannot write to the share until the standby takes over.'),
      log: (line) => io.stderr.write(`${line}\n`),
    });
    io.stdout.write(args.values.json ? `${JSON.stringify(report, null, 2)}\n` : formatNfsReport(report));
    return report.ok ? 0 : 1;
  } finally {
    await Promise.race([pool.closeAll(), new Promise((r) => setTimeout(r, 5000))]);
  }
}
