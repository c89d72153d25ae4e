/**
 * Topology C: apps reach PostgreSQL through HAProxy on the lb (port 15432), which sends them
 * to whichever DB node is the writable primary. Each DB node runs a tiny HTTP health service
 * (python3, systemd unit ha-setup-pg-health, port 25432) that answers 200 only there and logs
 * every check; it logs in as health_check_user (created by pg-users, allowed from loopback
 * by its pg_hba block) with the password in a 0600 file of its own system user.
 * HAProxy: option httpchk, http-check expect status 200, inter 3s fall 3 rise 2,
 * on-marked-down shutdown-sessions; stats on 7000. Switched on by options.postgres.dbViaHaproxy.
 */
import { readAsset } from './lib/assets.js';
import { sh } from '../source/engine/shell.js';
import { lbAliases } from '../source/inventory/roles.js';
import { defineStep, done, type Action, type FactDef, type HostContext, type Runbook } from '../source/engine/step.js';
import { osFact } from './lib/host-facts.js';
import { pgOptions } from './lib/options.js';
import { b64, parseKv } from './lib/pg-facts.js';
import { DB_NODES, layoutFor } from './lib/pg-layout.js';
import { appServers, dbRoutingEnabled, haproxyOptions, renderHaproxyAsset, sha256 } from './lib/haproxy-config.js';
import { addressesFor, configStep, firewallStep, installCommand, installStep, selinuxStep, serviceStep } from './lib/haproxy-steps.js';
import { HEALTH_SECRET, HEALTH_USER } from './pg-users.js';

const P = 'db-routing';
export const HEALTH_UNIT = 'ha-setup-pg-health';
export const HEALTH_OS_USER = 'ha-pg-health';
export const HEALTH_SCRIPT = '/usr/local/lib/ha-setup/pg-health.py';
export const HEALTH_UNIT_FILE = `/etc/systemd/system/${HEALTH_UNIT}.service`;
export const HEALTH_PASSFILE = '/etc/ha-setup/pg-health.pgpass';

const SCRIPT_TEXT = readAsset('haproxy/pg-health.py');

/** DB nodes when DB routing is on; none otherwise (the runbook then does nothing). */
const dbTargets = ({ options }: { options: Record<string, unknown> }): string[] => (dbRoutingEnabled(options) ? [...DB_NODES] : []);
const lbTargets = ({ hosts, options }: { hosts: Record<string, unknown>; options: Record<string, unknown> }): string[] => {
  if (!dbRoutingEnabled(options)) return [];
  if (!hosts.lb) throw new Error('options.postgres.dbViaHaproxy is true but the server table has no lb; add lb (the HAProxy host) or set dbViaHaproxy: false');
  return lbAliases(hosts);
};

export interface HealthFacts {
  python: string | null;
  userExists: boolean;
  script: string | null;
  unit: string | null;
  passfile: { sha256: string; mode: string; owner: string } | null;
  active: boolean;
  enabled: boolean;
}

export const healthFact: FactDef<HealthFacts> = {
  id: 'pg-health',
  sudo: true,
  script: [
    'echo "PYTHON=$(command -v python3 2>/dev/null || true)"',
    `if id -u ${HEALTH_OS_USER} >/dev/null 2>&1; then echo USER=yes; fi`,
    `for f in SCRIPT:${HEALTH_SCRIPT} UNIT:${HEALTH_UNIT_FILE}; do k=\${f%%:*}; p=\${f#*:}; if [ -f "$p" ]; then echo "$k=$(base64 -w0 < "$p")"; else echo "$k=-"; fi; done`,
    // The password file: only its hash, mode and owner leave the host.
    `if [ -f ${HEALTH_PASSFILE} ]; then echo "PASS=$(sha256sum < ${HEALTH_PASSFILE} | cut -c1-64) $(stat -c '%a %U' ${HEALTH_PASSFILE})"; fi`,
    `echo "ACTIVE=$(systemctl is-active ${HEALTH_UNIT} 2>/dev/null || true)"`,
    `echo "ENABLED=$(systemctl is-enabled ${HEALTH_UNIT} 2>/dev/null || true)"`,
  ].join('\n'),
  parse(stdout) {
    const kv = parseKv(stdout);
    const [sum, mode, owner] = (kv.PASS ?? '').split(' ');
    return {
      python: kv.PYTHON || null,
      userExists: kv.USER === 'yes',
      script: b64(kv, 'SCRIPT'),
      unit: b64(kv, 'UNIT'),
      passfile: sum ? { sha256: sum, mode: mode ?? '', owner: owner ?? '' } : null,
      active: kv.ACTIVE === 'active',
      enabled: kv.ENABLED === 'enabled',
    };
  },
};

/** A .pgpass field: ':' and '\' escaped. */
const pgpassField = (s: string): string => s.replace(/[\\:]/g, (c) => `\\${c}`);

export function healthFiles(ctx: HostContext, psql: string, python: string): { unit: string; passfile: string } {
  const o = haproxyOptions(ctx.options);
  const port = pgOptions(ctx.options).port;
  const unit = renderHaproxyAsset('pg-health.service.tmpl', {
    port: o.healthPort,
    user: HEALTH_OS_USER,
    passfile: HEALTH_PASSFILE,
    python,
    script: HEALTH_SCRIPT,
    listen: '0.0.0.0',
    psql,
    pg_port: port,
  });
  const passfile = `127.0.0.1:${port}:postgres:${HEALTH_USER}:${pgpassField(ctx.secret(HEALTH_SECRET).reveal())}\n`;
  return { unit, passfile };
}

const healthService = defineStep({
  id: `${P}.health-service`,
  title: `Health service on the DB nodes (${HEALTH_UNIT}, HTTP 200 only on the writable primary)`,
  targets: dbTargets,
  facts: { os: osFact, h: healthFact },
  inputs: (ctx) => [haproxyOptions(ctx.options).healthPort, pgOptions(ctx.options).port, pgOptions(ctx.options).version],
  plan({ os, h }, ctx) {
    const layout = layoutFor(os, pgOptions(ctx.options).version, ctx.host.alias);
    const python = h.python ?? '/usr/bin/python3';
    const { unit, passfile } = healthFiles(ctx, `${layout.binDir}/psql`, python);
    const actions: Action[] = [];
    if (!h.python) actions.push({ kind: 'run', title: 'install python3', script: `umask 0022\n${installCommand(os, ctx.host.alias, ['python3'])}`, sudo: true });
    if (!h.userExists) {
      actions.push({
        kind: 'run',
        title: `create system user ${HEALTH_OS_USER} (no login, no home)`,
        script: sh`useradd --system --no-create-home --home-dir / --shell /usr/sbin/nologin ${HEALTH_OS_USER}`,
        sudo: true,
      });
    }
    const write = (path: string, content: string, previous: string | null, mode: number, owner = 'root'): void =>
      void actions.push({ kind: 'write', title: `write ${path}`, path, content, mode, owner, group: owner, previous });
    if (h.script !== SCRIPT_TEXT) write(HEALTH_SCRIPT, SCRIPT_TEXT, h.script, 0o755);
    if (h.unit !== unit) write(HEALTH_UNIT_FILE, unit, h.unit, 0o644);
    const pf = h.passfile;
    if (!pf || pf.sha256 !== sha256(passfile) || pf.mode !== '600' || pf.owner !== HEALTH_OS_USER) {
      // The old file is never read back (it holds a password): the diff names its hash only.
      write(HEALTH_PASSFILE, passfile, pf ? `(a password file, sha256 ${pf.sha256.slice(0, 12)}..., mode ${pf.mode}, owner ${pf.owner})\n` : null, 0o600, HEALTH_OS_USER);
    }
    const changed = actions.length > 0;
    if (h.unit !== unit) actions.push({ kind: 'run', title: 'systemctl daemon-reload', script: 'systemctl daemon-reload', sudo: true });
    if (changed && h.active) actions.push({ kind: 'run', title: `restart ${HEALTH_UNIT} (its files changed)`, script: sh`systemctl restart ${HEALTH_UNIT}`, sudo: true });
    if (!h.active || !h.enabled) actions.push({ kind: 'run', title: `enable and start ${HEALTH_UNIT}`, script: sh`systemctl enable --now ${HEALTH_UNIT}`, sudo: true });
    const port = haproxyOptions(ctx.options).healthPort;
    if (actions.length === 0) return done(`${HEALTH_UNIT} runs on port ${port} with current files, enabled`);
    return { actions, reason: `port ${port}; logs in as ${HEALTH_USER} over 127.0.0.1 (password in ${HEALTH_PASSFILE}, 0600 ${HEALTH_OS_USER})` };
  },
  async verify(ctx) {
    const port = haproxyOptions(ctx.options).healthPort;
    // bash's /dev/tcp: no curl needed. Retries while the service starts.
    const script = [
      'line=""',
      'for i in $(seq 1 20); do',
      `  if exec 3<>/dev/tcp/127.0.0.1/${port}; then printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3; line=$(head -n1 <&3 | tr -d '\\r'); body=$(tail -n1 <&3 || true); exec 3<&-; fi 2>/dev/null`,
      '  [ -n "$line" ] && break; sleep 0.5',
      'done',
      `[ -n "$line" ] || { echo "nothing answers on 127.0.0.1:${port}" >&2; exit 1; }`,
      'echo "$line"',
    ].join('\n');
    const r = await ctx.run(`GET http://127.0.0.1:${port}/`, script, { sudo: true });
    const status = /HTTP\/1\.[01] (\d{3})/.exec(r.stdout)?.[1];
    if (status !== '200' && status !== '503') throw new Error(`${ctx.host.alias}: the health service answered "${r.stdout.trim()}", not 200 or 503`);
    return `health service answers ${status} (${status === '200' ? 'writable primary' : 'not the writable primary'})`;
  },
});

export const dbRoutingRunbook: Runbook = {
  id: 'db-routing',
  title: 'PostgreSQL through HAProxy (topology C)',
  description:
    "The guide's DB routing: a health service on each DB node (port 25432, 200 only on the writable primary, logs its checks, logs in as health_check_user), HAProxy on the lb listening on 15432 with option httpchk, http-check expect status 200, inter 3s fall 3 rise 2 on-marked-down shutdown-sessions, stats on 7000, SELinux haproxy_connect_any=1. On when options.postgres.dbViaHaproxy is true.",
  steps: [
    healthService,
    firewallStep(`${P}.health`, {
      title: 'Firewall on the DB nodes: the health port from the lb (and lb_standby)',
      targets: dbTargets,
      rules: (ctx, resolved) => {
        const lbs = addressesFor(ctx, resolved, lbAliases(ctx.hosts));
        return [{ port: haproxyOptions(ctx.options).healthPort, from: lbs.length ? lbs : 'any' }];
      },
    }),
    { ...installStep(P), targets: lbTargets },
    { ...selinuxStep(P), targets: lbTargets },
    { ...configStep(P), targets: lbTargets },
    { ...serviceStep(P), targets: lbTargets },
    firewallStep(P, {
      title: 'Firewall on the lb: the DB port (15432) from the app servers',
      targets: lbTargets,
      rules: (ctx, resolved) => {
        const apps = addressesFor(ctx, resolved, appServers(ctx).map((a) => a.alias));
        return [{ port: haproxyOptions(ctx.options).dbPort, from: apps.length ? apps : 'any' }];
      },
    }),
  ],
};

