/**
 * ha-setup's firewalld ledger (runbooks/lib/firewalld-ledger.ts): the bash that adds an opening
 * and records it is run for real here, with a fake firewall-cmd on PATH (a bash script that
 * records its argv and exits 0 or 1) and the ledger under a temporary directory. The lab has no
 * firewalld, so what the runbooks add and what uninstall removes on the RHEL family is proven
 * with plan fixtures (facts in, commands out): firewall-cmd --list-all-zones text and ledgers
 * in, the firewall-cmd commands out, those commands then run against the same fake.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { contextOptions, createHostContext, tableOf } from '../../source/engine/context.js';
import { Secret } from '../../source/engine/shell.js';
import type { Action, HostContext, Plan } from '../../source/engine/step.js';
import type { ExecResult } from '../../source/transport/types.js';
import { pgUsersRunbook } from '../../runbooks/pg-users.js';
import { firewallActions } from '../../runbooks/lib/haproxy-steps.js';
import { vrrpFirewallPlan } from '../../runbooks/lib/keepalived-firewall.js';
import { FIREWALLD_LEDGER, FIREWALLD_LEDGER_KEPT, firewalldAddScript, ledgerLine, parseLedger, type LedgerEntry } from '../../runbooks/lib/firewalld-ledger.js';
import type { FirewallFacts, FirewalldZone, NetFacts } from '../../runbooks/lib/pg-facts.js';
import { firewallRemnantsFact, firewallUninstallPlan, leftoverPlan, parseFirewallRemnants, parseInstalled, summarizeUninstall } from '../../runbooks/uninstall.js';

// ---------------------------------------------------------------------------------------------
// A fake firewall-cmd (and firewall-offline-cmd) and a sandbox for the server's paths

/**
 * Records every call as one line (program name, then each argument, separated by \x1f) and exits
 * FAKE_FWD_RC (0 unless set). --state answers FAKE_FWD_STATE_RC, --query-* FAKE_FWD_QUERY_RC (1: not
 * there, unless set); --list-all-zones prints the file
 * FAKE_FWD_RUNTIME or, with --permanent (or as firewall-offline-cmd), FAKE_FWD_PERMANENT.
 */
const FAKE = `#!/bin/bash
{ printf '%s' "\${0##*/}"; printf '\\x1f%s' "$@"; printf '\\n'; } >> "$FAKE_FWD_LOG"
case " $* " in
  *" --state "*) exit "\${FAKE_FWD_STATE_RC:-0}" ;;
  *" --query-"*) exit "\${FAKE_FWD_QUERY_RC:-1}" ;;
  *" --list-all-zones "*)
    if [ "\${0##*/}" = firewall-offline-cmd ] || [ "$1" = --permanent ]; then cat "$FAKE_FWD_PERMANENT"; else cat "$FAKE_FWD_RUNTIME"; fi
    exit 0 ;;
esac
exit "\${FAKE_FWD_RC:-0}"
`;

interface Sandbox {
  dir: string;
  bin: string;
  log: string;
  /** Where /etc/ha-setup/firewalld.ledger lives in this sandbox. */
  ledger: string;
  kept: string;
  /** A server script with /etc/ha-setup and /var/lib/ha-setup moved into the sandbox. */
  local: (script: string, readsSystem?: boolean) => string;
  /** readsSystem: the script reads other system paths (a read-only fact). */
  run: (script: string, env?: Record<string, string>, readsSystem?: boolean) => { status: number | null; stdout: string; stderr: string };
  /** The calls the fake recorded, each as its argv (program first), but the --query-* ones. */
  calls: () => string[][];
  /** The --query-* calls. */
  queries: () => string[][];
  clearCalls: () => void;
}

function sandbox(t: TestContext, programs: string[] = ['firewall-cmd']): Sandbox {
  const dir = mkdtempSync(join(tmpdir(), 'ha-setup-fwd-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  for (const p of programs) {
    writeFileSync(join(bin, p), FAKE);
    chmodSync(join(bin, p), 0o755);
  }
  const log = join(dir, 'calls.log');
  const local = (script: string, readsSystem = false): string => {
    const s = script.split('/etc/ha-setup').join(`${dir}/etc/ha-setup`).split('/var/lib/ha-setup').join(`${dir}/var/lib/ha-setup`);
    // Possibly run as root on a developer's machine: a script that changes things may not name a real /etc or /var path.
    if (!readsSystem) assert.ok(!/(^|[\s'"=(])\/(etc|var)\//m.test(s), `the script still names a real path:\n${s}`);
    return s;
  };
  const run: Sandbox['run'] = (script, env = {}, readsSystem = false) => {
    const r = spawnSync('bash', ['-s'], {
      input: `set -euo pipefail\n${local(script, readsSystem)}\n`,
      encoding: 'utf8',
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, FAKE_FWD_LOG: log, ...env },
    });
    if (r.error) throw r.error;
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const all = (): string[][] => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => l.split('\x1f')) : []);
  const isQuery = (c: string[]): boolean => c.some((a) => a.startsWith('--query-'));
  const calls = (): string[][] => all().filter((c) => !isQuery(c));
  const queries = (): string[][] => all().filter(isQuery);
  return { dir, bin, log, ledger: join(dir, 'etc/ha-setup/firewalld.ledger'), kept: join(dir, 'var/lib/ha-setup/firewalld.ledger'), local, run, calls, queries, clearCalls: () => rmSync(log, { force: true }) };
}

const pgRule = (ip: string, port = 5432): string => `rule family="ipv4" source address="${ip}/32" port port="${port}" protocol="tcp" accept`;
const vrrpRule = (ip: string): string => `rule family="ipv4" source address="${ip}/32" protocol value="vrrp" accept`;
const b64 = (s: string): string => Buffer.from(s).toString('base64');
const runScripts = (p: Plan): string[] => p.actions.map((a) => (a.kind === 'run' ? a.script : `write ${a.path}`));

// ---------------------------------------------------------------------------------------------
// The helper's bash, for real

test('ledger helper (bash run for real, fake firewall-cmd on PATH): a successful add appends exactly one line (0600, directory created), a repeat adds none, a failing add records nothing', (t) => {
  const sb = sandbox(t);
  const perm: LedgerEntry = { scope: 'permanent', zone: 'public', kind: 'rich-rule', value: pgRule('198.18.0.12') };
  const add = firewalldAddScript(perm);
  assert.equal(existsSync(join(sb.dir, 'etc')), false);

  const first = sb.run(add);
  assert.equal(first.status, 0, first.stderr);
  // firewall-cmd got the rule as one argument, quotes and spaces intact.
  assert.deepEqual(sb.calls(), [['firewall-cmd', '--permanent', '--zone=public', `--add-rich-rule=${pgRule('198.18.0.12')}`]]);
  // ... after asking whether firewalld has it already (it had not).
  assert.deepEqual(sb.queries(), [['firewall-cmd', '--permanent', '--zone=public', `--query-rich-rule=${pgRule('198.18.0.12')}`]]);
  assert.equal(readFileSync(sb.ledger, 'utf8'), `permanent\tpublic\trich-rule\t${pgRule('198.18.0.12')}\n`);
  assert.equal(statSync(sb.ledger).mode & 0o777, 0o600);
  assert.deepEqual(parseLedger(readFileSync(sb.ledger, 'utf8')), { entries: [perm], unreadable: 0 });

  // The same add again (firewall-cmd called, succeeds): no second line.
  const again = sb.run(add);
  assert.equal(again.status, 0, again.stderr);
  assert.equal(sb.calls().length, 2);
  assert.equal(readFileSync(sb.ledger, 'utf8'), `${ledgerLine(perm)}\n`);

  // Another opening (a port, runtime): one more line.
  const port: LedgerEntry = { scope: 'runtime', zone: 'internal', kind: 'port', value: '8181/tcp' };
  assert.equal(sb.run(firewalldAddScript(port)).status, 0);
  assert.deepEqual(sb.calls()[2], ['firewall-cmd', '--zone=internal', '--add-port=8181/tcp']);
  assert.equal(readFileSync(sb.ledger, 'utf8'), `${ledgerLine(perm)}\n${ledgerLine(port)}\n`);

  // firewall-cmd fails: the script fails, nothing is recorded.
  const other: LedgerEntry = { scope: 'runtime', zone: 'public', kind: 'rich-rule', value: pgRule('198.18.0.15') };
  const failed = sb.run(firewalldAddScript(other), { FAKE_FWD_RC: '1' });
  assert.equal(failed.status, 1);
  assert.deepEqual(sb.calls()[3], ['firewall-cmd', '--zone=public', `--add-rich-rule=${pgRule('198.18.0.15')}`]);
  assert.equal(readFileSync(sb.ledger, 'utf8'), `${ledgerLine(perm)}\n${ledgerLine(port)}\n`);
  // ... and the same line, added for real afterwards, is recorded once.
  assert.equal(sb.run(firewalldAddScript(other)).status, 0);
  assert.equal(readFileSync(sb.ledger, 'utf8').split('\n').filter((l) => l === ledgerLine(other)).length, 1);
});

test('ledger helper (bash run for real): a rule firewalld has already (added by the admin since the facts were read) is neither added nor recorded', (t) => {
  const sb = sandbox(t);
  const r = sb.run(firewalldAddScript({ scope: 'runtime', zone: 'public', kind: 'port', value: '8181/tcp' }), { FAKE_FWD_QUERY_RC: '0' });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(sb.queries(), [['firewall-cmd', '--zone=public', '--query-port=8181/tcp']]);
  assert.deepEqual(sb.calls(), []);
  assert.equal(existsSync(sb.ledger), false);
});

test('ledger helper (bash run for real): a failing first add creates neither the ledger nor its directory', (t) => {
  const sb = sandbox(t);
  const r = sb.run(firewalldAddScript({ scope: 'permanent', zone: 'public', kind: 'port', value: '15432/tcp' }), { FAKE_FWD_RC: '1' });
  assert.equal(r.status, 1);
  assert.deepEqual(sb.calls(), [['firewall-cmd', '--permanent', '--zone=public', '--add-port=15432/tcp']]);
  assert.equal(existsSync(sb.ledger), false);
  assert.equal(existsSync(join(sb.dir, 'etc')), false);
  // The script writes the server's path (mapped into the sandbox here): the same add, succeeding, creates both.
  assert.ok(firewalldAddScript({ scope: 'runtime', zone: 'public', kind: 'port', value: '1/tcp' }).includes(`>> ${FIREWALLD_LEDGER}`));
  assert.equal(sb.run(firewalldAddScript({ scope: 'permanent', zone: 'public', kind: 'port', value: '15432/tcp' })).status, 0);
  assert.equal(readFileSync(sb.ledger, 'utf8'), 'permanent\tpublic\tport\t15432/tcp\n');
});

// ---------------------------------------------------------------------------------------------
// firewall-cmd --list-all-zones text (what the facts read)

interface Zone {
  name: string;
  interfaces?: string[];
  services?: string[];
  ports?: string[];
  rich?: string[];
}

function listAllZones(zones: Zone[]): string {
  return zones
    .map((z) =>
      [
        `${z.name}${z.interfaces?.length ? ' (active)' : ''}`,
        '  target: default',
        '  icmp-block-inversion: no',
        `  interfaces: ${(z.interfaces ?? []).join(' ')}`,
        '  sources: ',
        `  services: ${(z.services ?? []).join(' ')}`,
        `  ports: ${(z.ports ?? []).join(' ')}`,
        '  protocols: ',
        '  forward: yes',
        '  masquerade: no',
        '  forward-ports: ',
        '  source-ports: ',
        '  icmp-blocks: ',
        '  rich rules: ',
        ...(z.rich ?? []).map((r) => `\t${r}`),
        '',
      ].join('\n'),
    )
    .join('\n');
}

const asFirewalldZones = (zones: Zone[]): FirewalldZone[] =>
  zones.map((z) => ({ name: z.name, active: Boolean(z.interfaces?.length), isDefault: z.name === 'public', interfaces: z.interfaces ?? [], sources: [], services: z.services ?? [], ports: z.ports ?? [], richRules: z.rich ?? [] }));

/** What firewalld has after the recorded calls: each add (runtime or permanent) applied to a copy of the zones. */
function afterCalls(zones: { runtime: Zone[]; permanent: Zone[] }, calls: string[][]): { runtime: Zone[]; permanent: Zone[] } {
  const copy = (l: Zone[]): Zone[] => l.map((z) => ({ ...z, ports: [...(z.ports ?? [])], rich: [...(z.rich ?? [])] }));
  const out = { runtime: copy(zones.runtime), permanent: copy(zones.permanent) };
  for (const argv of calls) {
    const zone = argv.find((a) => a.startsWith('--zone='))?.slice('--zone='.length);
    const scope = argv.includes('--permanent') ? out.permanent : out.runtime;
    const z = scope.find((x) => x.name === zone)!;
    for (const a of argv) {
      if (a.startsWith('--add-rich-rule=')) z.rich!.push(a.slice('--add-rich-rule='.length));
      if (a.startsWith('--add-port=')) z.ports!.push(a.slice('--add-port='.length));
    }
  }
  return out;
}

const remnants = (kv: Record<string, string>): ReturnType<typeof parseFirewallRemnants> => parseFirewallRemnants(Object.entries(kv).map(([k, v]) => `${k}=${v}`).join('\n'));

// ---------------------------------------------------------------------------------------------
// The three runbooks record what they add; uninstall removes exactly that

const SERVERS = { db_primary: '198.18.0.11', db_standby: '198.18.0.12', app1: '198.18.0.15', app2: '198.18.0.16', lb: '198.18.0.17', lb_standby: '198.18.0.18' };
const ctxFor = (alias: string): HostContext => {
  const table = tableOf({ servers: SERVERS });
  return createHostContext({ host: table.hosts[alias]!, table, options: contextOptions({ cluster: 'fwd-test', options: { postgres: { version: 16 } } }), secret: (n) => new Secret(n, 'x'.repeat(24)) });
};
const netOf = (address: string): NetFacts => ({ addresses: [{ iface: 'eth0', family: 'inet', address, prefix: 24, scope: 'global' }], hostname: 'h', fqdn: 'h' });
const fwFacts = (zones: { runtime: Zone[]; permanent: Zone[] }): FirewallFacts => ({
  firewalld: { running: true, defaultZone: 'public', runtime: asFirewalldZones(zones.runtime), permanent: asFirewalldZones(zones.permanent) },
  ufw: { installed: false, active: false, rules: [] },
  nft: { installed: false, serviceEnabled: false, chains: [], sets: [], tables: [], conf: null, ours: null, accept: null },
  iptables: { v4: null, v6: null, persist: null },
});

test('RHEL plan fixtures (the lab has no firewalld), db node: pg-users and keepalived record what they add; uninstall removes exactly those openings in their scopes, then the ledger', (t) => {
  const sb = sandbox(t);
  // Before ha-setup: the admin allows 5432 from app1 (both scopes) and VRRP from the peer (permanent only, not reloaded).
  const before = {
    runtime: [{ name: 'public', interfaces: ['eth0'], services: ['ssh', 'cockpit'], rich: [pgRule('198.18.0.15')] }, { name: 'trusted' }],
    permanent: [{ name: 'public', interfaces: ['eth0'], services: ['ssh', 'cockpit'], rich: [pgRule('198.18.0.15'), vrrpRule('198.18.0.12')] }, { name: 'trusted' }],
  };
  const ctx = ctxFor('db_primary');
  const fw = fwFacts(before);
  const pgStep = pgUsersRunbook.steps.find((s) => s.id === 'pg-users.firewall')!;
  const pgPlan = pgStep.plan({ fw, net: netOf(SERVERS.db_primary), resolve: {} } as never, ctx);
  const vrrpPlan = vrrpFirewallPlan(fw, { nft: [], iptables: [], ip6tables: [], nftFile: null }, netOf(SERVERS.db_primary), SERVERS.db_standby, 'db_primary');
  const applied = [...pgPlan.actions, ...vrrpPlan.actions];
  assert.deepEqual(applied.map((a) => a.title), [
    'firewalld zone public: allow tcp 5432 from 198.18.0.12',
    'firewalld zone public: allow tcp 5432 from 198.18.0.16',
    'firewalld zone public: allow VRRP from 198.18.0.12',
  ]);
  for (const s of [...runScripts(pgPlan), ...runScripts(vrrpPlan)]) {
    const r = sb.run(s);
    assert.equal(r.status, 0, r.stderr);
  }
  const added = sb.calls();
  // app1's rule was there in both scopes and VRRP permanently: not added, so not in the ledger.
  assert.deepEqual(added, [
    ['firewall-cmd', '--zone=public', `--add-rich-rule=${pgRule('198.18.0.12')}`],
    ['firewall-cmd', '--permanent', '--zone=public', `--add-rich-rule=${pgRule('198.18.0.12')}`],
    ['firewall-cmd', '--zone=public', `--add-rich-rule=${pgRule('198.18.0.16')}`],
    ['firewall-cmd', '--permanent', '--zone=public', `--add-rich-rule=${pgRule('198.18.0.16')}`],
    ['firewall-cmd', '--zone=public', `--add-rich-rule=${vrrpRule('198.18.0.12')}`],
  ]);
  const ledger = readFileSync(sb.ledger, 'utf8');
  assert.deepEqual(parseLedger(ledger).entries, [
    { scope: 'runtime', zone: 'public', kind: 'rich-rule', value: pgRule('198.18.0.12') },
    { scope: 'permanent', zone: 'public', kind: 'rich-rule', value: pgRule('198.18.0.12') },
    { scope: 'runtime', zone: 'public', kind: 'rich-rule', value: pgRule('198.18.0.16') },
    { scope: 'permanent', zone: 'public', kind: 'rich-rule', value: pgRule('198.18.0.16') },
    { scope: 'runtime', zone: 'public', kind: 'rich-rule', value: vrrpRule('198.18.0.12') },
  ]);

  // Applied again on the new state: nothing to add.
  const now = afterCalls(before, added);
  assert.deepEqual(pgStep.plan({ fw: fwFacts(now), net: netOf(SERVERS.db_primary), resolve: {} } as never, ctx).actions, []);

  // Since then the admin removed 198.18.0.16's runtime rule; firewall-cmd lists .12's permanent rule without /32.
  now.runtime[0]!.rich = now.runtime[0]!.rich!.filter((r) => r !== pgRule('198.18.0.16'));
  now.permanent[0]!.rich = now.permanent[0]!.rich!.map((r) => (r === pgRule('198.18.0.12') ? 'rule family="ipv4" source address="198.18.0.12" port port="5432" protocol="tcp" accept' : r));
  const fwr = remnants({ FIREWALLD: 'running', FWD_RUNTIME: b64(listAllZones(now.runtime)), FWD_PERMANENT: b64(listAllZones(now.permanent)), FWD_LEDGER: b64(ledger), FWD_LEDGER_KEPT: '-' });
  const p = firewallUninstallPlan(fwr);
  assert.deepEqual(p.actions.map((a) => a.title), [
    `firewalld: delete rich rule ${pgRule('198.18.0.12')} from zone public (runtime and permanent)`,
    `firewalld: delete rich rule ${pgRule('198.18.0.16')} from zone public (permanent)`,
    `firewalld: delete rich rule ${vrrpRule('198.18.0.12')} from zone public (runtime)`,
    `remove ${FIREWALLD_LEDGER} (the ledger of ha-setup's firewalld openings)`,
  ]);
  assert.equal(p.reason, "firewalld: 3 openings ha-setup added are removed; rules it found already there are left; 1 line(s) of the ledger name rules firewalld no longer has");
  assert.equal(runScripts(p).at(-1), `rm -f -- ${FIREWALLD_LEDGER}`);
  // The removals, run against the fake: each is one of ha-setup's adds, undone in the same scope.
  sb.clearCalls();
  for (const s of runScripts(p).slice(0, -1)) assert.equal(sb.run(s).status, 0);
  const removed = sb.calls();
  assert.deepEqual(removed, [
    ['firewall-cmd', '--zone=public', `--remove-rich-rule=${pgRule('198.18.0.12')}`],
    ['firewall-cmd', '--permanent', '--zone=public', `--remove-rich-rule=${pgRule('198.18.0.12')}`],
    ['firewall-cmd', '--permanent', '--zone=public', `--remove-rich-rule=${pgRule('198.18.0.16')}`],
    ['firewall-cmd', '--zone=public', `--remove-rich-rule=${vrrpRule('198.18.0.12')}`],
  ]);
  const asAdd = (argv: string[]): string => argv.join(' ').replace('--remove-', '--add-');
  for (const r of removed) assert.ok(added.map((a) => a.join(' ')).includes(asAdd(r)), `not one of ha-setup's adds: ${r.join(' ')}`);
  // The admin's rules (app1's, the permanent VRRP rule) are never named.
  const all = runScripts(p).join('\n');
  assert.ok(!all.includes('198.18.0.15'));
  assert.ok(!/--permanent --zone=public --remove-rich-rule='rule family="ipv4" source address="198\.18\.0\.12\/32" protocol value="vrrp"/.test(all));
  // On the uninstall screen they are firewall items.
  assert.deepEqual(summarizeUninstall(p.actions).map((g) => [g.kind, g.items.length]), [['remove', 1], ['firewall', 3]]);
});

test('RHEL plan fixtures (the lab has no firewalld), lb: HAProxy ports and rich rules are recorded; uninstall removes only them', (t) => {
  const sb = sandbox(t);
  // The admin opened 15432/tcp permanently before ha-setup (not in runtime).
  const before = { runtime: [{ name: 'public', interfaces: ['eth0'], services: ['ssh'], ports: ['22/tcp'] }], permanent: [{ name: 'public', interfaces: ['eth0'], services: ['ssh'], ports: ['22/tcp', '15432/tcp'] }] };
  const r = firewallActions(fwFacts(before), [], netOf(SERVERS.lb), ctxFor('lb'), [
    { port: 8181, from: 'any' },
    { port: 15432, from: 'any' },
    { port: 10000, from: [SERVERS.lb_standby] },
  ]);
  assert.equal(r.tool, 'firewalld');
  for (const a of r.actions) assert.equal(sb.run((a as Extract<Action, { kind: 'run' }>).script).status, 0);
  const added = sb.calls();
  assert.deepEqual(added, [
    ['firewall-cmd', '--zone=public', '--add-port=8181/tcp'],
    ['firewall-cmd', '--permanent', '--zone=public', '--add-port=8181/tcp'],
    ['firewall-cmd', '--zone=public', '--add-port=15432/tcp'],
    ['firewall-cmd', '--zone=public', `--add-rich-rule=${pgRule('198.18.0.18', 10000)}`],
    ['firewall-cmd', '--permanent', '--zone=public', `--add-rich-rule=${pgRule('198.18.0.18', 10000)}`],
  ]);
  const ledger = readFileSync(sb.ledger, 'utf8');
  assert.equal(ledger.split('\n').filter(Boolean).length, 5);
  const now = afterCalls(before, added);
  const p = firewallUninstallPlan(remnants({ FIREWALLD: 'running', FWD_RUNTIME: b64(listAllZones(now.runtime)), FWD_PERMANENT: b64(listAllZones(now.permanent)), FWD_LEDGER: b64(ledger) }));
  assert.deepEqual(runScripts(p), [
    'firewall-cmd --zone=public --remove-port=8181/tcp\nfirewall-cmd --permanent --zone=public --remove-port=8181/tcp',
    'firewall-cmd --zone=public --remove-port=15432/tcp',
    `firewall-cmd --zone=public --remove-rich-rule='${pgRule('198.18.0.18', 10000)}'\nfirewall-cmd --permanent --zone=public --remove-rich-rule='${pgRule('198.18.0.18', 10000)}'`,
    `rm -f -- ${FIREWALLD_LEDGER}`,
  ]);
  // 15432/tcp stays in the permanent configuration (the admin's), 22/tcp everywhere.
  assert.ok(!runScripts(p).some((s) => /--permanent --zone=public --remove-port=15432|22\/tcp/.test(s)));
  assert.match(p.reason!, /^firewalld: 3 openings ha-setup added are removed; rules it found already there are left$/);
});

test('uninstall plan fixtures (RHEL): a ledger whose rules are all gone only goes itself; no ledger, nothing is touched; commented ufw rules and ledger rules on one host both go', () => {
  const zones = listAllZones([{ name: 'public', interfaces: ['eth0'], ports: ['8181/tcp'], rich: [pgRule('198.18.0.15')] }]);
  const gone = firewallUninstallPlan(remnants({ FIREWALLD: 'running', FWD_RUNTIME: b64(zones), FWD_PERMANENT: b64(zones), FWD_LEDGER: b64(`runtime\tpublic\trich-rule\t${pgRule('198.18.0.12')}\npermanent\tinternal\tport\t8181/tcp\nnot a ledger line\n`) }));
  assert.deepEqual(runScripts(gone), [`rm -f -- ${FIREWALLD_LEDGER}`]);
  assert.equal(gone.reason, 'firewalld: 0 openings ha-setup added are removed; rules it found already there are left; 2 line(s) of the ledger name rules firewalld no longer has; 1 unreadable line(s) of the ledger ignored');
  const none = firewallUninstallPlan(remnants({ FIREWALLD: 'running', FWD_RUNTIME: b64(zones), FWD_PERMANENT: b64(zones), FWD_LEDGER: '-' }));
  assert.deepEqual(none.actions, []);
  // No firewalld and no ledger (a Debian host): nothing said about firewalld.
  assert.equal(firewallUninstallPlan(remnants({ FWD_LEDGER: '-' })).reason, "no firewall rule of ha-setup's on this host");
  // ufw's commented rules and the ledger's rules on one host: both go, both reasons given.
  const ufwRule = `### tuple ### allow tcp 5432 0.0.0.0/0 any 198.18.0.12 in comment=${Buffer.from('ha-setup-pg').toString('hex')}`;
  const both = firewallUninstallPlan(remnants({ UFW_RULES: b64(ufwRule), FIREWALLD: 'running', FWD_RUNTIME: b64(zones), FWD_PERMANENT: b64(zones), FWD_LEDGER: b64('permanent\tpublic\tport\t8181/tcp\n') }));
  assert.deepEqual(runScripts(both), ['ufw delete allow proto tcp from 198.18.0.12 to any port 5432', 'firewall-cmd --permanent --zone=public --remove-port=8181/tcp', `rm -f -- ${FIREWALLD_LEDGER}`]);
  assert.equal(both.reason, "rules carrying ha-setup's comments (ha-setup-pg, ha-setup-haproxy, ha-setup-vrrp); firewalld: 1 opening ha-setup added is removed; rules it found already there are left");
});

test('RHEL plan fixtures, firewalld stopped: permanent openings go with firewall-offline-cmd (runtime ones went with firewalld)', () => {
  const ledger = [
    `runtime\tpublic\trich-rule\t${pgRule('198.18.0.12')}`,
    `permanent\tpublic\trich-rule\t${pgRule('198.18.0.12')}`,
    'permanent\tpublic\tport\t8181/tcp',
    'permanent\tpublic\tport\t9000/tcp',
  ].join('\n');
  const permanent = listAllZones([{ name: 'public', interfaces: ['eth0'], ports: ['8181/tcp'], rich: [pgRule('198.18.0.12'), pgRule('198.18.0.15')] }]);
  const p = firewallUninstallPlan(remnants({ FIREWALLD: 'offline', FWD_PERMANENT: b64(permanent), FWD_LEDGER: b64(ledger) }));
  assert.deepEqual(runScripts(p), [
    `firewall-offline-cmd --zone=public --remove-rich-rule='${pgRule('198.18.0.12')}'`,
    'firewall-offline-cmd --zone=public --remove-port=8181/tcp',
    `rm -f -- ${FIREWALLD_LEDGER}`,
  ]);
  assert.match(p.reason!, /^firewalld: 2 openings ha-setup added are removed; rules it found already there are left; 2 line\(s\) of the ledger name rules firewalld no longer has \(firewalld is not running: its runtime rules went with it\)$/);
});

test('RHEL plan fixtures, firewalld stopped and no firewall-offline-cmd: the ledger moves to /var/lib/ha-setup (run for real), the note names it and the fix; a later run with firewalld removes the rules and that ledger', (t) => {
  const sb = sandbox(t);
  const ledger = `runtime\tpublic\tport\t8181/tcp\npermanent\tpublic\tport\t8181/tcp\npermanent\tpublic\trich-rule\t${vrrpRule('198.18.0.12')}\n`;
  const p = firewallUninstallPlan(remnants({ FWD_LEDGER: b64(ledger), FWD_LEDGER_KEPT: '-' }));
  assert.deepEqual(p.actions.map((a) => a.title), [`move ${FIREWALLD_LEDGER} to ${FIREWALLD_LEDGER_KEPT} (its permanent rules cannot be removed while firewalld is stopped)`]);
  assert.equal(
    p.reason,
    `firewalld is not running and firewall-offline-cmd is missing: 2 permanent opening(s) ha-setup added stay in /etc/firewalld, listed in ${FIREWALLD_LEDGER_KEPT}; start firewalld (systemctl start firewalld) or install firewalld's firewall-offline-cmd, then run ha-setup uninstall again`,
  );
  mkdirSync(join(sb.dir, 'etc/ha-setup'), { recursive: true });
  writeFileSync(sb.ledger, ledger, { mode: 0o600 });
  const r = sb.run(runScripts(p)[0]!);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(existsSync(sb.ledger), false);
  assert.equal(readFileSync(sb.kept, 'utf8'), ledger);
  assert.equal(statSync(sb.kept).mode & 0o777, 0o600);
  // The leftovers step removes /etc/ha-setup but never /var/lib/ha-setup.
  const left = leftoverPlan(parseInstalled(['OWN /etc/ha-setup', 'OWN /var/lib/ha-setup', `OWN ${FIREWALLD_LEDGER_KEPT}`].join('\n')));
  assert.deepEqual(runScripts(left), ['rm -rf -- /etc/ha-setup']);

  // A second uninstall, firewalld still stopped: nothing to do, the same note.
  const second = firewallUninstallPlan(remnants({ FWD_LEDGER: '-', FWD_LEDGER_KEPT: b64(readFileSync(sb.kept, 'utf8')) }));
  assert.deepEqual(second.actions, []);
  assert.match(second.reason!, /listed in \/var\/lib\/ha-setup\/firewalld\.ledger; start firewalld/);
  // firewalld started again (runtime = permanent): both scopes of ha-setup's rules go, then the kept ledger.
  const zones = listAllZones([{ name: 'public', interfaces: ['eth0'], ports: ['8181/tcp'], rich: [vrrpRule('198.18.0.12')] }]);
  const later = firewallUninstallPlan(remnants({ FIREWALLD: 'running', FWD_RUNTIME: b64(zones), FWD_PERMANENT: b64(zones), FWD_LEDGER: '-', FWD_LEDGER_KEPT: b64(readFileSync(sb.kept, 'utf8')) }));
  assert.deepEqual(runScripts(later), [
    'firewall-cmd --zone=public --remove-port=8181/tcp\nfirewall-cmd --permanent --zone=public --remove-port=8181/tcp',
    `firewall-cmd --permanent --zone=public --remove-rich-rule='${vrrpRule('198.18.0.12')}'`,
    `rm -f -- ${FIREWALLD_LEDGER_KEPT}`,
  ]);
});

test('the uninstall firewall fact (bash run for real, fake firewall-cmd): the ledger base64, zones listed only when a ledger exists, firewall-offline-cmd when firewalld is stopped', (t) => {
  const sb = sandbox(t, ['firewall-cmd', 'firewall-offline-cmd']);
  const runtime = join(sb.dir, 'runtime.txt');
  const permanent = join(sb.dir, 'permanent.txt');
  writeFileSync(runtime, listAllZones([{ name: 'public', interfaces: ['eth0'], ports: ['8181/tcp'] }]));
  writeFileSync(permanent, listAllZones([{ name: 'public', interfaces: ['eth0'], ports: ['8181/tcp', '22/tcp'], rich: [pgRule('198.18.0.12')] }]));
  const env = { FAKE_FWD_RUNTIME: runtime, FAKE_FWD_PERMANENT: permanent };
  const fact = (extra: Record<string, string> = {}): ReturnType<typeof parseFirewallRemnants> => {
    const r = sb.run(firewallRemnantsFact.script, { ...env, ...extra }, true);
    assert.equal(r.status, 0, r.stderr);
    const res: ExecResult = { code: 0, stdout: r.stdout, stderr: r.stderr, durationMs: 0 };
    return firewallRemnantsFact.parse(r.stdout, res);
  };
  const listed = (): string[] => sb.calls().filter((c) => c.includes('--list-all-zones')).map((c) => c.join(' '));

  // firewalld runs, no ledger: not listed.
  const bare = fact();
  assert.deepEqual([bare.firewalld, bare.fwd.state, bare.fwd.ledgers], [true, 'running', []]);
  assert.deepEqual(listed(), []);

  const line = `permanent\tpublic\trich-rule\t${pgRule('198.18.0.12')}\n`;
  mkdirSync(join(sb.dir, 'etc/ha-setup'), { recursive: true });
  writeFileSync(sb.ledger, line, { mode: 0o600 });
  const withLedger = fact();
  assert.deepEqual(withLedger.fwd.ledgers, [{ path: FIREWALLD_LEDGER, text: line }]);
  assert.deepEqual(listed(), ['firewall-cmd --list-all-zones', 'firewall-cmd --permanent --list-all-zones']);
  assert.deepEqual(withLedger.fwd.runtime.map((z) => [z.name, z.ports, z.richRules]), [['public', ['8181/tcp'], []]]);
  assert.deepEqual(withLedger.fwd.permanent.map((z) => [z.name, z.ports, z.richRules]), [['public', ['8181/tcp', '22/tcp'], [pgRule('198.18.0.12')]]]);
  assert.deepEqual(runScripts(firewallUninstallPlan(withLedger)), [`firewall-cmd --permanent --zone=public --remove-rich-rule='${pgRule('198.18.0.12')}'`, `rm -f -- ${FIREWALLD_LEDGER}`]);

  // firewalld stopped (--state fails): the permanent zones from firewall-offline-cmd.
  sb.clearCalls();
  const offline = fact({ FAKE_FWD_STATE_RC: '252' });
  assert.deepEqual([offline.firewalld, offline.fwd.state, offline.fwd.runtime], [false, 'offline', []]);
  assert.deepEqual(listed(), ['firewall-offline-cmd --list-all-zones']);
  assert.deepEqual(runScripts(firewallUninstallPlan(offline)), [`firewall-offline-cmd --zone=public --remove-rich-rule='${pgRule('198.18.0.12')}'`, `rm -f -- ${FIREWALLD_LEDGER}`]);
});
