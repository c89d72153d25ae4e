/**
 * ha-setup drill db [--fault stop-postgres|stop-keepalived|cut-link|freeze|reboot] [--json] [--yes]
 *
 * Breaks the DB pair's primary on purpose and reports what an application sees (see
 * source/drill/run.ts). In the lab (the table's DB servers are lab hosts) the fault goes through
 * the lab's fault injection; on real servers only the fault named here is injected, after the
 * operator typed the server's name (or passed --yes). Progress on stderr; the report on stdout.
 */
import { createInterface } from 'node:readline/promises';
import type { CliIO, CommandArgs } from '../cli.js';
import { DRILL_FAULTS, isDrillFault, labFaultDriver, sshFaultDriver, type DrillFault } from '../drill/fault.js';
import { formatReport } from '../drill/report.js';
import { drillHosts, runDrill, type DrillTiming } from '../drill/run.js';
import type { Inventory } from '../inventory/types.js';
import { createTransportPool } from '../transport/connect.js';
import { canPrompt } from '../ui/tty.js';
import { askYesNo } from './prompt.js';
import { loadTable } from './session.js';

const USAGE = `Usage: ha-setup drill db --config FILE [--fault KIND] [--json] [--yes]
  KIND: ${DRILL_FAULTS.join(', ')} (default stop-postgres)
  A probe on app1 writes numbered rows through the DB VIP; the fault hits the primary holding
  the VIP; the report gives the time until the VIP moved, the RTO, the acknowledged rows lost
  (RPO), who holds the VIP and which server is the primary afterwards.`;

/** The lab's hosts, when every DB server of the table is one of them (then the lab injects the fault). */
async function labFor(inv: Inventory, env: NodeJS.ProcessEnv): Promise<boolean> {
  const { labStatus } = await import('../lab/index.js');
  const status = labStatus({ env });
  if (!status.up) return false;
  const addresses = new Set(status.hosts.map((h) => h.address));
  const { primary, standby } = drillHosts(inv);
  return addresses.has(primary.address) && addresses.has(standby.address);
}

/** A typed confirmation: the operator types the name of the server the drill breaks. */
async function typedConfirmation(io: CliIO, alias: string, what: string): Promise<boolean> {
  if (!canPrompt({ stdin: io.stdin, stdout: io.stdout, env: io.env })) {
    throw new Error(`drill on real servers: ${what}; no terminal to confirm it: pass --yes`);
  }
  const rl = createInterface({ input: io.stdin, output: io.stderr as NodeJS.WritableStream });
  try {
    const answer = await rl.question(`This drill will ${what}.\nClients of the database see an outage. Type the server's name (${alias}) to go on: `);
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
  if (pair === 'nfs') {
    io.stderr.write('ha-setup drill: the NFS drill is not available yet (keepalived moves the NFS VIP; the drill measures the DB pair): use ha-setup drill db\n');
    return 2;
  }
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
