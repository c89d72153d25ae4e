/**
 * TLS for PostgreSQL: one CA per cluster and a server certificate per DB node whose
 * subjectAltName holds the DB VIP, the node's addresses and host names, so that a client with
 * sslmode=verify-full and the CA file accepts whichever node holds the VIP.
 *
 * Where the CA key lives, and why: on the jump host only, as a 24-character secret in the
 * cluster's secrets file (0600, in a 0700 directory, next to the database passwords), from
 * which the P-256 CA key is derived. It never goes to a server: a CA key on the primary would
 * sit on a machine the app network reaches, and signing the standby's certificate there would
 * need files copied between servers. Deriving the key from a stored secret keeps plan() pure
 * and its output byte-stable: certificates are built here, in TypeScript, and signed with
 * deterministic ECDSA (RFC 6979), so the same facts give the same certificate.
 *
 * Each node's private key is generated on the node (openssl) and never leaves it: the plan
 * reads only its public key.
 */
import { createECDH, createHash, createHmac, createPrivateKey, createPublicKey, verify as verifySignature, X509Certificate, type KeyObject } from 'node:crypto';
import ipaddr from 'ipaddr.js';
import { clusterName } from '../source/engine/context.js';
import { sh } from '../source/engine/shell.js';
import { defineStep, done, type Action, type HostContext, type Runbook } from '../source/engine/step.js';
import { osFact } from './lib/host-facts.js';
import { pgOptions } from './lib/options.js';
import { netFact, pgFact, tlsFact, type NetFacts } from './lib/pg-facts.js';
import { DB_NODES, DROPIN, layoutFor, pendingAction, renderAsset, TLS } from './lib/pg-layout.js';
import { dropInPlan, renderConf, sslSettings } from './lib/pg-settings.js';

export const CA_SECRET = 'postgres.tls-ca-seed';
/** Server certificates are valid this long and re-issued when fewer than RENEW_DAYS remain. */
export const CERT_DAYS = 730;
export const RENEW_DAYS = 30;

// ---------------------------------------------------------------------------------------------
// DER

function derLen(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const tlv = (tag: number, ...content: Buffer[]): Buffer => {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), derLen(body.length), body]);
};
const seq = (...c: Buffer[]): Buffer => tlv(0x30, ...c);
const set = (...c: Buffer[]): Buffer => tlv(0x31, ...c);
const octets = (b: Buffer): Buffer => tlv(0x04, b);
const bits = (b: Buffer, unused = 0): Buffer => tlv(0x03, Buffer.from([unused]), b);
const explicit = (n: number, c: Buffer): Buffer => tlv(0xa0 + n, c);
const TRUE = Buffer.from([0x01, 0x01, 0xff]);

function derInt(v: bigint | Buffer): Buffer {
  let b = typeof v === 'bigint' ? Buffer.from(v.toString(16).padStart(2, '0').replace(/^(.(.{2})*)$/, '0$1'), 'hex') : Buffer.from(v);
  while (b.length > 1 && b[0] === 0 && b[1]! < 0x80) b = b.subarray(1);
  if (b[0]! >= 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(0x02, b);
}

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const out = [a! * 40 + b!];
  for (const n of rest) {
    const enc = [n & 0x7f];
    for (let v = n >> 7; v > 0; v >>= 7) enc.unshift((v & 0x7f) | 0x80);
    out.push(...enc);
  }
  return tlv(0x06, Buffer.from(out));
}

function derTime(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14); // YYYYMMDDHHMMSS
  const y = d.getUTCFullYear();
  return y < 2050 ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`)) : tlv(0x18, Buffer.from(`${iso}Z`));
}

function name(cn: string): Buffer {
  const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));
  return seq(set(seq(oid('2.5.4.10'), utf8('ha-setup'))), set(seq(oid('2.5.4.3'), utf8(cn))));
}

/** The subjectPublicKey bits of a SubjectPublicKeyInfo (for the key identifier). */
function spkiKeyBits(spki: Buffer): Buffer {
  const read = (buf: Buffer, off: number): { tag: number; start: number; end: number } => {
    const tag = buf[off]!;
    let len = buf[off + 1]!;
    let start = off + 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      len = 0;
      for (let i = 0; i < n; i++) len = (len << 8) | buf[start + i]!;
      start += n;
    }
    return { tag, start, end: start + len };
  };
  const outer = read(spki, 0);
  const alg = read(spki, outer.start);
  const key = read(spki, alg.end);
  if (outer.tag !== 0x30 || alg.tag !== 0x30 || key.tag !== 0x03) throw new Error('not a SubjectPublicKeyInfo');
  return spki.subarray(key.start + 1, key.end);
}
const keyId = (spki: Buffer): Buffer => createHash('sha1').update(spkiKeyBits(spki)).digest();

export function pem(label: string, der: Buffer): string {
  const b = der.toString('base64').match(/.{1,64}/g)!.join('\n');
  return `-----BEGIN ${label}-----\n${b}\n-----END ${label}-----\n`;
}

// ---------------------------------------------------------------------------------------------
// Deterministic ECDSA P-256 (RFC 6979, HMAC-SHA256)

const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const toBig = (b: Buffer): bigint => BigInt(`0x${b.toString('hex') || '0'}`);
const to32 = (n: bigint): Buffer => Buffer.from(n.toString(16).padStart(64, '0'), 'hex');
function modpow(base: bigint, exp: bigint, m: bigint): bigint {
  let r = 1n;
  let b = base % m;
  for (let e = exp; e > 0n; e >>= 1n) {
    if (e & 1n) r = (r * b) % m;
    b = (b * b) % m;
  }
  return r;
}
const hmac = (key: Buffer, ...parts: Buffer[]): Buffer => createHmac('sha256', key).update(Buffer.concat(parts)).digest();

/** The x coordinate of k*G (via ECDH: the public key of private key k). */
function pointX(k: bigint): bigint {
  const e = createECDH('prime256v1');
  e.setPrivateKey(to32(k));
  return toBig(e.getPublicKey().subarray(1, 33));
}

export interface CaKey {
  d: bigint;
  privateKey: KeyObject;
  publicKey: KeyObject;
  spki: Buffer;
}

export function keyFromScalar(d: bigint): CaKey {
  const e = createECDH('prime256v1');
  e.setPrivateKey(to32(d));
  const pub = e.getPublicKey();
  const b64u = (b: Buffer): string => b.toString('base64url');
  const privateKey = createPrivateKey({ key: { kty: 'EC', crv: 'P-256', d: b64u(to32(d)), x: b64u(pub.subarray(1, 33)), y: b64u(pub.subarray(33, 65)) }, format: 'jwk' });
  const publicKey = createPublicKey(privateKey);
  return { d, privateKey, publicKey, spki: publicKey.export({ type: 'spki', format: 'der' }) };
}

/** ECDSA-with-SHA256 signature (DER), the same bytes for the same key and message. */
export function signDeterministic(key: CaKey, message: Buffer): Buffer {
  const h1 = createHash('sha256').update(message).digest();
  const e = toBig(h1);
  const x = to32(key.d);
  const h = to32(e % N);
  let K = hmac(Buffer.alloc(32, 0), Buffer.alloc(32, 1), Buffer.from([0]), x, h);
  let V = hmac(K, Buffer.alloc(32, 1));
  K = hmac(K, V, Buffer.from([1]), x, h);
  V = hmac(K, V);
  for (;;) {
    V = hmac(K, V);
    const k = toBig(V);
    if (k >= 1n && k < N) {
      const r = pointX(k) % N;
      const s = (modpow(k, N - 2n, N) * ((e + r * key.d) % N)) % N;
      if (r !== 0n && s !== 0n) {
        const sig = seq(derInt(r), derInt(s));
        if (!verifySignature('sha256', message, key.publicKey, sig)) throw new Error('bug: ECDSA signature does not verify');
        return sig;
      }
    }
    K = hmac(K, V, Buffer.from([0]));
    V = hmac(K, V);
  }
}

// ---------------------------------------------------------------------------------------------
// The cluster CA and server certificates

export interface ClusterCa {
  key: CaKey;
  subject: Buffer;
  keyId: Buffer;
  certPem: string;
}

const ECDSA_SHA256 = '1.2.840.10045.4.3.2';
const ext = (id: string, critical: boolean, value: Buffer): Buffer => seq(oid(id), ...(critical ? [TRUE] : []), octets(value));

function certificate(tbs: Buffer, key: CaKey): Buffer {
  return seq(tbs, seq(oid(ECDSA_SHA256)), bits(signDeterministic(key, tbs)));
}

const caCache = new Map<string, ClusterCa>();

/** The cluster's CA, derived from its secret: the same CA certificate on every run. */
export function clusterCa(seed: string, cluster: string): ClusterCa {
  const cacheKey = createHash('sha256').update(`${seed}\0${cluster}`).digest('hex');
  const hit = caCache.get(cacheKey);
  if (hit) return hit;
  let d = 0n;
  for (let i = 0; d === 0n || d >= N; i++) d = toBig(hmac(Buffer.from(seed, 'utf8'), Buffer.from(`ha-setup postgres CA key ${i}`)));
  const key = keyFromScalar(d);
  const subject = name(`ha-setup PostgreSQL CA (${cluster})`);
  const id = keyId(key.spki);
  const serial = Buffer.from(createHash('sha256').update(Buffer.concat([Buffer.from('ca'), key.spki])).digest().subarray(0, 16));
  serial[0]! &= 0x7f;
  const tbs = seq(
    explicit(0, derInt(2n)),
    derInt(serial),
    seq(oid(ECDSA_SHA256)),
    subject,
    seq(derTime(new Date('2024-01-01T00:00:00Z')), derTime(new Date('2049-12-31T23:59:59Z'))),
    subject,
    key.spki,
    explicit(3, seq(
      ext('2.5.29.19', true, seq(TRUE)), // basicConstraints CA:TRUE
      ext('2.5.29.15', true, bits(Buffer.from([0x06]), 1)), // keyUsage keyCertSign, cRLSign
      ext('2.5.29.14', false, octets(id)),
    )),
  );
  const ca = { key, subject, keyId: id, certPem: pem('CERTIFICATE', certificate(tbs, key)) };
  caCache.set(cacheKey, ca);
  return ca;
}

export function caOf(ctx: HostContext): ClusterCa {
  return clusterCa(ctx.secret(CA_SECRET).reveal(), clusterName(ctx));
}

export interface San {
  kind: 'dns' | 'ip';
  value: string;
}

const normIp = (s: string): string => ipaddr.process(s).toString();

/** The names a node's certificate carries: the DB VIP, the node's table address, its global addresses, host names. */
export function nodeSans(ctx: HostContext, net: NetFacts): San[] {
  const otherVips = new Set(Object.entries(ctx.addresses).filter(([a, v]) => a !== 'db_vip' && v).map(([, v]) => v!));
  const raw = [
    ctx.addresses.db_vip,
    ctx.host.address,
    ...net.addresses.filter((a) => a.scope === 'global' && !otherVips.has(a.address)).map((a) => a.address),
    net.hostname,
    net.fqdn,
  ].filter((v): v is string => Boolean(v) && v !== 'localhost');
  const seen = new Set<string>();
  const out: San[] = [];
  for (const v of raw) {
    const san: San = ipaddr.isValid(v) ? { kind: 'ip', value: normIp(v) } : { kind: 'dns', value: v.toLowerCase() };
    if (san.kind === 'dns' && !/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(san.value)) continue;
    const k = `${san.kind}:${san.value}`;
    if (!seen.has(k)) {
      seen.add(k);
      out.push(san);
    }
  }
  return out;
}

/** A server certificate for `spki`, signed by the CA; `now` is the host's clock (a fact). */
export function serverCertificate(ca: ClusterCa, spkiPem: string, sans: San[], cn: string, now: number): string {
  const spki = createPublicKey(spkiPem).export({ type: 'spki', format: 'der' });
  const day = 86_400;
  const notBefore = new Date((Math.floor(now / day) - 1) * day * 1000);
  const notAfter = new Date(notBefore.getTime() + CERT_DAYS * day * 1000);
  const names = sans.map((s) => (s.kind === 'ip' ? tlv(0x87, Buffer.from(ipaddr.parse(s.value).toByteArray())) : tlv(0x82, Buffer.from(s.value, 'ascii'))));
  const serial = Buffer.from(createHash('sha256').update(Buffer.concat([spki, Buffer.from(JSON.stringify(sans)), Buffer.from(String(notBefore.getTime()))])).digest().subarray(0, 16));
  serial[0]! &= 0x7f;
  const tbs = seq(
    explicit(0, derInt(2n)),
    derInt(serial),
    seq(oid(ECDSA_SHA256)),
    ca.subject,
    seq(derTime(notBefore), derTime(notAfter)),
    name(cn),
    spki,
    explicit(3, seq(
      ext('2.5.29.19', true, seq()), // basicConstraints CA:FALSE
      ext('2.5.29.15', true, bits(Buffer.from([0x80]), 7)), // keyUsage digitalSignature
      ext('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'))), // extKeyUsage serverAuth
      ext('2.5.29.17', false, seq(...names)), // subjectAltName
      ext('2.5.29.14', false, octets(keyId(spki))),
      ext('2.5.29.35', false, seq(tlv(0x80, ca.keyId))), // authorityKeyIdentifier
    )),
  );
  return pem('CERTIFICATE', certificate(tbs, ca.key));
}

/** SANs of a certificate as Node reports them ("DNS:a, IP Address:1.2.3.4"). */
export function certSans(cert: X509Certificate): San[] {
  return (cert.subjectAltName ?? '')
    .split(/,\s*/)
    .filter(Boolean)
    .map((e) => (e.startsWith('IP Address:') ? { kind: 'ip' as const, value: normIp(e.slice('IP Address:'.length)) } : { kind: 'dns' as const, value: e.replace(/^DNS:/, '').toLowerCase() }));
}

/** Why the certificate on the node must be (re)issued, or null when it is good. */
export function certProblem(existing: string | null, ca: ClusterCa, spkiPem: string, sans: San[], now: number): string | null {
  if (!existing) return 'no certificate yet';
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(existing);
  } catch {
    return `${TLS.cert} is not a readable certificate`;
  }
  if (!cert.verify(ca.key.publicKey) || !cert.checkIssued(new X509Certificate(ca.certPem))) return "not issued by this cluster's CA";
  const want = createPublicKey(spkiPem).export({ type: 'spki', format: 'der' });
  if (!cert.publicKey.export({ type: 'spki', format: 'der' }).equals(want)) return `does not match ${TLS.key}`;
  const key = (s: San): string => `${s.kind}:${s.value}`;
  const have = new Set(certSans(cert).map(key));
  const wantSet = new Set(sans.map(key));
  const missing = [...wantSet].filter((k) => !have.has(k));
  const extra = [...have].filter((k) => !wantSet.has(k));
  if (missing.length || extra.length) return `names differ (${[...missing.map((m) => `+${m}`), ...extra.map((e) => `-${e}`)].join(' ')})`;
  const left = (Date.parse(cert.validTo) / 1000 - now) / 86_400;
  if (left < RENEW_DAYS) return `expires in ${Math.max(0, Math.floor(left))} days`;
  return null;
}

// ---------------------------------------------------------------------------------------------
// Steps


const key = defineStep({
  id: 'pg-ssl.key',
  title: "Each DB node's private key (generated there, 0600, owner postgres)",
  targets: () => [...DB_NODES],
  facts: { tls: tlsFact },
  plan({ tls }) {
    const fixes: string[] = [];
    if (tls.key) {
      if (!tls.publicKeyPem) throw new Error(`${TLS.key} exists but openssl cannot read it; move it away so that ha-setup can create a new one`);
      if (tls.key.mode !== '600') fixes.push(sh`chmod 0600 ${TLS.key}`);
      if (tls.key.owner !== 'postgres' || tls.key.group !== 'postgres') fixes.push(sh`chown postgres:postgres ${TLS.key}`);
      if (fixes.length === 0) return done(`${TLS.key} exists (0600, postgres)`);
      return { actions: [{ kind: 'run', title: `fix mode and owner of ${TLS.key}`, script: fixes.join('\n'), sudo: true }], reason: `was ${tls.key.mode} ${tls.key.owner}:${tls.key.group}` };
    }
    const tmp = `${TLS.key}.new`;
    const script = [
      sh`install -d -m 0755 -o root -g root /etc/ha-setup`,
      sh`install -d -m 0750 -o root -g postgres ${TLS.dir}`,
      'umask 077',
      sh`openssl ecparam -name prime256v1 -genkey -noout -out ${tmp}`,
      sh`chown postgres:postgres ${tmp}`,
      sh`chmod 0600 ${tmp}`,
      sh`mv -f ${tmp} ${TLS.key}`,
    ].join('\n');
    return { actions: [{ kind: 'run', title: `generate a P-256 key in ${TLS.key}`, script, sudo: true }], reason: 'the key is made on the node and never leaves it' };
  },
});

const cert = defineStep({
  id: 'pg-ssl.cert',
  title: 'Server certificate (DB VIP, node addresses and names) and the cluster CA certificate',
  targets: () => [...DB_NODES],
  facts: (ctx) => ({ os: osFact, tls: tlsFact, net: netFact, pg: pgFact(pgOptions(ctx.options).version) }),
  inputs: (ctx) => [ctx.addresses.db_vip, ctx.host.address, caOf(ctx).certPem],
  plan({ os, tls, net, pg }, ctx) {
    if (!tls.publicKeyPem) return { actions: [pendingAction(`issue ${TLS.cert}`, `${TLS.key} exists (step pg-ssl.key)`)], reason: 'no key yet' };
    const ca = caOf(ctx);
    const sans = nodeSans(ctx, net);
    const cn = ctx.addresses.db_vip ?? ctx.host.address;
    const actions: Action[] = [];
    if (tls.ca !== ca.certPem) {
      actions.push({ kind: 'write', title: `write the cluster CA certificate ${TLS.ca}`, path: TLS.ca, content: ca.certPem, mode: 0o644, owner: 'root', group: 'postgres', previous: tls.ca });
    }
    const problem = certProblem(tls.cert, ca, tls.publicKeyPem, sans, tls.now);
    if (problem) {
      actions.push({
        kind: 'write',
        title: `issue ${TLS.cert} for ${sans.map((s) => s.value).join(', ')}`,
        path: TLS.cert,
        content: serverCertificate(ca, tls.publicKeyPem, sans, cn, tls.now),
        mode: 0o644,
        owner: 'root',
        group: 'postgres',
        previous: tls.cert,
      });
    }
    if (actions.length === 0) return done(`${TLS.cert} is issued by the cluster CA for ${sans.map((s) => s.value).join(', ')} and valid for more than ${RENEW_DAYS} days`);
    const layout = layoutFor(os, pgOptions(ctx.options).version, ctx.host.alias);
    if (problem && pg.running && pg.dropIns.ssl !== null) {
      actions.push({ kind: 'run', title: `reload ${layout.unit} (new certificate)`, script: sh`systemctl reload ${layout.unit}`, sudo: true });
    }
    return { actions, reason: problem ? `certificate: ${problem}` : 'the CA certificate changed' };
  },
});

export function sslDropIn(ctx: HostContext): { content: string; settings: ReturnType<typeof sslSettings> } {
  const v = pgOptions(ctx.options).version;
  const settings = sslSettings(v, { cert: TLS.cert, key: TLS.key });
  const content = renderAsset('ha-setup.conf.tmpl', { runbook: 'pg-ssl', version: v, alias: ctx.host.alias, settings: renderConf([], settings).trimEnd() });
  return { content, settings };
}

const enable = defineStep({
  id: 'pg-ssl.enable',
  title: 'ssl = on with the node certificate (conf.d/ha-setup-ssl.conf), reload',
  targets: () => [...DB_NODES],
  facts: (ctx) => ({ os: osFact, tls: tlsFact, pg: pgFact(pgOptions(ctx.options).version) }),
  plan({ os, tls, pg }, ctx) {
    const layout = layoutFor(os, pgOptions(ctx.options).version, ctx.host.alias);
    if (!tls.cert || !tls.publicKeyPem) {
      // PostgreSQL refuses to start with ssl = on and no certificate: never write it before.
      return { actions: [pendingAction(`write ${layout.dropInDir}/${DROPIN.ssl}`, `${TLS.cert} and ${TLS.key} exist (steps pg-ssl.key, pg-ssl.cert)`)], reason: 'no certificate yet' };
    }
    const { content, settings } = sslDropIn(ctx);
    const p = dropInPlan({
      alias: ctx.host.alias,
      path: `${layout.dropInDir}/${DROPIN.ssl}`,
      content,
      previous: pg.dropIns.ssl,
      wanted: settings,
      unit: layout.unit,
      running: pg.running,
      live: pg.settings,
      autoConf: `${layout.dataDir}/postgresql.auto.conf`,
      cloning: pg.cloneMarker !== null,
    });
    if (p.actions.length === 0) return done(p.summary);
    return { actions: p.actions, reason: p.summary };
  },
  async verify(ctx) {
    const r = await ctx.run('check the certificate chain (openssl verify)', sh`openssl verify -CAfile ${TLS.ca} ${TLS.cert}`, { sudo: true, check: false });
    if (r.code !== 0) throw new Error(`${ctx.host.alias}: ${TLS.cert} does not verify against ${TLS.ca}: ${(r.stdout + r.stderr).trim().split('\n').pop()}`);
    // Where clients get the CA file for sslmode=verify-full (the CA key stays on the jump host).
    const fingerprint = new X509Certificate(caOf(ctx).certPem).fingerprint256;
    return `certificate chain verifies; the CA file for clients (sslrootcert, sslmode=verify-full) is ${TLS.ca} on each DB node, SHA-256 fingerprint ${fingerprint}`;
  },
});

export const pgSslRunbook: Runbook = {
  id: 'pg-ssl',
  title: 'PostgreSQL TLS',
  description:
    "The guides' SSL section done right: a cluster CA (key kept on the jump host) and per-node server certificates whose subjectAltName holds the DB VIP, the node's addresses and host names (libpq ignores the CN when there are DNS names), key 0600 owned by postgres, ssl = on. Apps use sslmode=verify-full with the CA file (/etc/ha-setup/pg-tls/ca.crt on each DB node).",
  steps: [key, cert, enable],
};
