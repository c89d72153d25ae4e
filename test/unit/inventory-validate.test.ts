import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clusterDir } from '../../source/paths.js';
import { validateAddress, validateField, validateInventory, type FieldError } from '../../source/inventory/validate.js';

const SERVERS = {
  db_primary: '198.18.0.11',
  db_standby: '198.18.0.12',
  db_vip: '198.18.0.100',
  nfs_primary: '198.18.0.13',
  nfs_standby: '198.18.0.14',
  nfs_vip: '198.18.0.101',
  app1: '198.18.0.15',
  app2: '198.18.0.16',
  lb: '198.18.0.17',
};

function table(patch: Record<string, unknown> = {}, servers: Record<string, unknown> = {}): Record<string, unknown> {
  const all: Record<string, unknown> = { ...SERVERS, ...servers };
  for (const [k, v] of Object.entries(all)) if (v === undefined) delete all[k];
  return { cluster: 'test', topology: 'lb', servers: all, network: { prefix: 24 }, ...patch };
}

function errorsOf(input: unknown): FieldError[] {
  const r = validateInventory(input);
  assert.equal(r.ok, false, 'expected the table to be refused');
  return r.ok ? [] : r.errors;
}

/** The one error on `field`; its message must match every pattern. */
function expectError(input: unknown, field: string, ...patterns: RegExp[]): FieldError {
  const errors = errorsOf(input);
  const mine = errors.filter((e) => e.field === field);
  assert.equal(mine.length, 1, `one error on ${field}, got: ${JSON.stringify(errors)}`);
  for (const p of patterns) assert.match(mine[0]!.message, p);
  assert.doesNotMatch(mine[0]!.message, /\n/);
  return mine[0]!;
}

test('a complete table is accepted and normalised (trimmed, table order, ssh/options default to {})', () => {
  const { lb, ...rest } = SERVERS;
  const r = validateInventory({ cluster: 'test', topology: 'lb', servers: { lb: ` ${lb} `, ...rest, app1: '198.18.0.15\t' } });
  assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
  assert.deepEqual(Object.keys(r.inventory.servers), Object.keys(SERVERS));
  assert.equal(r.inventory.servers.app1, '198.18.0.15');
  assert.equal(r.inventory.servers.lb, '198.18.0.17');
  assert.deepEqual(r.inventory.ssh, {});
  assert.deepEqual(r.inventory.options, {});
  assert.equal(r.inventory.network, undefined);
});

test('null ssh/options (empty keys in YAML) become {}', () => {
  const r = validateInventory(table({ ssh: null, options: null }));
  assert.ok(r.ok);
  assert.deepEqual([r.inventory.ssh, r.inventory.options], [{}, {}]);
});

test('addresses: IPv4 must be four decimal parts; "198.18.0" and "10.1" are not IPs', () => {
  expectError(table({}, { app1: '198.18.0' }), 'servers.app1', /not a valid IPv4 address/, /3 numbers, not 4/);
  expectError(table({}, { app1: '10.1' }), 'servers.app1', /"10\.1" is not a valid IPv4/, /2 numbers/);
});

test('addresses: an all-numeric dotted typo is called an IP typo, not a hostname', () => {
  expectError(table({}, { app1: '198.18.0.256' }), 'servers.app1', /not a valid IPv4 address/, /256 is above 255/, /cannot be a hostname/, /typo/);
  expectError(table({}, { app1: '198.018.0.15' }), 'servers.app1', /018 has a leading zero: write 18/);
  expectError(table({}, { app1: '198.18..15' }), 'servers.app1', /empty part/);
});

test('addresses: hostnames follow RFC 1123', () => {
  for (const ok of ['db1', 'db-1.example.com', 'DB1.Example.COM.', '1db.example', 'a'.repeat(63) + '.example']) {
    assert.equal(validateAddress(ok), undefined, ok);
  }
  assert.match(validateAddress('db_1.example')!, /not a valid hostname: "_" is not allowed/);
  assert.match(validateAddress('-db.example')!, /"-db" starts or ends with "-"/);
  assert.match(validateAddress('db..example')!, /empty part/);
  assert.match(validateAddress('a'.repeat(64) + '.example')!, /longer than 63 characters/);
  assert.match(validateAddress('db.example.10')!, /cannot end in a number/);
  expectError(table({}, { app1: 'app one' }), 'servers.app1', /contains a space/);
});

test('addresses: IPv6 works, and common slips say the fix', () => {
  for (const ok of ['2001:db8::11', '::1', 'fe80::1%eth0', '2001:0db8:0000:0000:0000:0000:0000:0011']) {
    assert.equal(validateAddress(ok), undefined, ok);
  }
  assert.match(validateAddress('2001:db8:::1')!, /not a valid IPv6 address/);
  assert.match(validateAddress('[2001:db8::1]')!, /without brackets \(2001:db8::1\)/);
  assert.match(validateAddress('198.18.0.11:22')!, /has a port.*ssh\.port/);
  assert.match(validateAddress('198.18.0.0/24')!, /prefix length.*network\.prefix/);
  assert.match(validateAddress('root@198.18.0.11')!, /ssh\.user/);
  assert.match(validateAddress('')!, /empty/);
});

test('the same address on two roles names both', () => {
  expectError(table({}, { db_standby: '198.18.0.11' }), 'servers.db_standby', /198\.18\.0\.11 is also db_primary's address/, /own server/);
  // Same host written differently: case and trailing dot for names, notation for IPv6.
  expectError(table({}, { app1: 'App.Example', app2: 'app.example.' }), 'servers.app2', /also app1's address/);
  const v6 = { app1: '2001:db8::15', app2: '2001:0db8:0:0::15' };
  expectError(table({}, v6), 'servers.app2', /also app1's address/);
});

test('a VIP equal to a host\'s address is blamed on the VIP', () => {
  expectError(table({}, { db_vip: '198.18.0.15' }), 'servers.db_vip', /is app1's own address/, /free address/);
  expectError(table({}, { nfs_vip: '198.18.0.100' }), 'servers.nfs_vip', /also db_vip's address/);
  assert.match(validateField('app1', '198.18.0.100', SERVERS, 'lb')!, /already db_vip, a virtual IP/);
});

test('a VIP must be an IP address, not a hostname', () => {
  expectError(table({}, { db_vip: 'db.example' }), 'servers.db_vip', /keepalived VIP must be an IP address/);
});

test('a VIP outside its pair\'s subnet says the subnet (when all are IPs and the prefix is known)', () => {
  expectError(
    table({}, { db_vip: '198.18.1.100' }),
    'servers.db_vip',
    /198\.18\.1\.100 is outside 198\.18\.0\.0\/24/,
    /db_primary \(198\.18\.0\.11\) and db_standby \(198\.18\.0\.12\)/,
  );
  // Not checked without a prefix, or when a member is a hostname; inside a /16 it is fine.
  assert.ok(validateInventory(table({ network: undefined }, { db_vip: '198.18.1.100' })).ok);
  assert.ok(validateInventory(table({}, { db_vip: '198.18.1.100', db_standby: 'db2.example' })).ok);
  assert.ok(validateInventory(table({ network: { prefix: 16 } }, { db_vip: '198.18.1.100' })).ok);
  // A pair split across subnets: the VIP is outside the standby's subnet.
  expectError(table({}, { db_standby: '198.18.1.12' }), 'servers.db_vip', /outside 198\.18\.1\.0\/24, the subnet of db_standby/);
});

test('IPv6 tables: the subnet check works on IPv6 too', () => {
  const v6 = {
    db_primary: '2001:db8:0:1::11',
    db_standby: '2001:db8:0:1::12',
    db_vip: '2001:db8:0:1::100',
    nfs_primary: '2001:db8:0:1::13',
    nfs_standby: '2001:db8:0:1::14',
    nfs_vip: '2001:db8:0:1::101',
    app1: '2001:db8:0:1::15',
    app2: 'app2.example',
    lb: '2001:db8:0:1::17',
  };
  const ok = validateInventory(table({ network: { prefix: 64 } }, v6));
  assert.ok(ok.ok, JSON.stringify(!ok.ok && ok.errors));
  expectError(
    table({ network: { prefix: 64 } }, { ...v6, nfs_vip: '2001:db8:0:2::101' }),
    'servers.nfs_vip',
    /outside 2001:db8:0:1::\/64, the subnet of nfs_primary/,
  );
  expectError(table({ network: { prefix: 64 } }, { ...v6, db_vip: '198.18.0.100' }), 'servers.db_vip', /ipv4 but db_primary is ipv6/);
  expectError(table({ network: { prefix: 64 } }), 'network.prefix', /too long for IPv4/, /1-32/);
});

test('a role the topology needs is reported missing, with what to put there', () => {
  expectError(table({}, { db_vip: undefined }), 'servers.db_vip', /not set/, /reserve a free IP address in the subnet of db_primary and db_standby/);
  expectError(table({}, { lb: undefined }), 'servers.lb', /not set/, /lb topology needs the HAProxy load balancer/);
  expectError(table({}, { nfs_standby: null }), 'servers.nfs_standby', /not set/);
  expectError(table({}, { nfs_standby: '  ' }), 'servers.nfs_standby', /not set/);
});

test('fewer than two app servers, or a gap in app numbers, is refused; app3+ is allowed', () => {
  expectError(table({}, { app2: undefined }), 'servers.app2', /at least two app servers \(app1, app2\)/);
  expectError(table({}, { app4: '198.18.0.19' }), 'servers.app3', /app1\.\.app4 without gaps/);
  const r = validateInventory(table({}, { app3: '198.18.0.18', app4: '198.18.0.19' }));
  assert.ok(r.ok);
  assert.deepEqual(Object.keys(r.inventory.servers).slice(6, 10), ['app1', 'app2', 'app3', 'app4']);
});

test('lb with topology k8s, or k8s_master with topology lb, is refused', () => {
  const errors = errorsOf(table({ topology: 'k8s' }));
  const lb = errors.find((e) => e.field === 'servers.lb');
  assert.match(lb!.message, /belongs to topology lb, but topology is k8s: use k8s_master instead, or set topology: lb/);
  assert.ok(errors.some((e) => e.field === 'servers.k8s_master' && /not set/.test(e.message)));
  expectError(table({}, { k8s_master: '198.18.0.20' }), 'servers.k8s_master', /belongs to topology k8s, but topology is lb/);
  assert.ok(validateInventory(table({ topology: 'k8s' }, { lb: undefined, k8s_master: '198.18.0.17' })).ok);
});

test('an unknown alias suggests the nearest known one', () => {
  expectError(table({}, { db_primay: '198.18.0.30' }), 'servers.db_primay', /unknown alias: did you mean db_primary\?/);
  expectError(table({}, { app_3: '198.18.0.30' }), 'servers.app_3', /did you mean app3\?/);
  expectError(table({}, { webserver: '198.18.0.30' }), 'servers.webserver', /unknown alias: use one of db_primary, .*app1\.\.appN, lb/);
  expectError(table({ ssh: { hosts: { nfs_primray: { port: 2222 } } } }), 'ssh.hosts.nfs_primray', /did you mean nfs_primary\?/);
  expectError(table({ ssh: { hosts: { db_vip: { user: 'x' } } } }), 'ssh.hosts.db_vip', /virtual IP, not a host/);
});

test('cluster names follow the state directory\'s rule (same as clusterDir)', () => {
  expectError(table({ cluster: 'my cluster' }), 'cluster', /"my cluster" is not a valid cluster name/, /letters, digits, \. _ -/);
  expectError(table({ cluster: undefined }), 'cluster', /missing: add `cluster: NAME`/);
  for (const name of ['prod', 'a', 'site-1.db_2', '-x', '.hidden', 'a/b', 'x'.repeat(63), 'x'.repeat(64), '', 'ü']) {
    let dirOk = true;
    try {
      clusterDir(name, { HA_SETUP_HOME: '/nonexistent' });
    } catch {
      dirOk = false;
    }
    assert.equal(validateInventory(table({ cluster: name })).ok, dirOk, name);
  }
});

test('ssh.port must be 1-65535, network.prefix 1-128', () => {
  expectError(table({ ssh: { port: 70000 } }), 'ssh.port', /70000 is out of range: use 1-65535/);
  expectError(table({ ssh: { port: 0 } }), 'ssh.port', /use 1-65535/);
  expectError(table({ ssh: { port: 22.5 } }), 'ssh.port', /not a whole number: use 1-65535/);
  expectError(table({ ssh: { port: '22' } }), 'ssh.port', /must be a number, not "22"/);
  expectError(table({ ssh: { hosts: { app1: { port: 99999 } } } }), 'ssh.hosts.app1.port', /use 1-65535/);
  expectError(table({ network: { prefix: 200 } }), 'network.prefix', /use 1-128/);
  assert.ok(validateInventory(table({ ssh: { port: 2222, user: 'admin', hosts: { app1: { port: 22 } } } })).ok);
});

test('options must be a mapping', () => {
  expectError(table({ options: [1, 2] }), 'options', /must be a mapping/, /not a list/);
  expectError(table({ options: 'postgres' }), 'options', /must be a mapping.*not "postgres"/);
});

test('shape errors are one-line field messages, never raw zod text', () => {
  const errors = errorsOf({ topology: 'haproxy', servers: { app1: 10.1 }, serverz: {}, ssh: { knownhost: 'x' }, network: [] });
  const byField = Object.fromEntries(errors.map((e) => [e.field, e.message]));
  assert.match(byField.topology!, /"haproxy" is not a topology: use lb .* or k8s/);
  assert.match(byField.cluster!, /missing/);
  assert.match(byField['servers.app1']!, /not the number 10\.1: write it in quotes/);
  assert.equal(errors.filter((e) => e.field === 'servers.app1').length, 1, 'a type error is not also reported as "not set"');
  assert.match(byField.serverz!, /unknown key \(did you mean servers\?\)/);
  assert.match(byField['ssh.knownhost']!, /did you mean knownHosts\?/);
  assert.match(byField.network!, /must be a mapping/);
  for (const e of errors) {
    assert.doesNotMatch(e.message, /Invalid input|received|Unrecognized|\n/, e.message);
  }
  const whole = errorsOf([1, 2]);
  assert.equal(whole[0]!.field, '');
  assert.match(whole[0]!.message, /must be a mapping with cluster, topology and servers/);
});

test('errors come in a stable order: cluster, topology, servers in table order, then the rest', () => {
  const errors = errorsOf(table({ cluster: 'a b', ssh: { port: 0 } }, { lb: 'x_y', db_standby: '10.1' }));
  assert.deepEqual(
    errors.map((e) => e.field),
    ['cluster', 'servers.db_standby', 'servers.lb', 'ssh.port'],
  );
});

test('validateField: inline check of one field against the others', () => {
  const typed = { db_primary: '198.18.0.11', db_standby: '198.18.0.12' };
  assert.equal(validateField('db_vip', '198.18.0.100', typed, 'lb', 24), undefined);
  assert.match(validateField('db_vip', '198.18.9.100', typed, 'lb', 24)!, /outside 198\.18\.0\.0\/24/);
  assert.equal(validateField('db_vip', '198.18.9.100', typed, 'lb'), undefined, 'no prefix, no subnet check');
  // Typing a pair member checks it against the VIP already entered.
  assert.match(validateField('db_standby', '198.18.5.12', { db_primary: '198.18.0.11', db_vip: '198.18.0.100' }, 'lb', 24)!, /outside 198\.18\.5\.0\/24/);
  assert.match(validateField('db_standby', '198.18.0.11', typed, 'lb')!, /also db_primary's address/);
  assert.match(validateField('db_vip', '198.18.0.11', typed, 'lb')!, /db_primary's own address/);
  assert.match(validateField('app1', '198.18.0.256', typed, 'lb')!, /256 is above 255/);
  assert.match(validateField('app1', '', typed, 'lb')!, /not set/);
  assert.match(validateField('lb', '198.18.0.17', typed, 'k8s')!, /use k8s_master instead/);
  assert.match(validateField('db_primay', '198.18.0.17', typed, 'lb')!, /did you mean db_primary/);
  // An invalid other field does not produce a spurious conflict.
  assert.equal(validateField('app1', '198.18.0.15', { ...typed, app2: 'x..y' }, 'lb'), undefined);
});

test('the optional standby load balancer: accepted with its VIP; either one alone is refused, naming the other', () => {
  assert.ok(validateInventory(table({}, { lb_standby: '198.18.0.18', lb_vip: '198.18.0.102' })).ok);
  expectError(table({}, { lb_standby: '198.18.0.18' }), 'servers.lb_vip', /^not set: lb_standby needs it; reserve a free IP address in the subnet of lb and lb_standby .*, or remove lb_standby$/);
  expectError(table({}, { lb_vip: '198.18.0.102' }), 'servers.lb_standby', /^not set: lb_vip needs it; give lb_standby an IP address or hostname, or remove lb_vip$/);
  // Its VIP follows the pair rules: in the subnet of lb and lb_standby, not an address in use.
  expectError(table({}, { lb_standby: '198.18.0.18', lb_vip: '198.18.5.102' }), 'servers.lb_vip', /outside 198\.18\.0\.0\/24/);
  expectError(table({}, { lb_standby: '198.18.0.18', lb_vip: '198.18.0.17' }), 'servers.lb_vip', /lb/);
  // Topology k8s has no load balancer pair.
  expectError({ ...table({}, { lb: undefined, k8s_master: '198.18.0.17', lb_standby: '198.18.0.18', lb_vip: '198.18.0.102' }), topology: 'k8s' }, 'servers.lb_standby', /belongs to topology lb/);
});
