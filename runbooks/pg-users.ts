/**
 * Roles, the app database, pg_hba.conf and the firewall (the guides' "create replicator and the
 * app user, the app DB owned by it, pg_hba lines for the standby and the app servers, open 5432").
 *
 * Passwords are generated (ctx.secret), sent to psql on stdin inside a heredoc (never in argv,
 * never in a title) with statement logging off for that session, and stored as SCRAM. A role
 * whose stored SCRAM verifier does not match the stored secret gets ALTER ROLE ... PASSWORD:
 * the plan recomputes the verifier's keys from the secret with the salt and iteration count
 * the server reports (the fact carries only an md5 of the keys), so nothing secret leaves the
 * server and nothing is re-set needlessly.
 */
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import ipaddr from 'ipaddr.js';
import { sh } from '../source/engine/shell.js';
import { defineStep, done, type Action, type HostContext, type Runbook } from '../source/engine/step.js';
import { lbAliases } from '../source/inventory/roles.js';
import { firewalldAddScript, richRuleKey } from './lib/firewalld-ledger.js';
import { osFact } from './lib/host-facts.js';
import { pgOptions, type PgOptions } from './lib/options.js';
import {
  addressesOf,
  adminInputChains,
  firewallFact,
  firewallTool,
  FW_COMMENT,
  interfaceFor,
  netFact,
  NFT_ACCEPT,
  NFT_OURS,
  pgFact,
  resolveFact,
  restrictive,
  tableNames,
  type FirewallFacts,
  type NetFacts,
  type PgFacts,
  type PgRole,
  type Resolved,
} from './lib/pg-facts.js';
import { DB_NODES, layoutFor, livePort, pendingAction, psqlScript, renderAsset, sqlIdent, sqlLiteral, type PgLayout } from './lib/pg-layout.js';
import { REPLICATOR_SECRET } from './pg-standby.js';

export const APP_SECRET = 'postgres.app';
export const HEALTH_SECRET = 'postgres.health_check_user';
export const HEALTH_USER = 'health_check_user';

// ---------------------------------------------------------------------------------------------
// Roles and the app database

/** md5 of "StoredKey:ServerKey" (base64) of a SCRAM-SHA-256 verifier, as the pg fact reports it. */
export function scramKeysMd5(password: string, saltB64: string, iterations: number): string {
  const salted = pbkdf2Sync(password.normalize('NFKC'), Buffer.from(saltB64, 'base64'), iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return createHash('md5').update(`${storedKey.toString('base64')}:${serverKey.toString('base64')}`).digest('hex');
}

/** Why the role's stored password must be set again, or null when it is the secret's. */
export function passwordProblem(role: PgRole, secret: string): string | null {
  const p = role.password;
  if (p.kind === 'none') return 'no password';
  if (p.kind === 'md5') return 'an md5 hash (set again so that it is stored as SCRAM)';
  if (p.kind !== 'scram') return 'an unknown password format';
  return scramKeysMd5(secret, p.salt, p.iterations) === p.keysMd5 ? null : 'differs from the stored secret';
}

interface RoleSpec {
  name: string;
  /** The secret's value (never printed: only the SQL on psql's stdin carries it). */
  password: string;
  attrs: string;
  ok: (r: PgRole) => boolean;
}

function roleSpecs(ctx: HostContext, o: PgOptions): RoleSpec[] {
  const pw = (name: string): string => ctx.secret(name).reveal();
  return [
    { name: 'replicator', password: pw(REPLICATOR_SECRET), attrs: 'LOGIN REPLICATION NOSUPERUSER', ok: (r) => r.login && r.replication && !r.superuser },
    { name: o.appUser, password: pw(APP_SECRET), attrs: 'LOGIN NOSUPERUSER NOREPLICATION', ok: (r) => r.login && !r.superuser && !r.replication },
    {
      name: HEALTH_USER,
      password: pw(HEALTH_SECRET),
      attrs: 'LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION',
      ok: (r) => r.login && !r.superuser && !r.createdb && !r.createrole && !r.replication,
    },
  ];
}

/** PUBLIC may CONNECT: default ACL (null) or an "=...c..." entry. */
export function publicMayConnect(acl: string | null): boolean {
  if (acl === null) return true;
  return acl.replace(/^\{|\}$/g, '').split(',').some((e) => /^=[A-Za-z*]*c/.test(e));
}

/** SQL statements and what they are for (what the title shows: never a secret). */
export function rolesSql(ctx: HostContext, pg: PgFacts): { sql: string[]; what: string[] } {
  const o = pgOptions(ctx.options);
  const sql: string[] = [];
  const what: string[] = [];
  for (const spec of roleSpecs(ctx, o)) {
    const role = pg.roles.find((r) => r.name === spec.name);
    const id = sqlIdent(spec.name);
    if (!role) {
      sql.push(`CREATE ROLE ${id} WITH ${spec.attrs} PASSWORD ${sqlLiteral(spec.password)};`);
      what.push(`create role ${spec.name}`);
      if (spec.name === HEALTH_USER) sql.push(`GRANT CONNECT ON DATABASE postgres TO ${id};`);
      continue;
    }
    if (!spec.ok(role)) {
      sql.push(`ALTER ROLE ${id} WITH ${spec.attrs};`);
      what.push(`set ${spec.attrs} on ${spec.name}`);
    }
    const problem = passwordProblem(role, spec.password);
    if (problem) {
      sql.push(`ALTER ROLE ${id} WITH PASSWORD ${sqlLiteral(spec.password)};`);
      what.push(`set the password of ${spec.name} (${problem})`);
    }
  }
  const db = pg.databases.find((d) => d.name === o.appDb);
  if (!db) {
    sql.push(`CREATE DATABASE ${sqlIdent(o.appDb)} OWNER ${sqlIdent(o.appUser)};`);
    what.push(`create database ${o.appDb} owned by ${o.appUser}`);
  } else if (db.owner !== o.appUser) {
    sql.push(`ALTER DATABASE ${sqlIdent(o.appDb)} OWNER TO ${sqlIdent(o.appUser)};`);
    what.push(`make ${o.appUser} the owner of ${o.appDb} (was ${db.owner})`);
  }
  if (!db || publicMayConnect(db.acl)) {
    // Only the owner (and superusers) connect to the app database; health_check_user stays in postgres.
    sql.push(`REVOKE CONNECT ON DATABASE ${sqlIdent(o.appDb)} FROM PUBLIC;`);
    what.push(`revoke CONNECT on ${o.appDb} from PUBLIC`);
  }
  if (pg.publicCreateInPostgresDb) {
    sql.push('REVOKE CREATE ON SCHEMA public FROM PUBLIC;');
    what.push('revoke CREATE on schema public of database postgres from PUBLIC (the default from 15)');
  }
  return { sql, what };
}

/** Session settings first: no statement (with its password) in the server log, SCRAM storage. */
const SESSION = [
  "SET log_statement = 'none';",
  'SET log_min_duration_statement = -1;',
  "SET log_min_error_statement = 'panic';",
  "SET password_encryption = 'scram-sha-256';",
];

const roles = defineStep({
  id: 'pg-users.roles',
  title: `Roles replicator, the app user, ${HEALTH_USER}; the app database`,
  targets: () => ['db_primary'],
  facts: (ctx) => ({ os: osFact, pg: pgFact(pgOptions(ctx.options).version) }),
  inputs: (ctx) => [pgOptions(ctx.options).appUser, pgOptions(ctx.options).appDb],
  plan({ os, pg }, ctx) {
    const o = pgOptions(ctx.options);
    const layout = layoutFor(os, o.version, ctx.host.alias);
    if (!pg.running) {
      return { actions: [pendingAction(`create roles and database ${o.appDb}`, `${layout.unit} runs (runbook pg-primary)`)], reason: 'PostgreSQL is not running yet' };
    }
    if (pg.inRecovery) throw new Error(`${ctx.host.alias} is in recovery (a standby): roles are created on the primary; check the server table's roles`);
    const { sql, what } = rolesSql(ctx, pg);
    if (sql.length === 0) {
      return done(`roles replicator, ${o.appUser}, ${HEALTH_USER} exist with their stored passwords (SCRAM); ${o.appDb} is owned by ${o.appUser}`);
    }
    return {
      actions: [{ kind: 'run', title: what.join('; '), script: psqlScript(layout, livePort(pg, o.port), [...SESSION, ...sql].join('\n')), sudo: true }],
      reason: 'passwords go to psql on stdin; statement logging is off for that session',
    };
  },
});

// ---------------------------------------------------------------------------------------------
// Who connects: the peer DB node (replication), the app servers (and the lb for DB routing)

export interface Clients {
  replication: string[];
  app: string[];
}

export const appAliases = (ctx: Pick<HostContext, 'hosts'>): string[] =>
  Object.keys(ctx.hosts)
    .filter((a) => /^app\d+$/.test(a) && ctx.hosts[a])
    .sort((a, b) => Number(a.slice(3)) - Number(b.slice(3)));

export function clientsOf(ctx: HostContext, resolved: Resolved): Clients {
  const o = pgOptions(ctx.options);
  const where = ctx.host.alias;
  const peers = DB_NODES.filter((a) => a !== ctx.host.alias).map((a) => ctx.hosts[a]?.address).filter((a): a is string => Boolean(a));
  const apps = [...appAliases(ctx), ...(o.dbViaHaproxy ? lbAliases(ctx.hosts) : [])].map((a) => ctx.hosts[a]!.address);
  const ips = (list: string[]): string[] => [...new Set(list.flatMap((e) => addressesOf(e, resolved, where)))];
  return { replication: ips(peers), app: ips(apps) };
}

const cidr = (ip: string): string => `${ip}/${ipaddr.parse(ip).kind() === 'ipv6' ? 128 : 32}`;

export function hbaLines(ctx: HostContext, clients: Clients): string[] {
  const o = pgOptions(ctx.options);
  const rows: string[][] = [
    ...clients.replication.map((ip) => ['hostssl', 'replication', 'replicator', cidr(ip), 'scram-sha-256']),
    ...clients.app.map((ip) => ['hostssl', o.appDb, o.appUser, cidr(ip), 'scram-sha-256']),
    // The DB health service (topology C) runs on each DB node and checks the local server.
    ['host', 'postgres', HEALTH_USER, '127.0.0.1/32', 'scram-sha-256'],
    ['host', 'postgres', HEALTH_USER, '::1/128', 'scram-sha-256'],
  ];
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i < 4 ? c.padEnd(widths[i]! + 1) : c)).join(''));
}

export const BEGIN = '# BEGIN ha-setup';
export const END = '# END ha-setup';

/** pg_hba.conf with ha-setup's block replaced, or inserted before the first host rule. */
export function withManagedBlock(current: string, block: string): string {
  const lines = current.split('\n');
  const trailing = current.endsWith('\n');
  if (trailing) lines.pop();
  const blockLines = block.replace(/\n$/, '').split('\n');
  const begin = lines.findIndex((l) => l.trim() === BEGIN);
  const end = lines.findIndex((l) => l.trim() === END);
  if (begin >= 0 || end >= 0) {
    if (begin < 0 || end < begin) throw new Error(`pg_hba.conf has "${begin < 0 ? END : BEGIN}" without its pair; repair the ha-setup block by hand`);
    lines.splice(begin, end - begin + 1, ...blockLines);
  } else {
    let first = lines.findIndex((l) => /^\s*(host|hostssl|hostnossl|hostgssenc|hostnogssenc)\s/.test(l));
    // Above the comment lines that introduce that rule ("# IPv4 local connections:").
    while (first > 0 && lines[first - 1]!.trim().startsWith('#')) first--;
    if (first >= 0) lines.splice(first, 0, ...blockLines, '');
    else lines.push(...(lines.length && lines[lines.length - 1] !== '' ? [''] : []), ...blockLines);
  }
  return `${lines.join('\n')}\n`;
}

const hbaMode = (layout: PgLayout): number => (layout.family === 'debian' ? 0o640 : 0o600);

const hba = defineStep({
  id: 'pg-users.hba',
  title: 'pg_hba.conf: the ha-setup block (replication from the peer, the app servers), before the first host rule',
  targets: () => [...DB_NODES],
  facts: (ctx) => ({ os: osFact, pg: pgFact(pgOptions(ctx.options).version), resolve: resolveFact(tableNames(ctx)) }),
  inputs: (ctx) => [tableNames(ctx), pgOptions(ctx.options).appDb, pgOptions(ctx.options).appUser, pgOptions(ctx.options).dbViaHaproxy],
  plan({ os, pg, resolve }, ctx) {
    const layout = layoutFor(os, pgOptions(ctx.options).version, ctx.host.alias);
    if (pg.hba === null) return { actions: [pendingAction(`write the ha-setup block of ${layout.hbaFile}`, `PostgreSQL is installed (runbook os-prep)`)], reason: `no ${layout.hbaFile} yet` };
    const lines = hbaLines(ctx, clientsOf(ctx, resolve));
    const next = withManagedBlock(pg.hba, renderAsset('pg_hba-block.tmpl', { lines: lines.join('\n') }));
    if (next === pg.hba) return done(`the ha-setup block of ${layout.hbaFile} is current (${lines.length} lines)`);
    const actions: Action[] = [
      { kind: 'write', title: `write the ha-setup block of ${layout.hbaFile}`, path: layout.hbaFile, content: next, mode: hbaMode(layout), owner: 'postgres', group: 'postgres', previous: pg.hba },
    ];
    if (pg.running) actions.push({ kind: 'run', title: `reload ${layout.unit} (pg_hba.conf)`, script: sh`systemctl reload ${layout.unit}`, sudo: true });
    return { actions, reason: 'table entries that are host names are written as the addresses they resolve to on this node' };
  },
});

// ---------------------------------------------------------------------------------------------
// Firewall

const isV6 = (ip: string): boolean => ipaddr.parse(ip).kind() === 'ipv6';

/** How rich rules are compared (lives with the firewalld ledger, which uninstall reads). */
export { richRuleKey };

function firewalldActions(fw: FirewallFacts, net: NetFacts, ctx: HostContext, sources: string[], port: number): { actions: Action[]; notes: string[] } {
  const iface = interfaceFor(net.addresses, ctx.host.address);
  const byIface = fw.firewalld.runtime.find((z) => iface && z.interfaces.includes(iface));
  const zone = byIface?.name ?? fw.firewalld.defaultZone;
  if (!zone) throw new Error(`${ctx.host.alias}: firewalld runs but reports no zone for ${iface ?? ctx.host.address} and no default zone`);
  const rule = (ip: string): string => `rule family="${isV6(ip) ? 'ipv6' : 'ipv4'}" source address="${cidr(ip)}" port port="${port}" protocol="tcp" accept`;
  const runtime = new Set((fw.firewalld.runtime.find((z) => z.name === zone)?.richRules ?? []).map(richRuleKey));
  const permanent = new Set((fw.firewalld.permanent.find((z) => z.name === zone)?.richRules ?? []).map(richRuleKey));
  const actions: Action[] = [];
  for (const ip of sources) {
    const r = rule(ip);
    const k = richRuleKey(r);
    const lines = [
      ...(runtime.has(k) ? [] : [firewalldAddScript({ scope: 'runtime', zone, kind: 'rich-rule', value: r })]),
      ...(permanent.has(k) ? [] : [firewalldAddScript({ scope: 'permanent', zone, kind: 'rich-rule', value: r })]),
    ];
    if (lines.length) actions.push({ kind: 'run', title: `firewalld zone ${zone}: allow tcp ${port} from ${ip}`, script: lines.join('\n'), sudo: true });
  }
  const z = fw.firewalld.runtime.find((x) => x.name === zone);
  const notes = [`firewalld zone ${zone}${iface ? ` (interface ${iface})` : ' (default zone)'}`];
  if (z && (z.services.includes('postgresql') || z.ports.includes(`${port}/tcp`))) {
    notes.push(`zone ${zone} also opens ${port} to everyone (service postgresql or port ${port}/tcp); ha-setup leaves that rule to you`);
  }
  notes.push('firewalld rich rules carry no comment: rules for hosts removed from the table are not removed');
  return { actions, notes };
}

function ufwActions(fw: FirewallFacts, sources: string[], port: number): { actions: Action[]; notes: string[] } {
  const ours = fw.ufw.rules.filter((r) => r.comment === FW_COMMENT && r.dport === String(port));
  const have = new Set(ours.map((r) => r.src.replace(/\/(32|128)$/, '')));
  const actions: Action[] = [];
  for (const ip of sources.filter((s) => !have.has(s))) {
    actions.push({ kind: 'run', title: `ufw: allow tcp ${port} from ${ip}`, script: sh`ufw allow proto tcp from ${ip} to any port ${port} comment ${FW_COMMENT}`, sudo: true });
  }
  for (const r of ours.filter((x) => !sources.includes(x.src.replace(/\/(32|128)$/, '')))) {
    actions.push({ kind: 'run', title: `ufw: remove the rule for ${r.src} (no longer in the table)`, script: sh`ufw delete allow proto tcp from ${r.src} to any port ${port}`, sudo: true });
  }
  return { actions, notes: ['ufw rules persist by themselves'] };
}

export function nftRuleset(sources: string[], port: number): string {
  const elems = (list: string[]): string => (list.length ? `\t\telements = { ${list.join(', ')} }` : '\t\t# none');
  return renderAsset('nftables-pg.nft.tmpl', { port, elements4: elems(sources.filter((s) => !isV6(s))), elements6: elems(sources.filter(isV6)) });
}

function nftActions(fw: FirewallFacts, sources: string[], port: number): { actions: Action[]; notes: string[] } {
  const actions: Action[] = [];
  const notes: string[] = [];
  const content = nftRuleset(sources, port);
  const loaded = fw.nft.tables.includes('inet ha_setup');
  const set4 = fw.nft.sets.find((s) => s.table === 'ha_setup' && s.name === 'pg_clients4')?.elems ?? [];
  const set6 = fw.nft.sets.find((s) => s.table === 'ha_setup' && s.name === 'pg_clients6')?.elems ?? [];
  const same = (a: string[], b: string[]): boolean => a.length === b.length && a.every((x) => b.includes(x));
  const liveOk = loaded && same(set4, sources.filter((s) => !isV6(s))) && same(set6, sources.filter(isV6));
  if (fw.nft.ours !== content) {
    actions.push({ kind: 'write', title: `write ${NFT_OURS} (table inet ha_setup)`, path: NFT_OURS, content, mode: 0o644, owner: 'root', group: 'root', previous: fw.nft.ours });
  }
  if (fw.nft.ours !== content || !liveOk) actions.push({ kind: 'run', title: 'load table inet ha_setup (nft -f)', script: sh`nft -f ${NFT_OURS}`, sudo: true });
  // Chains of the admin's that drop by default must let the port through; ours decides who.
  const dropping = adminInputChains(fw).filter(restrictive);
  for (const c of dropping.filter((x) => x.ours.length === 0)) {
    actions.push({
      kind: 'run',
      title: `nft: let tcp ${port} through ${c.family} ${c.table} ${c.name} (it drops by default)`,
      script: sh`nft insert rule ${c.family} ${c.table} ${c.name} tcp dport ${port} accept comment ${`"${FW_COMMENT}"`}`,
      sudo: true,
    });
  }
  const accept = dropping.length
    ? `# Managed by ha-setup (pg-users): lets tcp ${port} through input chains that drop by default; table inet ha_setup decides who.\n${dropping
        .map((c) => `insert rule ${c.family} ${c.table} ${c.name} tcp dport ${port} accept comment "${FW_COMMENT}"`)
        .join('\n')}\n`
    : null;
  if (fw.nft.conf === null) {
    notes.push('no /etc/nftables.conf: the rules last until reboot (ha-setup does not know what loads this ruleset at boot)');
  } else {
    if (accept !== null && fw.nft.accept !== accept) {
      actions.push({ kind: 'write', title: `write ${NFT_ACCEPT} (read at boot)`, path: NFT_ACCEPT, content: accept, mode: 0o644, owner: 'root', group: 'root', previous: fw.nft.accept });
    }
    const includes = [NFT_OURS, ...(accept !== null ? [NFT_ACCEPT] : [])].filter((f) => !fw.nft.conf!.includes(`include "${f}"`));
    if (includes.length) {
      const text = `\n# Added by ha-setup (pg-users): PostgreSQL port rules.\n${includes.map((f) => `include "${f}"`).join('\n')}\n`;
      actions.push({ kind: 'run', title: `add include ${includes.join(', ')} to /etc/nftables.conf (boot)`, script: sh`printf '%s' ${text} >> /etc/nftables.conf`, sudo: true });
    }
    if (!fw.nft.serviceEnabled) notes.push('nftables.service is not enabled: /etc/nftables.conf (and these rules) are not loaded at boot unless you enable it');
  }
  return { actions, notes };
}

function iptablesActions(fw: FirewallFacts, sources: string[], port: number): { actions: Action[]; notes: string[] } {
  const actions: Action[] = [];
  for (const [tool, rules, family] of [
    ['iptables', fw.iptables.v4, 'v4'],
    ['ip6tables', fw.iptables.v6, 'v6'],
  ] as const) {
    const mine = sources.filter((s) => (family === 'v6') === isV6(s));
    const ours = (rules ?? []).filter((r) => r.includes(`--comment ${FW_COMMENT}`) && r.includes(`--dport ${port}`));
    const srcOf = (r: string): string => (/-s (\S+)/.exec(r)?.[1] ?? '').replace(/\/(32|128)$/, '');
    const have = new Set(ours.map(srcOf));
    for (const ip of mine.filter((s) => !have.has(s))) {
      actions.push({ kind: 'run', title: `${tool}: allow tcp ${port} from ${ip}`, script: sh`${tool} -I INPUT -s ${cidr(ip)} -p tcp --dport ${port} -m comment --comment ${FW_COMMENT} -j ACCEPT`, sudo: true });
    }
    for (const r of ours.filter((x) => !mine.includes(srcOf(x)))) {
      actions.push({ kind: 'run', title: `${tool}: remove the rule for ${srcOf(r)} (no longer in the table)`, script: `${tool} ${r.replace(/^-A /, '-D ')}`, sudo: true });
    }
  }
  const notes: string[] = [];
  if (actions.length && fw.iptables.persist === 'debian') {
    actions.push({ kind: 'run', title: 'save the rules (/etc/iptables/rules.v4, rules.v6)', script: 'iptables-save > /etc/iptables/rules.v4\nif [ -f /etc/iptables/rules.v6 ]; then ip6tables-save > /etc/iptables/rules.v6; fi', sudo: true });
  } else if (actions.length && fw.iptables.persist === 'rhel') {
    actions.push({ kind: 'run', title: 'save the rules (/etc/sysconfig/iptables)', script: 'iptables-save > /etc/sysconfig/iptables\nif [ -f /etc/sysconfig/ip6tables ]; then ip6tables-save > /etc/sysconfig/ip6tables; fi', sudo: true });
  } else if (fw.iptables.persist === null) {
    notes.push('no iptables-persistent (/etc/iptables/rules.v4) or iptables-services (/etc/sysconfig/iptables): the rules last until reboot');
  }
  return { actions, notes: ['iptables as the last resort (no firewalld, ufw or nftables ruleset in use)', ...notes] };
}

const firewall = defineStep({
  id: 'pg-users.firewall',
  title: 'Firewall: the PostgreSQL port only from the hosts that need it (firewalld, ufw, nftables or iptables)',
  targets: () => [...DB_NODES],
  facts: (ctx) => ({ fw: firewallFact, net: netFact, resolve: resolveFact(tableNames(ctx)) }),
  inputs: (ctx) => [tableNames(ctx), pgOptions(ctx.options).port, pgOptions(ctx.options).dbViaHaproxy],
  plan({ fw, net, resolve }, ctx) {
    const port = pgOptions(ctx.options).port;
    const c = clientsOf(ctx, resolve);
    const sources = [...new Set([...c.replication, ...c.app])];
    const tool = firewallTool(fw);
    const who = `${sources.join(', ')}`;
    if (tool === 'none') {
      return done(
        `no firewall is active on ${ctx.host.alias} (firewalld not running, ufw not active, no nftables input chain, iptables accepts everything): port ${port} is reachable from the network and pg_hba.conf decides who may log in; nothing to open`,
      );
    }
    const r =
      tool === 'firewalld' ? firewalldActions(fw, net, ctx, sources, port) : tool === 'ufw' ? ufwActions(fw, sources, port) : tool === 'nftables' ? nftActions(fw, sources, port) : iptablesActions(fw, sources, port);
    const summary = [`${tool}: tcp ${port} from ${who}`, ...r.notes].join('; ');
    if (r.actions.length === 0) return done(`${summary} (already in place)`);
    return { actions: r.actions, reason: summary };
  },
});

export const pgUsersRunbook: Runbook = {
  id: 'pg-users',
  title: 'PostgreSQL users, database, pg_hba.conf and firewall',
  description:
    "The guides' roles (replicator with REPLICATION, the app user owning the app database, a login-only health_check_user), with generated passwords set over stdin and stored as SCRAM; pg_hba.conf lines (hostssl, scram-sha-256, /32 or /128 per host) in a managed block before the first host rule; and the PostgreSQL port opened only to the standby/primary and the app servers with the host's own firewall tool.",
  steps: [roles, hba, firewall],
};


