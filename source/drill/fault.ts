/**
 * The faults a drill injects into the primary, and how each is undone afterwards.
 *
 * In the lab they go through the lab's own fault injection (source/lab fault(): nsenter, the
 * host's veth, the cgroup freezer, a reboot the launcher restarts). On real servers only the
 * fault the operator picked runs, over SSH, and a fault that cuts the drill off from the server
 * (cut-link, freeze) is undone by the server itself after `holdSeconds` (a transient systemd
 * timer armed before the fault), so that a lost SSH connection never leaves it broken.
 *
 * What "undo" means after the failover: the old primary's PostgreSQL is NOT started again (it is
 * fenced: `ha-setup rejoin db` brings it back as a standby); keepalived, the link and a frozen
 * host are restored, so that the drill sees whether the returning node disturbs the new primary.
 */
import { sh } from '../engine/shell.js';
import type { Transport } from '../transport/types.js';

export const DRILL_FAULTS = ['stop-postgres', 'stop-keepalived', 'cut-link', 'freeze', 'reboot'] as const;
export type DrillFault = (typeof DRILL_FAULTS)[number];

export function isDrillFault(s: string): s is DrillFault {
  return (DRILL_FAULTS as readonly string[]).includes(s);
}

export const FAULT_TEXT: Record<DrillFault, string> = {
  'stop-postgres': 'stop PostgreSQL',
  'stop-keepalived': 'stop keepalived',
  'cut-link': 'cut the network link',
  freeze: 'freeze the whole server',
  reboot: 'reboot the server',
};

export interface FaultTarget {
  alias: string;
  address: string;
  /** PostgreSQL's systemd unit there. */
  unit: string;
  /** The interface that carries the VIP's subnet (cut-link on real servers). */
  iface: string;
}

export interface FaultDriver {
  readonly mode: 'lab' | 'ssh';
  inject(fault: DrillFault): Promise<string>;
  /** Undo what can be undone (see the top of this file); a description, or null for nothing. */
  undo(fault: DrillFault): Promise<string | null>;
}

/** The lab's fault() (injected so that this module does not load the lab code on real servers). */
export type LabFault = (host: string, kind: string, arg?: string) => Promise<string>;

export function labFaultDriver(target: FaultTarget, labFault: LabFault): FaultDriver {
  const kind: Record<DrillFault, [string, string?]> = {
    'stop-postgres': ['stop-service', target.unit],
    'stop-keepalived': ['stop-service', 'keepalived'],
    'cut-link': ['cut-link'],
    freeze: ['freeze'],
    reboot: ['reboot'],
  };
  return {
    mode: 'lab',
    inject: (fault) => labFault(target.address, kind[fault][0], kind[fault][1]),
    async undo(fault) {
      switch (fault) {
        case 'stop-keepalived':
          return labFault(target.address, 'start-service', 'keepalived');
        case 'cut-link':
          return labFault(target.address, 'restore-link');
        case 'freeze':
          return labFault(target.address, 'thaw');
        default:
          return null;
      }
    },
  };
}

const TIMER_UNIT = 'ha-setup-drill-undo';

/** Shell text that arms a transient timer on the server running `command` after `seconds`. */
export function undoTimerScript(seconds: number, command: string): string {
  return [
    sh`systemctl stop ${`${TIMER_UNIT}.timer`} ${`${TIMER_UNIT}.service`} 2>/dev/null || true`,
    sh`systemctl reset-failed ${`${TIMER_UNIT}.service`} 2>/dev/null || true`,
    sh`systemd-run --quiet --unit ${TIMER_UNIT} --on-active=${`${Math.ceil(seconds)}s`} /bin/sh -c ${command}`,
  ].join('\n');
}

/** The SSH commands of each fault on a real server (exported for the tests). */
export function sshFaultScripts(target: FaultTarget, holdSeconds: number): Record<DrillFault, { inject: string; undo: string | null }> {
  const cont = 'pkill -CONT -x keepalived; pkill -CONT -u postgres; true';
  return {
    'stop-postgres': { inject: sh`systemctl stop ${target.unit}`, undo: null },
    'stop-keepalived': { inject: 'systemctl stop keepalived', undo: 'systemctl start keepalived' },
    'cut-link': {
      inject: [undoTimerScript(holdSeconds, sh`ip link set dev ${target.iface} up`), sh`(sleep 0.3; ip link set dev ${target.iface} down) >/dev/null 2>&1 &`].join('\n'),
      undo: null,
    },
    freeze: {
      inject: [undoTimerScript(holdSeconds, cont), 'pkill -STOP -u postgres; pkill -STOP -x keepalived; true'].join('\n'),
      undo: cont,
    },
    reboot: { inject: '(sleep 0.3; systemctl reboot) >/dev/null 2>&1 &', undo: null },
  };
}

export function sshFaultDriver(target: FaultTarget, transport: Transport, holdSeconds: number): FaultDriver {
  const scripts = sshFaultScripts(target, holdSeconds);
  return {
    mode: 'ssh',
    async inject(fault) {
      const r = await transport.exec(scripts[fault].inject, { sudo: true, timeoutMs: 60_000 });
      if (r.code !== 0) throw new Error(`${target.alias}: could not ${FAULT_TEXT[fault]}: ${(r.stderr || r.stdout).trim().split('\n').pop()}`);
      return `${target.alias}: ${FAULT_TEXT[fault]}${fault === 'cut-link' || fault === 'freeze' ? ` (the server undoes it by itself after ${holdSeconds} s)` : ''}`;
    },
    async undo(fault) {
      const script = scripts[fault].undo;
      if (!script) return fault === 'cut-link' ? `${target.alias}: the link comes back by itself (timer)` : null;
      const r = await transport.exec(script, { sudo: true, timeoutMs: 30_000 });
      if (r.code !== 0) throw new Error(`${target.alias}: could not undo "${FAULT_TEXT[fault]}": ${(r.stderr || r.stdout).trim().split('\n').pop()}`);
      return `${target.alias}: ${fault === 'freeze' ? 'thawed' : 'keepalived started again'}`;
    },
  };
}
