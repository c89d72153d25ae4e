/**
 * OpenSSH known_hosts files: parse (plain and hashed host fields, markers, comma-separated
 * patterns with * ? and !, the [host]:port form), look a presented host key up, append a new
 * key, and print a key's fingerprint exactly like `ssh-keygen -lf` (SHA256, base64, no padding).
 *
 * Host keys are handled as the SSH wire blob (what ssh2's hostVerifier receives), which is
 * also what the base64 field of a known_hosts line decodes to.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface KnownHostEntry {
  file: string;
  /** 1-based line number in the file. */
  line: number;
  marker?: 'revoked' | 'cert-authority';
  /** Comma-separated patterns of a plain entry (undefined for a hashed one). */
  patterns?: string[];
  /** Salt and HMAC-SHA1 of a hashed (|1|salt|hash) entry. */
  hashed?: { salt: Buffer; hash: Buffer };
  keyType: string;
  key: Buffer;
}

export type HostKeyLookup =
  | { status: 'match'; file: string; line: number }
  /** The host has a different key of the same type: refused, whatever the user says. */
  | { status: 'changed'; file: string; line: number; keyType: string }
  /** The presented key is listed under @revoked for this host. */
  | { status: 'revoked'; file: string; line: number }
  /** Nothing known for this key type; otherKeyTypes are types that are known for the host. */
  | { status: 'unknown'; otherKeyTypes: string[] };

/** The name known_hosts uses for a host: `host`, or `[host]:port` when the port is not 22. */
export function knownHostName(host: string, port: number): string {
  const h = host.toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

/** The key type written inside an SSH public key blob (e.g. ssh-ed25519). */
export function keyTypeOf(key: Buffer): string {
  if (key.length < 4) return 'unknown';
  const len = key.readUInt32BE(0);
  if (len <= 0 || len > 64 || 4 + len > key.length) return 'unknown';
  return key.subarray(4, 4 + len).toString('latin1');
}

/** `SHA256:<base64 without padding>`, as printed by `ssh-keygen -lf`. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

export function parseKnownHosts(text: string, file = 'known_hosts'): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const fields = line.split(/\s+/);
    let marker: KnownHostEntry['marker'];
    if (fields[0]?.startsWith('@')) {
      const m = fields.shift();
      if (m === '@revoked') marker = 'revoked';
      else if (m === '@cert-authority') marker = 'cert-authority';
      else return; // unknown marker: OpenSSH ignores the line too
    }
    const [hostField, keyType, b64] = fields;
    if (!hostField || !keyType || !b64 || !/^[A-Za-z0-9+/]+=*$/.test(b64)) return;
    const key = Buffer.from(b64, 'base64');
    if (keyTypeOf(key) !== keyType) return; // not a key blob of that type (or an old RSA1 line)
    const entry: KnownHostEntry = { file, line: i + 1, keyType, key };
    if (marker) entry.marker = marker;
    if (hostField.startsWith('|1|')) {
      const [, , salt, hash] = hostField.split('|');
      if (!salt || !hash) return;
      entry.hashed = { salt: Buffer.from(salt, 'base64'), hash: Buffer.from(hash, 'base64') };
    } else {
      entry.patterns = hostField.split(',').filter(Boolean);
    }
    out.push(entry);
  });
  return out;
}

/** Reads and parses the files that exist, in order. */
export async function readKnownHosts(files: readonly string[]): Promise<KnownHostEntry[]> {
  const all: KnownHostEntry[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    all.push(...parseKnownHosts(text, file));
  }
  return all;
}

function globToRegExp(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'i');
}

/** Does this entry's host field name `name` (already in knownHostName form)? */
export function entryMatches(entry: KnownHostEntry, name: string): boolean {
  if (entry.hashed) {
    const h = createHmac('sha1', entry.hashed.salt).update(name).digest();
    return h.equals(entry.hashed.hash);
  }
  let matched = false;
  for (const p of entry.patterns ?? []) {
    const negated = p.startsWith('!');
    if (globToRegExp(negated ? p.slice(1) : p).test(name)) {
      if (negated) return false; // a matching negation wins, as in OpenSSH
      matched = true;
    }
  }
  return matched;
}

/** Known host key types for a host, most useful first (to order the host key algorithms). */
export function knownKeyTypes(entries: readonly KnownHostEntry[], host: string, port: number): string[] {
  const name = knownHostName(host, port);
  const types = entries.filter((e) => !e.marker && entryMatches(e, name)).map((e) => e.keyType);
  return [...new Set(types)];
}

export function lookupHostKey(entries: readonly KnownHostEntry[], host: string, port: number, key: Buffer): HostKeyLookup {
  const name = knownHostName(host, port);
  const type = keyTypeOf(key);
  const forHost = entries.filter((e) => e.marker !== 'cert-authority' && entryMatches(e, name));
  const revoked = forHost.find((e) => e.marker === 'revoked' && e.key.equals(key));
  if (revoked) return { status: 'revoked', file: revoked.file, line: revoked.line };
  const plain = forHost.filter((e) => !e.marker);
  const match = plain.find((e) => e.key.equals(key));
  if (match) return { status: 'match', file: match.file, line: match.line };
  const sameType = plain.find((e) => e.keyType === type);
  if (sameType) return { status: 'changed', file: sameType.file, line: sameType.line, keyType: type };
  return { status: 'unknown', otherKeyTypes: [...new Set(plain.map((e) => e.keyType))] };
}

/** One known_hosts line (without newline) for this host and key. */
export function formatKnownHostLine(host: string, port: number, key: Buffer, opts: { hashed?: boolean } = {}): string {
  const name = knownHostName(host, port);
  let field = name;
  if (opts.hashed) {
    const salt = randomBytes(20);
    const hash = createHmac('sha1', salt).update(name).digest();
    field = `|1|${salt.toString('base64')}|${hash.toString('base64')}`;
  }
  return `${field} ${keyTypeOf(key)} ${key.toString('base64')}`;
}

/**
 * Appends a key to a known_hosts file (creating it 0600, and its directory 0700, when missing).
 * Plain by default (readable, and `ssh-keygen -R/-F` handle both); hashed when asked.
 * Returns the line number it was written at.
 */
export async function appendKnownHost(
  file: string,
  host: string,
  port: number,
  key: Buffer,
  opts: { hashed?: boolean } = {},
): Promise<number> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  let existing = '';
  try {
    existing = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const sep = existing && !existing.endsWith('\n') ? '\n' : '';
  await appendFile(file, `${sep}${formatKnownHostLine(host, port, key, opts)}\n`, { mode: 0o600 });
  return (existing + sep).split('\n').length;
}
