/**
 * The PostgreSQL runbooks (issue 4) proven on real servers: a 4-host lab where this test's own
 * server table makes 198.18.0.11 db_primary, .12 db_standby, .100 the DB VIP and .13 app1;
 * .14 is an outsider that is in no table. `ha-setup apply --config <table> --yes` runs the
 * real CLI (its own HA_SETUP_HOME), and every assertion is on the servers, read over OpenSSH
 * or with psql over the network as the app, never from the tool's own report:
 *
 * 1. a dry run on the fresh servers changes nothing; apply succeeds without --allow-data-wipe on DB hosts whose ufw is active (default deny);
 *    from app1 the app user reaches both nodes with sslmode=verify-full, host = the DB VIP and
 *    hostaddr = the node, its password from the jump host's secrets file (0600) in a 0600
 *    PGPASSFILE, the CA from /etc/ha-setup/pg-tls/ca.crt on a DB node; the guides' acceptance
 *    test through that path; pg_stat_replication shows the standby streaming.
 * 2. a second apply changes nothing: every plan empty with a reason, 0 changed, no file, rule
 *    or postmaster touched, and the acceptance test still ran (in verify()).
 * 3. the firewall: app1 reaches 5432, the outsider does not (dropped by ufw; its port 22 is
 *    open), a host taken out of the table loses its access and gets it back.
 * 4. the table's roles swapped: apply stops and says why, also with --allow-data-wipe typed
 *    for the primary's host name; the primary's data, identity and uptime are intact.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { useLab, type Lab, writeLabTable } from '../helpers/lab.js';
import { appClient, pgLocal, tcpProbe, type AppClient } from '../helpers/pg.js';
import { waitFor } from '../../source/lab/exec.js';

const fixture = useLab({ hosts: 4 });

const PRIMARY = '198.18.0.11';
const STANDBY = '198.18.0.12';
const APP1 = '198.18.0.13';
const OUTSIDER = '198.18.0.14';
const VIP = '198.18.0.100';
const CLUSTER = 'pglab';
const UNIT = 'postgresql@15-main';
const CA_ON_NODES = '/etc/ha-setup/pg-tls/ca.crt';
const READ_ONLY = 'cannot execute CREATE TABLE in a read-only transaction';

/** What the tests share, in file order (one lab, one ha-setup home for the file). */
const state: { home?: string; table?: string; app?: AppClient; applied?: boolean } = {};

/** This test's server table (partial), written next to the ha-setup home. */
function writeTable(lab: Lab, name: string, servers: Record<string, string>): string {
  return writeLabTable(lab, join(state.home!, name), { cluster: CLUSTER, servers, network: true, options: { postgres: { version: 15 } } });
}

const SERVERS = { db_primary: PRIMARY, db_standby: STANDBY, db_vip: VIP, app1: APP1 };

function setup(t: TestContext): Lab | undefined {
  const lab = fixture.get(t);
  if (!lab) return undefined;
  if (!state.home) {
    state.home = mkdtempSync(join(tmpdir(), 'ha-pg-home-'));
    lab.env.HA_SETUP_HOME = state.home;
    state.table = writeTable(lab, 'pglab.yaml', SERVERS);
  }
  return lab;
}

const apply = (lab: Lab, table: string, ...extra: string[]) => lab.cli(['apply', '--config', table, '--yes', ...extra]);
const out = (r: { stdout: string; stderr: string }): string => `${r.stdout}\n${r.stderr}`;

test('apply on two DB hosts behind ufw: the app connects to either node with verify-full under the VIP name; the guides\' test passes through the network', async (t) => {
  const lab = setup(t);
  if (!lab) return;

  // ufw from the lab's offline repository, SSH allowed first, default deny for the rest.
  const ufw = [
    'set -e',
    'export DEBIAN_FRONTEND=noninteractive',
    'apt-get update -qq',
    'apt-get install -y -qq ufw >/dev/null 2>&1',
    'ufw allow 22/tcp >/dev/null',
    'ufw --force enable >/dev/null',
    'ufw status verbose',
  ].join('\n');
  for (const status of await Promise.all([PRIMARY, STANDBY].map((h) => lab.sh(h, ufw, { timeoutMs: 180_000 })))) {
    assert.match(status, /^Status: active$/m);
    assert.match(status, /^Default: deny \(incoming\)/m);
  }

  // A dry run on the fresh servers plans everything and changes nothing.
  const dry = await lab.cli(['plan', '--config', state.table!]);
  assert.equal(dry.code, 0, out(dry));
  assert.match(dry.stdout, /Plan: \d+ host steps to change, \d+ already done, in [\d.]+s\. Nothing was changed\./);
  for (const h of [PRIMARY, STANDBY]) {
    assert.equal((await lab.ssh(h, `systemctl is-active ${UNIT}`)).stdout.trim(), 'inactive', `${h}: plan started nothing`);
    assert.equal((await lab.ssh(h, 'test -e /etc/ha-setup')).code, 1, `${h}: plan wrote nothing`);
  }

  const r = await apply(lab, state.table!);
  t.diagnostic(`first apply: ${(r.ms / 1000).toFixed(1)} s`);
  assert.equal(r.code, 0, out(r));
  assert.match(r.stdout, /Done in [\d.]+s: \d+ host steps changed/);
  // The run says where clients get the CA file.
  assert.ok(r.stdout.includes(`the CA file for clients (sslrootcert, sslmode=verify-full) is ${CA_ON_NODES} on each DB node`), r.stdout);

  // The app's password: from the jump host's secrets file, which only its owner may read.
  const secretsFile = join(state.home!, 'clusters', CLUSTER, 'secrets.json');
  assert.equal(statSync(secretsFile).mode & 0o777, 0o600);
  const secrets = (JSON.parse(readFileSync(secretsFile, 'utf8')) as { secrets: Record<string, string> }).secrets;
  const password = secrets['postgres.app'];
  assert.ok(password && password.length >= 24, 'a generated app password');
  assert.ok(!r.stdout.includes(password) && !r.stderr.includes(password), 'the password is never printed');

  // The CA file, as an admin fetches it from a DB node (the same on both).
  const [caPem, caPem2] = await Promise.all([PRIMARY, STANDBY].map((h) => lab.sh(h, `cat ${CA_ON_NODES}`)));
  assert.match(caPem!, /^-----BEGIN CERTIFICATE-----/);
  assert.equal(caPem2, caPem);
  for (const h of [PRIMARY, STANDBY]) {
    assert.equal((await lab.sh(h, 'stat -c "%a %U:%G" /etc/ha-setup/pg-tls/server.key')).trim(), '600 postgres:postgres');
    assert.match(await lab.sh(h, 'openssl x509 -noout -ext subjectAltName -in /etc/ha-setup/pg-tls/server.crt'), new RegExp(`IP Address:${VIP.replace(/\./g, '\\.')}\\b.*IP Address:${h.replace(/\./g, '\\.')}\\b`, 's'));
  }

  const app = await appClient(lab, APP1, { user: 'lunadirector', db: 'lunadirectordb', password, caPem: caPem!, name: VIP });
  state.app = app;
  const whoami = "select inet_server_addr(), pg_is_in_recovery(), (select ssl from pg_stat_ssl where pid = pg_backend_pid()), current_user, current_database();";
  assert.equal(await app.query(PRIMARY, whoami), `${PRIMARY}|f|t|lunadirector|lunadirectordb`);
  assert.equal(await app.query(STANDBY, whoami), `${STANDBY}|t|t|lunadirector|lunadirectordb`);
  // verify-full really checks the name: another name is refused on the same node.
  const wrongName = await app.psql(PRIMARY, 'select 1;', { name: '198.18.0.99' });
  assert.notEqual(wrongName.code, 0);
  assert.match(wrongName.stderr, /server certificate for "198\.18\.0\.100" .*does not match host name "198\.18\.0\.99"/);

  // The guides' acceptance test, as the app, over the network.
  const present = "select to_regclass('public.lab_accept') is not null;";
  await app.query(PRIMARY, "CREATE TABLE lab_accept (name char(10));\nINSERT INTO lab_accept VALUES ('lab');");
  assert.ok(await waitFor(async () => (await app.query(STANDBY, present)) === 't', 10_000, 200), 'the table appears on the standby');
  assert.equal(await app.query(STANDBY, 'select name from lab_accept;'), 'lab');
  await app.query(PRIMARY, 'DROP TABLE lab_accept;');
  assert.ok(await waitFor(async () => (await app.query(STANDBY, present)) === 'f', 10_000, 200), 'the drop reaches the standby');
  const refused = await app.psql(STANDBY, 'CREATE TABLE lab_accept (name char(10));');
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, new RegExp(`ERROR:\\s+${READ_ONLY}`));

  // pg_stat_replication on the primary: the standby streams through its slot.
  assert.equal(
    await pgLocal(lab, PRIMARY, 'select host(client_addr), state, sync_state, application_name from pg_stat_replication;'),
    `${STANDBY}|streaming|async|ha_198_18_0_12\n`,
  );
  assert.equal(await pgLocal(lab, PRIMARY, 'select slot_name, active from pg_replication_slots;'), 'ha_198_18_0_12|t\n');
  const ids = await Promise.all([PRIMARY, STANDBY].map((h) => pgLocal(lab, h, 'select system_identifier from pg_control_system();')));
  assert.equal(ids[1], ids[0], 'the standby is a clone of the primary');
  state.applied = true;
});

/** What a second apply must not touch: files, firewall rules, the running servers. */
async function serverState(lab: Lab, host: string): Promise<string> {
  const files = [
    '/etc/postgresql/15/main/conf.d/ha-setup.conf',
    '/etc/postgresql/15/main/conf.d/ha-setup-ssl.conf',
    '/etc/postgresql/15/main/pg_hba.conf',
    '/etc/postgresql/15/main/postgresql.conf',
    '/etc/ha-setup/pg-tls/server.key',
    '/etc/ha-setup/pg-tls/server.crt',
    '/etc/ha-setup/pg-tls/ca.crt',
    '/var/lib/postgresql/.pgpass-ha-setup',
    '/etc/ufw/user.rules',
    '/etc/ha-setup/cluster.json',
  ];
  const stat = await lab.sh(host, `stat -c '%n %Y %a %U' ${files.join(' ')}; md5sum ${files.join(' ')}`);
  const pg = await pgLocal(lab, host, 'select pg_postmaster_start_time(), pg_is_in_recovery(), pg_conf_load_time();');
  return `${stat}${pg}`;
}

test('a second apply changes nothing: every plan empty with a reason, 0 changed, fast; the acceptance test still runs', async (t) => {
  const lab = setup(t);
  if (!lab) return;
  assert.ok(state.applied, 'needs the first apply');
  const before = await Promise.all([PRIMARY, STANDBY].map((h) => serverState(lab, h)));

  const plan = await lab.cli(['plan', '--config', state.table!, '--json']);
  assert.equal(plan.code, 0, plan.stderr);
  const data = JSON.parse(plan.stdout) as { hosts: Record<string, { steps: { id: string; status: string; reason?: string; actions: unknown[] }[] }> };
  assert.deepEqual(Object.keys(data.hosts).sort(), ['app1', 'db_primary', 'db_standby']);
  let steps = 0;
  for (const [host, h] of Object.entries(data.hosts)) {
    for (const s of h.steps) {
      steps++;
      assert.equal(s.status, 'skip', `${host} ${s.id}: ${JSON.stringify(s.actions)}`);
      assert.ok(s.reason?.trim(), `${host} ${s.id}: an empty plan says why`);
    }
  }
  assert.ok(data.hosts.db_primary!.steps.some((s) => s.id === 'pg-verify.create' && /^acceptance test, checked after this plan on every apply/.test(s.reason!)));

  const r = await apply(lab, state.table!);
  t.diagnostic(`second apply: ${(r.ms / 1000).toFixed(1)} s (plan --json: ${(plan.ms / 1000).toFixed(1)} s, ${steps} host steps)`);
  assert.equal(r.code, 0, out(r));
  assert.match(r.stdout, new RegExp(`Done in [\\d.]+s: 0 host steps changed, ${steps} unchanged\\.`));
  assert.doesNotMatch(r.stdout, /changed in|wrote /);
  assert.ok(r.ms < 30_000, `a run with nothing to do took ${r.ms} ms`);
  // The guides' test ran in verify(), on the real servers, without counting as a change.
  assert.match(r.stdout, new RegExp(`\\[db_standby\\] – pg-verify\\.read-only: .*\\(verified \\(checkpoint\\); CREATE TABLE refused on db_standby: ${READ_ONLY}\\)`));
  assert.match(r.stdout, /\[db_primary\] – pg-verify\.streaming: .*pg_stat_replication: ha_198_18_0_12 198\.18\.0\.12 streaming async lag \d+ bytes [\d.]+ s\)/);

  const after = await Promise.all([PRIMARY, STANDBY].map((h) => serverState(lab, h)));
  assert.deepEqual(after, before, 'no file, firewall rule or server start time changed');
  assert.equal(await pgLocal(lab, PRIMARY, "select to_regclass('public.ha_setup_replication_test') is null;"), 't\n', 'the test table is gone');
});

test('firewall: app1 reaches 5432 on both nodes, the outsider is dropped; a host taken out of the table loses access', async (t) => {
  const lab = setup(t);
  if (!lab) return;
  assert.ok(state.applied, 'needs the first apply');
  for (const node of [PRIMARY, STANDBY]) {
    assert.equal(await tcpProbe(lab, APP1, node, 5432), 'open', `app1 -> ${node}:5432`);
    assert.equal(await tcpProbe(lab, OUTSIDER, node, 22), 'open', `the outsider reaches ${node} at all (ssh)`);
    // Dropped by ufw before PostgreSQL (or pg_hba.conf) ever sees it: no answer at all.
    assert.equal(await tcpProbe(lab, OUTSIDER, node, 5432), 'timeout', `outsider -> ${node}:5432`);
    const peer = node === PRIMARY ? STANDBY : PRIMARY;
    const rules = await lab.sh(node, 'ufw status');
    const pgRules = rules.split('\n').filter((l) => /^5432\b/.test(l)).map((l) => l.replace(/\s+/g, ' ').trim());
    assert.deepEqual(pgRules.sort(), [`5432/tcp ALLOW ${APP1} # ha-setup-pg`, `5432/tcp ALLOW ${peer} # ha-setup-pg`].sort());
  }

  // app1 leaves the table: its rule (and pg_hba line) go; back in the table, it is let in again.
  const without = writeTable(lab, 'pglab-without-app1.yaml', { db_primary: PRIMARY, db_standby: STANDBY, db_vip: VIP });
  const r1 = await apply(lab, without);
  assert.equal(r1.code, 0, out(r1));
  assert.equal(await tcpProbe(lab, APP1, PRIMARY, 5432), 'timeout', 'app1 is dropped once it left the table');
  assert.equal(await pgLocal(lab, STANDBY, 'select pg_is_in_recovery();'), 't\n');
  const r2 = await apply(lab, state.table!);
  assert.equal(r2.code, 0, out(r2));
  assert.equal(await tcpProbe(lab, APP1, PRIMARY, 5432), 'open');
  assert.equal(await state.app!.query(PRIMARY, 'select current_user;'), 'lunadirector');
});

test('roles swapped in the table: apply stops, says why, and the primary keeps its data, identity and uptime', async (t) => {
  const lab = setup(t);
  if (!lab) return;
  assert.ok(state.applied, 'needs the first apply');
  const app = state.app!;
  await app.query(PRIMARY, "CREATE TABLE keep_me (id int, note text);\nINSERT INTO keep_me VALUES (42, 'written before the swapped run');");
  assert.ok(await waitFor(async () => (await app.psql(STANDBY, 'select id from keep_me;')).stdout.trim() === '42', 10_000, 200), 'replicated');
  const look = 'select pg_is_in_recovery(), system_identifier, pg_postmaster_start_time() from pg_control_system();';
  const before = await Promise.all([PRIMARY, STANDBY].map((h) => pgLocal(lab, h, look)));

  const swapped = writeTable(lab, 'pglab-swapped.yaml', { db_primary: STANDBY, db_standby: PRIMARY, db_vip: VIP, app1: APP1 });
  const r = await apply(lab, swapped);
  assert.notEqual(r.code, 0, out(r));
  assert.match(r.stdout, /\[db_primary\] ✗ pg-primary\.roles-check: db_primary \(198\.18\.0\.12\) is in recovery, i\.e\. a standby: if a failover swapped the roles, swap db_primary and db_standby in the server table/);
  assert.match(
    r.stdout,
    // Either proof that .11 is the live primary stops it: it holds the DB VIP (once keepalived
    // runs), or it runs as a primary holding the app's database.
    /\[db_standby\] ✗ pg-primary\.roles-check: refusing to empty \/var\/lib\/postgresql\/15\/main on db_standby \(198\.18\.0\.11, host name db-primary\): it (runs as a primary \(not in recovery\) and holds user databases lunadirectordb; if the table has the roles swapped|holds the DB VIP 198\.18\.0\.100, so it is the cluster's current primary \(roles swapped\?\))/,
  );
  assert.match(r.stdout, /FAILED after/);

  // Even with the wipe override typed for that host's name, the swap is caught.
  const hostname = lab.host(PRIMARY).name;
  const forced = await apply(lab, swapped, '--allow-data-wipe', hostname);
  assert.notEqual(forced.code, 0, out(forced));
  assert.match(forced.stdout, /\[db_primary\] ✗ pg-primary\.roles-check: db_primary \(198\.18\.0\.12\) is in recovery/);
  // Stopped at the roles check: no later step (keys, users, clone ...) even started.
  assert.doesNotMatch(`${r.stdout}${forced.stdout}`, /▸ pg-(primary\.(include-dir|selinux|settings|slot)|ssl|users|standby|verify)\./);

  // The servers: the primary still runs as the same primary (not restarted), with the row.
  const after = await Promise.all([PRIMARY, STANDBY].map((h) => pgLocal(lab, h, look)));
  assert.deepEqual(after, before);
  assert.match(after[0]!, /^f\|/);
  assert.equal((await lab.sh(PRIMARY, `systemctl is-active ${UNIT}`)).trim(), 'active');
  assert.equal(await pgLocal(lab, PRIMARY, 'select id, note from keep_me;', 'lunadirectordb'), '42|written before the swapped run\n');
  assert.equal((await lab.ssh(PRIMARY, 'test -e /var/lib/postgresql/15/ha-setup-clone-in-progress')).code, 1, 'no clone was started');
  // ... and the standby still streams from it.
  assert.equal(await pgLocal(lab, STANDBY, 'select status, sender_host from pg_stat_wal_receiver;'), `streaming|${PRIMARY}\n`);
  assert.equal(await app.query(STANDBY, 'select id from keep_me;'), '42');
});
