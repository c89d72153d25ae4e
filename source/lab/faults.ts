/**
 * Fault injection, from the machine's side, each reversible:
 *   stop-service/start-service <unit>  systemctl inside the host, entered with nsenter
 *   cut-link/restore-link              the host's veth (vb-<host>) down/up on the machine
 *   freeze/thaw                        cgroup2 freezer on the host's payload cgroup
 *   reboot                             `systemctl reboot` inside; the launcher restarts nspawn
 *   restore                            undo all of the above on that host (and start it if stopped)
 *
 * Why nsenter (into the host's PID 1 namespaces) and not ssh or systemd-run -M: it works while
 * the link is cut, sshd is stopped or a runbook changed the host's SSH settings, needs no key,
 * and machinectl/systemd-run -M need machined registration, which --register=no rules out.
 */
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LabLayout } from './layout.js';
import { hostDir, hostProcesses } from './hosts.js';
import { isFrozen, setFrozen } from './cgroups.js';
import { linkState, setLink } from './network.js';
import { run, waitFor } from './exec.js';
import type { HostState } from './state.js';

export const FAULT_KINDS = [
  'stop-service',
  'start-service',
  'cut-link',
  'restore-link',
  'freeze',
  'thaw',
  'reboot',
  'restore',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export function isFaultKind(s: string): s is FaultKind {
  return (FAULT_KINDS as readonly string[]).includes(s);
}

/** Runs a command inside a running host (all its namespaces, its root), as root. */
export async function inHost(
  layout: LabLayout,
  host: HostState,
  argv: string[],
  timeoutMs = 60_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { init } = hostProcesses(layout, host.name);
  if (!init) throw new Error(`${host.alias}: not running (start it with: ha-setup lab fault ${host.alias} restore)`);
  if (isFrozen(host.name)) throw new Error(`${host.alias}: frozen (thaw it first: ha-setup lab fault ${host.alias} thaw)`);
  return run(
    'nsenter',
    ['-t', String(init), '-m', '-u', '-i', '-n', '-p', '-C', '-r', '-w', '--',
      '/usr/bin/env', '-i', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'LANG=C.UTF-8', ...argv],
    { timeoutMs },
  );
}

async function systemctl(layout: LabLayout, host: HostState, verb: string, unit: string) {
  const r = await inHost(layout, host, ['systemctl', verb, '--', unit]);
  if (r.code !== 0) throw new Error(`${host.alias}: systemctl ${verb} ${unit} failed: ${(r.stderr || r.stdout).trim()}`);
}

/** Applies one fault. Returns a one-line description of what was done. */
export async function applyFault(
  layout: LabLayout,
  host: HostState,
  kind: FaultKind,
  arg: string | undefined,
  restartHost: () => Promise<void>,
): Promise<string> {
  const cutFlag = join(hostDir(layout, host.name), 'link-cut');
  const needUnit = () => {
    if (!arg) throw new Error(`lab fault ${host.alias} ${kind} needs a unit name (e.g. postgresql@15-main)`);
    return arg;
  };
  switch (kind) {
    case 'stop-service': {
      const unit = needUnit();
      await systemctl(layout, host, 'stop', unit);
      if (!host.stoppedUnits.includes(unit)) host.stoppedUnits.push(unit);
      return `${host.alias}: stopped ${unit}`;
    }
    case 'start-service': {
      const unit = needUnit();
      await systemctl(layout, host, 'start', unit);
      host.stoppedUnits = host.stoppedUnits.filter((u) => u !== unit);
      return `${host.alias}: started ${unit}`;
    }
    case 'cut-link':
      writeFileSync(cutFlag, ''); // the launcher keeps the link down across a reboot
      await setLink(host.name, false);
      return `${host.alias}: link cut (vb-${host.name} down on the machine)`;
    case 'restore-link':
      rmSync(cutFlag, { force: true });
      if (linkState(host.name) !== 'absent') await setLink(host.name, true);
      return `${host.alias}: link restored`;
    case 'freeze':
      await setFrozen(host.name, true);
      return `${host.alias}: frozen`;
    case 'thaw':
      await setFrozen(host.name, false);
      return `${host.alias}: thawed`;
    case 'reboot': {
      const before = hostProcesses(layout, host.name).nspawn;
      const r = await inHost(layout, host, ['systemctl', 'reboot']);
      if (r.code !== 0) throw new Error(`${host.alias}: systemctl reboot failed: ${(r.stderr || r.stdout).trim()}`);
      // The reboot has happened when the launcher runs a new nspawn (exit 133, pitfall 3).
      const after = await waitFor(() => {
        const now = hostProcesses(layout, host.name).nspawn;
        return now && now !== before ? now : undefined;
      }, 60_000, 50);
      if (!after) throw new Error(`${host.alias}: did not come back from reboot within 60 s`);
      return `${host.alias}: rebooted (booting again; wait for SSH)`;
    }
    case 'restore': {
      const done: string[] = [];
      if (existsSync(cutFlag)) {
        rmSync(cutFlag, { force: true });
        done.push('link restored');
      }
      if (!hostProcesses(layout, host.name).nspawn) {
        await restartHost();
        done.push('started');
      }
      if (isFrozen(host.name)) {
        await setFrozen(host.name, false);
        done.push('thawed');
      }
      if (linkState(host.name) === 'down') {
        await setLink(host.name, true);
        if (!done.includes('link restored')) done.push('link restored');
      }
      for (const unit of [...host.stoppedUnits]) {
        await systemctl(layout, host, 'start', unit);
        done.push(`started ${unit}`);
      }
      host.stoppedUnits = [];
      return `${host.alias}: ${done.length ? done.join(', ') : 'nothing to undo'}`;
    }
  }
}
