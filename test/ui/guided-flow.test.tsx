/**
 * The wizard after saving: connectivity check, runbook choice, plan review, run, summary. Each
 * screen alone, then the whole GuidedFlow on fake transports (no SSH).
 */
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { render, cleanup } from 'ink-testing-library';
import { ConnectivityScreen } from '../../source/ui/wizard/ConnectivityScreen.js';
import { RunbookScreen } from '../../source/ui/wizard/RunbookScreen.js';
import { PlanReviewScreen } from '../../source/ui/wizard/PlanReviewScreen.js';
import { endpoints, SummaryScreen } from '../../source/ui/wizard/SummaryScreen.js';
import { GuidedFlow, type GuidedResult } from '../../source/ui/wizard/GuidedFlow.js';
import { checkConnectivity, type HostCheck } from '../../source/ui/wizard/connectivity.js';
import { createHostKeyStore } from '../../source/ui/wizard/host-key-store.js';
import { planByHost } from '../../source/ui/wizard/plan-review.js';
import { defineStep, done, planOf, type Runbook } from '../../source/engine/step.js';
import { readCheckpoints } from '../../source/engine/checkpoint.js';
import type { EngineEvent } from '../../source/engine/events.js';
import { TransportError } from '../../source/transport/types.js';
import type { Inventory } from '../../source/inventory/types.js';
import { FakePool, FakeTransport, tempHome } from '../helpers/fake-transport.js';
import { keys, plain, waitFor, waitForText } from './helpers.js';

afterEach(() => cleanup());

const NOW = 1_790_000_000_000;
const DEBIAN = 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nHA_HOSTNAME=x\nHA_INIT=systemd\nHA_PM=apt-get\n';

const inv: Inventory = {
  cluster: 'prod',
  topology: 'lb',
  partial: true,
  servers: { db_primary: '198.18.0.11', db_standby: '198.18.0.12', db_vip: '198.18.0.100', lb: '198.18.0.30' },
  ssh: {},
  options: {},
};

const ADDRESSES: Record<string, string> = { db_primary: '198.18.0.11', db_standby: '198.18.0.12', lb: '198.18.0.30' };

/** What the host's interfaces, firewall and PostgreSQL look like (`ip -o addr`, ufw, the PostgreSQL binaries). */
function roleFacts(t: FakeTransport, o: { address?: string; ufw?: boolean; pg?: string } = {}): void {
  const address = o.address ?? ADDRESSES[t.name] ?? '198.18.0.99';
  const ip = `1: lo    inet 127.0.0.1/8 scope host lo\n2: eth0    inet ${address}/24 brd 198.18.0.255 scope global eth0\n`;
  t.on(/ip -o addr show/, { stdout: `HOSTNAME=${t.name}\nFQDN=${t.name}\nADDRS=${Buffer.from(ip).toString('base64')}\n` });
  t.on(/firewall-cmd --state/, { stdout: o.ufw ? 'UFW_INSTALLED=yes\nUFW=Status: active\n' : '' });
  t.on(/bin\/postgres /, { stdout: o.pg ? `${o.pg} ` : '' });
}

/** A healthy Debian host; `skewMs` shifts its clock. */
function healthy(t: FakeTransport, skewMs = 0): void {
  t.on(/os-release/, { stdout: DEBIAN });
  t.on(/^date \+%s%3N$/, () => ({ stdout: `${NOW + skewMs}\n` }));
  t.on(/^sudo -n true$/, { code: 0 });
  roleFacts(t);
}

test('connectivity: all hosts at once; per host OS, user/sudo, clock; problems with their fix', async () => {
  let sudoFixed = false;
  const pool = new FakePool({}, (t) => {
    if (t.name === 'db_primary') {
      roleFacts(t, { pg: '15' }); // before healthy(): the first responder that matches answers
      healthy(t);
    }
    if (t.name === 'db_standby') {
      roleFacts(t, { address: '10.0.0.12' });
      t.on(/os-release/, { stdout: DEBIAN });
      t.on(/^date \+%s%3N$/, { stdout: `${NOW + 5200}\n` });
      t.on(/^sudo -n true$/, () => (sudoFixed ? { code: 0 } : { code: 1, stderr: 'sudo: a password is required' }));
    }
  });
  const transports = new Map<string, FakeTransport>();
  const transport = (h: { alias: string }) => {
    if (h.alias === 'lb') {
      const t = transports.get('lb') ?? new FakeTransport('lb', { connectError: new TransportError('lb', 'unreachable', 'cannot connect to 198.18.0.30:22 (ECONNREFUSED)', 'start sshd on lb or fix its address') });
      transports.set('lb', t);
      return t;
    }
    return pool.get(h.alias);
  };
  // db_standby logs in as "deploy" (sudo needed).
  Object.defineProperty(pool.get('db_standby'), 'user', { value: 'deploy' });
  let continued: HostCheck[] | undefined;
  const r = render(<ConnectivityScreen inventory={inv} transport={transport} now={() => NOW} spinnerFrame="*" onContinue={(c) => (continued = c)} onQuit={() => {}} />);
  const frame = await waitForText(r.lastFrame, 'hosts have problems');
  assert.equal(
    frame,
    [
      'Checking 3 hosts of prod: SSH, OS, sudo, clock, VIP interface, firewall, PostgreSQL',
      '✓ db_primary 198.18.0.11  Debian GNU/Linux 12 (bookworm) · root · clock +0.0 s',
      '    db_vip on eth0 · firewall: none · PostgreSQL 15',
      '✗ db_standby 198.18.0.12  Debian GNU/Linux 12 (bookworm) · deploy, no sudo · clock +5.2 s',
      '    firewall: none · no PostgreSQL yet (pg-primary installs 15)',
      '    sudo asks user deploy for a password',
      // ink-testing-library's terminal is 100 columns wide: long fixes wrap under their indent.
      "    fix: allow it without one: echo 'deploy ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/ha-setup (as",
      '    root, mode 0440)',
      '    clock is 5.2 s ahead of the jump host',
      '    fix: enable time sync on both (apt-get install chrony / dnf install chrony; systemctl enable',
      '    --now chrony)',
      "    db_vip 198.18.0.100 is in no subnet of this host's interfaces (eth0 10.0.0.12/24)",
      "    fix: choose db_vip in the pair's subnet, or set options.keepalived.interface",
      '✗ lb 198.18.0.30',
      '    SSH: lb: cannot connect to 198.18.0.30:22 (ECONNREFUSED) (start sshd on lb or fix its address)',
      '    fix: start sshd on lb or fix its address',
      '',
      '✗ 2 of 3 hosts have problems: fix them and press r to check again',
      '',
      'enter go on anyway · r check again · esc quit',
    ].join('\n'),
  );
  assert.deepEqual(
    pool.get('db_standby').execs.map((e) => e.script.split('\n')[0]!.slice(0, 24)),
    ['cat /etc/os-release 2>/d', 'sudo -n true', 'date +%s%3N', 'echo "HOSTNAME=$(hostnam', 'have() { command -v "$1"', 'ls -d /usr/lib/postgresq'],
    'OS, sudo, clock, then the interfaces, the firewall and PostgreSQL',
  );
  assert.equal(pool.get('db_primary').execs.length, 5);
  assert.equal(pool.get('db_primary').execs.some((e) => e.script === 'sudo -n true'), false, 'root needs no sudo check');
  // r checks again (fixed now), enter goes on.
  sudoFixed = true;
  r.stdin.write('r');
  const again = (await waitFor<string | undefined>(() => {
    const f = plain(r.lastFrame());
    return f.includes('deploy, sudo ok') && f.includes('hosts have problems') ? f : undefined;
  }, () => plain(r.lastFrame())))!;
  assert.equal(pool.get('db_standby').execs.length, 12);
  assert.doesNotMatch(again, /sudo asks/);
  assert.match(again, /✗ 2 of 3 hosts have problems/, 'the clock and lb are still wrong');
  r.stdin.write(keys.enter);
  await waitFor(() => continued, () => plain(r.lastFrame()));
  assert.equal(continued!.length, 3);
});

test('connectivity: an unknown host key is asked in the UI with its fingerprint; n refuses', async () => {
  const hostKeys = createHostKeyStore();
  const pool = new FakePool({}, (t) => healthy(t));
  for (const alias of ['db_primary', 'db_standby']) {
    const t = pool.get(alias);
    t.connect = async () => {
      const trust = await hostKeys.ask({ host: `198.18.0.${alias === 'db_primary' ? 11 : 12}`, port: 22, keyType: 'ssh-ed25519', fingerprint: `SHA256:fp-${alias}`, knownHostsFile: '~/.ssh/known_hosts', otherKeyTypes: [] });
      if (!trust) throw new TransportError(alias, 'host-key-unknown', 'host key not trusted', 'check the fingerprint, then answer y');
    };
  }
  const small: Inventory = { ...inv, servers: { db_primary: '198.18.0.11', db_standby: '198.18.0.12' } };
  const r = render(<ConnectivityScreen inventory={small} transport={(h) => pool.get(h.alias)} hostKeys={hostKeys} now={() => NOW} spinnerFrame="*" onContinue={() => {}} onQuit={() => {}} />);
  const first = await waitForText(r.lastFrame, 'SHA256:fp-db_primary');
  assert.match(first, /198\.18\.0\.11:22 presents an unknown ssh-ed25519 host key:/);
  assert.match(first, /Trust it and add it to ~\/\.ssh\/known_hosts\? \(y\/n\)/);
  assert.doesNotMatch(first, /fp-db_standby/, 'one question at a time');
  r.stdin.write('y');
  await waitForText(r.lastFrame, 'SHA256:fp-db_standby');
  r.stdin.write('n');
  const end = await waitForText(r.lastFrame, '1 of 2 hosts have problems');
  assert.match(end, /✓ db_primary/);
  assert.match(end, /✗ db_standby 198\.18\.0\.12\n {4}SSH: db_standby: host key not trusted/);
});

test('checkConnectivity reports updates as hosts progress and ends with every host', async () => {
  const pool = new FakePool({ delayMs: 5 }, (t) => healthy(t, -3000));
  const seen: string[] = [];
  const checks = await checkConnectivity(inv, { transport: (h) => pool.get(h.alias), now: () => NOW, onUpdate: (c) => seen.push(c.map((x) => x.status[0]).join('')) });
  assert.equal(seen[0], 'ccc');
  assert.deepEqual(checks.map((c) => [c.alias, c.status, c.skewMs]), [
    ['db_primary', 'problems', -3000],
    ['db_standby', 'problems', -3000],
    ['lb', 'problems', -3000],
  ]);
  assert.equal(checks[0]!.problems[0]!.what, 'clock is 3.0 s behind the jump host');
  assert.ok(pool.stats.maxActive >= 2, `hosts were checked at the same time (max ${pool.stats.maxActive} at once)`);
});

const rbA = (id: string, steps: number): Runbook => ({
  id,
  title: `Runbook ${id}`,
  description: '',
  steps: Array.from({ length: steps }, (_, i) =>
    defineStep({ id: `${id}.${i}`, title: `${id} step ${i}`, targets: () => ['db_primary'], facts: {}, plan: () => done('ok') }),
  ),
});

test('runbooks: all chosen by default; space toggles, enter chooses in order', async () => {
  const all = [rbA('os', 2), rbA('pg', 1), rbA('lb', 3)];
  let chosen: Runbook[] | undefined;
  const r = render(<RunbookScreen runbooks={all} onChoose={(c) => (chosen = c)} onQuit={() => {}} />);
  const f = await waitForText(r.lastFrame, 'Runbook lb');
  assert.equal(
    f,
    [
      'Runbooks to run, in this order (3 of 3 chosen)',
      '❯ [x] Runbook os (os, 2 steps)',
      '  [x] Runbook pg (pg, 1 step)',
      '  [x] Runbook lb (lb, 3 steps)',
      '',
      '↑/↓ move · space toggle · a all/none · enter review the plan · esc quit',
    ].join('\n'),
  );
  r.stdin.write(keys.down);
  await waitForText(r.lastFrame, '❯ [x] Runbook pg');
  r.stdin.write(' ');
  await waitForText(r.lastFrame, '❯ [ ] Runbook pg');
  r.stdin.write(keys.enter);
  await waitFor(() => chosen, () => plain(r.lastFrame()));
  assert.deepEqual(chosen!.map((c) => c.id), ['os', 'lb']);
});

const planEvents: EngineEvent[] = [
  { type: 'run-started', runId: 'r1', runbooks: ['pg'], steps: [{ id: 'pg.install', title: 'Install PostgreSQL', hosts: ['db_primary', 'db_standby'] }, { id: 'pg.conf', title: 'Configure', hosts: ['db_primary'] }], transcriptPath: '/t.log', dryRun: true },
  { type: 'step-planned', stepId: 'pg.install', host: 'db_primary', actions: [{ kind: 'run', title: 'apt-get install postgresql-15', script: 'x' }], diffs: [] },
  { type: 'step-planned', stepId: 'pg.install', host: 'db_standby', actions: [], reason: 'postgresql-15 is installed', diffs: [] },
  {
    type: 'step-planned',
    stepId: 'pg.conf',
    host: 'db_primary',
    actions: [{ kind: 'write', path: '/etc/postgresql/15/main/conf.d/ha.conf', content: 'listen', mode: 0o644, previous: null }],
    diffs: [{ path: '/etc/postgresql/15/main/conf.d/ha.conf', diff: '--- a\n+++ b\n@@ -0,0 +1 @@\n+listen_addresses = *\n' }],
  },
];

test('plan review: one line per host, enter expands its steps, commands and diffs; a applies', async () => {
  const hosts = planByHost(planEvents);
  assert.deepEqual(hosts.map((h) => [h.host, h.commands, h.writes, h.diffs]), [
    ['db_primary', 1, 1, 1],
    ['db_standby', 0, 0, 0],
  ]);
  let applied = 0;
  const r = render(<PlanReviewScreen cluster="prod" hosts={hosts} onApply={() => applied++} onQuit={() => {}} />);
  const f = await waitForText(r.lastFrame, 'db_standby');
  assert.equal(
    f,
    [
      'Plan for prod: 2 changes on 1 host',
      '❯ ▸ db_primary  1 command, 1 file write, 1 diff',
      '  ▸ db_standby  nothing to do (1 step checked)',
      '',
      '↑/↓ move · enter expand/collapse · a apply · esc quit',
    ].join('\n'),
  );
  r.stdin.write(keys.enter);
  const open = await waitForText(r.lastFrame, '▾ db_primary');
  assert.ok(
    open.includes(
      [
        '❯ ▾ db_primary  1 command, 1 file write, 1 diff',
        '    • Install PostgreSQL: 1 action, 0 diffs',
        '        run   apt-get install postgresql-15',
        '    • Configure: 1 action, 1 diff',
        '        write /etc/postgresql/15/main/conf.d/ha.conf',
        '          --- a',
        '          +++ b',
        '          @@ -0,0 +1 @@',
        '          +listen_addresses = *',
        '  ▸ db_standby  nothing to do (1 step checked)',
      ].join('\n'),
    ),
    open,
  );
  r.stdin.write(keys.down);
  await waitForText(r.lastFrame, '❯ ▸ db_standby');
  r.stdin.write(keys.enter);
  await waitForText(r.lastFrame, '• Install PostgreSQL: nothing to do · postgresql-15 is installed');
  r.stdin.write('a');
  await waitFor(() => applied === 1, () => plain(r.lastFrame()));
});

test('plan review: a failed plan shows the error and offers no apply', async () => {
  const hosts = planByHost([
    ...planEvents.slice(0, 2),
    { type: 'step-failed', stepId: 'pg.install', host: 'db_standby', error: 'fact os: bash: not found', lastLines: [], transcriptPath: '/t', resumeCommand: 'x' },
  ]);
  let applied = 0;
  const r = render(<PlanReviewScreen cluster="prod" hosts={hosts} onApply={() => applied++} onQuit={() => {}} />);
  const f = await waitForText(r.lastFrame, 'failed to plan');
  assert.match(f, /db_standby {2}1 step failed to plan/);
  assert.match(f, /The plan failed on some hosts/);
  assert.doesNotMatch(f, /a apply/);
  r.stdin.write('a');
  await new Promise((res) => setImmediate(res));
  assert.equal(applied, 0);
});

test('summary: the table, endpoints, where secrets are, next commands (exact lines)', async () => {
  const r = render(<SummaryScreen inventory={{ ...inv, servers: { ...inv.servers, nfs_vip: '198.18.0.101' } }} ok secretsPath="/home/a/.local/state/ha-setup/clusters/prod/secrets.json" onClose={() => {}} />);
  const f = await waitForText(r.lastFrame, 'enter close');
  assert.ok(f.startsWith('✓ prod is set up\n\nServer table: cluster prod'), f);
  assert.match(f, /Database virtual IP +db_vip +198\.18\.0\.100/);
  assert.ok(
    f.includes(
      [
        'Endpoints',
        '  PostgreSQL (DB VIP)          198.18.0.100:5432',
        '  NFS share (NFS VIP)          198.18.0.101:/usr/safenet/ccc/packages',
        '  Load balancer (lb)           https://198.18.0.30:8181',
        'Secrets (the generated passwords, mode 0600; never printed)',
        '  /home/a/.local/state/ha-setup/clusters/prod/secrets.json',
        'Next',
        '  health and the last run      ha-setup status --cluster prod',
        '  failover drill               ha-setup drill db --cluster prod --fault stop-postgres',
        '  remove what ha-setup set up  ha-setup uninstall --cluster prod',
      ].join('\n'),
    ),
    f,
  );
});

test('the whole flow on fake hosts: check, runbooks, plan, review, run, summary; the servers changed', async () => {
  const { env } = tempHome();
  const pool = new FakePool({}, (t) => healthy(t));
  const confStep = defineStep({
    id: 'conf',
    title: 'Write the config',
    targets: ({ hosts }) => ['db_primary', 'db_standby'].filter((a) => hosts[a]),
    facts: {},
    plan: () => planOf({ kind: 'write', path: '/etc/ha.conf', content: 'ha = 1\n', mode: 0o644, previous: null }),
  });
  const rb: Runbook = { id: 'conf', title: 'Config', description: '', steps: [confStep] };
  let result: GuidedResult | undefined;
  const small: Inventory = { ...inv, servers: { db_primary: '198.18.0.11', db_standby: '198.18.0.12', db_vip: '198.18.0.100', lb: '198.18.0.30' } };
  const r = render(<GuidedFlow inventory={small} runbooks={[rb]} transport={(h) => pool.get(h.alias)} env={env} now={() => NOW} spinnerFrame="*" onExit={(x) => (result = x)} />);
  await waitForText(r.lastFrame, 'All 3 hosts are ready');
  r.stdin.write(keys.enter);
  await waitForText(r.lastFrame, '[x] Config');
  r.stdin.write(keys.enter);
  await waitForText(r.lastFrame, 'Plan for prod: 2 changes on 2 hosts', 5000);
  assert.equal(pool.get('db_primary').writes.length, 0, 'planning changed nothing');
  r.stdin.write('a');
  const end = await waitForText(r.lastFrame, '✓ prod is set up', 5000);
  assert.match(end, /Load balancer \(lb\) +https:\/\/198\.18\.0\.30:8181/);
  assert.match(end, new RegExp(`${env.HA_SETUP_HOME}/clusters/prod/secrets\\.json`));
  assert.deepEqual(pool.get('db_primary').files.get('/etc/ha.conf')?.content, 'ha = 1\n');
  assert.deepEqual(pool.get('db_standby').files.get('/etc/ha.conf')?.content, 'ha = 1\n');
  assert.equal(readCheckpoints('prod', env).steps.conf?.db_standby?.status, 'done');
  r.stdin.write(keys.enter);
  await waitFor(() => result, () => plain(r.lastFrame()));
  assert.equal(result!.ended, 'ran');
  assert.equal(result!.result?.ok, true);
});

test('endpoints follow the table and the options: the LB VIP when there are two load balancers, DB routing, custom ports and share path', () => {
  const inv = (servers: Record<string, string>, options: Record<string, unknown> = {}): Inventory => ({ cluster: 'c', topology: 'lb', servers, ssh: {}, options });
  assert.deepEqual(endpoints(inv({ db_vip: '198.18.0.100', lb: '198.18.0.17', lb_standby: '198.18.0.18', lb_vip: '198.18.0.102' })), [
    ['PostgreSQL (DB VIP)', '198.18.0.100:5432'],
    ['Load balancer (LB VIP)', 'https://198.18.0.102:8181'],
  ]);
  assert.deepEqual(
    endpoints(inv({ db_vip: '198.18.0.100', nfs_vip: '198.18.0.101', lb: '198.18.0.17' }, { postgres: { port: 5433, dbViaHaproxy: true }, haproxy: { appPort: 9443, dbPort: 16432 }, nfs: { exportDir: '/srv/share' } })),
    [
      ['PostgreSQL (DB VIP)', '198.18.0.100:5433'],
      ['PostgreSQL through HAProxy (lb)', '198.18.0.17:16432'],
      ['NFS share (NFS VIP)', '198.18.0.101:/srv/share'],
      ['Load balancer (lb)', 'https://198.18.0.17:9443'],
    ],
  );
});
