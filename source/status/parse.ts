/**
 * Pure parsers of what the status script (./scripts.ts) prints on a host: the sections, and
 * in each the KEY=value lines or the command output it carries. No I/O; unit-tested with output
 * captured from real servers (test/fixtures/status/).
 */
import { MARKER, type SectionName } from './scripts.js';
import { parseDeployment, rolledOut, selectorOf } from '../../runbooks/app-scale.js';
import type { FenceStatus, HaproxyProxy, HaproxyServer, K8sCondition, K8sNodePods, K8sPod, K8sReplicas, K8sStatus, NfsClientCheck, ReplicationRow, StandbyView } from './types.js';

/** The sections of one host's output, by name (a section cut off by a timeout is kept as far as it got). */
export function splitSections(stdout: string): Partial<Record<SectionName | 'end', string>> {
  const out: Partial<Record<string, string>> = {};
  let current: string | null = null;
  let lines: string[] = [];
  const flush = () => {
    if (current) out[current] = lines.join('\n');
  };
  for (const line of stdout.split('\n')) {
    if (line.startsWith(`${MARKER} `)) {
      flush();
      current = line.slice(MARKER.length + 1).trim();
      lines = [];
    } else if (current) lines.push(line);
  }
  flush();
  return out;
}

/** KEY=value lines (keys as systemctl show and our scripts print them); the last one wins. */
export function parseKeyValues(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z][A-Za-z0-9_]*)=(.*)$/.exec(line.replace(/\r$/, ''));
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

const num = (s: string | undefined): number | null => {
  if (s === undefined || s.trim() === '') return null;
  const n = Number(s);
  return Number.isFinite(n) ? n : null;
};
const str = (s: string | undefined): string | null => (s === undefined || s === '' ? null : s);

export interface IpAddress {
  iface: string;
  family: 'inet' | 'inet6';
  address: string;
  prefix: number;
}

/** `ip -o addr show`: one line per address. */
export function parseIpAddr(text: string): IpAddress[] {
  const out: IpAddress[] = [];
  for (const line of text.split('\n')) {
    const m = /^\d+:\s+(\S+)\s+(inet6?)\s+([0-9A-Fa-f.:]+)\/(\d+)/.exec(line);
    if (m) out.push({ iface: m[1]!.replace(/@.*$/, ''), family: m[2] as 'inet' | 'inet6', address: m[3]!, prefix: Number(m[4]) });
  }
  return out;
}

export interface KeepalivedFacts {
  configured: boolean;
  active: string | null;
  enabled: string | null;
  check: { ok: boolean; message: string } | null;
}

export function parseKeepalived(text: string): KeepalivedFacts {
  const kv = parseKeyValues(text);
  // The check scripts record "<exit status> <verdict>".
  const m = /^(\d+) (.*)$/.exec((kv.CHECK ?? '').trim());
  return {
    configured: kv.CONFIGURED === 'yes',
    active: str(kv.ACTIVE),
    enabled: str(kv.ENABLED),
    check: m ? { ok: m[1] === '0', message: m[2]!.trim() } : null,
  };
}

export interface PgFacts {
  installed: boolean;
  unit: string | null;
  unitState: string | null;
  /** The postmaster's pid in postmaster.pid is alive. */
  postmaster: boolean;
  /** ha-setup-pg-health's state when that unit exists. */
  health: string | null;
  /** psql's error, when it did not answer. */
  error: string | null;
  role: 'primary' | 'standby' | null;
  timeline: number | null;
  currentLsn: string | null;
  replication: Omit<ReplicationRow, 'host'>[];
  standby: StandbyView | null;
}

export function parseReplicationRow(line: string): Omit<ReplicationRow, 'host'> {
  const [addr = '', app = '', state = '', sync = '', sent = '', replay = '', bytes = '', w = '', f = '', r = ''] = line.split('|');
  return {
    clientAddr: str(addr),
    applicationName: app,
    state,
    syncState: sync,
    sentLsn: str(sent),
    replayLsn: str(replay),
    lagBytes: num(bytes),
    writeLagSeconds: num(w),
    flushLagSeconds: num(f),
    replayLagSeconds: num(r),
  };
}

export function parsePg(text: string): PgFacts {
  const kv = parseKeyValues(text);
  const role = kv.ROLE === 'primary' || kv.ROLE === 'standby' ? kv.ROLE : null;
  const repl = text
    .split('\n')
    .filter((l) => l.startsWith('REPL='))
    .map((l) => parseReplicationRow(l.slice(5)));
  let standby: StandbyView | null = null;
  if (role === 'standby') {
    const [status = '', sender = ''] = (kv.RECEIVER ?? '').split('|');
    standby = {
      receiver: str(status),
      senderHost: str(sender),
      receiveLsn: str(kv.RECEIVE_LSN),
      replayLsn: str(kv.REPLAY_LSN),
      replayBacklogBytes: num(kv.REPLAY_BACKLOG),
      lastReplayAt: str(kv.LAST_REPLAY_AT),
      lastReplayAgeSeconds: num(kv.LAST_REPLAY_AGE),
    };
  }
  return {
    installed: kv.INSTALLED === 'yes',
    unit: str(kv.UNIT),
    unitState: str(kv.UNIT_STATE),
    postmaster: kv.POSTMASTER === 'yes',
    health: str(kv.HEALTH),
    error: role ? null : (str(kv.ERROR) ?? 'no answer from psql'),
    role,
    timeline: num(kv.TIMELINE),
    currentLsn: str(kv.CURRENT_LSN),
    replication: role === 'primary' ? repl : [],
    standby,
  };
}

/** `pg-ha status` (assets/keepalived/pg-ha.sh): POSTGRES, TIMELINE, VIP, FENCED, GENERATION. */
export function parsePgHa(text: string): FenceStatus {
  const kv = parseKeyValues(text);
  if (kv.INSTALLED === 'no' || !kv.POSTGRES) return { installed: kv.INSTALLED !== 'no' && text.trim() !== '', fenced: null, postgres: null, generation: null };
  return {
    installed: true,
    fenced: kv.FENCED === 'yes' ? true : kv.FENCED === 'no' ? false : null,
    postgres: kv.POSTGRES,
    generation: str(kv.GENERATION),
  };
}

/** One CSV line of HAProxy's stats (no field of ours contains a quote or a comma). */
const csvFields = (line: string): string[] => line.split(',');

function serverState(status: string): HaproxyServer['state'] {
  const s = status.trim().toUpperCase();
  if (s === 'NO CHECK') return 'no-check';
  if (s.startsWith('UP') || s === 'OPEN') return 'up';
  if (s.startsWith('DOWN') || s === 'NOLB') return 'down';
  if (s.startsWith('MAINT')) return 'maint';
  if (s.startsWith('DRAIN')) return 'drain';
  return 'other';
}

export interface HaproxyStats {
  source: 'socket' | 'stats-page' | null;
  error: string | null;
  /** Proxies that have servers (frontends and the stats page itself are left out). */
  proxies: HaproxyProxy[];
}

/** The CSV of `show stat` / the stats page's `;csv`. Addresses are mapped to aliases by `hostOf`. */
/**
 * Which table host a server line is: by its address when HAProxy shows one (the admin socket
 * does; the stats page hides addresses from a non-admin user), else by its name.
 */
export type ServerResolver = (name: string, address: string | null) => string | null;

export function parseHaproxyCsv(csv: string, hostOf: ServerResolver = () => null): HaproxyProxy[] {
  const lines = csv.split('\n').map((l) => l.replace(/\r$/, ''));
  const headerAt = lines.findIndex((l) => l.startsWith('# pxname,'));
  if (headerAt === -1) return [];
  const header = csvFields(lines[headerAt]!.slice(2));
  const col = (row: string[], name: string): string => {
    const i = header.indexOf(name);
    return i === -1 ? '' : (row[i] ?? '');
  };
  const byName = new Map<string, HaproxyProxy>();
  const proxy = (name: string): HaproxyProxy => {
    let p = byName.get(name);
    if (!p) {
      p = { name, kind: name === 'app' ? 'app' : name === 'postgres' ? 'db' : 'other', status: null, servers: [] };
      byName.set(name, p);
    }
    return p;
  };
  for (const line of lines.slice(headerAt + 1)) {
    if (!line.trim() || line.startsWith('#')) continue;
    const row = csvFields(line);
    if (row.length < header.length / 2) continue;
    const px = col(row, 'pxname');
    const sv = col(row, 'svname');
    if (sv === 'FRONTEND') continue;
    if (sv === 'BACKEND') {
      proxy(px).status = col(row, 'status') || null;
      continue;
    }
    const addrPort = col(row, 'addr');
    const address = addrPort ? addrPort.replace(/^\[?([^\]]*?)\]?:\d+$/, '$1') : null;
    const status = col(row, 'status');
    proxy(px).servers.push({
      name: sv,
      host: hostOf(sv, address),
      address: addrPort || null,
      status,
      state: serverState(status),
      checkStatus: col(row, 'check_status').replace(/^\* /, ''),
      checkCode: str(col(row, 'check_code')),
      lastChangeSeconds: num(col(row, 'lastchg')),
      sessions: num(col(row, 'scur')),
    });
  }
  return [...byName.values()].filter((p) => p.servers.length > 0);
}

/** The haproxy-stats section: SOURCE=, then the socket's CSV or the stats page's HTTP answer. */
/** The body of an HTTP answer (after the blank line), de-chunked when it was sent in chunks. */
export function httpBody(text: string): { status: number; body: string } | null {
  const start = text.search(/^HTTP\/1\.[01] \d{3}/m);
  if (start === -1) return null;
  const raw = text.slice(start).replace(/\r\n/g, '\n');
  const status = Number(raw.slice(9, 12));
  const split = raw.indexOf('\n\n');
  if (split === -1) return { status, body: '' };
  const head = raw.slice(0, split);
  let body = raw.slice(split + 2);
  if (/^transfer-encoding:\s*chunked\s*$/im.test(head)) {
    let out = '';
    for (;;) {
      const nl = body.indexOf('\n');
      const size = parseInt(body.slice(0, nl), 16);
      if (nl === -1 || !Number.isFinite(size) || size === 0) break;
      out += body.slice(nl + 1, nl + 1 + size);
      body = body.slice(nl + 1 + size).replace(/^\n/, '');
    }
    body = out;
  }
  return { status, body };
}

export function parseHaproxyStats(text: string, hostOf?: ServerResolver): HaproxyStats {
  const source = /^SOURCE=(socket|stats-page)$/m.exec(text)?.[1] as HaproxyStats['source'] | undefined;
  const error = /^ERROR=(.*)$/m.exec(text)?.[1];
  if (error) return { source: source ?? null, error, proxies: [] };
  const http = httpBody(text);
  if (http && http.status !== 200) {
    const why = http.status === 401 ? 'the stats page refused the password of haproxy.cfg (401)' : `the stats page answered HTTP ${http.status}`;
    return { source: source ?? null, error: why, proxies: [] };
  }
  const csv = http ? http.body : text;
  const proxies = parseHaproxyCsv(csv, hostOf);
  if (!/^# pxname,/m.test(csv)) {
    const said = text.replace(/^SOURCE=.*$/m, '').trim().split('\n')[0] ?? '';
    return { source: source ?? null, error: `no statistics in HAProxy's answer${said ? `: ${said.slice(0, 160)}` : ''}`, proxies: [] };
  }
  return { source: source ?? null, error: null, proxies };
}

export interface HaproxyFacts {
  installed: boolean;
  managed: boolean;
  active: string | null;
}

export function parseHaproxy(text: string): HaproxyFacts {
  const kv = parseKeyValues(text);
  return { installed: kv.INSTALLED === 'yes', managed: kv.MANAGED === 'yes', active: str(kv.ACTIVE) };
}

export interface NfsServerFacts {
  unit: string;
  managed: boolean;
  active: string | null;
  listening: boolean | null;
  timer: string | null;
  lastPass: { result: string; secondsAgo: number | null } | null;
}

export function parseNfsServer(text: string): NfsServerFacts {
  const kv = parseKeyValues(text);
  const exitMono = num(kv.ExecMainExitTimestampMonotonic);
  const uptime = num(kv.UPTIME);
  // The service never ran: systemd shows Result=success with a zero timestamp.
  const ran = exitMono !== null && exitMono > 0;
  return {
    unit: kv.UNIT ?? '',
    managed: kv.MANAGED === 'yes',
    active: str(kv.ACTIVE),
    listening: kv.LISTEN === undefined ? null : Number(kv.LISTEN) > 0,
    timer: str(kv.TIMER),
    lastPass: ran && kv.Result ? { result: kv.Result, secondsAgo: uptime !== null ? Math.max(0, Math.round(uptime - exitMono / 1e6)) : null } : null,
  };
}

export function parseNfsClient(text: string, host: string): NfsClientCheck {
  const kv = parseKeyValues(text);
  const method = kv.METHOD === 'nfs-ls' || kv.METHOD === 'showmount' || kv.METHOD === 'tcp' ? kv.METHOD : null;
  const exit = num(kv.EXIT);
  let detail = (kv.DETAIL ?? '').trim();
  if (exit === 124 || exit === 137) detail = `no answer within the time limit${detail ? ` (${detail})` : ''}`;
  return {
    host,
    method,
    ok: exit === null ? null : exit === 0,
    detail,
    mount: kv.MOUNT_SOURCE !== undefined ? { source: kv.MOUNT_SOURCE, ok: kv.MOUNT_OK === 'yes' } : null,
  };
}

// ---------------------------------------------------------------------------------------------
// Topology k8s: what kubectl on k8s_master answered (the k8s* sections of ./scripts.ts)
// Tested on hand-written answers in kubectl 1.29's -o json shape: no Kubernetes runs in the lab.

export interface K8sFacts {
  kubectl: boolean;
  /** The kubeconfig kubectl used (null: none found). */
  kubeconfig: string | null;
}

export function parseK8s(text: string): K8sFacts {
  const kv = parseKeyValues(text);
  return { kubectl: kv.KUBECTL === 'yes', kubeconfig: str(kv.KUBECONFIG) };
}

/** One kubectl call: its stdout, its exit status (null: cut off before it ended), the last line of its stderr. */
export interface KubectlAnswer {
  body: string;
  exit: number | null;
  error: string | null;
}

/** A k8s-* section: kubectl's stdout as is, then EXIT= and, on failure, ERROR=. */
export function parseKubectlAnswer(text: string): KubectlAnswer {
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  let at = -1;
  for (let i = lines.length - 1; i >= 0; i--) {
    if (/^EXIT=\d+$/.test(lines[i]!)) {
      at = i;
      break;
    }
  }
  if (at === -1) return { body: text.trim(), exit: null, error: null };
  const error = lines.slice(at + 1).find((l) => l.startsWith('ERROR='));
  return { body: lines.slice(0, at).join('\n').trim(), exit: Number(lines[at]!.slice(5)), error: error === undefined ? null : error.slice(6).trim() || null };
}

/** How a failed kubectl call failed: the API server not reached, the object not there, or anything else. */
export function kubectlFailure(a: KubectlAnswer): 'unreachable' | 'not-found' | 'other' {
  // 124: timeout's TERM, 137: its KILL (-k): no answer within the limit.
  if (a.exit === 124 || a.exit === 137) return 'unreachable';
  const e = a.error ?? '';
  if (/^Error from server \(NotFound\)/.test(e)) return 'not-found';
  if (/^The connection to the server \S+ was refused|^Unable to connect to the server|dial tcp|no such host|i\/o timeout|connection refused|TLS handshake timeout/.test(e)) return 'unreachable';
  return 'other';
}

export interface K8sDeploymentFacts {
  replicas: K8sReplicas;
  rollout: NonNullable<K8sStatus['rollout']>;
  conditions: K8sCondition[];
  selector: string;
}

interface ConditionJson {
  type?: string;
  status?: string;
  reason?: string;
  message?: string;
}

const condition = (c: ConditionJson): K8sCondition => ({ type: c.type ?? '', status: c.status ?? 'Unknown', reason: str(c.reason), message: str(c.message) });

/** `kubectl get deployment NAME -o json`: app-scale's reading of it, and the rollout condition. */
export function parseK8sDeployment(json: string): K8sDeploymentFacts {
  const d = parseDeployment(json);
  const raw = JSON.parse(json) as { status?: { conditions?: ConditionJson[] } };
  const conditions = (raw.status?.conditions ?? []).map(condition);
  const progressing = conditions.find((c) => c.type === 'Progressing');
  let state: K8sDeploymentFacts['rollout']['state'];
  if (!progressing) state = 'unknown';
  else if (progressing.reason === 'ProgressDeadlineExceeded') state = 'failed';
  // The controller has not seen the latest spec yet: a rollout is starting.
  else if (d.observedGeneration < d.generation) state = 'progressing';
  else if (progressing.reason === 'NewReplicaSetAvailable') state = 'complete';
  else state = 'progressing';
  return {
    replicas: { desired: d.replicas, current: d.currentReplicas, updated: d.updatedReplicas, ready: d.readyReplicas, available: d.availableReplicas },
    rollout: { state, reason: progressing?.reason ?? null, message: progressing?.message ?? null, rolledOut: rolledOut(d) },
    conditions,
    selector: selectorOf(d.matchLabels),
  };
}

interface ContainerStatusJson {
  ready?: boolean;
  restartCount?: number;
  state?: { waiting?: { reason?: string; message?: string }; terminated?: { reason?: string; message?: string } };
}

interface PodJson {
  metadata?: { name?: string; deletionTimestamp?: string };
  spec?: { nodeName?: string; containers?: unknown[] };
  status?: { phase?: string; hostIP?: string; reason?: string; message?: string; conditions?: ConditionJson[]; containerStatuses?: ContainerStatusJson[] };
}

/** The table alias of a pod's node: by its host IP, else by the node's name. */
export type NodeResolver = (hostIp: string | null, nodeName: string | null) => string | null;

/** `kubectl get pods -l SELECTOR -o json` (a List). */
export function parseK8sPods(json: string, hostOf: NodeResolver = () => null): K8sPod[] {
  const list = JSON.parse(json) as { items?: PodJson[] };
  return (list.items ?? []).map((p) => {
    const statuses = p.status?.containerStatuses ?? [];
    const conditions = (p.status?.conditions ?? []).map(condition);
    const ready = conditions.some((c) => c.type === 'Ready' && c.status === 'True');
    const terminating = Boolean(p.metadata?.deletionTimestamp);
    const node = p.spec?.nodeName ?? null;
    let reason: string | null = null;
    let message: string | null = null;
    if (!ready) {
      // The most telling first: a container's own reason, then a False condition's, then the pod's.
      const c = statuses.map((s) => s.state?.waiting ?? s.state?.terminated).find((s) => s?.reason);
      const scheduled = conditions.find((x) => x.type === 'PodScheduled' && x.status === 'False');
      const other = conditions.find((x) => x.status === 'False' && x.reason);
      if (terminating) reason = 'Terminating';
      else if (c) [reason, message] = [c.reason!, str(c.message)];
      else if (scheduled) [reason, message] = [scheduled.reason ?? 'not scheduled', scheduled.message];
      else if (p.status?.reason) [reason, message] = [p.status.reason, str(p.status.message)];
      else if (other) [reason, message] = [other.reason, other.message];
    }
    return {
      name: p.metadata?.name ?? '',
      node,
      host: hostOf(str(p.status?.hostIP), node),
      phase: p.status?.phase ?? 'Unknown',
      ready,
      containersReady: statuses.filter((s) => s.ready).length,
      containers: p.spec?.containers?.length ?? statuses.length,
      restarts: statuses.reduce((n, s) => n + (s.restartCount ?? 0), 0),
      reason,
      message,
      terminating,
    };
  });
}

/** Pods per node, ready / total and terminating; nodes in name order, unscheduled pods last. */
export function podsByNode(pods: K8sPod[]): K8sNodePods[] {
  const by = new Map<string | null, K8sNodePods>();
  for (const p of pods) {
    const n = by.get(p.node) ?? { node: p.node, host: p.host, ready: 0, total: 0, terminating: 0 };
    if (p.terminating) n.terminating++;
    else {
      n.total++;
      if (p.ready) n.ready++;
    }
    n.host ??= p.host;
    by.set(p.node, n);
  }
  return [...by.values()].sort((a, b) => (a.node === null ? 1 : b.node === null ? -1 : a.node.localeCompare(b.node)));
}
