/**
 * options.nfs: what the NFS runbook reads from the config (zod-checked, defaults filled in).
 * Errors are one line naming the field and the fix.
 */
import { createHash } from 'node:crypto';
import { isAbsolute, normalize } from 'node:path';
import { z } from 'zod';

/** The CCC guide's shared directory. */
export const CCC_SHARED_DIR = '/usr/safenet/ccc/packages';

const absPath = z
  .string()
  .regex(/^\/[A-Za-z0-9_.\/-]*$/, 'use an absolute path of letters, digits, _ . / - (it goes into exports, fstab and rsync)')
  .refine((p) => isAbsolute(p) && normalize(p) === p && !p.endsWith('/') && p !== '/', 'must be an absolute, normalised path without a trailing /')
  .refine((p) => !/^\/(proc|sys|dev|run|tmp|boot|etc|usr\/bin|usr\/sbin|bin|sbin)(\/|$)/.test(p), 'must not be a system directory (/proc, /sys, /dev, /run, /tmp, /boot, /etc, /bin ...)');

export const nfsOptionsSchema = z.strictObject({
  /** kernel: nfs-kernel-server / nfs-utils (production default); ganesha: nfs-ganesha with FSAL VFS. */
  server: z.enum(['kernel', 'ganesha']).default('kernel'),
  /** The directory exported by the NFS servers. */
  exportDir: absPath.default(CCC_SHARED_DIR),
  /** Where the app servers mount it (default: the same path as exportDir). */
  mountPath: absPath.optional(),
  /**
   * The export's file system id (kernel fsid=, ganesha Export_Id and Filesystem_Id), identical on
   * both servers so that the export root's handle survives a failover. Default: derived from
   * exportDir (the same on every run and both servers).
   */
  fsid: z.coerce.number().int().min(1).max(65535).optional(),
  /** Also serve NFSv3 (needs rpcbind and mountd); the mounts use NFSv4 either way. */
  v3: z.boolean().default(false),
  /** root on an app server becomes nobody on the share. Off by default: the app writes as root. */
  rootSquash: z.boolean().default(false),
  /** How often the active NFS server pushes to the standby (seconds): the data a failover can lose. */
  replicationIntervalSec: z.coerce.number().int().min(15).max(3600).default(60),
  /** NFSv4 grace period after a (re)start (seconds; ganesha Grace_Period, kernel nfsv4gracetime). */
  graceSec: z.coerce.number().int().min(5).max(180).default(90),
  /** Mount the share on the app servers (false: exports only; mount with `ha-setup nfs client`). */
  mountClients: z.boolean().default(true),
});

export type NfsOptions = z.infer<typeof nfsOptionsSchema> & { mountPath: string; fsid: number };

/** The default fsid: stable for a path, in 1000..60999 (clear of small hand-picked ids). */
export function defaultFsid(exportDir: string): number {
  return 1000 + (createHash('sha256').update(`ha-setup nfs ${exportDir}`).digest().readUInt32BE(0) % 60000);
}

const cache = new WeakMap<object, NfsOptions>();

/** options.nfs with defaults; throws one line naming the field. */
export function nfsOptions(options: Record<string, unknown>): NfsOptions {
  const hit = cache.get(options);
  if (hit) return hit;
  const raw = options.nfs ?? {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error('options.nfs: must be a mapping (server, exportDir, mountPath, ...)');
  const parsed = nfsOptionsSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    if (issue.code === 'unrecognized_keys') {
      throw new Error(`options.nfs: unknown setting ${issue.keys.map((k) => `"${k}"`).join(', ')}; known: ${Object.keys(nfsOptionsSchema.shape).join(', ')}`);
    }
    const key = String(issue.path[0] ?? '');
    const v = (raw as Record<string, unknown>)[key];
    const got = v !== undefined && (typeof v !== 'object' || v === null) ? ` (got ${JSON.stringify(v)})` : '';
    throw new Error(`options.nfs.${issue.path.map(String).join('.')}: ${issue.message}${got}`);
  }
  const o = parsed.data;
  const out: NfsOptions = { ...o, mountPath: o.mountPath ?? o.exportDir, fsid: o.fsid ?? defaultFsid(o.exportDir) };
  cache.set(options, out);
  return out;
}
