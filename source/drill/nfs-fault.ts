/**
 * The faults the NFS drill injects into the NFS server that holds the NFS VIP, and how each is
 * undone afterwards. The same model as the DB drill (source/drill/fault.ts): in the lab through
 * the lab's fault injection, on real servers over SSH, where cut-link and freeze are undone by
 * the server itself after `holdSeconds` (a transient timer armed before the fault).
 *
 * Unlike the DB drill, "undo" restarts the NFS server on the old holder too: an NFS server that
 * does not hold the VIP serves nobody (the app servers mount from the VIP), its keepalived
 * stays BACKUP (nopreempt), and the next replication pass from the new holder brings its copy
 * of the share up to date.
 */
import { sh } from '../engine/shell.js';
import type { Transport } from '../transport/types.js';
import { undoTimerScript, type FaultTarget, type LabFault } from './fault.js';

export const NFS_DRILL_FAULTS = ['stop-nfs', 'stop-keepalived', 'cut-link', 'freeze', 'reboot'] as const;
export type NfsDrillFault = (typeof NFS_DRILL_FAULTS)[number];

export function isNfsDrillFault(s: string): s is NfsDrillFault {
  return (NFS_DRILL_FAULTS as readonly string[]).includes(s);
}

export const NFS_FAULT_TEXT: Record<NfsDrillFault, string> = {
  'stop-nfs': 'stop the NFS server',
  'stop-keepalived': 'stop keepalived',
  'cut-link': 'cut the network link',
  freeze: 'freeze the whole server',
  reboot: 'reboot the server',
};

export interface NfsFaultDriver {
  readonly mode: 'lab' | 'ssh';
  inject(fault: NfsDrillFault): Promise<string>;
  /** Undo what can be undone (see the top of this file); a description, or null for nothing. */
  undo(fault: NfsDrillFault): Promise<string | null>;
}

/**
 * Why a fault cannot be injected this way, or null. The kernel NFS server runs in kernel threads,
 * which no signal stops: on real servers "freeze" could only stop keepalived, and the old holder
 * would go on answering NFS on the VIP it still carries; that is no freeze.
 */
export function nfsFaultRefusal(fault: NfsDrillFault, mode: 'lab' | 'ssh', server: 'kernel' | 'ganesha'): string | null {
  if (fault === 'freeze' && mode === 'ssh' && server === 'kernel') {
    return '--fault freeze: the kernel NFS server runs as kernel threads, which cannot be frozen over SSH; use cut-link (the whole server drops off the network) or reboot';
  }
  return null;
}

/** `target.unit` is the NFS server's unit (nfs-ganesha, nfs-server). */
export function nfsLabFaultDriver(target: FaultTarget, labFault: LabFault): NfsFaultDriver {
  const kind: Record<NfsDrillFault, [string, string?]> = {
    'stop-nfs': ['stop-service', target.unit],
    'stop-keepalived': ['stop-service', 'keepalived'],
    'cut-link': ['cut-link'],
    freeze: ['freeze'],
    reboot: ['reboot'],
  };
  // The lab names its hosts by its own roles (a test's table may map them to others): say the table's alias.
  const lab = async (k: string, arg?: string) => `${target.alias}: ${(await labFault(target.address, k, arg)).replace(/^[^:]*: /, '')}`;
  return {
    mode: 'lab',
    inject: (fault) => lab(kind[fault][0], kind[fault][1]),
    async undo(fault) {
      switch (fault) {
        case 'stop-nfs':
          return lab('start-service', target.unit);
        case 'stop-keepalived':
          return lab('start-service', 'keepalived');
        case 'cut-link':
          return lab('restore-link');
        case 'freeze':
          return lab('thaw');
        default:
          return null;
      }
    },
  };
}

/** The SSH commands of each fault on a real NFS server (exported for the tests). */
export function nfsSshFaultScripts(target: FaultTarget, holdSeconds: number, server: 'kernel' | 'ganesha'): Record<NfsDrillFault, { inject: string; undo: string | null }> {
  const cont = 'pkill -CONT -x keepalived; pkill -CONT -x ganesha.nfsd; true';
  return {
    'stop-nfs': { inject: sh`systemctl stop ${target.unit}`, undo: sh`systemctl start ${target.unit}` },
    'stop-keepalived': { inject: 'systemctl stop keepalived', undo: 'systemctl start keepalived' },
    'cut-link': {
      inject: [undoTimerScript(holdSeconds, sh`ip link set dev ${target.iface} up`), sh`(sleep 0.3; ip link set dev ${target.iface} down) >/dev/null 2>&1 &`].join('\n'),
      undo: null,
    },
    freeze: {
      // Only for nfs-ganesha (see nfsFaultRefusal): the NFS server process and keepalived stop together.
      inject: server === 'ganesha' ? [undoTimerScript(holdSeconds, cont), 'pkill -STOP -x ganesha.nfsd; pkill -STOP -x keepalived; true'].join('\n') : 'false',
      undo: cont,
    },
    reboot: { inject: '(sleep 0.3; systemctl reboot) >/dev/null 2>&1 &', undo: null },
  };
}

export function nfsSshFaultDriver(target: FaultTarget, transport: Transport, holdSeconds: number, server: 'kernel' | 'ganesha'): NfsFaultDriver {
  const scripts = nfsSshFaultScripts(target, holdSeconds, server);
  return {
    mode: 'ssh',
    async inject(fault) {
      const refused = nfsFaultRefusal(fault, 'ssh', server);
      if (refused) throw new Error(refused);
      const r = await transport.exec(scripts[fault].inject, { sudo: true, timeoutMs: 60_000 });
      if (r.code !== 0) throw new Error(`${target.alias}: could not ${NFS_FAULT_TEXT[fault]}: ${(r.stderr || r.stdout).trim().split('\n').pop()}`);
      return `${target.alias}: ${NFS_FAULT_TEXT[fault]}${fault === 'stop-nfs' ? ` (${target.unit})` : ''}${fault === 'cut-link' || fault === 'freeze' ? ` (the server undoes it by itself after ${holdSeconds} s)` : ''}`;
    },
    async undo(fault) {
      const script = scripts[fault].undo;
      if (!script) return fault === 'cut-link' ? `${target.alias}: the link comes back by itself (timer)` : null;
      const r = await transport.exec(script, { sudo: true, timeoutMs: 30_000 });
      if (r.code !== 0) throw new Error(`${target.alias}: could not undo "${NFS_FAULT_TEXT[fault]}": ${(r.stderr || r.stdout).trim().split('\n').pop()}`);
      return `${target.alias}: ${fault === 'freeze' ? 'thawed' : fault === 'stop-nfs' ? `${target.unit} started again` : 'keepalived started again'}`;
    },
  };
}
