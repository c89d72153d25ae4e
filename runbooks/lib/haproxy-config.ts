/**
 * HAProxy on the lb: options (options.haproxy), the one haproxy.cfg both HAProxy runbooks
 * write (topology A's app section when the table has app servers, topology C's database
 * section when options.postgres.dbViaHaproxy is true, and the stats page), and the masking
 * of the stats password in what the config fact reads back.
 *
 * Both runbooks (haproxy, db-routing) render the SAME file from the table and options, so
 * whichever runs first writes it and the other finds it current.
 */
import { createHash } from 'node:crypto';
import { renderAssetTemplate } from './assets.js';
import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import type { HostContext } from '../../source/engine/step.js';
import { pgOptions } from './options.js';

export const HAPROXY_CFG = '/etc/haproxy/haproxy.cfg';
/** Where the new file is checked with haproxy -c before it replaces HAPROXY_CFG. */
export const HAPROXY_CANDIDATE = '/etc/haproxy/haproxy.cfg.ha-setup-new';
export const STATS_SECRET = 'haproxy.stats';
/** What the config fact puts where the stats password was (the password never leaves the lb). */
export const MASK = '@@HA_SETUP_MASKED@@';

const interval = z.string().regex(/^\d+(ms|s)$/, 'use a number with ms or s, e.g. 2s or 500ms');
const port = z.coerce.number().int().min(1).max(65535);

export const haproxyOptionsSchema = z.strictObject({
  /** Port of the app on the app servers and of the TLS frontend on the lb. */
  appPort: port.default(8181),
  /** Health check of the app servers (TCP connect). */
  appCheckInter: interval.default('2s'),
  appCheckFall: z.coerce.number().int().min(1).max(10).default(3),
  appCheckRise: z.coerce.number().int().min(1).max(10).default(2),
  /** Topology C: the port apps connect to for PostgreSQL, and the DB nodes' health port. */
  dbPort: port.default(15432),
  healthPort: port.default(25432),
  /** The stats page: address (127.0.0.1: reach it through an SSH tunnel), port, user. */
  statsAddress: z.string().refine((a) => ipaddr.isValid(a), 'must be an IP address (127.0.0.1, or an address of the lb)').default('127.0.0.1'),
  statsPort: port.default(7000),
  statsUser: z.string().regex(/^[A-Za-z0-9_.-]{1,32}$/, 'use letters, digits, _ . - (at most 32)').default('admin'),
  /** With a standby load balancer (lb_standby): the port the two HAProxy share their stick table on. */
  peersPort: port.default(10000),
});
export type HaproxyOptions = z.infer<typeof haproxyOptionsSchema>;

const cache = new WeakMap<object, HaproxyOptions>();

/** options.haproxy with defaults; throws one line naming the field. */
export function haproxyOptions(options: Record<string, unknown>): HaproxyOptions {
  const hit = cache.get(options);
  if (hit) return hit;
  const raw = options.haproxy ?? {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error('options.haproxy: must be a mapping (appPort, statsAddress, ...)');
  const parsed = haproxyOptionsSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    if (issue.code === 'unrecognized_keys') {
      throw new Error(`options.haproxy: unknown setting ${issue.keys.map((k) => `"${k}"`).join(', ')}; known: ${Object.keys(haproxyOptionsSchema.shape).join(', ')}`);
    }
    const key = String(issue.path[0] ?? '');
    const got = key && (raw as Record<string, unknown>)[key] !== undefined ? ` (got ${JSON.stringify((raw as Record<string, unknown>)[key])})` : '';
    throw new Error(`options.haproxy.${issue.path.map(String).join('.')}: ${issue.message}${got}`);
  }
  const o = parsed.data;
  const ports = [o.appPort, o.dbPort, o.statsPort, o.peersPort];
  if (new Set(ports).size !== ports.length) throw new Error(`options.haproxy: appPort, dbPort, statsPort and peersPort must differ (got ${ports.join(', ')})`);
  cache.set(options, o);
  return o;
}

/** app1..appN of the table, in number order. */
export function appServers(ctx: Pick<HostContext, 'hosts'>): { alias: string; address: string }[] {
  return Object.keys(ctx.hosts)
    .filter((a) => /^app\d+$/.test(a) && ctx.hosts[a])
    .sort((a, b) => Number(a.slice(3)) - Number(b.slice(3)))
    .map((a) => ({ alias: a, address: ctx.hosts[a]!.address }));
}

/** Topology C is on: options.postgres.dbViaHaproxy (the same switch that gives the lb its pg_hba line). */
export const dbRoutingEnabled = (options: Record<string, unknown>): boolean => pgOptions(options).dbViaHaproxy;

/** db_primary and db_standby as db1, db2. */
export function dbServers(ctx: Pick<HostContext, 'hosts' | 'options'>): { name: string; address: string; port: number }[] {
  const port = pgOptions(ctx.options).port;
  return ['db_primary', 'db_standby'].filter((a) => ctx.hosts[a]).map((a, i) => ({ name: `db${i + 1}`, address: ctx.hosts[a]!.address, port }));
}

/** host:port as HAProxy reads it (IPv6 in brackets). */
export function hostPort(address: string, p: number): string {
  return ipaddr.isValid(address) && ipaddr.parse(address).kind() === 'ipv6' ? `[${address}]:${p}` : `${address}:${p}`;
}

/** A template of assets/haproxy with every {{placeholder}} given and every value used. */
export function renderHaproxyAsset(name: string, vars: Record<string, string | number>): string {
  return renderAssetTemplate(`haproxy/${name}`, vars);
}

/** The name of the peers section the two load balancers share their stick table in. */
export const PEERS = 'ha_setup_lbs';

/** 2.6.12 >= 1.5 */
export function versionAtLeast(version: string, min: string): boolean {
  const a = version.split('.').map(Number);
  const b = min.split('.').map(Number);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d > 0;
  }
  return true;
}

/** HAProxy 2.2 has `localpeer` (older ones name the local peer by the host name). */
export const LOCALPEER_SINCE = '2.2';

export interface HaproxyConfigInput {
  apps: { alias: string; address: string }[];
  /**
   * With a standby load balancer: this lb's alias and both load balancers, which share the app
   * backend's stick table (a session stays on its app server when the lb VIP moves).
   */
  peers?: { local: string; members: { alias: string; address: string }[] } | null;
  db: { name: string; address: string; port: number }[] | null;
  options: HaproxyOptions;
  /** The stats password (the real value: the file holds it; every printed form is redacted). */
  statsPassword: string;
}

/** The whole haproxy.cfg. */
export function renderHaproxyCfg(input: HaproxyConfigInput): string {
  const o = input.options;
  const sections: string[] = [];
  const runbooks: string[] = [];
  const peers = input.peers && input.apps.length ? input.peers : null;
  if (peers) {
    sections.push(
      [
        '',
        '# The two load balancers (lb and lb_standby, behind lb_vip) share the stick table: a client',
        '# keeps its app server when keepalived moves lb_vip to the other load balancer.',
        `peers ${PEERS}`,
        ...peers.members.map((m) => `    peer ${m.alias} ${hostPort(m.address, o.peersPort)}`),
        '',
      ].join('\n'),
    );
  }
  if (input.apps.length) {
    runbooks.push('haproxy');
    sections.push(
      renderHaproxyAsset('app-section.tmpl', {
        stick_peers: peers ? ` peers ${PEERS}` : '',
        port: o.appPort,
        inter: o.appCheckInter,
        fall: o.appCheckFall,
        rise: o.appCheckRise,
        servers: input.apps.map((a) => `    server ${a.alias} ${hostPort(a.address, o.appPort)} check`).join('\n'),
      }),
    );
  }
  if (input.db) {
    runbooks.push('db-routing');
    if (input.db.length === 0) throw new Error('DB routing needs db_primary (and db_standby) in the server table');
    sections.push(
      renderHaproxyAsset('db-section.tmpl', {
        port: o.dbPort,
        health_port: o.healthPort,
        servers: input.db.map((d) => `    server ${d.name} ${hostPort(d.address, d.port)} check port ${o.healthPort}`).join('\n'),
      }),
    );
  }
  return renderHaproxyAsset('haproxy.cfg.tmpl', {
    localpeer: peers ? `    # This load balancer's name in the peers section ${PEERS}.\n    localpeer ${peers.local}\n` : '',
    runbooks: runbooks.join(' + ') || 'haproxy',
    sections: sections.join(''),
    stats_secret: STATS_SECRET,
    stats_bind: hostPort(o.statsAddress, o.statsPort),
    stats_user: o.statsUser,
    stats_password: input.statsPassword,
  });
}

/** The load balancers of the table: lb, and lb_standby when there is a second one. */
export function lbServers(ctx: Pick<HostContext, 'hosts'>): { alias: string; address: string }[] {
  return ['lb', 'lb_standby'].filter((a) => ctx.hosts[a]).map((a) => ({ alias: a, address: ctx.hosts[a]!.address }));
}

/** Two load balancers share the stick table when this HAProxy has `localpeer` (version unknown: not installed yet, a current one will be). */
export function sharesStickTable(ctx: Pick<HostContext, 'hosts'>, version: string | null): boolean {
  return lbServers(ctx).length === 2 && (version === null || versionAtLeast(version, LOCALPEER_SINCE));
}

/** The config the table and options ask for on this lb (version: the installed HAProxy's, if any). */
export function wantedHaproxyCfg(ctx: HostContext, version: string | null = null): string {
  const o = haproxyOptions(ctx.options);
  const apps = appServers(ctx);
  const db = dbRoutingEnabled(ctx.options) ? dbServers(ctx) : null;
  const peers = sharesStickTable(ctx, version) ? { local: ctx.host.alias, members: lbServers(ctx) } : null;
  return renderHaproxyCfg({ apps, db, peers, options: o, statsPassword: ctx.secret(STATS_SECRET).reveal() });
}

export const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

/** Lines "stats auth user:password" (the password part is what the fact masks). */
const AUTH_LINE = /^(\s*stats auth [^:\s]*:)(.*)$/;

/** The file as the fact reports it: every stats password replaced by MASK. */
export function maskAuth(text: string): string {
  return text
    .split('\n')
    .map((l) => l.replace(AUTH_LINE, `$1${MASK}`))
    .join('\n');
}

/**
 * The previous file for the diff: the masked text with each MASK put back as the stored
 * password when the fact's hash says it is that password (so an unchanged line shows no
 * change, and the redactor masks it), otherwise as a placeholder naming the hash prefix.
 */
export function unmaskPrevious(masked: string, hashes: string[], password: string): string {
  const mine = sha256(password);
  let i = 0;
  return masked
    .split('\n')
    .map((l) => {
      if (!l.includes(MASK) || !AUTH_LINE.test(l)) return l;
      const h = hashes[i++] ?? '';
      return l.replace(MASK, h === mine ? password : `<another password, sha256 ${h.slice(0, 12)}...>`);
    })
    .join('\n');
}
