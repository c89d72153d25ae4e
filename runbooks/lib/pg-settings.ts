/**
 * PostgreSQL settings by version (10..17): which names a version accepts, what ha-setup writes
 * into its drop-in file, and whether applying a change needs a restart or a reload.
 *
 * PostgreSQL refuses to start on a setting it does not know, so every name written here is
 * checked against KNOWN_SETTINGS for the server's version (and the tests check every generated
 * file the same way).
 */
import type { Action } from '../../source/engine/step.js';
import type { PgOptions } from './options.js';

export type SettingContext = 'postmaster' | 'sighup' | 'superuser' | 'user' | 'backend' | 'internal';

export interface KnownSetting {
  /** First major version that accepts it (in postgresql.conf). */
  since?: number;
  /** Last major version that accepts it. */
  until?: number;
  context: SettingContext;
  /** Base unit of pg_settings.setting, when ha-setup writes it with a unit. */
  unit?: 'MB';
}

/**
 * The settings ha-setup writes or must never write, with the versions that accept them.
 * Sources: the release notes of 9.5 (checkpoint_segments removed), 12 (recovery.conf gone:
 * standby_mode/trigger_file removed, primary_conninfo etc. become settings), 13 (wal_keep_segments
 * -> wal_keep_size, max_slot_wal_keep_size), 15 (stats_temp_directory removed), 16
 * (promote_trigger_file and vacuum_defer_cleanup_age removed), 17 (old_snapshot_threshold removed).
 */
export const KNOWN_SETTINGS: Record<string, KnownSetting> = {
  listen_addresses: { context: 'postmaster' },
  port: { context: 'postmaster' },
  max_connections: { context: 'postmaster' },
  max_worker_processes: { context: 'postmaster' },
  max_prepared_transactions: { context: 'postmaster' },
  max_locks_per_transaction: { context: 'postmaster' },
  wal_level: { context: 'postmaster' },
  max_wal_senders: { context: 'postmaster' },
  max_replication_slots: { context: 'postmaster' },
  wal_log_hints: { context: 'postmaster' },
  hot_standby: { context: 'postmaster' },
  hot_standby_feedback: { context: 'sighup' },
  archive_mode: { context: 'postmaster' },
  archive_command: { context: 'sighup' },
  synchronous_standby_names: { context: 'sighup' },
  password_encryption: { context: 'user' },
  wal_keep_segments: { until: 12, context: 'sighup' },
  wal_keep_size: { since: 13, context: 'sighup', unit: 'MB' },
  max_slot_wal_keep_size: { since: 13, context: 'sighup', unit: 'MB' },
  ssl: { context: 'sighup' },
  ssl_cert_file: { context: 'sighup' },
  ssl_key_file: { context: 'sighup' },
  ssl_ca_file: { context: 'sighup' },
  ssl_min_protocol_version: { since: 12, context: 'sighup' },
  primary_conninfo: { since: 12, context: 'sighup' },
  primary_slot_name: { since: 12, context: 'sighup' },
  recovery_target_timeline: { since: 12, context: 'postmaster' },
  promote_trigger_file: { since: 12, until: 15, context: 'sighup' },
  stats_temp_directory: { until: 14, context: 'sighup' },
  vacuum_defer_cleanup_age: { until: 15, context: 'sighup' },
  old_snapshot_threshold: { until: 16, context: 'postmaster' },
  // Gone before 10: listed so that nothing ever writes them.
  checkpoint_segments: { until: 9, context: 'sighup' },
  // Never settings: recovery.conf parameters (up to 11 only, see RECOVERY_CONF_PARAMS).
  standby_mode: { since: 99, context: 'postmaster' },
  trigger_file: { since: 99, context: 'postmaster' },
};

/** What recovery.conf (10 and 11 only) accepts, of what ha-setup writes. */
export const RECOVERY_CONF_PARAMS = ['standby_mode', 'primary_conninfo', 'primary_slot_name', 'trigger_file', 'recovery_target_timeline', 'restore_command'];
/** recovery.conf exists up to 11; from 12 its presence stops the server from starting. */
export const LAST_RECOVERY_CONF_VERSION = 11;

export function isSettingValid(name: string, version: number): boolean {
  const k = KNOWN_SETTINGS[name];
  if (!k) return false;
  return (k.since ?? 0) <= version && version <= (k.until ?? Number.MAX_SAFE_INTEGER);
}

export function isRecoveryConfParamValid(name: string, version: number): boolean {
  return version <= LAST_RECOVERY_CONF_VERSION && RECOVERY_CONF_PARAMS.includes(name);
}

/** One line of a drop-in file. `value` is in pg_settings' base unit, `text` as written. */
export interface Setting {
  name: string;
  value: string;
  text: string;
  why?: string;
}

const str = (name: string, value: string, why?: string): Setting => ({ name, value, text: `'${value.replace(/'/g, "''")}'`, why });
const num = (name: string, value: number, why?: string): Setting => ({ name, value: String(value), text: String(value), why });
const mb = (name: string, value: number, why?: string): Setting => ({ name, value: String(value), text: value < 0 ? String(value) : `${value}MB`, why });
const bool = (name: string, value: boolean, why?: string): Setting => ({ name, value: value ? 'on' : 'off', text: value ? 'on' : 'off', why });

/** Minimums the standby copies from its primary: hot standby refuses to start below them. */
export const STANDBY_MINIMUMS = ['max_connections', 'max_worker_processes', 'max_wal_senders', 'max_prepared_transactions', 'max_locks_per_transaction'] as const;

export interface ReplicationInputs {
  version: number;
  options: PgOptions;
  /** listen_addresses: '*' or the explicit list. */
  listen: string;
  /** Standby only: STANDBY_MINIMUMS values to write (already max(primary, own)). */
  minimums?: Partial<Record<(typeof STANDBY_MINIMUMS)[number], number>>;
}

/**
 * listen_addresses: '*' by default, because keepalived moves the DB VIP onto a node while
 * PostgreSQL runs there; a server listening on its own address only would never accept the
 * VIP. pg_hba.conf and the firewall decide who may connect. 'explicit' lists localhost, the
 * node and the VIP instead (the VIP bound before it arrives, with net.ipv4.ip_nonlocal_bind).
 */
export function listenAddresses(mode: 'all' | 'explicit', address: string, vip: string | undefined): string {
  if (mode === 'all') return '*';
  return [...new Set(['localhost', address, vip].filter((a): a is string => Boolean(a)))].join(',');
}

export const MAX_WAL_SENDERS = 10;
export const MAX_REPLICATION_SLOTS = 10;

/**
 * The replication settings of ha-setup.conf. The same file (but for the standby's minimums)
 * goes on both nodes, so that either can be the primary after a failover.
 */
export function replicationSettings(inp: ReplicationInputs): Setting[] {
  const { version: v, options: o } = inp;
  const out: Setting[] = [
    str('listen_addresses', inp.listen, inp.listen === '*'
      ? 'all addresses: the DB VIP is accepted whenever keepalived moves it here; pg_hba.conf and the firewall restrict who may connect'
      : 'this node, the DB VIP (bound before it arrives: net.ipv4.ip_nonlocal_bind = 1) and localhost'),
    num('port', o.port),
    str('wal_level', 'replica', 'enough WAL for a streaming standby'),
    num('max_wal_senders', Math.max(MAX_WAL_SENDERS, inp.minimums?.max_wal_senders ?? 0)),
    num('max_replication_slots', MAX_REPLICATION_SLOTS),
    v >= 13
      ? mb('wal_keep_size', o.walKeepSizeMb, 'WAL kept for a standby that lost its slot')
      : num('wal_keep_segments', Math.ceil(o.walKeepSizeMb / 16), `${o.walKeepSizeMb} MB of WAL in 16 MB segments`),
    ...(v >= 13 ? [mb('max_slot_wal_keep_size', o.maxSlotWalKeepSizeMb, 'bounds the WAL a replication slot may hold when its standby is away')] : []),
    bool('hot_standby', true, 'the standby answers read-only queries'),
    bool('hot_standby_feedback', true),
    bool('wal_log_hints', true, 'pg_rewind can rejoin a failed old primary'),
    str('password_encryption', 'scram-sha-256', 'no md5 hashes'),
    ...(o.archiveDir
      ? [
          bool('archive_mode', true),
          str('archive_command', `test ! -f ${o.archiveDir}/%f && cp %p ${o.archiveDir}/%f`, 'never overwrites an archived segment'),
        ]
      : [bool('archive_mode', false, 'no WAL archive configured (options.postgres.archiveDir); streaming + the slot keep the standby fed')]),
    str('synchronous_standby_names', o.replication === 'sync' ? '*' : '', o.replication === 'sync'
      ? 'sync: a commit waits for the standby; writes stop while no standby is connected'
      : 'async'),
  ];
  for (const name of STANDBY_MINIMUMS) {
    if (name === 'max_wal_senders') continue;
    const m = inp.minimums?.[name];
    if (m !== undefined) out.push(num(name, m, "at least the primary's value (hot standby refuses to start below it)"));
  }
  for (const s of out) {
    if (!isSettingValid(s.name, v)) throw new Error(`bug: ha-setup would write ${s.name}, which PostgreSQL ${v} does not accept`);
  }
  return out;
}

export function sslSettings(version: number, files: { cert: string; key: string }): Setting[] {
  return [
    bool('ssl', true),
    str('ssl_cert_file', files.cert),
    str('ssl_key_file', files.key),
    ...(version >= 12 ? [str('ssl_min_protocol_version', 'TLSv1.2')] : []),
  ];
}

/** The text of a drop-in file: a header, then `name = value` lines with their reasons. */
export function renderConf(header: string[], settings: Setting[]): string {
  const lines = header.map((h) => `# ${h}`);
  for (const s of settings) {
    if (s.why) lines.push(`# ${s.why}`);
    lines.push(`${s.name} = ${s.text}`);
  }
  return `${lines.join('\n')}\n`;
}

/** `name = value` pairs of a postgresql.conf-style file (comments and quotes removed). */
export function parseConf(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=?\s*('(?:[^']|'')*'|[^\s#]*)/.exec(raw);
    if (!m || raw.trim().startsWith('#')) continue;
    let v = m[2]!;
    if (v.startsWith("'")) v = v.slice(1, -1).replace(/''/g, "'");
    out.set(m[1]!.toLowerCase(), v);
  }
  return out;
}

/** A live setting as pg_settings shows it. */
export interface LiveSetting {
  setting: string;
  unit: string;
  context: string;
  pendingRestart: boolean;
  sourcefile: string;
}

export interface SettingsChange {
  /** Settings whose live value differs from the wanted one. */
  differ: Setting[];
  /** A restart is needed: a postmaster setting differs, or one is already pending. */
  restart: boolean;
  /** Names of settings already waiting for a restart. */
  pending: string[];
}

/** Compare wanted settings with the running server's. */
export function compareLive(wanted: Setting[], live: Record<string, LiveSetting>): SettingsChange {
  const differ = wanted.filter((s) => live[s.name]?.setting !== s.value);
  const pending = Object.entries(live).filter(([, l]) => l.pendingRestart).map(([n]) => n);
  const contextOf = (s: Setting): string => live[s.name]?.context ?? KNOWN_SETTINGS[s.name]?.context ?? 'postmaster';
  return { differ, pending, restart: pending.length > 0 || differ.some((s) => contextOf(s) === 'postmaster') };
}

/** What a drop-in needs: the file's new text, what is there now, and the running server's state. */
export interface DropInInput {
  alias: string;
  path: string;
  content: string;
  previous: string | null;
  wanted: Setting[];
  unit: string;
  running: boolean;
  live: Record<string, LiveSetting>;
  /** postgresql.auto.conf of this cluster: ALTER SYSTEM values there beat every other file. */
  autoConf: string;
  /**
   * A clone of the primary is under way in this data directory (pg-standby's mark is there, e.g.
   * the tool was killed while pg_basebackup ran): the file is written, but starting PostgreSQL is
   * left to pg-standby.clone, which finishes the copy first.
   */
  cloning?: boolean;
}

export interface DropInPlan {
  actions: Action[];
  /** Why nothing is needed (when actions is empty) or what the actions achieve. */
  summary: string;
}

/**
 * Write a drop-in file when it differs, then restart (a postmaster setting changed, or one is
 * already pending) or reload; start the server when it is down. Empty when the file is current
 * and the running server already uses every value.
 */
export function dropInPlan(inp: DropInInput): DropInPlan {
  const byAlterSystem = inp.wanted.filter((s) => inp.live[s.name]?.sourcefile === inp.autoConf && inp.live[s.name]?.setting !== s.value);
  if (byAlterSystem.length) {
    const names = byAlterSystem.map((s) => s.name);
    throw new Error(
      `${inp.alias}: ${names.join(', ')} set by ALTER SYSTEM in ${inp.autoConf} override ${inp.path}; run ${names.map((n) => `ALTER SYSTEM RESET ${n};`).join(' ')} as postgres, or remove them from that file`,
    );
  }
  const actions: Action[] = [];
  const changed = inp.previous !== inp.content;
  if (changed) {
    actions.push({ kind: 'write', title: `write ${inp.path}`, path: inp.path, content: inp.content, mode: 0o644, owner: 'postgres', group: 'postgres', previous: inp.previous });
  }
  if (!inp.running && inp.cloning) {
    return { actions, summary: `a clone of the primary is under way here: pg-standby.clone finishes it and starts ${inp.unit} with ${changed ? 'this file' : `${inp.path}`}` };
  }
  if (!inp.running) {
    actions.push({ kind: 'run', title: `start ${inp.unit}`, script: `systemctl start ${inp.unit}`, sudo: true });
    return { actions, summary: `${inp.unit} is not running: started with the new settings` };
  }
  const cmp = compareLive(inp.wanted, inp.live);
  const names = cmp.differ.map((s) => s.name);
  if (cmp.restart) {
    const why = [...new Set([...names.filter((n) => (inp.live[n]?.context ?? KNOWN_SETTINGS[n]?.context) === 'postmaster'), ...cmp.pending])];
    actions.push({ kind: 'run', title: `restart ${inp.unit} (${why.join(', ')} need a restart)`, script: `systemctl restart ${inp.unit}`, sudo: true });
    return { actions, summary: `restart: ${why.join(', ')} only change at a restart` };
  }
  if (changed || names.length) {
    actions.push({ kind: 'run', title: `reload ${inp.unit}${names.length ? ` (${names.join(', ')})` : ''}`, script: `systemctl reload ${inp.unit}`, sudo: true });
    return { actions, summary: names.length ? `reload: ${names.join(', ')} take effect on reload` : 'reload (no running value changes)' };
  }
  return { actions, summary: `${inp.path} is current and ${inp.unit} runs with it (${inp.wanted.map((s) => `${s.name}=${s.text}`).join(', ')})` };
}
