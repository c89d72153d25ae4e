/**
 * From what each host answered (./parse.ts) to the cluster's health (./types.ts): who holds
 * each VIP, the PostgreSQL roles and replication, keepalived, HAProxy's backends, NFS, the app's
 * Deployment on Kubernetes (topology k8s); and the
 * problems found, each with a one-line fix where there is an obvious one. Pure: no I/O.
 */
import ipaddr from 'ipaddr.js';
import type { Inventory } from '../inventory/types.js';
import { dbServers, haproxyOptions } from '../../runbooks/lib/haproxy-config.js';
import { nfsOptions } from '../../runbooks/lib/nfs-options.js';
import { slotName } from '../../runbooks/lib/pg-layout.js';
import { k8sOptions, type K8sOptions } from '../../runbooks/app-scale.js';
import { appAliases } from '../inventory/roles.js';
import {
  kubectlFailure,
  parseK8s,
  parseK8sDeployment,
  parseK8sPods,
  parseKubectlAnswer,
  podsByNode,
  parseHaproxy,
  parseHaproxyStats,
  parseIpAddr,
  parseKeepalived,
  parseNfsClient,
  parseNfsServer,
  parsePg,
  parsePgHa,
  type NodeResolver,
  type ServerResolver,
} from './parse.js';
import { KUBECTL_LIMITS, LOAD_BALANCERS, type SectionName, type StatusPlan } from './scripts.js';
import {
  STATUS_SCHEMA,
  type ClusterHealth,
  type Finding,
  type HaproxyStatus,
  type HostReach,
  type K8sPod,
  type K8sStatus,
  type KeepalivedNode,
  type NfsStatus,
  type PgNodeStatus,
  type PostgresStatus,
  type ReplicationLink,
  type VipStatus,
} from './types.js';

/** Replication lag above either of these is a problem. */
export const LAG_LIMITS = { bytes: 64 * 1024 * 1024, seconds: 60 } as const;

/** What one host answered. */
export interface HostProbe {
  reach: HostReach;
  /** The sections of its output; null when nothing came back (unreachable, sudo refused). */
  sections: Partial<Record<SectionName | 'end', string>> | null;
}

export interface LocalState {
  lock: ClusterHealth['lock'];
  lastRun: ClusterHealth['lastRun'];
  resumeAt: ClusterHealth['resumeAt'];
}

type Inv = Pick<Inventory, 'cluster' | 'topology' | 'servers' | 'options'>;

const norm = (a: string): string => (ipaddr.isValid(a) ? ipaddr.process(a).toString() : a.toLowerCase());

/** The alias of the host with this address (hosts only, not VIPs). */
export function aliasOfAddress(inv: Pick<Inventory, 'servers'>, address: string): string | null {
  const want = norm(address);
  for (const [alias, a] of Object.entries(inv.servers)) {
    if (!alias.endsWith('_vip') && typeof a === 'string' && a && norm(a) === want) return alias;
  }
  return null;
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(1)} GiB`;
}
export { bytes as formatBytes };

export function evaluate(inv: Inv, plan: StatusPlan, probes: Record<string, HostProbe>, local: LocalState, checkedAt: Date, durationMs: number): ClusterHealth {
  const problems: Finding[] = [];
  const notes: Finding[] = [];
  const problem = (f: Finding) => void problems.push(f);
  const note = (f: Finding) => void notes.push(f);
  const sec = (alias: string, name: SectionName): string | undefined => probes[alias]?.sections?.[name];
  const answered = (alias: string): boolean => Boolean(probes[alias]?.sections);

  // SSH, and scripts cut off by their time limit.
  for (const [alias, p] of Object.entries(probes)) {
    if (!p.reach.reachable) problem({ service: 'ssh', host: alias, message: `${alias} (${p.reach.address}) is unreachable: ${p.reach.error ?? 'no answer'}` });
    else if (p.reach.error) problem({ service: 'ssh', host: alias, message: `${alias}: ${p.reach.error}` });
    else if (p.sections && (plan.hosts[alias]?.length ?? 0) > 0 && p.sections.end === undefined) {
      problem({ service: 'ssh', host: alias, message: `${alias}: the status checks did not finish in time; what is missing is shown as unknown` });
    }
  }

  // keepalived
  let keepalived: KeepalivedNode[] | null = null;
  if (plan.pairs.length) {
    keepalived = [];
    for (const pair of plan.pairs) {
      for (const host of [pair.primary, pair.standby]) {
        const text = sec(host, 'keepalived');
        const k = text !== undefined ? parseKeepalived(text) : null;
        keepalived.push({ host, pair: pair.kind, deployed: k?.configured ?? false, active: k?.active ?? null, enabled: k?.enabled ?? null, check: k?.check ?? null });
        if (k?.configured && k.active !== 'active') {
          problem({ service: 'keepalived', host, message: `keepalived is ${k.active || 'not running'} on ${host}: it takes no part in the ${pair.vipAlias} failover`, fix: `systemctl start keepalived on ${host} (see journalctl -u keepalived)` });
        }
      }
    }
  }
  const kaDeployed = (kind: string) => (keepalived ?? []).some((k) => k.pair === kind && k.deployed);

  // VIPs
  const vips: VipStatus[] = plan.pairs.map((pair) => {
    const address = inv.servers[pair.vipAlias]!;
    const holders: string[] = [];
    const unknown: string[] = [];
    for (const host of [pair.primary, pair.standby]) {
      const text = sec(host, 'ip');
      if (text === undefined) unknown.push(host);
      else if (parseIpAddr(text).some((a) => norm(a.address) === norm(address))) holders.push(host);
    }
    const deployed = kaDeployed(pair.kind);
    if (holders.length > 1) {
      problem({
        service: 'vip',
        message: `${pair.vipAlias} ${address} is on both ${holders.join(' and ')} (split brain: clients reach either)`,
        fix: pair.kind === 'db' ? `stop keepalived on the node whose PostgreSQL is not the writable primary, then ha-setup rejoin db` : `stop keepalived on one of them (systemctl stop keepalived), then start it again`,
      });
    } else if (deployed && holders.length === 0 && unknown.length === 0) {
      problem({
        service: 'vip',
        message: `${pair.vipAlias} ${address} is held by no host: clients cannot reach the ${SERVED[pair.kind] ?? 'service'} through it`,
        fix: `see journalctl -u keepalived -t ha-setup-keepalived on ${pair.primary} and ${pair.standby}`,
      });
    } else if (!deployed && answered(pair.primary) && answered(pair.standby)) {
      note({ service: 'vip', message: `keepalived is not set up on the ${pair.kind.toUpperCase()} pair yet: ${pair.vipAlias} is expected nowhere`, fix: 'ha-setup apply --runbook keepalived' });
    }
    return { alias: pair.vipAlias, address, pair: [pair.primary, pair.standby], holders, deployed, unknown };
  });

  const postgres = evaluatePostgres(inv, plan, probes, vips, problem, note);
  const lbs = LOAD_BALANCERS.filter((a) => plan.hosts[a]?.includes('haproxy'));
  const haproxy = lbs.length ? lbs.map((host) => evaluateHaproxy(inv, host, probes, postgres, problem, note)) : null;
  const nfs = evaluateNfs(inv, plan, probes, vips, problem, note);
  const k8s = evaluateK8s(inv, plan, probes, problem, note);

  return {
    schema: STATUS_SCHEMA,
    cluster: inv.cluster,
    topology: inv.topology,
    checkedAt: checkedAt.toISOString(),
    durationMs,
    healthy: problems.length === 0,
    problems,
    notes,
    lock: local.lock,
    lastRun: local.lastRun,
    resumeAt: local.resumeAt,
    hosts: Object.values(probes).map((p) => p.reach),
    vips,
    postgres,
    keepalived,
    haproxy,
    nfs,
    k8s,
  };
}

type Say = (f: Finding) => void;

const SERVED: Record<string, string> = { db: 'database', nfs: 'NFS share', lb: 'load balancer' };

function evaluatePostgres(inv: Inv, plan: StatusPlan, probes: Record<string, HostProbe>, vips: VipStatus[], problem: Say, note: Say): PostgresStatus | null {
  const aliases = ['db_primary', 'db_standby'].filter((a) => plan.hosts[a]?.includes('pg'));
  if (aliases.length === 0) return null;
  const nodes: PgNodeStatus[] = aliases.map((host) => {
    const address = inv.servers[host]!;
    const p = probes[host];
    const text = p?.sections?.pg;
    if (text === undefined) {
      return { host, address, deployed: true, state: 'unknown', role: null, timeline: null, unit: null, unitState: null, error: p?.reach.reachable === false ? 'host unreachable' : 'no answer', fence: null, currentLsn: null, replication: [], standby: null, healthService: null };
    }
    const f = parsePg(text);
    const haText = p!.sections!['pg-ha'];
    const fence = haText !== undefined ? parsePgHa(haText) : null;
    const running = f.role !== null;
    const state: PgNodeStatus['state'] = running ? 'running' : f.postmaster || /^(active|activating|reloading|deactivating)$/.test(f.unitState ?? '') ? 'unknown' : 'down';
    return {
      host,
      address,
      deployed: f.installed,
      state,
      role: f.role,
      timeline: f.timeline,
      unit: f.unit,
      unitState: f.unitState,
      error: running ? null : f.error,
      fence,
      currentLsn: f.currentLsn,
      replication: f.replication.map((r) => ({ ...r, host: (r.clientAddr && aliasOfAddress(inv, r.clientAddr)) || aliases.find((a) => slotName(inv.servers[a]!) === r.applicationName) || null })),
      standby: f.standby,
      healthService: f.health,
    };
  });
  const deployed = nodes.filter((n) => n.deployed);
  if (deployed.length === 0) {
    if (nodes.some((n) => n.state !== 'unknown')) note({ service: 'postgres', message: 'PostgreSQL is not installed on the database servers yet', fix: 'ha-setup apply' });
    return { nodes, primary: null, replication: [] };
  }
  const primaries = nodes.filter((n) => n.role === 'primary');
  const primary = primaries.length === 1 ? primaries[0]!.host : null;
  const dbVip = vips.find((v) => v.alias === 'db_vip');

  if (primaries.length > 1) {
    problem({
      service: 'postgres',
      message: `two writable primaries: ${primaries.map((n) => `${n.host} (timeline ${n.timeline ?? '?'})`).join(' and ')}`,
      fix: `keep the one that holds db_vip${dbVip?.holders.length === 1 ? ` (${dbVip.holders[0]})` : ''}, stop PostgreSQL on the other, then ha-setup rejoin db`,
    });
  } else if (primaries.length === 0 && deployed.some((n) => n.state !== 'unknown' || n.error !== 'host unreachable')) {
    problem({ service: 'postgres', message: 'no writable PostgreSQL primary answers: the database takes no writes', fix: `see journalctl -t ha-setup-keepalived on ${aliases.join(' and ')}` });
  }

  for (const n of deployed) {
    const unit = n.unit ?? 'postgresql';
    const fenced = n.fence?.fenced === true;
    if (n.state === 'down') {
      problem({
        service: 'postgres',
        host: n.host,
        message: `PostgreSQL is down on ${n.host}${fenced ? ' (fenced by keepalived after a failover: it may start only as a standby)' : ''}`,
        fix: fenced ? (primary && primary !== n.host ? `ha-setup rejoin db (makes ${n.host} a standby of ${primary})` : `see journalctl -t ha-setup-keepalived on ${n.host}`) : `systemctl start ${unit} on ${n.host} (see journalctl -u ${unit})`,
      });
    } else if (n.state === 'unknown' && n.error !== 'host unreachable') {
      problem({ service: 'postgres', host: n.host, message: `PostgreSQL on ${n.host} does not answer: ${n.error ?? 'no answer'}`, fix: `see journalctl -u ${unit} on ${n.host}` });
    }
    if (n.role === 'primary' && fenced) {
      problem({ service: 'postgres', host: n.host, message: `${n.host} is fenced but runs as a writable primary (keepalived is stopping it)`, fix: `see journalctl -t ha-setup-keepalived on ${n.host}` });
    }
    if (n.healthService !== null && n.healthService !== 'active') {
      problem({ service: 'postgres', host: n.host, message: `the health service for HAProxy (ha-setup-pg-health) is ${n.healthService || 'not running'} on ${n.host}`, fix: `systemctl start ha-setup-pg-health on ${n.host}` });
    }
  }
  if (primary && dbVip && dbVip.holders.length === 1 && dbVip.holders[0] !== primary) {
    problem({ service: 'vip', message: `db_vip is on ${dbVip.holders[0]}, but the writable primary is ${primary}: writes through the VIP fail`, fix: `see journalctl -t ha-setup-keepalived on ${dbVip.holders[0]}` });
  }
  if (primary && primary !== 'db_primary' && inv.servers.db_primary) {
    note({ service: 'postgres', message: `${primary} is the writable primary since a failover (the table still names db_primary as the primary)`, fix: 'once db_primary is a standby again (ha-setup rejoin db), swap db_primary and db_standby in the table' });
  }

  // Replication: each node that is not the primary, seen from both sides.
  const p = primaries.length === 1 ? primaries[0]! : null;
  const replication: ReplicationLink[] = [];
  for (const n of deployed) {
    if (n === p) continue;
    const row = p?.replication.find((r) => r.host === n.host) ?? null;
    const lagBytes = row?.lagBytes ?? null;
    const lagSeconds = row?.replayLagSeconds ?? (lagBytes === 0 ? 0 : (n.standby?.lastReplayAgeSeconds ?? null));
    replication.push({
      standby: n.host,
      primary: p?.host ?? null,
      state: row?.state ?? null,
      syncState: row?.syncState ?? null,
      receiver: n.standby?.receiver ?? null,
      lagBytes,
      lagSeconds,
      writeLagSeconds: row?.writeLagSeconds ?? null,
      flushLagSeconds: row?.flushLagSeconds ?? null,
      replayLagSeconds: row?.replayLagSeconds ?? null,
    });
    if (!p) continue;
    const unit = n.unit ?? 'postgresql';
    if (n.role === 'standby' && (row?.state !== 'streaming' || n.standby?.receiver !== 'streaming')) {
      problem({
        service: 'postgres',
        host: n.host,
        message: `${n.host} is a standby but does not stream from ${p.host} (primary sees: ${row?.state ?? 'no connection'}; standby's receiver: ${n.standby?.receiver ?? 'not running'})`,
        fix: `see journalctl -u ${unit} on ${n.host}; ha-setup rejoin db if it follows an old primary`,
      });
    } else if (n.role === 'standby' && ((lagBytes ?? 0) > LAG_LIMITS.bytes || (lagSeconds ?? 0) > LAG_LIMITS.seconds)) {
      problem({ service: 'postgres', host: n.host, message: `${n.host} lags ${bytes(lagBytes ?? 0)} / ${lagSeconds ?? '?'} s behind ${p.host} (limits: ${bytes(LAG_LIMITS.bytes)}, ${LAG_LIMITS.seconds} s)`, fix: `check the network and disk of ${n.host}` });
    } else if (n.state === 'down') {
      problem({ service: 'postgres', message: `no standby streams from ${p.host}: a failure of ${p.host} now loses the database`, fix: n.fence?.fenced ? `ha-setup rejoin db` : `start PostgreSQL on ${n.host}` });
    }
  }
  return { nodes, primary, replication };
}

/**
 * A server line's table host: by address, else by the names the HAProxy runbooks give their
 * servers (the app servers' aliases; db1, db2 for db_primary, db_standby).
 */
export function serverResolver(inv: Pick<Inventory, 'servers' | 'options'>): ServerResolver {
  const hosts = Object.fromEntries(Object.entries(inv.servers).filter(([a, v]) => !a.endsWith('_vip') && v).map(([alias, address]) => [alias, { alias, address: address! }]));
  const db = new Map(dbServers({ hosts, options: inv.options }).map((d) => [d.name, aliasOfAddress(inv, d.address)]));
  return (name, address) => (address ? aliasOfAddress(inv, address) : null) ?? db.get(name) ?? (hosts[name] && /^app\d+$/.test(name) ? name : null);
}

function evaluateHaproxy(inv: Inv, lb: string, probes: Record<string, HostProbe>, pg: PostgresStatus | null, problem: Say, note: Say): HaproxyStatus {
  const p = probes[lb];
  const text = p?.sections?.haproxy;
  if (text === undefined) return { host: lb, deployed: true, active: null, source: null, error: p?.reach.reachable !== false ? 'no answer' : 'host unreachable', proxies: [] };
  const h = parseHaproxy(text);
  const stats = parseHaproxyStats(p?.sections?.['haproxy-stats'] ?? '', serverResolver(inv));
  const out: HaproxyStatus = { host: lb, deployed: h.managed, active: h.active, source: stats.source, error: stats.error, proxies: stats.proxies };
  if (!h.managed) {
    note({ service: 'haproxy', host: lb, message: h.installed ? `HAProxy on ${lb} is not configured by ha-setup yet` : `HAProxy is not set up on ${lb} yet`, fix: 'ha-setup apply --runbook haproxy' });
    return out;
  }
  if (h.active !== 'active') {
    problem({ service: 'haproxy', host: lb, message: `haproxy is ${h.active || 'not running'} on ${lb}: nothing behind it is reachable through it`, fix: `systemctl start haproxy on ${lb} (see journalctl -u haproxy)` });
    return out;
  }
  if (stats.error) {
    problem({ service: 'haproxy', host: lb, message: `cannot read HAProxy's statistics on ${lb}: ${stats.error}`, fix: 'ha-setup apply --runbook haproxy (rewrites haproxy.cfg and its stats section)' });
    return out;
  }
  const o = haproxyOptions(inv.options);
  for (const px of stats.proxies) {
    if (px.kind === 'db') {
      const up = px.servers.filter((s) => s.state === 'up');
      if (up.length === 0) {
        problem({ service: 'haproxy', host: lb, message: `HAProxy's postgres backend has no node UP: apps get no database through ${lb}:${o.dbPort}`, fix: `check ha-setup-pg-health on the DB nodes (port ${o.healthPort}) and the writable primary` });
      } else if (up.length > 1) {
        problem({ service: 'haproxy', host: lb, message: `HAProxy sends database sessions to ${up.length} nodes (${up.map((s) => s.host ?? s.name).join(', ')}): two writable primaries?` });
      } else if (pg?.primary && up[0]!.host && up[0]!.host !== pg.primary) {
        problem({ service: 'haproxy', host: lb, message: `HAProxy routes the database to ${up[0]!.host}, but the writable primary is ${pg.primary} (a failover in progress clears within about 10 s)` });
      }
      continue;
    }
    const bad = px.servers.filter((s) => s.state !== 'up' && s.state !== 'no-check');
    for (const s of bad) {
      const who = s.host ?? s.name;
      problem({
        service: 'haproxy',
        host: lb,
        message: `HAProxy backend ${px.name}: ${who}${s.address ? ` (${s.address})` : ''} is ${s.status}${s.checkStatus ? ` (${s.checkStatus}${s.lastChangeSeconds !== null ? `, for ${s.lastChangeSeconds} s` : ''})` : ''}`,
        fix: s.state === 'maint' ? `enable it again (it was put in maintenance)` : px.kind === 'app' ? `check that the app on ${who} answers on port ${o.appPort}` : undefined,
      });
    }
    if (px.servers.length > 0 && bad.length === px.servers.length) {
      problem({ service: 'haproxy', host: lb, message: `HAProxy backend ${px.name} has no server UP: requests to it fail` });
    }
  }
  return out;
}

function evaluateNfs(inv: Inv, plan: StatusPlan, probes: Record<string, HostProbe>, vips: VipStatus[], problem: Say, note: Say): NfsStatus | null {
  const servers = ['nfs_primary', 'nfs_standby'].filter((a) => plan.hosts[a]?.includes('nfs-server'));
  if (servers.length === 0) return null;
  const o = nfsOptions(inv.options);
  const status: NfsStatus = { vip: inv.servers.nfs_vip ?? null, exportDir: o.exportDir, servers: [], clients: [] };
  for (const host of servers) {
    const text = probes[host]?.sections?.['nfs-server'];
    if (text === undefined) {
      status.servers.push({ host, deployed: true, unit: o.server === 'ganesha' ? 'nfs-ganesha' : 'nfs-server', active: null, listening: null, replicationTimer: null, lastPass: null });
      continue;
    }
    const f = parseNfsServer(text);
    status.servers.push({ host, deployed: f.managed, unit: f.unit, active: f.active, listening: f.listening, replicationTimer: f.timer, lastPass: f.lastPass });
    if (!f.managed) continue;
    if (f.active !== 'active') {
      problem({ service: 'nfs', host, message: `${f.unit} is ${f.active || 'not running'} on ${host}`, fix: `systemctl start ${f.unit} on ${host} (see journalctl -u ${f.unit})` });
    } else if (f.listening === false) {
      problem({ service: 'nfs', host, message: `${f.unit} runs on ${host} but nothing listens on TCP 2049`, fix: `see journalctl -u ${f.unit} on ${host}` });
    }
    const pair = servers.length === 2 && inv.servers.nfs_vip;
    if (pair && f.timer !== 'active') {
      problem({ service: 'nfs', host, message: `the replication timer (ha-setup-nfs-replicate.timer) is ${f.timer || 'not running'} on ${host}: the standby's copy falls behind`, fix: `systemctl enable --now ha-setup-nfs-replicate.timer on ${host}` });
    }
    if (pair && f.lastPass && f.lastPass.result !== 'success') {
      problem({ service: 'nfs', host, message: `the last replication pass on ${host} failed (${f.lastPass.result})`, fix: `see journalctl -u ha-setup-nfs-replicate.service on ${host}` });
    }
  }
  const deployed = status.servers.some((s) => s.deployed);
  if (!deployed) {
    note({ service: 'nfs', message: 'the NFS servers are not set up yet', fix: 'ha-setup apply --runbook nfs' });
    return status;
  }
  const vip = vips.find((v) => v.alias === 'nfs_vip');
  for (const [alias, p] of Object.entries(probes)) {
    const text = p.sections?.['nfs-client'];
    if (text === undefined) continue;
    const c = parseNfsClient(text, alias);
    status.clients.push(c);
    if (c.ok === false && !(vip && vip.deployed && vip.holders.length === 0)) {
      problem({
        service: 'nfs',
        host: alias,
        message: `${alias} cannot reach the export ${o.exportDir} through nfs_vip ${status.vip} (${c.method}: ${c.detail || 'failed'})`,
        fix: vip?.holders.length === 1 ? `check ${serverUnit(o)} and the firewall on ${vip.holders[0]}` : undefined,
      });
    }
    if (c.mount && !c.mount.ok) problem({ service: 'nfs', host: alias, message: `the share's mount ${o.mountPath} on ${alias} does not answer (${c.mount.source})` });
  }
  return status;
}

const serverUnit = (o: { server: string }): string => (o.server === 'ganesha' ? 'nfs-ganesha' : 'nfs-server');

/** A pod's node in the table: by its host IP, else a node named like an app alias or like a table address (a hostname). */
export function nodeResolver(inv: Pick<Inventory, 'servers'>): NodeResolver {
  return (hostIp, nodeName) => {
    const byIp = hostIp ? aliasOfAddress(inv, hostIp) : null;
    if (byIp) return byIp;
    if (!nodeName) return null;
    if (!nodeName.endsWith('_vip') && inv.servers[nodeName]) return nodeName;
    return aliasOfAddress(inv, nodeName);
  };
}

const podWhere = (p: K8sPod): string => (p.node ? `on ${p.node}${p.host && p.host !== p.node ? ` (${p.host})` : ''}` : 'not scheduled');

/** What is wrong with a pod that is not ready, in a few words. */
function podTrouble(p: K8sPod): string {
  const why = [p.reason ?? (p.phase === 'Running' ? 'not ready' : p.phase), p.restarts ? `${p.restarts} restart${p.restarts === 1 ? '' : 's'}` : ''].filter(Boolean).join(', ');
  return `${p.name} ${podWhere(p)}: ${why}`;
}

function evaluateK8s(inv: Inv, plan: StatusPlan, probes: Record<string, HostProbe>, problem: Say, note: Say): K8sStatus | null {
  const host = 'k8s_master';
  if (inv.topology !== 'k8s' || !inv.servers[host]) return null;
  if (!plan.hosts[host]?.includes('k8s')) {
    // No section: options.k8s is missing or invalid (app-scale would refuse it the same way).
    if (inv.options.k8s === undefined) {
      note({ service: 'k8s', host, message: "options.k8s is not set: status cannot look at the app's Deployment on k8s_master", fix: 'set options.k8s.deployment and options.k8s.configMap in the table (app-scale needs them too)' });
    } else {
      try {
        k8sOptions(inv.options);
      } catch (e) {
        problem({ service: 'k8s', host, message: `the app's Deployment is not checked: ${(e as Error).message}`, fix: 'fix options.k8s in the table' });
      }
    }
    return null;
  }
  const o = k8sOptions(inv.options);
  const status: K8sStatus = {
    host,
    namespace: o.namespace,
    deployment: o.deployment,
    state: 'unknown',
    error: null,
    kubeconfig: null,
    replicas: null,
    rollout: null,
    conditions: [],
    selector: null,
    pods: [],
    nodes: [],
    idleAppHosts: [],
    podsError: null,
    configMap: { name: o.configMap, key: o.dbHostKey, state: 'unknown', value: null, dbVip: inv.servers.db_vip || null, error: null },
  };
  const p = probes[host];
  const sections = p?.sections;
  if (!sections || sections.k8s === undefined) {
    status.error = p?.reach.reachable === false ? 'host unreachable' : 'no answer';
    return status;
  }
  const f = parseK8s(sections.k8s);
  status.kubeconfig = f.kubeconfig;
  const where = `on ${host}`;
  if (!f.kubectl) {
    status.state = 'no-kubectl';
    status.error = "kubectl is not on root's PATH";
    problem({ service: 'k8s', host, message: `kubectl is not installed ${where} (or not on root's PATH): the app's Deployment cannot be checked`, fix: `${host} must be the control-plane node, with kubectl and /etc/kubernetes/admin.conf or root's ~/.kube/config (as app-scale needs)` });
    return status;
  }
  const dep = sections['k8s-deployment'];
  const a = dep === undefined ? null : parseKubectlAnswer(dep);
  if (!a || a.exit === null) {
    status.error = 'no answer (the checks did not finish in time)';
    return status;
  }
  if (a.exit !== 0) {
    const kind = kubectlFailure(a);
    const err = a.error ?? (a.exit === 124 || a.exit === 137 ? `no answer within ${KUBECTL_LIMITS.hardSeconds} s` : `kubectl exit ${a.exit}`);
    status.error = err;
    if (kind === 'unreachable') {
      status.state = 'api-unreachable';
      const noConfig = f.kubeconfig === null && /localhost:8080/.test(err);
      problem({
        service: 'k8s',
        host,
        message: `the Kubernetes API server does not answer kubectl ${where}: ${err}`,
        fix: noConfig
          ? `root has no kubeconfig ${where}: kubectl needs /etc/kubernetes/admin.conf (kubeadm) or /root/.kube/config`
          : `${where}: systemctl status kubelet, and crictl ps --name kube-apiserver (the API server of ${f.kubeconfig ?? 'the kubeconfig'})`,
      });
      return status;
    }
    if (kind === 'other') {
      status.state = 'error';
      problem({
        service: 'k8s',
        host,
        message: `kubectl ${where} cannot read deployment ${o.deployment}: ${err}`,
        fix: /Unauthorized|Forbidden/.test(err) ? `root's kubeconfig ${where} (${f.kubeconfig ?? 'none'}) needs read access to deployments, pods and configmaps in ${o.namespace}` : undefined,
      });
      return status;
    }
    status.state = 'no-deployment';
    problem({ service: 'k8s', host, message: `deployment ${o.deployment} not found in namespace ${o.namespace} ${where}: the app does not run`, fix: 'deploy the app (its manifests) first, or fix options.k8s.deployment / options.k8s.namespace' });
  } else {
    status.state = 'ok';
    evaluateDeployment(inv, o, status, a.body, sections['k8s-pods'], problem, note);
  }

  // The config map's DB host (asked whenever the API answered).
  const cm = status.configMap;
  const cmText = sections['k8s-configmap'];
  const c = cmText === undefined ? null : parseKubectlAnswer(cmText);
  if (c?.exit === 0) {
    cm.state = 'read';
    cm.value = c.body === '' ? null : c.body;
  } else if (c && c.exit !== null) {
    cm.error = c.error ?? `kubectl exit ${c.exit}`;
    cm.state = kubectlFailure(c) === 'not-found' ? 'not-found' : 'unknown';
  }
  if (cm.state === 'not-found') {
    problem({ service: 'k8s', host, message: `config map ${cm.name} not found in namespace ${o.namespace}: the app has no database address`, fix: "create it with the app's manifests (or fix options.k8s.configMap), then ha-setup apply --runbook app-scale" });
  } else if (cm.state === 'read' && cm.dbVip && cm.value !== cm.dbVip) {
    problem({
      service: 'k8s',
      host,
      message: `config map ${cm.name}: ${cm.key} is ${cm.value === null ? 'not set' : cm.value}, not db_vip ${cm.dbVip}: the app's database connections do not follow a failover`,
      fix: 'ha-setup apply --runbook app-scale',
    });
  } else if (cm.state === 'unknown' && cm.error) {
    problem({ service: 'k8s', host, message: `kubectl ${where} cannot read config map ${cm.name}: ${cm.error}` });
  }
  return status;
}

/** The Deployment (it exists): replicas and rollout, its pods per node, what is wrong with them. */
function evaluateDeployment(inv: Inv, o: K8sOptions, status: K8sStatus, json: string, podsText: string | undefined, problem: Say, note: Say): void {
  const host = status.host;
  const where = `on ${host}`;
  const d = parseK8sDeployment(json);
  Object.assign(status, { replicas: d.replicas, rollout: d.rollout, conditions: d.conditions, selector: d.selector || null });
  if (podsText === undefined) status.podsError = 'no answer (the checks did not finish in time)';
  else if (!d.selector) status.podsError = `deployment ${o.deployment} has no spec.selector.matchLabels`;
  else {
    const pa = parseKubectlAnswer(podsText.replace(/^SELECTOR=.*\n?/, ''));
    if (pa.exit === 0) {
      status.pods = parseK8sPods(pa.body, nodeResolver(inv));
      status.nodes = podsByNode(status.pods);
    } else status.podsError = pa.exit === null ? 'no answer (the checks did not finish in time)' : (pa.error ?? `kubectl exit ${pa.exit}`);
  }
  const apps = appAliases(inv.servers).filter((x) => inv.servers[x]);
  if (status.pods.some((x) => x.host && apps.includes(x.host))) {
    status.idleAppHosts = apps.filter((x) => !status.nodes.some((n) => n.host === x && n.total > 0));
  }

  const r = d.replicas;
  const live = status.pods.filter((x) => !x.terminating);
  if (r.ready < r.desired) {
    const notReady = live.filter((x) => !x.ready);
    const rollout = d.rollout.state === 'failed' ? `, rollout failed (${d.rollout.reason})` : '';
    const which = notReady.length ? `; not ready: ${notReady.map(podTrouble).join('; ')}` : status.podsError ? '' : `; only ${live.length} pod${live.length === 1 ? ' exists' : 's exist'}`;
    const names = notReady.map((x) => x.name);
    const crashed = notReady.find((x) => x.restarts > 0);
    problem({
      service: 'k8s',
      host,
      message: `deployment ${o.deployment}: ${r.ready} of ${r.desired} replicas ready${rollout}${which}`,
      fix: names.length
        ? `${where}: kubectl describe pod ${names.join(' ')} -n ${o.namespace} (${names.length === 1 ? 'its' : 'their'} events say why)${crashed ? `; kubectl logs ${crashed.name} -n ${o.namespace} --previous` : ''}`
        : `${where}: kubectl describe deployment ${o.deployment} -n ${o.namespace}, and kubectl get events -n ${o.namespace}`,
    });
  } else if (d.rollout.state === 'failed') {
    problem({ service: 'k8s', host, message: `deployment ${o.deployment}: rollout failed (${d.rollout.reason}): ${d.rollout.message ?? ''}`.replace(/: $/, ''), fix: `${where}: kubectl rollout status deployment/${o.deployment} -n ${o.namespace}, and kubectl describe deployment ${o.deployment} -n ${o.namespace}` });
  }
  const scheduled = live.filter((x) => x.node);
  if (apps.length >= 2 && scheduled.length >= 2 && new Set(scheduled.map((x) => x.node)).size === 1) {
    problem({
      service: 'k8s',
      host,
      message: `all ${scheduled.length} pods of deployment ${o.deployment} run ${podWhere(scheduled[0]!)}: losing that node stops the app (the table has ${apps.length} app nodes: ${apps.join(', ')})`,
      fix: `${where}: kubectl get nodes (are the other app nodes Ready, not cordoned?), then kubectl rollout restart deployment/${o.deployment} -n ${o.namespace}`,
    });
  }
  if (r.desired !== o.replicas) {
    note({ service: 'k8s', host, message: `deployment ${o.deployment} wants ${r.desired} replicas; options.k8s.replicas is ${o.replicas}`, fix: 'ha-setup apply --runbook app-scale (scales it to options.k8s.replicas), or change options.k8s.replicas' });
  }
}
