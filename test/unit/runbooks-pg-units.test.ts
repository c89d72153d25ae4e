/**
 * The pure pieces of the PostgreSQL runbooks: options, version-aware settings, the pg_hba block,
 * SCRAM comparison, naming and quoting helpers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { ALLOW_DATA_WIPE, dataWipeOverride, pgOptions, withDataWipeOverride } from '../../runbooks/lib/options.js';
import {
  compareLive,
  dropInPlan,
  isRecoveryConfParamValid,
  isSettingValid,
  KNOWN_SETTINGS,
  listenAddresses,
  parseConf,
  renderConf,
  replicationSettings,
  sslSettings,
  type LiveSetting,
} from '../../runbooks/lib/pg-settings.js';
import { perFamily, pgLayout, renderAsset, slotName } from '../../runbooks/lib/pg-layout.js';
import { BEGIN, END, hbaLines, passwordProblem, publicMayConnect, richRuleKey, scramKeysMd5, withManagedBlock } from '../../runbooks/pg-users.js';
import { pgpassField } from '../../runbooks/pg-standby.js';
import { readOnlyScript, streamingSql, tlsCheckScript } from '../../runbooks/pg-verify.js';
import { createHostContext, tableOf } from '../../source/engine/context.js';
import { Secret } from '../../source/engine/shell.js';

test('options.postgres: defaults, one-line errors naming the field', () => {
  const o = pgOptions({});
  assert.deepEqual(
    { version: o.version, appUser: o.appUser, appDb: o.appDb, replication: o.replication, port: o.port, updatePackages: o.updatePackages, listen: o.listen, archiveDir: o.archiveDir },
    { version: 15, appUser: 'lunadirector', appDb: 'lunadirectordb', replication: 'async', port: 5432, updatePackages: false, listen: 'all', archiveDir: undefined },
  );
  assert.equal(pgOptions({ postgres: { version: '16' } }).version, 16);
  const err = (postgres: unknown): string => {
    try {
      pgOptions({ postgres });
    } catch (e) {
      const m = (e as Error).message;
      assert.ok(!m.includes('\n'), m);
      return m;
    }
    return 'no error';
  };
  assert.match(err({ version: 9 }), /^options\.postgres\.version: .*10.*\(got 9\)$/);
  assert.match(err({ version: 18 }), /^options\.postgres\.version: /);
  assert.match(err({ appUser: 'Luna-Director' }), /^options\.postgres\.appUser: use lowercase letters/);
  assert.match(err({ appUser: 'replicator' }), /^options\.postgres\.appUser: is a role ha-setup manages itself/);
  assert.match(err({ appDb: 'template1' }), /^options\.postgres\.appDb: is a system database/);
  assert.match(err({ replication: 'semi' }), /^options\.postgres\.replication: /);
  assert.match(err({ archiveDir: '/tmp/wal' }), /^options\.postgres\.archiveDir: must not be under \/tmp/);
  assert.match(err({ archiveDir: 'wal' }), /^options\.postgres\.archiveDir: must be an absolute, normalised path/);
  assert.match(err({ archiveDir: "/srv/w'al" }), /^options\.postgres\.archiveDir: use only letters/);
  assert.match(err({ vesion: 15 }), /^options\.postgres: unknown setting "vesion"; known: version, appUser/);
  assert.match(err('15'), /^options\.postgres: must be a mapping/);
});

test('the data-wipe override never comes from the config, only from the CLI symbol', () => {
  assert.throws(() => pgOptions({ postgres: { allowDataWipe: 'db2' } }), /^Error: options\.postgres\.allowDataWipe: cannot be set in the config; pass --allow-data-wipe <host name> on the command line/);
  assert.equal(dataWipeOverride({ allowDataWipe: 'db2' }), undefined, 'a string key (as YAML or JSON would give) is ignored');
  const opts = withDataWipeOverride({ postgres: { version: 15 } }, ' db2 ');
  assert.equal(dataWipeOverride(opts), 'db2');
  assert.equal((opts as Record<symbol, unknown>)[ALLOW_DATA_WIPE], ' db2 ');
  assert.equal(JSON.stringify(opts), '{"postgres":{"version":15}}', 'not serialised into checkpoints or saved configs');
});

test('settings known per version: removals and additions 10..17', () => {
  const cases: [string, number[], number[]][] = [
    ['checkpoint_segments', [], [10, 12, 17]],
    ['wal_keep_segments', [10, 11, 12], [13, 17]],
    ['wal_keep_size', [13, 14, 17], [10, 12]],
    ['max_slot_wal_keep_size', [13, 17], [12]],
    ['promote_trigger_file', [12, 15], [11, 16, 17]],
    ['stats_temp_directory', [10, 14], [15, 16]],
    ['ssl_min_protocol_version', [12, 17], [10, 11]],
    ['standby_mode', [], [10, 11, 12, 17]],
    ['trigger_file', [], [10, 17]],
    ['vacuum_defer_cleanup_age', [15], [16]],
    ['old_snapshot_threshold', [16], [17]],
    ['no_such_setting', [], [15]],
  ];
  for (const [name, yes, no] of cases) {
    for (const v of yes) assert.equal(isSettingValid(name, v), true, `${name} on ${v}`);
    for (const v of no) assert.equal(isSettingValid(name, v), false, `${name} on ${v}`);
  }
  assert.equal(isRecoveryConfParamValid('standby_mode', 11), true);
  assert.equal(isRecoveryConfParamValid('standby_mode', 12), false);
  assert.equal(isRecoveryConfParamValid('primary_slot_name', 10), true);
});

test('replication settings for every version 10..17: only names the version accepts, WAL retention by version', () => {
  for (let v = 10; v <= 17; v++) {
    for (const archiveDir of [undefined, '/srv/wal']) {
      const o = pgOptions({ postgres: { version: v, archiveDir, replication: v % 2 ? 'sync' : 'async' } });
      const s = replicationSettings({ version: v, options: o, listen: '*', minimums: { max_connections: 300 } });
      const names = s.map((x) => x.name);
      for (const n of names) assert.ok(isSettingValid(n, v), `${n} on ${v}`);
      assert.equal(names.includes('wal_keep_size'), v >= 13);
      assert.equal(names.includes('wal_keep_segments'), v < 13);
      assert.equal(names.includes('max_slot_wal_keep_size'), v >= 13);
      assert.ok(names.includes('wal_log_hints') && names.includes('password_encryption'));
      const text = renderConf([], s);
      assert.equal(parseConf(text).get('archive_mode'), archiveDir ? 'on' : 'off');
      assert.ok(!text.includes('/tmp'), 'no archive into /tmp');
      assert.equal(parseConf(text).get('max_connections'), '300');
      for (const n of sslSettings(v, { cert: '/c', key: '/k' }).map((x) => x.name)) assert.ok(isSettingValid(n, v), `${n} on ${v}`);
    }
  }
  const seg = replicationSettings({ version: 12, options: pgOptions({ postgres: { version: 12, walKeepSizeMb: 1000 } }), listen: '*' });
  assert.equal(seg.find((x) => x.name === 'wal_keep_segments')?.value, '63', '1000 MB = 63 segments of 16 MB, rounded up');
});

test('conf text round-trips through parseConf (quotes, units, comments)', () => {
  const s = replicationSettings({ version: 15, options: pgOptions({ postgres: { archiveDir: '/srv/wal' } }), listen: 'localhost,198.18.0.11' });
  const parsed = parseConf(renderConf(['header'], s));
  for (const x of s) assert.equal(parsed.get(x.name), x.text.startsWith("'") ? x.value : x.text, x.name);
  assert.equal(parsed.get('archive_command'), 'test ! -f /srv/wal/%f && cp %p /srv/wal/%f');
  assert.equal(parseConf("# listen_addresses = 'x'\nport=5433 # comment\n").get('port'), '5433');
  assert.equal(parseConf("# listen_addresses = 'x'\n").has('listen_addresses'), false);
});

test('listen_addresses: * by default, or the node, the VIP and localhost', () => {
  assert.equal(listenAddresses('all', '198.18.0.11', '198.18.0.100'), '*');
  assert.equal(listenAddresses('explicit', '198.18.0.11', '198.18.0.100'), 'localhost,198.18.0.11,198.18.0.100');
  assert.equal(listenAddresses('explicit', '198.18.0.11', undefined), 'localhost,198.18.0.11');
});

const live = (setting: string, context: string, extra: Partial<LiveSetting> = {}): LiveSetting => ({ setting, unit: '', context, pendingRestart: false, sourcefile: '', ...extra });

test('restart only when a restart-requiring setting changes (or one is pending); reload otherwise', () => {
  const wanted = replicationSettings({ version: 15, options: pgOptions({}), listen: '*' });
  const allLive = Object.fromEntries(wanted.map((w) => [w.name, live(w.value, KNOWN_SETTINGS[w.name]!.context)]));
  assert.deepEqual(compareLive(wanted, allLive), { differ: [], pending: [], restart: false });
  const sighup = compareLive(wanted, { ...allLive, wal_keep_size: live('512', 'sighup') });
  assert.deepEqual([sighup.differ.map((d) => d.name), sighup.restart], [['wal_keep_size'], false]);
  const post = compareLive(wanted, { ...allLive, wal_level: live('minimal', 'postmaster') });
  assert.equal(post.restart, true);
  const pending = compareLive(wanted, { ...allLive, shared_buffers: live('16384', 'postmaster', { pendingRestart: true }) });
  assert.deepEqual([pending.differ.length, pending.pending, pending.restart], [0, ['shared_buffers'], true]);

  const base = { alias: 'db_primary', path: '/etc/postgresql/15/main/conf.d/ha-setup.conf', content: 'x', wanted, unit: 'postgresql@15-main', autoConf: '/var/lib/postgresql/15/main/postgresql.auto.conf' };
  assert.deepEqual(dropInPlan({ ...base, previous: 'x', running: true, live: allLive }).actions, []);
  assert.deepEqual(dropInPlan({ ...base, previous: 'old', running: true, live: allLive }).actions.map((a) => a.title), [
    'write /etc/postgresql/15/main/conf.d/ha-setup.conf',
    'reload postgresql@15-main',
  ]);
  assert.deepEqual(dropInPlan({ ...base, previous: null, running: false, live: {} }).actions.map((a) => a.title), ['write /etc/postgresql/15/main/conf.d/ha-setup.conf', 'start postgresql@15-main']);
  assert.throws(
    () => dropInPlan({ ...base, previous: 'x', running: true, live: { ...allLive, port: live('5433', 'postmaster', { sourcefile: base.autoConf }) } }),
    /^Error: db_primary: port set by ALTER SYSTEM in \/var\/lib\/postgresql\/15\/main\/postgresql.auto.conf override .*ALTER SYSTEM RESET port;/,
  );
});

const HBA = `# TYPE  DATABASE        USER            ADDRESS                 METHOD

# "local" is for Unix domain socket connections only
local   all             all                                     peer
# IPv4 local connections:
host    all             all             127.0.0.1/32            scram-sha-256
host    all             all             0.0.0.0/0               md5
`;

test('pg_hba.conf: the managed block goes before the first host rule (and its comment), is replaced in place, and is idempotent', () => {
  const block = `${BEGIN}\nhostssl replication replicator 198.18.0.12/32 scram-sha-256\n${END}\n`;
  const once = withManagedBlock(HBA, block);
  const lines = once.split('\n');
  const begin = lines.indexOf(BEGIN);
  assert.ok(begin > lines.findIndex((l) => l.startsWith('local   all')), 'after the local rules');
  assert.ok(begin < lines.indexOf('# IPv4 local connections:'), 'before the first host rule and the comment that introduces it');
  assert.ok(lines.indexOf(END) < lines.findIndex((l) => l.startsWith('host ')), 'the block ends before the first host rule');
  assert.equal(withManagedBlock(once, block), once, 'a second run changes nothing');
  const changed = withManagedBlock(once, `${BEGIN}\nhostssl replication replicator 198.18.0.13/32 scram-sha-256\n${END}\n`);
  assert.equal(changed.split(BEGIN).length, 2, 'one block');
  assert.ok(changed.includes('198.18.0.13/32') && !changed.includes('198.18.0.12/32'));
  assert.equal(changed.replace(/# BEGIN ha-setup[\s\S]*# END ha-setup\n/, ''), once.replace(/# BEGIN ha-setup[\s\S]*# END ha-setup\n/, ''), 'nothing outside the block moves');
  assert.equal(withManagedBlock('local all all peer\n', block), `local all all peer\n\n${block}`, 'no host rule: appended');
  assert.throws(() => withManagedBlock(`${BEGIN}\nx\n`, block), /without its pair/);
});

function ctx(servers: Record<string, string>, postgres: Record<string, unknown> = {}) {
  const table = tableOf({ servers });
  return (alias: string) => createHostContext({ host: table.hosts[alias]!, table, options: { postgres, cluster: 't' }, secret: (n) => new Secret(n, `secret-${n}`) });
}

test('pg_hba lines: /32 for IPv4, /128 for IPv6, hostssl + scram-sha-256, the health user on loopback only', () => {
  // Documentation addresses (RFC 3849) in a string: no traffic is sent anywhere.
  const c = ctx({ db_primary: '198.18.0.11', db_standby: '198.18.0.12', app1: '198.18.0.15', app2: '2001:db8::16' })('db_primary');
  const lines = hbaLines(c, { replication: ['198.18.0.12'], app: ['198.18.0.15', '2001:db8::16'] });
  assert.deepEqual(lines, [
    'hostssl replication    replicator        198.18.0.12/32   scram-sha-256',
    'hostssl lunadirectordb lunadirector      198.18.0.15/32   scram-sha-256',
    'hostssl lunadirectordb lunadirector      2001:db8::16/128 scram-sha-256',
    'host    postgres       health_check_user 127.0.0.1/32     scram-sha-256',
    'host    postgres       health_check_user ::1/128          scram-sha-256',
  ]);
  assert.ok(renderAsset('pg_hba-block.tmpl', { lines: lines.join('\n') }).startsWith(`${BEGIN}\n`));
  assert.throws(() => renderAsset('pg_hba-block.tmpl', {}), /needs \{\{lines\}\}/);
  assert.throws(() => renderAsset('pg_hba-block.tmpl', { lines: '', extra: 1 }), /has no \{\{extra\}\}/);
});

/** The SCRAM-SHA-256 verifier as PostgreSQL builds it (RFC 5802/7677), written out independently. */
function verifier(password: string, salt: Buffer, iterations: number): string {
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const stored = createHash('sha256').update(createHmac('sha256', salted).update('Client Key').digest()).digest('base64');
  const server = createHmac('sha256', salted).update('Server Key').digest('base64');
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${stored}:${server}`;
}

test('a role password is set again only when the stored SCRAM verifier is not the secret\'s', () => {
  const salt = Buffer.from('0123456789abcdef');
  const v = verifier('s3cret-Value_x', salt, 4096);
  const keysMd5 = createHash('md5').update(v.split('$')[2]!).digest('hex');
  assert.equal(scramKeysMd5('s3cret-Value_x', salt.toString('base64'), 4096), keysMd5);
  const role = { name: 'replicator', login: true, replication: true, superuser: false, createdb: false, createrole: false };
  assert.equal(passwordProblem({ ...role, password: { kind: 'scram', iterations: 4096, salt: salt.toString('base64'), keysMd5 } }, 's3cret-Value_x'), null);
  assert.equal(passwordProblem({ ...role, password: { kind: 'scram', iterations: 4096, salt: salt.toString('base64'), keysMd5 } }, 'another'), 'differs from the stored secret');
  assert.match(passwordProblem({ ...role, password: { kind: 'md5' } }, 'x')!, /md5/);
  assert.equal(passwordProblem({ ...role, password: { kind: 'none' } }, 'x'), 'no password');
});

test('small helpers: PUBLIC CONNECT in an ACL, rich rule keys, .pgpass escaping, slot names, layouts', () => {
  assert.equal(publicMayConnect(null), true);
  assert.equal(publicMayConnect('{=Tc/postgres,postgres=CTc/postgres}'), true);
  assert.equal(publicMayConnect('{=T/luna,luna=CTc/luna}'), false);
  assert.equal(
    richRuleKey('rule family="ipv4" source address="198.18.0.12/32" port port="5432" protocol="tcp" accept'),
    richRuleKey('rule family="ipv4" source address="198.18.0.12" port protocol="tcp" port="5432" accept'),
  );
  assert.notEqual(richRuleKey('rule family="ipv4" source address="198.18.0.12" port port="5432" protocol="tcp" accept'), richRuleKey('rule family="ipv4" source address="198.18.0.12" port port="5432" protocol="tcp" reject'));
  assert.equal(pgpassField('2001:db8::1'), '2001\\:db8\\:\\:1');
  assert.equal(pgpassField('a\\b'), 'a\\\\b');
  assert.equal(slotName('198.18.0.12'), 'ha_198_18_0_12');
  assert.equal(slotName('DB-2.example.net'), 'ha_db_2_example_net');
  assert.ok(slotName('x'.repeat(80)).length <= 63);
  const d = pgLayout('debian', 15);
  assert.deepEqual([d.dataDir, d.confFile, d.dropInDir, d.unit, d.binDir], ['/var/lib/postgresql/15/main', '/etc/postgresql/15/main/postgresql.conf', '/etc/postgresql/15/main/conf.d', 'postgresql@15-main', '/usr/lib/postgresql/15/bin']);
  const r = pgLayout('rhel', 16);
  assert.deepEqual([r.dataDir, r.confFile, r.dropInDir, r.unit, r.binDir, r.setupCommand], ['/var/lib/pgsql/16/data', '/var/lib/pgsql/16/data/postgresql.conf', '/var/lib/pgsql/16/data/conf.d', 'postgresql-16', '/usr/pgsql-16/bin', '/usr/pgsql-16/bin/postgresql-16-setup']);
});

test("pg-verify's checks: the standby found by address and application_name; verify-full under the VIP name, host names resolved on the node", () => {
  const byIp = streamingSql(['198.18.0.12'], 'ha_198_18_0_12');
  assert.match(byIp, /from pg_stat_replication where state = 'streaming' and \(application_name = 'ha_198_18_0_12' or host\(client_addr\) in \('198\.18\.0\.12'\)\);$/);
  // A host name in the table: the application_name ha-setup gave the standby's connection.
  assert.match(streamingSql([], 'ha_db2_example_com'), /and \(application_name = 'ha_db2_example_com'\);$/);
  const d = pgLayout('debian', 15);
  const ip = tlsCheckScript(d, '198.18.0.100', '198.18.0.11', 5432);
  assert.equal(
    ip,
    "peer_ip=198.18.0.11\n(cd / && runuser -u postgres -- /usr/lib/postgresql/15/bin/psql -X -At -w -d 'host=198.18.0.100 hostaddr='\"$peer_ip\"' port=5432 user=replicator dbname=replication replication=true passfile=/var/lib/postgresql/.pgpass-ha-setup sslmode=verify-full sslrootcert=/etc/ha-setup/pg-tls/ca.crt connect_timeout=5' -c IDENTIFY_SYSTEM)",
  );
  assert.match(tlsCheckScript(d, 'db-vip.example.com', 'db1.example.com', 5432), /^peer_ip=\$\(getent ahosts db1\.example\.com \|/);
  assert.throws(() => tlsCheckScript(d, "x' y", '198.18.0.11', 5432), /neither an IP address nor a host name/);
  // verify() picks the family on the host: both branches (heredocs inside if/else) are valid bash.
  for (const v of [10, 16]) {
    for (const script of [perFamily(v, (l) => readOnlyScript(l, v, 5432)), perFamily(v, (l) => tlsCheckScript(l, 'db-vip.example.com', 'db1.example.com', 5432))]) {
      assert.match(script, /^if \[ -r \/etc\/debian_version \]; then\n[\s\S]*\/usr\/lib\/postgresql\/[\s\S]*\nelse\n[\s\S]*\/usr\/pgsql-[\s\S]*\nfi$/);
      const r = spawnSync('bash', ['-n'], { input: `set -euo pipefail\n${script}`, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    }
  }
});
