/**
 * options.postgres: what the PostgreSQL runbooks read from the config (zod-checked, defaults
 * filled in). Errors are one line naming the field and the fix.
 *
 * The data-wipe override is deliberately NOT an option of the config: a config file is
 * re-used and copied, and a wipe permission inside it would outlive the one run it was meant
 * for. The CLI puts the host name the admin typed under the symbol ALLOW_DATA_WIPE, which no
 * YAML or JSON file can produce (see withDataWipeOverride).
 */
import { isAbsolute, normalize } from 'node:path';
import { z } from 'zod';

/** Where the CLI puts `--allow-data-wipe <host name>` in the run's options. */
export const ALLOW_DATA_WIPE: unique symbol = Symbol.for('ha-setup.allowDataWipe');
/** How refusals tell the admin to override (the CLI's flag). */
export const DATA_WIPE_FLAG = '--allow-data-wipe';

const RESERVED_ROLES = ['postgres', 'replicator', 'health_check_user', 'public'];
const RESERVED_DBS = ['postgres', 'template0', 'template1'];

const identifier = z
  .string()
  .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'use lowercase letters, digits and _, starting with a letter or _ (at most 63)');

const archiveDir = z
  .string()
  .regex(/^[A-Za-z0-9_.\/-]+$/, 'use only letters, digits, _ . / - (it goes into archive_command)')
  .refine((p) => isAbsolute(p) && normalize(p) === p.replace(/\/+$/, '') && p !== '/', 'must be an absolute, normalised path')
  .refine((p) => !/^\/(tmp|var\/tmp|dev\/shm|run)(\/|$)/.test(p), 'must not be under /tmp, /var/tmp, /dev/shm or /run (lost on reboot)')
  .refine((p) => !/^\/var\/lib\/(pgsql|postgresql)\/\d+\/(data|main)(\/|$)/.test(p), 'must not be inside the data directory');

export const postgresOptionsSchema = z.strictObject({
  /** Major version of the PostgreSQL server to install and configure. */
  version: z.coerce.number().int().min(10).max(17).default(15),
  appUser: identifier.refine((u) => !RESERVED_ROLES.includes(u), 'is a role ha-setup manages itself; choose another name').default('lunadirector'),
  appDb: identifier.refine((d) => !RESERVED_DBS.includes(d), 'is a system database; choose another name').default('lunadirectordb'),
  /** sync: the primary waits for the standby on commit (writes block while the standby is down). */
  replication: z.enum(['async', 'sync']).default('async'),
  port: z.coerce.number().int().min(1).max(65535).default(5432),
  /** WAL kept for the standby without a slot (wal_keep_size; wal_keep_segments on 10-12). */
  walKeepSizeMb: z.coerce.number().int().min(0).max(1_048_576).default(1024),
  /** Upper bound of WAL a replication slot may hold (13+); -1 = unbounded. */
  maxSlotWalKeepSizeMb: z.coerce.number().int().min(-1).max(16_777_216).default(10240),
  /** Full package upgrade during OS prep: opt-in, never by default. */
  updatePackages: z.boolean().default(false),
  /**
   * all: listen_addresses = '*' (the DB VIP is accepted whenever it arrives; pg_hba.conf and
   * the firewall decide who may connect). explicit: the node's address, the VIP and localhost,
   * with net.ipv4.ip_nonlocal_bind = 1 so that the VIP can be bound before it arrives.
   */
  listen: z.enum(['all', 'explicit']).default('all'),
  /** WAL archive directory (archive_mode = on). Unset: archive_mode = off. */
  archiveDir: archiveDir.optional(),
  /** Apps reach the database through HAProxy on the lb (topology C): the lb gets a pg_hba line. */
  dbViaHaproxy: z.boolean().default(false),
});

export type PgOptions = z.infer<typeof postgresOptionsSchema>;

function oneLine(err: z.ZodError, input: unknown): string {
  const issue = err.issues[0]!;
  const path = ['options', 'postgres', ...issue.path.map(String)].join('.');
  let got = '';
  if (issue.path.length && input && typeof input === 'object') {
    const v = (input as Record<string, unknown>)[String(issue.path[0])];
    if (v !== undefined && (typeof v !== 'object' || v === null)) got = ` (got ${JSON.stringify(v)})`;
  }
  if (issue.code === 'unrecognized_keys') {
    return `options.postgres: unknown setting ${issue.keys.map((k) => `"${k}"`).join(', ')}; known: ${Object.keys(postgresOptionsSchema.shape).join(', ')}`;
  }
  return `${path}: ${issue.message}${got}`;
}

const cache = new WeakMap<object, PgOptions>();

/** options.postgres with defaults; throws one line naming the field. */
export function pgOptions(options: Record<string, unknown>): PgOptions {
  const hit = cache.get(options);
  if (hit) return hit;
  const raw = options.postgres ?? {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new Error('options.postgres: must be a mapping (version, appUser, appDb, ...)');
  }
  if ('allowDataWipe' in raw) {
    throw new Error(
      `options.postgres.allowDataWipe: cannot be set in the config; pass ${DATA_WIPE_FLAG} <host name> on the command line for the one run that may empty that host's data directory`,
    );
  }
  const parsed = postgresOptionsSchema.safeParse(raw);
  if (!parsed.success) throw new Error(oneLine(parsed.error, raw));
  cache.set(options, parsed.data);
  return parsed.data;
}

/** The host name typed with --allow-data-wipe, if the CLI passed one. */
export function dataWipeOverride(options: Record<string, unknown>): string | undefined {
  const v = (options as Record<symbol, unknown>)[ALLOW_DATA_WIPE];
  return typeof v === 'string' && v.trim() ? v.trim() : undefined;
}

/** Options for one run with the admin's typed host name as the wipe override (for the CLI). */
export function withDataWipeOverride(options: Record<string, unknown>, hostName: string): Record<string, unknown> {
  return { ...options, [ALLOW_DATA_WIPE]: hostName };
}
