/**
 * What the keepalived runbook writes, as pure functions of the table, the options and a host's
 * network facts: keepalived.conf for the DB pair and for the NFS pair, the settings file of the
 * PostgreSQL helper script, and the systemd drop-in that keeps a fenced node from starting as a
 * primary. Templates live in assets/keepalived/.
 */
import { readAsset, renderAssetTemplate } from './assets.js';
import ipaddr from 'ipaddr.js';
import { quote } from '../../source/engine/shell.js';
import type { HostContext } from '../../source/engine/step.js';
import { haproxyOptions } from './haproxy-config.js';
import { keepalivedOptions } from './keepalived-options.js';
import { nfsOptions } from './nfs-options.js';
import { pgOptions } from './options.js';
import { addressesOf, type NetAddress, type NetFacts, type Resolved } from './pg-facts.js';
import { TLS, type PgLayout } from './pg-layout.js';

/** A file of assets/keepalived as it is. */
export function asset(name: string): string {
  return readAsset(`keepalived/${name}`);
}

/** A template of assets/keepalived with every {{placeholder}} filled; every value must be used. */
export function renderTemplate(name: string, vars: Record<string, string | number>): string {
  return renderAssetTemplate(`keepalived/${name}`, vars);
}

// ---------------------------------------------------------------------------------------------
// Paths on the servers

export const KEEPALIVED_CONF = '/etc/keepalived/keepalived.conf';
export const SCRIPT_DIR = '/usr/local/lib/ha-setup/keepalived';
export const PG_SCRIPT = `${SCRIPT_DIR}/pg-ha`;
export const NFS_SCRIPT = `${SCRIPT_DIR}/nfs-check`;
export const HAPROXY_SCRIPT = `${SCRIPT_DIR}/haproxy-check`;
export const PG_ENV = '/etc/ha-setup/keepalived-pg.env';
export const STATE_DIR = '/var/lib/ha-setup/keepalived';
/** The journal/syslog tag of every decision the scripts take. */
export const LOG_TAG = 'ha-setup-keepalived';

/** The systemd drop-in of the PostgreSQL unit that runs `pg-ha may-start` before each start. */
export const fenceDropIn = (unit: string): string => `/etc/systemd/system/${unit}.service.d/ha-setup-fence.conf`;

// ---------------------------------------------------------------------------------------------
// The two pairs

export type PairKind = 'db' | 'nfs' | 'lb';

export interface Pair {
  kind: PairKind;
  primary: string;
  standby: string;
  vipAlias: string;
  /** keepalived's vrrp_instance name. */
  instance: string;
  /** Name of the generated auth_pass secret (8 characters: it ends in auth_pass). */
  secret: string;
}

export const PAIRS: Record<PairKind, Pair> = {
  db: { kind: 'db', primary: 'db_primary', standby: 'db_standby', vipAlias: 'db_vip', instance: 'ha_setup_db', secret: 'keepalived.db.auth_pass' },
  nfs: { kind: 'nfs', primary: 'nfs_primary', standby: 'nfs_standby', vipAlias: 'nfs_vip', instance: 'ha_setup_nfs', secret: 'keepalived.nfs.auth_pass' },
  lb: { kind: 'lb', primary: 'lb', standby: 'lb_standby', vipAlias: 'lb_vip', instance: 'ha_setup_lb', secret: 'keepalived.lb.auth_pass' },
};

/** The virtual_router_id of a pair (options.keepalived.dbRouterId, nfsRouterId, lbRouterId). */
export function routerIdOf(kind: PairKind, options: Record<string, unknown>): number {
  const o = keepalivedOptions(options);
  return kind === 'db' ? o.dbRouterId : kind === 'nfs' ? o.nfsRouterId : o.lbRouterId;
}

/**
 * Base priorities: distinct, the table's primary higher; the gap (1) is smaller than
 * chk_pg_primary's weight (2). High values: after a priority-0 advert (the holder went FAULT or
 * stopped) a BACKUP takes over within (256 - priority) / 256 s, 0.41 s at 150 instead of 0.61 s
 * at 100. The generation term (2 x timeline, capped at 50) keeps the total below 254.
 */
export const PRIORITY = { primary: 151, standby: 150 } as const;

/** The pairs whose two servers and VIP are all in the table (a partial table may have neither). */
export function pairsOf(ctx: { hosts: Record<string, unknown>; addresses?: Record<string, string | undefined> }): Pair[] {
  return Object.values(PAIRS).filter((p) => ctx.hosts[p.primary] && ctx.hosts[p.standby]);
}

/** The pair this host belongs to. */
export function pairOf(alias: string): Pair {
  const p = Object.values(PAIRS).find((x) => x.primary === alias || x.standby === alias);
  if (!p) throw new Error(`bug: ${alias} is in no keepalived pair`);
  return p;
}

/** The aliases the keepalived steps run on: both hosts of every complete pair. */
export function keepalivedTargets(ctx: { hosts: Record<string, unknown> }): string[] {
  return pairsOf(ctx).flatMap((p) => [p.primary, p.standby]);
}

// ---------------------------------------------------------------------------------------------
// Addresses

export interface VrrpAddresses {
  /** unicast_src_ip: this node's address on the VIP's interface. */
  self: string;
  /** unicast_peer: the other node's address. */
  peer: string;
  peerAlias: string;
  vip: string;
  iface: string;
  /** Prefix length of the VIP (that of the interface's subnet). */
  prefix: number;
}

const sameFamily = (a: string, b: string): boolean => ipaddr.parse(a).kind() === ipaddr.parse(b).kind();

/**
 * The VIP goes on the interface that carries its subnet (from `ip -o addr`), with that subnet's
 * prefix; unicast_src_ip is this node's address there, unicast_peer the other node's address.
 */
export function vrrpAddresses(ctx: HostContext, net: NetFacts, resolved: Resolved): VrrpAddresses {
  const pair = pairOf(ctx.host.alias);
  const { alias } = ctx.host;
  const vip = ctx.addresses[pair.vipAlias];
  if (!vip) throw new Error(`the server table has no ${pair.vipAlias}: add ${pair.vipAlias}: <free IP in the ${pair.kind.toUpperCase()} pair's subnet> under servers`);
  if (!ipaddr.isValid(vip)) throw new Error(`${pair.vipAlias} "${vip}" is not an IP address: keepalived needs the VIP as an address`);
  const vipAddr = ipaddr.process(vip).toString();
  const peerAlias = alias === pair.primary ? pair.standby : pair.primary;
  const peerEntry = ctx.hosts[peerAlias]!.address;
  const peer = addressesOf(peerEntry, resolved, alias).find((a) => sameFamily(a, vipAddr));
  if (!peer) throw new Error(`${peerAlias} (${peerEntry}) has no address of the VIP's family as seen from ${alias}; put its IP address in the server table`);
  const forced = keepalivedOptions(ctx.options).interface;
  const onSubnet = (a: NetAddress): boolean => a.scope !== 'host' && sameFamily(a.address, vipAddr) && ipaddr.process(vipAddr).match(ipaddr.process(a.address), a.prefix);
  const own = addressesOf(ctx.host.address, resolved, alias);
  const candidates = net.addresses.filter((a) => (forced ? a.iface === forced : onSubnet(a)) && sameFamily(a.address, vipAddr));
  const chosen = candidates.find((a) => own.includes(ipaddr.process(a.address).toString())) ?? candidates.find((a) => ipaddr.process(a.address).toString() !== vipAddr);
  if (!chosen) {
    const have = net.addresses.filter((a) => a.scope !== 'host').map((a) => `${a.iface} ${a.address}/${a.prefix}`).join(', ') || 'none';
    throw new Error(
      forced
        ? `${alias}: options.keepalived.interface ${forced} has no address of the VIP's family (addresses: ${have}); fix the option`
        : `${alias}: ${pair.vipAlias} ${vipAddr} is in no subnet of this server's interfaces (${have}); choose a VIP in the pair's subnet, or set options.keepalived.interface`,
    );
  }
  const self = ipaddr.process(chosen.address).toString();
  if (self === vipAddr) throw new Error(`${alias}: ${pair.vipAlias} ${vipAddr} is this server's own address; the VIP must be a free address`);
  if (peer === vipAddr) throw new Error(`${pair.vipAlias} ${vipAddr} is the address of ${peerAlias}; the VIP must be a free address`);
  return { self, peer, peerAlias, vip: vipAddr, iface: chosen.iface, prefix: chosen.prefix };
}

// ---------------------------------------------------------------------------------------------
// keepalived.conf

function emailBlocks(ctx: HostContext): { global: string; instance: string } {
  const e = keepalivedOptions(ctx.options).email;
  if (!e) return { global: '', instance: '' };
  const global = [
    '    notification_email {',
    ...e.to.map((t) => `        ${t}`),
    '    }',
    `    notification_email_from ${e.from}`,
    `    smtp_server ${e.smtpServer}`,
    `    smtp_connect_timeout ${e.connectTimeout}`,
    '',
  ].join('\n');
  return { global, instance: '    smtp_alert\n' };
}

/** keepalived.conf of this host (DB or NFS pair). The auth_pass is the secret's value. */
export function keepalivedConf(ctx: HostContext, addr: VrrpAddresses): string {
  const pair = pairOf(ctx.host.alias);
  const o = keepalivedOptions(ctx.options);
  const email = emailBlocks(ctx);
  return renderTemplate(`keepalived-${pair.kind}.conf.tmpl`, {
    alias: ctx.host.alias,
    self: addr.self,
    peer: addr.peer,
    peerAlias: addr.peerAlias,
    vip: addr.vip,
    prefix: addr.prefix,
    iface: addr.iface,
    priority: ctx.host.alias === pair.primary ? PRIORITY.primary : PRIORITY.standby,
    routerId: ctx.host.alias,
    routerIdNumber: routerIdOf(pair.kind, ctx.options),
    instance: pair.instance,
    authPass: ctx.secret(pair.secret).reveal(),
    email: email.global,
    smtpAlert: email.instance,
    ...(pair.kind === 'lb' ? { appPort: haproxyOptions(ctx.options).appPort } : {}),
    ...(pair.kind === 'nfs' ? { exportDir: nfsOptions(ctx.options).exportDir } : {}),
  });
}

/** The settings file the PostgreSQL helper script sources (no secret in it). */
export function pgEnvFile(ctx: HostContext, addr: VrrpAddresses, layout: PgLayout): string {
  const o = keepalivedOptions(ctx.options);
  return renderTemplate('pg-ha.env.tmpl', {
    alias: ctx.host.alias,
    address: quote(addr.self),
    peer: quote(addr.peer),
    vip: quote(addr.vip),
    iface: quote(addr.iface),
    port: pgOptions(ctx.options).port,
    bindir: quote(layout.binDir),
    datadir: quote(layout.dataDir),
    sockdir: quote(layout.socketDir),
    unit: quote(layout.unit),
    passfile: quote(layout.passfile),
    ca: quote(TLS.ca),
    peerTimeout: o.peerTimeout,
    fenceWait: o.fenceWait,
  });
}
