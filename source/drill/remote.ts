/**
 * The scripts the drill runs on the servers, and parsers of what they print. Built with
 * sh``/quote(); secrets only inside heredocs (stdin), never in argv.
 *
 * Where the probe runs: on an app server of the table (app1), with psql, through the DB VIP.
 * That is the app's own path: pg_hba.conf (hostssl <appdb> <appuser> <app>/32) and the firewall
 * already let it in, so the drill needs no rule of its own on the database servers and tests
 * exactly what the application sees. The jump host only reads the lines as they arrive.
 */
import { heredoc, quote, sh } from '../engine/shell.js';
import { asPostgres, pgLayout, sqlLiteral } from '../../runbooks/lib/pg-layout.js';
import { pgpassField } from '../../runbooks/pg-standby.js';
import { parseKv } from '../../runbooks/lib/pg-facts.js';

export const DRILL_TABLE = 'ha_setup_drill';

export interface ProbeSpec {
  /** Random id of this drill: the rows' `run` column and the probe's work directory. */
  run: string;
  vip: string;
  port: number;
  db: string;
  user: string;
  /** The app user's password (goes into a 0600 passfile through a heredoc). */
  password: string;
  /** PEM of the cluster's CA, for sslmode=verify-full against the VIP; null: sslmode=require. */
  ca: string | null;
  /** Seconds after which the probe stops by itself (a safety net; the drill stops it earlier). */
  maxSeconds: number;
  /** Seconds one write may take before it counts as failed. */
  writeTimeout: number;
}

export const probeDir = (run: string): string => `/tmp/ha-setup-drill.${run}`;

/**
 * Writes numbered rows through the VIP, one connection per write (as a reconnecting client
 * would see the failover), printing `ACK <n> <timeline>` or `ERR <n> <error>` per attempt.
 */
export function probeScript(p: ProbeSpec): string {
  if (!/^[a-z0-9]+$/.test(p.run)) throw new Error(`bug: drill run id "${p.run}" must be lowercase letters and digits`);
  const dir = probeDir(p.run);
  const pass = heredoc(`${pgpassField(p.vip)}:${p.port}:${pgpassField(p.db)}:${pgpassField(p.user)}:${pgpassField(p.password)}`);
  const ca = p.ca ? heredoc(p.ca.replace(/\n$/, '')) : null;
  const ssl = p.ca ? `sslmode=verify-full sslrootcert=${dir}/ca.crt` : 'sslmode=require';
  const conn = `host=${p.vip} port=${p.port} dbname=${p.db} user=${p.user} ${ssl} connect_timeout=2 application_name=ha-setup-drill`;
  const create = `create table if not exists ${DRILL_TABLE} (run text not null, seq integer not null, at timestamptz not null default now(), primary key (run, seq))`;
  const insert = (n: string) => `insert into ${DRILL_TABLE} (run, seq) values (${sqlLiteral(p.run)}, ${n}) returning substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)`;
  return [
    'set +e',
    'command -v psql >/dev/null 2>&1 || { echo "SETUP-FAILED psql is not installed on this app server (install the PostgreSQL client: postgresql-client)"; exit 3; }',
    'umask 077',
    sh`rm -rf ${dir} && mkdir ${dir} || { echo "SETUP-FAILED cannot create ${dir}"; exit 3; }`,
    `trap ${quote(`rm -rf ${dir}`)} EXIT`,
    `cat > ${dir}/pgpass ${pass.open}`,
    pass.body,
    ...(ca ? [`cat > ${dir}/ca.crt ${ca.open}`, ca.body] : []),
    `export PGPASSFILE=${dir}/pgpass`,
    `conn=${quote(conn)}`,
    `if ! out=$(timeout 10 psql -X -At -q -v ON_ERROR_STOP=1 -d "$conn" -c ${quote(create)} 2>&1); then`,
    '  echo "SETUP-FAILED $(printf %s "$out" | tr \'\\n\' \' \')"; exit 3',
    'fi',
    'echo READY',
    `end=$(( $(date +%s) + ${Math.ceil(p.maxSeconds)} ))`,
    'n=0',
    `while [ ! -e ${dir}/stop ] && [ "$(date +%s)" -lt "$end" ]; do`,
    '  n=$((n + 1))',
    `  if out=$(timeout ${p.writeTimeout} psql -X -At -q -v ON_ERROR_STOP=1 -d "$conn" -c "${insert('$n')}" 2>&1); then`,
    '    echo "ACK $n $out"',
    '  else',
    '    echo "ERR $n $(printf %s "${out:-no answer within ' + p.writeTimeout + ' s}" | tr \'\\n\' \' \' | cut -c1-200)"',
    '    sleep 0.05',
    '  fi',
    'done',
    'echo "DONE $n"',
  ].join('\n');
}

/** Ends the probe gracefully (it finishes the write under way, then exits). */
export const stopProbeScript = (run: string): string => sh`touch ${`${probeDir(run)}/stop`} 2>/dev/null || true`;

/** Prints `VIP 1` / `VIP 0` each time this host starts or stops holding the address (checked every 50 ms). */
export function vipWatchScript(vip: string): string {
  return [
    'set +e',
    'last=',
    'while :; do',
    `  if ip -o addr show 2>/dev/null | grep -qF ${quote(` ${vip}/`)}; then s=1; else s=0; fi`,
    '  if [ "$s" != "$last" ]; then echo "VIP $s"; last=$s; fi',
    '  sleep 0.05',
    'done',
  ].join('\n');
}

/** psql as postgres on the local socket, any family; SQL on stdin. */
export function localPsql(version: number, port: number, db: string, sql: string): string {
  const d = pgLayout('debian', version);
  const r = pgLayout('rhel', version);
  const doc = heredoc(sql);
  return [
    `if [ -r /etc/debian_version ]; then psql=${quote(`${d.binDir}/psql`)}; else psql=${quote(`${r.binDir}/psql`)}; fi`,
    `${asPostgres(sh`"$psql" -X -At -q -v ON_ERROR_STOP=1 -h /var/run/postgresql -p ${port} -d ${db}`)} ${doc.open}`,
    doc.body,
  ].join('\n');
}

export interface NodeState {
  postgres: 'primary' | 'standby' | 'down';
  timeline: number | null;
  /** Standby: pg_stat_wal_receiver.status (streaming ...), or none. */
  receiver: string | null;
  holdsVip: boolean;
  fenced: boolean;
  keepalived: string;
  /** PostgreSQL's unit (from the OS family). */
  unit: string;
  /** The interface that carries the host's table address. */
  iface: string;
  family: 'debian' | 'rhel';
}

/** What a DB node is now: PostgreSQL's role, the VIP, the fence, keepalived. */
export function nodeStateScript(version: number, port: number, vip: string, address: string): string {
  const sql =
    "select case when pg_is_in_recovery() then 'standby ' || coalesce((select status from pg_stat_wal_receiver), 'none') else 'primary ' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) end;";
  return [
    'set +e',
    `if [ -r /etc/debian_version ]; then echo FAMILY=debian; echo ${quote(`UNIT=${pgLayout('debian', version).unit}`)}; else echo FAMILY=rhel; echo ${quote(`UNIT=${pgLayout('rhel', version).unit}`)}; fi`,
    `pg=$(${localPsql(version, port, 'postgres', sql)}`,
    ') || pg=down',
    'echo "PG=$pg"',
    `echo "VIP=$(ip -o addr show 2>/dev/null | grep -qF ${quote(` ${vip}/`)} && echo yes || echo no)"`,
    'echo "FENCED=$([ -f /var/lib/ha-setup/keepalived/pg-fenced ] && echo yes || echo no)"',
    'echo "KEEPALIVED=$(systemctl is-active keepalived 2>/dev/null || true)"',
    `echo "IFACE=$(ip -o addr show 2>/dev/null | awk -v a=${quote(address)} '{ split($4, p, "/"); if (p[1] == a) { print $2; exit } }')"`,
  ].join('\n');
}

export function parseNodeState(stdout: string): NodeState {
  const kv = parseKv(stdout);
  const pg = (kv.PG ?? 'down').trim().split(/\s+/);
  const postgres = pg[0] === 'primary' || pg[0] === 'standby' ? pg[0] : 'down';
  return {
    postgres,
    timeline: postgres === 'primary' && /^[0-9A-Fa-f]{8}$/.test(pg[1] ?? '') ? Number.parseInt(pg[1]!, 16) : null,
    receiver: postgres === 'standby' ? (pg[1] ?? null) : null,
    holdsVip: kv.VIP === 'yes',
    fenced: kv.FENCED === 'yes',
    keepalived: kv.KEEPALIVED || 'unknown',
    unit: kv.UNIT ?? '',
    iface: kv.IFACE ?? '',
    family: kv.FAMILY === 'rhel' ? 'rhel' : 'debian',
  };
}

/** The sequence numbers of this drill's rows, as one comma-separated line. */
export function rowsScript(version: number, port: number, db: string, run: string): string {
  return localPsql(version, port, db, `select coalesce(string_agg(seq::text, ',' order by seq), '') from ${DRILL_TABLE} where run = ${sqlLiteral(run)};`);
}

export function parseRows(stdout: string): number[] {
  const line = stdout.trim().split('\n').pop() ?? '';
  return line ? line.split(',').map(Number).filter(Number.isInteger) : [];
}

/** Removes this drill's rows, and the table when no other drill's rows are left in it. */
export function cleanupScript(version: number, port: number, db: string, run: string): string {
  return localPsql(
    version,
    port,
    db,
    `delete from ${DRILL_TABLE} where run = ${sqlLiteral(run)};\ndo $$ begin if not exists (select 1 from ${DRILL_TABLE}) then drop table ${DRILL_TABLE}; end if; end $$;`,
  );
}

/** The keepalived scripts' decisions logged since `sinceEpoch` (seconds), oldest first. */
export function journalScript(sinceEpoch: number, tag: string): string {
  return `journalctl -t ${quote(tag)} --since ${quote(`@${Math.floor(sinceEpoch)}`)} -o short-iso-precise --no-pager -q 2>/dev/null || true`;
}

/** `2024-05-01T10:00:00.123456+0000 host tag[pid]: message` -> [time, message]. */
export function parseJournal(stdout: string): { time: string; message: string }[] {
  const out: { time: string; message: string }[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^(\S+)\s+\S+\s+[^:]+:\s(.*)$/.exec(line);
    if (m) out.push({ time: m[1]!.replace(/^\d{4}-\d\d-\d\dT/, '').replace(/(\.\d{3})\d*/, '$1').replace(/[+-]\d{4}$/, ''), message: m[2]! });
  }
  return out;
}
