/**
 * Read-only facts the PostgreSQL runbooks plan from. Every script prints KEY=value lines (file
 * contents and command outputs base64-encoded, SQL results as one-line JSON), and every parser
 * is a pure function of that text, tested with recorded outputs.
 *
 * A fact's script may depend on the options (version, port) but not on another fact, so
 * scripts that need the OS family find it themselves (/etc/debian_version).
 */
import ipaddr from 'ipaddr.js';
import { quote, sh } from '../../source/engine/shell.js';
import type { FactDef, HostContext } from '../../source/engine/step.js';
import { DROPIN, pgLayout, TLS, type PgFamily } from './pg-layout.js';
import type { LiveSetting } from './pg-settings.js';

// ---------------------------------------------------------------------------------------------
// Output helpers

/** KEY=value lines; the last occurrence of a key wins. */
export function parseKv(stdout: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

/** A base64 field: null for "-" or a missing key (file absent), else the decoded text. */
export function b64(kv: Record<string, string>, key: string): string | null {
  const v = kv[key];
  if (v === undefined || v === '-') return null;
  return Buffer.from(v, 'base64').toString('utf8');
}

function json<T>(kv: Record<string, string>, key: string, fallback: T): T {
  const v = kv[key];
  if (v === undefined || v === '') return fallback;
  try {
    return JSON.parse(v) as T;
  } catch {
    return fallback;
  }
}

/** Shell functions shared by the fact scripts (bash, set -euo pipefail). */
const PRELUDE = [
  'have() { command -v "$1" >/dev/null 2>&1; }',
  // b64 FILE KEY: the file's content base64-encoded, or "-" when absent.
  'b64() { if [ -f "$1" ]; then echo "$2=$(base64 -w0 < "$1" || true)"; else echo "$2=-"; fi; }',
  // b64cmd KEY command...: the command's stdout base64-encoded (empty on failure).
  'b64cmd() { local k=$1 o; shift; o=$("$@" 2>/dev/null) || true; echo "$k=$(printf %s "$o" | base64 -w0)"; }',
].join('\n');

/** Shell lines that set fam, datadir, confdir, bindir, unit for a PostgreSQL version. */
function layoutShell(version: number): string {
  const d = pgLayout('debian', version);
  const r = pgLayout('rhel', version);
  return [
    'if [ -r /etc/debian_version ]; then',
    `  fam=debian datadir=${quote(d.dataDir)} confdir=${quote(d.confDir)} bindir=${quote(d.binDir)} unit=${quote(d.unit)}`,
    'else',
    `  fam=rhel datadir=${quote(r.dataDir)} confdir=${quote(r.confDir)} bindir=${quote(r.binDir)} unit=${quote(r.unit)}`,
    'fi',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL on this host

export interface PgSlot {
  name: string;
  type: string;
  active: boolean;
}
export interface PgReplicationRow {
  applicationName: string;
  clientAddr: string | null;
  state: string;
  syncState: string;
  lagBytes: number | null;
  lagSeconds: number | null;
}
export interface PgWalReceiver {
  status: string;
  slotName: string | null;
  /** host= of its conninfo. */
  senderHost: string | null;
  conninfo: string;
}
export interface PgRole {
  name: string;
  login: boolean;
  replication: boolean;
  superuser: boolean;
  createdb: boolean;
  createrole: boolean;
  /** none, md5, other, or scram with iterations, salt and md5 of "StoredKey:ServerKey". */
  password: { kind: 'none' | 'md5' | 'other' } | { kind: 'scram'; iterations: number; salt: string; keysMd5: string };
}
export interface PgDatabase {
  name: string;
  owner: string;
  /** datacl as text; null = the defaults (PUBLIC may CONNECT). */
  acl: string | null;
}

export interface PgFacts {
  family: PgFamily;
  /** Major versions whose server binaries are installed. */
  installedVersions: number[];
  /** The chosen version's server binaries are installed. */
  binaries: boolean;
  dataDirExists: boolean;
  /** PG_VERSION of the data directory: the cluster is initialised. */
  dataVersion: number | null;
  /** From pg_controldata (works while stopped). */
  systemIdentifier: string | null;
  /** "in production", "shut down", "shut down in recovery", "in archive recovery" ... */
  clusterState: string | null;
  /** standby.signal (12+) or recovery.conf (up to 11) present. */
  standbyConfigured: boolean;
  /** Database directories under base/ (3 = template0, template1, postgres). */
  baseDirs: number;
  running: boolean;
  livePort: number | null;
  unitEnabled: string;
  /** The include lines of postgresql.conf (include, include_dir, include_if_exists). */
  includes: string[];
  hba: string | null;
  dropIns: { replication: string | null; ssl: string | null };
  dropInDirExists: boolean;
  /** Content of the clone marker (the primary's system identifier), if a clone was interrupted. */
  cloneMarker: string | null;
  /** From SQL, only while running (null/empty otherwise). */
  inRecovery: boolean | null;
  serverVersionNum: number | null;
  settings: Record<string, LiveSetting>;
  slots: PgSlot[];
  replication: PgReplicationRow[];
  walReceiver: PgWalReceiver | null;
  databases: PgDatabase[];
  roles: PgRole[];
  /** Tables in the postgres database outside the system schemas. */
  userTablesInPostgresDb: number | null;
  /** PUBLIC may CREATE in schema public of the postgres database. */
  publicCreateInPostgresDb: boolean | null;
}

/** SQL run while the server runs: one `KEY=json` line per query. */
export const FACT_SQL = `
select 'SQL_INFO=' || jsonb_build_object('in_recovery', pg_is_in_recovery(), 'version_num', current_setting('server_version_num')::int)::text;
select 'SQL_SETTINGS=' || coalesce(jsonb_agg(jsonb_build_array(name, setting, coalesce(unit, ''), context, pending_restart, coalesce(sourcefile, '')))::text, '[]') from pg_settings;
select 'SQL_SLOTS=' || coalesce(jsonb_agg(jsonb_build_object('name', slot_name, 'type', slot_type, 'active', active))::text, '[]') from pg_replication_slots;
select 'SQL_REPLICATION=' || coalesce(jsonb_agg(jsonb_build_object('application_name', application_name, 'client_addr', host(client_addr), 'state', state, 'sync_state', sync_state, 'lag_bytes', case when pg_is_in_recovery() then null else pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) end, 'lag_seconds', extract(epoch from replay_lag)))::text, '[]') from pg_stat_replication;
select 'SQL_WAL_RECEIVER=' || coalesce(jsonb_agg(jsonb_build_object('status', status, 'slot_name', slot_name, 'conninfo', conninfo))::text, '[]') from pg_stat_wal_receiver;
select 'SQL_DATABASES=' || coalesce(jsonb_agg(jsonb_build_object('name', datname, 'owner', pg_get_userbyid(datdba), 'acl', datacl::text))::text, '[]') from pg_database where datname not in ('template0', 'template1');
select 'SQL_ROLES=' || coalesce(jsonb_agg(jsonb_build_object('name', rolname, 'login', rolcanlogin, 'replication', rolreplication, 'superuser', rolsuper, 'createdb', rolcreatedb, 'createrole', rolcreaterole, 'password', case when rolpassword is null then 'none' when rolpassword like 'SCRAM-SHA-256$%' then 'scram:' || split_part(split_part(rolpassword, '$', 2), ':', 1) || ':' || split_part(split_part(rolpassword, '$', 2), ':', 2) || ':' || md5(split_part(rolpassword, '$', 3)) when rolpassword like 'md5%' then 'md5' else 'other' end))::text, '[]') from pg_authid where rolname !~ '^pg_';
select 'SQL_USER_TABLES=' || count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_toast';
select 'SQL_PUBLIC_CREATE=' || has_schema_privilege('public', 'public', 'CREATE');
`.trim();

/** PostgreSQL of the chosen version on this host: installed, initialised, running, its state. */
export function pgFact(version: number): FactDef<PgFacts> {
  const script = [
    PRELUDE,
    layoutShell(version),
    'echo "FAMILY=$fam"',
    'if [ $fam = debian ]; then echo "INSTALLED=$(ls /usr/lib/postgresql 2>/dev/null | tr \'\\n\' \' \' || true)";',
    'else echo "INSTALLED=$(ls -d /usr/pgsql-* 2>/dev/null | sed \'s|/usr/pgsql-||\' | tr \'\\n\' \' \' || true)"; fi',
    'echo "BINARIES=$([ -x "$bindir/postgres" ] && echo yes || echo no)"',
    'echo "DATADIR=$([ -d "$datadir" ] && echo yes || echo no)"',
    'echo "PG_VERSION=$(cat "$datadir/PG_VERSION" 2>/dev/null || true)"',
    'if [ -x "$bindir/pg_controldata" ] && [ -f "$datadir/global/pg_control" ]; then b64cmd CONTROL env LC_ALL=C "$bindir/pg_controldata" "$datadir"; fi',
    'echo "STANDBY=$([ -f "$datadir/standby.signal" ] || [ -f "$datadir/recovery.conf" ] && echo yes || echo no)"',
    'echo "BASE_DIRS=$(find "$datadir/base" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | wc -l || true)"',
    'running=no port= sock=/var/run/postgresql',
    'if [ -f "$datadir/postmaster.pid" ]; then',
    '  pid=$(head -1 "$datadir/postmaster.pid" 2>/dev/null || true)',
    '  comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)',
    '  if [ -n "$pid" ] && { [ "$comm" = postgres ] || [ "$comm" = postmaster ]; }; then',
    '    running=yes port=$(sed -n 4p "$datadir/postmaster.pid" || true) sock=$(sed -n 5p "$datadir/postmaster.pid" || true)',
    '  fi',
    'fi',
    'echo "RUNNING=$running"',
    'echo "LIVE_PORT=$port"',
    'echo "UNIT_ENABLED=$(systemctl is-enabled "$unit" 2>/dev/null || true)"',
    'echo "INCLUDES=$(grep -E \'^[[:space:]]*include\' "$confdir/postgresql.conf" 2>/dev/null | base64 -w0 || true)"',
    'b64 "$confdir/pg_hba.conf" HBA',
    `b64 "$confdir/conf.d/${DROPIN.replication}" DROPIN_REPLICATION`,
    `b64 "$confdir/conf.d/${DROPIN.ssl}" DROPIN_SSL`,
    'echo "DROPIN_DIR=$([ -d "$confdir/conf.d" ] && echo yes || echo no)"',
    'b64 "$(dirname "$datadir")/ha-setup-clone-in-progress" CLONE_MARKER',
    'if [ $running = yes ]; then',
    `  (cd / && runuser -u postgres -- "$bindir/psql" -X -At -h "\${sock:-/var/run/postgresql}" -p "$port" -d postgres) <<'HA_SETUP_SQL' || true`,
    FACT_SQL,
    'HA_SETUP_SQL',
    'fi',
  ].join('\n');
  return { id: `pg-${version}`, sudo: true, script, parse: parsePgFacts };
}

export function parseControlData(text: string | null): { systemIdentifier: string | null; clusterState: string | null } {
  if (!text) return { systemIdentifier: null, clusterState: null };
  const sys = /^Database system identifier:\s*(\d+)/m.exec(text)?.[1] ?? null;
  const state = /^Database cluster state:\s*(.+?)\s*$/m.exec(text)?.[1] ?? null;
  return { systemIdentifier: sys, clusterState: state };
}

function parseRolePassword(p: string): PgRole['password'] {
  const m = /^scram:(\d+):([^:]+):([0-9a-f]{32})$/.exec(p);
  if (m) return { kind: 'scram', iterations: Number(m[1]), salt: m[2]!, keysMd5: m[3]! };
  return { kind: p === 'none' ? 'none' : p === 'md5' ? 'md5' : 'other' };
}

export function senderHost(conninfo: string): string | null {
  return /(?:^|\s)host=('(?:[^'\\]|\\.)*'|\S+)/.exec(conninfo)?.[1]?.replace(/^'|'$/g, '') ?? null;
}

export function parsePgFacts(stdout: string): PgFacts {
  const kv = parseKv(stdout);
  const ctl = parseControlData(b64(kv, 'CONTROL'));
  const info = json<{ in_recovery?: boolean; version_num?: number }>(kv, 'SQL_INFO', {});
  const running = kv.RUNNING === 'yes';
  const settings: Record<string, LiveSetting> = {};
  for (const row of json<[string, string, string, string, boolean, string][]>(kv, 'SQL_SETTINGS', [])) {
    settings[row[0]] = { setting: row[1], unit: row[2], context: row[3], pendingRestart: row[4], sourcefile: row[5] };
  }
  const wr = json<{ status: string; slot_name: string | null; conninfo: string | null }[]>(kv, 'SQL_WAL_RECEIVER', [])[0];
  const userTables = kv.SQL_USER_TABLES;
  const dataVersion = Number.parseInt(kv.PG_VERSION ?? '', 10);
  return {
    family: kv.FAMILY === 'debian' ? 'debian' : 'rhel',
    installedVersions: (kv.INSTALLED ?? '').split(/\s+/).map(Number).filter((n) => Number.isInteger(n) && n > 0).sort((a, b) => a - b),
    binaries: kv.BINARIES === 'yes',
    dataDirExists: kv.DATADIR === 'yes',
    dataVersion: Number.isFinite(dataVersion) ? dataVersion : null,
    ...ctl,
    standbyConfigured: kv.STANDBY === 'yes',
    baseDirs: Number(kv.BASE_DIRS ?? 0) || 0,
    running,
    livePort: running && kv.LIVE_PORT ? Number(kv.LIVE_PORT) || null : null,
    unitEnabled: kv.UNIT_ENABLED ?? '',
    includes: (b64(kv, 'INCLUDES') ?? '').split('\n').map((l) => l.trim()).filter(Boolean),
    hba: b64(kv, 'HBA'),
    dropIns: { replication: b64(kv, 'DROPIN_REPLICATION'), ssl: b64(kv, 'DROPIN_SSL') },
    dropInDirExists: kv.DROPIN_DIR === 'yes',
    cloneMarker: b64(kv, 'CLONE_MARKER')?.trim() || null,
    inRecovery: running && typeof info.in_recovery === 'boolean' ? info.in_recovery : null,
    serverVersionNum: running && typeof info.version_num === 'number' ? info.version_num : null,
    settings,
    slots: json<{ name: string; type: string; active: boolean }[]>(kv, 'SQL_SLOTS', []).map((s) => ({ name: s.name, type: s.type, active: s.active })),
    replication: json<Record<string, unknown>[]>(kv, 'SQL_REPLICATION', []).map((r) => ({
      applicationName: String(r.application_name ?? ''),
      clientAddr: (r.client_addr as string | null) ?? null,
      state: String(r.state ?? ''),
      syncState: String(r.sync_state ?? ''),
      lagBytes: r.lag_bytes === null || r.lag_bytes === undefined ? null : Number(r.lag_bytes),
      lagSeconds: r.lag_seconds === null || r.lag_seconds === undefined ? null : Number(r.lag_seconds),
    })),
    walReceiver: wr ? { status: wr.status, slotName: wr.slot_name, conninfo: wr.conninfo ?? '', senderHost: senderHost(wr.conninfo ?? '') } : null,
    databases: json<{ name: string; owner: string; acl: string | null }[]>(kv, 'SQL_DATABASES', []),
    roles: json<(Omit<PgRole, 'password'> & { password: string })[]>(kv, 'SQL_ROLES', []).map((r) => ({ ...r, password: parseRolePassword(r.password) })),
    userTablesInPostgresDb: userTables !== undefined && userTables !== '' ? Number(userTables) : null,
    publicCreateInPostgresDb: kv.SQL_PUBLIC_CREATE === 'true' ? true : kv.SQL_PUBLIC_CREATE === 'false' ? false : null,
  };
}

/** Databases other than postgres (template0/1 are never listed); stopped: their count on disk. */
export function userDatabases(pg: PgFacts): string[] | number {
  if (pg.running && pg.inRecovery !== null) return pg.databases.map((d) => d.name).filter((n) => n !== 'postgres');
  // Stopped: count database directories (template1, template0, postgres are the first three).
  return Math.max(0, pg.baseDirs - 3);
}

/** The cluster holds data someone may want: user databases, or tables in the postgres database. */
export function holdsData(pg: PgFacts): string | null {
  const dbs = userDatabases(pg);
  if (typeof dbs === 'number' && dbs > 0) return `${dbs} user database(s) on disk`;
  if (Array.isArray(dbs) && dbs.length) return `user databases ${dbs.join(', ')}`;
  if (pg.userTablesInPostgresDb) return `${pg.userTablesInPostgresDb} table(s) in the postgres database`;
  return null;
}

export function hasIncludeDir(includes: string[], dir = 'conf.d'): boolean {
  return includes.some((l) => new RegExp(`^include_dir\\s*=?\\s*'?${dir.replace(/\./g, '\\.')}'?\\s*(#.*)?$`).test(l));
}

// ---------------------------------------------------------------------------------------------
// The peer: the primary as the standby sees it over the network (replication connection)

export interface PeerFacts {
  ok: boolean;
  error: string | null;
  systemIdentifier: string | null;
  timeline: number | null;
  serverVersionNum: number | null;
  /** SHOW in_hot_standby (14+): the peer is itself in recovery. null when unknown. */
  inHotStandby: boolean | null;
  settings: Record<string, number>;
}

const PEER_SETTINGS = ['max_connections', 'max_worker_processes', 'max_wal_senders', 'max_prepared_transactions', 'max_locks_per_transaction', 'server_version_num'];

/**
 * The primary's system identifier and settings, read from the standby through a replication
 * connection as replicator (IDENTIFY_SYSTEM and SHOW, both replication commands since 10), with
 * the password from ha-setup's passfile: nothing secret in the script, nothing in argv.
 */
export function peerPgFact(opts: { version: number; peer: string; port: number; paths?: { psql: string; passfile: string; ca: string } }): FactDef<PeerFacts> {
  const d = pgLayout('debian', opts.version);
  const r = pgLayout('rhel', opts.version);
  const shows = PEER_SETTINGS.map((s) => sh`-c ${`SHOW ${s}`}`).join(' ');
  const ca = opts.paths?.ca ?? TLS.ca;
  const script = [
    ...(opts.paths
      ? [`psql=${quote(opts.paths.psql)} pf=${quote(opts.paths.passfile)}`]
      : ['if [ -r /etc/debian_version ]; then', `  psql=${quote(`${d.binDir}/psql`)} pf=${quote(d.passfile)}`, 'else', `  psql=${quote(`${r.binDir}/psql`)} pf=${quote(r.passfile)}`, 'fi']),
    'if [ ! -x "$psql" ]; then echo "PEER_ERROR=$psql is not installed"; exit 0; fi',
    'if [ ! -f "$pf" ]; then echo "PEER_ERROR=no replication password file $pf yet"; exit 0; fi',
    `if [ -f ${quote(ca)} ]; then ssl=${quote(`sslmode=verify-full sslrootcert=${ca}`)}; else ssl=sslmode=require; fi`,
    `conn="host=${opts.peer} port=${opts.port} user=replicator dbname=replication replication=true connect_timeout=5 passfile=$pf $ssl"`,
    `if out=$(cd / && runuser -u postgres -- "$psql" -X -At -w -d "$conn" -c IDENTIFY_SYSTEM ${shows} 2>&1); then`,
    '  echo "PEER_OUT=$(printf %s "$out" | base64 -w0)"',
    '  hs=$(cd / && runuser -u postgres -- "$psql" -X -At -w -d "$conn" -c "SHOW in_hot_standby" 2>/dev/null || true)',
    '  echo "PEER_HOT_STANDBY=$hs"',
    'else',
    '  echo "PEER_ERROR=$(printf %s "$out" | tr \'\\n\' \' \')"',
    'fi',
  ].join('\n');
  if (!/^[A-Za-z0-9.:_-]+$/.test(opts.peer)) throw new Error(`peer address "${opts.peer}" is not a plain host name or IP address`);
  return { id: `peer-pg-${opts.peer}`, sudo: true, script, parse: parsePeerFacts };
}

export function parsePeerFacts(stdout: string): PeerFacts {
  const kv = parseKv(stdout);
  const empty: PeerFacts = { ok: false, error: null, systemIdentifier: null, timeline: null, serverVersionNum: null, inHotStandby: null, settings: {} };
  if (kv.PEER_ERROR !== undefined || kv.PEER_OUT === undefined) return { ...empty, error: (kv.PEER_ERROR ?? 'no answer').trim() || 'no answer' };
  const lines = (b64(kv, 'PEER_OUT') ?? '').split('\n').filter((l) => l !== '');
  const ident = (lines[0] ?? '').split('|');
  const settings: Record<string, number> = {};
  PEER_SETTINGS.forEach((name, i) => {
    const v = Number(lines[i + 1]);
    if (Number.isFinite(v)) settings[name] = v;
  });
  if (!/^\d+$/.test(ident[0] ?? '')) return { ...empty, error: `unexpected IDENTIFY_SYSTEM answer: ${lines[0] ?? ''}` };
  return {
    ok: true,
    error: null,
    systemIdentifier: ident[0]!,
    timeline: Number(ident[1]) || null,
    serverVersionNum: settings.server_version_num ?? null,
    inHotStandby: kv.PEER_HOT_STANDBY === 'on' ? true : kv.PEER_HOT_STANDBY === 'off' ? false : null,
    settings,
  };
}

// ---------------------------------------------------------------------------------------------
// Network: addresses and interfaces, host names

export interface NetAddress {
  iface: string;
  family: 'inet' | 'inet6';
  address: string;
  prefix: number;
  scope: string;
}
export interface NetFacts {
  addresses: NetAddress[];
  hostname: string;
  fqdn: string;
}

export const netFact: FactDef<NetFacts> = {
  id: 'net-addresses',
  script: [
    'echo "HOSTNAME=$(hostname 2>/dev/null || true)"',
    'echo "FQDN=$(hostname -f 2>/dev/null || true)"',
    'echo "ADDRS=$(ip -o addr show 2>/dev/null | base64 -w0 || true)"',
  ].join('\n'),
  parse: parseNetFacts,
};

export function parseNetFacts(stdout: string): NetFacts {
  const kv = parseKv(stdout);
  const addresses: NetAddress[] = [];
  for (const line of (b64(kv, 'ADDRS') ?? '').split('\n')) {
    const m = /^\d+:\s+(\S+?)(?:@\S+)?\s+(inet6?)\s+([0-9a-fA-F.:]+)\/(\d+)\b.*?\bscope\s+(\S+)/.exec(line);
    if (m) addresses.push({ iface: m[1]!, family: m[2] as 'inet' | 'inet6', address: m[3]!, prefix: Number(m[4]), scope: m[5]! });
  }
  return { addresses, hostname: kv.HOSTNAME ?? '', fqdn: kv.FQDN ?? '' };
}

/** The interface whose subnet holds `target` (an IP address), or null. */
export function interfaceFor(addresses: NetAddress[], target: string): string | null {
  if (!ipaddr.isValid(target)) return null;
  const t = ipaddr.process(target);
  for (const a of addresses) {
    if (a.scope === 'host') continue;
    const own = ipaddr.process(a.address);
    if (own.kind() === t.kind() && t.match(own, a.prefix)) return a.iface;
  }
  return null;
}

/** The host holds this address itself (e.g. the DB VIP is bound here). */
export function holdsAddress(addresses: NetAddress[], target: string): boolean {
  if (!ipaddr.isValid(target)) return false;
  const t = ipaddr.process(target).toNormalizedString();
  return addresses.some((a) => ipaddr.process(a.address).toNormalizedString() === t);
}

// ---------------------------------------------------------------------------------------------
// Names in the table that are not IP addresses, resolved on this host

export type Resolved = Record<string, string[]>;

/** getent ahosts for each name (the DB node's own view of DNS and /etc/hosts). */
export function resolveFact(names: string[]): FactDef<Resolved> {
  const unique = [...new Set(names.filter((n) => !ipaddr.isValid(n)))].sort();
  for (const n of unique) if (!/^[A-Za-z0-9.-]+$/.test(n)) throw new Error(`"${n}" is neither an IP address nor a host name`);
  const lines = unique.map((n) => `echo "NAME ${n} $(getent ahosts ${quote(n)} 2>/dev/null | awk '$2 == "STREAM" {print $1}' | tr '\\n' ' ' || true)"`);
  return { id: `resolve-${unique.join(',') || 'none'}`, script: lines.join('\n') || 'true', parse: parseResolve };
}

export function parseResolve(stdout: string): Resolved {
  const out: Resolved = {};
  for (const line of stdout.split('\n')) {
    const m = /^NAME (\S+) ?(.*)$/.exec(line);
    if (m) out[m[1]!] = [...new Set(m[2]!.split(/\s+/).filter((a) => ipaddr.isValid(a)))];
  }
  return out;
}

/** IP addresses of a table entry: itself when it is an IP, else what the host resolved. */
export function addressesOf(entry: string, resolved: Resolved, where: string): string[] {
  if (ipaddr.isValid(entry)) return [ipaddr.process(entry).toString()];
  const r = resolved[entry];
  if (!r || r.length === 0) {
    throw new Error(`${entry} does not resolve on ${where}; put its IP address in the server table (or fix DNS / /etc/hosts there)`);
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// Firewall

export type FirewallTool = 'firewalld' | 'ufw' | 'nftables' | 'iptables' | 'none';

export interface FirewalldZone {
  name: string;
  active: boolean;
  isDefault: boolean;
  interfaces: string[];
  sources: string[];
  services: string[];
  ports: string[];
  richRules: string[];
}
export interface UfwRule {
  action: string;
  proto: string;
  dport: string;
  src: string;
  comment: string;
}
export interface NftChain {
  family: string;
  table: string;
  name: string;
  hook: string | null;
  policy: string | null;
  prio: number | null;
  /** Rules that drop or reject. */
  drops: number;
  /** Rules carrying ha-setup's comment (handles). */
  ours: number[];
}
export interface NftSetElems {
  family: string;
  table: string;
  name: string;
  elems: string[];
}
export interface FirewallFacts {
  firewalld: { running: boolean; defaultZone: string; runtime: FirewalldZone[]; permanent: FirewalldZone[] };
  ufw: { installed: boolean; active: boolean; rules: UfwRule[] };
  nft: { installed: boolean; serviceEnabled: boolean; chains: NftChain[]; sets: NftSetElems[]; tables: string[]; conf: string | null; ours: string | null; accept: string | null };
  iptables: { v4: string[] | null; v6: string[] | null; persist: 'debian' | 'rhel' | null };
}

export const NFT_OURS = '/etc/ha-setup/nftables-pg.nft';
export const NFT_ACCEPT = '/etc/ha-setup/nftables-pg-accept.nft';
export const FW_COMMENT = 'ha-setup-pg';

export const firewallFact: FactDef<FirewallFacts> = {
  id: 'firewall',
  sudo: true,
  script: [
    PRELUDE,
    'if have firewall-cmd && firewall-cmd --state >/dev/null 2>&1; then',
    '  echo FIREWALLD=running',
    '  echo "FWD_DEFAULT=$(firewall-cmd --get-default-zone 2>/dev/null || true)"',
    '  b64cmd FWD_RUNTIME firewall-cmd --list-all-zones',
    '  b64cmd FWD_PERMANENT firewall-cmd --permanent --list-all-zones',
    'else echo FIREWALLD=no; fi',
    'if have ufw; then',
    '  echo UFW=installed',
    '  b64cmd UFW_STATUS ufw status',
    '  b64 /etc/ufw/user.rules UFW_RULES',
    '  b64 /etc/ufw/user6.rules UFW_RULES6',
    'fi',
    'if have nft; then',
    '  echo NFT=installed',
    '  b64cmd NFT_JSON nft -j list ruleset',
    '  echo "NFT_SERVICE=$(systemctl is-enabled nftables 2>/dev/null || true)"',
    '  b64 /etc/nftables.conf NFT_CONF',
    `  b64 ${NFT_OURS} NFT_OURS`,
    `  b64 ${NFT_ACCEPT} NFT_ACCEPT`,
    'fi',
    'if have iptables; then b64cmd IPT4 iptables -S INPUT; fi',
    'if have ip6tables; then b64cmd IPT6 ip6tables -S INPUT; fi',
    'if [ -f /etc/iptables/rules.v4 ]; then echo IPT_PERSIST=debian; elif [ -f /etc/sysconfig/iptables ]; then echo IPT_PERSIST=rhel; fi',
  ].join('\n'),
  parse: parseFirewallFacts,
};

export function parseFirewalldZones(text: string): FirewalldZone[] {
  const zones: FirewalldZone[] = [];
  let z: FirewalldZone | undefined;
  let inRich = false;
  for (const line of text.split('\n')) {
    const head = /^(\S+)(?:\s+\(([^)]*)\))?\s*$/.exec(line);
    if (head) {
      const flags = (head[2] ?? '').split(/,\s*/);
      z = { name: head[1]!, active: flags.includes('active'), isDefault: flags.includes('default'), interfaces: [], sources: [], services: [], ports: [], richRules: [] };
      zones.push(z);
      inRich = false;
      continue;
    }
    if (!z) continue;
    const kv = /^\s+([a-z -]+):\s*(.*)$/.exec(line);
    if (kv && !line.trimStart().startsWith('rule ')) {
      inRich = kv[1] === 'rich rules';
      const words = kv[2]!.trim() ? kv[2]!.trim().split(/\s+/) : [];
      if (kv[1] === 'interfaces') z.interfaces = words;
      if (kv[1] === 'sources') z.sources = words;
      if (kv[1] === 'services') z.services = words;
      if (kv[1] === 'ports') z.ports = words;
      continue;
    }
    if (inRich && line.trim().startsWith('rule ')) z.richRules.push(line.trim());
  }
  return zones;
}

export function parseUfwRules(text: string | null): UfwRule[] {
  const out: UfwRule[] = [];
  for (const line of (text ?? '').split('\n')) {
    const m = /^### tuple ### (\S+) (\S+) (\S+) (\S+) (\S+) (\S+) (\S+)(?: comment=([0-9a-f]*))?/.exec(line);
    if (!m) continue;
    out.push({ action: m[1]!, proto: m[2]!, dport: m[3]!, src: m[6]!, comment: m[8] ? Buffer.from(m[8], 'hex').toString('utf8') : '' });
  }
  return out;
}

interface NftJsonItem {
  table?: { family: string; name: string };
  chain?: { family: string; table: string; name: string; hook?: string; policy?: string; prio?: number };
  rule?: { family: string; table: string; chain: string; handle: number; comment?: string; expr?: unknown[] };
  set?: { family: string; table: string; name: string; elem?: unknown[] };
}

export function parseNftRuleset(text: string | null): { chains: NftChain[]; sets: NftSetElems[]; tables: string[] } {
  const chains: NftChain[] = [];
  const sets: NftSetElems[] = [];
  const tables: string[] = [];
  let items: NftJsonItem[] = [];
  try {
    items = text ? ((JSON.parse(text) as { nftables?: NftJsonItem[] }).nftables ?? []) : [];
  } catch {
    items = [];
  }
  const key = (f: string, t: string, c: string): string => `${f} ${t} ${c}`;
  const byKey = new Map<string, NftChain>();
  for (const it of items) {
    if (it.table) tables.push(`${it.table.family} ${it.table.name}`);
    if (it.chain) {
      const c = it.chain;
      const ch: NftChain = { family: c.family, table: c.table, name: c.name, hook: c.hook ?? null, policy: c.policy ?? null, prio: c.prio ?? null, drops: 0, ours: [] };
      chains.push(ch);
      byKey.set(key(c.family, c.table, c.name), ch);
    }
    if (it.set) {
      const elems = (it.set.elem ?? []).map((e) => (typeof e === 'string' ? e : JSON.stringify(e)));
      sets.push({ family: it.set.family, table: it.set.table, name: it.set.name, elems });
    }
  }
  for (const it of items) {
    if (!it.rule) continue;
    const ch = byKey.get(key(it.rule.family, it.rule.table, it.rule.chain));
    if (!ch) continue;
    const text = JSON.stringify(it.rule.expr ?? []);
    if (/"(drop|reject)"/.test(text)) ch.drops++;
    if (it.rule.comment === FW_COMMENT) ch.ours.push(it.rule.handle);
  }
  return { chains, sets, tables };
}

export function parseFirewallFacts(stdout: string): FirewallFacts {
  const kv = parseKv(stdout);
  const ufwStatus = b64(kv, 'UFW_STATUS') ?? '';
  const nft = parseNftRuleset(b64(kv, 'NFT_JSON'));
  const lines = (k: string): string[] | null => {
    const t = b64(kv, k);
    return t === null || t === '' ? null : t.split('\n').filter(Boolean);
  };
  return {
    firewalld: {
      running: kv.FIREWALLD === 'running',
      defaultZone: kv.FWD_DEFAULT ?? '',
      runtime: parseFirewalldZones(b64(kv, 'FWD_RUNTIME') ?? ''),
      permanent: parseFirewalldZones(b64(kv, 'FWD_PERMANENT') ?? ''),
    },
    ufw: { installed: kv.UFW === 'installed', active: /^Status:\s*active/m.test(ufwStatus), rules: [...parseUfwRules(b64(kv, 'UFW_RULES')), ...parseUfwRules(b64(kv, 'UFW_RULES6'))] },
    nft: {
      installed: kv.NFT === 'installed',
      serviceEnabled: kv.NFT_SERVICE === 'enabled',
      ...nft,
      conf: b64(kv, 'NFT_CONF'),
      ours: b64(kv, 'NFT_OURS'),
      accept: b64(kv, 'NFT_ACCEPT'),
    },
    iptables: { v4: lines('IPT4'), v6: lines('IPT6'), persist: kv.IPT_PERSIST === 'debian' ? 'debian' : kv.IPT_PERSIST === 'rhel' ? 'rhel' : null },
  };
}

/** Chains of tables made by iptables-nft, ufw or firewalld (not "nftables in use" by the admin). */
function isForeignNftTable(family: string, table: string, chains: NftChain[]): boolean {
  if (table === 'firewalld') return true;
  const own = chains.filter((c) => c.family === family && c.table === table);
  return own.length > 0 && own.every((c) => /^[A-Z]/.test(c.name) || c.name.startsWith('ufw'));
}

/** Input chains (hook input) of nftables tables the admin manages (not ours, not iptables-nft's). */
export function adminInputChains(fw: FirewallFacts): NftChain[] {
  return fw.nft.chains.filter(
    (c) => c.hook === 'input' && c.table !== 'ha_setup' && !isForeignNftTable(c.family, c.table, fw.nft.chains) && ['inet', 'ip', 'ip6'].includes(c.family),
  );
}

/** A chain that does not let everything in: drop policy or drop/reject rules. */
export const restrictive = (c: NftChain): boolean => c.policy === 'drop' || c.drops > 0;

function iptablesFilters(rules: string[] | null): boolean {
  if (!rules) return false;
  return rules.some((r) => /^-P INPUT (DROP|REJECT)/.test(r) || /-j (DROP|REJECT)\b/.test(r));
}

/**
 * The tool that filters incoming traffic on this host, in the order ha-setup prefers them:
 * firewalld (running), ufw (active), nftables (an input chain of the admin's, or nftables.service
 * enabled), iptables (input policy or rules that drop), else none.
 */
export function firewallTool(fw: FirewallFacts): FirewallTool {
  if (fw.firewalld.running) return 'firewalld';
  if (fw.ufw.active) return 'ufw';
  if (fw.nft.installed && (adminInputChains(fw).length > 0 || fw.nft.serviceEnabled)) return 'nftables';
  if (iptablesFilters(fw.iptables.v4) || iptablesFilters(fw.iptables.v6)) return 'iptables';
  return 'none';
}

// ---------------------------------------------------------------------------------------------
// SELinux

export interface SelinuxFacts {
  mode: 'enforcing' | 'permissive' | 'disabled' | 'absent';
  semanage: boolean;
  /** Ports labelled postgresql_port_t. */
  postgresPorts: number[];
  /** SELinux type of the archive directory, if asked. */
  archiveDirType: string | null;
}

export function selinuxFact(archiveDir?: string): FactDef<SelinuxFacts> {
  return {
    id: `selinux${archiveDir ? `-${archiveDir}` : ''}`,
    sudo: true,
    script: [
      PRELUDE,
      'if have getenforce; then echo "SELINUX=$(getenforce 2>/dev/null || true)"; else echo SELINUX=absent; fi',
      "if have semanage; then echo SEMANAGE=yes; b64cmd SEPORTS sh -c 'semanage port -l | grep ^postgresql_port_t'; fi",
      archiveDir ? `echo "ARCHIVE_CONTEXT=$(stat -c %C ${quote(archiveDir)} 2>/dev/null || true)"` : '',
    ].join('\n'),
    parse(stdout) {
      const kv = parseKv(stdout);
      const mode = (kv.SELINUX ?? 'absent').toLowerCase();
      const ports = (b64(kv, 'SEPORTS') ?? '').replace(/^postgresql_port_t\s+tcp\s+/m, '').split(/[,\s]+/).map(Number).filter((n) => Number.isInteger(n) && n > 0);
      const ctx = kv.ARCHIVE_CONTEXT ?? '';
      return {
        mode: mode === 'enforcing' || mode === 'permissive' || mode === 'disabled' ? mode : 'absent',
        semanage: kv.SEMANAGE === 'yes',
        postgresPorts: ports,
        archiveDirType: ctx ? (ctx.split(':')[2] ?? null) : null,
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// TLS files of the PostgreSQL server

export interface TlsFacts {
  dirExists: boolean;
  key: { mode: string; owner: string; group: string } | null;
  /** The key's public key (SPKI PEM), null when there is no readable key. */
  publicKeyPem: string | null;
  cert: string | null;
  ca: string | null;
  /** The host's clock (Unix seconds). */
  now: number;
}

export const tlsFact: FactDef<TlsFacts> = {
  id: 'pg-tls',
  sudo: true,
  script: [
    PRELUDE,
    sh`echo "DIR=$([ -d ${TLS.dir} ] && echo yes || echo no)"`,
    sh`echo "KEY_STAT=$(stat -c '%a %U %G' ${TLS.key} 2>/dev/null || echo -)"`,
    sh`if [ -f ${TLS.key} ]; then b64cmd KEY_PUB openssl pkey -in ${TLS.key} -pubout; fi`,
    sh`b64 ${TLS.cert} CERT`,
    sh`b64 ${TLS.ca} CA`,
    'echo "NOW=$(date -u +%s)"',
  ].join('\n'),
  parse(stdout) {
    const kv = parseKv(stdout);
    const st = (kv.KEY_STAT ?? '-').split(' ');
    const pub = b64(kv, 'KEY_PUB');
    return {
      dirExists: kv.DIR === 'yes',
      key: st.length === 3 ? { mode: st[0]!, owner: st[1]!, group: st[2]! } : null,
      publicKeyPem: pub && pub.includes('BEGIN PUBLIC KEY') ? pub : null,
      cert: b64(kv, 'CERT'),
      ca: b64(kv, 'CA'),
      now: Number(kv.NOW) || 0,
    };
  },
};

// ---------------------------------------------------------------------------------------------
// ha-setup's replication passfile

export interface PassfileFacts {
  exists: boolean;
  sha256: string | null;
  mode: string | null;
  owner: string | null;
}

export function passfileFact(version: number): FactDef<PassfileFacts> {
  const d = pgLayout('debian', version).passfile;
  const r = pgLayout('rhel', version).passfile;
  return {
    id: 'pg-passfile',
    sudo: true,
    script: [
      `if [ -r /etc/debian_version ]; then pf=${quote(d)}; else pf=${quote(r)}; fi`,
      'if [ -f "$pf" ]; then',
      '  echo "STAT=$(stat -c \'%a %U\' "$pf")"',
      '  echo "SHA256=$(sha256sum < "$pf" | cut -d\' \' -f1)"',
      'fi',
    ].join('\n'),
    parse(stdout) {
      const kv = parseKv(stdout);
      const [mode, owner] = (kv.STAT ?? '').split(' ');
      return { exists: kv.STAT !== undefined, sha256: kv.SHA256 ?? null, mode: mode || null, owner: owner || null };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// OS preparation: updates, time sync, host name, PostgreSQL packages

export interface OsPrepFacts {
  umask: string;
  arch: string;
  codename: string;
  hostname: string;
  /** getent hosts <hostname> answered. */
  hostnameResolves: boolean;
  hostsFile: string | null;
  /** Active time sync service, if any (chronyd, chrony, systemd-timesyncd, ntpd, ntp). */
  timeSync: string | null;
  /** systemd-detect-virt --container: the container type, or null on a VM or bare metal. */
  container: string | null;
  /** Upgradable packages from the current package metadata (null: unknown). */
  pendingUpdates: number | null;
  rebootRequired: boolean;
}

export const osPrepFact: FactDef<OsPrepFacts> = {
  id: 'os-prep',
  sudo: true,
  script: [
    PRELUDE,
    'echo "UMASK=$(umask)"',
    'echo "ARCH=$(uname -m)"',
    'echo "CODENAME=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}" || true)"',
    'hn=$(hostname 2>/dev/null || true)',
    'echo "HOSTNAME=$hn"',
    'echo "RESOLVES=$(getent hosts "$hn" >/dev/null 2>&1 && echo yes || echo no)"',
    'b64 /etc/hosts HOSTS',
    'for s in chronyd chrony systemd-timesyncd ntpd ntp; do if systemctl is-active --quiet "$s" 2>/dev/null; then echo "TIME_SYNC=$s"; break; fi; done',
    'echo "CONTAINER=$(systemd-detect-virt --container 2>/dev/null || true)"',
    'if have apt-get; then echo "UPDATES=$(apt-get -s -o Debug::NoLocking=1 upgrade 2>/dev/null | grep -c \'^Inst \' || true)";',
    'elif have dnf; then n=$(dnf -q -C check-update 2>/dev/null | grep -cE \'^[A-Za-z0-9_.+-]+\\.[a-z0-9_]+ \' || true); echo "UPDATES=$n";',
    'elif have yum; then n=$(yum -q -C check-update 2>/dev/null | grep -cE \'^[A-Za-z0-9_.+-]+\\.[a-z0-9_]+ \' || true); echo "UPDATES=$n"; fi',
    'if [ -f /var/run/reboot-required ]; then echo REBOOT=yes; elif have needs-restarting; then needs-restarting -r >/dev/null 2>&1 && echo REBOOT=no || echo REBOOT=yes; else echo REBOOT=no; fi',
  ].join('\n'),
  parse(stdout) {
    const kv = parseKv(stdout);
    const updates = kv.UPDATES === undefined || kv.UPDATES === '' ? null : Number(kv.UPDATES);
    return {
      umask: kv.UMASK ?? '',
      arch: kv.ARCH ?? '',
      codename: kv.CODENAME ?? '',
      hostname: kv.HOSTNAME ?? '',
      hostnameResolves: kv.RESOLVES === 'yes',
      hostsFile: b64(kv, 'HOSTS'),
      timeSync: kv.TIME_SYNC || null,
      container: kv.CONTAINER && kv.CONTAINER !== 'none' ? kv.CONTAINER : null,
      pendingUpdates: updates !== null && Number.isFinite(updates) ? updates : null,
      rebootRequired: kv.REBOOT === 'yes',
    };
  },
};

export interface PgPackageFacts {
  /** The server package of the chosen version is installed. */
  serverInstalled: boolean;
  /** apt: a candidate version exists for postgresql-<v> (distribution or PGDG repository). */
  candidate: string | null;
  /** The PGDG repository is configured (apt.postgresql.org / pgdg-redhat-repo). */
  pgdgRepo: boolean;
  /** Debian: pg_lsclusters lines (version, name, port, status). */
  clusters: { version: number; name: string; port: number; status: string }[];
}

export function pgPackagesFact(version: number): FactDef<PgPackageFacts> {
  const d = pgLayout('debian', version);
  const r = pgLayout('rhel', version);
  return {
    id: `pg-packages-${version}`,
    sudo: true,
    script: [
      PRELUDE,
      'if [ -r /etc/debian_version ]; then',
      `  echo "INSTALLED=$(dpkg-query -W -f='\${Status}' ${d.serverPackage} 2>/dev/null | grep -q 'install ok installed' && echo yes || echo no)"`,
      `  echo "CANDIDATE=$(apt-cache policy ${d.serverPackage} 2>/dev/null | awk '/Candidate:/ {print $2}' || true)"`,
      "  echo \"PGDG=$(grep -rqs 'apt.postgresql.org' /etc/apt/sources.list /etc/apt/sources.list.d/ && echo yes || echo no)\"",
      '  if have pg_lsclusters; then b64cmd CLUSTERS pg_lsclusters -h; fi',
      'else',
      `  echo "INSTALLED=$(rpm -q ${r.serverPackage} >/dev/null 2>&1 && echo yes || echo no)"`,
      '  echo "PGDG=$(rpm -q pgdg-redhat-repo >/dev/null 2>&1 && echo yes || echo no)"',
      'fi',
    ].join('\n'),
    parse(stdout) {
      const kv = parseKv(stdout);
      const cand = kv.CANDIDATE ?? '';
      const clusters = (b64(kv, 'CLUSTERS') ?? '')
        .split('\n')
        .map((l) => l.trim().split(/\s+/))
        .filter((w) => w.length >= 4 && /^\d+$/.test(w[0]!))
        .map((w) => ({ version: Number(w[0]), name: w[1]!, port: Number(w[2]), status: w[3]! }));
      return { serverInstalled: kv.INSTALLED === 'yes', candidate: cand && cand !== '(none)' ? cand : null, pgdgRepo: kv.PGDG === 'yes', clusters };
    },
  };
}

/** Table entries the PostgreSQL runbooks connect to or allow (for resolveFact). */
export function tableNames(ctx: Pick<HostContext, 'hosts' | 'addresses'>): string[] {
  return [...Object.values(ctx.hosts).map((h) => h?.address), ctx.addresses.db_vip].filter((a): a is string => Boolean(a));
}
