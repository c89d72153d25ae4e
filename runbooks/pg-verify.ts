/**
 * The guides' acceptance test, run on every apply: a table created on the primary appears on
 * the standby, is dropped, and creating it on the standby fails with "cannot execute CREATE
 * TABLE in a read-only transaction"; pg_stat_replication shows the standby streaming, with its
 * lag in bytes and seconds; and each node reaches the other with sslmode=verify-full under the
 * DB VIP's name (so an app with the CA file can connect to the VIP on either node).
 *
 * A test changes nothing that should stay changed, so these steps plan nothing once the
 * servers are ready (the reason says what will be checked) and the test runs in verify(),
 * which the runner calls after every plan in apply mode, empty or not: a re-run reports
 * "0 changed" and still proves replication. `plan` and `apply --dry-run` stay read-only.
 * A server that is not ready yet (only seen in a dry run before the earlier runbooks) shows a
 * pending action instead.
 */
import ipaddr from 'ipaddr.js';
import { heredoc, quote, sh } from '../source/engine/shell.js';
import { defineStep, done, type ExecContext, type HostContext, type Plan, type Runbook } from '../source/engine/step.js';
import { osFact } from './lib/host-facts.js';
import { pgOptions } from './lib/options.js';
import { pgFact, type PgFacts } from './lib/pg-facts.js';
import { asPostgres, DB_NODES, pendingAction, perFamily, pollSql, psqlAnyFamily, slotName, TLS, type PgLayout } from './lib/pg-layout.js';
import { primaryOf, standbyOf } from './pg-standby.js';

export const TEST_TABLE = 'ha_setup_replication_test';
export const READ_ONLY_ERROR = 'cannot execute CREATE TABLE in a read-only transaction';
const WAIT_SECONDS = 30;

/**
 * The plan of a test step: pending while the host is not ready, else empty with what verify()
 * will check. A primary in recovery is an error (roles swapped).
 */
function testPlan(pg: PgFacts, role: 'primary' | 'standby', alias: string, check: string): Plan {
  if (role === 'primary' && pg.running && pg.inRecovery) throw new Error(`${alias} is in recovery, not a primary; check the server table's roles`);
  if (!pg.running) return { actions: [pendingAction(`replication test on ${alias}`, `PostgreSQL runs on ${alias} (runbooks pg-primary, pg-standby)`)], reason: `PostgreSQL is not running on ${alias}` };
  if (role === 'standby' && pg.inRecovery !== true) {
    return { actions: [pendingAction(`replication test on ${alias}`, `${alias} is a streaming standby (runbook pg-standby)`)], reason: `${alias} is not in recovery yet` };
  }
  return done(`acceptance test, checked after this plan on every apply (nothing to change): ${check}`);
}

const facts = (ctx: HostContext) => ({ os: osFact, pg: pgFact(pgOptions(ctx.options).version) });

/** psql as postgres on the local socket, SQL on stdin; the configured port (verify has no facts). */
function sql(ctx: ExecContext, text: string): string {
  const o = pgOptions(ctx.options);
  return psqlAnyFamily(o.version, o.port, text);
}

const seconds = (t0: number): string => `${((Date.now() - t0) / 1000).toFixed(1)} s`;

const create = defineStep({
  id: 'pg-verify.create',
  title: `Create table ${TEST_TABLE} on the primary`,
  targets: () => ['db_primary'],
  facts,
  plan: ({ pg }, ctx) => testPlan(pg, 'primary', ctx.host.alias, `CREATE TABLE ${TEST_TABLE} (name char(10)) on db_primary, one row inserted`),
  async verify(ctx) {
    const text = `SET client_min_messages = warning;\nDROP TABLE IF EXISTS ${TEST_TABLE};\nCREATE TABLE ${TEST_TABLE} (name char(10));\nINSERT INTO ${TEST_TABLE} VALUES ('ha-setup');\nSELECT count(*) FROM ${TEST_TABLE};`;
    const r = await ctx.run(`CREATE TABLE ${TEST_TABLE} (name char(10)) on db_primary`, sql(ctx, text), { sudo: true });
    // psql prints the command tags (DROP TABLE, CREATE TABLE, INSERT 0 1) before the count.
    const count = r.stdout.trim().split('\n').pop();
    if (count !== '1') throw new Error(`${ctx.host.alias}: ${TEST_TABLE} was created but reads back ${JSON.stringify(count)} rows, not 1`);
    return `created ${TEST_TABLE} on db_primary`;
  },
});

const exists = (table: string): string => `select case when to_regclass('public.${table}') is null then 'missing' else 'present' end;`;

const seen = defineStep({
  id: 'pg-verify.seen',
  title: `The table appears on the standby (within ${WAIT_SECONDS} s)`,
  targets: () => ['db_standby'],
  facts,
  plan: ({ pg }, ctx) => testPlan(pg, 'standby', ctx.host.alias, `${TEST_TABLE} appears on db_standby within ${WAIT_SECONDS} s`),
  async verify(ctx) {
    const o = pgOptions(ctx.options);
    const t0 = Date.now();
    await ctx.run(`wait for ${TEST_TABLE} on db_standby`, pollSql(o.version, o.port, exists(TEST_TABLE), 'present', WAIT_SECONDS, `${TEST_TABLE} did not appear on the standby`), { sudo: true });
    return `${TEST_TABLE} appeared on db_standby after ${seconds(t0)}`;
  },
});

const drop = defineStep({
  id: 'pg-verify.drop',
  title: `Drop ${TEST_TABLE} on the primary`,
  targets: () => ['db_primary'],
  facts,
  plan: ({ pg }, ctx) => testPlan(pg, 'primary', ctx.host.alias, `DROP TABLE ${TEST_TABLE} on db_primary`),
  async verify(ctx) {
    await ctx.run(`DROP TABLE ${TEST_TABLE} on db_primary`, sql(ctx, `DROP TABLE ${TEST_TABLE};`), { sudo: true });
    return `dropped ${TEST_TABLE} on db_primary`;
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
  plan: ({ pg }, ctx) => testPlan(pg, 'standby', ctx.host.alias, `the drop reaches db_standby, and CREATE TABLE there fails with "${READ_ONLY_ERROR}"`),
  async verify(ctx) {
    const o = pgOptions(ctx.options);
    const r = await ctx.run(`CREATE TABLE on db_standby must fail with "${READ_ONLY_ERROR}"`, perFamily(o.version, (l) => readOnlyScript(l, o.version, o.port)), { sudo: true });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    return line.replace(/^refused as expected: (ERROR:\s*)?/, 'CREATE TABLE refused on db_standby: ');
  },
});

/** pg_stat_replication rows of the standby (by address when the table gives one, and by its application_name). */
export function streamingSql(standbyIps: string[], appName: string): string {
  const who = [`application_name = '${appName}'`, ...(standbyIps.length ? [`host(client_addr) in (${standbyIps.map((a) => `'${a}'`).join(', ')})`] : [])];
  return [
    `select application_name || ' ' || coalesce(host(client_addr), 'local') || ' ' || state || ' ' || sync_state || ' lag ' ||`,
    `  coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint::text, '?') || ' bytes ' ||`,
    `  coalesce(round(extract(epoch from replay_lag)::numeric, 3)::text, '0') || ' s'`,
    `from pg_stat_replication where state = 'streaming' and (${who.join(' or ')});`,
  ].join('\n');
}

const ipsOf = (entry: string): string[] => (ipaddr.isValid(entry) ? [ipaddr.process(entry).toString()] : []);

const streaming = defineStep({
  id: 'pg-verify.streaming',
  title: 'pg_stat_replication shows the standby streaming; lag in bytes and seconds',
  targets: () => ['db_primary'],
  facts,
  plan: ({ pg }, ctx) => testPlan(pg, 'primary', ctx.host.alias, `pg_stat_replication on db_primary shows db_standby (${standbyOf(ctx)}) streaming; lag reported`),
  async verify(ctx) {
    const standby = standbyOf(ctx);
    const r = await ctx.run(`pg_stat_replication: db_standby (${standby}) streaming, lag`, sql(ctx, streamingSql(ipsOf(standby), slotName(standby))), { sudo: true });
    const row = r.stdout.trim().split('\n')[0];
    if (!row) throw new Error(`db_standby (${standby}) is not streaming from db_primary: pg_stat_replication has no streaming row for it`);
    return `pg_stat_replication: ${row}`;
  },
});

/**
 * From this node to the peer, as the DB VIP's name: verify-full must accept the peer's
 * certificate. `peer` is an address or a host name (resolved here, on the node).
 */
export function tlsCheckScript(layout: PgLayout, name: string, peer: string, port: number, ca = TLS.ca): string {
  for (const v of [name, peer]) if (!/^[A-Za-z0-9.:_-]+$/.test(v)) throw new Error(`"${v}" is neither an IP address nor a host name`);
  const resolve = ipaddr.isValid(peer)
    ? `peer_ip=${quote(peer)}`
    : [
        `peer_ip=$(getent ahosts ${quote(peer)} | awk '$2 == "STREAM" {print $1; exit}' || true)`,
        `if [ -z "$peer_ip" ]; then echo ${quote(`${peer} does not resolve on this node`)} >&2; exit 1; fi`,
      ].join('\n');
  const rest = ` port=${port} user=replicator dbname=replication replication=true passfile=${layout.passfile} sslmode=verify-full sslrootcert=${ca} connect_timeout=5`;
  const psql = `${quote(`${layout.binDir}/psql`)} -X -At -w -d ${quote(`host=${name} hostaddr=`)}"$peer_ip"${quote(rest)} -c IDENTIFY_SYSTEM`;
  return `${resolve}\n${asPostgres(psql)}`;
}

const tls = defineStep({
  id: 'pg-verify.tls',
  title: 'Each DB node accepts verify-full TLS under the DB VIP name (checked from its peer)',
  targets: () => [...DB_NODES],
  facts,
  plan({ pg }, ctx) {
    const peerAlias = ctx.host.alias === 'db_primary' ? 'db_standby' : 'db_primary';
    const name = ctx.addresses.db_vip ?? (peerAlias === 'db_primary' ? primaryOf(ctx) : standbyOf(ctx));
    if (!pg.running) return { actions: [pendingAction(`verify-full TLS to ${peerAlias}`, `PostgreSQL runs on ${ctx.host.alias} (runbooks os-prep, pg-standby)`)], reason: `PostgreSQL is not running on ${ctx.host.alias}` };
    return done(
      `acceptance test, checked after this plan on every apply (nothing to change): ${peerAlias} accepts replicator with sslmode=verify-full under the name ${name}, its certificate chaining to ${TLS.ca}`,
    );
  },
  async verify(ctx) {
    const o = pgOptions(ctx.options);
    const peerAlias = ctx.host.alias === 'db_primary' ? 'db_standby' : 'db_primary';
    const peer = peerAlias === 'db_primary' ? primaryOf(ctx) : standbyOf(ctx);
    const name = ctx.addresses.db_vip ?? peer;
    const r = await ctx.run(`verify-full TLS to ${peerAlias} (${peer}) under the name ${name}`, perFamily(o.version, (l) => tlsCheckScript(l, name, peer, o.port)), {
      sudo: true,
      check: false,
    });
    if (r.code !== 0) {
      throw new Error(`${peerAlias} (${peer}) refused a verify-full TLS connection under the name ${name}: ${(r.stderr.trim() || r.stdout.trim()).split('\n').pop()}`);
    }
    return `${peerAlias} (${peer}) accepts verify-full TLS under the name ${name}`;
  },
});

export const pgVerifyRunbook: Runbook = {
  id: 'pg-verify',
  title: 'PostgreSQL replication test',
  description:
    "The guides' replication test, run after the plan on every apply (the plan itself stays empty): CREATE TABLE test (name char(10)) on the primary, seen on the standby, dropped, and refused on the standby with \"cannot execute CREATE TABLE in a read-only transaction\"; pg_stat_replication shows the standby streaming with its lag; verify-full TLS under the DB VIP name on both nodes.",
  steps: [create, seen, drop, readOnly, streaming, tls],
};
