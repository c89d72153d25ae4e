/**
 * The PostgreSQL runbooks' own scripts and files against a real PostgreSQL 15 on this machine:
 * two temporary clusters on loopback (no systemd, no other address), nothing outside a
 * temporary directory. What this proves for 15 (the lab proves it again on real servers):
 * - ha-setup.conf and ha-setup-ssl.conf are accepted, in effect, and read from our files;
 * - the pg fact's SQL runs and parses; the roles step's SQL (passwords on stdin) creates the
 *   roles, and the SCRAM comparison then finds nothing to change (idempotent on real verifiers);
 * - the pg_hba block is valid (pg_hba_file_rules has no error) and lets replicator in over TLS;
 * - the peer fact's IDENTIFY_SYSTEM + SHOW work over a replication connection with the passfile;
 * - verify-full accepts the node under the DB VIP name with our CA, and refuses another name;
 * - pg_basebackup -R with the passfile writes no password into postgresql.auto.conf;
 * - the standby streams, and the guides' test passes through pg-verify's verify() (its plans
 *   empty): read-only error text, lag reported, the test table gone afterwards.
 * Paths the runbooks fix (socket directory, passfile) are pointed at the temporary directory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createHostContext, tableOf } from '../../source/engine/context.js';
import { Secret } from '../../source/engine/shell.js';
import type { ExecContext, FactMap, HostContext, Plan, Step } from '../../source/engine/step.js';
import { FACT_SQL, parsePgFacts, peerPgFact, type PgFacts } from '../../runbooks/lib/pg-facts.js';
import { pgLayout, renderAsset, type PgLayout } from '../../runbooks/lib/pg-layout.js';
import { compareLive, parseConf, renderConf, sslSettings } from '../../runbooks/lib/pg-settings.js';
import { pgPrimaryRunbook, primaryDropIn } from '../../runbooks/pg-primary.js';
import { clusterCa, pgSslRunbook, serverCertificate } from '../../runbooks/pg-ssl.js';
import { basebackupScript, passfileContent, pgStandbyRunbook, primaryConninfo, standbyDropIn } from '../../runbooks/pg-standby.js';
import { hbaLines, pgUsersRunbook, withManagedBlock } from '../../runbooks/pg-users.js';
import { pgVerifyRunbook, tlsCheckScript } from '../../runbooks/pg-verify.js';

const BIN = '/usr/lib/postgresql/15/bin';
const why = (): string | null => {
  if (process.getuid?.() !== 0) return 'needs root (to run PostgreSQL as the postgres user)';
  if (!existsSync(`${BIN}/initdb`)) return 'PostgreSQL 15 server binaries are not installed';
  if (spawnSync('id', ['-u', 'postgres']).status !== 0) return 'no postgres user';
  if (spawnSync('openssl', ['version']).status !== 0) return 'no openssl';
  return null;
};

function bash(script: string): { code: number; stdout: string; stderr: string } {
  const r = spawnSync('bash', ['-s'], { input: `set -euo pipefail\n${script}`, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
const ok = (script: string, what: string): string => {
  const r = bash(script);
  assert.equal(r.code, 0, `${what} failed (${r.code}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
};

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((res) => s.listen(0, '127.0.0.1', res));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((res) => s.close(() => res()));
  return port;
}

const stepOf = (id: string): Step<FactMap> =>
  [...pgPrimaryRunbook.steps, ...pgUsersRunbook.steps, ...pgStandbyRunbook.steps, ...pgVerifyRunbook.steps].find((s) => s.id === id)!;

test('the runbooks against a real PostgreSQL 15 (two temporary clusters on loopback)', async (t) => {
  const skip = why();
  if (skip) return t.skip(skip);
  const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout);
  const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout);
  const dir = mkdtempSync('/tmp/ha-setup-pglocal-');
  chownSync(dir, uid, gid);
  const [p1, p2] = [await freePort(), await freePort()];
  const as = (cmd: string): string => `(cd / && runuser -u postgres -- ${cmd})`;
  const started: string[] = [];
  const secrets = new Map<string, Secret>();
  const secret = (n: string): Secret => secrets.get(n) ?? (secrets.set(n, new Secret(n, `Lcl${n.replace(/[^a-z]/g, '')}7x9Q2w`)), secrets.get(n)!);
  // The DB VIP is a loopback address here, so that listen = explicit binds only loopback addresses.
  const table = tableOf({ servers: { db_primary: '127.0.0.1', db_standby: '127.0.0.1', db_vip: '127.0.0.100', app1: '127.0.0.1' } });
  const options = { cluster: 'local', postgres: { version: 15, port: p1, listen: 'explicit' } };
  const ctxOf = (alias: string): HostContext => createHostContext({ host: table.hosts[alias]!, table, options, secret });
  const layout = (name: string): PgLayout => {
    const base = pgLayout('debian', 15);
    const d = join(dir, name);
    return { ...base, dataDir: d, confDir: d, confFile: `${d}/postgresql.conf`, hbaFile: `${d}/pg_hba.conf`, dropInDir: `${d}/conf.d`, socketDir: dir, passfile: join(dir, 'pgpass') };
  };
  const P = layout('primary');
  const S = layout('standby');
  const local = (script: string): string => script.replaceAll('/var/run/postgresql', dir).replaceAll('/var/lib/postgresql/.pgpass-ha-setup', P.passfile);
  const facts = (l: PgLayout, port: number): PgFacts => {
    const out = ok(`${as(`${BIN}/psql -X -At -h ${dir} -p ${port} -d postgres`)} <<'SQL'\n${FACT_SQL}\nSQL`, 'fact SQL');
    const ctl = ok(`LC_ALL=C ${BIN}/pg_controldata ${l.dataDir} | base64 -w0`, 'pg_controldata');
    return parsePgFacts(`FAMILY=debian\nRUNNING=yes\nLIVE_PORT=${port}\nCONTROL=${ctl}\n${out}`);
  };
  const os = { id: 'debian', family: 'debian', versionId: '12', major: 12, prettyName: 'Debian 12', hostname: 'local', kernel: '6.1', init: 'systemd', packageManager: 'apt' };
  const plan = (id: string, alias: string, f: Record<string, unknown>): Plan => stepOf(id).plan({ os, ...f } as never, ctxOf(alias));
  const runPlan = (p: Plan, what: string): string =>
    p.actions.map((a) => (a.kind === 'run' ? ok(local(a.script), `${what}: ${a.title}`) : '')).join('');

  try {
    // --- the primary: initdb, TLS from the cluster CA, our drop-ins and pg_hba block
    ok(as(`${BIN}/initdb -D ${P.dataDir} -U postgres --auth-local=peer --auth-host=scram-sha-256 >/dev/null`), 'initdb');
    const ca = clusterCa('local-test-seed-0123456789', 'local');
    writeFileSync(join(dir, 'ca.crt'), ca.certPem);
    ok(`umask 077; openssl ecparam -name prime256v1 -genkey -noout -out ${dir}/server.key && chown postgres:postgres ${dir}/server.key`, 'key (as pg-ssl.key makes it)');
    const pub = ok(`openssl pkey -in ${dir}/server.key -pubout`, 'public key');
    writeFileSync(join(dir, 'server.crt'), serverCertificate(ca, pub, [{ kind: 'ip', value: '127.0.0.100' }, { kind: 'ip', value: '127.0.0.1' }], '127.0.0.100', Math.floor(Date.now() / 1000)));
    mkdirSync(P.dropInDir);
    writeFileSync(P.confFile, `${readFileSync(P.confFile, 'utf8')}\ninclude_dir = 'conf.d'\n`);
    const { content: dropIn, settings: wanted } = primaryDropIn(ctxOf('db_primary'));
    writeFileSync(`${P.dropInDir}/ha-setup.conf`, dropIn);
    const ssl = sslSettings(15, { cert: join(dir, 'server.crt'), key: join(dir, 'server.key') });
    writeFileSync(`${P.dropInDir}/ha-setup-ssl.conf`, renderAsset('ha-setup.conf.tmpl', { runbook: 'pg-ssl', version: 15, alias: 'db_primary', settings: renderConf([], ssl).trimEnd() }));
    // Test only, read last: sockets in the temporary directory.
    writeFileSync(`${P.dropInDir}/zz-test.conf`, `unix_socket_directories = '${dir}'\n`);
    const block = renderAsset('pg_hba-block.tmpl', { lines: hbaLines(ctxOf('db_primary'), { replication: ['127.0.0.1'], app: ['127.0.0.1'] }).join('\n') });
    writeFileSync(P.hbaFile, withManagedBlock(readFileSync(P.hbaFile, 'utf8'), block));
    ok(`chown -R postgres:postgres ${dir}`, 'chown');
    ok(as(`${BIN}/pg_ctl -D ${P.dataDir} -l ${dir}/primary.log -w start >/dev/null`), 'start the primary');
    started.push(P.dataDir);

    let pg = facts(P, p1);
    assert.equal(pg.inRecovery, false);
    assert.equal(pg.settings.listen_addresses?.setting, 'localhost,127.0.0.1,127.0.0.100');
    const cmp = compareLive(wanted, pg.settings);
    assert.deepEqual(cmp.differ.map((d) => `${d.name}=${pg.settings[d.name]?.setting}`), [], 'every setting of ha-setup.conf is in effect');
    for (const w of wanted) assert.equal(pg.settings[w.name]?.sourcefile, `${P.dropInDir}/ha-setup.conf`, `${w.name} comes from ha-setup.conf`);
    assert.equal(pg.settings.ssl?.setting, 'on');
    assert.equal(pg.settings.ssl_cert_file?.sourcefile, `${P.dropInDir}/ha-setup-ssl.conf`);
    assert.equal(ok(`${as(`${BIN}/psql -X -At -h ${dir} -p ${p1} -c "select count(*) from pg_hba_file_rules where error is not null"`)}`, 'hba rules').trim(), '0');

    // --- pg-users.roles: create, then nothing to do (real SCRAM verifiers compared)
    const rolesPlan = plan('pg-users.roles', 'db_primary', { pg });
    assert.equal(rolesPlan.actions.length, 1);
    for (const s of secrets.values()) assert.ok(!(rolesPlan.actions[0]!.title ?? '').includes(s.reveal()));
    runPlan(rolesPlan, 'roles');
    pg = facts(P, p1);
    assert.deepEqual(plan('pg-users.roles', 'db_primary', { pg }).actions, [], 'second run: the stored verifiers match the secrets');
    assert.equal(pg.roles.find((r) => r.name === 'replicator')?.password.kind, 'scram');
    assert.equal(pg.databases.find((d) => d.name === 'lunadirectordb')?.owner, 'lunadirector');
    const log = readFileSync(`${dir}/primary.log`, 'utf8');
    for (const s of secrets.values()) assert.ok(!log.includes(s.reveal()), 'no password in the server log');

    // --- pg-primary.slot, then nothing to do
    runPlan(plan('pg-primary.slot', 'db_primary', { pg }), 'slot');
    pg = facts(P, p1);
    assert.deepEqual(plan('pg-primary.slot', 'db_primary', { pg }).actions, []);

    // --- pg-standby.passfile (its own script, written to the temporary directory)
    runPlan(plan('pg-standby.passfile', 'db_standby', { pf: { exists: false, sha256: null, mode: null, owner: null } }), 'passfile');
    assert.equal(readFileSync(P.passfile, 'utf8'), passfileContent(ctxOf('db_standby')));
    assert.equal(ok(`stat -c '%a %U' ${P.passfile}`, 'stat').trim(), '600 postgres');

    // --- the peer fact over a replication connection (passfile, verify-full with our CA)
    const peerDef = peerPgFact({ version: 15, peer: '127.0.0.1', port: p1, paths: { psql: `${BIN}/psql`, passfile: P.passfile, ca: join(dir, 'ca.crt') } });
    const peer = peerDef.parse(ok(peerDef.script, 'peer fact'), { code: 0, stdout: '', stderr: '', durationMs: 0 });
    assert.equal(peer.ok, true, peer.error ?? '');
    assert.equal(peer.systemIdentifier, pg.systemIdentifier);
    assert.equal(peer.inHotStandby, false);
    assert.equal(peer.settings.max_connections, Number(pg.settings.max_connections?.setting));

    // --- verify-full under the DB VIP name (hostaddr = this node), and not under another name
    ok(tlsCheckScript(P, '127.0.0.100', '127.0.0.1', p1, join(dir, 'ca.crt')), 'verify-full as the VIP');
    const wrong = bash(tlsCheckScript(P, '127.0.0.99', '127.0.0.1', p1, join(dir, 'ca.crt')));
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /server certificate for "127\.0\.0\.100" \(and 1 other name\) does not match host name "127\.0\.0\.99"/);

    // --- the clone: pg_basebackup -R with the passfile, our standby drop-in, start
    mkdirSync(S.dataDir, { mode: 0o700 });
    chownSync(S.dataDir, uid, gid);
    ok(basebackupScript(S, primaryConninfo(P, '127.0.0.1', p1, 'ha_127_0_0_1', join(dir, 'ca.crt')), 'ha_127_0_0_1', true), 'pg_basebackup');
    const auto = readFileSync(`${S.dataDir}/postgresql.auto.conf`, 'utf8');
    assert.ok(existsSync(`${S.dataDir}/standby.signal`));
    assert.match(auto, /passfile=/);
    assert.doesNotMatch(auto, /password=/, 'no password in postgresql.auto.conf');
    assert.equal(parseConf(auto).get('primary_slot_name'), 'ha_127_0_0_1');
    const standbyFacts = { ...pg, running: false, settings: {} } as PgFacts;
    writeFileSync(`${S.dropInDir}/ha-setup.conf`, standbyDropIn(ctxOf('db_standby'), standbyFacts, peer).content);
    writeFileSync(`${S.dropInDir}/zz-test.conf`, `unix_socket_directories = '${dir}'\nport = ${p2}\n`);
    ok(`chown -R postgres:postgres ${S.dataDir}`, 'chown');
    ok(as(`${BIN}/pg_ctl -D ${S.dataDir} -l ${dir}/standby.log -w start >/dev/null`), 'start the standby');
    started.push(S.dataDir);
    let sf: PgFacts = facts(S, p2);
    for (let i = 0; i < 50 && sf.walReceiver?.status !== 'streaming'; i++) {
      await new Promise((r) => setTimeout(r, 200));
      sf = facts(S, p2);
    }
    assert.equal(sf.inRecovery, true);
    assert.equal(sf.walReceiver?.status, 'streaming');
    assert.equal(sf.walReceiver?.senderHost, '127.0.0.1');
    assert.equal(sf.systemIdentifier, pg.systemIdentifier);

    // --- the steps' verify(): run through an ExecContext whose commands run here
    const exec = (alias: string, port: number): ExecContext => ({
      ...ctxOf(alias),
      transport: undefined as never,
      run: async (_title, script, o) => {
        const r = bash(local(script).replaceAll(`-p ${p1}`, `-p ${port}`).replaceAll('/etc/ha-setup/pg-tls', dir));
        if ((o?.check ?? true) && r.code !== 0) throw new Error(r.stderr);
        return { ...r, durationMs: 0 };
      },
      write: async () => undefined,
      log: () => undefined,
    });

    // --- pg-verify: the plans are empty once both servers are ready; the guides' acceptance
    // test runs in verify(), in the runner's order (create, seen, drop, read-only, streaming).
    const primaryFacts = { pg: facts(P, p1) };
    for (const [id, alias, f] of [
      ['pg-verify.create', 'db_primary', primaryFacts],
      ['pg-verify.seen', 'db_standby', { pg: sf }],
      ['pg-verify.drop', 'db_primary', primaryFacts],
      ['pg-verify.read-only', 'db_standby', { pg: sf }],
      ['pg-verify.streaming', 'db_primary', primaryFacts],
      ['pg-verify.tls', 'db_standby', { pg: sf }],
    ] as const) {
      const p = plan(id, alias, f);
      assert.deepEqual(p.actions, [], `${id}: nothing to change`);
      assert.match(p.reason ?? '', /^acceptance test, checked after this plan on every apply/);
    }
    assert.equal(await stepOf('pg-verify.create').verify!(exec('db_primary', p1)), 'created ha_setup_replication_test on db_primary');
    assert.match(String(await stepOf('pg-verify.seen').verify!(exec('db_standby', p2))), /^ha_setup_replication_test appeared on db_standby after [\d.]+ s$/);
    assert.equal(await stepOf('pg-verify.drop').verify!(exec('db_primary', p1)), 'dropped ha_setup_replication_test on db_primary');
    assert.match(String(await stepOf('pg-verify.read-only').verify!(exec('db_standby', p2))), /^CREATE TABLE refused on db_standby: cannot execute CREATE TABLE in a read-only transaction$/);
    assert.match(String(await stepOf('pg-verify.streaming').verify!(exec('db_primary', p1))), /^pg_stat_replication: ha_127_0_0_1 127\.0\.0\.1 streaming async lag \d+ bytes [\d.]+ s$/);
    assert.equal(await stepOf('pg-verify.tls').verify!(exec('db_standby', p1)), 'db_primary (127.0.0.1) accepts verify-full TLS under the name 127.0.0.100');
    // The test table is gone from both servers afterwards.
    for (const port of [p1, p2]) {
      assert.equal(ok(as(`${BIN}/psql -X -At -h ${dir} -p ${port} -d postgres -c "select to_regclass('public.ha_setup_replication_test') is null"`), 'table gone').trim(), 't');
    }
    // Pointed at a writable server, the read-only check fails, naming why.
    await assert.rejects(stepOf('pg-verify.read-only').verify!(exec('db_standby', p1)), /CREATE TABLE succeeded on the standby: it is not read-only/);

    assert.match(String(await stepOf('pg-primary.settings').verify!(exec('db_primary', p1))), /settings in effect from ha-setup\.conf/);
    assert.equal(await stepOf('pg-standby.clone').verify!(exec('db_standby', p2)), 'streaming from db_primary (127.0.0.1)');
    assert.equal(
      await (pgSslRunbook.steps.find((x) => x.id === 'pg-ssl.enable')!).verify!(exec('db_primary', p1)),
      `certificate chain verifies; the CA file for clients (sslrootcert, sslmode=verify-full) is /etc/ha-setup/pg-tls/ca.crt on each DB node, SHA-256 fingerprint ${new X509Certificate(clusterCa(secret('postgres.tls-ca-seed').reveal(), 'local').certPem).fingerprint256}`,
    );
    // An override read after ha-setup.conf is caught by verify().
    writeFileSync(`${P.dropInDir}/zz-test.conf`, `${readFileSync(`${P.dropInDir}/zz-test.conf`, 'utf8')}wal_keep_size = '64MB'\n`);
    ok(as(`${BIN}/pg_ctl -D ${P.dataDir} reload >/dev/null`), 'reload');
    await new Promise((r) => setTimeout(r, 300));
    await assert.rejects(stepOf('pg-primary.settings').verify!(exec('db_primary', p1)), /overridden by a file read after it: wal_keep_size=64 from .*zz-test\.conf/);
  } finally {
    for (const d of started.reverse()) bash(as(`${BIN}/pg_ctl -D ${d} -m fast -w stop >/dev/null 2>&1`));
    rmSync(dir, { recursive: true, force: true });
  }
});
