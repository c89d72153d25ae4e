/**
 * The keepalived runbook as plans: facts in, commands and files out. What the generated
 * keepalived.conf says for each node of the DB and NFS pairs (asserted on the parsed text), that
 * a second run with the written files in place plans nothing (with reasons), the firewall rules
 * per tool, and the one-line refusals. The generated files are checked by keepalived itself
 * (keepalived -t) in test/lab/keepalived-config.test.ts, and on servers by the lab tests.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { contextOptions, createHostContext, tableOf } from '../../source/engine/context.js';
import { Secret } from '../../source/engine/shell.js';
import type { Action, FactMap, HostContext, Plan, Step } from '../../source/engine/step.js';
import { configActions, keepalivedRunbook } from '../../runbooks/keepalived.js';
import { RUNBOOKS } from '../../runbooks/index.js';
import { fenceDropIn, HAPROXY_SCRIPT, KEEPALIVED_CONF, NFS_SCRIPT, PG_ENV, PG_SCRIPT, SCRIPT_DIR, STATE_DIR } from '../../runbooks/lib/keepalived-config.js';
import type { KeepalivedFacts, ManagedFile, VrrpFirewallFacts } from '../../runbooks/lib/keepalived-facts.js';
import { parseKeepalivedFacts, parseNftVrrpRules, versionAtLeast } from '../../runbooks/lib/keepalived-facts.js';
import { firewalldAddScript } from '../../runbooks/lib/firewalld-ledger.js';
import { vrrpFirewallPlan } from '../../runbooks/lib/keepalived-firewall.js';
import type { FirewallFacts, NetFacts } from '../../runbooks/lib/pg-facts.js';
import type { OsInfo } from '../../runbooks/lib/host-facts.js';

const SERVERS = {
  db_primary: '198.18.0.11',
  db_standby: '198.18.0.12',
  db_vip: '198.18.0.100',
  nfs_primary: '198.18.0.13',
  nfs_standby: '198.18.0.14',
  nfs_vip: '198.18.0.101',
  app1: '198.18.0.15',
  lb: '198.18.0.17',
  lb_standby: '198.18.0.18',
  lb_vip: '198.18.0.102',
};

const secret = (name: string): Secret => new Secret(name, name.endsWith('auth_pass') ? createHash('sha256').update(name).digest('base64url').slice(0, 8) : 'x'.repeat(24));

function ctxFor(alias: string, over: { servers?: Record<string, string | null>; options?: Record<string, unknown> } = {}): HostContext {
  const servers: Record<string, string> = { ...SERVERS };
  for (const [k, v] of Object.entries(over.servers ?? {})) {
    if (v === null) delete servers[k];
    else servers[k] = v;
  }
  const table = tableOf({ servers });
  const options = contextOptions({ cluster: 'test', options: { postgres: { version: 15 }, ...over.options } });
  return createHostContext({ host: table.hosts[alias]!, table, options, secret });
}

const os: OsInfo = { id: 'debian', family: 'debian', versionId: '12', major: 12, prettyName: 'Debian GNU/Linux 12 (bookworm)', hostname: 'h', kernel: '6.1.0', init: 'systemd', packageManager: 'apt' };
const net = (address: string, iface = 'eth0', prefix = 24): NetFacts => ({
  addresses: [
    { iface: 'lo', family: 'inet', address: '127.0.0.1', prefix: 8, scope: 'host' },
    { iface, family: 'inet', address, prefix, scope: 'global' },
  ],
  hostname: 'h',
  fqdn: 'h',
});
const noFirewall: FirewallFacts = {
  firewalld: { running: false, defaultZone: '', runtime: [], permanent: [] },
  ufw: { installed: false, active: false, rules: [] },
  nft: { installed: true, serviceEnabled: false, chains: [], sets: [], tables: [], conf: null, ours: null, accept: null },
  iptables: { v4: null, v6: null, persist: null },
};
const noVrrpRules: VrrpFirewallFacts = { nft: [], iptables: [], ip6tables: [], nftFile: null };

function ka(files: Record<string, ManagedFile> = {}, state: Partial<KeepalivedFacts> = {}): KeepalivedFacts {
  return { binary: '/usr/sbin/keepalived', version: '2.2.7', enabled: 'enabled', active: 'active', files, ...state };
}

const step = (id: string): Step<FactMap> => keepalivedRunbook.steps.find((s) => s.id === id)!;

/** plan() of a step with the facts a host would report (only the keys the step asks for). */
function plan(id: string, ctx: HostContext, facts: Record<string, unknown>): Plan {
  const s = step(id);
  const defs = typeof s.facts === 'function' ? s.facts(ctx) : s.facts;
  const given: Record<string, unknown> = {};
  for (const key of Object.keys(defs)) {
    assert.ok(key in facts, `test gives no fact "${key}" to ${id}`);
    given[key] = facts[key];
  }
  return s.plan(given as never, ctx);
}

const hostFacts = (alias: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  os,
  net: net(SERVERS[alias as keyof typeof SERVERS]),
  resolve: {},
  pf: { exists: true, sha256: 'x', mode: '600', owner: 'postgres' },
  fw: noFirewall,
  vrrp: noVrrpRules,
  ka: ka(),
  ...extra,
});

const written = (p: Plan): Map<string, Extract<Action, { kind: 'write' }>> => new Map(p.actions.filter((a): a is Extract<Action, { kind: 'write' }> => a.kind === 'write').map((a) => [a.path, a]));

function confOf(alias: string, ctx = ctxFor(alias)): string {
  const p = plan('keepalived.config', ctx, hostFacts(alias, { ka: ka({ [KEEPALIVED_CONF]: { content: null, mode: null, owner: null } }, { active: 'inactive' }) }));
  const w = written(p).get(KEEPALIVED_CONF);
  assert.ok(w, `${alias}: keepalived.conf is written`);
  assert.equal(w.mode, 0o640, 'keepalived.conf holds auth_pass: not world-readable');
  return w.content;
}

/** The lines of a config block, e.g. block(conf, 'vrrp_instance ha_setup_db'). */
function block(conf: string, head: string): string[] {
  const lines = conf.split('\n');
  const start = lines.findIndex((l) => l.trim().startsWith(`${head} {`) || l.trim() === `${head} {`);
  assert.ok(start >= 0, `no block "${head}"`);
  const out: string[] = [];
  let depth = 0;
  for (const l of lines.slice(start)) {
    const t = l.replace(/#.*$/, '').trim();
    depth += (t.match(/\{/g) ?? []).length - (t.match(/\}/g) ?? []).length;
    out.push(t);
    if (depth === 0) break;
  }
  return out.filter(Boolean);
}

// ---------------------------------------------------------------------------------------------

test('keepalived runs after the PostgreSQL, NFS server and HAProxy runbooks (the services its VIPs follow) and before the NFS mounts', () => {
  const ids = RUNBOOKS.map((r) => r.id);
  for (const before of ['pg-verify', 'nfs', 'haproxy']) assert.ok(ids.indexOf(before) < ids.indexOf('keepalived'), before);
  assert.equal(ids.indexOf('nfs-mount'), ids.indexOf('keepalived') + 1);
});

test('DB pair: both BACKUP + nopreempt, distinct priorities, one vrid, unicast to each other, the VIP on the subnet interface', () => {
  const p = confOf('db_primary');
  const s = confOf('db_standby');
  for (const [conf, self, peer, prio] of [
    [p, '198.18.0.11', '198.18.0.12', '151'],
    [s, '198.18.0.12', '198.18.0.11', '150'],
  ] as const) {
    const inst = block(conf, 'vrrp_instance ha_setup_db');
    assert.ok(inst.includes('state BACKUP'));
    assert.ok(inst.includes('nopreempt'));
    assert.ok(inst.includes(`priority ${prio}`));
    assert.ok(inst.includes('virtual_router_id 51'));
    assert.ok(inst.includes('advert_int 1'));
    assert.ok(inst.includes(`unicast_src_ip ${self}`));
    assert.deepEqual(block(conf, 'unicast_peer'), ['unicast_peer {', peer, '}']);
    assert.deepEqual(block(conf, 'virtual_ipaddress'), ['virtual_ipaddress {', '198.18.0.100/24 dev eth0', '}']);
    assert.ok(inst.includes('interface eth0'));
    const auth = block(conf, 'authentication');
    assert.ok(auth.includes('auth_type PASS'));
    const pass = auth.find((l) => l.startsWith('auth_pass '))!.slice('auth_pass '.length);
    assert.equal(pass, secret('keepalived.db.auth_pass').reveal());
    assert.equal(pass.length, 8, 'keepalived reads at most 8 characters of auth_pass');
    const g = block(conf, 'global_defs');
    assert.ok(g.includes('enable_script_security') && g.includes('script_user root'));
    assert.ok(g.some((l) => /^router_id \S+$/.test(l)));
    assert.ok(inst.includes('notify_master "/usr/local/lib/ha-setup/keepalived/pg-ha notify master"'));
    assert.ok(inst.includes('notify_stop "/usr/local/lib/ha-setup/keepalived/pg-ha notify stop"'));
    assert.ok(inst.includes('notify_master_rx_lower_pri "/usr/local/lib/ha-setup/keepalived/pg-ha notify master-rx-lower-pri"'));
    assert.ok(g.includes('vrrp_garp_lower_prio_repeat 0'));
  }
  // The health check FAULTs (weight 0). There is no polled primary-bonus script: the bonus is the
  // watched generation file (2 x timeline on a writable primary, 0 on a standby), so it applies
  // the moment promote writes it (a polled script left a second in which a thawed old primary at
  // 151 + 2 + 2 outranked the just-promoted standby at 150 + 2 x 2, and took the VIP back).
  assert.ok(block(p, 'vrrp_script chk_pg_health').includes('weight 0'));
  assert.ok(!p.includes('chk_pg_primary') && !p.includes('role-primary'));
  assert.deepEqual(block(p, 'track_script'), ['track_script {', 'chk_pg_health', '}']);
  const gen = Number(block(p, 'track_file pg_generation').find((l) => l.startsWith('weight '))!.split(' ')[1]);
  // A primary (timeline >= 1) outranks a standby (generation 0) despite the base gap of 1 ...
  assert.ok(150 + gen * 1 > 151 + 0);
  // ... of two writable primaries the newer timeline wins even against the higher base priority ...
  for (let t = 1; t < 50; t++) assert.ok(150 + gen * (t + 1) > 151 + gen * t);
  // ... and the highest total stays below keepalived's ceiling (254).
  assert.ok(151 + gen * 50 <= 254);
  assert.ok(block(p, 'track_file pg_generation').includes('weight 2'));
});

test('NFS pair: its own VIP and virtual_router_id, the NFS health check, no PostgreSQL scripts', () => {
  const n = confOf('nfs_primary');
  const inst = block(n, 'vrrp_instance ha_setup_nfs');
  assert.ok(inst.includes('virtual_router_id 52'));
  assert.deepEqual(block(n, 'virtual_ipaddress'), ['virtual_ipaddress {', '198.18.0.101/24 dev eth0', '}']);
  assert.ok(block(n, 'vrrp_script chk_nfs_health').includes(`script "${NFS_SCRIPT}"`));
  // The holder generation: a returning previous holder never outranks the server that took over.
  assert.deepEqual(block(n, 'track_file nfs_generation'), ['track_file nfs_generation {', 'file "/var/lib/ha-setup/keepalived/nfs-generation"', 'weight 2', 'init_file 0', '}']);
  assert.ok(inst.includes(`notify_master "${NFS_SCRIPT} notify master /usr/safenet/ccc/packages"`));
  assert.ok(inst.includes(`notify_backup "${NFS_SCRIPT} notify backup /usr/safenet/ccc/packages"`));
  assert.ok(!n.includes('pg-ha'));
  assert.notEqual(block(n, 'authentication').find((l) => l.startsWith('auth_pass')), block(confOf('db_primary'), 'authentication').find((l) => l.startsWith('auth_pass')));
  // Router ids from the options.
  const custom = confOf('nfs_standby', ctxFor('nfs_standby', { options: { keepalived: { dbRouterId: 10, nfsRouterId: 11 } } }));
  assert.ok(block(custom, 'vrrp_instance ha_setup_nfs').includes('virtual_router_id 11'));
  assert.ok(block(custom, 'vrrp_instance ha_setup_nfs').includes('priority 150'));
});

test('load balancer pair (lb + lb_standby): its own VIP and virtual_router_id 53, a health check on HAProxy listening on the app port', () => {
  for (const [alias, prio, peer] of [['lb', 151, '198.18.0.18'], ['lb_standby', 150, '198.18.0.17']] as const) {
    const c = confOf(alias);
    const inst = block(c, 'vrrp_instance ha_setup_lb');
    for (const want of ['state BACKUP', 'nopreempt', 'virtual_router_id 53', `priority ${prio}`, `unicast_src_ip ${SERVERS[alias]}`, peer]) assert.ok(inst.includes(want), `${alias}: ${want}`);
    assert.deepEqual(block(c, 'virtual_ipaddress'), ['virtual_ipaddress {', '198.18.0.102/24 dev eth0', '}']);
    const chk = block(c, 'vrrp_script chk_haproxy');
    assert.ok(chk.includes(`script "${HAPROXY_SCRIPT} 8181"`) && chk.includes('weight 0'));
    assert.deepEqual(block(c, 'track_script'), ['track_script {', 'chk_haproxy', '}']);
    assert.ok(!c.includes('pg-ha') && !c.includes('nfs-check'));
  }
  // The app port and the router id follow the options; the three router ids must differ.
  const custom = confOf('lb', ctxFor('lb', { options: { haproxy: { appPort: 9443 }, keepalived: { lbRouterId: 60 } } }));
  assert.ok(custom.includes(`script "${HAPROXY_SCRIPT} 9443"`) && block(custom, 'vrrp_instance ha_setup_lb').includes('virtual_router_id 60'));
  assert.throws(() => confOf('lb', ctxFor('lb', { options: { keepalived: { lbRouterId: 51 } } })), /^Error: options\.keepalived\.lbRouterId: lbRouterId must differ from dbRouterId and nfsRouterId/);
  // The scripts step installs the HAProxy check there, nothing of PostgreSQL or NFS.
  const p = plan('keepalived.scripts', ctxFor('lb_standby'), hostFacts('lb_standby', { ka: ka({ [HAPROXY_SCRIPT]: { content: null, mode: null, owner: null } }) }));
  const w = written(p);
  assert.deepEqual([...w.keys()], [HAPROXY_SCRIPT]);
  assert.equal(w.get(HAPROXY_SCRIPT)!.mode, 0o755);
  // Without lb_standby (one load balancer) the lb has no keepalived.
  const { lb_standby: _s, lb_vip: _v, ...oneLb } = SERVERS;
  assert.deepEqual(step('keepalived.config').targets({ hosts: tableOf({ servers: oneLb }).hosts, options: {} }).filter((a) => a.startsWith('lb')), []);
});

test('SMTP notification settings from options.keepalived.email', () => {
  const ctx = ctxFor('db_primary', { options: { keepalived: { email: { to: ['dba@example.com', 'ops@example.com'], from: 'ka@example.com', smtpServer: '192.0.2.25 2525' } } } });
  const conf = confOf('db_primary', ctx);
  assert.deepEqual(block(conf, 'notification_email'), ['notification_email {', 'dba@example.com', 'ops@example.com', '}']);
  const g = block(conf, 'global_defs');
  assert.ok(g.includes('notification_email_from ka@example.com'));
  assert.ok(g.includes('smtp_server 192.0.2.25 2525'));
  assert.ok(g.includes('smtp_connect_timeout 30'));
  assert.ok(block(conf, 'vrrp_instance ha_setup_db').includes('smtp_alert'));
  assert.ok(!confOf('db_primary').includes('smtp'), 'no SMTP settings unless asked for');
});

test('the VIP goes on the interface that carries its subnet, with that prefix', () => {
  const ctx = ctxFor('db_primary', { servers: { db_vip: '10.1.2.50' } });
  const facts = hostFacts('db_primary', {
    net: { addresses: [...net('198.18.0.11').addresses, { iface: 'ens4', family: 'inet', address: '10.1.2.11', prefix: 23, scope: 'global' }], hostname: 'h', fqdn: 'h' },
    ka: ka({ [KEEPALIVED_CONF]: { content: null, mode: null, owner: null } }),
  });
  const conf = written(plan('keepalived.config', ctx, facts)).get(KEEPALIVED_CONF)!.content;
  assert.deepEqual(block(conf, 'virtual_ipaddress'), ['virtual_ipaddress {', '10.1.2.50/23 dev ens4', '}']);
  assert.ok(block(conf, 'vrrp_instance ha_setup_db').includes('interface ens4'));
  assert.ok(block(conf, 'vrrp_instance ha_setup_db').includes('unicast_src_ip 10.1.2.11'));
});

test('a new config is checked with keepalived -t before keepalived reads it; the old one comes back on failure', () => {
  const actions = configActions('new', { content: 'old', mode: '640', owner: 'root:root' }, true);
  assert.deepEqual(actions.map((a) => a.kind), ['run', 'write', 'run', 'run']);
  const [keep, write, check, reload] = actions as [Extract<Action, { kind: 'run' }>, Extract<Action, { kind: 'write' }>, Extract<Action, { kind: 'run' }>, Extract<Action, { kind: 'run' }>];
  assert.match(keep.script, /^cp -p \/etc\/keepalived\/keepalived\.conf \/etc\/keepalived\/keepalived\.conf\.ha-setup-prev$/);
  assert.equal(write.previous, 'old');
  assert.match(check.script, /timeout 30 keepalived -t -f \/etc\/keepalived\/keepalived\.conf/);
  assert.match(check.script, /mv -f \/etc\/keepalived\/keepalived\.conf\.ha-setup-prev \/etc\/keepalived\/keepalived\.conf/);
  assert.equal(reload.script, 'systemctl reload keepalived', 'a running keepalived reloads (keeps its VRRP state), never restarts');
  // First install: nothing to keep, nothing running.
  const first = configActions('new', { content: null, mode: null, owner: null }, false);
  assert.deepEqual(first.map((a) => a.kind), ['write', 'run']);
  assert.match((first[1] as Extract<Action, { kind: 'run' }>).script, /rm -f \/etc\/keepalived\/keepalived\.conf/);
});

test('a second run with everything in place plans nothing, each step saying why', () => {
  const files: Record<string, Record<string, ManagedFile>> = {};
  for (const alias of ['db_primary', 'db_standby', 'nfs_primary', 'nfs_standby', 'lb', 'lb_standby']) {
    const ctx = ctxFor(alias);
    const have: Record<string, ManagedFile> = {};
    for (const id of ['keepalived.scripts', 'keepalived.config']) {
      const p = plan(id, ctx, hostFacts(alias, { ka: ka(have) }));
      for (const a of p.actions) {
        if (a.kind === 'write') have[a.path] = { content: a.content, mode: a.mode.toString(8), owner: 'root:root' };
        if (a.kind === 'run' && a.script.startsWith('install -d -m 0755 -o root -g root')) have[a.script.split(' ').pop()!] = { content: null, mode: '755', owner: 'root:root' };
      }
    }
    files[alias] = have;
    const isDb = alias.startsWith('db');
    assert.ok(have[isDb ? PG_SCRIPT : alias.startsWith('lb') ? HAPROXY_SCRIPT : NFS_SCRIPT], `${alias}: its script is written`);
    if (isDb) {
      assert.ok(have[PG_ENV] && have[fenceDropIn('postgresql@15-main')] && have[STATE_DIR]);
      assert.match(have[PG_ENV]!.content!, /^HA_PEER=198\.18\.0\.1[12]$/m);
      assert.doesNotMatch(have[PG_ENV]!.content!, new RegExp(secret('keepalived.db.auth_pass').reveal()));
    }
    assert.ok(have[SCRIPT_DIR]);
  }
  for (const alias of Object.keys(files)) {
    const ctx = ctxFor(alias);
    for (const s of keepalivedRunbook.steps) {
      if (!s.targets({ hosts: tableOf({ servers: SERVERS }).hosts, options: {} }).includes(alias)) continue;
      const p = plan(s.id, ctx, hostFacts(alias, { ka: ka(files[alias]) }));
      assert.deepEqual(p.actions, [], `${alias} ${s.id}: ${JSON.stringify(p.actions.map((a) => a.title))}`);
      assert.ok(p.reason && p.reason.length > 10, `${alias} ${s.id} says why: ${p.reason}`);
    }
  }
});

test('install, enable and start: the primaries first, then the standbys', () => {
  const hosts = tableOf({ servers: SERVERS }).hosts;
  assert.deepEqual(step('keepalived.start-primary').targets({ hosts, options: {} }), ['db_primary', 'nfs_primary', 'lb']);
  assert.deepEqual(step('keepalived.start-standby').targets({ hosts, options: {} }), ['db_standby', 'nfs_standby', 'lb_standby']);
  const ids = keepalivedRunbook.steps.map((s) => s.id);
  assert.ok(ids.indexOf('keepalived.config') < ids.indexOf('keepalived.start-primary'));
  const off = plan('keepalived.start-standby', ctxFor('db_standby'), hostFacts('db_standby', { ka: ka({}, { enabled: 'disabled', active: 'inactive' }) }));
  assert.deepEqual(off.actions.map((a) => (a.kind === 'run' ? a.script : a.path)), ['systemctl enable keepalived', 'systemctl start keepalived']);
  const missing = plan('keepalived.package', ctxFor('db_primary'), hostFacts('db_primary', { ka: ka({}, { binary: null, version: null }) }));
  assert.match((missing.actions[0] as Extract<Action, { kind: 'run' }>).script, /apt-get install -y keepalived/);
  assert.throws(() => plan('keepalived.package', ctxFor('db_primary'), hostFacts('db_primary', { ka: ka({}, { version: '1.3.5' }) })), /keepalived 1\.3\.5 is older than 2\.1/);
});

test('a partial table with only the DB pair configures only the DB pair', () => {
  const hosts = tableOf({ servers: { db_primary: '198.18.0.11', db_standby: '198.18.0.12', db_vip: '198.18.0.100', nfs_primary: '198.18.0.13' } }).hosts;
  for (const s of keepalivedRunbook.steps) assert.ok(s.targets({ hosts, options: {} }).every((a) => a.startsWith('db_')), s.id);
});

test('refusals are one line naming the field or host and the fix', () => {
  const one = (fn: () => unknown, re: RegExp) => {
    assert.throws(fn, (e: Error) => {
      assert.match(e.message, re);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
  };
  const cfg = (ctx: HostContext, facts = hostFacts(ctx.host.alias)) => () => plan('keepalived.config', ctx, facts);
  one(cfg(ctxFor('db_primary', { servers: { db_vip: '10.9.9.9' } })), /db_primary: db_vip 10\.9\.9\.9 is in no subnet of this server's interfaces \(eth0 198\.18\.0\.11\/24\); choose a VIP in the pair's subnet, or set options\.keepalived\.interface/);
  one(cfg(ctxFor('db_primary', { servers: { db_vip: null } })), /the server table has no db_vip: add db_vip:/);
  one(cfg(ctxFor('db_primary', { servers: { db_vip: '198.18.0.12' } })), /db_vip 198\.18\.0\.12 is the address of db_standby/);
  one(cfg(ctxFor('db_primary', { options: { keepalived: { dbRouterId: 52 } } })), /^options\.keepalived\.nfsRouterId: dbRouterId and nfsRouterId must differ/);
  one(cfg(ctxFor('db_primary', { options: { keepalived: { routerId: 5 } } })), /options\.keepalived: unknown setting "routerId"/);
  one(() => plan('keepalived.scripts', ctxFor('db_primary', { options: { postgres: { version: 13 } } }), hostFacts('db_primary')), /options\.postgres\.version 13: the keepalived scripts need PostgreSQL 14 or later/);
});

test('without the replication passfile the scripts cannot check the peer: the step waits for pg-standby', () => {
  const p = plan('keepalived.scripts', ctxFor('db_standby'), hostFacts('db_standby', { pf: { exists: false, sha256: null, mode: null, owner: null } }));
  const first = p.actions[0] as Extract<Action, { kind: 'run' }>;
  assert.match(first.title, /after the replication passfile .* exists \(runbook pg-standby/);
  assert.match(first.script, /exit 1/);
});

// ---------------------------------------------------------------------------------------------
// Firewall

const peerOf = '198.18.0.12';
const fwPlan = (fw: Partial<FirewallFacts>, vrrp: Partial<VrrpFirewallFacts> = {}) =>
  vrrpFirewallPlan({ ...noFirewall, ...fw }, { ...noVrrpRules, ...vrrp }, net('198.18.0.11'), peerOf, 'db_primary');
const scripts = (p: Plan) => p.actions.map((a) => (a.kind === 'run' ? a.script : `write ${a.path}`));

test('firewall: nothing to do when no firewall filters incoming traffic', () => {
  const p = fwPlan({});
  assert.deepEqual(p.actions, []);
  assert.match(p.reason!, /no firewall filters incoming traffic here.*VRRP from 198\.18\.0\.12 passes/);
});

test('firewall: nftables input chains that drop get a VRRP accept for the peer, persisted for boot', () => {
  const chain = { family: 'inet', table: 'filter', name: 'input', hook: 'input', policy: 'drop', prio: 0, drops: 0, ours: [] };
  const nft = { ...noFirewall.nft, serviceEnabled: true, chains: [chain], tables: ['inet filter'], conf: '#!/usr/sbin/nft -f\nflush ruleset\n' };
  const p = fwPlan({ nft });
  assert.deepEqual(scripts(p), [
    `nft insert rule inet filter input ip saddr ${peerOf} ip protocol vrrp accept comment '"ha-setup-vrrp"'`,
    'write /etc/ha-setup/nftables-vrrp.nft',
    `printf '%s' '\n# Added by ha-setup (keepalived): VRRP from the peer.\ninclude "/etc/ha-setup/nftables-vrrp.nft"\n' >> /etc/nftables.conf`,
  ]);
  // After apply: the rule (as nft -a list ruleset prints it) and the file are there.
  const listed = `table inet filter { # handle 1\n\tchain input { # handle 1\n\t\ttype filter hook input priority filter; policy drop;\n\t\tip saddr ${peerOf} ip protocol vrrp accept comment "ha-setup-vrrp" # handle 7\n\t}\n}\n`;
  const rules = parseNftVrrpRules(listed);
  assert.deepEqual(rules, [{ family: 'inet', table: 'filter', chain: 'input', handle: 7, source: peerOf }]);
  const file = (p.actions[1] as Extract<Action, { kind: 'write' }>).content;
  const again = fwPlan({ nft: { ...nft, conf: `${nft.conf}include "/etc/ha-setup/nftables-vrrp.nft"\n` } }, { nft: rules, nftFile: file });
  assert.deepEqual(again.actions, []);
  // A changed peer replaces the old rule.
  const moved = fwPlan({ nft }, { nft: [{ ...rules[0]!, source: '198.18.0.99' }], nftFile: file });
  assert.ok(scripts(moved).includes('nft delete rule inet filter input handle 7'));
});

test('firewall: firewalld, ufw and iptables rules for VRRP from the peer only', () => {
  const zone = { name: 'public', active: true, isDefault: true, interfaces: ['eth0'], sources: [], services: ['ssh'], ports: [], richRules: [] };
  const fwd = fwPlan({ firewalld: { running: true, defaultZone: 'public', runtime: [zone], permanent: [zone] } });
  const vrrpRule = `rule family="ipv4" source address="${peerOf}/32" protocol value="vrrp" accept`;
  // Both scopes added, each recorded in ha-setup's firewalld ledger (test/unit/firewalld-ledger.test.ts runs that bash).
  assert.deepEqual(scripts(fwd), [
    [firewalldAddScript({ scope: 'runtime', zone: 'public', kind: 'rich-rule', value: vrrpRule }), firewalldAddScript({ scope: 'permanent', zone: 'public', kind: 'rich-rule', value: vrrpRule })].join('\n'),
  ]);
  assert.match(scripts(fwd)[0]!, new RegExp(`^elif firewall-cmd --permanent --zone=public --add-rich-rule='rule family="ipv4" source address="${peerOf.replace(/\./g, '\\.')}/32" protocol value="vrrp" accept'; then$`, 'm'));
  const withRule = { ...zone, richRules: [`rule family="ipv4" source address="${peerOf}/32" protocol value="vrrp" accept`] };
  assert.deepEqual(fwPlan({ firewalld: { running: true, defaultZone: 'public', runtime: [withRule], permanent: [withRule] } }).actions, []);
  const ufw = fwPlan({ ufw: { installed: true, active: true, rules: [] } });
  assert.deepEqual(scripts(ufw), [`ufw allow proto vrrp from ${peerOf} comment ha-setup-vrrp`]);
  assert.deepEqual(fwPlan({ ufw: { installed: true, active: true, rules: [{ action: 'allow', proto: 'vrrp', dport: 'any', src: peerOf, comment: 'ha-setup-vrrp' }] } }).actions, []);
  const ipt = fwPlan({ iptables: { v4: ['-P INPUT DROP', '-A INPUT -i lo -j ACCEPT'], v6: null, persist: 'debian' } });
  assert.deepEqual(scripts(ipt)[0], `iptables -I INPUT -s ${peerOf}/32 -p 112 -m comment --comment ha-setup-vrrp -j ACCEPT`);
  assert.match(scripts(ipt)[1]!, /iptables-save > \/etc\/iptables\/rules\.v4/);
});

// ---------------------------------------------------------------------------------------------
// Fact parsers

test('keepalived facts: binary, version, service state and files (content, mode, owner)', () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const out = ['BIN=/usr/sbin/keepalived', 'VERSION=2.2.7', 'ENABLED=enabled', 'ACTIVE=active', `F0=${b64('conf\n')}`, 'S0=640 root:root', 'F1=-', 'S1=755 root:root', 'F2=-', 'S2=-'].join('\n');
  const f = parseKeepalivedFacts(out, ['/etc/keepalived/keepalived.conf', '/usr/local/lib/ha-setup/keepalived', '/nope']);
  assert.deepEqual(f, {
    binary: '/usr/sbin/keepalived',
    version: '2.2.7',
    enabled: 'enabled',
    active: 'active',
    files: {
      '/etc/keepalived/keepalived.conf': { content: 'conf\n', mode: '640', owner: 'root:root' },
      '/usr/local/lib/ha-setup/keepalived': { content: null, mode: '755', owner: 'root:root' },
      '/nope': { content: null, mode: null, owner: null },
    },
  });
  assert.equal(parseKeepalivedFacts('BIN=\nENABLED=\nACTIVE=inactive\n', []).binary, null);
  assert.ok(versionAtLeast('2.2.7', '2.0') && versionAtLeast('2.0', '2.0') && !versionAtLeast('1.3.5', '2.0') && !versionAtLeast(null, '2.0'));
});
