/**
 * `ha-setup drill nfs`: break the NFS server that holds the NFS VIP on purpose and measure what
 * an application sees. A probe on an app server writes numbered files into the share through
 * the VIP (each acknowledged or failed; source/drill/nfs-remote.ts), watchers on both NFS
 * servers report when they hold the VIP and how far the standby's copy has got, the fault goes
 * to the holder, and afterwards the drill reads which server holds the VIP, which acknowledged
 * files its copy lacks, and what keepalived decided; then it removes the drill's files from
 * both servers and undoes the fault.
 *
 * Replication between the NFS servers is rsync on a timer (runbooks/nfs.ts): acknowledged
 * files written since the standby's last pass are expected to be missing after a failover (up
 * to options.nfs.replicationIntervalSec plus a pass). The drill waits for replication passes
 * before the fault so that it can report the lag it saw, and it checks that nothing older than
 * that window and nothing written after the failover is missing.
 *
 * Timing: every observation is timestamped when its line reaches the jump host (one clock).
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { tableOf } from '../engine/context.js';
import type { HostRef } from '../engine/step.js';
import type { Inventory } from '../inventory/types.js';
import type { ExecResult, Transport } from '../transport/types.js';
import { LOG_TAG } from '../../runbooks/lib/keepalived-config.js';
import { NFS_PATHS, REPLICATION_TIMER } from '../../runbooks/lib/nfs-facts.js';
import { nfsOptions } from '../../runbooks/lib/nfs-options.js';
import { serverUnit } from '../../runbooks/nfs.js';
import type { FaultTarget } from './fault.js';
import type { ProbeEvent, VipEvent } from './measure.js';
import { NFS_FAULT_TEXT, nfsFaultRefusal, type NfsDrillFault, type NfsFaultDriver } from './nfs-fault.js';
import {
  measureNfs,
  nfsRpo,
  parseNfsProbeLine,
  parseNfsWatchLine,
  parseToolLine,
  replicationObserved,
  type FilesEvent,
  summariseRpo,
  type NfsMeasurement,
  type NfsRpoSummary,
  type ReplicationObserved,
} from './nfs-measure.js';
import {
  drillFilePrefix,
  nfsCleanupScript,
  nfsFilesScript,
  nfsNodeStateScript,
  nfsProbeScript,
  nfsWatchScript,
  parseCleanup,
  parseNfsFiles,
  parseNfsNodeState,
  replicationIdleScript,
  stopNfsProbeScript,
  vrrpJournalScript,
  type NfsFiles,
  type NfsNodeState,
} from './nfs-remote.js';
import { journalScript, parseJournal } from './remote.js';

export interface NfsDrillTiming {
  /** Acknowledged writes required before the fault. */
  baselineWrites: number;
  /** Replication passes to see arrive on the standby before the fault (0: do not wait). */
  replicationPasses: number;
  /** How long to wait for the failover after the fault. */
  observeMs: number;
  /** Continuous acknowledged writes after the VIP moved that end the observation early. */
  stableMs: number;
  /** Probing after the fault was undone (does the returning server disturb the new holder?). */
  settleMs: number;
  /** Seconds one write may take. */
  writeTimeout: number;
}

/**
 * writeTimeout 1 s: a write (a fresh NFS connection with nfs-cp, or a write + fsync through the
 * mount) takes tens of ms; one sent into a dead path is given up after 1 s, which bounds the
 * RTO's resolution. Two replication passes: the lag is then seen over one whole interval.
 */
export const DEFAULT_NFS_TIMING: NfsDrillTiming = { baselineWrites: 10, replicationPasses: 2, observeMs: 30_000, stableMs: 2_000, settleMs: 8_000, writeTimeout: 1 };

/** The replication's oneshot service (its timer is REPLICATION_TIMER). */
const REPLICATION_SERVICE = REPLICATION_TIMER.replace(/\.timer$/, '.service');

/** Slack on top of options.nfs.replicationIntervalSec for the RPO window: timer accuracy and one rsync pass. */
export const REPLICATION_SLACK_MS = 5_000;

export interface NfsDrillOptions {
  inventory: Inventory;
  fault: NfsDrillFault;
  transport: (host: HostRef) => Transport;
  /** The fault injection: the lab's, or SSH commands on real servers. */
  driver: (target: FaultTarget, transport: Transport) => NfsFaultDriver;
  /** Asked once the target is known, before anything is broken; false stops the drill. */
  confirm?: (target: HostRef, what: string) => Promise<boolean>;
  log?: (line: string) => void;
  timing?: Partial<NfsDrillTiming>;
}

export interface NfsHostAfter extends NfsNodeState {
  alias: string;
  address: string;
  /** How many of the drill's files this server's copy had before the cleanup (null: not read). */
  files: { inShare: number; wrongContent: number; keptAside: number } | null;
  /** Set when the host could not be read. */
  error?: string;
}

export interface NfsDrillCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface NfsDrillReport {
  pair: 'nfs';
  fault: NfsDrillFault;
  mode: 'lab' | 'ssh';
  vip: string;
  share: { exportDir: string; mountPath: string; server: 'kernel' | 'ganesha'; unit: string };
  probe: { from: HostRef; tool: 'mount' | 'nfs-cp' | null; detail: string; writeTimeoutSec: number };
  target: HostRef;
  survivor: HostRef;
  startedAt: string;
  faultAt: string | null;
  injected: string;
  undone: string | null;
  measured: NfsMeasurement;
  replication: ReplicationObserved & { intervalSec: number; windowMs: number };
  rpo: NfsRpoSummary & { checkedOn: string | null; keptAsideOnOld: number; onOldOnly: number; note: string };
  after: { hosts: NfsHostAfter[]; vipHolders: string[] };
  checks: NfsDrillCheck[];
  decisions: { host: string; time: string; message: string }[];
  /** Per server: the drill's files removed there, and how many were left (null: unknown). */
  cleanup: { host: string; removed: number; left: number | null }[];
  advice: string[];
  ok: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const within = <T>(p: Promise<T>, ms: number): Promise<T | undefined> => Promise.race([p, sleep(ms).then(() => undefined)]);

/** The NFS servers, their VIP and the app server the probe runs on. */
export function nfsDrillHosts(inv: Pick<Inventory, 'servers'>): { primary: HostRef; standby: HostRef; vip: string; app: HostRef } {
  const t = tableOf(inv);
  const need = (alias: string): HostRef => {
    const h = t.hosts[alias];
    if (!h) throw new Error(`the server table has no ${alias}: add ${alias}: <IP> under servers (the NFS pair is nfs_primary, nfs_standby and nfs_vip)`);
    return h;
  };
  const primary = need('nfs_primary');
  const standby = need('nfs_standby');
  const vip = t.addresses.nfs_vip;
  if (!vip) throw new Error('the server table has no nfs_vip: add nfs_vip: <IP> under servers (the drill writes through it)');
  const apps = Object.keys(t.hosts).filter((a) => /^app\d+$/.test(a)).sort((a, b) => Number(a.slice(3)) - Number(b.slice(3)));
  if (!apps.length) throw new Error('the server table has no app server (app1): the drill writes into the share from an app server, the client the export admits; add app1: <IP>');
  return { primary, standby, vip, app: t.hosts[apps[0]!]! };
}

/** A long-running remote script whose lines are timestamped as they arrive. */
function stream(transport: Transport, script: string, onLine: (line: string, t: number) => void, t0: number, timeoutMs: number) {
  const abort = new AbortController();
  const done: Promise<ExecResult | Error> = transport
    .exec(script, { sudo: true, timeoutMs, signal: abort.signal, onLine: (s, line) => s === 'stdout' && onLine(line, performance.now() - t0) })
    .catch((e: Error) => e);
  return { abort: () => abort.abort(), done };
}

export async function runNfsDrill(o: NfsDrillOptions): Promise<NfsDrillReport> {
  const timing = { ...DEFAULT_NFS_TIMING, ...o.timing };
  if (o.fault === 'reboot') timing.observeMs = Math.max(timing.observeMs, 90_000);
  const log = o.log ?? (() => {});
  const hosts = nfsDrillHosts(o.inventory);
  const opts = nfsOptions(o.inventory.options);
  const unit = serverUnit(opts);
  const nodes = [hosts.primary, hosts.standby];
  const tp = (h: HostRef) => o.transport(h);
  const windowMs = opts.replicationIntervalSec * 1000 + REPLICATION_SLACK_MS;

  const state = async (h: HostRef): Promise<NfsHostAfter> => {
    try {
      const r = await tp(h).exec(nfsNodeStateScript(hosts.vip, unit, REPLICATION_TIMER, h.address), { sudo: true, timeoutMs: 20_000 });
      return { alias: h.alias, address: h.address, ...parseNfsNodeState(r.stdout), files: null };
    } catch (e) {
      return { alias: h.alias, address: h.address, holdsVip: false, nfs: 'unknown', port: false, keepalived: 'unknown', timer: 'unknown', iface: '', files: null, error: (e as Error).message };
    }
  };

  // --- before: exactly one server holds the VIP and serves; the other serves too (somewhere to go)
  const before = await Promise.all(nodes.map(state));
  for (const b of before) if (b.error) throw new Error(`cannot read ${b.alias}: ${b.error}`);
  const holders = before.filter((b) => b.holdsVip);
  if (holders.length !== 1) {
    throw new Error(`the NFS VIP ${hosts.vip} is held by ${holders.length ? holders.map((h) => h.alias).join(' and ') : 'no server'}: the drill needs exactly one holder (run ha-setup apply --runbook keepalived, and check journalctl -t ${LOG_TAG})`);
  }
  const holder = holders[0]!;
  const other = before.find((b) => b !== holder)!;
  for (const b of before) {
    if (b.nfs !== 'active' || !b.port) {
      throw new Error(`${unit} on ${b.alias} is ${b.nfs}${b.nfs === 'active' ? ' but nothing answers on TCP 2049' : ''}: ${b === holder ? 'the VIP holder must serve the share' : 'a failover would have nowhere to go'}; start it (systemctl start ${unit}) before a drill`);
    }
    if (b.keepalived !== 'active') throw new Error(`keepalived is ${b.keepalived} on ${b.alias}: start it (ha-setup apply --runbook keepalived) before a drill`);
  }
  for (const b of before) {
    if (b.timer === 'active') continue;
    log(`drill: note: ${REPLICATION_TIMER} is ${b.timer} on ${b.alias}: ${b === holder ? 'the share is not replicated to the standby; expect the failover to lose every file written since the last pass' : 'it will not replicate the share once it holds the VIP'} (ha-setup apply --runbook nfs)`);
  }

  const target: HostRef = { alias: holder.alias, address: holder.address };
  const survivor: HostRef = { alias: other.alias, address: other.address };
  const driver = o.driver({ ...target, unit, iface: holder.iface }, tp(target));
  const refused = nfsFaultRefusal(o.fault, driver.mode, opts.server);
  if (refused) throw new Error(refused);
  const what = `${NFS_FAULT_TEXT[o.fault]} on ${target.alias} (${target.address}), the NFS server holding the VIP`;
  if (o.confirm && !(await o.confirm(target, what))) throw new Error('drill not started: not confirmed');

  const run = randomBytes(6).toString('hex');
  const startedAt = new Date();
  const t0 = performance.now();
  const probe: ProbeEvent[] = [];
  const vip: VipEvent[] = [];
  const files: FilesEvent[] = [];
  // What the probe said about itself (set from its output lines as they arrive).
  const said: { tool: { tool: 'mount' | 'nfs-cp'; detail: string } | null; ready: boolean; setupFailed: string | null } = { tool: null, ready: false, setupFailed: null };

  // --- watchers and probe
  let stopping = false;
  const watchers = nodes.map((h) => {
    const w = stream(tp(h), nfsWatchScript(hosts.vip, opts.exportDir, run), (line, t) => {
      const e = parseNfsWatchLine(line, t, h.alias);
      if (e && 'vip' in e) vip.push(e.vip);
      else if (e) files.push(e.files);
    }, t0, 30 * 60_000);
    // A watcher runs until the drill stops it: say so when one ends early (its figures will be missing).
    void w.done.then((r) => {
      if (stopping) return;
      const why = r instanceof Error ? r.message : `exit ${r.code}${r.killed ? ` (${r.killed})` : ''}: ${(r.stderr || r.stdout).trim().split('\n').slice(-2).join(' / ')}`;
      log(`drill: note: the watcher on ${h.alias} stopped at ${((performance.now() - t0) / 1000).toFixed(1)} s: ${why}`);
    });
    return w;
  });
  const baselineMaxMs = Math.max(30_000, timing.replicationPasses * opts.replicationIntervalSec * 1000 + 30_000);
  const setupSeconds = opts.graceSec + 15;
  const maxSeconds = Math.ceil((setupSeconds * 1000 + baselineMaxMs + timing.observeMs + timing.settleMs) / 1000) + 120;
  log(`drill: probe on ${hosts.app.alias} writes numbered files into ${opts.exportDir} through the NFS VIP ${hosts.vip} (${drillFilePrefix(run)}<n>)`);
  const prober = stream(
    tp(hosts.app),
    nfsProbeScript({ run, vip: hosts.vip, exportDir: opts.exportDir, mountPath: opts.mountPath, maxSeconds, writeTimeout: timing.writeTimeout, setupSeconds }),
    (line, t) => {
      if (line === 'READY') said.ready = true;
      else if (line.startsWith('SETUP-FAILED')) said.setupFailed = line.slice(13);
      else if (line.startsWith('TOOL ')) said.tool = parseToolLine(line);
      else {
        const e = parseNfsProbeLine(line, t);
        if (e) probe.push(e);
      }
    },
    t0,
    (maxSeconds + 60) * 1000,
  );

  const stopAll = async () => {
    stopping = true;
    await tp(hosts.app).exec(stopNfsProbeScript(run), { sudo: true, timeoutMs: 10_000 }).catch(() => undefined);
    if (!(await within(prober.done, 5000 + timing.writeTimeout * 1000))) prober.abort();
    for (const w of watchers) w.abort();
    await within(Promise.all([prober.done, ...watchers.map((w) => w.done)]), 8000);
  };

  let injected = '';
  let undone: string | null = null;
  let faultAt = 0;
  let faulted = false;
  let completed = false;
  const standbyFiles = () => files.filter((f) => f.alias === survivor.alias);
  try {
    // --- baseline: writes acknowledged, and replication passes seen on the standby
    const setupDeadline = performance.now() + setupSeconds * 1000 + 15_000;
    while (!said.ready && performance.now() < setupDeadline) {
      if (said.setupFailed !== null) throw new Error(`the probe on ${hosts.app.alias} cannot write into the share through the VIP: ${said.setupFailed}`);
      const r = await within(prober.done, 100);
      if (r) throw new Error(`the probe on ${hosts.app.alias} stopped before the fault: ${r instanceof Error ? r.message : `exit ${r.code}: ${r.stderr.trim() || r.stdout.trim().split('\n').pop()}`}`);
    }
    if (!said.ready) throw new Error(`the probe on ${hosts.app.alias} could not write into the share through ${hosts.vip} within ${setupSeconds + 15} s`);
    log(`drill: the probe writes with ${said.tool ? `${said.tool.tool} (${said.tool.detail})` : 'an unknown tool'}; waiting for ${timing.replicationPasses} replication pass(es) to ${survivor.alias} (every ${opts.replicationIntervalSec} s)`);
    const deadline = performance.now() + baselineMaxMs;
    for (;;) {
      const failed = probe.find((e) => !e.ok);
      if (failed) throw new Error(`writes through the VIP fail before any fault (${failed.error}): the drill breaks nothing on an unhealthy pair`);
      const r = await within(prober.done, 100);
      if (r) throw new Error(`the probe on ${hosts.app.alias} stopped before the fault: ${r instanceof Error ? r.message : `exit ${r.code}: ${r.stderr.trim() || r.stdout.trim().split('\n').pop()}`}`);
      const passes = replicationObserved(probe, standbyFiles(), Infinity).passes;
      if (probe.length >= timing.baselineWrites && passes >= timing.replicationPasses) break;
      if (performance.now() > deadline) {
        if (probe.length < timing.baselineWrites) throw new Error(`the probe acknowledged only ${probe.length} writes in ${Math.round(baselineMaxMs / 1000)} s before the fault; check ${hosts.app.alias} -> ${hosts.vip}:2049`);
        log(`drill: note: only ${passes} replication pass(es) reached ${survivor.alias} in ${Math.round(baselineMaxMs / 1000)} s (see systemctl status ${REPLICATION_TIMER} and journalctl -u ha-setup-nfs-replicate on ${target.alias}); going on`);
        break;
      }
    }
    log(`drill: ${probe.length} writes acknowledged; now: ${what}`);

    // --- fault
    faultAt = performance.now() - t0;
    faulted = true;
    injected = await driver.inject(o.fault);
    log(`drill: ${injected} (${((performance.now() - t0 - faultAt) / 1000).toFixed(1)} s to inject)`);

    // --- observe until writes are steady after the VIP moved, or time is up
    const until = performance.now() + timing.observeMs;
    while (performance.now() < until) {
      await sleep(100);
      const now = performance.now() - t0;
      const moved = vip.find((e) => e.alias === survivor.alias && e.holds && e.t > faultAt);
      if (!moved) continue;
      const lastFail = probe.filter((e) => !e.ok).pop();
      const since = Math.max(moved.t, lastFail?.t ?? 0);
      const firstOk = probe.find((e) => e.ok && e.t > since);
      if (firstOk && now - firstOk.t >= timing.stableMs) break;
    }
    const m0 = measureNfs(probe, vip, faultAt, target.alias, survivor.alias);
    log(
      m0.rtoMs !== null && m0.vipMovedMs !== null
        ? `drill: the VIP moved to ${survivor.alias} ${(m0.vipMovedMs / 1000).toFixed(2)} s and writes succeeded again ${(m0.rtoMs / 1000).toFixed(2)} s after the fault`
        : `drill: ${m0.vipMovedMs === null ? 'the VIP did not move' : 'the VIP moved'} and writes ${m0.rtoMs === null ? 'did not come back' : 'came back'} within ${timing.observeMs / 1000} s of the fault`,
    );

    // --- undo, and watch the return
    undone = await driver.undo(o.fault);
    if (undone) log(`drill: ${undone}; watching ${timing.settleMs / 1000} s more`);
    await sleep(timing.settleMs);
    completed = true;
  } finally {
    await stopAll();
    if (!completed) {
      // The drill failed part-way: undo the fault if it was injected, and remove the drill's files.
      if (faulted && undone === null) await driver.undo(o.fault).catch((e: Error) => log(`drill: could not undo the fault: ${e.message}`));
      await Promise.all(nodes.map((h) => tp(h).exec(nfsCleanupScript(opts.exportDir, NFS_PATHS.replaced, run), { sudo: true, timeoutMs: 30_000 }).catch(() => undefined)));
    }
  }

  // --- after: the servers (a rebooted or cut-off one may take a while), the drill's files on each
  const settleDeadline = performance.now() + (o.fault === 'reboot' ? 120_000 : 30_000);
  let after: NfsHostAfter[] = [];
  for (;;) {
    after = await Promise.all(nodes.map(state));
    if (after.every((a) => !a.error) || performance.now() > settleDeadline) break;
    await sleep(2000);
  }
  const listed = new Map<string, NfsFiles>();
  for (const a of after) {
    if (a.error) continue;
    const r = await tp(a).exec(nfsFilesScript(opts.exportDir, NFS_PATHS.replaced, run), { sudo: true, timeoutMs: 60_000 }).catch((e: Error) => e);
    if (r instanceof Error || r.code !== 0) continue;
    const f = parseNfsFiles(r.stdout);
    listed.set(a.alias, f);
    a.files = { inShare: f.share.length, wrongContent: f.bad.length, keptAside: f.replaced.length };
  }
  const vipHolders = after.filter((a) => a.holdsVip).map((a) => a.alias);
  const holderAfter = vipHolders.length === 1 ? after.find((a) => a.alias === vipHolders[0])! : null;
  const oldAfter = after.find((a) => a.alias === target.alias)!;

  // --- figures
  const m = measureNfs(probe, vip, faultAt, target.alias, survivor.alias);
  const repl = replicationObserved(probe, standbyFiles(), faultAt);
  const checked = holderAfter && listed.has(holderAfter.alias) ? holderAfter : null;
  const rpo = nfsRpo(probe, checked ? listed.get(checked.alias)!.share : [], faultAt, m.failoverAt, windowMs);
  const otherFiles = checked ? listed.get(after.find((a) => a !== checked)!.alias) : undefined;
  const missingSet = new Set(rpo.missing);
  const keptAsideOnOld = otherFiles ? otherFiles.replaced.filter((s) => missingSet.has(s)).length : 0;
  const onOldOnly = otherFiles ? otherFiles.share.filter((s) => missingSet.has(s)).length : 0;

  // --- cleanup on both servers, the VIP holder (the replication's source) first. Replication
  // runs meanwhile: a pass under way can copy the files to the peer again, or move the peer's
  // into its kept-aside directory. So each removal waits until no pass is under way, and rounds
  // repeat until one finds nothing left to remove on either server.
  const cleanup: NfsDrillReport['cleanup'] = (holderAfter ? [holderAfter, ...after.filter((a) => a !== holderAfter)] : after).map((h) => ({ host: h.alias, removed: 0, left: null }));
  const idle = () => Promise.all(nodes.map((h) => tp(h).exec(replicationIdleScript(REPLICATION_SERVICE), { sudo: true, timeoutMs: 70_000 }).catch(() => undefined)));
  for (let round = 0; round < 4; round++) {
    let removed = 0;
    for (const c of cleanup) {
      await idle();
      const r = await tp(nodes.find((h) => h.alias === c.host)!).exec(nfsCleanupScript(opts.exportDir, NFS_PATHS.replaced, run), { sudo: true, timeoutMs: 60_000 }).catch(() => undefined);
      const done = r && r.code === 0 ? parseCleanup(r.stdout) : null;
      c.left = done ? done.left : null;
      c.removed += done?.removed ?? 0;
      removed += done ? done.removed : 1;
    }
    if (removed === 0) break;
  }

  // --- what keepalived decided: the health check's verdicts (tag) and VRRP state changes
  const decisions: NfsDrillReport['decisions'] = [];
  const since = startedAt.getTime() / 1000 - 2;
  for (const h of nodes) {
    for (const script of [journalScript(since, LOG_TAG), vrrpJournalScript(since)]) {
      const r = await within(tp(h).exec(script, { sudo: true, timeoutMs: 15_000 }).catch(() => undefined), 16_000);
      if (r) for (const d of parseJournal(r.stdout)) decisions.push({ host: h.alias, time: d.time, message: script.includes('-u keepalived') ? `vrrp: ${d.message}` : d.message });
    }
  }
  decisions.sort((a, b) => a.time.localeCompare(b.time));

  const s = (ms: number | null) => (ms === null ? '-' : `${(ms / 1000).toFixed(1)} s`);
  const last = probe.slice(-5);
  const checks: NfsDrillCheck[] = [
    { name: 'the VIP is held by exactly one server', ok: vipHolders.length === 1, detail: vipHolders.length ? vipHolders.join(', ') : 'nobody' },
    { name: `the VIP moved to ${survivor.alias}`, ok: m.vipMovedMs !== null, detail: m.vipMovedMs === null ? 'it did not' : `after ${s(m.vipMovedMs)}` },
    {
      name: `the returning ${target.alias} did not take the VIP back`,
      ok: m.vipBackToOldMs === null && vipHolders[0] !== target.alias,
      detail: m.vipBackToOldMs === null && vipHolders[0] !== target.alias ? 'it did not' : `it holds the VIP again${m.vipBackToOldMs !== null ? ` ${s(m.vipBackToOldMs)} after the fault` : ''}`,
    },
    {
      name: 'the VIP holder serves the share',
      ok: holderAfter !== null && holderAfter.nfs === 'active' && holderAfter.port,
      detail: holderAfter ? `${unit} ${holderAfter.nfs} on ${holderAfter.alias}${holderAfter.port ? ', answers on 2049' : ', nothing on 2049'}` : 'no single holder',
    },
    {
      name: 'writes through the VIP succeed at the end',
      ok: last.length > 0 && last.every((e) => e.ok),
      detail: last.map((e) => (e.ok ? `#${e.seq} ok` : `#${e.seq} failed`)).join(', ') || 'no writes',
    },
    {
      name: 'no file acknowledged after the failover is missing on the VIP holder',
      ok: checked !== null && rpo.missingAfterFailover.length === 0,
      detail: checked ? `${rpo.missingAfterFailover.length} missing` : 'not checked (no single VIP holder, or its files could not be read)',
    },
    {
      name: `no acknowledged file older than the replication window (${s(windowMs)}) before the fault is missing`,
      ok: checked !== null && rpo.missingBeyondWindow.length === 0,
      detail: checked ? `${rpo.missingBeyondWindow.length} missing` : 'not checked',
    },
    {
      name: `replication reached ${survivor.alias} before the fault`,
      ok: timing.replicationPasses === 0 || repl.passes > 0,
      detail: `${repl.passes} pass(es) seen${repl.maxLagMs !== null ? `, lag up to ${s(repl.maxLagMs)}` : ''}`,
    },
    {
      name: "the drill's files are removed from both servers",
      ok: cleanup.every((c) => c.left === 0),
      detail: cleanup.map((c) => `${c.host}: ${c.removed} removed, ${c.left === null ? 'unknown' : c.left} left`).join('; '),
    },
  ];

  const advice: string[] = [];
  const newHolder = holderAfter?.alias ?? survivor.alias;
  const oldOne = holderAfter && holderAfter.alias !== survivor.alias ? survivor.alias : target.alias;
  advice.push(
    `${oldOne}'s copy of ${opts.exportDir} diverged from ${newHolder}'s: it may hold files the app wrote in the last ${s(repl.lagAtFaultMs)} before the fault that ${newHolder} lacks. ` +
      `The next replication pass from ${newHolder} (every ${opts.replicationIntervalSec} s) overwrites it and keeps what it replaces or deletes under ${NFS_PATHS.replaced}/<date> on ${oldOne}: look there for the app's files from just before the fault.`,
  );
  if (oldAfter.error) advice.push(`${target.alias} could not be read after the drill (${oldAfter.error}): check that it is back, and run ha-setup status`);
  else if (oldAfter.nfs !== 'active' || oldAfter.keepalived !== 'active') advice.push(`${target.alias}: ${unit} is ${oldAfter.nfs}, keepalived ${oldAfter.keepalived}: start them, or the pair has no standby`);
  if (!checks[2]!.ok) advice.push(`${target.alias} took the VIP back when it returned, with its stale copy: files written on ${survivor.alias} during the failover are missing from the share until recovered from ${NFS_PATHS.replaced}/<date> on ${survivor.alias}`);
  for (const c of cleanup) if (c.left !== 0) advice.push(`${c.host}: remove the drill's files by hand: rm -f ${opts.exportDir}/${drillFilePrefix(run)}* ${NFS_PATHS.replaced}/*/${drillFilePrefix(run)}*`);

  const note =
    `rsync replication every ${opts.replicationIntervalSec} s: files acknowledged since the standby's last pass are expected to be missing after a failover (up to about ${s(windowMs)} of writes); ` +
    `observed lag at the fault ${s(repl.lagAtFaultMs)}, ${repl.unreplicatedAtFault ?? '?'} file(s) not yet on ${survivor.alias}`;

  return {
    pair: 'nfs',
    fault: o.fault,
    mode: driver.mode,
    vip: hosts.vip,
    share: { exportDir: opts.exportDir, mountPath: opts.mountPath, server: opts.server, unit },
    probe: { from: hosts.app, tool: said.tool?.tool ?? null, detail: said.tool?.detail ?? '', writeTimeoutSec: timing.writeTimeout },
    target,
    survivor,
    startedAt: startedAt.toISOString(),
    faultAt: faulted ? new Date(startedAt.getTime() + faultAt).toISOString() : null,
    injected,
    undone,
    measured: m,
    replication: { ...repl, intervalSec: opts.replicationIntervalSec, windowMs },
    rpo: { ...summariseRpo(rpo), checkedOn: checked?.alias ?? null, keptAsideOnOld, onOldOnly, note },
    after: { hosts: after, vipHolders },
    checks,
    decisions,
    cleanup,
    advice,
    ok: checks.every((c) => c.ok),
  };
}
