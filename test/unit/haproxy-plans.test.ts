/**
 * Plan fixtures of the HAProxy runbooks (haproxy: topology A, db-routing: topology C): facts
 * in (test/fixtures/haproxy/*.json, parsed fact values) -> haproxy.cfg text and commands out.
 * Debian 12 is also proven in the lab (test/lab/haproxy.test.ts); the RHEL family (dnf,
 * firewalld, SELinux) is proven ONLY here.
 *
 * Every plan of every step is checked for: a reason when empty, and no secret in any title,
 * reason or script (files may hold secrets: the runner redacts them, see haproxy-redaction).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { contextOptions, createHostContext, tableOf } from '../../source/engine/context.js';
import { Secret } from '../../source/engine/shell.js';
import type { Action, HostContext, Plan, Runbook } from '../../source/engine/step.js';
import { haproxyRunbook } from '../../runbooks/haproxy.js';
import { dbRoutingRunbook, HEALTH_PASSFILE, HEALTH_SCRIPT, HEALTH_UNIT_FILE } from '../../runbooks/db-routing.js';
import { firewalldAddScript } from '../../runbooks/lib/firewalld-ledger.js';
import { HAPROXY_CFG, maskAuth, sha256, STATS_SECRET } from '../../runbooks/lib/haproxy-config.js';

const FIX = new URL('../../../test/fixtures/haproxy/', import.meta.url);

export class TestSecrets {
  readonly issued = new Map<string, Secret>();
  get = (name: string): Secret => {
    let s = this.issued.get(name);
    if (!s) {
      s = new Secret(name, `T${createHash('sha256').update(name).digest('base64url').slice(0, 23)}`);
      this.issued.set(name, s);
    }
    return s;
  };
}

type Facts = Record<string, unknown>;
interface Fixture {
  title: string;
  servers: Record<string, string>;
  options: Record<string, unknown>;
  facts: Record<string, Facts>;
}

const load = (name: string): Fixture => JSON.parse(readFileSync(new URL(name, FIX), 'utf8')) as Fixture;

/** Fact values every host has unless the fixture says otherwise (Debian 12, nothing set up). */
function defaults(alias: string, address: string): Facts {
  return {
    os: { id: 'debian', family: 'debian', versionId: '12', major: 12, prettyName: 'Debian GNU/Linux 12 (bookworm)', hostname: alias, kernel: '6.1.0-18-amd64', init: 'systemd', packageManager: 'apt' },
    ha: { installed: true, version: '2.6.12', active: false, enabled: false, config: null, authHashes: [] },
    se: { mode: 'absent', connectAny: null },
    net: { addresses: [{ iface: 'lo', family: 'inet', address: '127.0.0.1', prefix: 8, scope: 'host' }, { iface: 'eth0', family: 'inet', address, prefix: 24, scope: 'global' }], hostname: alias, fqdn: alias },
    fw: {
      firewalld: { running: false, defaultZone: '', runtime: [], permanent: [] },
      ufw: { installed: false, active: false, rules: [] },
      nft: { installed: false, serviceEnabled: false, chains: [], sets: [], tables: [], conf: null, ours: null, accept: null },
      iptables: { v4: null, v6: null, persist: null },
    },
    nft: { rules: [] },
    h: { python: '/usr/bin/python3', userExists: true, script: null, unit: null, passfile: null, active: false, enabled: false },
  };
}

interface Outcome {
  step: string;
  alias: string;
  plan?: Plan;
  error?: Error;
}

/** Plan every step of the runbooks on every host it targets, with these facts. */
export function planAll(runbooks: Runbook[], fx: { servers: Record<string, string>; options: Record<string, unknown>; facts: Record<string, Facts> }, secrets = new TestSecrets()): { outcomes: Outcome[]; ctxOf: (a: string) => HostContext } {
  const inv = { cluster: 'fixture', topology: 'lb' as const, servers: fx.servers, ssh: {}, options: fx.options };
  const table = tableOf(inv);
  const options = contextOptions(inv);
  const ctxOf = (alias: string): HostContext => createHostContext({ host: table.hosts[alias]!, table, options, secret: secrets.get });
  const outcomes: Outcome[] = [];
  for (const rb of runbooks) {
    for (const step of rb.steps) {
      let aliases: string[];
      try {
        aliases = step.targets({ hosts: table.hosts, options });
      } catch (e) {
        outcomes.push({ step: step.id, alias: '*', error: e as Error });
        continue;
      }
      for (const alias of aliases) {
        const facts = { ...defaults(alias, fx.servers[alias]!), ...(fx.facts[alias] ?? {}) };
        try {
          const plan = step.plan(facts as never, ctxOf(alias));
          outcomes.push({ step: step.id, alias, plan });
        } catch (e) {
          outcomes.push({ step: step.id, alias, error: e as Error });
        }
      }
    }
  }
  // Checks every plan must pass.
  const values = [...secrets.issued.values()].map((s) => s.reveal());
  for (const o of outcomes) {
    if (!o.plan) continue;
    if (o.plan.actions.length === 0) assert.ok(o.plan.reason?.trim(), `${o.step}@${o.alias}: empty plan without a reason`);
    const text = [o.plan.reason ?? '', ...o.plan.actions.map((a) => (a.kind === 'run' ? `${a.title}\n${a.script}` : a.title ?? ''))].join('\n');
    for (const v of values) assert.ok(!text.includes(v), `${o.step}@${o.alias}: a secret in a title, reason or script`);
  }
  return { outcomes, ctxOf };
}

const get = (outcomes: Outcome[], step: string, alias: string): Outcome => {
  const o = outcomes.find((x) => x.step === step && x.alias === alias);
  assert.ok(o, `no outcome for ${step}@${alias}`);
  return o;
};
const actions = (o: Outcome): Action[] => {
  assert.ok(o.plan, `${o.step}@${o.alias} failed: ${o.error?.message}`);
  return o.plan.actions;
};
const scripts = (o: Outcome): string => actions(o).map((a) => (a.kind === 'run' ? a.script : `WRITE ${a.path}`)).join('\n');
const writeOf = (o: Outcome, path: string): Extract<Action, { kind: 'write' }> => {
  const w = actions(o).find((a): a is Extract<Action, { kind: 'write' }> => a.kind === 'write' && a.path === path);
  assert.ok(w, `${o.step}@${o.alias}: no write of ${path}`);
  return w;
};

/** haproxy -c on a text (this machine's haproxy), or the reason it cannot run. */
function haproxyCheck(text: string): { ok: boolean; out: string } | string {
  const which = spawnSync('haproxy', ['-v'], { encoding: 'utf8' });
  if (which.error || which.status !== 0) return 'haproxy is not installed on this machine (apt-get install -y haproxy)';
  const dir = mkdtempSync(join(tmpdir(), 'ha-cfg-'));
  writeFileSync(join(dir, 'haproxy.cfg'), text);
  const r = spawnSync('haproxy', ['-c', '-f', join(dir, 'haproxy.cfg')], { encoding: 'utf8' });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

test('Debian 12, fresh lb, topology A + C: install, config (the golden file, valid for haproxy -c), start; health service on both DB nodes', (t) => {
  const fx = load('debian12-fresh.json');
  const secrets = new TestSecrets();
  const { outcomes } = planAll([haproxyRunbook, dbRoutingRunbook], fx, secrets);
  assert.match(scripts(get(outcomes, 'haproxy.install', 'lb')), /DEBIAN_FRONTEND=noninteractive apt-get install -y haproxy/);
  assert.match(get(outcomes, 'haproxy.selinux', 'lb').plan!.reason!, /SELinux is not installed/);

  const cfg = get(outcomes, 'haproxy.config', 'lb');
  const w = writeOf(cfg, HAPROXY_CFG);
  assert.equal(w.previous, null);
  assert.equal(w.mode, 0o600);
  const pw = secrets.get(STATS_SECRET).reveal();
  const golden = readFileSync(new URL('haproxy-a-c.cfg', FIX), 'utf8').replace('{{stats_password}}', pw);
  assert.equal(w.content, golden);
  // The lines the guide and mission ask for, one by one.
  for (const line of [
    'frontend https-in', '    bind *:8181', '    balance roundrobin', '    stick-table type binary len 32 size 30k expire 30m', '    acl clienthello req_ssl_hello_type 1',
    '    acl serverhello rep_ssl_hello_type 2', '    tcp-request inspect-delay 5s', '    tcp-request content accept if clienthello', '    tcp-response content accept if serverhello',
    '    stick on payload_lv(43,1) if clienthello', '    stick store-response payload_lv(43,1) if serverhello', '    server app1 198.18.0.15:8181 check', '    server app2 198.18.0.16:8181 check',
    '    option redispatch', '    retries 2', '    bind *:15432', '    option httpchk', '    http-check expect status 200', '    default-server inter 3s fall 3 rise 2 on-marked-down shutdown-sessions',
    '    server db1 198.18.0.11:5432 check port 25432', '    server db2 198.18.0.12:5432 check port 25432', '    bind 127.0.0.1:7000', `    stats auth admin:${pw}`,
  ]) assert.ok(w.content.split('\n').includes(line), `missing line: ${line}`);
  // Checked before it is installed; not running yet, so no reload (the service step starts it).
  assert.deepEqual(actions(cfg).map((a) => a.title), [
    `write ${HAPROXY_CFG} (staged as /etc/haproxy/haproxy.cfg.ha-setup-new, checked with haproxy -c, then installed)`,
    'haproxy -c -f /etc/haproxy/haproxy.cfg.ha-setup-new (before it replaces the live file)',
  ]);
  assert.equal(scripts(get(outcomes, 'haproxy.service', 'lb')), 'systemctl enable --now haproxy');
  assert.match(get(outcomes, 'haproxy.firewall', 'lb').plan!.reason!, /no firewall is active on lb/);
  // db-routing renders the same file: whichever runs first writes it.
  assert.equal(writeOf(get(outcomes, 'db-routing.config', 'lb'), HAPROXY_CFG).content, w.content);

  const check = haproxyCheck(w.content);
  if (typeof check === 'string') t.diagnostic(`haproxy -c not run: ${check}`);
  else assert.ok(check.ok, check.out);

  for (const alias of ['db_primary', 'db_standby']) {
    const h = get(outcomes, 'db-routing.health-service', alias);
    assert.deepEqual(actions(h).map((a) => (a.kind === 'run' ? a.script : `write ${a.path} ${a.mode.toString(8)} ${a.owner}`)), [
      'useradd --system --no-create-home --home-dir / --shell /usr/sbin/nologin ha-pg-health',
      `write ${HEALTH_SCRIPT} 755 root`,
      `write ${HEALTH_UNIT_FILE} 644 root`,
      `write ${HEALTH_PASSFILE} 600 ha-pg-health`,
      'systemctl daemon-reload',
      'systemctl enable --now ha-setup-pg-health',
    ]);
    const unit = writeOf(h, HEALTH_UNIT_FILE).content;
    assert.match(unit, /^ExecStart=\/usr\/bin\/python3 \/usr\/local\/lib\/ha-setup\/pg-health.py --listen 0.0.0.0 --port 25432 --psql \/usr\/lib\/postgresql\/15\/bin\/psql --pg-host 127.0.0.1 --pg-port 5432 --user health_check_user$/m);
    assert.match(unit, /^User=ha-pg-health$/m);
    assert.match(unit, /^Environment=PGPASSFILE=\/etc\/ha-setup\/pg-health.pgpass$/m);
    assert.equal(writeOf(h, HEALTH_PASSFILE).content, `127.0.0.1:5432:postgres:health_check_user:${secrets.get('postgres.health_check_user').reveal()}\n`);
    assert.match(get(outcomes, 'db-routing.health.firewall', alias).plan!.reason!, /no firewall is active/);
  }
});

test('Rocky 9 (plan fixture only): dnf, SELinux boolean, firewalld ports and rich rules, app3 added, config replaced and reloaded', () => {
  const fx = load('rocky9-firewalld-selinux.json');
  const { outcomes } = planAll([haproxyRunbook, dbRoutingRunbook], fx);
  assert.match(get(outcomes, 'haproxy.install', 'lb').plan!.reason!, /HAProxy 2\.4\.22 is installed/);
  assert.equal(scripts(get(outcomes, 'haproxy.selinux', 'lb')), 'setsebool -P haproxy_connect_any 1');
  assert.equal(scripts(get(outcomes, 'db-routing.selinux', 'lb')), 'setsebool -P haproxy_connect_any 1');
  const cfg = get(outcomes, 'haproxy.config', 'lb');
  const w = writeOf(cfg, HAPROXY_CFG);
  assert.match(w.previous!, /frontend main/);
  assert.ok(w.content.includes('    server app3 198.18.0.18:8181 check\n'), 'app3 is a backend in the same run');
  // Running: reload, never restart.
  assert.equal(scripts(cfg), `WRITE ${HAPROXY_CFG}\nhaproxy -c -f /etc/haproxy/haproxy.cfg.ha-setup-new\nsystemctl reload haproxy`);
  assert.match(get(outcomes, 'haproxy.service', 'lb').plan!.reason!, /enabled and running/);
  // Each opening is recorded in ha-setup's ledger when firewall-cmd succeeds (test/unit/firewalld-ledger.test.ts runs that bash).
  assert.equal(
    scripts(get(outcomes, 'haproxy.firewall', 'lb')),
    [firewalldAddScript({ scope: 'runtime', zone: 'public', kind: 'port', value: '8181/tcp' }), firewalldAddScript({ scope: 'permanent', zone: 'public', kind: 'port', value: '8181/tcp' })].join('\n'),
  );
  assert.match(scripts(get(outcomes, 'haproxy.firewall', 'lb')), /^elif firewall-cmd --zone=public --add-port=8181\/tcp; then$/m);
  // 15432 only from the app servers.
  const dbFw = actions(get(outcomes, 'db-routing.firewall', 'lb'));
  assert.deepEqual(dbFw.map((a) => a.title), ['198.18.0.15', '198.18.0.16', '198.18.0.18'].map((ip) => `firewalld zone public: allow tcp 15432 from ${ip}`));
  assert.match(scripts(get(outcomes, 'db-routing.firewall', 'lb')), /--add-rich-rule='rule family="ipv4" source address="198.18.0.15\/32" port port="15432" protocol="tcp" accept'/);
  // The DB node: python3 installed with dnf, the PGDG psql of version 16; 25432 from the lb only.
  const h = get(outcomes, 'db-routing.health-service', 'db_primary');
  assert.match(scripts(h), /^umask 0022\ndnf install -y python3\n/);
  assert.match(writeOf(h, HEALTH_UNIT_FILE).content, /--psql \/usr\/pgsql-16\/bin\/psql /);
  assert.deepEqual(actions(get(outcomes, 'db-routing.health.firewall', 'db_primary')).map((a) => a.title), ['firewalld zone public: allow tcp 25432 from 198.18.0.17']);
});

test('idempotence: facts that match the wanted state plan nothing, each with its reason', () => {
  const fx = load('debian12-fresh.json');
  const secrets = new TestSecrets();
  const first = planAll([haproxyRunbook, dbRoutingRunbook], fx, secrets);
  const cfg = writeOf(get(first.outcomes, 'haproxy.config', 'lb'), HAPROXY_CFG).content;
  const h = get(first.outcomes, 'db-routing.health-service', 'db_primary');
  const pass = writeOf(h, HEALTH_PASSFILE).content;
  const health = { python: '/usr/bin/python3', userExists: true, script: writeOf(h, HEALTH_SCRIPT).content, unit: writeOf(h, HEALTH_UNIT_FILE).content, passfile: { sha256: sha256(pass), mode: '600', owner: 'ha-pg-health' }, active: true, enabled: true };
  const after = {
    ...fx,
    facts: {
      // What the config fact reads back: the password masked, its sha256 beside.
      lb: { ...fx.facts.lb, ha: { installed: true, version: '2.6.12', active: true, enabled: true, config: maskAuth(cfg), authHashes: [sha256(secrets.get(STATS_SECRET).reveal())] } },
      db_primary: { h: health },
      db_standby: { h: health },
    },
  };
  const second = planAll([haproxyRunbook, dbRoutingRunbook], after, secrets);
  assert.ok(second.outcomes.length >= 14);
  for (const o of second.outcomes) {
    assert.ok(o.plan, `${o.step}@${o.alias}: ${o.error?.message}`);
    assert.deepEqual(o.plan.actions, [], `${o.step}@${o.alias} plans ${o.plan.actions.map((a) => a.title).join('; ')}`);
  }
  assert.match(get(second.outcomes, 'haproxy.config', 'lb').plan!.reason!, /haproxy\.cfg is current \(2 app server\(s\) on 8181, PostgreSQL on 15432, stats on 127\.0\.0\.1:7000\)/);
  assert.match(get(second.outcomes, 'db-routing.health-service', 'db_standby').plan!.reason!, /ha-setup-pg-health runs on port 25432 with current files, enabled/);

  // A password that differs from the stored secret: the line changes, shown as a placeholder, not a value.
  const other = { ...after, facts: { ...after.facts, lb: { ...after.facts.lb, ha: { ...after.facts.lb.ha, authHashes: [sha256('an old password')] } } } };
  const w = writeOf(get(planAll([haproxyRunbook], other, secrets).outcomes, 'haproxy.config', 'lb'), HAPROXY_CFG);
  assert.match(w.previous!, /^ {4}stats auth admin:<another password, sha256 [0-9a-f]{12}\.\.\.>$/m);
});

test('adding app3 to the table adds one backend line in the same run, nothing else', () => {
  const fx = load('debian12-fresh.json');
  const secrets = new TestSecrets();
  const cfg = writeOf(get(planAll([haproxyRunbook], fx, secrets).outcomes, 'haproxy.config', 'lb'), HAPROXY_CFG).content;
  const grown = {
    ...fx,
    servers: { ...fx.servers, app3: '198.18.0.18' },
    facts: { lb: { ha: { installed: true, version: '2.6.12', active: true, enabled: true, config: maskAuth(cfg), authHashes: [sha256(secrets.get(STATS_SECRET).reveal())] } } },
  };
  const o = get(planAll([haproxyRunbook], grown, secrets).outcomes, 'haproxy.config', 'lb');
  const w = writeOf(o, HAPROXY_CFG);
  assert.equal(w.content, cfg.replace('    server app2 198.18.0.16:8181 check\n', '    server app2 198.18.0.16:8181 check\n    server app3 198.18.0.18:8181 check\n'));
  assert.equal(scripts(o), `WRITE ${HAPROXY_CFG}\nhaproxy -c -f /etc/haproxy/haproxy.cfg.ha-setup-new\nsystemctl reload haproxy`);
});

test('topology switches and bad input: one line naming the field', () => {
  const fx = load('debian12-fresh.json');
  // DB routing off: db-routing targets nothing; the config has no postgres section.
  const off = planAll([haproxyRunbook, dbRoutingRunbook], { ...fx, options: {} });
  assert.ok(!off.outcomes.some((o) => o.step.startsWith('db-routing.')));
  assert.ok(!writeOf(get(off.outcomes, 'haproxy.config', 'lb'), HAPROXY_CFG).content.includes('listen postgres'));
  // A k8s table (no lb): the haproxy runbook targets nothing.
  const k8s = planAll([haproxyRunbook], { ...fx, servers: { app1: '198.18.0.15', k8s_master: '198.18.0.17' }, options: {} });
  assert.deepEqual(k8s.outcomes, []);
  // An lb that only routes the database: no app section, and the haproxy runbook has nothing to do.
  const dbOnly = planAll([haproxyRunbook, dbRoutingRunbook], { ...fx, servers: { db_primary: '198.18.0.11', db_standby: '198.18.0.12', lb: '198.18.0.17' } });
  assert.ok(!dbOnly.outcomes.some((o) => o.step.startsWith('haproxy.')));
  const dbCfg = writeOf(get(dbOnly.outcomes, 'db-routing.config', 'lb'), HAPROXY_CFG).content;
  assert.ok(!dbCfg.includes('frontend https-in') && dbCfg.includes('listen postgres'));
  const check = haproxyCheck(dbCfg);
  if (typeof check !== 'string') assert.ok(check.ok, check.out);
  const errOf = (options: Record<string, unknown>, servers = fx.servers): string => {
    const o = planAll([haproxyRunbook, dbRoutingRunbook], { ...fx, servers, options }).outcomes.find((x) => x.error);
    assert.ok(o, 'an error');
    return o.error!.message;
  };
  assert.equal(errOf({ haproxy: { statsAddress: 'localhost' } }), 'options.haproxy.statsAddress: must be an IP address (127.0.0.1, or an address of the lb) (got "localhost")');
  assert.equal(errOf({ haproxy: { statsAddress: '198.18.0.99' } }), 'options.haproxy.statsAddress: 198.18.0.99 is not an address of lb (198.18.0.17); use 127.0.0.1 or one of its own addresses');
  assert.match(errOf({ haproxy: { stats: 1 } }), /^options\.haproxy: unknown setting "stats"; known: appPort, /);
  assert.equal(errOf({ haproxy: { dbPort: 7000 } }), 'options.haproxy: appPort, dbPort, statsPort and peersPort must differ (got 8181, 7000, 7000, 10000)');
  assert.equal(errOf({}, { db_primary: '198.18.0.11', lb: '198.18.0.17' }), 'runbook haproxy: the server table has an lb but no app servers (app1, app2, ...); add them to servers:');
  assert.equal(errOf({ postgres: { dbViaHaproxy: true } }, { db_primary: '198.18.0.11', db_standby: '198.18.0.12', app1: '198.18.0.15' }), 'options.postgres.dbViaHaproxy is true but the server table has no lb; add lb (the HAProxy host) or set dbViaHaproxy: false');
});

test('firewall on the lb with ufw, nftables or iptables (plan fixtures): 8181 opened once, then nothing to do', () => {
  const fx = load('debian12-fresh.json');
  const fwBase = defaults('lb', '198.18.0.17').fw as Record<string, unknown>;
  const plan = (fw: Record<string, unknown>, nft: string[] = []): Outcome => {
    const { outcomes } = planAll([haproxyRunbook], { ...fx, options: {}, facts: { lb: { fw: { ...fwBase, ...fw }, nft: { rules: nft } } } });
    return get(outcomes, 'haproxy.firewall', 'lb');
  };
  // ufw active: one rule with ha-setup's comment; when it is there (user.rules tuple), nothing.
  assert.equal(scripts(plan({ ufw: { installed: true, active: true, rules: [] } })), 'ufw allow proto tcp to any port 8181 comment ha-setup-haproxy');
  const ufwDone = plan({ ufw: { installed: true, active: true, rules: [{ action: 'allow', proto: 'tcp', dport: '8181', src: '0.0.0.0/0', comment: 'ha-setup-haproxy' }] } });
  assert.deepEqual(actions(ufwDone), []);
  assert.match(ufwDone.plan!.reason!, /^ufw: tcp 8181 from anywhere; ufw rules persist by themselves \(already open\)$/);
  // nftables: an admin's input chain that drops by default gets an accept rule with our comment.
  const chain = { family: 'inet', table: 'filter', name: 'input', hook: 'input', policy: 'drop', prio: 0, drops: 0, ours: [] };
  const nft = { installed: true, serviceEnabled: true, chains: [chain], sets: [], tables: ['inet filter'], conf: 'flush ruleset\n', ours: null, accept: null };
  assert.equal(scripts(plan({ nft })), `nft insert rule inet filter input tcp dport 8181 accept comment '"ha-setup-haproxy"'`);
  assert.deepEqual(actions(plan({ nft }, ['inet filter input 8181'])), []);
  // iptables with a DROP policy: one ACCEPT rule, saved where iptables-persistent keeps them.
  const v4 = ['-P INPUT DROP', '-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT'];
  assert.equal(scripts(plan({ iptables: { v4, v6: null, persist: 'debian' } })), 'iptables -I INPUT -p tcp --dport 8181 -m comment --comment ha-setup-haproxy -j ACCEPT\niptables-save > /etc/iptables/rules.v4');
  assert.deepEqual(actions(plan({ iptables: { v4: [...v4, '-A INPUT -p tcp -m tcp --dport 8181 -m comment --comment ha-setup-haproxy -j ACCEPT'], v6: null, persist: 'debian' } })), []);
});

test('a standby load balancer: the same config on lb and lb_standby, sharing the stick table (peers), the peers port opened to each other', (t) => {
  const servers = { app1: '198.18.0.15', app2: '198.18.0.16', lb: '198.18.0.17', lb_standby: '198.18.0.18', lb_vip: '198.18.0.102' };
  const ufw = (alias: string, address: string) => ({ fw: { ...(defaults(alias, address).fw as object), ufw: { installed: true, active: true, rules: [] } } });
  const { outcomes } = planAll([haproxyRunbook], { servers, options: {}, facts: { lb: ufw('lb', servers.lb), lb_standby: ufw('lb_standby', servers.lb_standby) } });
  const cfg = (alias: string) => writeOf(get(outcomes, 'haproxy.config', alias), HAPROXY_CFG).content;
  for (const [alias, other] of [['lb', 'lb_standby'], ['lb_standby', 'lb']] as const) {
    const c = cfg(alias);
    assert.match(c, new RegExp(`\\n    localpeer ${alias}\\n`));
    assert.match(c, /\npeers ha_setup_lbs\n    peer lb 198\.18\.0\.17:10000\n    peer lb_standby 198\.18\.0\.18:10000\n/);
    assert.match(c, /stick-table type binary len 32 size 30k expire 30m peers ha_setup_lbs\n/);
    // Apart from its own peer name the two files are the same.
    assert.equal(c.replace(`localpeer ${alias}`, ''), cfg(other).replace(`localpeer ${other}`, ''));
    assert.match(scripts(get(outcomes, 'haproxy.peers.firewall', alias)), new RegExp(`ufw allow proto tcp from ${servers[other].replace(/\./g, '\\.')} to any port 10000 comment`));
    assert.match(scripts(get(outcomes, 'haproxy.firewall', alias)), /ufw allow proto tcp to any port 8181/);
  }
  const check = haproxyCheck(cfg('lb'));
  if (typeof check === 'string') t.diagnostic(`haproxy -c not run: ${check} (the lab test runs it on Debian's haproxy)`);
  else assert.ok(check.ok, check.out);
  // One load balancer: no peers section, no peers firewall step.
  const one = planAll([haproxyRunbook], { servers: { app1: '198.18.0.15', app2: '198.18.0.16', lb: '198.18.0.17' }, options: {}, facts: {} }).outcomes;
  assert.doesNotMatch(writeOf(get(one, 'haproxy.config', 'lb'), HAPROXY_CFG).content, /peers|localpeer/);
  assert.equal(one.filter((o) => o.step === 'haproxy.peers.firewall').length, 0);
  // HAProxy older than 2.2 (no localpeer, e.g. RHEL 8's 1.8): no shared stick table rather than a config it rejects.
  const old = planAll([haproxyRunbook], { servers, options: {}, facts: { lb: { ha: { installed: true, version: '1.8.27', active: false, enabled: false, config: null, authHashes: [] } } } }).outcomes;
  assert.doesNotMatch(writeOf(get(old, 'haproxy.config', 'lb'), HAPROXY_CFG).content, /peers|localpeer/);
});
