/**
 * The uninstall screen (source/ui/UninstallScreen.tsx) with ink-testing-library: exact frames of
 * the per-host list, the question, the purge with a wrong and then the right cluster name, and
 * the answers it gives. The plans shown are made by the uninstall runbook's own plan functions
 * from facts like those the lab's servers report after apply (test/lab/uninstall.test.ts), so
 * the lines are the runbook's real action titles.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanup, render } from 'ink-testing-library';
import { contextOptions, createHostContext, tableOf } from '../../source/engine/context.js';
import { Secret } from '../../source/engine/shell.js';
import type { Plan } from '../../source/engine/step.js';
import type { OsInfo } from '../../runbooks/lib/host-facts.js';
import {
  firewallUninstallPlan,
  keepalivedUninstallPlan,
  leftoverPlan,
  parseFirewallRemnants,
  parseInstalled,
  pgUninstallPlan,
  withPurgeData,
} from '../../runbooks/uninstall.js';
import { UninstallScreen, type UninstallChoice } from '../../source/ui/UninstallScreen.js';
import type { HostPlan } from '../../source/ui/wizard/plan-review.js';
import { ThemeProvider } from '../../source/ui/theme.js';
import { keys, plain, settle, waitFor, waitForText } from './helpers.js';

afterEach(() => cleanup());

const CLUSTER = 'lab-uninstall';
const DEBIAN: OsInfo = { id: 'debian', family: 'debian', versionId: '12', major: 12, prettyName: 'Debian GNU/Linux 12 (bookworm)', hostname: 'h', kernel: '6.1.0', init: 'systemd', packageManager: 'apt' };
const table = tableOf({ servers: { db_primary: '198.18.0.11', db_standby: '198.18.0.12', db_vip: '198.18.0.100', lb: '198.18.0.13', app1: '198.18.0.14' } });
const ctxFor = (alias: string) =>
  createHostContext({ host: table.hosts[alias]!, table, options: contextOptions({ cluster: CLUSTER, options: withPurgeData({}, CLUSTER) }), secret: (n) => new Secret(n, 'x'.repeat(24)) });

const hex = (s: string): string => Buffer.from(s).toString('hex');
const b64 = (s: string): string => Buffer.from(s).toString('base64');
const ufw = (lines: string[]) => parseFirewallRemnants(`UFW_RULES=${b64(lines.join('\n'))}\n`);

function hostPlan(host: string, plans: [string, Plan][]): HostPlan {
  const steps = plans.map(([stepId, p]) => ({ stepId, title: stepId, actions: p.actions, diffs: [], ...(p.reason ? { reason: p.reason } : {}) }));
  const all = steps.flatMap((s) => s.actions);
  return { host, steps, commands: all.filter((a) => a.kind === 'run').length, writes: all.filter((a) => a.kind === 'write').length, diffs: 0, errors: 0 };
}

/** The plan of the lab's cluster after apply (made with the purge, as the command makes it). */
function labPlan(): HostPlan[] {
  const dropIn = '/etc/systemd/system/postgresql@15-main.service.d/ha-setup-fence.conf';
  const primary = parseInstalled(
    [
      'BK 0 /var/lib/ha-setup/backups/etc/postgresql/15/main/pg_hba.conf.20261122T032955Z 0 1',
      'MANAGED /etc/keepalived/keepalived.conf',
      `MANAGED ${dropIn}`,
      'OWN /etc/postgresql/15/main/conf.d/ha-setup.conf',
      'STATE /var/lib/ha-setup/keepalived',
      'UNIT keepalived active enabled',
      'UNIT postgresql@15-main active enabled',
    ].join('\n'),
  );
  return [
    hostPlan('db_primary', [
      ['uninstall.keepalived', keepalivedUninstallPlan(primary)],
      ['uninstall.primary', pgUninstallPlan({ os: DEBIAN, inst: primary }, ctxFor('db_primary'))],
      ['uninstall.firewall', firewallUninstallPlan(ufw([`### tuple ### allow tcp 5432 0.0.0.0/0 any 198.18.0.14 in comment=${hex('ha-setup-pg')}`, `### tuple ### allow vrrp any 0.0.0.0/0 any 198.18.0.12 in comment=${hex('ha-setup-vrrp')}`]))],
    ]),
    hostPlan('lb', [
      ['uninstall.haproxy', { actions: [{ kind: 'run', title: 'stop and disable haproxy', script: 'systemctl disable --now haproxy' }, { kind: 'run', title: 'restore /etc/haproxy/haproxy.cfg from /var/lib/ha-setup/backups/etc/haproxy/haproxy.cfg.20261122T033005Z (as it was before ha-setup)', script: 'cp' }] }],
      ['uninstall.leftovers', leftoverPlan(parseInstalled(`OWN /etc/ha-setup\nHOSTS=${b64('127.0.0.1\tlocalhost\n198.18.0.13\tlb\t# added by ha-setup (os-prep)\n')}`))],
    ]),
    hostPlan('app1', [['uninstall.leftovers', leftoverPlan(parseInstalled(''))]]),
  ];
}

function mount(props: { purgeChosen?: boolean; hosts?: HostPlan[] } = {}) {
  const choices: UninstallChoice[] = [];
  const r = render(
    <ThemeProvider color={false}>
      <UninstallScreen cluster={CLUSTER} hosts={props.hosts ?? labPlan()} purgeChosen={props.purgeChosen} onChoice={(c) => choices.push(c)} />
    </ThemeProvider>,
  );
  return { r, choices };
}

const LIST = [
  'Uninstall lab-uninstall: what each host gets back',
  'db_primary',
  '  stop, disable keepalived',
  '                postgresql@15-main',
  '  restore       /etc/postgresql/15/main/pg_hba.conf',
  '  remove        /etc/keepalived/keepalived.conf',
  '                /var/lib/ha-setup/keepalived',
  '                /etc/systemd/system/postgresql@15-main.service.d/ha-setup-fence.conf',
  '                /etc/postgresql/15/main/conf.d/ha-setup.conf',
  '                /etc/systemd/system/postgresql@15-main.service.d (if empty)',
  '  delete rule   ufw: allow proto tcp from 198.18.0.14 to any port 5432 (ha-setup-pg)',
  '                ufw: allow proto vrrp from 198.18.0.12 to any (ha-setup-vrrp)',
  '  also run      systemctl daemon-reload',
];

test('the list per host and the question (data kept unless p)', async () => {
  const { r } = mount();
  await settle();
  assert.equal(
    plain(r.lastFrame()),
    [
      ...LIST,
      '  data kept     /var/lib/postgresql/15/main',
      'lb',
      '  stop, disable haproxy',
      '  restore       /etc/haproxy/haproxy.cfg',
      '  remove        /etc/ha-setup',
      "  edit          /etc/hosts: ha-setup's lines removed",
      'app1',
      '  nothing to undo',
      '',
      'Data directories are kept; p deletes them too (asks for the cluster name).',
      'Uninstall lab-uninstall?',
      '',
      'y/enter uninstall · p also delete the data · n/esc cancel',
    ].join('\n'),
  );
});

test('y uninstalls with the data kept; enter too; n and esc cancel', async () => {
  for (const [key, want] of [
    ['y', { purge: false }],
    [keys.enter, { purge: false }],
    ['n', 'cancel'],
    [keys.escape, 'cancel'],
  ] as const) {
    const { r, choices } = mount();
    await settle();
    r.stdin.write(key);
    await waitFor(() => choices.length === 1, () => plain(r.lastFrame()));
    assert.deepEqual(choices, [want], JSON.stringify(key));
    cleanup();
  }
});

test('p: the purge asks for the cluster name; a wrong name deletes nothing and asks again; the right one confirms', async () => {
  const { r, choices } = mount();
  await settle();
  r.stdin.write('p');
  const purgeHead = [
    ...LIST,
    '  data kept     /var/lib/postgresql/15/main',
    'lb',
    '  stop, disable haproxy',
    '  restore       /etc/haproxy/haproxy.cfg',
    '  remove        /etc/ha-setup',
    "  edit          /etc/hosts: ha-setup's lines removed",
    'app1',
    '  nothing to undo',
    '',
    'Delete the data directories of lab-uninstall? This cannot be undone:',
    '  db_primary  /var/lib/postgresql/15/main',
  ];
  await waitForText(r.lastFrame, 'Type the cluster name');
  assert.equal(plain(r.lastFrame()), [...purgeHead, 'Type the cluster name (lab-uninstall) to confirm:', '', 'enter confirm · esc back'].join('\n'));

  r.stdin.write('lab');
  await waitForText(r.lastFrame, 'confirm: lab');
  r.stdin.write(keys.enter);
  await waitForText(r.lastFrame, 'is not the cluster');
  assert.equal(
    plain(r.lastFrame()),
    [
      ...purgeHead,
      'Type the cluster name (lab-uninstall) to confirm:',
      '✗ "lab" is not the cluster\'s name: nothing deleted. Type lab-uninstall exactly (esc: back).',
      '',
      'enter confirm · esc back',
    ].join('\n'),
  );
  assert.deepEqual(choices, [], 'a wrong name chose nothing');

  r.stdin.write(CLUSTER);
  await waitForText(r.lastFrame, `confirm: ${CLUSTER}`);
  r.stdin.write(keys.enter);
  await waitFor(() => choices.length === 1, () => plain(r.lastFrame()));
  assert.deepEqual(choices, [{ purge: true }]);
});

test('esc in the purge goes back to the question, which still keeps the data', async () => {
  const { r, choices } = mount();
  await settle();
  r.stdin.write('p');
  await waitForText(r.lastFrame, 'Type the cluster name');
  r.stdin.write(keys.escape);
  await waitForText(r.lastFrame, 'Uninstall lab-uninstall?');
  assert.doesNotMatch(plain(r.lastFrame()), /Type the cluster name/);
  r.stdin.write('y');
  await waitFor(() => choices.length === 1, () => plain(r.lastFrame()));
  assert.deepEqual(choices, [{ purge: false }]);
});

test('--purge-data given: the data directories are marked for deletion and y confirms the purge; no p', async () => {
  const { r, choices } = mount({ purgeChosen: true });
  await settle();
  const f = plain(r.lastFrame());
  assert.ok(f.includes(['  DELETE data   /var/lib/postgresql/15/main', 'lb'].join('\n')), f);
  assert.ok(
    f.endsWith(['The data directories above WILL BE DELETED (--purge-data lab-uninstall).', 'Uninstall lab-uninstall?', '', 'y/enter uninstall and delete the data · n/esc cancel'].join('\n')),
    f,
  );
  r.stdin.write('p');
  await settle();
  assert.doesNotMatch(plain(r.lastFrame()), /Type the cluster name/);
  r.stdin.write('y');
  await waitFor(() => choices.length === 1, () => plain(r.lastFrame()));
  assert.deepEqual(choices, [{ purge: true }]);
});

test('no data directory in the plan: no purge offered', async () => {
  const { r } = mount({ hosts: labPlan().slice(1) });
  await settle();
  const f = plain(r.lastFrame());
  assert.ok(f.endsWith(['app1', '  nothing to undo', '', 'Uninstall lab-uninstall?', '', 'y/enter uninstall · n/esc cancel'].join('\n')), f);
});
