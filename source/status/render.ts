/**
 * The plain-text view of ClusterHealth: a block per service, problems flagged with ✗ and listed
 * at the end with their fix. Pure (health in, text out); color only wraps the same text.
 */
import { formatBytes } from './evaluate.js';
import type { ClusterHealth, Finding, HaproxyServer, K8sStatus, PgNodeStatus } from './types.js';

export interface RenderOptions {
  color?: boolean;
  /** The command that resumes a failed run (shown under "Last run"). */
  resumeCommand?: string;
}

const secs = (s: number | null): string => (s === null ? '?' : s < 10 ? `${Number(s.toFixed(2))} s` : `${Math.round(s)} s`);

export function renderHealth(h: ClusterHealth, opts: RenderOptions = {}): string {
  const paint = (code: number) => (s: string) => (opts.color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const red = paint(31);
  const green = paint(32);
  const dim = paint(2);
  const bold = paint(1);
  const ok = green('✓');
  const bad = red('✗');
  const info = dim('·');
  const lines: string[] = [];
  const w = (s = '') => void lines.push(s);
  const flagged = (service: Finding['service'], host?: string) => h.problems.some((p) => p.service === service && (host === undefined || p.host === host));
  const hostWidth = Math.max(4, ...h.hosts.map((x) => x.alias.length));
  const pad = (s: string) => s.padEnd(hostWidth);

  w(bold(`Cluster ${h.cluster} (topology ${h.topology})`) + dim(`  checked ${h.checkedAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z')} in ${(h.durationMs / 1000).toFixed(1)} s`));
  if (h.lock) {
    w(
      h.lock.alive
        ? `Run in progress: pid ${h.lock.pid} on ${h.lock.hostname} since ${h.lock.startedAt} (${h.lock.command})`
        : `Stale lock: pid ${h.lock.pid} on ${h.lock.hostname} is gone; the next run takes the lock over`,
    );
  }
  if (h.lastRun) {
    w(`Last run ${h.lastRun.runId}: ${h.lastRun.ok ? 'succeeded' : red('FAILED')} at ${h.lastRun.finishedAt}`);
    if (h.resumeAt) w(`  stopped at step ${h.resumeAt.stepId} on ${h.resumeAt.hosts.join(', ')}${opts.resumeCommand ? `; resume with: ${opts.resumeCommand}` : ''}`);
  } else {
    w('No run yet: ha-setup plan shows what apply would do.');
  }

  w();
  w(bold('Hosts'));
  for (const x of h.hosts) {
    const good = x.reachable && !x.error;
    w(`  ${good ? ok : bad} ${pad(x.alias)}  ${x.address.padEnd(15)}  ${good ? `answered in ${x.latencyMs} ms` : (x.error ?? 'unreachable')}`);
  }

  if (h.vips.length) {
    w();
    w(bold('Virtual IPs'));
    for (const v of h.vips) {
      let where: string;
      if (v.holders.length === 1) where = `on ${v.holders[0]}`;
      else if (v.holders.length > 1) where = `on ${v.holders.join(' AND ')} (split brain)`;
      else if (v.unknown.length) where = `not on ${[...v.pair].filter((p) => !v.unknown.includes(p)).join(', ') || 'any host asked'}; ${v.unknown.join(', ')} unknown`;
      else where = v.deployed ? 'held by NO host' : 'held by no host (keepalived not set up)';
      const vipBad = h.problems.some((p) => p.service === 'vip' && p.message.startsWith(`${v.alias} `));
      w(`  ${vipBad ? bad : v.holders.length === 1 ? ok : info} ${v.alias.padEnd(hostWidth)}  ${v.address.padEnd(15)}  ${where}`);
    }
  }

  if (h.postgres) {
    w();
    w(bold('PostgreSQL'));
    for (const n of h.postgres.nodes) w(`  ${pgMark(n, h) ? bad : n.deployed ? ok : info} ${pad(n.host)}  ${n.address.padEnd(15)}  ${pgLine(n, h)}`);
  }

  if (h.keepalived) {
    w();
    w(bold('keepalived'));
    for (const k of h.keepalived) {
      const check = k.check ? dim(`  check: ${k.check.ok ? 'ok' : 'FAIL'}: ${k.check.message}`) : '';
      const state = !k.deployed ? (k.active === null ? 'unknown' : `not set up for the ${k.pair} pair`) : `${k.active ?? 'unknown'}${k.enabled && k.enabled !== 'enabled' ? ` (${k.enabled} at boot)` : ''}`;
      w(`  ${flagged('keepalived', k.host) ? bad : k.deployed && k.active === 'active' ? ok : info} ${pad(k.host)}  ${state}${check}`);
    }
  }

  for (const x of h.haproxy ?? []) {
    w();
    w(bold(`HAProxy on ${x.host}`) + (x.source ? dim(` (${x.source === 'socket' ? 'admin socket' : 'stats page'})`) : ''));
    if (!x.deployed) w(`  ${info} not configured by ha-setup${x.active ? ` (haproxy ${x.active})` : ''}`);
    else if (x.active !== 'active' || x.error) w(`  ${bad} haproxy ${x.active ?? 'unknown'}${x.error ? `: ${x.error}` : ''}`);
    for (const px of x.proxies) {
      const width = Math.max(...px.servers.map((s) => (s.host ? `${s.name} (${s.host})` : s.name).length));
      w(`  ${px.name}${px.kind === 'db' ? dim(' (database routing: only the writable primary is UP)') : ''}`);
      for (const s of px.servers) w(`    ${serverMark(s, px.kind, ok, bad, info)} ${(s.host && s.host !== s.name ? `${s.name} (${s.host})` : s.name).padEnd(width)}  ${serverLine(s, px.kind)}`);
    }
  }

  if (h.k8s) {
    w();
    w(bold(`Kubernetes on ${h.k8s.host}`) + dim(` (deployment ${h.k8s.deployment}, namespace ${h.k8s.namespace})`));
    for (const [mark, label, text] of k8sRows(h.k8s, h)) w(`  ${mark === 'ok' ? ok : mark === 'bad' ? bad : info} ${label}${text === undefined ? '' : `  ${text}`}`);
  }

  if (h.nfs) {
    const n = h.nfs;
    w();
    w(bold(`NFS`) + dim(` (${n.exportDir}${n.vip ? ` through nfs_vip ${n.vip}` : ''})`));
    for (const s of n.servers) {
      const parts = !s.deployed
        ? [s.active === null ? 'unknown' : 'not set up']
        : [
            `${s.unit} ${s.active ?? 'unknown'}`,
            s.listening === null ? '' : s.listening ? 'listening on 2049' : 'NOT listening on 2049',
            s.replicationTimer ? `replication timer ${s.replicationTimer}` : '',
            s.lastPass ? `last pass ${s.lastPass.secondsAgo ?? '?'} s ago: ${s.lastPass.result}` : '',
          ];
      w(`  ${flagged('nfs', s.host) ? bad : s.deployed ? ok : info} ${pad(s.host)}  ${parts.filter(Boolean).join(', ')}`);
    }
    for (const c of n.clients) {
      const what = c.ok === null ? 'export not checked' : c.ok ? `export reachable through the VIP (${c.method})` : `export NOT reachable (${c.method}: ${c.detail || 'failed'})`;
      const mount = c.mount ? `; mounted from ${c.mount.source}${c.mount.ok ? '' : ', NOT answering'}` : '';
      w(`  ${flagged('nfs', c.host) || c.ok === false ? bad : c.ok ? ok : info} ${pad(c.host)}  ${what}${mount}`);
    }
  }

  w();
  if (h.problems.length) {
    w(red(bold(`Problems (${h.problems.length})`)));
    for (const p of h.problems) {
      w(`  ${bad} ${p.message}`);
      if (p.fix) w(`      fix: ${p.fix}`);
    }
  }
  if (h.notes.length) {
    w(bold('Notes'));
    for (const p of h.notes) {
      w(`  ${info} ${p.message}`);
      if (p.fix) w(dim(`      ${p.fix}`));
    }
  }
  w(h.healthy ? green('Healthy: no problem found.') : red(`${h.problems.length} problem${h.problems.length === 1 ? '' : 's'} found (exit code 1).`));
  return `${lines.join('\n')}\n`;
}

function pgMark(n: PgNodeStatus, h: ClusterHealth): boolean {
  return h.problems.some((p) => p.service === 'postgres' && p.host === n.host) || (n.deployed && n.state !== 'running');
}

function pgLine(n: PgNodeStatus, h: ClusterHealth): string {
  if (!n.deployed) return 'not installed';
  const fence = n.fence?.fenced ? ', FENCED' : '';
  if (n.state !== 'running') return `${n.state === 'down' ? 'DOWN' : 'not answering'}${fence}${n.unitState ? ` (${n.unit} ${n.unitState})` : ''}${n.error && n.state !== 'down' ? `: ${n.error}` : ''}`;
  const parts = [`${n.role}, timeline ${n.timeline ?? '?'}${fence}`];
  const link = h.postgres?.replication.find((r) => r.standby === n.host);
  if (n.role === 'standby' && link) {
    const from = link.primary ? ` from ${link.primary}` : '';
    parts.push(`${link.state ?? link.receiver ?? 'not streaming'}${from}${link.syncState ? ` (${link.syncState})` : ''}`);
    parts.push(`lag ${link.lagBytes === null ? '?' : formatBytes(link.lagBytes)} / ${secs(link.lagSeconds)}`);
  }
  if (n.role === 'primary') parts.push(n.replication.length ? `${n.replication.length} standby connected` : 'no standby connected');
  if (n.healthService) parts.push(`health service ${n.healthService}`);
  return parts.join(', ');
}

function serverMark(s: HaproxyServer, kind: string, ok: string, bad: string, info: string): string {
  if (s.state === 'up') return ok;
  if (kind === 'db' && s.state === 'down') return info;
  return s.state === 'no-check' ? info : bad;
}

function serverLine(s: HaproxyServer, kind: string): string {
  const check = s.checkStatus ? ` (${s.checkStatus}${s.lastChangeSeconds !== null ? `, ${s.lastChangeSeconds} s` : ''})` : '';
  const expected = kind === 'db' && s.state === 'down' ? ' (not the writable primary: expected)' : '';
  return `${s.address ?? ''}  ${s.status}${check}${expected}`.trim();
}

type Row = [mark: 'ok' | 'bad' | 'info', label: string, text?: string];

/** The Kubernetes block: the Deployment, its pods per node (ready/total), the config map's DB host. */
function k8sRows(k: K8sStatus, h: ClusterHealth): Row[] {
  const rows: Row[] = [];
  if (k.state === 'no-kubectl') rows.push(['bad', "kubectl is not installed (or not on root's PATH)"]);
  else if (k.state === 'api-unreachable') rows.push(['bad', `API server unreachable: ${k.error}`]);
  else if (k.state === 'no-deployment') rows.push(['bad', `deployment ${k.deployment} not found in namespace ${k.namespace}`]);
  else if (k.state === 'error') rows.push(['bad', `kubectl failed: ${k.error}`]);
  else if (k.state === 'unknown') rows.push(['info', `unknown: ${k.error ?? 'no answer'}`]);
  const labelled: Row[] = [];
  if (k.state === 'ok' && k.replicas && k.rollout) {
    const r = k.replicas;
    const rollout = k.rollout.state === 'complete' ? 'rollout complete' : k.rollout.state === 'failed' ? `rollout FAILED (${k.rollout.reason})` : k.rollout.state === 'progressing' ? `rollout in progress${k.rollout.reason ? ` (${k.rollout.reason})` : ''}` : 'rollout unknown';
    const off = k.conditions.filter((c) => c.type !== 'Progressing' && (c.type === 'ReplicaFailure' ? c.status === 'True' : c.status !== 'True')).map((c) => `${c.type} ${c.status}${c.reason ? ` (${c.reason})` : ''}`);
    const bad = r.ready < r.desired || k.rollout.state === 'failed';
    labelled.push([bad ? 'bad' : 'ok', `deployment ${k.deployment}`, [`${r.ready}/${r.desired} ready, ${r.updated} updated, ${r.available} available`, rollout, ...off].join('; ')]);
    const spread = h.problems.some((p) => p.service === 'k8s' && p.message.startsWith(`all `));
    for (const n of k.nodes) {
      const label = n.node === null ? 'not scheduled' : n.host && n.host !== n.node ? `${n.node} (${n.host})` : n.node;
      const trouble = k.pods.filter((p) => p.node === n.node && !p.terminating && !p.ready).map((p) => `${p.name} ${p.reason ?? p.phase}${p.restarts ? ` (${p.restarts} restart${p.restarts === 1 ? '' : 's'})` : ''}`);
      const text = `${n.ready}/${n.total} pods ready${trouble.length ? `: ${trouble.join(', ')}` : ''}${n.terminating ? `${trouble.length ? ';' : ','} ${n.terminating} terminating` : ''}`;
      labelled.push([n.ready < n.total ? 'bad' : n.total > 0 ? 'ok' : spread && n.host ? 'bad' : 'info', label, text]);
    }
    for (const a of k.idleAppHosts.filter((x) => !k.nodes.some((n) => n.host === x))) labelled.push([spread ? 'bad' : 'info', a, 'no pod']);
    if (k.podsError) labelled.push(['bad', 'pods', `not listed: ${k.podsError}`]);
  }
  const cm = k.configMap;
  if (cm.state === 'read') {
    const v = `${cm.key} = ${cm.value ?? '(not set)'}`;
    if (!cm.dbVip) labelled.push(['info', `config map ${cm.name}`, `${v} (the table has no db_vip)`]);
    else labelled.push(cm.value === cm.dbVip ? ['ok', `config map ${cm.name}`, `${v} (db_vip)`] : ['bad', `config map ${cm.name}`, `${v} (db_vip is ${cm.dbVip})`]);
  } else if (cm.state === 'not-found') labelled.push(['bad', `config map ${cm.name}`, `not found in namespace ${k.namespace}`]);
  else if (cm.error) labelled.push(['bad', `config map ${cm.name}`, `not read: ${cm.error}`]);
  const width = Math.max(0, ...labelled.map((r) => r[1].length));
  return [...rows, ...labelled.map(([m, l, t]): Row => [m, l.padEnd(width), t])];
}
