/**
 * The NFS drill's report as plain text (a table people read in a terminal or a CI log), laid out
 * like the DB drill's (source/drill/report.ts). --json prints the NfsDrillReport object itself.
 */
import type { NfsDrillReport } from './nfs-run.js';

const s = (ms: number | null): string => (ms === null ? 'never' : `${(ms / 1000).toFixed(2)} s`);

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => `  ${r.map((c, i) => (i < r.length - 1 ? c.padEnd(widths[i]!) : c)).join('  ')}`.trimEnd());
}

/** `: #1, #2 ...` for the first numbers of a list of `count`. */
const seqs = (list: number[], count: number, max = 12): string => (count ? `: #${list.slice(0, max).join(', #')}${count > Math.min(max, list.length) ? ' ...' : ''}` : '');

export function formatNfsReport(r: NfsDrillReport): string {
  const m = r.measured;
  const rpo = r.rpo;
  const lines: string[] = [];
  lines.push(`Drill nfs (${r.mode === 'lab' ? 'lab' : 'real servers'}): ${r.fault} on ${r.target.alias} (${r.target.address}); probe on ${r.probe.from.alias} through the NFS VIP ${r.vip}`);
  lines.push(`  probe tool: ${r.probe.tool ?? 'none'}${r.probe.detail ? ` (${r.probe.detail})` : ''}; a write counts as failed after ${r.probe.writeTimeoutSec} s`);
  lines.push('');
  const lost =
    rpo.checkedOn === null
      ? 'not checked (no single VIP holder, or its files could not be read)'
      : `${rpo.missing} of ${rpo.acknowledged} on ${rpo.checkedOn}${seqs(rpo.seqs.missing, rpo.missing)}`;
  lines.push(
    ...table([
      [`VIP moved to ${r.survivor.alias} after`, s(m.vipMovedMs)],
      ['writes succeed again (RTO) after', `${s(m.rtoMs)}${m.outageMs !== null && m.outageMs > 0 ? `   (no write acknowledged for ${s(m.outageMs)})` : ''}`],
      ['acknowledged files lost (RPO)', lost],
      ...(rpo.checkedOn === null
        ? []
        : [
            ['  written before the failover', `${rpo.missingBeforeFailover} (the replication window: expected up to ~${s(r.replication.windowMs)} of writes)`],
            ['  written after the failover', `${rpo.missingAfterFailover}${seqs(rpo.seqs.afterFailover, rpo.missingAfterFailover)}`],
          ]),
      [
        'replication lag observed',
        r.replication.lagAtFaultMs === null
          ? 'not observed'
          : `${s(r.replication.lagAtFaultMs)} at the fault (${r.replication.unreplicatedAtFault} file(s) not yet on ${r.survivor.alias}); up to ${s(r.replication.maxLagMs)} over ${r.replication.passes} pass(es); timer every ${r.replication.intervalSec} s`,
      ],
      ['writes attempted / failed', `${m.attempted} / ${m.failed}${m.failedAfterRecovery ? ` (${m.failedAfterRecovery} after the RTO point)` : ''}`],
      ['VIP held by', r.after.vipHolders.length ? r.after.vipHolders.map((a) => `${a} (${r.after.hosts.find((h) => h.alias === a)!.address})`).join(', ') : 'nobody'],
    ]),
  );
  lines.push('', `  RPO: ${rpo.note}.`);
  if (rpo.keptAsideOnOld || rpo.onOldOnly) {
    const old = r.after.hosts.find((h) => h.alias !== rpo.checkedOn)?.alias ?? r.target.alias;
    lines.push(`  Of the lost files, ${rpo.onOldOnly} were still in ${old}'s copy and ${rpo.keptAsideOnOld} kept aside by the replication on ${old} (before the drill removed them).`);
  }
  if (m.errors.length) {
    lines.push('', '  errors the probe saw:');
    for (const e of m.errors) lines.push(`    ${String(e.count).padStart(4)} x ${e.error}`);
  }
  lines.push('');
  lines.push(
    ...table([
      ['server', 'address', 'VIP', r.share.unit, 'port 2049', 'keepalived', 'replication timer'],
      ...r.after.hosts.map((h) =>
        h.error ? [h.alias, h.address, '?', 'unreachable', '-', '-', '-'] : [h.alias, h.address, h.holdsVip ? 'yes' : '-', h.nfs, h.port ? 'answers' : '-', h.keepalived, h.timer],
      ),
    ]),
  );
  lines.push('', '  checks:');
  for (const c of r.checks) lines.push(`    ${c.ok ? 'ok  ' : 'FAIL'}  ${c.name} (${c.detail})`);
  if (r.decisions.length) {
    lines.push('', "  keepalived's decisions (journal, tag ha-setup-keepalived, and keepalived's VRRP state changes):");
    const w = Math.max(...r.decisions.map((d) => d.host.length));
    for (const d of r.decisions) lines.push(`    ${d.time}  ${d.host.padEnd(w)}  ${d.message}`);
  }
  lines.push('', '  what to check now:');
  for (const a of r.advice) lines.push(`    - ${a}`);
  if (r.undone) lines.push(`    - the fault was undone: ${r.undone}`);
  lines.push('', r.ok ? 'drill passed' : `drill FAILED: ${r.checks.filter((c) => !c.ok).length} check(s) failed`);
  return `${lines.join('\n')}\n`;
}
