import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SecretStore } from '../../source/engine/secrets.js';
import { clusterDir } from '../../source/paths.js';
import { tempHome } from '../helpers/fake-transport.js';

test('a secret is created on first use, saved 0600 in a 0700 dir before it is returned, and stable', () => {
  const { env } = tempHome();
  const dir = clusterDir('test', env);
  const store = new SecretStore(dir);
  const s = store.get('postgres_replicator');
  assert.match(s.reveal(), /^[A-Za-z0-9_-]{24}$/);
  assert.equal(s.masked, '<postgres_replicator: 24 characters>');
  assert.equal(String(s), s.masked);
  assert.equal(JSON.stringify({ s }), `{"s":"${s.masked}"}`);
  const file = join(dir, 'secrets.json');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  assert.equal(JSON.parse(readFileSync(file, 'utf8')).secrets.postgres_replicator, s.reveal());
  assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith('.tmp')), []);
  // Same value later, from another store object (another process).
  assert.equal(new SecretStore(dir).get('postgres_replicator').reveal(), s.reveal());
  const other = store.get('app_user');
  assert.notEqual(other.reveal(), s.reveal());
  assert.deepEqual(store.all().map((x) => x.name).sort(), ['app_user', 'postgres_replicator']);
});

test('per-name length: keepalived auth_pass is 8 characters; explicit lengths are honoured', () => {
  const { env } = tempHome();
  const store = new SecretStore(clusterDir('test', env));
  assert.equal(store.get('keepalived_db_auth_pass').reveal().length, 8);
  assert.equal(store.get('long_one', { length: 40 }).reveal().length, 40);
  assert.throws(() => store.get('short', { length: 4 }), /secret "short": length 4 is out of range \(8..256\)/);
  assert.throws(() => store.get('bad name'), /secret name "bad name" is not valid/);
  // Values use the whole alphabet and differ (not a constant).
  const values = new Set(Array.from({ length: 50 }, (_, i) => store.get(`n${i}`).reveal()));
  assert.equal(values.size, 50);
});

test('a secrets file readable by others is refused with the chmod fix', () => {
  const { env } = tempHome();
  const dir = clusterDir('test', env);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'secrets.json');
  writeFileSync(file, JSON.stringify({ version: 1, secrets: { a: 'abcdefgh' } }));
  chmodSync(file, 0o644);
  const store = new SecretStore(dir);
  const expected = `secrets file ${file} has mode 0644, readable by other users; run: chmod 600 ${file}`;
  assert.throws(() => store.get('a'), { message: expected });
  assert.throws(() => store.all(), { message: expected });
  chmodSync(file, 0o600);
  assert.equal(store.get('a').reveal(), 'abcdefgh');
});
