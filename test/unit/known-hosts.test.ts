import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  appendKnownHost,
  fingerprint,
  formatKnownHostLine,
  keyTypeOf,
  knownHostName,
  knownKeyTypes,
  lookupHostKey,
  parseKnownHosts,
  readKnownHosts,
} from '../../source/transport/known-hosts.js';

const hasKeygen = spawnSync('ssh-keygen', ['-?']).error === undefined;
let dir = '';
const keys: Record<string, { blob: Buffer; pub: string; line: string }> = {};

function makeKey(name: string, type: string, bits?: number): void {
  const path = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', type, ...(bits ? ['-b', String(bits)] : []), '-N', '', '-C', name, '-f', path], { stdio: 'ignore' });
  const line = readFileSync(`${path}.pub`, 'utf8').trim();
  keys[name] = { blob: Buffer.from(line.split(' ')[1]!, 'base64'), pub: `${path}.pub`, line };
}

describe('known_hosts', { skip: hasKeygen ? false : 'ssh-keygen is not installed (run bash scripts/host-setup.sh)' }, () => {
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'ha-setup-kh-'));
    makeKey('ed', 'ed25519');
    makeKey('ed2', 'ed25519');
    makeKey('rsa', 'rsa', 2048);
    makeKey('ecdsa', 'ecdsa', 256);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('fingerprint is exactly what ssh-keygen -lf prints, for ed25519, rsa and ecdsa keys', () => {
    for (const name of ['ed', 'rsa', 'ecdsa']) {
      const k = keys[name]!;
      const printed = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', k.pub], { encoding: 'utf8' }).split(' ')[1];
      assert.match(printed!, /^SHA256:[A-Za-z0-9+/]{43}$/);
      assert.equal(fingerprint(k.blob), printed);
    }
  });

  test('keyTypeOf reads the type inside the blob', () => {
    assert.equal(keyTypeOf(keys.ed!.blob), 'ssh-ed25519');
    assert.equal(keyTypeOf(keys.rsa!.blob), 'ssh-rsa');
    assert.equal(keyTypeOf(keys.ecdsa!.blob), 'ecdsa-sha2-nistp256');
    assert.equal(keyTypeOf(Buffer.from([0, 0])), 'unknown');
  });

  test('parse: plain, comma lists, [host]:port, markers, comments, junk; line numbers kept', () => {
    const ed = keys.ed!.line.split(' ').slice(0, 2).join(' ');
    const rsa = keys.rsa!.line.split(' ').slice(0, 2).join(' ');
    const text = [
      '# comment',
      '',
      `db1,198.18.0.11 ${ed} a comment`,
      `[198.18.0.12]:2222 ${rsa}`,
      `@revoked * ${rsa}`,
      `@cert-authority *.example ${ed}`,
      `@weird host ${ed}`,
      'broken-line-without-key',
      `old 1024 35 12345`,
    ].join('\n');
    const e = parseKnownHosts(text, '/x/known_hosts');
    assert.equal(e.length, 4);
    assert.deepEqual(e[0]!.patterns, ['db1', '198.18.0.11']);
    assert.equal(e[0]!.line, 3);
    assert.equal(e[0]!.file, '/x/known_hosts');
    assert.ok(e[0]!.key.equals(keys.ed!.blob));
    assert.deepEqual(e[1]!.patterns, ['[198.18.0.12]:2222']);
    assert.equal(e[1]!.keyType, 'ssh-rsa');
    assert.equal(e[2]!.marker, 'revoked');
    assert.equal(e[2]!.line, 5);
    assert.equal(e[3]!.marker, 'cert-authority');
  });

  test('lookup: match, changed with file and line, unknown with the known types, port forms', () => {
    const ed = keys.ed!.line.split(' ').slice(0, 2).join(' ');
    const rsa = keys.rsa!.line.split(' ').slice(0, 2).join(' ');
    const e = parseKnownHosts([`db1,198.18.0.11 ${ed}`, `[198.18.0.12]:2222 ${rsa}`, `198.18.0.13 ${rsa}`].join('\n'), 'kh');
    assert.deepEqual(lookupHostKey(e, '198.18.0.11', 22, keys.ed!.blob), { status: 'match', file: 'kh', line: 1 });
    assert.deepEqual(lookupHostKey(e, 'DB1', 22, keys.ed!.blob), { status: 'match', file: 'kh', line: 1 });
    // same type, other key: changed
    assert.deepEqual(lookupHostKey(e, '198.18.0.11', 22, keys.ed2!.blob), { status: 'changed', file: 'kh', line: 1, keyType: 'ssh-ed25519' });
    // the entry for port 22 does not cover port 2200
    assert.deepEqual(lookupHostKey(e, '198.18.0.11', 2200, keys.ed!.blob), { status: 'unknown', otherKeyTypes: [] });
    assert.deepEqual(lookupHostKey(e, '198.18.0.12', 2222, keys.rsa!.blob), { status: 'match', file: 'kh', line: 2 });
    assert.equal(lookupHostKey(e, '198.18.0.12', 22, keys.rsa!.blob).status, 'unknown');
    // another key type than the one known: unknown, and says which types are known
    assert.deepEqual(lookupHostKey(e, '198.18.0.13', 22, keys.ed!.blob), { status: 'unknown', otherKeyTypes: ['ssh-rsa'] });
    assert.deepEqual(knownKeyTypes(e, '198.18.0.13', 22), ['ssh-rsa']);
  });

  test('lookup: wildcards, negation and @revoked', () => {
    const ed = keys.ed!.line.split(' ').slice(0, 2).join(' ');
    const e = parseKnownHosts([`198.18.0.*,!198.18.0.99 ${ed}`, `@revoked 198.18.0.50 ${ed}`].join('\n'), 'kh');
    assert.equal(lookupHostKey(e, '198.18.0.7', 22, keys.ed!.blob).status, 'match');
    assert.equal(lookupHostKey(e, '198.18.0.99', 22, keys.ed!.blob).status, 'unknown');
    assert.deepEqual(lookupHostKey(e, '198.18.0.50', 22, keys.ed!.blob), { status: 'revoked', file: 'kh', line: 2 });
  });

  test('hashed entries written by ssh-keygen -H are matched; ours are found by ssh-keygen -F', async () => {
    const file = join(dir, 'hashed_known_hosts');
    const ed = keys.ed!.line.split(' ').slice(0, 2).join(' ');
    writeFileSync(file, `[198.18.0.21]:2222 ${ed}\n198.18.0.22 ${ed}\n`);
    execFileSync('ssh-keygen', ['-H', '-f', file], { stdio: 'ignore' });
    const text = readFileSync(file, 'utf8');
    assert.ok(!text.includes('198.18.0.2'), 'ssh-keygen hashed the names');
    const e = await readKnownHosts([file, join(dir, 'missing')]);
    assert.ok(e.every((x) => x.hashed));
    assert.equal(lookupHostKey(e, '198.18.0.21', 2222, keys.ed!.blob).status, 'match');
    assert.equal(lookupHostKey(e, '198.18.0.22', 22, keys.ed!.blob).status, 'match');
    assert.equal(lookupHostKey(e, '198.18.0.21', 22, keys.ed!.blob).status, 'unknown');

    const ours = join(dir, 'ours');
    assert.equal(await appendKnownHost(ours, '198.18.0.31', 2222, keys.rsa!.blob, { hashed: true }), 1);
    assert.equal(await appendKnownHost(ours, '198.18.0.32', 22, keys.ed!.blob), 2);
    const lines = readFileSync(ours, 'utf8').split('\n');
    assert.match(lines[0]!, /^\|1\|[A-Za-z0-9+/=]+\|[A-Za-z0-9+/=]+ ssh-rsa /);
    assert.equal(lines[1], `198.18.0.32 ${ed}`);
    for (const name of ['[198.18.0.31]:2222', '198.18.0.32']) {
      const r = spawnSync('ssh-keygen', ['-F', name, '-f', ours], { encoding: 'utf8' });
      assert.equal(r.status, 0, `ssh-keygen -F ${name} finds the appended key`);
    }
    const back = await readKnownHosts([ours]);
    assert.deepEqual(lookupHostKey(back, '198.18.0.31', 2222, keys.rsa!.blob), { status: 'match', file: ours, line: 1 });
  });

  test('append adds the missing newline of a hand-edited file and keeps line numbers right', async () => {
    const file = join(dir, 'no_newline');
    const ed = keys.ed!.line.split(' ').slice(0, 2).join(' ');
    writeFileSync(file, `a ${ed}`);
    assert.equal(await appendKnownHost(file, 'b', 22, keys.ed!.blob), 2);
    assert.equal(readFileSync(file, 'utf8'), `a ${ed}\nb ${ed}\n`);
    assert.equal(knownHostName('DB1', 22), 'db1');
    assert.equal(knownHostName('198.18.0.1', 2222), '[198.18.0.1]:2222');
    assert.equal(formatKnownHostLine('h', 22, keys.ed!.blob), `h ${ed}`);
  });
});
