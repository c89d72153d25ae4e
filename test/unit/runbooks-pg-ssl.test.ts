/**
 * The cluster CA and the server certificates of pg-ssl: deterministic ECDSA checked against the
 * RFC 6979 test vector, certificates checked by OpenSSL and by a real TLS handshake on loopback
 * (a client that verifies the chain and the DB VIP name, as libpq's sslmode=verify-full does).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createPublicKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkServerIdentity, connect, createServer } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { createHostContext, tableOf } from '../../source/engine/context.js';
import { Secret } from '../../source/engine/shell.js';
import type { NetFacts } from '../../runbooks/lib/pg-facts.js';
import { CA_SECRET, certProblem, certSans, clusterCa, keyFromScalar, nodeSans, serverCertificate, signDeterministic, type San } from '../../runbooks/pg-ssl.js';

function derIntegers(sig: Buffer): [string, string] {
  // SEQUENCE { INTEGER r, INTEGER s } with short lengths (P-256).
  const rLen = sig[3]!;
  const r = sig.subarray(4, 4 + rLen);
  const s = sig.subarray(4 + rLen + 2, 4 + rLen + 2 + sig[4 + rLen + 1]!);
  const hex = (b: Buffer): string => b.toString('hex').replace(/^00/, '').toUpperCase();
  return [hex(r), hex(s)];
}

test('deterministic ECDSA matches RFC 6979 A.2.5 (P-256, SHA-256, message "sample")', () => {
  const key = keyFromScalar(0xc9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721n);
  const sig = signDeterministic(key, Buffer.from('sample'));
  assert.deepEqual(derIntegers(sig), ['EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716', 'F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8']);
  const sig2 = signDeterministic(key, Buffer.from('test'));
  assert.deepEqual(derIntegers(sig2), ['F1ABB023518351CD71D881567B1EA663ED3EFCF6C5132B354F28D3B0B7D38367', '019F4113742A2B14BD25926B49C649155F267E60D3814B4C0CC84250E46F0083']);
});

const SEED = 'fixture-ca-seed-0123456789';
const sansA: San[] = [
  { kind: 'ip', value: '198.18.0.100' },
  { kind: 'ip', value: '198.18.0.11' },
  { kind: 'dns', value: 'db1' },
  { kind: 'dns', value: 'db1.example.net' },
];

function nodeKey() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, pubPem: publicKey.export({ type: 'spki', format: 'pem' }) as string };
}

test('the cluster CA is the same on every run for a cluster, different for another secret', () => {
  const a = clusterCa(SEED, 'fixture-lb');
  assert.equal(clusterCa(SEED, 'fixture-lb').certPem, a.certPem);
  assert.notEqual(clusterCa(`${SEED}x`, 'fixture-lb').certPem, a.certPem);
  const ca = new X509Certificate(a.certPem);
  assert.equal(ca.ca, true);
  assert.equal(ca.subject, 'O=ha-setup\nCN=ha-setup PostgreSQL CA (fixture-lb)');
  assert.equal(ca.checkIssued(ca), true, 'self-signed');
  assert.ok(ca.verify(ca.publicKey));
  assert.equal(new Date(ca.validTo).getUTCFullYear(), 2049);
});

test('a server certificate: signed by the CA, the VIP and node names in subjectAltName, deterministic for the same facts', () => {
  const ca = clusterCa(SEED, 'fixture-lb');
  const { pubPem } = nodeKey();
  const now = 1767225600;
  const pem = serverCertificate(ca, pubPem, sansA, '198.18.0.100', now);
  assert.equal(serverCertificate(ca, pubPem, sansA, '198.18.0.100', now), pem, 'same facts, same bytes');
  const cert = new X509Certificate(pem);
  assert.ok(cert.verify(ca.key.publicKey));
  assert.equal(cert.checkIssued(new X509Certificate(ca.certPem)), true);
  assert.equal(cert.ca, false);
  assert.deepEqual(certSans(cert), sansA);
  assert.equal(cert.checkIP('198.18.0.100'), '198.18.0.100');
  assert.equal(cert.checkHost('db1.example.net'), 'db1.example.net');
  assert.equal(cert.checkIP('198.18.0.12'), undefined);
  assert.equal(cert.publicKey.export({ type: 'spki', format: 'der' }).equals(createPublicKey(pubPem).export({ type: 'spki', format: 'der' })), true);
  assert.equal(new Date(cert.validFrom).getTime() / 1000, now - 86400);
  assert.ok(cert.keyUsage === undefined || cert.keyUsage.includes('1.3.6.1.5.5.7.3.1'), `extended key usage serverAuth: ${cert.keyUsage}`);

  assert.equal(certProblem(pem, ca, pubPem, sansA, now), null);
  assert.equal(certProblem(pem, clusterCa('other-seed-0123456789ab', 'fixture-lb'), pubPem, sansA, now), "not issued by this cluster's CA");
  assert.equal(certProblem(pem, ca, nodeKey().pubPem, sansA, now), 'does not match /etc/ha-setup/pg-tls/server.key');
  assert.equal(certProblem(pem, ca, pubPem, sansA.slice(0, 2), now), 'names differ (-dns:db1 -dns:db1.example.net)');
  assert.equal(certProblem(pem, ca, pubPem, [...sansA, { kind: 'ip', value: '198.18.0.111' }], now), 'names differ (+ip:198.18.0.111)');
  assert.equal(certProblem(pem, ca, pubPem, sansA, now + 710 * 86400), 'expires in 19 days');
  assert.equal(certProblem('garbage', ca, pubPem, sansA, now), '/etc/ha-setup/pg-tls/server.crt is not a readable certificate');
  assert.equal(certProblem(null, ca, pubPem, sansA, now), 'no certificate yet');
});

test('openssl accepts the chain (openssl verify) and reads the extensions', (t) => {
  if (spawnSync('openssl', ['version']).status !== 0) return t.skip('no openssl on this machine');
  const dir = mkdtempSync(join(tmpdir(), 'ha-setup-pgssl-'));
  try {
    const ca = clusterCa(SEED, 'fixture-lb');
    const { pubPem } = nodeKey();
    writeFileSync(join(dir, 'ca.crt'), ca.certPem);
    writeFileSync(join(dir, 'server.crt'), serverCertificate(ca, pubPem, sansA, '198.18.0.100', Math.floor(Date.now() / 1000)));
    const v = spawnSync('openssl', ['verify', '-CAfile', join(dir, 'ca.crt'), join(dir, 'server.crt')], { encoding: 'utf8' });
    assert.equal(v.status, 0, v.stderr + v.stdout);
    const text = spawnSync('openssl', ['x509', '-in', join(dir, 'server.crt'), '-noout', '-text'], { encoding: 'utf8' }).stdout;
    assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
    assert.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
    assert.match(text, /X509v3 Extended Key Usage:\s+TLS Web Server Authentication/);
    assert.match(text, /IP Address:198\.18\.0\.100, IP Address:198\.18\.0\.11, DNS:db1, DNS:db1\.example\.net/);
    const catext = spawnSync('openssl', ['x509', '-in', join(dir, 'ca.crt'), '-noout', '-text'], { encoding: 'utf8' }).stdout;
    assert.match(catext, /CA:TRUE/);
    assert.match(catext, /Certificate Sign, CRL Sign/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A TLS server on 127.0.0.1 with the node's key and certificate; a client that trusts only the CA. */
async function handshake(serverPem: string, keyPem: string, caPem: string, name: string): Promise<string> {
  const server = createServer({ key: keyPem, cert: serverPem }, (s) => s.end('ok'));
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const port = (server.address() as AddressInfo).port;
  try {
    return await new Promise<string>((resolve) => {
      const sock = connect({ host: '127.0.0.1', port, ca: caPem, checkServerIdentity: (_h, cert) => checkServerIdentity(name, cert) }, () => {
        sock.once('data', () => resolve('ok'));
      });
      sock.on('error', (e) => resolve(`error: ${(e as NodeJS.ErrnoException).code ?? e.message}`));
    });
  } finally {
    server.close();
  }
}

test('TLS on loopback: a client with the CA accepts the node under the DB VIP name, refuses other names and other CAs', async () => {
  const ca = clusterCa(SEED, 'fixture-lb');
  const { keyPem, pubPem } = nodeKey();
  const pem = serverCertificate(ca, pubPem, sansA, '198.18.0.100', Math.floor(Date.now() / 1000));
  assert.equal(await handshake(pem, keyPem, ca.certPem, '198.18.0.100'), 'ok');
  assert.equal(await handshake(pem, keyPem, ca.certPem, 'db1.example.net'), 'ok');
  assert.equal(await handshake(pem, keyPem, ca.certPem, '198.18.0.12'), 'error: ERR_TLS_CERT_ALTNAME_INVALID');
  assert.match(await handshake(pem, keyPem, clusterCa('another-seed-0123456789', 'x').certPem, '198.18.0.100'), /^error: /);
});

test("a node's names: the VIP, its table address, its global addresses (not other VIPs), host name and FQDN", () => {
  const table = tableOf({ servers: { db_primary: '198.18.0.11', db_standby: '198.18.0.12', db_vip: '198.18.0.100', nfs_vip: '198.18.0.101' } });
  const ctx = createHostContext({ host: table.hosts.db_primary!, table, options: { cluster: 't' }, secret: (n) => new Secret(n, `v-${n}`) });
  const net: NetFacts = {
    hostname: 'DB1',
    fqdn: 'db1.example.net',
    addresses: [
      { iface: 'lo', family: 'inet', address: '127.0.0.1', prefix: 8, scope: 'host' },
      { iface: 'eth0', family: 'inet', address: '198.18.0.11', prefix: 24, scope: 'global' },
      { iface: 'eth0', family: 'inet', address: '198.18.0.100', prefix: 24, scope: 'global' },
      { iface: 'eth0', family: 'inet', address: '198.18.0.101', prefix: 24, scope: 'global' },
      { iface: 'eth1', family: 'inet', address: '198.18.0.211', prefix: 24, scope: 'global' },
      { iface: 'eth0', family: 'inet6', address: 'fe80::1', prefix: 64, scope: 'link' },
    ],
  };
  assert.deepEqual(nodeSans(ctx, net), [
    { kind: 'ip', value: '198.18.0.100' },
    { kind: 'ip', value: '198.18.0.11' },
    { kind: 'ip', value: '198.18.0.211' },
    { kind: 'dns', value: 'db1' },
    { kind: 'dns', value: 'db1.example.net' },
  ]);
  assert.equal(CA_SECRET, 'postgres.tls-ca-seed');
});
