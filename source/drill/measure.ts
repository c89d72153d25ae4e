/**
 * The drill's figures from what it observed, as pure functions: every event carries the time
 * (ms since the drill started, on the jump host's clock) at which its line reached the jump host.
 *
 *   probe writes   ACK n <timeline> | ERR n <message>   (one numbered row per attempt, through the VIP)
 *   VIP watchers   per host: holds / does not hold the VIP
 *
 * Definitions (the report prints them too):
 *   VIP moved   first moment after the fault at which the other node holds the VIP
 *   RTO         first acknowledged write after the fault on a new timeline (the promoted
 *               standby); without a failover, the first acknowledged write after the first
 *               failed one; 0 when no write failed
 *   outage      from the last acknowledged write before the first failure to the RTO write
 *   RPO         acknowledged rows missing from the primary afterwards
 */

export interface ProbeEvent {
  t: number;
  seq: number;
  ok: boolean;
  /** Timeline of the server that acknowledged (ACK only). */
  timeline?: number;
  /** The error (ERR only). */
  error?: string;
}

export interface VipEvent {
  t: number;
  alias: string;
  holds: boolean;
}

/** One line of the probe's output, or null for lines that are not write results. */
export function parseProbeLine(line: string, t: number): ProbeEvent | null {
  const ack = /^ACK (\d+) ([0-9A-Fa-f]{8})$/.exec(line.trim());
  if (ack) return { t, seq: Number(ack[1]), ok: true, timeline: Number.parseInt(ack[2]!, 16) };
  const err = /^ERR (\d+) ?(.*)$/.exec(line.trim());
  if (err) return { t, seq: Number(err[1]), ok: false, error: err[2]!.trim() || 'failed' };
  return null;
}

export interface Measurement {
  /** Timeline of the writes acknowledged before the fault. */
  baselineTimeline: number | null;
  vipMovedMs: number | null;
  rtoMs: number | null;
  outageMs: number | null;
  /** A write was acknowledged on a newer timeline after the fault. */
  failover: boolean;
  newTimeline: number | null;
  attempted: number;
  acknowledged: number;
  failed: number;
  /** Failed writes after the RTO point (a returning node disturbing the new primary). */
  failedAfterRecovery: number;
  /** Writes acknowledged on the old timeline after the first write on the new one: two primaries. */
  ackedByOldPrimaryAfterFailover: number;
  /** Distinct errors seen, with their counts (at most 5). */
  errors: { error: string; count: number }[];
}

export function measure(probe: ProbeEvent[], vip: VipEvent[], faultAt: number, survivor: string): Measurement {
  const before = probe.filter((e) => e.ok && e.t <= faultAt);
  const baselineTimeline = before.length ? before[before.length - 1]!.timeline ?? null : null;
  const after = probe.filter((e) => e.t > faultAt);
  const firstNew = after.find((e) => e.ok && baselineTimeline !== null && (e.timeline ?? 0) > baselineTimeline);
  const firstFail = after.find((e) => !e.ok);
  let recovery: ProbeEvent | undefined;
  if (firstNew) recovery = firstNew;
  else if (firstFail) recovery = after.find((e) => e.ok && e.t > firstFail.t);
  const rtoMs = recovery ? recovery.t - faultAt : firstFail ? null : 0;
  let outageMs: number | null = null;
  if (recovery && firstFail && firstFail.t <= recovery.t) {
    const lastAck = [...probe].reverse().find((e) => e.ok && e.t < firstFail.t);
    outageMs = recovery.t - (lastAck ? lastAck.t : faultAt);
  } else if (rtoMs === 0) outageMs = 0;
  const moved = vip.find((e) => e.alias === survivor && e.holds && e.t > faultAt);
  const counts = new Map<string, number>();
  for (const e of probe) if (!e.ok) counts.set(normaliseError(e.error!), (counts.get(normaliseError(e.error!)) ?? 0) + 1);
  return {
    baselineTimeline,
    vipMovedMs: moved ? moved.t - faultAt : null,
    rtoMs,
    outageMs,
    failover: Boolean(firstNew),
    newTimeline: firstNew?.timeline ?? null,
    attempted: probe.length,
    acknowledged: probe.filter((e) => e.ok).length,
    failed: probe.filter((e) => !e.ok).length,
    failedAfterRecovery: recovery ? probe.filter((e) => !e.ok && e.t > recovery!.t).length : 0,
    ackedByOldPrimaryAfterFailover: firstNew ? probe.filter((e) => e.ok && e.t > firstNew.t && e.timeline === baselineTimeline).length : 0,
    errors: [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([error, count]) => ({ error, count })),
  };
}

/** Errors without the varying parts (addresses, pids, seconds), so that equal causes count together. */
export function normaliseError(e: string): string {
  return e
    .replace(/^psql: error: /, '')
    .replace(/connection to server at "[^"]*"(?: \([^)]*\))?, port \d+ failed: /, '')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 120) || 'failed';
}

/** Acknowledged sequence numbers missing from the rows found afterwards (sorted). */
export function missingRows(probe: ProbeEvent[], present: Iterable<number>): number[] {
  const have = new Set(present);
  return [...new Set(probe.filter((e) => e.ok).map((e) => e.seq))].filter((s) => !have.has(s)).sort((a, b) => a - b);
}
