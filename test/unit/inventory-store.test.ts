import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listClusters, loadCluster, removeCluster, saveCluster, tablePath } from '../../source/inventory/store.js';
import {
  NO_TABLE,
  exportCluster,
  importConfigFile,
  loadConfigFile,
  parseConfigYaml,
  resolveInventory,
  toYaml,
} from '../../source/inventory/load.js';
import { InventoryError } from '../../source/inventory/validate.js';
import type { Inventory } from '../../source/inventory/types.js';

const fixture = (name: string) => fileURLToPath(new URL(`../../../test/fixtures/${name}`, import.meta.url));
const LB = fixture('cluster-lb.yaml');
const K8S = fixture('cluster-k8s.yaml');

let home: string;
const savedHome = process.env.HA_SETUP_HOME;

before(() => {
  home = mkdtempSync(join(tmpdir(), 'ha-setup-inv-'));
  process.env.HA_SETUP_HOME = home;
});

after(() => {
  if (savedHome === undefined) delete process.env.HA_SETUP_HOME;
  else process.env.HA_SETUP_HOME = savedHome;
  rmSync(home, { recursive: true, force: true });
});

function fresh(name: string): NodeJS.ProcessEnv {
  const dir = join(home, name);
  return { HA_SETUP_HOME: dir };
}

function catchError(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  assert.fail('expected an error');
}

test('the fixtures load, with the example config\'s meaning intact', () => {
  const lb = loadConfigFile(LB);
  assert.equal(lb.cluster, 'fixture-lb');
  assert.equal(lb.topology, 'lb');
  assert.equal(lb.servers.db_vip, '198.18.0.100');
  assert.equal(lb.servers.lb, '198.18.0.17');
  assert.deepEqual(lb.network, { prefix: 24 });
  assert.deepEqual(lb.ssh, { user: 'root' });
  assert.deepEqual(lb.options, { postgres: { version: 15, appUser: 'lunadirector', appDb: 'lunadirectordb' } });
  const k8s = loadConfigFile(K8S);
  assert.equal(k8s.topology, 'k8s');
  assert.equal(k8s.servers.k8s_master, '198.18.0.17');
});

test('YAML syntax errors give the file, line and column', () => {
  const e = catchError(() => parseConfigYaml('cluster: x\ntopology: lb\nservers:\n  db_primary: 1\n  db_primary: 2\n', 'c.yaml'));
  assert.ok(e instanceof InventoryError);
  assert.deepEqual(e.lines, ['c.yaml:5:3: YAML syntax error: Map keys must be unique']);
  const bad = catchError(() => loadConfigFile(fixture('bad-syntax.yaml'))) as InventoryError;
  assert.equal(bad.lines.length, 1);
  assert.match(bad.lines[0]!, /bad-syntax\.yaml:7:3: YAML syntax error: /);
});

test('table errors from a file carry the line of the field', () => {
  const text = ['cluster: t', 'topology: lb', 'servers:', '  db_primary: 198.18.0.11', '  db_standby: 198.18.0.11', 'ssh:', '  port: 0', ''].join('\n');
  const e = catchError(() => parseConfigYaml(text, 't.yaml')) as InventoryError;
  assert.ok(e.lines.includes("t.yaml:5: servers.db_standby: 198.18.0.11 is also db_primary's address: each role needs its own server (give db_standby a different IP or hostname)"));
  assert.ok(e.lines.includes('t.yaml:7: ssh.port: 0 is out of range: use 1-65535 (the SSH port, usually 22)'));
  // Missing keys have no line of their own.
  assert.ok(e.lines.some((l) => l.startsWith('t.yaml: servers.db_vip: not set')));
  assert.match(catchError(() => parseConfigYaml('# nothing\n', 'e.yaml')).message, /^e\.yaml: the file is empty/);
});

test('addresses YAML would read as numbers are kept as written', () => {
  const text = readFileSync(LB, 'utf8').replace('app1: 198.18.0.15', 'app1: 10.10');
  const e = catchError(() => parseConfigYaml(text, 'n.yaml')) as InventoryError;
  assert.ok(e.lines.some((l) => /^n\.yaml:\d+: servers\.app1: "10\.10" is not a valid IPv4 address/.test(l)), e.message);
});

test('toYaml round-trips: parse(toYaml(inv)) gives the same inventory', () => {
  const odd: Inventory = {
    cluster: 'odd',
    topology: 'k8s',
    servers: {
      db_primary: '2001:db8::11',
      db_standby: '2001:db8::12',
      db_vip: '2001:db8::100',
      nfs_primary: '1e3',
      nfs_standby: 'true',
      nfs_vip: '2001:db8::101',
      app1: 'fe80::15%eth0',
      app2: 'app2.example.',
      app3: '::ffff:198.18.0.19',
      k8s_master: 'null',
    },
    network: { prefix: 64 },
    ssh: { user: 'admin', port: 2222, hosts: { app1: { user: 'root', proxyJump: 'jump@198.18.0.1:22' } } },
    options: { postgres: { version: 16 }, list: [1, 'two', null], 'dotted.key': 'x: y # not a comment' },
  };
  for (const inv of [loadConfigFile(LB), loadConfigFile(K8S), odd]) {
    const yaml = toYaml(inv);
    assert.deepEqual(parseConfigYaml(yaml, 'round-trip.yaml'), inv);
  }
  assert.match(toYaml(odd), /^# ha-setup server table of cluster odd/);
});

test('conf round trip under HA_SETUP_HOME: save, load, list, remove', () => {
  const e = fresh('conf');
  const inv = loadConfigFile(LB);
  const file = saveCluster(inv, e);
  assert.equal(file, join(e.HA_SETUP_HOME!, 'clusters', 'fixture-lb', 'table.json'));
  assert.equal(file, tablePath('fixture-lb', e));
  assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), inv);
  assert.equal(statSync(join(e.HA_SETUP_HOME!, 'clusters', 'fixture-lb')).mode & 0o777, 0o700);
  assert.deepEqual(loadCluster('fixture-lb', e), inv);
  saveCluster(loadConfigFile(K8S), e);
  assert.deepEqual(listClusters(e), ['fixture-k8s', 'fixture-lb']);
  assert.equal(loadCluster('nope', e), undefined);
  assert.equal(existsSync(join(e.HA_SETUP_HOME!, 'clusters', 'nope')), false, 'loading does not create directories');
  assert.equal(removeCluster('fixture-lb', e), true);
  assert.equal(removeCluster('fixture-lb', e), false);
  assert.equal(loadCluster('fixture-lb', e), undefined);
  assert.deepEqual(listClusters(e), ['fixture-k8s']);
});

test('the process environment\'s HA_SETUP_HOME is the default', () => {
  const inv = { ...loadConfigFile(LB), cluster: 'from-env' };
  saveCluster(inv);
  assert.ok(existsSync(join(home, 'clusters', 'from-env', 'table.json')));
  assert.deepEqual(loadCluster('from-env'), inv);
});

test('an invalid table is never saved, and does not replace a valid one', () => {
  const e = fresh('invalid');
  const good = loadConfigFile(LB);
  const bad: Inventory = { ...good, servers: { ...good.servers, db_vip: '198.18.0.11' } };
  const err = catchError(() => saveCluster(bad, e));
  assert.ok(err instanceof InventoryError);
  assert.equal(err.source, 'cluster "fixture-lb"');
  assert.deepEqual(err.errors.map((x) => x.field), ['servers.db_vip']);
  assert.equal(existsSync(tablePath('fixture-lb', e)), false);
  saveCluster(good, e);
  const before = readFileSync(tablePath('fixture-lb', e), 'utf8');
  assert.throws(() => saveCluster(bad, e), InventoryError);
  assert.equal(readFileSync(tablePath('fixture-lb', e), 'utf8'), before);
  assert.throws(() => saveCluster({ ...good, cluster: '../escape' }, e), /cluster: "\.\.\/escape" is not a valid cluster name/);
});

test('a saved table edited into an invalid one is refused on load, naming the cluster', () => {
  const e = fresh('edited');
  const path = saveCluster(loadConfigFile(LB), e);
  const data = JSON.parse(readFileSync(path, 'utf8'));
  data.servers.app2 = '198.18.0.300';
  writeFileSync(path, JSON.stringify(data));
  const err = catchError(() => loadCluster('fixture-lb', e)) as InventoryError;
  assert.equal(err.lines.length, 1);
  assert.match(err.lines[0]!, /^cluster "fixture-lb" \(.*table\.json\): servers\.app2: "198\.18\.0\.300" is not a valid IPv4/);
  writeFileSync(path, '{ not json');
  assert.match(catchError(() => loadCluster('fixture-lb', e)).message, /^cluster "fixture-lb": .* is not readable JSON/);
});

test('export writes YAML that loads back; import validates, saves, and protects a different saved table', () => {
  const e = fresh('import');
  const out = join(e.HA_SETUP_HOME!, 'out.yaml');
  const first = importConfigFile(LB, {}, e);
  assert.equal(first.previous, 'none');
  assert.deepEqual(loadCluster('fixture-lb', e), loadConfigFile(LB));
  const yaml = exportCluster('fixture-lb', out, e);
  assert.equal(readFileSync(out, 'utf8'), yaml);
  assert.deepEqual(loadConfigFile(out), loadConfigFile(LB));
  assert.equal(importConfigFile(out, {}, e).previous, 'same');

  writeFileSync(out, yaml.replace('198.18.0.17', '198.18.0.27'));
  assert.throws(() => importConfigFile(out, {}, e), /already has a different saved table .*pass --force/);
  assert.equal(loadCluster('fixture-lb', e)!.servers.lb, '198.18.0.17');
  assert.equal(importConfigFile(out, { force: true }, e).previous, 'replaced');
  assert.equal(loadCluster('fixture-lb', e)!.servers.lb, '198.18.0.27');

  assert.throws(() => importConfigFile(fixture('bad-table.yaml'), {}, e), InventoryError);
  assert.throws(() => exportCluster('missing', undefined, e), /no saved cluster "missing": saved clusters: fixture-lb/);
});

test('resolveInventory: --config, else the saved cluster (default "default"), else how to make one', async () => {
  const e = fresh('resolve');
  await assert.rejects(resolveInventory({}, e), { message: NO_TABLE });
  assert.equal(NO_TABLE, 'no server table: run `ha-setup` (the wizard) or pass --config FILE');
  assert.equal((await resolveInventory({ config: LB }, e)).cluster, 'fixture-lb');
  await assert.rejects(resolveInventory({ config: LB, cluster: 'other' }, e), /--cluster other does not match cluster: fixture-lb/);
  await assert.rejects(resolveInventory({ config: '/nonexistent/x.yaml' }, e), { message: '--config: cannot read /nonexistent/x.yaml: no such file' });

  saveCluster(loadConfigFile(K8S), e);
  await assert.rejects(resolveInventory({}, e), /no server table: .* --cluster \(fixture-k8s\)/);
  assert.equal((await resolveInventory({ cluster: 'fixture-k8s' }, e)).topology, 'k8s');
  await assert.rejects(resolveInventory({ cluster: 'prod' }, e), /cluster "prod" is not saved; saved clusters: fixture-k8s/);
  await assert.rejects(resolveInventory({ cluster: 'a b' }, e), /^Error: --cluster: cluster name "a b" is not valid/);

  saveCluster({ ...loadConfigFile(LB), cluster: 'default' }, e);
  assert.equal((await resolveInventory({}, e)).cluster, 'default');
});
