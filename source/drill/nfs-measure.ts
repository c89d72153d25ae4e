/**
 * The NFS drill's figures from what it observed, as pure functions. Every event carries the
 * time (ms since the drill started, on the jump host's clock) at which its line reached the
 * jump host:
 *
 *   probe       ACK <n> | ERR <n> <message>      one numbered file per attempt, through the VIP
 *   watchers    VIP 0|1                          per NFS server: holds / does not hold the VIP
 *               FILES <highest> <count>          the drill's files in that server's copy
 *
 * Definitions (the report prints them too):
 *   VIP moved        first moment after the fault at which the other server holds the VIP
 *   RTO              first acknowledged write after the first failed one (after the fault);
 *                    0 when no write failed. There are no timelines in NFS: which server took
 *                    a write is read from the servers afterwards (see nfsRpo)
 *   failover point   the RTO write; when no write failed, the moment the VIP moved
 *   replication lag  on the standby before the fault: how old the oldest write it did not have
 *                    yet was (at each replication pass, and at the fault)
 *   RPO              acknowledged files missing from the VIP holder afterwards: those from
 *                    before the failover point are the replication window (expected with rsync
 *                    on a timer); those from after it must all be there
 */
import { measure, normaliseError, type ProbeEvent, type VipEvent } from './measure.js';

/** One line of the NFS probe's output, or null for lines that are not write results. */
export function parseNfsProbeLine(line: string, t: number): ProbeEvent | null {
  const s = line.trim();
  const ack = /^ACK (\d+)$/.exec(s);
  if (ack) return { t, seq: Number(ack[1]), ok: true };
  const err = /^ERR (\d+) ?(.*)$/.exec(s);
  if (err) return { t, seq: Number(err[1]), ok: false, error: err[2]!.trim() || 'failed' };
  return null;
}

export interface FilesEvent {
  t: number;
  alias: string;
  /** Highest drill file number present there. */
  max: number;
  count: number;
}

/** One line of an NFS watcher. */
export function parseNfsWatchLine(line: string, t: number, alias: string): { vip: VipEvent } | { files: FilesEvent } | null {
  const s = line.trim();
  const v = /^VIP ([01])$/.exec(s);
  if (v) return { vip: { t, alias, holds: v[1] === '1' } };
  const f = /^FILES (\d+) (\d+)$/.exec(s);
  if (f) return { files: { t, alias, max: Number(f[1]), count: Number(f[2]) } };
  return null;
}

/** The probe's "TOOL <name> <detail>" line. */
export function parseToolLine(line: string): { tool: 'mount' | 'nfs-cp'; detail: string } | null {
  const m = /^TOOL (mount|nfs-cp) ?(.*)$/.exec(line.trim());
  return m ? { tool: m[1] as 'mount' | 'nfs-cp', detail: m[2]! } : null;
}

/** Errors without the varying parts (file names with their numbers, addresses). */
export function normaliseNfsError(e: string): string {
  return normaliseError(e.replace(/\.ha-setup-drill\.[a-z0-9]+\.(\d+|setup)/g, '<file>'));
}

export interface NfsMeasurement {
  vipMovedMs: number | null;
  rtoMs: number | null;
  /** From the last acknowledged write before the first failure to the RTO write. */
  outageMs: number | null;
  /** The failover point (ms since the drill started; see the top of this file), or null. */
  failoverAt: number | null;
  /** The old holder held the VIP again after it had moved (ms after the fault), or null. A frozen
   *  holder never notices that it lost the VIP: then the moment the survivor dropped it counts. */
  vipBackToOldMs: number | null;
  attempted: number;
  acknowledged: number;
  failed: number;
  failedAfterRecovery: number;
  errors: { error: string; count: number }[];
}

export function measureNfs(probe: ProbeEvent[], vip: VipEvent[], faultAt: number, target: string, survivor: string): NfsMeasurement {
  // The DB drill's measure() without timelines: RTO = first acknowledged write after the first failure.
  const m = measure(probe, vip, faultAt, survivor);
  const after = probe.filter((e) => e.t > faultAt);
  const firstFail = after.find((e) => !e.ok);
  const recovery = firstFail ? after.find((e) => e.ok && e.t > firstFail.t) : undefined;
  const moved = vip.find((e) => e.alias === survivor && e.holds && e.t > faultAt);
  const failoverAt = recovery ? recovery.t : firstFail ? null : moved ? moved.t : null;
  // The old holder has the VIP again: it says so, or (frozen, it never noticed losing it) the survivor drops it.
  let back: VipEvent | undefined;
  if (moved) {
    const sorted = [...vip].sort((a, b) => a.t - b.t);
    const targetHolds = (t: number) => sorted.filter((e) => e.alias === target && e.t <= t).pop()?.holds ?? false;
    back = sorted.find((e) => e.t > moved.t && ((e.alias === target && e.holds) || (e.alias === survivor && !e.holds && targetHolds(e.t))));
  }
  const counts = new Map<string, number>();
  for (const e of probe) if (!e.ok) counts.set(normaliseNfsError(e.error!), (counts.get(normaliseNfsError(e.error!)) ?? 0) + 1);
  return {
    vipMovedMs: m.vipMovedMs,
    rtoMs: m.rtoMs,
    outageMs: m.outageMs,
    failoverAt,
    vipBackToOldMs: back ? back.t - faultAt : null,
    attempted: m.attempted,
    acknowledged: m.acknowledged,
    failed: m.failed,
    failedAfterRecovery: m.failedAfterRecovery,
    errors: [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([error, count]) => ({ error, count })),
  };
}

export interface ReplicationObserved {
  /** Replication passes seen arriving on the standby before the fault. */
  passes: number;
  /** The largest lag seen at a pass (how old the oldest write the standby lacked was), ms. */
  maxLagMs: number | null;
  /** At the fault: how old the oldest acknowledged write the standby did not have was, ms (0: it had all). */
  lagAtFaultMs: number | null;
  /** Acknowledged writes the standby did not have at the fault. */
  unreplicatedAtFault: number | null;
  /** Highest file number on the standby at the fault. */
  standbyMaxAtFault: number;
}

/** Increases of the standby's copy closer together than this are one replication pass (passes are >= 15 s apart). */
export const PASS_GAP_MS = 3000;

/**
 * The standby's copy over time (its FILES lines before the fault) against the acknowledged
 * writes. Lags are as listed every 0.5 s: a pass under way at the fault can still deliver files
 * that the last listing before it did not show (the lag at the fault is then an upper bound).
 */
export function replicationObserved(probe: ProbeEvent[], standbyFiles: FilesEvent[], faultAt: number): ReplicationObserved {
  const acks = probe.filter((e) => e.ok).sort((a, b) => a.seq - b.seq);
  const firstAckAbove = (max: number) => acks.find((e) => e.seq > max);
  let prev = 0;
  let passes = 0;
  let lastIncrease = -Infinity;
  let maxLagMs: number | null = null;
  for (const f of standbyFiles.filter((e) => e.t <= faultAt).sort((a, b) => a.t - b.t)) {
    if (f.max <= prev) continue;
    const oldest = firstAckAbove(prev);
    if (oldest && oldest.t <= f.t) maxLagMs = Math.max(maxLagMs ?? 0, f.t - oldest.t);
    prev = f.max;
    // A pass still delivering files at the next listing shows up as several increases, close together.
    if (f.t - lastIncrease > PASS_GAP_MS) passes++;
    lastIncrease = f.t;
  }
  const ackedBefore = acks.filter((e) => e.t <= faultAt);
  const missing = ackedBefore.filter((e) => e.seq > prev);
  const oldest = missing.reduce<ProbeEvent | undefined>((a, e) => (!a || e.t < a.t ? e : a), undefined);
  return {
    passes,
    maxLagMs,
    lagAtFaultMs: ackedBefore.length ? (oldest ? faultAt - oldest.t : 0) : null,
    unreplicatedAtFault: ackedBefore.length ? missing.length : null,
    standbyMaxAtFault: prev,
  };
}

export interface NfsRpo {
  acknowledged: number;
  /** Acknowledged files missing from the VIP holder's copy (sorted). */
  missing: number[];
  /** ... acknowledged before the failover point: the replication window. */
  missingBeforeFailover: number[];
  /** ... acknowledged after the failover point (on the server that holds the VIP now): must be none. */
  missingAfterFailover: number[];
  /** ... acknowledged more than `windowMs` before the fault: older than replication promises to lose. */
  missingBeyondWindow: number[];
}

/**
 * Acknowledged files missing from `present` (the VIP holder's copy afterwards), by when they were
 * acknowledged. `failoverAt` null (no failover seen): every missing file counts as after it.
 */
export function nfsRpo(probe: ProbeEvent[], present: Iterable<number>, faultAt: number, failoverAt: number | null, windowMs: number): NfsRpo {
  const have = new Set(present);
  const acks = new Map<number, ProbeEvent>();
  for (const e of probe) if (e.ok && !acks.has(e.seq)) acks.set(e.seq, e);
  const missing = [...acks.values()].filter((e) => !have.has(e.seq)).sort((a, b) => a.seq - b.seq);
  const before = (e: ProbeEvent) => failoverAt !== null && e.t < failoverAt;
  return {
    acknowledged: acks.size,
    missing: missing.map((e) => e.seq),
    missingBeforeFailover: missing.filter(before).map((e) => e.seq),
    missingAfterFailover: missing.filter((e) => !before(e)).map((e) => e.seq),
    missingBeyondWindow: missing.filter((e) => e.t < faultAt - windowMs).map((e) => e.seq),
  };
}

/** What the report carries of an NfsRpo: counts, and the first `max` numbers of each list. */
export interface NfsRpoSummary {
  acknowledged: number;
  missing: number;
  missingBeforeFailover: number;
  missingAfterFailover: number;
  missingBeyondWindow: number;
  seqs: { missing: number[]; afterFailover: number[]; beyondWindow: number[] };
}

export function summariseRpo(r: NfsRpo, max = 20): NfsRpoSummary {
  return {
    acknowledged: r.acknowledged,
    missing: r.missing.length,
    missingBeforeFailover: r.missingBeforeFailover.length,
    missingAfterFailover: r.missingAfterFailover.length,
    missingBeyondWindow: r.missingBeyondWindow.length,
    seqs: { missing: r.missing.slice(0, max), afterFailover: r.missingAfterFailover.slice(0, max), beyondWindow: r.missingBeyondWindow.slice(0, max) },
  };
}
