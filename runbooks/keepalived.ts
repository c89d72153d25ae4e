/**
 * keepalived for the DB pair (and the NFS pair, and the load balancer pair lb + lb_standby, when
 * the table has them): each pair its own VIP
 * and virtual_router_id, both nodes BACKUP with nopreempt and distinct priorities, unicast
 * adverts, a generated auth_pass, health checks that follow the service, notify scripts that
 * promote a standby only when the peer is not a writable primary and fence a stale or replaced
 * primary, VRRP allowed between the pair in the host firewall, configs checked with
 * `keepalived -t` before keepalived reads them. Why the scripts decide what they decide:
 * assets/keepalived/pg-ha.sh.
 */
import { sh } from '../source/engine/shell.js';
import { defineStep, done, type Action, type ExecContext, type FactMap, type HostContext, type Plan, type Runbook } from '../source/engine/step.js';
import { osFact, type OsInfo } from './lib/host-facts.js';
import {
  asset,
  fenceDropIn,
  HAPROXY_SCRIPT,
  KEEPALIVED_CONF,
  keepalivedConf,
  keepalivedTargets,
  LOG_TAG,
  NFS_SCRIPT,
  pairOf,
  PAIRS,
  PG_ENV,
  PG_SCRIPT,
  pgEnvFile,
  routerIdOf,
  SCRIPT_DIR,
  STATE_DIR,
  vrrpAddresses,
  type VrrpAddresses,
} from './lib/keepalived-config.js';
import { keepalivedFact, versionAtLeast, vrrpFirewallFact, type KeepalivedFacts, type ManagedFile } from './lib/keepalived-facts.js';
import { vrrpFirewallPlan } from './lib/keepalived-firewall.js';
import { keepalivedOptions } from './lib/keepalived-options.js';
import { haproxyOptions } from './lib/haproxy-config.js';
import { pgOptions } from './lib/options.js';
import { firewallFact, netFact, passfileFact, resolveFact, tableNames, type NetFacts, type PassfileFacts, type Resolved } from './lib/pg-facts.js';
import { layoutFor, pendingAction, pgLayout } from './lib/pg-layout.js';

/** keepalived 2.1 has track_file (the block), notify_stop, notify_master_rx_lower_pri, script_user as used here. */
export const MIN_KEEPALIVED = '2.1';
/** The peer check reads in_hot_standby over a replication connection (PostgreSQL 14+). */
export const MIN_POSTGRES = 14;

const isDb = (alias: string): boolean => pairOf(alias).kind === 'db';

/** The health check script of the NFS and load balancer pairs (the DB pair's is pg-ha). */
function checkScriptOf(alias: string): { path: string; asset: string; what: string } {
  return pairOf(alias).kind === 'lb' ? { path: HAPROXY_SCRIPT, asset: 'haproxy-check.sh', what: 'HAProxy' } : { path: NFS_SCRIPT, asset: 'nfs-check.sh', what: 'NFS' };
}

/** A file written as root when its content, mode or owner differ from what is there. */
export function fileAction(path: string, content: string, mode: number, have: ManagedFile | undefined, title?: string): Action[] {
  const wantMode = mode.toString(8);
  if (have?.content === content && have.mode === wantMode && have.owner === 'root:root') return [];
  return [{ kind: 'write', title: title ?? `write ${path}`, path, content, mode, owner: 'root', group: 'root', previous: have?.content ?? null }];
}

function dirAction(path: string, have: ManagedFile | undefined, why: string): Action[] {
  if (have?.mode === '755' && have.owner === 'root:root') return [];
  return [{ kind: 'run', title: `create ${path} (root, 0755: ${why})`, script: sh`install -d -m 0755 -o root -g root ${path}`, sudo: true }];
}

const SCRIPTS_WHY = 'keepalived runs only scripts that no other user can change';

const pgVersion = (ctx: HostContext): number => pgOptions(ctx.options).version;

// ---------------------------------------------------------------------------------------------

const pkg = defineStep({
  id: 'keepalived.package',
  title: 'keepalived installed (2.1 or later)',
  targets: keepalivedTargets,
  facts: { os: osFact, ka: keepalivedFact([]) },
  plan({ os, ka }, ctx) {
    if (ka.binary) {
      if (!versionAtLeast(ka.version, MIN_KEEPALIVED)) {
        throw new Error(`${ctx.host.alias}: keepalived ${ka.version ?? '(unknown version)'} is older than ${MIN_KEEPALIVED} (no track_file, notify_master_rx_lower_pri); upgrade the keepalived package`);
      }
      return done(`keepalived ${ka.version} is installed (${ka.binary})`);
    }
    const install: Record<OsInfo['packageManager'], string | null> = {
      apt: 'DEBIAN_FRONTEND=noninteractive apt-get install -y keepalived',
      dnf: 'dnf install -y keepalived',
      yum: 'yum install -y keepalived',
      unknown: null,
    };
    const script = install[os.packageManager];
    if (!script) throw new Error(`${ctx.host.alias}: no apt-get, dnf or yum here to install keepalived; install it by hand and run again`);
    return { actions: [{ kind: 'run', title: 'install keepalived', script, sudo: true }], reason: 'keepalived is not installed' };
  },
});

// ---------------------------------------------------------------------------------------------

function dbScriptPaths(version: number): string[] {
  return [SCRIPT_DIR, STATE_DIR, PG_SCRIPT, PG_ENV, fenceDropIn(pgLayout('debian', version).unit), fenceDropIn(pgLayout('rhel', version).unit)];
}

const scripts = defineStep({
  id: 'keepalived.scripts',
  title: 'Health check and notify scripts (root-owned), their settings, the fence of the PostgreSQL unit',
  targets: keepalivedTargets,
  facts: (ctx): FactMap => {
    if (!isDb(ctx.host.alias)) return { ka: keepalivedFact([SCRIPT_DIR, STATE_DIR, checkScriptOf(ctx.host.alias).path]) };
    const v = pgVersion(ctx);
    return { os: osFact, ka: keepalivedFact(dbScriptPaths(v)), net: netFact, resolve: resolveFact(tableNames(ctx)), pf: passfileFact(v) };
  },
  inputs: (ctx) => [tableNames(ctx), pgOptions(ctx.options).port, keepalivedOptions(ctx.options)],
  plan(facts, ctx): Plan {
    const ka = facts.ka as KeepalivedFacts;
    if (!isDb(ctx.host.alias)) {
      const c = checkScriptOf(ctx.host.alias);
      const state = pairOf(ctx.host.alias).kind === 'nfs' ? dirAction(STATE_DIR, ka.files[STATE_DIR], 'the holder generation keepalived tracks') : [];
      const actions = [...dirAction(SCRIPT_DIR, ka.files[SCRIPT_DIR], SCRIPTS_WHY), ...state, ...fileAction(c.path, asset(c.asset), 0o755, ka.files[c.path])];
      return actions.length ? { actions, reason: `the ${c.what} health check of keepalived` } : done(`${c.path} is current`);
    }
    const { os, net, resolve, pf } = facts as { os: OsInfo; net: NetFacts; resolve: Resolved; pf: PassfileFacts };
    const v = pgVersion(ctx);
    if (v < MIN_POSTGRES) {
      throw new Error(`options.postgres.version ${v}: the keepalived scripts need PostgreSQL ${MIN_POSTGRES} or later (they read in_hot_standby of the peer over a replication connection); upgrade PostgreSQL`);
    }
    const layout = layoutFor(os, v, ctx.host.alias);
    const addr = vrrpAddresses(ctx, net, resolve);
    const dropIn = fenceDropIn(layout.unit);
    const dropInText = asset('pg-fence.conf.tmpl');
    const actions: Action[] = [
      ...dirAction(SCRIPT_DIR, ka.files[SCRIPT_DIR], SCRIPTS_WHY),
      ...dirAction(STATE_DIR, ka.files[STATE_DIR], 'the generation keepalived tracks and the fence marker'),
      ...fileAction(PG_SCRIPT, asset('pg-ha.sh'), 0o755, ka.files[PG_SCRIPT]),
      ...fileAction(PG_ENV, pgEnvFile(ctx, addr, layout), 0o644, ka.files[PG_ENV]),
    ];
    const dropInActions = fileAction(dropIn, dropInText, 0o644, ka.files[dropIn], `write ${dropIn} (a fenced node starts PostgreSQL only as a standby)`);
    if (dropInActions.length) {
      if (!ka.files[dropIn]?.content) actions.push({ kind: 'run', title: `create ${dropIn.replace(/\/[^/]+$/, '')}`, script: sh`install -d -m 0755 ${dropIn.replace(/\/[^/]+$/, '')}`, sudo: true });
      actions.push(...dropInActions, { kind: 'run', title: 'systemctl daemon-reload (the fence drop-in)', script: 'systemctl daemon-reload', sudo: true });
    }
    const peerCheck = pf.exists ? null : pendingAction('let the scripts check the peer PostgreSQL', `the replication passfile ${layout.passfile} exists (runbook pg-standby, step passfile)`);
    if (peerCheck) actions.unshift(peerCheck);
    if (actions.length === 0) return done(`${PG_SCRIPT}, ${PG_ENV} and the fence of ${layout.unit} are current (peer ${addr.peer}, VIP ${addr.vip} on ${addr.iface})`);
    return { actions, reason: `decisions are logged with the tag ${LOG_TAG}; the peer (${addr.peer}) is checked with the replication passfile, no secret in these files` };
  },
});

// ---------------------------------------------------------------------------------------------

const firewall = defineStep({
  id: 'keepalived.firewall',
  title: 'Firewall: VRRP (IP protocol 112) from the peer (when a firewall filters incoming traffic)',
  targets: keepalivedTargets,
  facts: (ctx) => ({ fw: firewallFact, vrrp: vrrpFirewallFact, net: netFact, resolve: resolveFact(tableNames(ctx)) }),
  inputs: (ctx) => tableNames(ctx),
  plan({ fw, vrrp, net, resolve }, ctx) {
    const addr = vrrpAddresses(ctx, net, resolve);
    return vrrpFirewallPlan(fw, vrrp, net, addr.peer, ctx.host.alias);
  },
});

// ---------------------------------------------------------------------------------------------

const PREV = `${KEEPALIVED_CONF}.ha-setup-prev`;

/** Write keepalived.conf, check it with keepalived -t (the previous file comes back if it fails), reload if running. */
export function configActions(content: string, have: ManagedFile | undefined, active: boolean): Action[] {
  const prevExists = have?.content !== null && have?.content !== undefined;
  if (have?.content === content && have.mode === '640' && have.owner === 'root:root') return [];
  const restore = prevExists ? sh`mv -f ${PREV} ${KEEPALIVED_CONF}` : sh`rm -f ${KEEPALIVED_CONF}`;
  return [
    ...(prevExists ? [{ kind: 'run' as const, title: `keep the current ${KEEPALIVED_CONF} aside until the new one passes keepalived -t`, script: sh`cp -p ${KEEPALIVED_CONF} ${PREV}`, sudo: true }] : []),
    { kind: 'write', title: `write ${KEEPALIVED_CONF} (0640: it holds auth_pass)`, path: KEEPALIVED_CONF, content, mode: 0o640, owner: 'root', group: 'root', previous: have?.content ?? null },
    {
      kind: 'run',
      title: `keepalived -t -f ${KEEPALIVED_CONF} (on failure the previous file is put back)`,
      script: [
        `if ! out=$(timeout 30 keepalived -t -f ${KEEPALIVED_CONF} 2>&1); then`,
        `  ${restore}`,
        `  echo "keepalived -t rejected the new configuration (the previous one is back in place): $out" >&2`,
        '  exit 1',
        'fi',
        sh`rm -f ${PREV}`,
      ].join('\n'),
      sudo: true,
    },
    ...(active ? [{ kind: 'run' as const, title: 'reload keepalived (SIGHUP: the VRRP state is kept, no failover)', script: 'systemctl reload keepalived', sudo: true }] : []),
  ];
}

const config = defineStep({
  id: 'keepalived.config',
  title: `${KEEPALIVED_CONF}: the pair's vrrp_instance, checked with keepalived -t before use`,
  targets: keepalivedTargets,
  facts: (ctx) => ({ ka: keepalivedFact([KEEPALIVED_CONF]), net: netFact, resolve: resolveFact(tableNames(ctx)) }),
  inputs: (ctx) => [tableNames(ctx), keepalivedOptions(ctx.options)],
  plan({ ka, net, resolve }, ctx) {
    const addr: VrrpAddresses = vrrpAddresses(ctx, net, resolve);
    const pair = pairOf(ctx.host.alias);
    const content = keepalivedConf(ctx, addr);
    const actions = configActions(content, ka.files[KEEPALIVED_CONF], ka.active === 'active');
    const what = `${pair.instance}: VIP ${addr.vip}/${addr.prefix} on ${addr.iface}, virtual_router_id ${routerIdOf(pair.kind, ctx.options)}, unicast ${addr.self} -> ${addr.peer}`;
    if (actions.length === 0) return done(`${KEEPALIVED_CONF} is current (${what})`);
    return { actions, reason: what };
  },
});

// ---------------------------------------------------------------------------------------------

function serviceActions(ka: KeepalivedFacts): Action[] {
  return [
    ...(ka.enabled === 'enabled' ? [] : [{ kind: 'run' as const, title: 'enable keepalived at boot', script: 'systemctl enable keepalived', sudo: true }]),
    ...(ka.active === 'active' ? [] : [{ kind: 'run' as const, title: 'start keepalived', script: 'systemctl start keepalived', sudo: true }]),
  ];
}

/** verify(): keepalived runs; a node whose PostgreSQL is the writable primary holds the VIP within 10 s. */
async function verifyService(ctx: ExecContext): Promise<string> {
  const pair = pairOf(ctx.host.alias);
  const vip = ctx.addresses[pair.vipAlias]!;
  const active = await ctx.run('keepalived is active', 'systemctl is-active keepalived', { sudo: true, check: false });
  if (active.stdout.trim() !== 'active') throw new Error(`${ctx.host.alias}: keepalived is ${active.stdout.trim() || 'not running'}; see journalctl -u keepalived on ${ctx.host.alias}`);
  if (pair.kind !== 'db') {
    // NFS and load balancer pairs: the pair's primary takes the VIP when its service is healthy
    // (both services run before keepalived starts, so that is the normal case on a first run).
    if (ctx.host.alias !== pair.primary) return 'keepalived runs';
    const c = checkScriptOf(ctx.host.alias);
    const check = c.path === HAPROXY_SCRIPT ? sh`${c.path} ${haproxyOptions(ctx.options).appPort}` : sh`${c.path}`;
    const script = [
      `if ! ${check} >/dev/null 2>&1; then echo unhealthy; exit 0; fi`,
      'for i in $(seq 1 50); do',
      `  if ip -o addr show | grep -qF ${sh`${` ${vip}/`}`}; then echo holds; exit 0; fi`,
      '  sleep 0.2',
      'done',
      'echo missing',
    ].join('\n');
    const r = await ctx.run(`the pair's primary takes ${pair.vipAlias} (up to 10 s)`, script, { sudo: true, check: false });
    const out = r.stdout.trim();
    if (out === 'holds') return `keepalived runs; ${ctx.host.alias} holds ${pair.vipAlias} ${vip}`;
    if (out === 'unhealthy') return `keepalived runs; the ${c.what} health check fails here, so ${ctx.host.alias} does not take ${pair.vipAlias} (see journalctl -t ${LOG_TAG})`;
    throw new Error(`${ctx.host.alias}: the ${c.what} health check passes but keepalived did not bind ${pair.vipAlias} ${vip} within 10 s; see journalctl -u keepalived -t ${LOG_TAG} on ${ctx.host.alias}`);
  }
  const script = [
    sh`st=$(${PG_SCRIPT} status | sed -n 's/^POSTGRES=//p')`,
    'if [ "$st" != primary ]; then echo "not-primary $st"; exit 0; fi',
    'for i in $(seq 1 50); do',
    `  if ip -o addr show | grep -qF ${sh`${` ${vip}/`}`}; then echo holds; exit 0; fi`,
    '  sleep 0.2',
    'done',
    'echo missing',
  ].join('\n');
  const r = await ctx.run('the writable primary takes the VIP (up to 10 s)', script, { sudo: true, check: false });
  const out = r.stdout.trim();
  if (out === 'holds') return `keepalived runs; this writable primary holds the VIP ${vip}`;
  if (out.startsWith('not-primary')) return `keepalived runs; PostgreSQL here is ${out.slice(12) || 'unknown'}, not the primary, so it does not take the VIP`;
  throw new Error(`${ctx.host.alias}: PostgreSQL is the writable primary here but keepalived did not bind the VIP ${vip} within 10 s; see journalctl -u keepalived -t ${LOG_TAG} on ${ctx.host.alias}`);
}

const byRole = (role: 'primary' | 'standby') => (ctx: { hosts: Record<string, unknown> }): string[] =>
  keepalivedTargets(ctx).filter((a) => Object.values(PAIRS).some((p) => p[role] === a));

const startPrimary = defineStep({
  id: 'keepalived.start-primary',
  title: 'Start keepalived on the pairs\' primaries first (they take the VIPs)',
  targets: byRole('primary'),
  facts: { ka: keepalivedFact([]) },
  plan({ ka }) {
    const actions = serviceActions(ka);
    return actions.length ? { actions, reason: 'first the primary, so that the standby finds a MASTER when it starts' } : done('keepalived is enabled and running');
  },
  verify: verifyService,
});

const startStandby = defineStep({
  id: 'keepalived.start-standby',
  title: 'Start keepalived on the pairs\' standbys',
  targets: byRole('standby'),
  facts: { ka: keepalivedFact([]) },
  plan({ ka }) {
    const actions = serviceActions(ka);
    return actions.length ? { actions, reason: 'the standby starts as BACKUP and stays so while the primary advertises' } : done('keepalived is enabled and running');
  },
  verify: verifyService,
});

export const keepalivedRunbook: Runbook = {
  id: 'keepalived',
  title: 'keepalived VIPs for the DB pair (and the NFS pair, and the load balancer pair)',
  description:
    "The guides' keepalived set-up without their split brain: both nodes BACKUP with nopreempt and distinct priorities, unicast_peer, a generated auth_pass (8 characters), " +
    'health checks that follow PostgreSQL (and the NFS server, and HAProxy on lb + lb_standby), notify scripts that promote a standby only when the peer is not a writable primary and fence a returning old primary, ' +
    'VRRP allowed in the firewall, enable_script_security, keepalived -t before use.',
  steps: [pkg, scripts, firewall, config, startPrimary, startStandby],
};
