/**
 * `ha-setup drill db`: break the DB pair's primary on purpose and measure what an application
 * sees. A probe on an app server writes numbered rows through the DB VIP (each acknowledged or
 * failed), watchers on both DB nodes report when they hold the VIP, the fault is injected into
 * the node that holds the VIP, and afterwards the drill reads which node holds the VIP, which is
 * the primary, which acknowledged rows are missing there, and what keepalived's scripts decided.
 *
 * Timing: every observation is timestamped when its line reaches the jump host (one clock).
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { tableOf } from '../engine/context.js';
import type { HostRef } from '../engine/step.js';
import { SecretStore } from '../engine/secrets.js';
import type { Inventory } from '../inventory/types.js';
import { clusterDir } from '../paths.js';
import type { ExecResult, Transport } from '../transport/types.js';
import { pgOptions } from '../../runbooks/lib/options.js';
import { TLS } from '../../runbooks/lib/pg-layout.js';
import { LOG_TAG } from '../../runbooks/lib/keepalived-config.js';
import { APP_SECRET } from '../../runbooks/pg-users.js';
import { FAULT_TEXT, type DrillFault, type FaultDriver, type FaultTarget } from './fault.js';
import { measure, missingRows, parseProbeLine, type Measurement, type ProbeEvent, type VipEvent } from './measure.js';
import {
  cleanupScript,
  journalScript,
  nodeStateScript,
  parseJournal,
  parseNodeState,
  parseRows,
  probeScript,
  rowsScript,
  stopProbeScript,
  vipWatchScript,
  type NodeState,
} from './remote.js';

export interface DrillTiming {
  /** Acknowledged writes required before the fault. */
  baselineWrites: number;
  /** How long to wait for the failover after the fault. */
  observeMs: number;
  /** Continuous acknowledged writes on the new primary that end the observation early. */
  stableMs: number;
  /** Probing after the fault was undone (does the returning node disturb the new primary?). */
  settleMs: number;
  /** Seconds one write may take. */
  writeTimeout: number;
}

/** writeTimeout 0.5 s: a write takes ~40 ms in the lab; a write sent into a dead path is given up quickly, so that the RTO is measured to within ~0.5 s. */
export const DEFAULT_TIMING: DrillTiming = { baselineWrites: 10, observeMs: 30_000, stableMs: 2_000, settleMs: 6_000, writeTimeout: 0.5 };

export interface DrillOptions {
  inventory: Inventory;
  fault: DrillFault;
  env: NodeJS.ProcessEnv;
  transport: (host: HostRef) => Transport;
  /** The fault injection: the lab's, or SSH commands on real servers. */
  driver: (target: FaultTarget, transport: Transport) => FaultDriver;
  /** Asked once the target is known, before anything is broken; false stops the drill. */
  confirm?: (target: HostRef, what: string) => Promise<boolean>;
  log?: (line: string) => void;
  timing?: Partial<DrillTiming>;
}

export interface HostAfter extends NodeState {
  alias: string;
  address: string;
  /** Set when the host could not be read. */
  error?: string;
}

export interface DrillCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface DrillReport {
  pair: 'db';
  fault: DrillFault;
  mode: 'lab' | 'ssh';
  vip: string;
  probeFrom: HostRef;
  target: HostRef;
  survivor: HostRef;
  replication: 'async' | 'sync';
  startedAt: string;
  injected: string;
  undone: string | null;
  measured: Measurement;
  rpo: { checkedOn: string | null; acknowledged: number; missing: number | null; missingSeqs: number[] };
  after: { hosts: HostAfter[]; vipHolders: string[]; primaries: string[] };
  checks: DrillCheck[];
  decisions: { host: string; time: string; message: string }[];
  ok: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const within = <T>(p: Promise<T>, ms: number): Promise<T | undefined> => Promise.race([p, sleep(ms).then(() => undefined)]);

/** The database servers and their VIP. */
export function dbPair(inv: Pick<Inventory, 'servers'>): { primary: HostRef; standby: HostRef; vip: string } {
  const t = tableOf(inv);
  const need = (alias: string): HostRef => {
    const h = t.hosts[alias];
    if (!h) throw new Error(`the server table has no ${alias}: add ${alias}: <IP> under servers (the DB pair is db_primary, db_standby and db_vip)`);
    return h;
  };
  const vip = t.addresses.db_vip;
  if (!vip) throw new Error('the server table has no db_vip: add db_vip: <IP> under servers (the drill writes through it)');
  return { primary: need('db_primary'), standby: need('db_standby'), vip };
}

/** The database servers, the VIP and the app server the probe runs on. */
export function drillHosts(inv: Inventory): { primary: HostRef; standby: HostRef; vip: string; app: HostRef } {
  const t = tableOf(inv);
  const { primary, standby, vip } = dbPair(inv);
  const apps = Object.keys(t.hosts).filter((a) => /^app\d+$/.test(a)).sort((a, b) => Number(a.slice(3)) - Number(b.slice(3)));
  if (!apps.length) {
    throw new Error('the server table has no app server (app1): the drill writes through the VIP from an app server, the path pg_hba.conf and the firewall allow for the app; add app1: <IP>');
  }
  return { primary, standby, vip, app: t.hosts[apps[0]!]! };
}

function appPassword(inv: Inventory, env: NodeJS.ProcessEnv): string {
  const store = new SecretStore(clusterDir(inv.cluster, env)).check();
  const s = store.all().find((x) => x.name === APP_SECRET);
  if (!s) throw new Error(`no generated password for the app user (${APP_SECRET}) in ${store.path}: run ha-setup apply (runbook pg-users) for cluster ${inv.cluster} first`);
  return s.reveal();
}

async function state(transport: Transport, h: HostRef, version: number, port: number, vip: string): Promise<HostAfter> {
  try {
    const r = await transport.exec(nodeStateScript(version, port, vip, h.address), { sudo: true, timeoutMs: 20_000 });
    return { alias: h.alias, address: h.address, ...parseNodeState(r.stdout) };
  } catch (e) {
    return { alias: h.alias, address: h.address, postgres: 'down', timeline: null, receiver: null, holdsVip: false, fenced: false, keepalived: 'unknown', unit: '', iface: '', family: 'debian', error: (e as Error).message };
  }
}

/** A long-running remote script whose lines are timestamped as they arrive. */
function stream(transport: Transport, script: string, onLine: (line: string, t: number) => void, t0: number, timeoutMs: number, sudo = false) {
  const abort = new AbortController();
  const done: Promise<ExecResult | Error> = transport
    .exec(script, { sudo, timeoutMs, signal: abort.signal, onLine: (s, line) => s === 'stdout' && onLine(line, performance.now() - t0) })
    .catch((e: Error) => e);
  return { abort: () => abort.abort(), done };
}

export async function runDrill(o: DrillOptions): Promise<DrillReport> {
  const timing = { ...DEFAULT_TIMING, ...o.timing };
  if (o.fault === 'reboot') timing.observeMs = Math.max(timing.observeMs, 90_000);
  const log = o.log ?? (() => {});
  const inv = o.inventory;
  const hosts = drillHosts(inv);
  const pg = pgOptions(inv.options);
  const password = appPassword(inv, o.env);
  const db = [hosts.primary, hosts.standby];
  const tp = (h: HostRef) => o.transport(h);

  // --- before: exactly one node holds the VIP, it is the writable primary, the other a standby
  const before = await Promise.all(db.map((h) => state(tp(h), h, pg.version, pg.port, hosts.vip)));
  for (const b of before) if (b.error) throw new Error(`cannot read ${b.alias}: ${b.error}`);
  const holders = before.filter((b) => b.holdsVip);
  if (holders.length !== 1) {
    throw new Error(`the VIP ${hosts.vip} is held by ${holders.length ? holders.map((h) => h.alias).join(' and ') : 'no server'}: the drill needs exactly one holder (run ha-setup apply --runbook keepalived, and check journalctl -t ${LOG_TAG})`);
  }
  const holder = holders[0]!;
  const other = before.find((b) => b !== holder)!;
  if (holder.postgres !== 'primary') throw new Error(`${holder.alias} holds the VIP but its PostgreSQL is ${holder.postgres}, not the writable primary: fix the pair before a drill`);
  if (other.postgres !== 'standby') {
    throw new Error(`${other.alias}'s PostgreSQL is ${other.postgres}${other.fenced ? ' (fenced)' : ''}, not a standby: a failover would have nowhere to go; bring it back first (ha-setup rejoin db)`);
  }
  for (const b of before) if (b.keepalived !== 'active') throw new Error(`keepalived is ${b.keepalived} on ${b.alias}: start it (ha-setup apply --runbook keepalived) before a drill`);
  if (other.receiver !== 'streaming') log(`drill: note: ${other.alias} is a standby but its WAL receiver is ${other.receiver}, not streaming: expect lost rows`);

  const target: HostRef = { alias: holder.alias, address: holder.address };
  const survivor: HostRef = { alias: other.alias, address: other.address };
  const faultTarget: FaultTarget = { ...target, unit: holder.unit, iface: holder.iface };
  const driver = o.driver(faultTarget, tp(target));
  const what = `${FAULT_TEXT[o.fault]} on ${target.alias} (${target.address}), the primary holding the VIP`;
  if (o.confirm && !(await o.confirm(target, what))) throw new Error('drill not started: not confirmed');

  const ca = await tp(target).readFile(TLS.ca).catch(() => null);
  const run = randomBytes(6).toString('hex').replace(/[^a-z0-9]/g, '');
  const startedAt = new Date();
  const t0 = performance.now();
  const probe: ProbeEvent[] = [];
  const vip: VipEvent[] = [];
  let ready = false;
  let setupFailed: string | null = null;

  // --- watchers and probe
  const watchers = db.map((h) =>
    stream(tp(h), vipWatchScript(hosts.vip), (line, t) => {
      const m = /^VIP ([01])$/.exec(line.trim());
      if (m) vip.push({ t, alias: h.alias, holds: m[1] === '1' });
    }, t0, 30 * 60_000),
  );
  const maxSeconds = Math.ceil((timing.observeMs + timing.settleMs) / 1000) + 120;
  log(`drill: probe on ${hosts.app.alias} writes numbered rows through the VIP ${hosts.vip} (${pg.appDb}.ha_setup_drill, as ${pg.appUser})`);
  const prober = stream(tp(hosts.app), probeScript({ run, vip: hosts.vip, port: pg.port, db: pg.appDb, user: pg.appUser, password, ca, maxSeconds, writeTimeout: timing.writeTimeout }), (line, t) => {
    if (line === 'READY') ready = true;
    else if (line.startsWith('SETUP-FAILED')) setupFailed = line.slice(13);
    else {
      const e = parseProbeLine(line, t);
      if (e) probe.push(e);
    }
  }, t0, (maxSeconds + 60) * 1000);

  const stopAll = async () => {
    await tp(hosts.app).exec(stopProbeScript(run), { timeoutMs: 10_000 }).catch(() => undefined);
    if (!(await within(prober.done, 5000))) prober.abort();
    for (const w of watchers) w.abort();
    await within(Promise.all([prober.done, ...watchers.map((w) => w.done)]), 8000);
  };

  let injected = '';
  let undone: string | null = null;
  let faultAt = 0;
  try {
    // --- baseline
    const deadline = performance.now() + 30_000;
    while (performance.now() < deadline) {
      if (setupFailed !== null) throw new Error(`the probe on ${hosts.app.alias} cannot write through the VIP: ${setupFailed}`);
      const failed = probe.find((e) => !e.ok);
      if (failed) throw new Error(`writes through the VIP fail before any fault (${failed.error}): the drill breaks nothing on an unhealthy pair`);
      if (ready && probe.length >= timing.baselineWrites) break;
      const r = await within(prober.done, 100);
      if (r) throw new Error(`the probe on ${hosts.app.alias} stopped before the fault: ${r instanceof Error ? r.message : `exit ${r.code}: ${r.stderr.trim() || r.stdout.trim().split('\n').pop()}`}`);
    }
    if (probe.length < timing.baselineWrites) throw new Error(`the probe acknowledged only ${probe.length} writes in 30 s before the fault; check ${hosts.app.alias} -> ${hosts.vip}:${pg.port}`);
    log(`drill: ${probe.length} writes acknowledged on timeline ${probe[probe.length - 1]!.timeline}; now: ${what}`);

    // --- fault
    faultAt = performance.now() - t0;
    injected = await driver.inject(o.fault);
    log(`drill: ${injected} (${((performance.now() - t0 - faultAt) / 1000).toFixed(1)} s to inject)`);

    // --- observe until the writes are stable on a new timeline, or time is up
    const until = performance.now() + timing.observeMs;
    const base = probe.filter((e) => e.t <= faultAt).pop()?.timeline;
    while (performance.now() < until) {
      await sleep(100);
      const now = performance.now() - t0;
      const newAcks = probe.filter((e) => e.ok && e.timeline !== base && e.t > faultAt);
      if (newAcks.length && now - newAcks[0]!.t >= timing.stableMs && !probe.some((e) => !e.ok && e.t > newAcks[0]!.t)) break;
    }
    const m0 = measure(probe, vip, faultAt, survivor.alias);
    log(
      m0.failover
        ? `drill: writes resumed on ${survivor.alias} (timeline ${m0.newTimeline}) ${((m0.rtoMs ?? 0) / 1000).toFixed(2)} s after the fault`
        : `drill: no write on a new timeline within ${timing.observeMs / 1000} s of the fault`,
    );

    // --- undo (the old primary's PostgreSQL stays down: it is fenced) and watch the return
    undone = await driver.undo(o.fault);
    if (undone) log(`drill: ${undone}; watching ${timing.settleMs / 1000} s more`);
    await sleep(timing.settleMs);
  } finally {
    await stopAll();
  }

  // --- after
  const settleDeadline = performance.now() + (o.fault === 'reboot' ? 120_000 : 20_000);
  let after: HostAfter[] = [];
  for (;;) {
    after = await Promise.all(db.map((h) => state(tp(h), h, pg.version, pg.port, hosts.vip)));
    if (after.every((a) => !a.error) || performance.now() > settleDeadline) break;
    await sleep(2000);
  }
  const m = measure(probe, vip, faultAt, survivor.alias);
  const vipHolders = after.filter((a) => a.holdsVip).map((a) => a.alias);
  const primaries = after.filter((a) => a.postgres === 'primary').map((a) => a.alias);
  const serving = vipHolders.length === 1 && primaries.length === 1 && vipHolders[0] === primaries[0] ? after.find((a) => a.alias === vipHolders[0])! : null;

  let missing: number[] | null = null;
  if (serving) {
    const rows = await tp(serving).exec(rowsScript(pg.version, pg.port, pg.appDb, run), { sudo: true, timeoutMs: 30_000 }).catch((e: Error) => e);
    if (!(rows instanceof Error) && rows.code === 0) missing = missingRows(probe, parseRows(rows.stdout));
    await tp(serving).exec(cleanupScript(pg.version, pg.port, pg.appDb, run), { sudo: true, timeoutMs: 30_000 }).catch(() => undefined);
  }

  const decisions: DrillReport['decisions'] = [];
  for (const h of db) {
    const since = startedAt.getTime() / 1000 - 2;
    const r = await within(tp(h).exec(journalScript(since, LOG_TAG), { sudo: true, timeoutMs: 15_000 }).catch(() => undefined), 16_000);
    if (r) for (const d of parseJournal(r.stdout)) decisions.push({ host: h.alias, ...d });
  }
  decisions.sort((a, b) => a.time.localeCompare(b.time));

  const last = probe.slice(-5);
  const targetAfter = after.find((a) => a.alias === target.alias)!;
  const checks: DrillCheck[] = [
    { name: 'the VIP is held by exactly one server', ok: vipHolders.length === 1, detail: vipHolders.length ? vipHolders.join(', ') : 'nobody' },
    { name: 'the VIP holder is the only writable primary', ok: serving !== null, detail: `primaries: ${primaries.join(', ') || 'none'}` },
    {
      name: 'writes through the VIP succeed at the end',
      ok: last.length > 0 && last.every((e) => e.ok),
      detail: last.map((e) => (e.ok ? `#${e.seq} ok` : `#${e.seq} failed`)).join(', ') || 'no writes',
    },
    { name: 'the standby took over (writes on a new timeline)', ok: m.failover, detail: m.failover ? `timeline ${m.baselineTimeline} -> ${m.newTimeline}` : 'no write on a new timeline' },
    {
      name: 'no write was acknowledged by the old primary after the failover',
      ok: m.ackedByOldPrimaryAfterFailover === 0,
      detail: `${m.ackedByOldPrimaryAfterFailover} on timeline ${m.baselineTimeline} after the first write on ${m.newTimeline ?? '-'}`,
    },
    {
      name: `the old primary (${target.alias}) accepts no writes`,
      ok: targetAfter.error === undefined && (targetAfter.postgres !== 'primary' || (serving?.alias === target.alias && !m.failover)),
      detail: targetAfter.error ? `unreadable: ${targetAfter.error}` : `PostgreSQL ${targetAfter.postgres}${targetAfter.fenced ? ', fenced' : ''}`,
    },
  ];
  if (pg.replication === 'sync') checks.push({ name: 'no acknowledged row lost (sync replication)', ok: missing !== null && missing.length === 0, detail: missing === null ? 'not checked' : `${missing.length} missing` });

  return {
    pair: 'db',
    fault: o.fault,
    mode: driver.mode,
    vip: hosts.vip,
    probeFrom: hosts.app,
    target,
    survivor,
    replication: pg.replication,
    startedAt: startedAt.toISOString(),
    injected,
    undone,
    measured: m,
    rpo: { checkedOn: serving?.alias ?? null, acknowledged: m.acknowledged, missing: missing?.length ?? null, missingSeqs: (missing ?? []).slice(0, 20) },
    after: { hosts: after, vipHolders, primaries },
    checks,
    decisions,
    ok: checks.every((c) => c.ok),
  };
}
