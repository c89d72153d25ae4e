/**
 * The roles of the server table, as the vendor guides name them, and helpers over aliases.
 * Convention relied on elsewhere: exactly the aliases ending in `_vip` are virtual IPs
 * (keepalived addresses, not hosts one can SSH to).
 */
import type { HostRef } from '../engine/step.js';
import type { Inventory, Topology } from './types.js';

export interface RoleDef {
  alias: string;
  /** Short title for the table's "role" column, e.g. "PostgreSQL primary". */
  title: string;
  /** One line for the change ticket. */
  description: string;
  kind: 'host' | 'vip';
  /** For a VIP: the two hosts it floats between (MASTER first). */
  pair?: readonly [string, string];
  /** Set when the role exists in one topology only. */
  topology?: Topology;
  /** An optional role: never required; it comes with the others of its group or not at all. */
  optional?: boolean;
}

const APP_RE = /^app([1-9][0-9]*)$/;

function appRole(n: number, topology?: Topology): RoleDef {
  const guide = n <= 2 ? `ccc${n} in the guides` : '';
  const uses = 'mounts the share from nfs_vip, connects to db_vip';
  if (topology === 'k8s') {
    return {
      alias: `app${n}`,
      title: `Kubernetes worker ${n}`,
      description: `worker node running the app${guide ? ` (${guide})` : ''}; ${uses}`,
      kind: 'host',
    };
  }
  const where = topology === 'lb' ? 'behind lb' : 'a worker node in topology k8s';
  return {
    alias: `app${n}`,
    title: `App server ${n}`,
    description: `application server (${guide ? `${guide}; ` : ''}${where}); ${uses}`,
    kind: 'host',
  };
}

/** Every role of both topologies, in table order; app3..appN are built by roleOf(). */
export const ROLES: readonly RoleDef[] = [
  {
    alias: 'db_primary',
    title: 'PostgreSQL primary',
    description: 'PostgreSQL server that takes the writes and streams WAL to db_standby; keepalived holds db_vip here',
    kind: 'host',
  },
  {
    alias: 'db_standby',
    title: 'PostgreSQL standby',
    description: 'streaming replica of db_primary (read-only); promoted when keepalived moves db_vip to it',
    kind: 'host',
  },
  {
    alias: 'db_vip',
    title: 'Database virtual IP',
    description: 'keepalived virtual IP of the database pair; apps connect here',
    kind: 'vip',
    pair: ['db_primary', 'db_standby'],
  },
  {
    alias: 'nfs_primary',
    title: 'NFS primary',
    description: 'NFS server exporting the shared app directory; keepalived holds nfs_vip here',
    kind: 'host',
  },
  {
    alias: 'nfs_standby',
    title: 'NFS standby',
    description: 'second NFS server with a copy of the shared data; takes nfs_vip on failover',
    kind: 'host',
  },
  {
    alias: 'nfs_vip',
    title: 'NFS virtual IP',
    description: 'keepalived virtual IP of the NFS pair; app servers mount the share from here',
    kind: 'vip',
    pair: ['nfs_primary', 'nfs_standby'],
  },
  appRole(1),
  appRole(2),
  {
    alias: 'lb',
    title: 'HAProxy load balancer',
    description: 'HAProxy in front of the app servers: TLS passed through on 8181, sticky on the TLS session id',
    kind: 'host',
    topology: 'lb',
  },
  {
    alias: 'lb_standby',
    title: 'Standby load balancer',
    description: 'optional second HAProxy with the same configuration; takes lb_vip when lb fails (the guides recommend it)',
    kind: 'host',
    topology: 'lb',
    optional: true,
  },
  {
    alias: 'lb_vip',
    title: 'Load balancer virtual IP',
    description: 'optional keepalived virtual IP of the lb pair (with lb_standby); clients use it instead of lb',
    kind: 'vip',
    pair: ['lb', 'lb_standby'],
    topology: 'lb',
    optional: true,
  },
  {
    alias: 'k8s_master',
    title: 'Kubernetes master',
    description: 'Kubernetes control plane: runs the app on the workers (app1..appN) and balances the load',
    kind: 'host',
    topology: 'k8s',
  },
];

const BY_ALIAS = new Map(ROLES.map((r) => [r.alias, r]));

/**
 * The role of an alias (app3, app4 ... included), or undefined for an unknown alias. With a
 * topology, app servers are described as that topology runs them (k8s: worker nodes).
 */
export function roleOf(alias: string, topology?: Topology): RoleDef | undefined {
  const m = APP_RE.exec(alias);
  if (m) return appRole(Number(m[1]), topology);
  return BY_ALIAS.get(alias);
}

export function isVip(alias: string): boolean {
  return alias.endsWith('_vip');
}

/** app1, app2 ... (the number of an app alias, or undefined). */
export function appNumber(alias: string): number | undefined {
  const m = APP_RE.exec(alias);
  return m ? Number(m[1]) : undefined;
}

/** The optional roles that come together: the second load balancer needs its VIP and back. */
export const OPTIONAL_GROUPS: readonly (readonly string[])[] = [['lb_standby', 'lb_vip']];

/** The load balancers of a table: lb, and lb_standby when there is a second one. */
export function lbAliases(hosts: Record<string, unknown>): string[] {
  return ['lb', 'lb_standby'].filter((a) => hosts[a]);
}

/** The front-end role of a topology: lb or k8s_master. */
export function frontAlias(topology: Topology): string {
  return topology === 'lb' ? 'lb' : 'k8s_master';
}

/** The aliases a topology needs, in table order; appCount below 2 still asks for app1, app2. */
export function requiredAliases(topology: Topology, appCount = 2): string[] {
  const apps = Array.from({ length: Math.max(2, appCount) }, (_, i) => `app${i + 1}`);
  return ['db_primary', 'db_standby', 'db_vip', 'nfs_primary', 'nfs_standby', 'nfs_vip', ...apps, frontAlias(topology)];
}

/** The app aliases present as keys of servers (set or not), sorted by number. */
export function appAliases(servers: Record<string, unknown>): string[] {
  return Object.keys(servers)
    .filter((a) => APP_RE.test(a))
    .sort((a, b) => (appNumber(a) ?? 0) - (appNumber(b) ?? 0));
}

/** Position of an alias in the table: roles in ROLES order, apps by number, unknown last. */
function rank(alias: string): [number, number] {
  const n = appNumber(alias);
  if (n !== undefined) return [ROLES.findIndex((r) => r.alias === 'app1'), n];
  const i = ROLES.findIndex((r) => r.alias === alias);
  return [i === -1 ? ROLES.length : i, 0];
}

/** Sort aliases into table order (unknown aliases last, in their given order). */
export function sortAliases(aliases: Iterable<string>): string[] {
  return [...aliases]
    .map((alias, i) => ({ alias, i, r: rank(alias) }))
    .sort((a, b) => a.r[0] - b.r[0] || a.r[1] - b.r[1] || a.i - b.i)
    .map((x) => x.alias);
}

/**
 * The rows of a (possibly partial) table: every alias the topology needs (with as many apps as
 * the highest app number present), then any other alias present, in table order.
 */
export function tableAliases(topology: Topology, servers: Record<string, unknown>, appCount = 0): string[] {
  const apps = appAliases(servers);
  const highest = Math.max(appCount, ...apps.map((a) => appNumber(a) ?? 0));
  const rows = new Set(requiredAliases(topology, highest));
  for (const alias of sortAliases(Object.keys(servers))) rows.add(alias);
  return sortAliases(rows);
}

function isSet(value: unknown): value is string {
  return typeof value === 'string' && value.trim() !== '';
}

/** Aliases that are real hosts (not VIPs) and have an address, in table order. */
export function hostAliases(inv: Pick<Inventory, 'servers'>): string[] {
  return sortAliases(Object.keys(inv.servers)).filter((a) => !isVip(a) && isSet(inv.servers[a]));
}

/** What the engine needs: hosts (non-VIP aliases) and every address by alias (VIPs included). */
export function hostsAndAddresses(inv: Pick<Inventory, 'servers'>): {
  hosts: Record<string, HostRef>;
  addresses: Record<string, string>;
} {
  const hosts: Record<string, HostRef> = {};
  const addresses: Record<string, string> = {};
  for (const alias of sortAliases(Object.keys(inv.servers))) {
    const address = inv.servers[alias];
    if (!isSet(address)) continue;
    addresses[alias] = address;
    if (!isVip(alias)) hosts[alias] = { alias, address };
  }
  return { hosts, addresses };
}
