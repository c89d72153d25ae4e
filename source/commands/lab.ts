/**
 * ha-setup lab up [--hosts N | --topology lb|k8s] | down | status [--json] | fault <host> <kind> [unit]
 * Real Debian servers on this machine, to rehearse on. No Ink: plain lines (progress on stderr).
 */
import type { CliIO, CommandArgs } from '../cli.js';
import { fault, FAULT_KINDS, LabUnavailableError, labDown, labStatus, labUp, type LabStatus } from '../lab/index.js';

const USAGE = `Usage:
  ha-setup lab up [--hosts N | --topology lb|k8s]   start the lab (default 3 hosts)
  ha-setup lab down                                 stop it and remove everything but the image cache
  ha-setup lab status [--json]                      hosts, addresses, state, image
  ha-setup lab fault <host> <kind> [unit]           kinds: ${FAULT_KINDS.join(', ')}
                                                    (stop-service/start-service take a unit)`;

export async function run(args: CommandArgs, io: CliIO): Promise<number> {
  const [sub, ...rest] = args.positionals;
  const env = io.env;
  const log = (line: string) => io.stderr.write(`${line}\n`);
  switch (sub) {
    case 'up': {
      if (rest.length) return usage(io, `lab up takes no words (got "${rest.join(' ')}")`);
      const hosts = args.values.hosts === undefined ? undefined : Number(args.values.hosts);
      if (args.values.hosts !== undefined && !/^\d+$/.test(args.values.hosts)) {
        return usage(io, `--hosts must be a whole number (got "${args.values.hosts}")`);
      }
      try {
        const lab = await labUp({ hosts, topology: args.values.topology, env, log });
        const w = Math.max(...lab.hosts.map((h) => h.alias.length));
        io.stdout.write(
          `${lab.started.length ? `lab up: ${lab.started.length} host(s) started` : 'lab already up'} ` +
            `(${lab.hosts.length} hosts, image ${lab.image.hash}):\n`,
        );
        for (const h of lab.hosts) io.stdout.write(`  ${h.alias.padEnd(w)}  ${h.address}  (hostname ${h.name})\n`);
        io.stdout.write(
          `server table: ${lab.tableFile}\nssh key:      ${lab.keyFile}\nknown_hosts:  ${lab.knownHostsFile}\n` +
            `try: ssh -i ${lab.keyFile} -o UserKnownHostsFile=${lab.knownHostsFile} root@${lab.hosts[0]!.address}\n` +
            `     ha-setup plan --config ${lab.tableFile}\n`,
        );
        return 0;
      } catch (e) {
        if (e instanceof LabUnavailableError) {
          io.stderr.write(`ha-setup lab: ${e.message}\n`);
          return 3;
        }
        throw e;
      }
    }
    case 'down': {
      if (rest.length) return usage(io, `lab down takes no words (got "${rest.join(' ')}")`);
      const r = await labDown({ env, log });
      const count = (how: string) => r.hosts.filter((h) => h.how === how).length;
      io.stdout.write(
        r.hosts.length === 0 && r.left.length === 0
          ? 'lab down: nothing was up\n'
          : `lab down: ${r.hosts.length} host(s) stopped in ${r.seconds.toFixed(1)} s: ` +
              `${count('poweroff')} powered off in order, ${count('killed')} killed` +
              `${count('not-running') ? `, ${count('not-running')} were not running` : ''}\n`,
      );
      if (r.left.length) {
        io.stderr.write(`ha-setup lab down: still present: ${r.left.join('; ')}\n`);
        return 1;
      }
      return 0;
    }
    case 'status': {
      const s = labStatus({ env });
      io.stdout.write(args.values.json ? `${JSON.stringify(s, null, 2)}\n` : statusText(s));
      return 0;
    }
    case 'fault': {
      const [host, kind, arg, ...extra] = rest;
      if (!host || !kind) return usage(io, 'lab fault needs a host and a kind');
      if (extra.length) return usage(io, `lab fault: unexpected "${extra.join(' ')}"`);
      io.stdout.write(`${await fault(host, kind, arg, { env })}\n`);
      return 0;
    }
    case undefined:
      io.stdout.write(`${USAGE}\n`);
      return 0;
    default:
      return usage(io, `unknown lab command "${sub}"`);
  }
}

function usage(io: CliIO, problem: string): number {
  io.stderr.write(`ha-setup lab: ${problem}\n${USAGE}\n`);
  return 2;
}

function statusText(s: LabStatus): string {
  const lines: string[] = [];
  const img = s.image
    ? `image ${s.image.hash}: ${(s.image.sizeBytes / 2 ** 20).toFixed(0)} MiB, built ${age(s.image.ageSeconds)} ago in ${s.image.buildSeconds} s`
    : 'image: not built yet (lab up builds it, about 2 minutes)';
  if (!s.up && s.hosts.length === 0) {
    lines.push(`lab: down (${s.dir})`, img);
    return `${lines.join('\n')}\n`;
  }
  lines.push(
    `lab: ${s.up ? 'up' : 'down'} (${s.dir}); bridge ${s.bridge.name} ${s.bridge.address} ${s.bridge.present ? 'present' : 'absent'}; ` +
      `repository ${s.repo.url} ${s.repo.running ? 'serving' : 'not running'}`,
    img,
  );
  const w = Math.max(5, ...s.hosts.map((h) => h.alias.length));
  lines.push(`  ${'HOST'.padEnd(w)}  ADDRESS       STATE     NOTES`);
  for (const h of s.hosts) {
    const notes = [
      ...h.faults.slice(1),
      ...(h.stoppedUnits.length ? [`stopped: ${h.stoppedUnits.join(' ')}`] : []),
    ].join('; ');
    lines.push(`  ${h.alias.padEnd(w)}  ${h.address.padEnd(12)}  ${h.state.padEnd(8)}  ${notes}`);
  }
  if (s.tableFile) lines.push(`server table: ${s.tableFile}`, `ssh key:      ${s.keyFile}`, `known_hosts:  ${s.knownHostsFile}`);
  return `${lines.join('\n')}\n`;
}

function age(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} days`;
}
