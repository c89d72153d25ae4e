/**
 * The streaming standby (the guides' "stop, keep the config aside, empty the data directory,
 * pg_basebackup from the primary, configure as a standby, restore the config, start"), with a
 * data guard: the data directory is emptied only when the facts prove it holds nothing that
 * is not already on the primary.
 */
import { createHash } from 'node:crypto';
import { heredoc, sh } from '../source/engine/shell.js';
import { defineStep, done, type Action, type ExecContext, type HostContext, type Runbook } from '../source/engine/step.js';
import { osFact } from './lib/host-facts.js';
import { dataWipeOverride, DATA_WIPE_FLAG, pgOptions } from './lib/options.js';
import { holdsAddress, holdsData, netFact, passfileFact, peerPgFact, pgFact, type PeerFacts, type PgFacts } from './lib/pg-facts.js';
import {
  asPostgres,
  DB_NODES,
  DROPIN,
  layoutFor,
  pendingAction,
  pollSql,
  renderAsset,
  slotName,
  TLS,
  type PgLayout,
} from './lib/pg-layout.js';
import { dropInPlan, LAST_RECOVERY_CONF_VERSION, listenAddresses, renderConf, replicationSettings, STANDBY_MINIMUMS } from './lib/pg-settings.js';

export function primaryOf(ctx: Pick<HostContext, 'hosts'>): string {
  const p = ctx.hosts.db_primary?.address;
  if (!p) throw new Error('the server table has no db_primary; add it (servers: db_primary: <IP>)');
  return p;
}
export function standbyOf(ctx: Pick<HostContext, 'hosts'>): string {
  const s = ctx.hosts.db_standby?.address;
  if (!s) throw new Error('the server table has no db_standby; add it (servers: db_standby: <IP>)');
  return s;
}

// ---------------------------------------------------------------------------------------------
// Data guard

export interface GuardInput {
  alias: string;
  address: string;
  /** The host name the admin must type to override (from the OS fact). */
  hostname: string;
  dataDir: string;
  primaryAddress: string;
  /** The DB VIP is bound on this host. */
  holdsVip: boolean;
  vip?: string;
  pg: PgFacts;
  /** The primary seen from here; null when not (yet) known. */
  peer: PeerFacts | null;
  /** The host name typed with --allow-data-wipe, if any. */
  override?: string;
}

export type GuardVerdict = { ok: true; note: string } | { ok: false; message: string };

/**
 * May this host's data directory be emptied to clone the primary into it? Refuses for a live
 * or former primary holding data, and when the table's roles look swapped. Some refusals can
 * be overridden by typing the host name (--allow-data-wipe <host name>); swapped roles cannot.
 */
export function dataGuard(g: GuardInput): GuardVerdict {
  const who = `${g.alias} (${g.address}${g.hostname ? `, host name ${g.hostname}` : ''})`;
  const refuse = (why: string, overridable: boolean): GuardVerdict => {
    if (overridable && g.override !== undefined && g.hostname && g.override === g.hostname) {
      return { ok: true, note: `${why}; emptied anyway: ${DATA_WIPE_FLAG} ${g.hostname} was given` };
    }
    const fix = overridable
      ? `if this really is the server to overwrite, run again with ${DATA_WIPE_FLAG} ${g.hostname || '<its host name>'}`
      : 'fix the server table (db_primary must be the server holding the data, db_standby the one to overwrite)';
    const typedWrong = overridable && g.override !== undefined && g.override !== g.hostname ? ` (${DATA_WIPE_FLAG} ${g.override} does not match host name ${g.hostname})` : '';
    return { ok: false, message: `refusing to empty ${g.dataDir} on ${who}: ${why}${typedWrong}; ${fix}` };
  };
  if (g.address === g.primaryAddress) return refuse(`db_standby and db_primary are the same address ${g.address}`, false);
  if (g.holdsVip) return refuse(`it holds the DB VIP ${g.vip}, so it is the cluster's current primary (roles swapped?)`, false);
  if (g.peer?.ok && g.peer.inHotStandby === true) {
    return refuse(`db_primary (${g.primaryAddress}) is itself in recovery (a standby), so the roles in the table look swapped`, false);
  }
  const pg = g.pg;
  const peerSys = g.peer?.ok ? g.peer.systemIdentifier : null;
  const same = peerSys !== null && pg.systemIdentifier === peerSys;
  const data = holdsData(pg);
  if (pg.running && pg.inRecovery === false) {
    // A live primary in the standby's place is most often the table's roles swapped: say so first.
    const swapped = 'if the table has the roles swapped (this is your live primary), swap db_primary and db_standby in the server table';
    if (same) return refuse(`it runs as a primary of this same cluster (system identifier ${peerSys}): two primaries, or an old primary after a failover that may hold writes db_primary never received; ${swapped}`, true);
    if (data) return refuse(`it runs as a primary (not in recovery) and holds ${data}; ${swapped}`, true);
    return { ok: true, note: 'a freshly initialised cluster without user data: replaced by the clone' };
  }
  if (pg.running && pg.inRecovery === true) {
    if (same) return { ok: true, note: 'a standby of this cluster that does not stream from db_primary: cloned again' };
    if (peerSys === null) return { ok: true, note: "a standby (in recovery); compared with db_primary's identity before anything is emptied" };
    if (data) return refuse(`it is a standby of another cluster (system identifier ${pg.systemIdentifier}) holding ${data}`, true);
    return { ok: true, note: 'a standby without user data: replaced by the clone' };
  }
  // Stopped (or no cluster at all).
  if (pg.cloneMarker && peerSys !== null && pg.cloneMarker === peerSys) return { ok: true, note: 'an interrupted clone of this primary: emptied again' };
  if (pg.cloneMarker && peerSys === null) return { ok: true, note: `an interrupted clone (marker for system ${pg.cloneMarker}); compared with db_primary before anything is emptied` };
  if (same && !pg.standbyConfigured && (pg.clusterState === 'shut down' || pg.clusterState === 'in production')) {
    return refuse(`it is a stopped former primary of this cluster (state "${pg.clusterState}", no standby configuration) and may hold writes db_primary never received`, true);
  }
  if (!same && data) {
    const sys = pg.systemIdentifier ? `system identifier ${pg.systemIdentifier}` : 'no readable pg_control';
    return refuse(`it holds ${data} (${sys}${peerSys ? `, db_primary has ${peerSys}` : ''})`, true);
  }
  if (!pg.dataDirExists || pg.dataVersion === null) return { ok: true, note: 'no cluster in the data directory yet' };
  return { ok: true, note: same ? 'a stopped standby copy of this cluster: cloned again' : 'a cluster without user data: replaced by the clone' };
}

// ---------------------------------------------------------------------------------------------
// Replication passfile (both nodes: the standby needs it now, the old primary after a failover)

/** One field of a .pgpass line: ':' and '\' escaped (IPv6 addresses contain ':'). */
export const pgpassField = (s: string): string => s.replace(/[\\:]/g, (c) => `\\${c}`);

export function passfileContent(ctx: HostContext): string {
  const o = pgOptions(ctx.options);
  const pw = ctx.secret(REPLICATOR_SECRET).reveal();
  const hosts = [primaryOf(ctx), standbyOf(ctx), ctx.addresses.db_vip].filter((h): h is string => Boolean(h));
  const lines = [...new Set(hosts)].map((h) => `${pgpassField(h)}:${o.port}:*:replicator:${pgpassField(pw)}`);
  return `# Managed by ha-setup (runbook pg-standby): the replication password for pg_basebackup and the WAL receiver.\n${lines.join('\n')}\n`;
}

export const REPLICATOR_SECRET = 'postgres.replicator';

const passfile = defineStep({
  id: 'pg-standby.passfile',
  title: "Replication password file of the postgres user (0600, not in argv, not in ~/.pgpass)",
  targets: () => [...DB_NODES],
  facts: (ctx) => ({ os: osFact, pf: passfileFact(pgOptions(ctx.options).version) }),
  inputs: (ctx) => [primaryOf(ctx), standbyOf(ctx), ctx.addresses.db_vip, pgOptions(ctx.options).port],
  plan({ os, pf }, ctx) {
    const layout = layoutFor(os, pgOptions(ctx.options).version, ctx.host.alias);
    const content = passfileContent(ctx);
    const sha = createHash('sha256').update(content).digest('hex');
    const path = layout.passfile;
    if (pf.sha256 === sha && pf.mode === '600' && pf.owner === 'postgres') return done(`${path} holds the current replication password (0600, postgres)`);
    if (pf.sha256 === sha) {
      return {
        actions: [{ kind: 'run', title: `fix owner and mode of ${path}`, script: sh`chown postgres:postgres ${path} && chmod 0600 ${path}`, sudo: true }],
        reason: `mode ${pf.mode}, owner ${pf.owner}`,
      };
    }
    // heredoc() ends the body with a newline of its own: the file gets exactly `content`.
    const doc = heredoc(content.replace(/\n$/, ''));
    const script = [
      'umask 077',
      `tmp=$(${sh`mktemp ${`${path}.XXXXXX`}`})`,
      `cat > "$tmp" ${doc.open}`,
      doc.body,
      'chown postgres:postgres "$tmp"',
      'chmod 0600 "$tmp"',
      sh`mv -f "$tmp" ${path}`,
    ].join('\n');
    return {
      actions: [{ kind: 'run', title: `write ${path} (replicator password for the peer and the DB VIP; 0600, postgres)`, script, sudo: true }],
      reason: pf.exists ? 'the password or the hosts changed' : 'no passfile yet',
    };
  },
});

// ---------------------------------------------------------------------------------------------
// Clone

/** primary_conninfo: no password (libpq reads the passfile), the server's certificate verified. */
export function primaryConninfo(layout: PgLayout, primary: string, port: number, appName: string, ca = TLS.ca): string {
  return `host=${primary} port=${port} user=replicator passfile=${layout.passfile} sslmode=verify-full sslrootcert=${ca} application_name=${appName}`;
}

function listenFor(ctx: HostContext): string {
  return listenAddresses(pgOptions(ctx.options).listen, ctx.host.address, ctx.addresses.db_vip);
}

/** ha-setup.conf of the standby: the primary's file plus minimums copied from the primary. */
export function standbyDropIn(ctx: HostContext, pg: PgFacts, peer: PeerFacts): { content: string; settings: ReturnType<typeof replicationSettings> } {
  const o = pgOptions(ctx.options);
  const minimums: Partial<Record<(typeof STANDBY_MINIMUMS)[number], number>> = {};
  for (const name of STANDBY_MINIMUMS) {
    const own = Number(pg.settings[name]?.setting);
    const theirs = peer.settings[name];
    const m = Math.max(Number.isFinite(own) ? own : 0, theirs ?? 0);
    if (m > 0 || theirs !== undefined) minimums[name] = m;
  }
  const settings = replicationSettings({ version: o.version, options: o, listen: listenFor(ctx), minimums });
  const content = renderAsset('ha-setup.conf.tmpl', { runbook: 'pg-standby', version: o.version, alias: ctx.host.alias, settings: renderConf([], settings).trimEnd() });
  return { content, settings };
}

/**
 * pg_basebackup as postgres, WAL streamed through the standby's slot. -R (12+) writes
 * standby.signal and primary_conninfo from this conninfo: the password stays in the passfile
 * (libpq keeps a password read from a passfile out of the conninfo it reports).
 */
export function basebackupScript(layout: PgLayout, conninfo: string, slot: string, writeRecoveryConf: boolean): string {
  return asPostgres(sh`${`${layout.binDir}/pg_basebackup`} -d ${conninfo} -D ${layout.dataDir} -X stream -S ${slot} -c fast -w ${writeRecoveryConf ? ['-R'] : []}`);
}

function cloneActions(ctx: HostContext, pg: PgFacts, peer: PeerFacts, layout: PgLayout, primary: string): Action[] {
  const o = pgOptions(ctx.options);
  const slot = slotName(standbyOf(ctx));
  const d = layout.dataDir;
  const keep = layout.keepDir;
  const conninfo = primaryConninfo(layout, primary, o.port, slot);
  const useR = o.version > LAST_RECOVERY_CONF_VERSION;
  const bin = (b: string): string => `${layout.binDir}/${b}`;
  const { content: dropIn } = standbyDropIn(ctx, pg, peer);
  const actions: Action[] = [];
  if (pg.running) actions.push({ kind: 'run', title: `stop ${layout.unit}`, script: sh`systemctl stop ${layout.unit}`, sudo: true });
  actions.push({
    kind: 'run',
    title: `mark ${d} as being cloned from system ${peer.systemIdentifier}`,
    script: sh`printf '%s\\n' ${peer.systemIdentifier!} > ${layout.cloneMarker}`,
    sudo: true,
  });
  if (layout.family === 'rhel') {
    actions.push({
      kind: 'run',
      title: `keep this node's config files aside (${keep})`,
      script: [
        sh`if [ -d ${keep} ] && [ ! -f ${`${d}/postgresql.conf`} ]; then echo 'reusing the config kept by an interrupted clone'; exit 0; fi`,
        sh`rm -rf ${keep} && install -d -m 0700 -o postgres -g postgres ${keep}`,
        sh`for f in postgresql.conf pg_hba.conf pg_ident.conf conf.d; do if [ -e ${d}/"$f" ]; then cp -a ${d}/"$f" ${keep}/; fi; done`,
      ].join('\n'),
      sudo: true,
    });
  }
  actions.push({
    kind: 'run',
    title: `empty ${d} (data guard passed)`,
    script: [
      `if ${asPostgres(sh`${bin('pg_ctl')} status -D ${d}`)} >/dev/null 2>&1; then echo ${sh`${`PostgreSQL still runs in ${d}; not emptying it`}`} >&2; exit 1; fi`,
      // A pg_basebackup left running into this directory by an interrupted run (the tool was
      // killed) is stopped first: emptying under it would break both copies, and its
      // replication slot stays active on the primary until it ends.
      `for p in $(pgrep -x pg_basebackup || true); do if tr '\\0' '\\n' < /proc/$p/cmdline 2>/dev/null | grep -qxF -- ${sh`${d}`}; then echo "stopping pg_basebackup $p left by an interrupted clone" >&2; kill "$p" 2>/dev/null || true; fi; done`,
      `for i in $(seq 1 100); do stale=""; for p in $(pgrep -x pg_basebackup || true); do if tr '\\0' '\\n' < /proc/$p/cmdline 2>/dev/null | grep -qxF -- ${sh`${d}`}; then stale=$p; fi; done; [ -z "$stale" ] && break; sleep 0.1; done`,
      sh`install -d -m 0700 -o postgres -g postgres ${d}`,
      sh`find ${d} -mindepth 1 -delete`,
    ].join('\n'),
    sudo: true,
  });
  actions.push({
    kind: 'run',
    title: `pg_basebackup from db_primary (${primary}) through slot ${slot}${useR ? ', -R' : ''}`,
    script: basebackupScript(layout, conninfo, slot, useR),
    sudo: true,
  });
  if (layout.family === 'rhel') {
    actions.push({
      kind: 'run',
      title: "restore this node's config files",
      script: [sh`rm -rf ${`${d}/conf.d`}`, sh`cp -a ${`${keep}/.`} ${`${d}/`}`, sh`rm -rf ${keep}`].join('\n'),
      sudo: true,
    });
  }
  const dropInPath = `${layout.dropInDir}/${DROPIN.replication}`;
  if (pg.dropIns.replication !== dropIn) {
    actions.push({ kind: 'write', title: `write ${dropInPath}`, path: dropInPath, content: dropIn, mode: 0o644, owner: 'postgres', group: 'postgres', previous: pg.dropIns.replication });
  }
  if (!useR) {
    const recovery = renderAsset('recovery.conf.tmpl', { version: o.version, primary: `db_primary (${primary})`, conninfo, slot });
    actions.push({ kind: 'write', title: `write ${d}/recovery.conf (PostgreSQL ${o.version}: before 12)`, path: `${d}/recovery.conf`, content: recovery, mode: 0o600, owner: 'postgres', group: 'postgres', previous: null });
  }
  actions.push({ kind: 'run', title: 'clone finished: remove the mark', script: sh`rm -f ${layout.cloneMarker}`, sudo: true });
  actions.push({ kind: 'run', title: `start ${layout.unit} as a standby`, script: sh`systemctl start ${layout.unit}`, sudo: true });
  return actions;
}

const clone = defineStep({
  id: 'pg-standby.clone',
  title: 'Clone the primary into the standby (pg_basebackup) and stream from it',
  targets: () => ['db_standby'],
  facts: (ctx) => {
    const o = pgOptions(ctx.options);
    return { os: osFact, pg: pgFact(o.version), net: netFact, peer: peerPgFact({ version: o.version, peer: primaryOf(ctx), port: o.port }) };
  },
  inputs: (ctx) => {
    const o = pgOptions(ctx.options);
    return [primaryOf(ctx), standbyOf(ctx), ctx.addresses.db_vip, o.version, o.port, o.listen, o.walKeepSizeMb, o.maxSlotWalKeepSizeMb, o.replication, o.archiveDir ?? null];
  },
  plan({ os, pg, net, peer }, ctx) {
    const o = pgOptions(ctx.options);
    const { alias, address } = ctx.host;
    const layout = layoutFor(os, o.version, alias);
    const primary = primaryOf(ctx);
    const vip = ctx.addresses.db_vip;
    const verdict = dataGuard({
      alias,
      address,
      hostname: os.hostname,
      dataDir: layout.dataDir,
      primaryAddress: primary,
      holdsVip: vip ? holdsAddress(net.addresses, vip) : false,
      vip,
      pg,
      peer,
      override: dataWipeOverride(ctx.options),
    });
    if (!verdict.ok) throw new Error(verdict.message);
    if (!peer.ok) {
      return {
        actions: [pendingAction(`clone db_primary (${primary}) into ${layout.dataDir}`, `db_primary accepts replicator from ${alias} over TLS (runbooks pg-primary, pg-ssl, pg-users, step pg-standby.passfile); now: ${peer.error}`)],
        reason: `data guard: ${verdict.note}`,
      };
    }
    const same = pg.systemIdentifier === peer.systemIdentifier;
    const streaming = pg.running && pg.inRecovery === true && same && pg.walReceiver?.status === 'streaming' && pg.walReceiver.senderHost === primary;
    const { content, settings } = standbyDropIn(ctx, pg, peer);
    if (streaming) {
      const p = dropInPlan({
        alias,
        path: `${layout.dropInDir}/${DROPIN.replication}`,
        content,
        previous: pg.dropIns.replication,
        wanted: settings,
        unit: layout.unit,
        running: pg.running,
        live: pg.settings,
        autoConf: `${layout.dataDir}/postgresql.auto.conf`,
      });
      const state = `streaming from db_primary (${primary}), system identifier ${peer.systemIdentifier}`;
      // A clone that finished after the tool was killed leaves its mark: this node streams, so
      // the mark is stale (and must not later count as "an interrupted clone" to the data guard).
      const unmark: Action[] = pg.cloneMarker ? [{ kind: 'run', title: `the clone finished: remove the stale mark ${layout.cloneMarker}`, script: sh`rm -f ${layout.cloneMarker}`, sudo: true }] : [];
      if (p.actions.length === 0 && unmark.length === 0) return done(`${state}; ${p.summary}`);
      return { actions: [...p.actions, ...unmark], reason: `${state}; ${p.summary}` };
    }
    if (!pg.running && same && pg.standbyConfigured && pg.clusterState === 'shut down in recovery') {
      const p = dropInPlan({ alias, path: `${layout.dropInDir}/${DROPIN.replication}`, content, previous: pg.dropIns.replication, wanted: settings, unit: layout.unit, running: false, live: {}, autoConf: '' });
      return { actions: p.actions, reason: `a stopped standby of this cluster: started, not cloned again (a run after this one clones it if it does not stream)` };
    }
    return { actions: cloneActions(ctx, pg, peer, layout, primary), reason: `data guard: ${verdict.note}` };
  },
  async verify(ctx: ExecContext) {
    const o = pgOptions(ctx.options);
    const primary = primaryOf(ctx);
    const sql = "select coalesce((select status from pg_stat_wal_receiver), 'no-wal-receiver') || ' ' || pg_is_in_recovery();";
    const r = await ctx.run('wait for the WAL receiver to stream (up to 60 s)', pollSql(o.version, o.port, sql, 'streaming true', 60, 'the WAL receiver does not stream'), { sudo: true, check: false });
    if (r.code === 0) return `streaming from db_primary (${primary})`;
    throw new Error(`${ctx.host.alias} does not stream from db_primary (${primary}) after 60 s (${r.stderr.trim() || r.stdout.trim()}); see the PostgreSQL log on ${ctx.host.alias}`);
  },
});

export const pgStandbyRunbook: Runbook = {
  id: 'pg-standby',
  title: 'PostgreSQL standby',
  description:
    "The guides' standby procedure (stop, keep the config, empty the data directory, pg_basebackup, standby configuration, restore, start), with a data guard against emptying a primary, pg_basebackup -R (recovery.conf written for 10 and 11), the replication password in a 0600 passfile and the standby's max_* settings at least the primary's.",
  steps: [passfile, clone],
};

