import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ROLES,
  appAliases,
  hostAliases,
  hostsAndAddresses,
  isVip,
  requiredAliases,
  roleOf,
  sortAliases,
  tableAliases,
} from '../../source/inventory/roles.js';

test('ROLES: the guides\' aliases, with titles and one-line descriptions', () => {
  assert.deepEqual(
    ROLES.map((r) => r.alias),
    ['db_primary', 'db_standby', 'db_vip', 'nfs_primary', 'nfs_standby', 'nfs_vip', 'app1', 'app2', 'lb', 'lb_standby', 'lb_vip', 'k8s_master'],
  );
  for (const r of ROLES) {
    assert.ok(r.title.length > 0, r.alias);
    assert.ok(r.description.length > 0 && !r.description.includes('\n'), r.alias);
  }
  assert.equal(roleOf('db_primary')?.title, 'PostgreSQL primary');
  assert.equal(roleOf('db_vip')?.description, 'keepalived virtual IP of the database pair; apps connect here');
  assert.match(roleOf('app1')!.description, /ccc1 in the guides/);
  assert.match(roleOf('app2')!.description, /ccc2 in the guides/);
  assert.equal(roleOf('lb')?.topology, 'lb');
  assert.equal(roleOf('k8s_master')?.topology, 'k8s');
});

test('exactly the aliases ending in _vip are VIPs, each with the pair it floats between', () => {
  for (const r of ROLES) assert.equal(r.kind === 'vip', r.alias.endsWith('_vip'), r.alias);
  assert.deepEqual(roleOf('db_vip')?.pair, ['db_primary', 'db_standby']);
  assert.deepEqual(roleOf('nfs_vip')?.pair, ['nfs_primary', 'nfs_standby']);
  assert.equal(isVip('db_vip'), true);
  assert.equal(isVip('db_primary'), false);
  assert.equal(isVip('app1'), false);
});

test('roleOf: app3 and beyond exist, app0 and unknown aliases do not; k8s apps are worker nodes', () => {
  assert.equal(roleOf('app3')?.title, 'App server 3');
  assert.equal(roleOf('app12')?.kind, 'host');
  assert.equal(roleOf('app0'), undefined);
  assert.equal(roleOf('app01'), undefined);
  assert.equal(roleOf('db_primay'), undefined);
  assert.equal(roleOf('app1', 'k8s')?.title, 'Kubernetes worker 1');
  assert.match(roleOf('app1', 'lb')!.description, /behind lb/);
});

test('requiredAliases per topology and app count', () => {
  const common = ['db_primary', 'db_standby', 'db_vip', 'nfs_primary', 'nfs_standby', 'nfs_vip'];
  assert.deepEqual(requiredAliases('lb'), [...common, 'app1', 'app2', 'lb']);
  assert.deepEqual(requiredAliases('k8s', 1), [...common, 'app1', 'app2', 'k8s_master']);
  assert.deepEqual(requiredAliases('k8s', 3), [...common, 'app1', 'app2', 'app3', 'k8s_master']);
});

test('appAliases and sortAliases order apps by number (app10 after app2)', () => {
  assert.deepEqual(appAliases({ app10: 'a', lb: 'x', app2: 'b', app1: 'c', apple: 'd' }), ['app1', 'app2', 'app10']);
  assert.deepEqual(sortAliases(['lb', 'app10', 'zzz', 'db_vip', 'app2', 'db_primary']), ['db_primary', 'db_vip', 'app2', 'app10', 'lb', 'zzz']);
});

test('tableAliases lists every role of the topology, set or not, plus extra aliases present', () => {
  assert.deepEqual(tableAliases('lb', {}), requiredAliases('lb'));
  assert.deepEqual(tableAliases('k8s', { app3: '198.18.0.19' }), requiredAliases('k8s', 3));
  assert.deepEqual(tableAliases('lb', {}, 4), requiredAliases('lb', 4));
  assert.deepEqual(tableAliases('lb', { typo: 'x' }).slice(-2), ['lb', 'typo']);
});

test('hostAliases and hostsAndAddresses: hosts are the non-VIP aliases, addresses are all', () => {
  const inv = {
    servers: {
      lb: '198.18.0.17',
      db_vip: '198.18.0.100',
      db_primary: '198.18.0.11',
      app2: 'app2.example',
      app1: '198.18.0.15',
      nfs_vip: '198.18.0.101',
    },
  };
  assert.deepEqual(hostAliases(inv), ['db_primary', 'app1', 'app2', 'lb']);
  const { hosts, addresses } = hostsAndAddresses(inv);
  assert.deepEqual(Object.keys(hosts), ['db_primary', 'app1', 'app2', 'lb']);
  assert.deepEqual(hosts.app2, { alias: 'app2', address: 'app2.example' });
  assert.equal(hosts.db_vip, undefined);
  assert.deepEqual(addresses, {
    db_primary: '198.18.0.11',
    db_vip: '198.18.0.100',
    nfs_vip: '198.18.0.101',
    app1: '198.18.0.15',
    app2: 'app2.example',
    lb: '198.18.0.17',
  });
});
