/**
 * Steps both HAProxy runbooks (haproxy: topology A, db-routing: topology C) run on the lb,
 * made per runbook (step ids are unique per run): the package, SELinux, the one haproxy.cfg
 * (checked with haproxy -c in a candidate file before it replaces the live one, then a reload
 * when HAProxy runs), the service, and a firewall opening with the host's own tool.
 */
import ipaddr from 'ipaddr.js';
import { sh } from '../../source/engine/shell.js';
import { defineStep, done, type Action, type ExecContext, type HostContext, type Step } from '../../source/engine/step.js';
import { lbAliases } from '../../source/inventory/roles.js';
import { firewalldAddScript } from './firewalld-ledger.js';
import { osFact, type OsInfo } from './host-facts.js';
import { addressesOf, firewallFact, firewallTool, interfaceFor, netFact, adminInputChains, resolveFact, restrictive, tableNames, type FirewallFacts, type NetFacts, type Resolved } from './pg-facts.js';
import { HAPROXY_CANDIDATE, HAPROXY_CFG, haproxyOptions, STATS_SECRET, unmaskPrevious, wantedHaproxyCfg, appServers, dbRoutingEnabled, lbServers } from './haproxy-config.js';
import { HA_FW_COMMENT, haproxyFact, haproxyNftFact, haproxySelinuxFact, versionAtLeast, type HaproxyFacts } from './haproxy-facts.js';

/** The lb (and lb_standby, a second one with the same config), when the table has one (a k8s table has none: nothing to do there). */
export const lbTarget = ({ hosts }: { hosts: Record<string, unknown> }): string[] => (hosts.lb ? lbAliases(hosts) : []);

export function installCommand(os: OsInfo, alias: string, packages: string[]): string {
  if (os.packageManager === 'apt') return sh`DEBIAN_FRONTEND=noninteractive apt-get install -y ${packages}`;
  if (os.packageManager === 'dnf' || os.packageManager === 'yum') return sh`${os.packageManager} install -y ${packages}`;
  throw new Error(`${alias}: no apt-get, dnf or yum found; ha-setup installs packages with one of them`);
}

/** Everything the config and service steps look at: the table's apps and DB nodes, the options. */
export const haproxyInputs = (ctx: HostContext): unknown => [
  appServers(ctx),
  lbServers(ctx),
  dbRoutingEnabled(ctx.options) ? [ctx.hosts.db_primary?.address, ctx.hosts.db_standby?.address] : null,
  haproxyOptions(ctx.options),
];

export function installStep(prefix: string): Step {
  return defineStep({
    id: `${prefix}.install`,
    title: 'HAProxy package (>= 1.5)',
    targets: lbTarget,
    facts: { os: osFact, ha: haproxyFact },
    plan({ os, ha }, ctx) {
      if (ha.installed) {
        if (!versionAtLeast(ha.version!, '1.5')) throw new Error(`${ctx.host.alias}: HAProxy ${ha.version} is older than 1.5 (no stick store-response); upgrade it`);
        return done(`HAProxy ${ha.version} is installed`);
      }
      return {
        actions: [{ kind: 'run', title: 'install haproxy', script: `umask 0022\n${installCommand(os, ctx.host.alias, ['haproxy'])}`, sudo: true }],
        reason: `${os.prettyName}: the distribution's haproxy package`,
      };
    },
  });
}

export function selinuxStep(prefix: string): Step {
  return defineStep({
    id: `${prefix}.selinux`,
    title: 'SELinux: haproxy_connect_any = 1 (HAProxy binds and connects to non-HTTP ports)',
    targets: lbTarget,
    facts: { se: haproxySelinuxFact },
    plan({ se }) {
      if (se.mode === 'absent' || se.mode === 'disabled') return done(`SELinux is ${se.mode === 'absent' ? 'not installed' : 'disabled'}: no boolean needed`);
      if (se.connectAny === true) return done(`SELinux ${se.mode}: haproxy_connect_any is on`);
      if (se.connectAny === null) return done(`SELinux ${se.mode}, but its policy has no haproxy_connect_any boolean: label the ports yourself (semanage port -a -t http_port_t -p tcp <port>)`);
      return {
        actions: [{ kind: 'run', title: 'setsebool -P haproxy_connect_any 1', script: 'setsebool -P haproxy_connect_any 1', sudo: true }],
        reason: `SELinux is ${se.mode}; the boolean, not permissive mode`,
      };
    },
  });
}

/** Where a stats page may bind: loopback, any, or an address of the lb itself. */
function checkStatsAddress(ctx: HostContext, net: NetFacts): void {
  const a = haproxyOptions(ctx.options).statsAddress;
  const ip = ipaddr.process(a);
  if (ip.range() === 'loopback' || ip.range() === 'unspecified') return;
  const own = net.addresses.some((x) => ipaddr.isValid(x.address) && ipaddr.process(x.address).toNormalizedString() === ip.toNormalizedString());
  if (!own) throw new Error(`options.haproxy.statsAddress: ${a} is not an address of ${ctx.host.alias} (${ctx.host.address}); use 127.0.0.1 or one of its own addresses`);
}

/** The config plan: a write of HAPROXY_CFG (diff against the masked fact), check, reload. */
export function configPlan(ha: HaproxyFacts, ctx: HostContext): { actions: Action[]; reason: string } | null {
  const content = wantedHaproxyCfg(ctx, ha.version);
  const password = ctx.secret(STATS_SECRET).reveal();
  const previous = ha.config === null ? null : unmaskPrevious(ha.config, ha.authHashes, password);
  if (previous === content) return null;
  const actions: Action[] = [
    {
      kind: 'write',
      title: `write ${HAPROXY_CFG} (staged as ${HAPROXY_CANDIDATE}, checked with haproxy -c, then installed)`,
      path: HAPROXY_CFG,
      content,
      mode: 0o600,
      owner: 'root',
      group: 'root',
      previous,
    },
    { kind: 'run', title: `haproxy -c -f ${HAPROXY_CANDIDATE} (before it replaces the live file)`, script: sh`haproxy -c -f ${HAPROXY_CANDIDATE}`, sudo: true },
  ];
  if (ha.active) actions.push({ kind: 'run', title: 'reload haproxy (no connection dropped)', script: 'systemctl reload haproxy', sudo: true });
  return { actions, reason: ha.active ? 'HAProxy runs: reloaded, not restarted' : 'HAProxy is not running: the service step starts it' };
}

/** Carry out a configPlan: candidate, check (the live file stays when it fails), install, reload. */
export async function applyConfig(plan: { actions: Action[] }, ctx: ExecContext): Promise<void> {
  const write = plan.actions.find((a): a is Extract<Action, { kind: 'write' }> => a.kind === 'write');
  if (!write) throw new Error('bug: the HAProxy config plan has no write');
  await ctx.write(HAPROXY_CANDIDATE, write.content, { mode: 0o600, owner: 'root', group: 'root' });
  const check = await ctx.run(`haproxy -c -f ${HAPROXY_CANDIDATE}`, sh`haproxy -c -f ${HAPROXY_CANDIDATE}`, { sudo: true, check: false });
  if (check.code !== 0) {
    await ctx.run(`remove ${HAPROXY_CANDIDATE}`, sh`rm -f ${HAPROXY_CANDIDATE}`, { sudo: true });
    const why = `${check.stdout}\n${check.stderr}`.split('\n').find((l) => /ALERT|error/i.test(l))?.trim() ?? `exit ${check.code}`;
    throw new Error(`${ctx.host.alias}: the new haproxy.cfg does not pass haproxy -c (${why}); ${HAPROXY_CFG} was left as it was`);
  }
  await ctx.write(HAPROXY_CFG, write.content, { mode: write.mode, owner: write.owner, group: write.group });
  await ctx.run(`remove ${HAPROXY_CANDIDATE}`, sh`rm -f ${HAPROXY_CANDIDATE}`, { sudo: true });
  if (plan.actions.some((a) => a.kind === 'run' && a.script === 'systemctl reload haproxy')) {
    await ctx.run('reload haproxy', 'systemctl reload haproxy', { sudo: true });
  }
}

export function configStep(prefix: string): Step {
  return defineStep({
    id: `${prefix}.config`,
    title: `${HAPROXY_CFG}: app backends (topology A), DB routing (topology C), stats page`,
    targets: lbTarget,
    facts: { ha: haproxyFact, net: netFact },
    inputs: haproxyInputs,
    plan({ ha, net }, ctx) {
      checkStatsAddress(ctx, net);
      const o = haproxyOptions(ctx.options);
      const what = [
        appServers(ctx).length ? `${appServers(ctx).length} app server(s) on ${o.appPort}` : null,
        dbRoutingEnabled(ctx.options) ? `PostgreSQL on ${o.dbPort}` : null,
        `stats on ${o.statsAddress}:${o.statsPort}`,
      ].filter(Boolean);
      const p = configPlan(ha, ctx);
      if (!p) return done(`${HAPROXY_CFG} is current (${what.join(', ')})`);
      return { actions: p.actions, reason: `${what.join(', ')}; ${p.reason}` };
    },
    apply: (plan, ctx) => applyConfig(plan, ctx),
    async verify(ctx) {
      const r = await ctx.run('haproxy -c on the installed file', sh`haproxy -c -f ${HAPROXY_CFG}`, { sudo: true, check: false });
      if (r.code !== 0) throw new Error(`${ctx.host.alias}: ${HAPROXY_CFG} does not pass haproxy -c: ${r.stderr.trim().split('\n').pop()}`);
      return `${HAPROXY_CFG} passes haproxy -c`;
    },
  });
}

export function serviceStep(prefix: string): Step {
  return defineStep({
    id: `${prefix}.service`,
    title: 'haproxy enabled and running',
    targets: lbTarget,
    facts: { ha: haproxyFact },
    inputs: haproxyInputs,
    plan({ ha }) {
      if (ha.active && ha.enabled) return done('haproxy is enabled and running');
      return {
        actions: [{ kind: 'run', title: ha.active ? 'enable haproxy (starts at boot)' : 'enable and start haproxy', script: 'systemctl enable --now haproxy', sudo: true }],
        reason: `haproxy is ${ha.active ? 'running' : 'stopped'} and ${ha.enabled ? 'enabled' : 'not enabled'}`,
      };
    },
    async verify(ctx) {
      const o = haproxyOptions(ctx.options);
      const ports = [...(appServers(ctx).length ? [o.appPort] : []), ...(dbRoutingEnabled(ctx.options) ? [o.dbPort] : []), o.statsPort];
      // A reload that failed leaves the old process serving: the ports tell what really listens.
      const script = [
        'for i in $(seq 1 20); do',
        `  missing=""; for p in ${ports.join(' ')}; do ss -Hltn "sport = :$p" | grep -q . || missing="$missing $p"; done`,
        '  [ -z "$missing" ] && break; sleep 0.5',
        'done',
        'systemctl is-active --quiet haproxy || { echo "haproxy is not running" >&2; exit 1; }',
        '[ -z "$missing" ] || { echo "nothing listens on port(s)$missing" >&2; exit 1; }',
      ].join('\n');
      await ctx.run(`haproxy listens on ${ports.join(', ')}`, script, { sudo: true });
      return `haproxy runs and listens on ${ports.join(', ')}`;
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Firewall: open ports with the host's own tool (firewalld, ufw, nftables, iptables)

export interface PortRule {
  port: number;
  /** IP addresses allowed, or 'any'. */
  from: string[] | 'any';
}

const isV6 = (ip: string): boolean => ipaddr.parse(ip).kind() === 'ipv6';
const cidr = (ip: string): string => `${ip}/${isV6(ip) ? 128 : 32}`;

export function firewallActions(fw: FirewallFacts, nftOurs: string[], net: NetFacts, ctx: HostContext, rules: PortRule[]): { tool: string; actions: Action[]; notes: string[] } {
  const tool = firewallTool(fw);
  const actions: Action[] = [];
  const notes: string[] = [];
  const run = (title: string, script: string): void => void actions.push({ kind: 'run', title, script, sudo: true });
  if (tool === 'firewalld') {
    const iface = interfaceFor(net.addresses, ctx.host.address);
    const zone = fw.firewalld.runtime.find((z) => iface && z.interfaces.includes(iface))?.name ?? fw.firewalld.defaultZone;
    if (!zone) throw new Error(`${ctx.host.alias}: firewalld runs but reports no zone for ${iface ?? ctx.host.address} and no default zone`);
    const rt = fw.firewalld.runtime.find((z) => z.name === zone);
    const pm = fw.firewalld.permanent.find((z) => z.name === zone);
    for (const r of rules) {
      if (r.from === 'any') {
        const p = `${r.port}/tcp`;
        const lines = [
          ...(rt?.ports.includes(p) ? [] : [firewalldAddScript({ scope: 'runtime', zone, kind: 'port', value: p })]),
          ...(pm?.ports.includes(p) ? [] : [firewalldAddScript({ scope: 'permanent', zone, kind: 'port', value: p })]),
        ];
        if (lines.length) run(`firewalld zone ${zone}: open tcp ${r.port}`, lines.join('\n'));
        continue;
      }
      for (const ip of r.from) {
        const rule = `rule family="${isV6(ip) ? 'ipv6' : 'ipv4'}" source address="${cidr(ip)}" port port="${r.port}" protocol="tcp" accept`;
        const has = (z: typeof rt): boolean => Boolean(z?.richRules.some((x) => x.includes(`"${ip}`) && x.includes(`port="${r.port}"`)));
        const lines = [
          ...(has(rt) ? [] : [firewalldAddScript({ scope: 'runtime', zone, kind: 'rich-rule', value: rule })]),
          ...(has(pm) ? [] : [firewalldAddScript({ scope: 'permanent', zone, kind: 'rich-rule', value: rule })]),
        ];
        if (lines.length) run(`firewalld zone ${zone}: allow tcp ${r.port} from ${ip}`, lines.join('\n'));
      }
    }
    notes.push(`firewalld zone ${zone}`);
  } else if (tool === 'ufw') {
    for (const r of rules) {
      const ours = fw.ufw.rules.filter((x) => x.comment === HA_FW_COMMENT && x.dport === String(r.port)).map((x) => x.src.replace(/\/(32|128)$/, ''));
      if (r.from === 'any') {
        if (!ours.some((s) => s === '0.0.0.0/0' || s === '::/0')) run(`ufw: open tcp ${r.port}`, sh`ufw allow proto tcp to any port ${r.port} comment ${HA_FW_COMMENT}`);
      } else {
        for (const ip of r.from.filter((s) => !ours.includes(s))) run(`ufw: allow tcp ${r.port} from ${ip}`, sh`ufw allow proto tcp from ${ip} to any port ${r.port} comment ${HA_FW_COMMENT}`);
      }
    }
    notes.push('ufw rules persist by themselves');
  } else if (tool === 'nftables') {
    for (const c of adminInputChains(fw).filter(restrictive)) {
      for (const r of rules) {
        if (nftOurs.includes(`${c.family} ${c.table} ${c.name} ${r.port}`)) continue;
        const from = r.from === 'any' ? '' : [r.from.filter((s) => !isV6(s)), r.from.filter(isV6)].map((l, i) => (l.length ? `${i ? 'ip6' : 'ip'} saddr { ${l.join(', ')} } ` : '')).join('');
        run(`nft: accept tcp ${r.port}${r.from === 'any' ? '' : ` from ${r.from.join(', ')}`} in ${c.family} ${c.table} ${c.name}`, `nft insert rule ${c.family} ${c.table} ${c.name} ${from}tcp dport ${r.port} accept comment '"${HA_FW_COMMENT}"'`);
      }
    }
    notes.push('nftables: rules inserted into the running ruleset; add them to /etc/nftables.conf to keep them after a reboot');
  } else if (tool === 'iptables') {
    for (const r of rules) {
      const ours = (fw.iptables.v4 ?? []).filter((x) => x.includes(`--comment ${HA_FW_COMMENT}`) && x.includes(`--dport ${r.port} `));
      const srcs = r.from === 'any' ? [null] : r.from.filter((s) => !isV6(s));
      for (const s of srcs) {
        if (ours.some((x) => (s === null ? !/ -s /.test(x) : x.includes(`-s ${cidr(s)}`)))) continue;
        run(`iptables: allow tcp ${r.port}${s ? ` from ${s}` : ''}`, s === null ? sh`iptables -I INPUT -p tcp --dport ${r.port} -m comment --comment ${HA_FW_COMMENT} -j ACCEPT` : sh`iptables -I INPUT -s ${cidr(s)} -p tcp --dport ${r.port} -m comment --comment ${HA_FW_COMMENT} -j ACCEPT`);
      }
    }
    if (actions.length && fw.iptables.persist === 'debian') run('save the rules (/etc/iptables/rules.v4)', 'iptables-save > /etc/iptables/rules.v4');
    else if (actions.length && fw.iptables.persist === 'rhel') run('save the rules (/etc/sysconfig/iptables)', 'iptables-save > /etc/sysconfig/iptables');
    else if (fw.iptables.persist === null) notes.push('iptables rules last until reboot (no iptables-persistent or iptables-services)');
  }
  return { tool, actions, notes };
}

export function firewallStep(prefix: string, spec: { title: string; targets: Step['targets']; rules: (ctx: HostContext, resolved: Resolved) => PortRule[] }): Step {
  return defineStep({
    id: `${prefix}.firewall`,
    title: spec.title,
    targets: spec.targets,
    // Host names of the table are resolved on the host itself (its DNS and /etc/hosts): rules need addresses.
    facts: (ctx) => ({ fw: firewallFact, nft: haproxyNftFact, net: netFact, resolve: resolveFact(tableNames(ctx)) }),
    inputs: (ctx) => tableNames(ctx),
    plan({ fw, nft, net, resolve }, ctx) {
      const rules = spec.rules(ctx, resolve);
      const what = rules.map((r) => `tcp ${r.port} from ${r.from === 'any' ? 'anywhere' : r.from.join(', ')}`).join('; ');
      const r = firewallActions(fw, nft.rules, net, ctx, rules);
      if (r.tool === 'none') return done(`no firewall is active on ${ctx.host.alias}: ${what} already reachable; nothing to open`);
      const summary = [`${r.tool}: ${what}`, ...r.notes].join('; ');
      if (r.actions.length === 0) return done(`${summary} (already open)`);
      return { actions: r.actions, reason: summary };
    },
  });
}

/** The addresses of some aliases of the table, host names resolved as the host sees them. */
export function addressesFor(ctx: HostContext, resolved: Resolved, aliases: string[]): string[] {
  return [...new Set(aliases.filter((a) => ctx.hosts[a]).flatMap((a) => addressesOf(ctx.hosts[a]!.address, resolved, ctx.host.alias)))];
}
