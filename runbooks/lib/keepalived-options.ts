/**
 * options.keepalived: what the keepalived runbook and the drill read from the config
 * (zod-checked, defaults filled in). Errors are one line naming the field and the fix.
 *
 *   keepalived:
 *     dbRouterId: 51            # virtual_router_id of the DB pair (1..255)
 *     nfsRouterId: 52           # virtual_router_id of the NFS pair (must differ)
 *     lbRouterId: 53            # virtual_router_id of the load balancer pair (lb + lb_standby)
 *     interface: eth0           # only when the VIP's subnet is on no interface (rare)
 *     peerTimeout: 1            # seconds a notify/check script waits for the peer's PostgreSQL
 *     fenceWait: 5              # seconds a new MASTER waits for the old primary to stop
 *     email:                    # optional: keepalived's own SMTP alerts
 *       to: [dba@example.com]
 *       from: keepalived@example.com
 *       smtpServer: 192.0.2.25  # host or host:port
 *       connectTimeout: 30
 */
import { z } from 'zod';

const email = z.string().regex(/^[^\s@{}"!#]+@[^\s@{}"!#]+$/, 'must be an e-mail address (name@domain)');
const smtpServer = z
  .string()
  .regex(/^[A-Za-z0-9.:_-]+( \d{1,5})?$/, 'must be a host name or IP address, optionally followed by a space and a port');

export const keepalivedOptionsSchema = z
  .strictObject({
    dbRouterId: z.coerce.number().int().min(1).max(255).default(51),
    nfsRouterId: z.coerce.number().int().min(1).max(255).default(52),
    lbRouterId: z.coerce.number().int().min(1).max(255).default(53),
    interface: z
      .string()
      .regex(/^[A-Za-z0-9_.:@-]{1,15}$/, 'must be an interface name (e.g. eth0)')
      .optional(),
    peerTimeout: z.coerce.number().min(0.2).max(10).default(1),
    fenceWait: z.coerce.number().min(0).max(60).default(5),
    email: z
      .strictObject({
        to: z.array(email).min(1),
        from: email,
        smtpServer,
        connectTimeout: z.coerce.number().int().min(1).max(300).default(30),
      })
      .optional(),
  })
  .refine((o) => o.dbRouterId !== o.nfsRouterId, { message: 'dbRouterId and nfsRouterId must differ (one virtual_router_id per VIP)', path: ['nfsRouterId'] })
  .refine((o) => o.lbRouterId !== o.dbRouterId && o.lbRouterId !== o.nfsRouterId, { message: 'lbRouterId must differ from dbRouterId and nfsRouterId (one virtual_router_id per VIP)', path: ['lbRouterId'] });

export type KeepalivedOptions = z.infer<typeof keepalivedOptionsSchema>;

const cache = new WeakMap<object, KeepalivedOptions>();

/** options.keepalived with defaults; throws one line naming the field. */
export function keepalivedOptions(options: Record<string, unknown>): KeepalivedOptions {
  const hit = cache.get(options);
  if (hit) return hit;
  const raw = options.keepalived ?? {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new Error('options.keepalived: must be a mapping (dbRouterId, nfsRouterId, email, ...)');
  }
  const parsed = keepalivedOptionsSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    if (issue.code === 'unrecognized_keys') {
      throw new Error(`options.keepalived: unknown setting ${issue.keys.map((k) => `"${k}"`).join(', ')}; known: dbRouterId, nfsRouterId, lbRouterId, interface, peerTimeout, fenceWait, email`);
    }
    const path = ['options', 'keepalived', ...issue.path.map(String)].join('.');
    throw new Error(`${path}: ${issue.message}`);
  }
  cache.set(options, parsed.data);
  return parsed.data;
}
