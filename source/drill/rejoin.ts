/**
 * `ha-setup rejoin db`: after a failover, turn the old primary into a streaming standby of the
 * new one. First choice pg_rewind (keeps the data directory, rewinds only what diverged; needs
 * wal_log_hints, which pg-primary sets); when that is impossible (another cluster's data, WAL
 * no longer on the primary, pg_rewind failing), a fresh pg_basebackup, which empties the data
 * directory and therefore runs only behind the data guard: --allow-data-wipe <its host name>.
 *
 * pg_rewind reads the primary over a normal connection. ha-setup gives it a dedicated role,
 * ha_rewind (LOGIN, no superuser, EXECUTE on the four functions pg_rewind needs), and opens
 * pg_hba.conf for it from the old primary only while the rewind runs (a block of its own,
 * "# BEGIN ha-setup rejoin", removed afterwards). Its password is a generated secret that goes
 * to psql and pg_rewind on stdin / in a 0600 passfile, never into argv.
 */
import ipaddr from 'ipaddr.js';
import { heredoc, quote, sh } from '../engine/shell.js';
import { Redactor } from '../engine/redact.js';
import { SecretStore } from '../engine/secrets.js';
import type { HostRef } from '../engine/step.js';
import type { Inventory } from '../inventory/types.js';
import { clusterDir } from '../paths.js';
import type { Transport } from '../transport/types.js';
import { pgOptions } from '../../runbooks/lib/options.js';
import { asPostgres, pgLayout, slotName, sqlIdent, sqlLiteral, TLS, type PgLayout } from '../../runbooks/lib/pg-layout.js';
import { parseKv } from '../../runbooks/lib/pg-facts.js';
import { pgpassField, primaryConninfo, basebackupScript } from '../../runbooks/pg-standby.js';
import { localPsql, nodeStateScript, parseNodeState, type NodeState } from './remote.js';
import { dbPair } from './run.js';

export const REWIND_ROLE = 'ha_rewind';
export const REWIND_SECRET = 'postgres.ha_rewind';
export const HBA_BEGIN = '# BEGIN ha-setup rejoin';
export const HBA_END = '# END ha-setup rejoin';

/** "set" when ALTER SYSTEM set synchronous_standby_names (the promotion under sync replication). */
export const SYNC_SET_BY_ALTER_SYSTEM_SQL = "select case when exists (select 1 from pg_settings where name = 'synchronous_standby_names' and sourcefile like '%/postgresql.auto.conf') then 'set' else 'no' end;";

export interface RejoinOptions {
  inventory: Inventory;
  env: NodeJS.ProcessEnv;
  transport: (h: HostRef) => Transport;
  /** --allow-data-wipe: the old primary's host name, typed; allows the base backup fallback. */
  allowDataWipe?: string;
  log?: (line: string) => void;
}

export interface RejoinReport {
  primary: HostRef;
  rejoined: HostRef;
  method: 'already' | 'pg_rewind' | 'pg_basebackup';
  /** Why pg_rewind was not used or failed (when the base backup ran). */
  rewindProblem?: string;
  seconds: number;
  receiver: string | null;
  /** The table names the servers the other way round now. */
  tableHint: string | null;
}

interface OldFacts extends NodeState {
  hostname: string;
  systemIdentifier: string | null;
  family: 'debian' | 'rhel';
}

/** The old primary: NodeState plus host name, family and pg_controldata's system identifier. */
function oldFactsScript(version: number, port: number, vip: string, address: string): string {
  const d = pgLayout('debian', version);
  const r = pgLayout('rhel', version);
  return [
    nodeStateScript(version, port, vip, address),
    'echo "HOSTNAME=$(hostname)"',
    `if [ -r /etc/debian_version ]; then echo FAMILY=debian; bin=${quote(d.binDir)} data=${quote(d.dataDir)}; else echo FAMILY=rhel; bin=${quote(r.binDir)} data=${quote(r.dataDir)}; fi`,
    'echo "SYSID=$(LC_ALL=C "$bin/pg_controldata" "$data" 2>/dev/null | sed -n \'s/^Database system identifier:[[:space:]]*//p\')"',
  ].join('\n');
}

/** pg_hba.conf with the rejoin block (one line for pg_rewind from the old primary) before the first host rule, or without it. */
export function withRejoinBlock(hba: string, line: string | null): string {
  const lines = hba.replace(/\n$/, '').split('\n');
  const b = lines.findIndex((l) => l.trim() === HBA_BEGIN);
  const e = lines.findIndex((l) => l.trim() === HBA_END);
  if (b >= 0 && e > b) lines.splice(b, e - b + 1);
  if (line !== null) {
    const block = [HBA_BEGIN, '# Managed by ha-setup rejoin: pg_rewind from the old primary, only while it runs.', line, HBA_END];
    let first = lines.findIndex((l) => /^\s*(host|hostssl|hostnossl|hostgssenc|hostnogssenc)\s/.test(l));
    while (first > 0 && lines[first - 1]!.trim().startsWith('#')) first--;
    if (first >= 0) lines.splice(first, 0, ...block);
    else lines.push(...block);
  }
  return `${lines.join('\n')}\n`;
}

export function rewindRoleSql(password: string): string {
  const id = sqlIdent(REWIND_ROLE);
  return [
    "SET log_statement = 'none';",
    "SET log_min_error_statement = 'panic';",
    "SET password_encryption = 'scram-sha-256';",
    `DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = ${sqlLiteral(REWIND_ROLE)}) THEN CREATE ROLE ${id}; END IF; END $$;`,
    `ALTER ROLE ${id} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD ${sqlLiteral(password)};`,
    `GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean) TO ${id};`,
    `GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text, boolean) TO ${id};`,
    `GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text) TO ${id};`,
    `GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO ${id};`,
  ].join('\n');
}

/** pg_rewind on the old primary, the password in a 0600 passfile of a private temporary directory. */
export function rewindScript(layout: PgLayout, primary: string, port: number, password: string): string {
  const pass = heredoc(`${pgpassField(primary)}:${port}:postgres:${REWIND_ROLE}:${pgpassField(password)}`);
  const conn = `host=${primary} port=${port} dbname=postgres user=${REWIND_ROLE} sslmode=verify-full sslrootcert=${TLS.ca} connect_timeout=10 passfile=`;
  return [
    'tmp=$(mktemp -d)',
    'trap \'rm -rf "$tmp"\' EXIT',
    'chown postgres "$tmp"',
    `(umask 077; cat > "$tmp/pgpass") ${pass.open}`,
    pass.body,
    'chown postgres "$tmp/pgpass"',
    `${asPostgres(`${sh`${`${layout.binDir}/pg_rewind`} --target-pgdata=${layout.dataDir}`} --source-server="${conn}$tmp/pgpass" --progress`)} 2>&1`,
  ].join('\n');
}

/** After pg_rewind: the old primary follows the new one (standby.signal, primary_conninfo through its slot). */
export function followScript(layout: PgLayout, conninfo: string, slot: string): string {
  const auto = `${layout.dataDir}/postgresql.auto.conf`;
  const lines = `primary_conninfo = ${sqlLiteral(conninfo)}\nprimary_slot_name = ${sqlLiteral(slot)}\n`;
  return [
    sh`f=${auto}`,
    'if [ -f "$f" ]; then grep -v -E \'^[[:space:]]*(primary_conninfo|primary_slot_name)[[:space:]]*=\' "$f" > "$f.ha-setup" || true; else : > "$f.ha-setup"; fi',
    sh`printf '%s' ${lines} >> "$f.ha-setup"`,
    'chown postgres:postgres "$f.ha-setup" && chmod 0600 "$f.ha-setup" && mv -f "$f.ha-setup" "$f"',
    sh`install -m 0600 -o postgres -g postgres /dev/null ${`${layout.dataDir}/standby.signal`}`,
  ].join('\n');
}

/** RHEL keeps its config files in the data directory, which pg_rewind and pg_basebackup overwrite. */
function keepConfig(layout: PgLayout, restore: boolean): string {
  if (layout.family !== 'rhel') return 'true';
  const d = layout.dataDir;
  const keep = layout.keepDir;
  return restore
    ? [sh`if [ -d ${keep} ]; then rm -rf ${`${d}/conf.d`}; cp -a ${`${keep}/.`} ${`${d}/`}; rm -rf ${keep}; fi`].join('\n')
    : [sh`rm -rf ${keep} && install -d -m 0700 -o postgres -g postgres ${keep}`, sh`for f in postgresql.conf pg_hba.conf pg_ident.conf conf.d; do if [ -e ${d}/"$f" ]; then cp -a ${d}/"$f" ${keep}/; fi; done`].join('\n');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runRejoin(o: RejoinOptions): Promise<RejoinReport> {
  const t0 = Date.now();
  const log = o.log ?? (() => {});
  const inv = o.inventory;
  const hosts = dbPair(inv);
  const pg = pgOptions(inv.options);
  const tp = o.transport;
  const store = new SecretStore(clusterDir(inv.cluster, o.env)).check();
  const redactor = new Redactor().add(...store.all());
  const run = async (h: HostRef, title: string, script: string, timeoutMs = 120_000): Promise<string> => {
    const r = await tp(h).exec(script, { sudo: true, timeoutMs });
    if (r.code !== 0) throw new Error(redactor.redact(`${h.alias}: ${title} failed (exit ${r.code}): ${(r.stderr.trim() || r.stdout.trim()).split('\n').slice(-3).join(' / ')}`));
    return r.stdout;
  };

  const db = [hosts.primary, hosts.standby];
  const states = await Promise.all(db.map(async (h) => ({ h, s: parseNodeState(await run(h, 'read its state', nodeStateScript(pg.version, pg.port, hosts.vip, h.address), 30_000)) })));
  const serving = states.filter((x) => x.s.holdsVip && x.s.postgres === 'primary');
  if (serving.length !== 1) {
    throw new Error(`no single writable primary holds the VIP ${hosts.vip} (${states.map((x) => `${x.h.alias}: ${x.s.postgres}${x.s.holdsVip ? ', VIP' : ''}`).join('; ')}): rejoin needs the new primary serving`);
  }
  const primary = serving[0]!;
  const old = states.find((x) => x !== primary)!;
  const tableHint = primary.h.alias === 'db_primary' ? null : `the table names ${primary.h.alias} (${primary.h.address}) as ${primary.h.alias} but it is the primary now: swap db_primary and db_standby in the config before the next apply`;
  if (old.s.postgres === 'standby' && old.s.receiver === 'streaming') {
    return { primary: primary.h, rejoined: old.h, method: 'already', seconds: 0, receiver: 'streaming', tableHint };
  }
  const facts = parseKv(await run(old.h, 'read its state', oldFactsScript(pg.version, pg.port, hosts.vip, old.h.address), 30_000));
  const oldFacts: OldFacts = { ...old.s, hostname: facts.HOSTNAME ?? '', systemIdentifier: facts.SYSID || null, family: facts.FAMILY === 'rhel' ? 'rhel' : 'debian' };
  const layout = pgLayout(oldFacts.family, pg.version);
  const primarySysid = (await run(primary.h, 'read the system identifier', localPsql(pg.version, pg.port, 'postgres', 'select system_identifier from pg_control_system();'), 30_000)).trim();

  // The old primary must be down before anything touches its data directory.
  if (old.s.postgres !== 'down') {
    log(`rejoin: stopping PostgreSQL on ${old.h.alias} (${old.s.postgres}${old.s.timeline ? ` on timeline ${old.s.timeline}` : ''})`);
    await run(old.h, `stop ${layout.unit}`, sh`systemctl stop ${layout.unit}`);
  }

  const slot = slotName(old.h.address);
  const conninfo = primaryConninfo(layout, primary.h.address, pg.port, slot);
  await run(primary.h, `replication slot ${slot}`, localPsql(pg.version, pg.port, 'postgres', `select pg_create_physical_replication_slot(${sqlLiteral(slot)}) where not exists (select 1 from pg_replication_slots where slot_name = ${sqlLiteral(slot)});`), 30_000);

  let method: RejoinReport['method'] = 'pg_rewind';
  let rewindProblem: string | undefined;
  if (oldFacts.systemIdentifier !== primarySysid) {
    rewindProblem = `${old.h.alias} holds another cluster (system identifier ${oldFacts.systemIdentifier ?? 'unreadable'}, the primary has ${primarySysid})`;
  } else {
    const password = store.get(REWIND_SECRET).reveal();
    redactor.add(store.get(REWIND_SECRET));
    const hbaPath = pgLayout(primary.s.family, pg.version).hbaFile;
    const hba = await tp(primary.h).readFile(hbaPath);
    if (hba === null) throw new Error(`${primary.h.alias}: ${hbaPath} does not exist`);
    const cidr = `${old.h.address}/${ipaddr.parse(old.h.address).kind() === 'ipv6' ? 128 : 32}`;
    const hbaMode = primary.s.family === 'debian' ? 0o640 : 0o600;
    try {
      log(`rejoin: pg_rewind ${old.h.alias} from ${primary.h.alias} (role ${REWIND_ROLE}, allowed from ${cidr} while it runs)`);
      await run(primary.h, `role ${REWIND_ROLE} for pg_rewind`, localPsql(pg.version, pg.port, 'postgres', rewindRoleSql(password)), 30_000);
      await tp(primary.h).writeFile(hbaPath, withRejoinBlock(hba, `hostssl postgres ${REWIND_ROLE} ${cidr} scram-sha-256`), { mode: hbaMode, owner: 'postgres', group: 'postgres' });
      await run(primary.h, 'reload PostgreSQL (pg_hba.conf)', sh`systemctl reload ${primary.s.unit}`, 30_000);
      await run(old.h, 'keep the config files aside', keepConfig(layout, false));
      const out = await tp(old.h).exec(rewindScript(layout, primary.h.address, pg.port, password), { sudo: true, timeoutMs: 30 * 60_000 });
      await run(old.h, 'restore the config files', keepConfig(layout, true));
      if (out.code !== 0) rewindProblem = redactor.redact(`pg_rewind failed (exit ${out.code}): ${`${out.stdout}\n${out.stderr}`.trim().split('\n').slice(-2).join(' / ')}`);
      else for (const l of out.stdout.trim().split('\n').filter((x) => /diverged|rewind|Done/.test(x))) log(`rejoin: ${l.trim()}`);
    } finally {
      const now = await tp(primary.h).readFile(hbaPath);
      if (now !== null && now.includes(HBA_BEGIN)) {
        await tp(primary.h).writeFile(hbaPath, withRejoinBlock(now, null), { mode: hbaMode, owner: 'postgres', group: 'postgres' });
        await run(primary.h, 'reload PostgreSQL (pg_hba.conf)', sh`systemctl reload ${primary.s.unit}`, 30_000).catch(() => undefined);
      }
    }
  }

  if (rewindProblem) {
    if (!o.allowDataWipe || o.allowDataWipe !== oldFacts.hostname) {
      const typed = o.allowDataWipe ? ` (--allow-data-wipe ${o.allowDataWipe} does not match host name ${oldFacts.hostname})` : '';
      throw new Error(`${rewindProblem}; a fresh base backup would empty ${layout.dataDir} on ${old.h.alias}${typed}: if that is what you want, run again with --allow-data-wipe ${oldFacts.hostname}`);
    }
    method = 'pg_basebackup';
    log(`rejoin: ${rewindProblem}; fresh base backup into ${layout.dataDir} on ${old.h.alias} (--allow-data-wipe ${oldFacts.hostname} given)`);
    await run(old.h, 'keep the config files aside', keepConfig(layout, false));
    await run(old.h, `empty ${layout.dataDir}`, [sh`install -d -m 0700 -o postgres -g postgres ${layout.dataDir}`, sh`find ${layout.dataDir} -mindepth 1 -delete`].join('\n'));
    await run(old.h, 'pg_basebackup from the primary', basebackupScript(layout, conninfo, slot, true), 60 * 60_000);
    await run(old.h, 'restore the config files', keepConfig(layout, true));
  }

  await run(old.h, 'follow the new primary (standby.signal, primary_conninfo)', followScript(layout, conninfo, slot));
  log(`rejoin: starting ${old.h.alias} as a standby of ${primary.h.alias}`);
  await run(old.h, `start ${layout.unit}`, sh`systemctl start ${layout.unit}`);
  let receiver: string | null = null;
  for (let i = 0; i < 60; i++) {
    const s = parseNodeState(await run(old.h, 'read its state', nodeStateScript(pg.version, pg.port, hosts.vip, old.h.address), 30_000));
    receiver = s.receiver;
    if (s.postgres === 'standby' && s.receiver === 'streaming') break;
    await sleep(1000);
  }
  if (receiver !== 'streaming') throw new Error(`${old.h.alias} started as a standby but does not stream from ${primary.h.alias} after 60 s (WAL receiver: ${receiver ?? 'none'}); see its PostgreSQL log`);
  // The promotion cleared synchronous_standby_names (ALTER SYSTEM) with sync replication: a standby is back.
  const altered = await run(primary.h, 'read synchronous_standby_names', localPsql(pg.version, pg.port, 'postgres', SYNC_SET_BY_ALTER_SYSTEM_SQL), 30_000);
  if (altered.trim() === 'set') {
    // ALTER SYSTEM runs outside a transaction block: one statement per psql call.
    await run(primary.h, 'restore synchronous replication', localPsql(pg.version, pg.port, 'postgres', 'alter system reset synchronous_standby_names;'), 30_000);
    await run(primary.h, 'reload PostgreSQL', localPsql(pg.version, pg.port, 'postgres', 'select pg_reload_conf();'), 30_000);
    log(`rejoin: synchronous replication restored on ${primary.h.alias} (ALTER SYSTEM RESET synchronous_standby_names)`);
  }
  return { primary: primary.h, rejoined: old.h, method, rewindProblem, seconds: (Date.now() - t0) / 1000, receiver, tableHint };
}
