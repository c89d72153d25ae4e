/**
 * Generated passwords of one cluster, kept on the jump host in <clusterDir>/secrets.json
 * (mode 0600, directory 0700). A secret is created on first use and saved before it is
 * returned, so a value that reached a server is never lost. Values leave this module only as
 * Secret objects: printed forms are masked, and the runner registers all() with the Redactor.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Secret } from './shell.js';
import { ensurePrivateDir, writeFileAtomic } from './checkpoint.js';

/** URL-safe: no quoting problems in config files, connection strings or URLs. */
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
export const DEFAULT_SECRET_LENGTH = 24;

/**
 * Lengths that differ from the default, by name. keepalived reads at most 8 characters of
 * auth_pass, so every secret whose name ends in "auth_pass" is 8 characters long.
 */
export function defaultLengthFor(name: string): number {
  return /auth_pass$/.test(name) ? 8 : DEFAULT_SECRET_LENGTH;
}

/** A random string over the 64-character URL-safe alphabet (unbiased: 64 divides 256). */
export function randomPassword(length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  for (const b of bytes) out += ALPHABET[b & 63];
  return out;
}

interface SecretsFile {
  version: 1;
  secrets: Record<string, string>;
}

export class SecretStore {
  readonly path: string;

  constructor(readonly dir: string) {
    this.path = join(dir, 'secrets.json');
  }

  /** Throws when the file exists but others may read it (or it is not ours to read). */
  #load(): SecretsFile {
    if (!existsSync(this.path)) return { version: 1, secrets: {} };
    const mode = statSync(this.path).mode & 0o777;
    if (mode & 0o077) {
      throw new Error(
        `secrets file ${this.path} has mode 0${mode.toString(8)}, readable by other users; run: chmod 600 ${this.path}`,
      );
    }
    let data: unknown;
    try {
      data = JSON.parse(readFileSync(this.path, 'utf8'));
    } catch (e) {
      throw new Error(`secrets file ${this.path} is not valid JSON (${(e as Error).message}); restore it from a backup`);
    }
    const secrets = (data as Partial<SecretsFile> | null)?.secrets;
    if (!secrets || typeof secrets !== 'object') {
      throw new Error(`secrets file ${this.path} has no "secrets" object; restore it from a backup`);
    }
    return { version: 1, secrets: secrets as Record<string, string> };
  }

  /** Checks the file's mode (and that it is readable) without creating anything. */
  check(): this {
    this.#load();
    return this;
  }

  /**
   * The secret called `name`, created (random, `length` characters) and saved on first use.
   * The file is re-read on every call so that a value is never generated twice.
   */
  get(name: string, opts: { length?: number } = {}): Secret {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
      throw new Error(`secret name "${name}" is not valid (letters, digits, . _ -)`);
    }
    const file = this.#load();
    const existing = file.secrets[name];
    if (typeof existing === 'string') return new Secret(name, existing);
    const length = opts.length ?? defaultLengthFor(name);
    if (!Number.isInteger(length) || length < 8 || length > 256) {
      throw new Error(`secret "${name}": length ${length} is out of range (8..256)`);
    }
    const value = randomPassword(length);
    file.secrets[name] = value;
    ensurePrivateDir(this.dir);
    writeFileAtomic(this.path, `${JSON.stringify(file, null, 2)}\n`, 0o600);
    return new Secret(name, value);
  }

  /** Every stored secret (for the Redactor). */
  all(): Secret[] {
    return Object.entries(this.#load().secrets).map(([name, value]) => new Secret(name, value));
  }
}
