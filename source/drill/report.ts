/**
 * The drill's report as plain text (a table people read in a terminal or a CI log). --json
 * prints the DrillReport object itself.
 */
import type { DrillReport } from './run.js';

const s = (ms: number | null): string => (ms === null ? 'never' : `${(ms / 1000).toFixed(2)} s`);

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => `  ${r.map((c, i) => (i < r.length - 1 ? c.padEnd(widths[i]!) : c)).join('  ')}`.trimEnd());
}

export function formatReport(r: DrillReport): string {
  const m = r.measured;
  const lines: string[] = [];
  lines.push(`Drill db (${r.mode === 'lab' ? 'lab' : 'real servers'}): ${r.fault} on ${r.target.alias} (${r.target.address}); probe on ${r.probeFrom.alias} through the VIP ${r.vip}`);
  lines.push('');
  const holder = r.after.vipHolders.length === 1 ? r.after.hosts.find((h) => h.alias === r.after.vipHolders[0])! : null;
  const primary = r.after.primaries.length === 1 ? r.after.hosts.find((h) => h.alias === r.after.primaries[0])! : null;
  lines.push(
    ...table([
      ['VIP moved to ' + r.survivor.alias + ' after', s(m.vipMovedMs)],
      ['writes succeed again (RTO) after', `${s(m.rtoMs)}${m.outageMs !== null && m.outageMs > 0 ? `   (no write acknowledged for ${s(m.outageMs)})` : ''}`],
      ['acknowledged rows lost (RPO)', r.rpo.missing === null ? 'not checked (no single primary holds the VIP)' : `${r.rpo.missing} of ${r.rpo.acknowledged}${r.rpo.missing ? `: #${r.rpo.missingSeqs.join(', #')}${r.rpo.missing > r.rpo.missingSeqs.length ? ' ...' : ''}` : ''} (${r.replication} replication)`],
      ['writes attempted / failed', `${m.attempted} / ${m.failed}${m.failedAfterRecovery ? ` (${m.failedAfterRecovery} after the RTO point)` : ''}`],
      ['VIP held by', r.after.vipHolders.length ? r.after.vipHolders.map((a) => `${a} (${r.after.hosts.find((h) => h.alias === a)!.address})`).join(', ') : 'nobody'],
      ['primary', primary ? `${primary.alias} (timeline ${primary.timeline ?? '?'})` : r.after.primaries.length ? r.after.primaries.join(', ') : 'none'],
    ]),
  );
  if (m.errors.length) {
    lines.push('', '  errors the probe saw:');
    for (const e of m.errors) lines.push(`    ${String(e.count).padStart(4)} x ${e.error}`);
  }
  lines.push('');
  lines.push(
    ...table([
      ['server', 'address', 'VIP', 'PostgreSQL', 'keepalived', 'fenced'],
      ...r.after.hosts.map((h) => [
        h.alias,
        h.address,
        h.holdsVip ? 'yes' : '-',
        h.error ? 'unreachable' : h.postgres === 'primary' ? `primary (timeline ${h.timeline ?? '?'})` : h.postgres === 'standby' ? `standby (${h.receiver ?? '?'})` : 'down',
        h.keepalived,
        h.fenced ? 'yes' : '-',
      ]),
    ]),
  );
  lines.push('', '  checks:');
  for (const c of r.checks) lines.push(`    ${c.ok ? 'ok  ' : 'FAIL'}  ${c.name} (${c.detail})`);
  if (r.decisions.length) {
    lines.push('', "  keepalived's decisions (journal, tag ha-setup-keepalived):");
    const w = Math.max(...r.decisions.map((d) => d.host.length));
    for (const d of r.decisions) lines.push(`    ${d.time}  ${d.host.padEnd(w)}  ${d.message}`);
  }
  const old = r.after.hosts.find((h) => h.alias === r.target.alias);
  if (old && old.postgres !== 'primary' && holder && holder.alias !== old.alias) {
    lines.push('', `  ${old.alias} is out of the pair${old.fenced ? ' (fenced: PostgreSQL starts there only as a standby)' : ''}; bring it back as a standby with: ha-setup rejoin db`);
  }
  lines.push('', r.ok ? 'drill passed' : `drill FAILED: ${r.checks.filter((c) => !c.ok).length} check(s) failed`);
  return `${lines.join('\n')}\n`;
}
