import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateInventory } from '../../source/inventory/validate.js';
import { parseConfigYaml, toYaml } from '../../source/inventory/load.js';

const dbPair = { db_primary: '198.18.0.11', db_standby: '198.18.0.12', db_vip: '198.18.0.100' };

test('a table without partial: true must list every role of its topology', () => {
  const r = validateInventory({ cluster: 'db', topology: 'lb', servers: dbPair });
  assert.equal(r.ok, false);
  if (!r.ok) assert.ok(r.errors.some((e) => e.field === 'servers.lb' && /not set/.test(e.message)));
});

test('partial: true accepts a table with only the database pair, and keeps every other rule', () => {
  const ok = validateInventory({ cluster: 'db', topology: 'lb', partial: true, servers: dbPair, network: { prefix: 24 } });
  assert.equal(ok.ok, true);
  if (ok.ok) assert.equal(ok.inventory.partial, true);
  const bad = validateInventory({ cluster: 'db', topology: 'lb', partial: true, servers: { ...dbPair, db_standby: '198.18.0.11' } });
  assert.equal(bad.ok, false);
  if (!bad.ok) assert.ok(bad.errors.some((e) => e.field === 'servers.db_standby' && /db_primary/.test(e.message)));
});

test('partial survives the YAML round trip', () => {
  const inv = parseConfigYaml(`cluster: db\ntopology: lb\npartial: true\nservers:\n  db_primary: 198.18.0.11\n  db_standby: 198.18.0.12\n`, 'x.yaml');
  assert.equal(inv.partial, true);
  const again = parseConfigYaml(toYaml(inv), 'y.yaml');
  assert.deepEqual(again, inv);
  assert.match(toYaml(inv), /^partial: true$/m);
});
