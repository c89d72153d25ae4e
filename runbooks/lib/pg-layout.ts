/**
 * Where PostgreSQL lives per OS family and major version, and the few shell fragments every
 * PostgreSQL runbook shares (running a binary as the postgres user, psql with SQL on stdin).
 *
 * RHEL family (PGDG packages): data and config in /var/lib/pgsql/<v>/data, unit
 * postgresql-<v>, binaries in /usr/pgsql-<v>/bin.
 * Debian family (distribution or apt.postgresql.org packages): data in
 * /var/lib/postgresql/<v>/main, config in /etc/postgresql/<v>/main, unit postgresql@<v>-main,
 * binaries in /usr/lib/postgresql/<v>/bin.
 */
import { renderAssetTemplate } from './assets.js';
import { heredoc, quote, sh } from '../../source/engine/shell.js';
import type { Action } from '../../source/engine/step.js';
import type { OsInfo } from './host-facts.js';

export type PgFamily = 'debian' | 'rhel';

export interface PgLayout {
  family: PgFamily;
  version: number;
  dataDir: string;
  /** Directory of postgresql.conf and pg_hba.conf. */
  confDir: string;
  confFile: string;
  hbaFile: string;
  /** include_dir 'conf.d' of postgresql.conf: ha-setup's drop-in files live here. */
  dropInDir: string;
  unit: string;
  binDir: string;
  /** Home of the postgres OS user. */
  home: string;
  /** The replication password file ha-setup owns (not ~/.pgpass: that one may hold others' passwords). */
  passfile: string;
  socketDir: string;
  /** The server package. */
  serverPackage: string;
  /** RHEL: the PGDG initdb wrapper. */
  setupCommand?: string;
  /** During a clone (RHEL): the standby's own config files are kept here, outside the data directory. */
  keepDir: string;
  /** Written before a clone empties the data directory, removed after it succeeded. */
  cloneMarker: string;
}

/** The two database servers of the table. */
export const DB_NODES: readonly string[] = ['db_primary', 'db_standby'];

/** Certificates and key of the PostgreSQL server (outside the data directory: a clone must not copy them). */
export const TLS_DIR = '/etc/ha-setup/pg-tls';
export const TLS = {
  dir: TLS_DIR,
  key: `${TLS_DIR}/server.key`,
  cert: `${TLS_DIR}/server.crt`,
  ca: `${TLS_DIR}/ca.crt`,
};
/** ha-setup's drop-in files in conf.d. */
export const DROPIN = { replication: 'ha-setup.conf', ssl: 'ha-setup-ssl.conf' };

export function pgLayout(family: PgFamily, version: number): PgLayout {
  if (family === 'debian') {
    const confDir = `/etc/postgresql/${version}/main`;
    const dataDir = `/var/lib/postgresql/${version}/main`;
    return {
      family,
      version,
      dataDir,
      confDir,
      confFile: `${confDir}/postgresql.conf`,
      hbaFile: `${confDir}/pg_hba.conf`,
      dropInDir: `${confDir}/conf.d`,
      unit: `postgresql@${version}-main`,
      binDir: `/usr/lib/postgresql/${version}/bin`,
      home: '/var/lib/postgresql',
      passfile: '/var/lib/postgresql/.pgpass-ha-setup',
      socketDir: '/var/run/postgresql',
      serverPackage: `postgresql-${version}`,
      keepDir: `/var/lib/postgresql/${version}/ha-setup-kept-config`,
      cloneMarker: `/var/lib/postgresql/${version}/ha-setup-clone-in-progress`,
    };
  }
  const dataDir = `/var/lib/pgsql/${version}/data`;
  return {
    family,
    version,
    dataDir,
    confDir: dataDir,
    confFile: `${dataDir}/postgresql.conf`,
    hbaFile: `${dataDir}/pg_hba.conf`,
    dropInDir: `${dataDir}/conf.d`,
    unit: `postgresql-${version}`,
    binDir: `/usr/pgsql-${version}/bin`,
    home: '/var/lib/pgsql',
    passfile: '/var/lib/pgsql/.pgpass-ha-setup',
    socketDir: '/var/run/postgresql',
    serverPackage: `postgresql${version}-server`,
    setupCommand: `/usr/pgsql-${version}/bin/postgresql-${version}-setup`,
    keepDir: `/var/lib/pgsql/${version}/ha-setup-kept-config`,
    cloneMarker: `/var/lib/pgsql/${version}/ha-setup-clone-in-progress`,
  };
}

/** The layout for a host, from its OS fact; one-line error for an OS ha-setup does not know. */
export function layoutFor(os: OsInfo, version: number, alias: string): PgLayout {
  if (os.family === 'unknown') {
    throw new Error(`${alias}: unsupported OS "${os.prettyName}" (id ${os.id}); ha-setup supports the Debian family (Debian, Ubuntu) and the RHEL family (RHEL, Rocky, Alma, CentOS, Oracle)`);
  }
  return pgLayout(os.family, version);
}

/**
 * A command run as the postgres OS user from a root script. `cd /` first: from /root,
 * runuser/sudo -u postgres warns that it cannot change back into the current directory.
 */
export function asPostgres(command: string): string {
  return `(cd / && runuser -u postgres -- ${command})`;
}

/** psql as postgres over the local socket, SQL on stdin (so nothing of it is in argv). */
export function psqlScript(layout: PgLayout, port: number, sql: string, opts: { db?: string; tuplesOnly?: boolean } = {}): string {
  const doc = heredoc(sql);
  const args = ['-X', '-v', 'ON_ERROR_STOP=1', '-q', ...(opts.tuplesOnly ? ['-At'] : []), '-h', layout.socketDir, '-p', port, '-d', opts.db ?? 'postgres'];
  const psql = sh`${`${layout.binDir}/psql`} ${args}`;
  return `${asPostgres(psql)} ${doc.open}\n${doc.body}`;
}

/** One SQL string literal (standard_conforming_strings is on since 9.1). */
export function sqlLiteral(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** One SQL identifier, always quoted. */
export function sqlIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

export function systemctl(verb: 'start' | 'stop' | 'restart' | 'reload' | 'enable --now', unit: string): string {
  return verb === 'enable --now' ? sh`systemctl enable --now ${unit}` : sh`systemctl ${verb} ${unit}`;
}

/**
 * An action for work that depends on an earlier step that has not run yet (only seen in a dry
 * run, where every step is planned against the servers as they are now). If it is ever
 * executed, the earlier step did not do its job: it stops with the reason.
 */
export function pendingAction(title: string, why: string): Action {
  return { kind: 'run', title: `${title} (after ${why})`, script: `echo ${quote(`not possible yet: ${why}`)} >&2\nexit 1` };
}

/** The postgres port PostgreSQL is reached on now: the running server's, else the configured one. */
export function livePort(pg: { running: boolean; livePort: number | null }, configured: number): number {
  return pg.running && pg.livePort ? pg.livePort : configured;
}

/**
 * A template of assets/postgres with its {{placeholders}} filled in. Every placeholder must be
 * given and every value must be used: a template and its caller cannot drift apart silently.
 */
export function renderAsset(name: string, vars: Record<string, string | number>): string {
  return renderAssetTemplate(`postgres/${name}`, vars);
}

/**
 * The physical replication slot (and application_name) of the standby at `address`: named
 * after the node, not the role, so that after a failover each node keeps its own name.
 */
export function slotName(address: string): string {
  return `ha_${address.toLowerCase().replace(/[^a-z0-9]/g, '_')}`.slice(0, 63);
}

/** psql as postgres for verify(): finds the binaries of either family itself (no facts there). */
export function psqlAnyFamily(version: number, port: number, sql: string, socketDir = '/var/run/postgresql'): string {
  const d = pgLayout('debian', version);
  const r = pgLayout('rhel', version);
  const doc = heredoc(sql);
  return [
    `if [ -r /etc/debian_version ]; then psql=${quote(`${d.binDir}/psql`)}; else psql=${quote(`${r.binDir}/psql`)}; fi`,
    `${asPostgres(sh`"$psql" -X -At -v ON_ERROR_STOP=1 -h ${socketDir} -p ${port} -d postgres`)} ${doc.open}`,
    doc.body,
  ].join('\n');
}

/**
 * Poll a one-line SQL answer (as postgres, local socket) until it equals `expected`, for up to
 * `seconds`; on success the script goes on after this fragment, else it stops with `failure`.
 */
export function pollSql(version: number, port: number, sql: string, expected: string, seconds: number, failure = 'timed out', socketDir?: string): string {
  return [
    'ok=no out=',
    `for i in $(seq 1 ${Math.max(1, Math.floor(seconds))}); do`,
    `  out=$(${psqlAnyFamily(version, port, sql, socketDir)}`,
    '  ) || out="psql failed"',
    `  if [ "$out" = ${quote(expected)} ]; then ok=yes; break; fi`,
    '  sleep 1',
    'done',
    `if [ $ok != yes ]; then echo ${quote(`${failure} after ${seconds} s`)}": last answer: $out" >&2; exit 1; fi`,
    'echo "$out"',
  ].join('\n');
}

/**
 * A script for either family, chosen on the host (/etc/debian_version): for verify(), which
 * runs without facts. `fn` gets the layout of each family and returns that branch's script.
 */
export function perFamily(version: number, fn: (layout: PgLayout) => string): string {
  return ['if [ -r /etc/debian_version ]; then', fn(pgLayout('debian', version)), 'else', fn(pgLayout('rhel', version)), 'fi'].join('\n');
}
