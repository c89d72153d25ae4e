/**
 * The guides' acceptance test, run on every apply: a table created on the primary appears on
 * the standby, is dropped, and creating it on the standby fails with "cannot execute CREATE
 * TABLE in a read-only transaction"; pg_stat_replication shows the standby streaming, with its
 * lag in bytes and seconds; and each node reaches the other with sslmode=verify-full under the
 * DB VIP's name (so an app with the CA file can connect to the VIP on either node).
 *
 * These steps never have an empty plan: a test that is skipped proves nothing.
 */
import ipaddr from 'ipaddr.js';
import { heredoc, quote, sh } from '../source/engine/shell.js';
import { defineStep, type HostContext, type Plan, type Runbook } from '../source/engine/step.js';
import { osFact } from './lib/host-facts.js';
import { pgOptions } from './lib/options.js';
import { addressesOf, pgFact, resolveFact, tableNames, type PgFacts } from './lib/pg-facts.js';
import { asPostgres, DB_NODES, layoutFor, livePort, pendingAction, pollSql, psqlScript, slotName, TLS, type PgLayout } from './lib/pg-layout.js';
import { primaryOf, standbyOf } from './pg-standby.js';

export const TEST_TABLE = 'ha_setup_replication_test';
export const READ_ONLY_ERROR = 'cannot execute CREATE TABLE in a read-only transaction';
const WAIT_SECONDS = 30;
const ALWAYS = 'acceptance test: runs on every apply';

/**
 * Is the host ready for the test? A primary in recovery is an error (roles swapped); a server
 * not running, or a standby not in recovery yet, is work of earlier runbooks (a dry run before
 * them shows the test as pending).
 */
function notReady(pg: PgFacts, role: 'primary' | 'standby', alias: string): Plan | null {
  if (role === 'primary' && pg.running && pg.inRecovery) throw new Error(`${alias} is in recovery, not a primary; check the server table's roles`);
  if (!pg.running) return { actions: [pendingAction(`replication test on ${alias}`, `PostgreSQL runs on ${alias} (runbooks pg-primary, pg-standby)`)], reason: `PostgreSQL is not running on ${alias}` };
  if (role === 'standby' && pg.inRecovery !== true) {
    return { actions: [pendingAction(`replication test on ${alias}`, `${alias} is a streaming standby (runbook pg-standby)`)], reason: `${alias} is not in recovery yet` };
  }
  return null;
}

const facts = (ctx: HostContext) => ({ os: osFact, pg: pgFact(pgOptions(ctx.options).version) });

const create = defineStep({
  id: 'pg-verify.create',
  title: `Create table ${TEST_TABLE} on the primary`,
  targets: () => ['db_primary'],
  facts,
  plan({ os, pg }, ctx) {
    const o = pgOptions(ctx.options);
    const wait = notReady(pg, 'primary', ctx.host.alias);
    if (wait) return wait;
    const layout = layoutFor(os, o.version, ctx.host.alias);
    const sql = `DROP TABLE IF EXISTS ${TEST_TABLE};\nCREATE TABLE ${TEST_TABLE} (name char(10));\nINSERT INTO ${TEST_TABLE} VALUES ('ha-setup');`;
    return { actions: [{ kind: 'run', title: `CREATE TABLE ${TEST_TABLE} (name char(10)) on db_primary`, script: psqlScript(layout, livePort(pg, o.port), sql), sudo: true }], reason: ALWAYS };
  },
});

const exists = (table: string): string => `select case when to_regclass('public.${table}') is null then 'missing' else 'present' end;`;

const seen = defineStep({
  id: 'pg-verify.seen',
  title: `The table appears on the standby (within ${WAIT_SECONDS} s)`,
  targets: () => ['db_standby'],
  facts,
  plan({ pg }, ctx) {
    const o = pgOptions(ctx.options);
    const wait = notReady(pg, 'standby', ctx.host.alias);
    if (wait) return wait;
    return { actions: [{ kind: 'run', title: `wait for ${TEST_TABLE} on db_standby`, script: pollSql(o.version, livePort(pg, o.port), exists(TEST_TABLE), 'present', WAIT_SECONDS, `${TEST_TABLE} did not appear on the standby`), sudo: true }], reason: ALWAYS };
  },
});

const drop = defineStep({
  id: 'pg-verify.drop',
  title: `Drop ${TEST_TABLE} on the primary`,
  targets: () => ['db_primary'],
  facts,
  plan({ os, pg }, ctx) {
    const o = pgOptions(ctx.options);
    const wait = notReady(pg, 'primary', ctx.host.alias);
    if (wait) return wait;
    const layout = layoutFor(os, o.version, ctx.host.alias);
    return { actions: [{ kind: 'run', title: `DROP TABLE ${TEST_TABLE} on db_primary`, script: psqlScript(layout, livePort(pg, o.port), `DROP TABLE ${TEST_TABLE};`), sudo: true }], reason: ALWAYS };
  },
});

/** The standby replays the drop, then must refuse CREATE TABLE with the read-only error. */
export function readOnlyScript(layout: PgLayout, version: number, port: number): string {
  const doc = heredoc(`CREATE TABLE ${TEST_TABLE} (name char(10));`);
  const psql = asPostgres(sh`${`${layout.binDir}/psql`} -X -q -v ON_ERROR_STOP=1 -h ${layout.socketDir} -p ${port} -d postgres`);
  return [
    pollSql(version, port, exists(TEST_TABLE), 'missing', WAIT_SECONDS, 'the DROP TABLE did not reach the standby', layout.socketDir),
    `if out=$(${psql} 2>&1 ${doc.open}`,
    doc.body,
    '); then',
    `  echo ${quote('CREATE TABLE succeeded on the standby: it is not read-only')} >&2`,
    '  exit 1',
    'fi',
    `case "$out" in *${quote(READ_ONLY_ERROR)}*) echo "refused as expected: $out" ;; *) echo "unexpected answer: $out" >&2; exit 1 ;; esac`,
  ].join('\n');
}

const readOnly = defineStep({
  id: 'pg-verify.read-only',
  title: 'The drop reaches the standby, and CREATE TABLE there fails: read-only',
  targets: () => ['db_standby'],
  facts,
  plan({ os, pg }, ctx) {
    const o = pgOptions(ctx.options);
    const wait = notReady(pg, 'standby', ctx.host.alias);
    if (wait) return wait;
    const layout = layoutFor(os, o.version, ctx.host.alias);
    return { actions: [{ kind: 'run', title: `CREATE TABLE on db_standby must fail with "${READ_ONLY_ERROR}"`, script: readOnlyScript(layout, o.version, livePort(pg, o.port)), sudo: true }], reason: ALWAYS };
  },
});

export function streamingSql(standbyIps: string[], appName: string): string {
  const addrs = standbyIps.map((a) => `'${a}'`).join(', ');
  return [
    `select application_name || ' ' || coalesce(host(client_addr), 'local') || ' ' || state || ' ' || sync_state || ' lag ' ||`,
    `  coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint::text, '?') || ' bytes ' ||`,
    `  coalesce(round(extract(epoch from replay_lag)::numeric, 3)::text, '0') || ' s'`,
    `from pg_stat_replication where state = 'streaming' and (host(client_addr) in (${addrs}) or application_name = '${appName}');`,
  ].join('\n');
}

const streaming = defineStep({
  id: 'pg-verify.streaming',
  title: 'pg_stat_replication shows the standby streaming; lag in bytes and seconds',
  targets: () => ['db_primary'],
  facts: (ctx) => ({ ...facts(ctx), resolve: resolveFact(tableNames(ctx)) }),
  plan({ os, pg, resolve }, ctx) {
    const o = pgOptions(ctx.options);
    const wait = notReady(pg, 'primary', ctx.host.alias);
    if (wait) return wait;
    const layout = layoutFor(os, o.version, ctx.host.alias);
    const standby = standbyOf(ctx);
    const sql = streamingSql(addressesOf(standby, resolve, ctx.host.alias), slotName(standby));
    const script = [
      `out=$(${psqlScript(layout, livePort(pg, o.port), sql, { tuplesOnly: true })}`,
      ')',
      `if [ -z "$out" ]; then echo ${quote(`db_standby (${standby}) is not streaming from db_primary (pg_stat_replication has no streaming row for it)`)} >&2; exit 1; fi`,
      'echo "$out"',
    ].join('\n');
    return { actions: [{ kind: 'run', title: `pg_stat_replication: db_standby (${standby}) streaming, lag`, script, sudo: true }], reason: ALWAYS };
  },
});

/** From this node to the peer, as the DB VIP's name: verify-full must accept the peer's certificate. */
export function tlsCheckScript(layout: PgLayout, name: string, peerIp: string, port: number, ca = TLS.ca): string {
  const conninfo = `host=${name} hostaddr=${peerIp} port=${port} user=replicator dbname=replication replication=true passfile=${layout.passfile} sslmode=verify-full sslrootcert=${ca} connect_timeout=5`;
  return asPostgres(sh`${`${layout.binDir}/psql`} -X -At -w -d ${conninfo} -c IDENTIFY_SYSTEM`);
}

const tls = defineStep({
  id: 'pg-verify.tls',
  title: 'Each DB node accepts verify-full TLS under the DB VIP name (checked from its peer)',
  targets: () => [...DB_NODES],
  facts: (ctx) => ({ ...facts(ctx), resolve: resolveFact(tableNames(ctx)) }),
  plan({ os, resolve }, ctx) {
    const o = pgOptions(ctx.options);
    const layout = layoutFor(os, o.version, ctx.host.alias);
    const peerAlias = ctx.host.alias === 'db_primary' ? 'db_standby' : 'db_primary';
    const peer = peerAlias === 'db_primary' ? primaryOf(ctx) : standbyOf(ctx);
    const peerIp = addressesOf(peer, resolve, ctx.host.alias)[0]!;
    const vip = ctx.addresses.db_vip;
    const name = vip ?? peer;
    if (!ipaddr.isValid(peerIp)) throw new Error(`bug: ${peerIp} is not an address`);
    return {
      actions: [{ kind: 'run', title: `verify-full TLS to ${peerAlias} (${peerIp}) under the name ${name}`, script: tlsCheckScript(layout, name, peerIp, o.port), sudo: true }],
      reason: `${ALWAYS}; the certificate must name ${name}${vip ? ' (the DB VIP)' : ''} and chain to ${TLS.ca}`,
    };
  },
});

export const pgVerifyRunbook: Runbook = {
  id: 'pg-verify',
  title: 'PostgreSQL replication test',
  description:
    "The guides' replication test: CREATE TABLE test (name char(10)) on the primary, seen on the standby, dropped, and refused on the standby with \"cannot execute CREATE TABLE in a read-only transaction\"; pg_stat_replication shows the standby streaming with its lag; verify-full TLS under the DB VIP name on both nodes.",
  steps: [create, seen, drop, readOnly, streaming, tls],
};
