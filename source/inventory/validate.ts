/**
 * Validation of the server table: the shape (./schema.ts, zod) and the rules between fields
 * (addresses with ipaddr.js, the same address twice, VIPs in their pair's subnet, the roles a
 * topology needs). Every problem is one line naming the field and the fix.
 */
import ipaddr from 'ipaddr.js';
import type { Inventory, Topology } from './types.js';
import { appNumber, frontAlias, isVip, OPTIONAL_GROUPS, requiredAliases, ROLES, roleOf, sortAliases } from './roles.js';
import { fieldName, inventorySchema, issuesToErrors, nearest, type FieldError } from './schema.js';

export type { FieldError } from './schema.js';

export type ValidationResult = { ok: true; inventory: Inventory } | { ok: false; errors: FieldError[] };

/** Servers as given: strings, null (not set), or anything else (a type error the schema reports). */
type Servers = Record<string, unknown>;

/** "cluster.yaml:7: servers.db_vip: <message>", one line per error. */
export function errorLines(source: string, errors: readonly FieldError[]): string[] {
  return errors.map((e) => {
    const where = e.line === undefined ? '' : e.column === undefined ? `:${e.line}` : `:${e.line}:${e.column}`;
    return `${source}${where}: ${e.field ? `${e.field}: ` : ''}${e.message}`;
  });
}

/** An invalid table: where it came from (a file or a saved cluster) and every problem found. */
export class InventoryError extends Error {
  constructor(
    readonly source: string,
    readonly errors: readonly FieldError[],
  ) {
    super(errorLines(source, errors).join('\n'));
    this.name = 'InventoryError';
  }

  /** One line per problem, prefixed by the source. */
  get lines(): string[] {
    return errorLines(this.source, this.errors);
  }
}

// ---------------------------------------------------------------------------------------------
// One address

export function isIp(value: string): boolean {
  return value.includes(':') ? ipaddr.IPv6.isValid(value) : ipaddr.IPv4.isValidFourPartDecimal(value);
}

/** The form used to compare addresses: canonical IPs (IPv4-mapped IPv6 as IPv4), lower-case names. */
export function normalizeAddress(value: string): string {
  const v = value.trim();
  if (isIp(v)) return ipaddr.process(v).toNormalizedString();
  return v.toLowerCase().replace(/\.$/, '');
}

function ipv4Typo(v: string): string {
  const parts = v.split('.');
  let detail: string;
  if (parts.some((p) => p === '')) detail = 'it has an empty part';
  else if (parts.length !== 4) detail = `${parts.length} number${parts.length === 1 ? '' : 's'}, not 4`;
  else {
    const big = parts.find((p) => Number(p) > 255);
    const zero = parts.find((p) => p.length > 1 && p.startsWith('0'));
    detail = big ? `${big} is above 255` : zero ? `${zero} has a leading zero: write ${Number(zero)}` : 'out of range';
  }
  return `"${v}" is not a valid IPv4 address (${detail}); an all-numeric name cannot be a hostname, so fix the typo`;
}

const LABEL_RE = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

function hostnameProblem(v: string): string | undefined {
  const name = v.replace(/\.$/, '');
  const bad = /[^A-Za-z0-9.-]/.exec(name);
  const rule = 'letters, digits, - and dots (RFC 1123)';
  if (bad) return `"${v}" is not a valid hostname: "${bad[0]}" is not allowed (${rule})`;
  if (name.length > 253) return `"${v}" is not a valid hostname: longer than 253 characters`;
  const labels = name.split('.');
  if (labels.some((l) => l === '')) return `"${v}" is not a valid hostname: it has an empty part (two dots in a row?)`;
  const long = labels.find((l) => l.length > 63);
  if (long) return `"${v}" is not a valid hostname: the part "${long.slice(0, 12)}..." is longer than 63 characters`;
  const hyphen = labels.find((l) => !LABEL_RE.test(l));
  if (hyphen) return `"${v}" is not a valid hostname: "${hyphen}" starts or ends with "-" (${rule})`;
  if (labels.length > 1 && /^[0-9]+$/.test(labels[labels.length - 1]!)) {
    return `"${v}" is neither an IPv4 address nor a hostname (a hostname cannot end in a number): check for a typo`;
  }
  return undefined;
}

/**
 * Is this a usable IPv4/IPv6 address or hostname? Returns the problem (one line, with the fix)
 * or undefined. Leading/trailing spaces are ignored (they are trimmed when the table is saved).
 */
export function validateAddress(value: unknown): string | undefined {
  if (typeof value !== 'string') return `must be an IP address or hostname, not ${value === null || value === undefined ? 'empty' : typeof value}`;
  const v = value.trim();
  if (v === '') return 'empty: give an IP address or hostname';
  if (/\s/.test(v)) return `"${v}" contains a space: give one IP address or hostname`;
  if (v.startsWith('[') && v.endsWith(']')) return `"${v}": write the IPv6 address without brackets (${v.slice(1, -1)})`;
  if (v.includes('/')) return `"${v}" has a prefix length: give the address alone (network.prefix holds the subnet's prefix)`;
  if (v.includes('@')) return `"${v}" has a user: give the address alone (the SSH user goes in ssh.user)`;
  if (v.includes(':')) {
    if (ipaddr.IPv6.isValid(v)) return undefined;
    if (/^[^:]+:[0-9]+$/.test(v)) return `"${v}" has a port: give the address alone (the SSH port goes in ssh.port)`;
    return `"${v}" is not a valid IPv6 address: check for a typo`;
  }
  if (/^[0-9.]+$/.test(v)) return ipaddr.IPv4.isValidFourPartDecimal(v) ? undefined : ipv4Typo(v);
  return hostnameProblem(v);
}

/** Address problems of one role: syntax, and a VIP must be an IP (keepalived binds it). */
function addressProblem(alias: string, value: string): string | undefined {
  const problem = validateAddress(value);
  if (problem) return problem;
  if (isVip(alias) && !isIp(value.trim())) {
    const pair = roleOf(alias)?.pair;
    const where = pair ? ` in the subnet of ${pair[0]} and ${pair[1]}` : '';
    return `"${value.trim()}" is a hostname: a keepalived VIP must be an IP address (reserve a free one${where})`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Between fields

function isSet(v: unknown): v is string {
  return typeof v === 'string' && v.trim() !== '';
}

function unknownAliasMessage(alias: string, topology: Topology | undefined, appCount: number): string {
  const apps = Array.from({ length: appCount + 1 }, (_, i) => `app${i + 1}`);
  const candidates = [...ROLES.map((r) => r.alias), ...apps];
  const guess = nearest(alias, candidates);
  const front = topology ? frontAlias(topology) : 'lb or k8s_master';
  const known = `db_primary, db_standby, db_vip, nfs_primary, nfs_standby, nfs_vip, app1..appN, ${front}${front.includes('lb') ? ', lb_standby, lb_vip (optional)' : ''}`;
  return guess ? `unknown alias: did you mean ${guess}? (aliases: ${known})` : `unknown alias: use one of ${known}`;
}

function topologyMismatch(alias: string, topology: Topology): string | undefined {
  const role = roleOf(alias);
  if (!role?.topology || role.topology === topology) return undefined;
  const other = frontAlias(topology);
  return `${alias} (${role.title}) belongs to topology ${role.topology}, but topology is ${topology}: use ${other} instead, or set topology: ${role.topology}`;
}

function missingMessage(alias: string, topology: Topology, appCount: number): string {
  const n = appNumber(alias);
  if (n !== undefined && n <= 2) {
    return `not set: every topology needs at least two app servers (app1, app2); give ${alias} an IP address or hostname`;
  }
  if (n !== undefined) {
    return `not set: app servers are numbered app1..app${appCount} without gaps; give ${alias} an address or renumber the apps`;
  }
  const role = roleOf(alias)!;
  if (role.pair) {
    return `not set: reserve a free IP address in the subnet of ${role.pair[0]} and ${role.pair[1]} for the ${role.title.toLowerCase()} (keepalived)`;
  }
  return `not set: the ${topology} topology needs the ${role.title}; give ${alias} an IP address or hostname`;
}

/** The problem of a VIP being outside its pair's subnet (all three IPs, prefix known), if any. */
function subnetProblem(vip: string, servers: Servers, prefix: number | undefined): string | undefined {
  const pair = roleOf(vip)?.pair;
  const vipValue = servers[vip];
  if (!pair || prefix === undefined || !isSet(vipValue) || addressProblem(vip, vipValue)) return undefined;
  const members = pair.map((member) => ({ member, value: servers[member] }));
  if (!members.every((m) => isSet(m.value) && isIp(m.value.trim()))) return undefined;
  const vipAddr = ipaddr.process(vipValue.trim());
  const outside: { member: string; address: string; subnet: string }[] = [];
  for (const { member, value } of members) {
    const address = (value as string).trim();
    const addr = ipaddr.process(address);
    if (addr.kind() !== vipAddr.kind()) {
      return `${vipValue.trim()} is ${vipAddr.kind()} but ${member} is ${addr.kind()} (${address}): a keepalived VIP must be in the pair's own subnet`;
    }
    if (prefix > (addr.kind() === 'ipv4' ? 32 : 128)) return undefined; // reported once on network.prefix
    const bare = addr.toString().replace(/%.*$/, '');
    const network =
      addr.kind() === 'ipv4'
        ? ipaddr.IPv4.networkAddressFromCIDR(`${bare}/${prefix}`)
        : ipaddr.IPv6.networkAddressFromCIDR(`${bare}/${prefix}`);
    const inside =
      addr.kind() === 'ipv4'
        ? (vipAddr as ipaddr.IPv4).match(addr as ipaddr.IPv4, prefix)
        : (vipAddr as ipaddr.IPv6).match(addr as ipaddr.IPv6, prefix);
    if (!inside) outside.push({ member, address, subnet: `${network.toString()}/${prefix}` });
  }
  const first = outside[0];
  if (!first) return undefined;
  const same = outside.filter((o) => o.subnet === first.subnet);
  const whose = same.map((o) => `${o.member} (${o.address})`).join(' and ');
  return `${vipValue.trim()} is outside ${first.subnet}, the subnet of ${whose}: keepalived can only move a VIP inside the pair's subnet; pick a free address in ${first.subnet} (or fix network.prefix)`;
}

/** The message for `alias` having the same address as `other`. */
function conflictMessage(alias: string, other: string, address: string): string {
  if (isVip(alias) && !isVip(other)) {
    return `${address} is ${other}'s own address: a VIP must be a free address no server uses (reserve one in the same subnet)`;
  }
  if (!isVip(alias) && isVip(other)) {
    return `${address} is already ${other}, a virtual IP: give ${alias} the server's own address`;
  }
  return `${address} is also ${other}'s address: each role needs its own server (give ${alias} a different IP or hostname)`;
}

/** Highest app number among the keys (what "app1..appN" means for this table). */
function highestApp(servers: Servers): number {
  return Math.max(0, ...Object.keys(servers).map((a) => appNumber(a) ?? 0));
}

/** The rules between the servers of a table. Values that are not strings are skipped (the schema reports them). */
function checkServers(servers: Servers, topology: Topology | undefined, prefix: number | undefined, partial = false): FieldError[] {
  const errors: FieldError[] = [];
  const field = (alias: string) => fieldName(['servers', alias]);
  const usable = new Set<string>();
  const appCount = highestApp(servers);

  for (const alias of sortAliases(Object.keys(servers))) {
    const value = servers[alias];
    if (!roleOf(alias)) {
      errors.push({ field: field(alias), message: unknownAliasMessage(alias, topology, appCount) });
      continue;
    }
    const mismatch = topology && topologyMismatch(alias, topology);
    if (mismatch) {
      errors.push({ field: field(alias), message: mismatch });
      continue;
    }
    if (!isSet(value)) continue; // not set (reported below if needed) or not text (the schema says so)
    const problem = addressProblem(alias, value);
    if (problem) errors.push({ field: field(alias), message: problem });
    else usable.add(alias);
  }

  if (topology && !partial) {
    for (const alias of requiredAliases(topology, appCount)) {
      const value = servers[alias];
      if (value === undefined || value === null || (typeof value === 'string' && value.trim() === '')) {
        errors.push({ field: field(alias), message: missingMessage(alias, topology, Math.max(2, appCount)) });
      }
    }
  }

  // Optional roles come as a group: a second load balancer without its VIP (or a VIP without
  // the second load balancer) would leave clients without a failover address.
  for (const group of OPTIONAL_GROUPS) {
    const set = group.filter((a) => isSet(servers[a]));
    if (set.length === 0 || set.length === group.length) continue;
    if (topology && group.some((a) => topologyMismatch(a, topology))) continue;
    for (const alias of group.filter((a) => !isSet(servers[a]))) {
      const role = roleOf(alias)!;
      const others = set.join(' and ');
      const fix = role.pair
        ? `reserve a free IP address in the subnet of ${role.pair[0]} and ${role.pair[1]} for the ${role.title.toLowerCase()} (keepalived)`
        : `give ${alias} an IP address or hostname`;
      errors.push({ field: field(alias), message: `not set: ${others} ${set.length > 1 ? 'need' : 'needs'} it; ${fix}, or remove ${others}` });
    }
  }

  // The same address twice: hosts first (so a VIP is blamed for taking a host's address).
  const hostsFirst = [...sortAliases([...usable].filter((a) => !isVip(a))), ...sortAliases([...usable].filter(isVip))];
  const seen = new Map<string, string>();
  for (const alias of hostsFirst) {
    const address = (servers[alias] as string).trim();
    const key = normalizeAddress(address);
    const other = seen.get(key);
    if (other) errors.push({ field: field(alias), message: conflictMessage(alias, other, address) });
    else seen.set(key, alias);
  }

  if (prefix !== undefined) {
    // The prefix is only used for the VIP check: it must fit the family of an all-IPv4 trio.
    const isV4 = (a: string) => usable.has(a) && isIp((servers[a] as string).trim()) && ipaddr.process((servers[a] as string).trim()).kind() === 'ipv4';
    const v4Vip = ROLES.find((r) => r.pair && isV4(r.alias) && r.pair.every(isV4));
    if (prefix > 32 && v4Vip) {
      errors.push({
        field: 'network.prefix',
        message: `${prefix} is too long for IPv4 (${v4Vip.alias} and its pair are IPv4 addresses): use 1-32, e.g. 24`,
      });
    }
    for (const vip of ROLES.filter((r) => r.pair).map((r) => r.alias)) {
      if (!usable.has(vip)) continue;
      const problem = subnetProblem(vip, servers, prefix);
      if (problem) errors.push({ field: field(vip), message: problem });
    }
  }
  return errors;
}

/** ssh.hosts must name hosts of the table. */
function checkSshHosts(hosts: unknown, servers: Servers, topology: Topology | undefined): FieldError[] {
  if (!hosts || typeof hosts !== 'object' || Array.isArray(hosts)) return [];
  const errors: FieldError[] = [];
  for (const alias of Object.keys(hosts)) {
    const field = fieldName(['ssh', 'hosts', alias]);
    const role = roleOf(alias);
    if (!role) errors.push({ field, message: unknownAliasMessage(alias, topology, highestApp(servers)) });
    else if (role.kind === 'vip') {
      errors.push({ field, message: `${alias} is a virtual IP, not a host: put SSH settings on ${role.pair!.join(' and ')}` });
    } else if (!(alias in servers)) {
      errors.push({ field, message: `there is no ${alias} in servers: remove this entry or add ${alias} to servers` });
    }
  }
  return errors;
}

// ---------------------------------------------------------------------------------------------
// Public entry points

/**
 * Inline check of one field while the user types (wizard): the address itself and against the
 * other fields (same address, VIP subnet). `servers` holds the other fields as typed so far.
 */
export function validateField(
  alias: string,
  value: string,
  servers: Record<string, string | null | undefined>,
  topology: Topology,
  prefix?: number,
): string | undefined {
  const appCount = Math.max(highestApp(servers), appNumber(alias) ?? 0);
  if (!roleOf(alias)) return unknownAliasMessage(alias, topology, appCount);
  const mismatch = topologyMismatch(alias, topology);
  if (mismatch) return mismatch;
  if (!isSet(value)) return missingMessage(alias, topology, Math.max(2, appCount));
  const problem = addressProblem(alias, value);
  if (problem) return problem;

  const key = normalizeAddress(value);
  for (const other of sortAliases(Object.keys(servers))) {
    const v = servers[other];
    if (other === alias || !isSet(v) || !roleOf(other) || validateAddress(v)) continue;
    if (normalizeAddress(v) === key) return conflictMessage(alias, other, value.trim());
  }

  const merged: Servers = { ...servers, [alias]: value };
  const vips = ROLES.filter((r) => r.alias === alias || r.pair?.includes(alias)).filter((r) => r.pair);
  for (const vip of vips) {
    const problem = subnetProblem(vip.alias, merged, prefix);
    if (problem) return problem;
  }
  return undefined;
}

const TOP_ORDER = ['', 'cluster', 'topology', 'servers', 'network', 'ssh', 'options'];

function sortErrors(errors: FieldError[]): FieldError[] {
  const top = (e: FieldError) => {
    const i = TOP_ORDER.indexOf(e.field.split('.')[0]!);
    return i === -1 ? TOP_ORDER.length : i;
  };
  const aliasOrder = sortAliases(new Set(errors.filter((e) => e.field.startsWith('servers.')).map((e) => e.field.slice(8))));
  const sub = (e: FieldError) => (e.field.startsWith('servers.') ? aliasOrder.indexOf(e.field.slice(8)) : 0);
  const seen = new Set<string>();
  return errors
    .map((e, i) => ({ e, i }))
    .sort((a, b) => top(a.e) - top(b.e) || sub(a.e) - sub(b.e) || a.i - b.i)
    .map((x) => x.e)
    .filter((e) => {
      const k = `${e.field}\n${e.message}`;
      return seen.has(k) ? false : (seen.add(k), true);
    });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Check a whole table (from YAML, a saved cluster or the wizard). On success the inventory is
 * normalised: addresses trimmed, servers in table order, ssh and options default to {}.
 */
export function validateInventory(input: unknown): ValidationResult {
  if (!isPlainObject(input)) {
    return {
      ok: false,
      errors: [{ field: '', message: 'the table must be a mapping with cluster, topology and servers (see test/fixtures/cluster-lb.yaml)' }],
    };
  }
  const parsed = inventorySchema.safeParse(input);
  const errors = parsed.success ? [] : issuesToErrors(parsed.error.issues, input);

  const topology = input.topology === 'lb' || input.topology === 'k8s' ? (input.topology as Topology) : undefined;
  const rawPrefix = isPlainObject(input.network) ? input.network.prefix : undefined;
  const prefix = Number.isInteger(rawPrefix) && (rawPrefix as number) >= 1 && (rawPrefix as number) <= 128 ? (rawPrefix as number) : undefined;
  if (isPlainObject(input.servers)) {
    errors.push(...checkServers(input.servers, topology, prefix, input.partial === true));
    if (isPlainObject(input.ssh)) errors.push(...checkSshHosts(input.ssh.hosts, input.servers, topology));
  }

  if (errors.length > 0 || !parsed.success) return { ok: false, errors: sortErrors(errors) };

  const data = parsed.data;
  const servers: Record<string, string> = {};
  for (const alias of sortAliases(Object.keys(data.servers))) servers[alias] = data.servers[alias]!;
  const inventory: Inventory = { cluster: data.cluster, topology: data.topology, servers, ssh: data.ssh, options: data.options };
  if (data.partial) inventory.partial = true;
  if (data.network) inventory.network = data.network;
  return { ok: true, inventory };
}
