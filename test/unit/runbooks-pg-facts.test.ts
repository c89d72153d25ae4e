/**
 * The PostgreSQL fact parsers, fed the outputs the scripts print (command outputs written as
 * the tools print them, then base64-encoded the way the scripts do), and the decisions taken
 * from them (which firewall is in use, which interface carries an address). The SQL part of the
 * pg fact runs against a real PostgreSQL in runbooks-pg-local.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { ExecResult } from '../../source/transport/types.js';
import {
  adminInputChains,
  firewallFact,
  firewallTool,
  hasIncludeDir,
  holdsAddress,
  holdsData,
  interfaceFor,
  netFact,
  osPrepFact,
  parseControlData,
  parseFirewalldZones,
  parsePeerFacts,
  parsePgFacts,
  parseResolve,
  passfileFact,
  peerPgFact,
  pgFact,
  pgPackagesFact,
  resolveFact,
  selinuxFact,
  senderHost,
  tlsFact,
} from '../../runbooks/lib/pg-facts.js';

const ok: ExecResult = { code: 0, stdout: '', stderr: '', durationMs: 1 };
const b = (s: string): string => Buffer.from(s).toString('base64');

test('every fact script is valid bash (bash -n)', () => {
  const scripts = [
    pgFact(15).script,
    pgFact(10).script,
    peerPgFact({ version: 15, peer: '198.18.0.11', port: 5432 }).script,
    netFact.script,
    firewallFact.script,
    selinuxFact('/srv/wal').script,
    tlsFact.script,
    passfileFact(15).script,
    osPrepFact.script,
    pgPackagesFact(16).script,
    resolveFact(['app1.example.net', '198.18.0.15']).script,
  ];
  for (const s of scripts) {
    const r = spawnSync('bash', ['-n'], { input: `set -euo pipefail\n${s}`, encoding: 'utf8' });
    assert.equal(r.status, 0, `${r.stderr}\n${s}`);
  }
});

test('the read-only fact scripts run on this machine and parse (no PostgreSQL 17 here)', () => {
  for (const def of [netFact, osPrepFact, pgFact(17), tlsFact, passfileFact(17), firewallFact, selinuxFact()]) {
    const r = spawnSync('bash', ['-s'], { input: `set -euo pipefail\n${def.script}`, encoding: 'utf8' });
    assert.equal(r.status, 0, `${def.id}: ${r.stderr}`);
    def.parse(r.stdout, { code: 0, stdout: r.stdout, stderr: r.stderr, durationMs: 1 });
  }
  const pg = pgFact(17);
  const r = spawnSync('bash', ['-s'], { input: `set -euo pipefail\n${pg.script}`, encoding: 'utf8' });
  const f = pg.parse(r.stdout, ok);
  assert.equal(f.family, 'debian');
  assert.equal(f.binaries, false);
  assert.equal(f.dataDirExists, false);
  assert.equal(f.running, false);
  const net = netFact.parse(spawnSync('bash', ['-s'], { input: netFact.script, encoding: 'utf8' }).stdout, ok);
  assert.ok(net.addresses.some((a) => a.address === '127.0.0.1' && a.iface === 'lo' && a.scope === 'host'), JSON.stringify(net.addresses));
});

const CONTROLDATA = `pg_control version number:            1300
Catalog version number:               202209061
Database system identifier:           7301000000000000001
Database cluster state:               shut down in recovery
pg_control last modified:             Sat 01 Nov 2025 10:00:00 AM UTC
`;

test('pg fact: a stopped standby read from pg_controldata and the files', () => {
  const out = [
    'FAMILY=debian',
    'INSTALLED=13 15 ',
    'BINARIES=yes',
    'DATADIR=yes',
    'PG_VERSION=15',
    `CONTROL=${b(CONTROLDATA)}`,
    'STANDBY=yes',
    'BASE_DIRS=4',
    'RUNNING=no',
    'LIVE_PORT=',
    'UNIT_ENABLED=enabled',
    `INCLUDES=${b("include_dir = 'conf.d'\t\t\t# include files ending in '.conf' from\n")}`,
    `HBA=${b('local all postgres peer\n')}`,
    `DROPIN_REPLICATION=${b('wal_level = replica\n')}`,
    'DROPIN_SSL=-',
    'DROPIN_DIR=yes',
    'CLONE_MARKER=-',
  ].join('\n');
  const f = parsePgFacts(out);
  assert.deepEqual(f.installedVersions, [13, 15]);
  assert.equal(f.systemIdentifier, '7301000000000000001');
  assert.equal(f.clusterState, 'shut down in recovery');
  assert.equal(f.standbyConfigured, true);
  assert.equal(f.running, false);
  assert.equal(f.inRecovery, null);
  assert.equal(f.livePort, null);
  assert.equal(f.dataVersion, 15);
  assert.equal(f.hba, 'local all postgres peer\n');
  assert.deepEqual(f.dropIns, { replication: 'wal_level = replica\n', ssl: null });
  assert.equal(hasIncludeDir(f.includes), true);
  // Stopped: the user databases are counted on disk (base/ has 3 directories for template0, template1, postgres).
  assert.equal(holdsData(f), '1 user database(s) on disk');
});

test('pg fact: a running primary, SQL answers as one JSON line each', () => {
  const settings = [
    ['listen_addresses', '*', '', 'postmaster', false, '/etc/postgresql/15/main/conf.d/ha-setup.conf'],
    ['wal_keep_size', '1024', 'MB', 'sighup', false, '/etc/postgresql/15/main/conf.d/ha-setup.conf'],
    ['wal_log_hints', 'off', '', 'postmaster', true, '/etc/postgresql/15/main/conf.d/ha-setup.conf'],
  ];
  const out = [
    'FAMILY=rhel',
    'INSTALLED=16 ',
    'BINARIES=yes',
    'DATADIR=yes',
    'PG_VERSION=16',
    `CONTROL=${b(CONTROLDATA.replace('shut down in recovery', 'in production'))}`,
    'STANDBY=no',
    'BASE_DIRS=5',
    'RUNNING=yes',
    'LIVE_PORT=5432',
    'INCLUDES=',
    'HBA=-',
    'DROPIN_REPLICATION=-',
    'DROPIN_SSL=-',
    'DROPIN_DIR=no',
    `CLONE_MARKER=${b('7301000000000000001\n')}`,
    'SQL_INFO={"in_recovery": false, "version_num": 160004}',
    `SQL_SETTINGS=${JSON.stringify(settings)}`,
    'SQL_SLOTS=[{"name": "ha_198_18_0_12", "type": "physical", "active": true}]',
    'SQL_REPLICATION=[{"application_name": "ha_198_18_0_12", "client_addr": "198.18.0.12", "state": "streaming", "sync_state": "async", "lag_bytes": 0, "lag_seconds": 0.000812}]',
    'SQL_WAL_RECEIVER=[]',
    'SQL_DATABASES=[{"name": "postgres", "owner": "postgres", "acl": null}, {"name": "lunadirectordb", "owner": "lunadirector", "acl": "{=T/lunadirector,lunadirector=CTc/lunadirector}"}]',
    'SQL_ROLES=[{"name": "replicator", "login": true, "replication": true, "superuser": false, "createdb": false, "createrole": false, "password": "scram:4096:c2FsdA==:0123456789abcdef0123456789abcdef"}, {"name": "old", "login": true, "replication": false, "superuser": false, "createdb": false, "createrole": false, "password": "md5"}]',
    'SQL_USER_TABLES=0',
    'SQL_PUBLIC_CREATE=false',
  ].join('\n');
  const f = parsePgFacts(out);
  assert.equal(f.family, 'rhel');
  assert.equal(f.running, true);
  assert.equal(f.inRecovery, false);
  assert.equal(f.serverVersionNum, 160004);
  assert.equal(f.livePort, 5432);
  assert.equal(f.hba, null);
  assert.equal(hasIncludeDir(f.includes), false);
  assert.equal(f.cloneMarker, '7301000000000000001');
  assert.deepEqual(f.settings.wal_keep_size, { setting: '1024', unit: 'MB', context: 'sighup', pendingRestart: false, sourcefile: '/etc/postgresql/15/main/conf.d/ha-setup.conf' });
  assert.equal(f.settings.wal_log_hints?.pendingRestart, true);
  assert.deepEqual(f.slots, [{ name: 'ha_198_18_0_12', type: 'physical', active: true }]);
  assert.deepEqual(f.replication[0], { applicationName: 'ha_198_18_0_12', clientAddr: '198.18.0.12', state: 'streaming', syncState: 'async', lagBytes: 0, lagSeconds: 0.000812 });
  assert.equal(f.walReceiver, null);
  assert.deepEqual(f.roles[0]!.password, { kind: 'scram', iterations: 4096, salt: 'c2FsdA==', keysMd5: '0123456789abcdef0123456789abcdef' });
  assert.deepEqual(f.roles[1]!.password, { kind: 'md5' });
  assert.equal(holdsData(f), 'user databases lunadirectordb');
  assert.equal(f.publicCreateInPostgresDb, false);
});

test('pg_controldata without the lines, conninfo host, include_dir forms', () => {
  assert.deepEqual(parseControlData(null), { systemIdentifier: null, clusterState: null });
  assert.equal(senderHost("user=replicator passfile=/x host=198.18.0.11 port=5432 sslmode=verify-full"), '198.18.0.11');
  assert.equal(senderHost("host='db1.example' port=5432"), 'db1.example');
  assert.equal(senderHost('port=5432'), null);
  assert.equal(hasIncludeDir(["include_dir = 'conf.d'"]), true);
  assert.equal(hasIncludeDir(["include_dir 'conf.d'  # comment"]), true);
  assert.equal(hasIncludeDir(["include_dir = 'conf.d.old'"]), false);
  assert.equal(hasIncludeDir(["include = 'conf.d/x.conf'"]), false);
});

test('peer fact: IDENTIFY_SYSTEM and SHOW answers; errors keep the reason', () => {
  const answer = ['7301000000000000001|1|0/3000148|', '100', '8', '10', '0', '64', '150008'].join('\n');
  const p = parsePeerFacts(`PEER_OUT=${b(answer)}\nPEER_HOT_STANDBY=off\n`);
  assert.equal(p.ok, true);
  assert.equal(p.systemIdentifier, '7301000000000000001');
  assert.equal(p.timeline, 1);
  assert.equal(p.inHotStandby, false);
  assert.equal(p.serverVersionNum, 150008);
  assert.deepEqual(p.settings, { max_connections: 100, max_worker_processes: 8, max_wal_senders: 10, max_prepared_transactions: 0, max_locks_per_transaction: 64, server_version_num: 150008 });
  // PostgreSQL before 14 has no in_hot_standby: unknown, not "false".
  assert.equal(parsePeerFacts(`PEER_OUT=${b(answer)}\nPEER_HOT_STANDBY=\n`).inHotStandby, null);
  const e = parsePeerFacts('PEER_ERROR=psql: error: connection to server at "198.18.0.11", port 5432 failed: FATAL:  no pg_hba.conf entry for replication connection \n');
  assert.equal(e.ok, false);
  assert.match(e.error!, /no pg_hba\.conf entry/);
  assert.equal(parsePeerFacts('').ok, false);
  assert.throws(() => peerPgFact({ version: 15, peer: "198.18.0.11; rm -rf /", port: 5432 }), /not a plain host name or IP address/);
});

test('net fact: ip -o addr, and which interface carries an address', () => {
  const ip = [
    '1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever',
    '1: lo    inet6 ::1/128 scope host \\       valid_lft forever preferred_lft forever',
    '2: host0@if5    inet 198.18.0.11/24 brd 198.18.0.255 scope global host0\\       valid_lft forever preferred_lft forever',
    '2: host0@if5    inet 198.18.0.100/24 scope global secondary host0\\       valid_lft forever preferred_lft forever',
    '3: eth1    inet 10.9.0.5/16 brd 10.9.255.255 scope global eth1\\       valid_lft forever preferred_lft forever',
    '2: host0@if5    inet6 fe80::1c2b:3cff:fe4d:5e6f/64 scope link \\       valid_lft forever preferred_lft forever',
  ].join('\n');
  const n = netFact.parse(`HOSTNAME=db1\nFQDN=db1.example.net\nADDRS=${b(ip)}\n`, ok);
  assert.equal(n.fqdn, 'db1.example.net');
  assert.deepEqual(n.addresses.map((a) => `${a.iface} ${a.address}/${a.prefix} ${a.scope}`), [
    'lo 127.0.0.1/8 host',
    'lo ::1/128 host',
    'host0 198.18.0.11/24 global',
    'host0 198.18.0.100/24 global',
    'eth1 10.9.0.5/16 global',
    'host0 fe80::1c2b:3cff:fe4d:5e6f/64 link',
  ]);
  assert.equal(interfaceFor(n.addresses, '198.18.0.15'), 'host0');
  assert.equal(interfaceFor(n.addresses, '10.9.200.1'), 'eth1');
  assert.equal(interfaceFor(n.addresses, '192.0.2.1'), null);
  assert.equal(interfaceFor(n.addresses, 'db1.example.net'), null);
  assert.equal(holdsAddress(n.addresses, '198.18.0.100'), true);
  assert.equal(holdsAddress(n.addresses, '198.18.0.101'), false);
});

test('resolve fact: getent ahosts STREAM lines, host names only', () => {
  const def = resolveFact(['198.18.0.15', 'app1.example.net', 'app1.example.net']);
  assert.equal((def.script.match(/getent ahosts/g) ?? []).length, 1);
  assert.deepEqual(parseResolve('NAME app1.example.net 198.18.0.15 198.18.0.15 \nNAME gone.example.net \n'), { 'app1.example.net': ['198.18.0.15'], 'gone.example.net': [] });
  assert.throws(() => resolveFact(['app1;reboot']), /neither an IP address nor a host name/);
});

const FIREWALLD_ZONES = `block
  target: %%REJECT%%
  icmp-block-inversion: no
  interfaces: 
  sources: 
  services: 
  ports: 
  rich rules: 

public (default, active)
  target: default
  icmp-block-inversion: no
  interfaces: eth0
  sources: 
  services: cockpit dhcpv6-client ssh
  ports: 8080/tcp
  protocols: 
  forward: yes
  masquerade: no
  forward-ports: 
  source-ports: 
  icmp-blocks: 
  rich rules: 
	rule family="ipv4" source address="198.18.0.12/32" port port="5432" protocol="tcp" accept
	rule family="ipv4" source address="198.18.0.15" port port="5432" protocol="tcp" accept
`;

test('firewall fact: firewalld zones as firewall-cmd --list-all-zones prints them', () => {
  const zones = parseFirewalldZones(FIREWALLD_ZONES);
  assert.equal(zones.length, 2);
  const pub = zones[1]!;
  assert.equal(pub.name, 'public');
  assert.equal(pub.active && pub.isDefault, true);
  assert.deepEqual(pub.interfaces, ['eth0']);
  assert.deepEqual(pub.services, ['cockpit', 'dhcpv6-client', 'ssh']);
  assert.deepEqual(pub.ports, ['8080/tcp']);
  assert.equal(pub.richRules.length, 2);
  assert.equal(zones[0]!.active, false);
  const fw = firewallFact.parse(`FIREWALLD=running\nFWD_DEFAULT=public\nFWD_RUNTIME=${b(FIREWALLD_ZONES)}\nFWD_PERMANENT=${b(FIREWALLD_ZONES)}\n`, ok);
  assert.equal(firewallTool(fw), 'firewalld');
});

test('firewall fact: ufw rules from user.rules tuples (comment hex-encoded)', () => {
  const rules = [
    '### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in',
    `### tuple ### allow tcp 5432 0.0.0.0/0 any 198.18.0.15 in comment=${Buffer.from('ha-setup-pg').toString('hex')}`,
    '-A ufw-user-input -p tcp --dport 5432 -s 198.18.0.15 -j ACCEPT',
  ].join('\n');
  const fw = firewallFact.parse(`UFW=installed\nUFW_STATUS=${b('Status: active\n\nTo Action From\n')}\nUFW_RULES=${b(rules)}\nUFW_RULES6=-\n`, ok);
  assert.equal(fw.ufw.active, true);
  assert.deepEqual(fw.ufw.rules, [
    { action: 'allow', proto: 'tcp', dport: '22', src: '0.0.0.0/0', comment: '' },
    { action: 'allow', proto: 'tcp', dport: '5432', src: '198.18.0.15', comment: 'ha-setup-pg' },
  ]);
  assert.equal(firewallTool(fw), 'ufw');
  const inactive = firewallFact.parse(`UFW=installed\nUFW_STATUS=${b('Status: inactive\n')}\n`, ok);
  assert.equal(firewallTool(inactive), 'none');
});

const NFT_JSON = JSON.stringify({
  nftables: [
    { metainfo: { version: '1.0.6', json_schema_version: 1 } },
    { table: { family: 'inet', name: 'filter', handle: 1 } },
    { chain: { family: 'inet', table: 'filter', name: 'input', handle: 1, type: 'filter', hook: 'input', prio: 0, policy: 'accept' } },
    { rule: { family: 'inet', table: 'filter', chain: 'input', handle: 4, expr: [{ match: { op: '==', left: { meta: { key: 'iifname' } }, right: 'lo' } }, { accept: null }] } },
    { rule: { family: 'inet', table: 'filter', chain: 'input', handle: 5, expr: [{ match: { op: '==', left: { payload: { protocol: 'tcp', field: 'dport' } }, right: 5432 } }, { accept: null }], comment: 'ha-setup-pg' } },
    { rule: { family: 'inet', table: 'filter', chain: 'input', handle: 6, expr: [{ reject: null }] } },
    { table: { family: 'ip', name: 'filter', handle: 2 } },
    { chain: { family: 'ip', table: 'filter', name: 'INPUT', handle: 1, type: 'filter', hook: 'input', prio: 0, policy: 'drop' } },
    { table: { family: 'inet', name: 'ha_setup', handle: 3 } },
    { set: { family: 'inet', name: 'pg_clients4', table: 'ha_setup', type: 'ipv4_addr', handle: 1, elem: ['198.18.0.12', '198.18.0.15'] } },
    { chain: { family: 'inet', table: 'ha_setup', name: 'input', handle: 2, type: 'filter', hook: 'input', prio: -10, policy: 'accept' } },
  ],
});

test('firewall fact: nftables JSON; the admin chains, not ours nor iptables-nft ones', () => {
  const fw = firewallFact.parse(`NFT=installed\nNFT_JSON=${b(NFT_JSON)}\nNFT_SERVICE=enabled\nNFT_CONF=${b('flush ruleset\n')}\nNFT_OURS=-\nNFT_ACCEPT=-\n`, ok);
  assert.deepEqual(fw.nft.tables, ['inet filter', 'ip filter', 'inet ha_setup']);
  const admin = adminInputChains(fw);
  assert.deepEqual(admin.map((c) => `${c.family} ${c.table} ${c.name}`), ['inet filter input']);
  assert.equal(admin[0]!.drops, 1, 'the reject rule counts as a drop');
  assert.deepEqual(admin[0]!.ours, [5]);
  assert.deepEqual(fw.nft.sets.find((s) => s.name === 'pg_clients4')?.elems, ['198.18.0.12', '198.18.0.15']);
  assert.equal(fw.nft.serviceEnabled, true);
  assert.equal(firewallTool(fw), 'nftables');
});

test('firewall fact: iptables as the last resort, and "none" when nothing filters', () => {
  const rules = ['-P INPUT ACCEPT', '-A INPUT -i lo -j ACCEPT', '-A INPUT -j REJECT --reject-with icmp-host-prohibited'].join('\n');
  const fw = firewallFact.parse(`IPT4=${b(rules)}\nIPT6=${b('-P INPUT ACCEPT\n')}\nIPT_PERSIST=rhel\n`, ok);
  assert.equal(fw.iptables.persist, 'rhel');
  assert.equal(firewallTool(fw), 'iptables');
  const open = firewallFact.parse(`IPT4=${b('-P INPUT ACCEPT\n')}\nIPT6=${b('-P INPUT ACCEPT\n')}\nNFT=installed\nNFT_JSON=${b('{"nftables":[{"metainfo":{}}]}')}\nNFT_SERVICE=disabled\n`, ok);
  assert.equal(firewallTool(open), 'none');
});

test('selinux, tls, passfile, os-prep and package facts', () => {
  const se = selinuxFact('/srv/wal').parse(`SELINUX=Enforcing\nSEMANAGE=yes\nSEPORTS=${b('postgresql_port_t              tcp      5432, 9898\n')}\nARCHIVE_CONTEXT=unconfined_u:object_r:var_t:s0\n`, ok);
  assert.deepEqual(se, { mode: 'enforcing', semanage: true, postgresPorts: [5432, 9898], archiveDirType: 'var_t' });
  assert.equal(selinuxFact().parse('SELINUX=absent\n', ok).mode, 'absent');

  const pub = '-----BEGIN PUBLIC KEY-----\nMFkw...\n-----END PUBLIC KEY-----\n';
  const tls = tlsFact.parse(`DIR=yes\nKEY_STAT=600 postgres postgres\nKEY_PUB=${b(pub)}\nCERT=-\nCA=-\nNOW=1767225600\n`, ok);
  assert.deepEqual(tls, { dirExists: true, key: { mode: '600', owner: 'postgres', group: 'postgres' }, publicKeyPem: pub, cert: null, ca: null, now: 1767225600 });
  assert.equal(tlsFact.parse('DIR=no\nKEY_STAT=-\nCERT=-\nCA=-\nNOW=1\n', ok).key, null);

  assert.deepEqual(passfileFact(15).parse('STAT=600 postgres\nSHA256=abc\n', ok), { exists: true, sha256: 'abc', mode: '600', owner: 'postgres' });
  assert.deepEqual(passfileFact(15).parse('', ok), { exists: false, sha256: null, mode: null, owner: null });

  const prep = osPrepFact.parse(`UMASK=0077\nARCH=aarch64\nCODENAME=noble\nHOSTNAME=app1\nRESOLVES=no\nHOSTS=${b('127.0.0.1 localhost\n')}\nTIME_SYNC=chrony\nCONTAINER=none\nUPDATES=12\nREBOOT=yes\n`, ok);
  assert.deepEqual(prep, { umask: '0077', arch: 'aarch64', codename: 'noble', hostname: 'app1', hostnameResolves: false, hostsFile: '127.0.0.1 localhost\n', timeSync: 'chrony', container: null, pendingUpdates: 12, rebootRequired: true });
  assert.equal(osPrepFact.parse('CONTAINER=systemd-nspawn\n', ok).container, 'systemd-nspawn');
  assert.equal(osPrepFact.parse('UPDATES=\n', ok).pendingUpdates, null);

  const clusters = 'Ver Cluster Port Status Owner    Data directory              Log file\n13  main    5432 online postgres /var/lib/postgresql/13/main /var/log/postgresql/postgresql-13-main.log\n';
  const pk = pgPackagesFact(15).parse(`INSTALLED=no\nCANDIDATE=(none)\nPGDG=no\nCLUSTERS=${b(clusters)}\n`, ok);
  assert.deepEqual(pk, { serverInstalled: false, candidate: null, pgdgRepo: false, clusters: [{ version: 13, name: 'main', port: 5432, status: 'online' }] });
});
