import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatTable, parseFormat, type TableSource } from '../../source/inventory/format.js';

// A partial table: every role of the topology is listed, "not set" where there is no address.
const DEMO: TableSource = {
  cluster: 'demo',
  topology: 'lb',
  servers: { db_primary: '198.18.0.11', db_vip: '198.18.0.100', app1: 'app1.example', lb: '198.18.0.17' },
};

test('text: aligned columns under a title naming the cluster and topology', () => {
  assert.equal(
    formatTable(DEMO, 'text'),
    `Server table: cluster demo, topology lb (HAProxy load balancer)

ROLE                   ALIAS        ADDRESS       DESCRIPTION
PostgreSQL primary     db_primary   198.18.0.11   PostgreSQL server that takes the writes and streams WAL to db_standby; keepalived holds db_vip here
PostgreSQL standby     db_standby   not set       streaming replica of db_primary (read-only); promoted when keepalived moves db_vip to it
Database virtual IP    db_vip       198.18.0.100  keepalived virtual IP of the database pair; apps connect here
NFS primary            nfs_primary  not set       NFS server exporting the shared app directory; keepalived holds nfs_vip here
NFS standby            nfs_standby  not set       second NFS server with a copy of the shared data; takes nfs_vip on failover
NFS virtual IP         nfs_vip      not set       keepalived virtual IP of the NFS pair; app servers mount the share from here
App server 1           app1         app1.example  application server (ccc1 in the guides; behind lb); mounts the share from nfs_vip, connects to db_vip
App server 2           app2         not set       application server (ccc2 in the guides; behind lb); mounts the share from nfs_vip, connects to db_vip
HAProxy load balancer  lb           198.18.0.17   HAProxy in front of the app servers: TLS passed through on 8181, sticky on the TLS session id
`,
  );
});

test('md: a GitHub Markdown table with a title line', () => {
  assert.equal(
    formatTable(DEMO, 'md'),
    `**Server table: cluster demo, topology lb (HAProxy load balancer)**

| Role | Alias | Address | Description |
| --- | --- | --- | --- |
| PostgreSQL primary | db_primary | 198.18.0.11 | PostgreSQL server that takes the writes and streams WAL to db_standby; keepalived holds db_vip here |
| PostgreSQL standby | db_standby | not set | streaming replica of db_primary (read-only); promoted when keepalived moves db_vip to it |
| Database virtual IP | db_vip | 198.18.0.100 | keepalived virtual IP of the database pair; apps connect here |
| NFS primary | nfs_primary | not set | NFS server exporting the shared app directory; keepalived holds nfs_vip here |
| NFS standby | nfs_standby | not set | second NFS server with a copy of the shared data; takes nfs_vip on failover |
| NFS virtual IP | nfs_vip | not set | keepalived virtual IP of the NFS pair; app servers mount the share from here |
| App server 1 | app1 | app1.example | application server (ccc1 in the guides; behind lb); mounts the share from nfs_vip, connects to db_vip |
| App server 2 | app2 | not set | application server (ccc2 in the guides; behind lb); mounts the share from nfs_vip, connects to db_vip |
| HAProxy load balancer | lb | 198.18.0.17 | HAProxy in front of the app servers: TLS passed through on 8181, sticky on the TLS session id |
`,
  );
});

test('csv: RFC 4180 (CRLF, fields with commas or quotes quoted, quotes doubled)', () => {
  assert.equal(
    formatTable(DEMO, 'csv'),
    [
      'role,alias,address,description',
      'PostgreSQL primary,db_primary,198.18.0.11,PostgreSQL server that takes the writes and streams WAL to db_standby; keepalived holds db_vip here',
      'PostgreSQL standby,db_standby,not set,streaming replica of db_primary (read-only); promoted when keepalived moves db_vip to it',
      'Database virtual IP,db_vip,198.18.0.100,keepalived virtual IP of the database pair; apps connect here',
      'NFS primary,nfs_primary,not set,NFS server exporting the shared app directory; keepalived holds nfs_vip here',
      'NFS standby,nfs_standby,not set,second NFS server with a copy of the shared data; takes nfs_vip on failover',
      'NFS virtual IP,nfs_vip,not set,keepalived virtual IP of the NFS pair; app servers mount the share from here',
      'App server 1,app1,app1.example,"application server (ccc1 in the guides; behind lb); mounts the share from nfs_vip, connects to db_vip"',
      'App server 2,app2,not set,"application server (ccc2 in the guides; behind lb); mounts the share from nfs_vip, connects to db_vip"',
      'HAProxy load balancer,lb,198.18.0.17,"HAProxy in front of the app servers: TLS passed through on 8181, sticky on the TLS session id"',
      '',
    ].join('\r\n'),
  );
  const odd = formatTable({ topology: 'lb', servers: { app1: 'x,"y"' } }, 'csv');
  assert.ok(odd.includes('\r\nApp server 1,app1,"x,""y""",'), odd);
});

test('md: pipes and backslashes in cells are escaped, newlines flattened', () => {
  const md = formatTable({ cluster: 'odd', topology: 'lb', servers: { app1: 'a|b\\c\nd' } }, 'md');
  assert.ok(md.includes('| App server 1 | app1 | a\\|b\\\\c d |'), md);
  for (const line of md.split('\n').filter((l) => l.startsWith('|'))) {
    assert.equal(line.replace(/\\\\/g, '').replace(/\\\|/g, '').split('|').length, 6, `4 cells: ${line}`);
  }
});

test('json: an array of objects, null for not set, stable key order', () => {
  const text = formatTable(DEMO, 'json');
  const rows = JSON.parse(text) as Record<string, unknown>[];
  assert.equal(rows.length, 9);
  assert.deepEqual(rows[2], {
    role: 'Database virtual IP',
    alias: 'db_vip',
    address: '198.18.0.100',
    description: 'keepalived virtual IP of the database pair; apps connect here',
    kind: 'vip',
  });
  assert.equal(rows[1]!.address, null);
  for (const r of rows) assert.deepEqual(Object.keys(r), ['role', 'alias', 'address', 'description', 'kind']);
  assert.ok(text.endsWith('}\n]\n'));
});

test('k8s tables list k8s_master and the workers; appCount lists apps not set yet', () => {
  const rows = JSON.parse(formatTable({ topology: 'k8s', servers: {} }, 'json', { appCount: 3 })) as { alias: string; role: string }[];
  assert.deepEqual(rows.map((r) => r.alias).slice(6), ['app1', 'app2', 'app3', 'k8s_master']);
  assert.equal(rows[6]!.role, 'Kubernetes worker 1');
  assert.match(formatTable({ topology: 'k8s', servers: {} }, 'md'), /^\*\*Server table: new cluster, topology k8s \(Kubernetes\)\*\*\n/);
});

test('an unknown format names the flag and the allowed values', () => {
  assert.throws(() => formatTable(DEMO, 'xml'), { message: '--format: "xml" is not a table format: use text, md, csv, json' });
  assert.equal(parseFormat('csv'), 'csv');
});
