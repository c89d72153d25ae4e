/**
 * What the uninstall screen lists per host comes from the plan's action titles
 * (classifyUninstallAction): every action the runbook plans must land in the right list, never
 * unnoticed in "also run". The plans are the runbook's own, from the fixture of an applied
 * cluster plus the firewall and purge cases. Also: the firewall fact runs for real (read-only)
 * under bash -s with set -euo pipefail on this machine, whatever firewall tools it has.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { contextOptions, createHostContext, tableOf } from '../../source/engine/context.js';
import { Secret } from '../../source/engine/shell.js';
import type { Action, FactMap, Step } from '../../source/engine/step.js';
import type { ExecResult } from '../../source/transport/types.js';
import type { NfsClientFacts } from '../../runbooks/lib/nfs-facts.js';
import type { OsInfo } from '../../runbooks/lib/host-facts.js';
import {
  classifyUninstallAction,
  firewallRemnantsFact,
  firewallUninstallPlan,
  parseFirewallRemnants,
  parseInstalled,
  summarizeUninstall,
  uninstallRunbook,
  withPurgeData,
} from '../../runbooks/uninstall.js';

const fx = JSON.parse(readFileSync(new URL('../../../test/fixtures/nfs/uninstall-applied.json', import.meta.url), 'utf8')) as {
  servers: Record<string, string>;
  clients: Record<string, NfsClientFacts>;
  installed: Record<string, string[]>;
};
const DEBIAN: OsInfo = { id: 'debian', family: 'debian', versionId: '12', major: 12, prettyName: 'Debian GNU/Linux 12 (bookworm)', hostname: 'h', kernel: '6.1.0', init: 'systemd', packageManager: 'apt' };
const table = tableOf({ servers: fx.servers });
const b64 = (s: string): string => Buffer.from(s).toString('base64');
const hex = (s: string): string => Buffer.from(s).toString('hex');

/** Every action of the fixture cluster's uninstall, with the purge, per host. */
function actionsByHost(): Map<string, Action[]> {
  const options = withPurgeData({}, 'fixture-lb');
  const out = new Map<string, Action[]>();
  for (const step of uninstallRunbook.steps as Step<FactMap>[]) {
    for (const alias of step.targets({ hosts: table.hosts, options })) {
      const ctx = createHostContext({ host: table.hosts[alias]!, table, options: contextOptions({ cluster: 'fixture-lb', options }), secret: (n) => new Secret(n, 'x') });
      const defs = typeof step.facts === 'function' ? step.facts(ctx) : step.facts;
      const values: Record<string, unknown> = {};
      for (const key of Object.keys(defs)) {
        if (key === 'os') values.os = DEBIAN;
        else if (key === 'cl') values.cl = fx.clients[alias];
        else if (key === 'inst') values.inst = parseInstalled((fx.installed[alias] ?? []).join('\n'));
        else if (key === 'fw') values.fw = parseFirewallRemnants('');
      }
      out.set(alias, [...(out.get(alias) ?? []), ...step.plan(values as never, ctx).actions]);
    }
  }
  return out;
}

test('every action of an applied cluster lands in its list: unmount, stop, restore, remove, edit, data', () => {
  const by = actionsByHost();
  const summary = (alias: string) => Object.fromEntries(summarizeUninstall(by.get(alias)!).map((g) => [g.kind, g.items]));
  assert.deepEqual(summary('app1'), {
    unmount: ['/usr/safenet/ccc/packages'],
    edit: ["/etc/fstab: ha-setup's entry for /usr/safenet/ccc/packages removed"],
  });
  assert.deepEqual(summary('lb'), {
    stop: ['haproxy', 'keepalived'],
    restore: ['/etc/haproxy/haproxy.cfg'],
    edit: ["/etc/hosts: ha-setup's lines removed"],
  });
  assert.deepEqual(summary('db_primary'), {
    stop: ['keepalived', 'postgresql@15-main'],
    restore: ['/etc/postgresql/15/main/pg_hba.conf'],
    remove: ['/etc/ha-setup/pg-tls', '/etc/postgresql/15/main/conf.d/ha-setup-ssl.conf', '/etc/postgresql/15/main/conf.d/ha-setup.conf', '/etc/sysctl.d/90-ha-setup-pg.conf', '/etc/ha-setup'],
    edit: ["/etc/postgresql/15/main/postgresql.conf: ha-setup's include_dir line removed"],
    purge: ['/var/lib/postgresql/15/main'],
  });
  const nfs = summary('nfs_primary');
  assert.deepEqual(nfs.stop, ['keepalived', 'ha-setup-nfs-replicate.timer', 'nfs-server']);
  assert.deepEqual(nfs.edit, ["/root/.ssh/authorized_keys: the replication key's line removed"]);
  assert.deepEqual(nfs.purge, ['/usr/safenet/ccc/packages and /var/lib/ha-setup/nfs-replaced']);
  assert.deepEqual(nfs.other, ['systemctl daemon-reload']);
  // Nothing but daemon-reload falls through to "also run".
  for (const [alias, actions] of by) {
    for (const a of actions) {
      const c = classifyUninstallAction(a);
      if (c.kind === 'other') assert.equal(c.item, 'systemctl daemon-reload', `${alias}: ${a.title}`);
    }
  }
});

test('firewall rules and the stop-only NFS dependencies have their own lists', () => {
  const fw = firewallUninstallPlan(parseFirewallRemnants(`UFW_RULES=${b64(`### tuple ### allow tcp 8181 0.0.0.0/0 any 0.0.0.0/0 in comment=${hex('ha-setup-haproxy')}`)}\n`));
  assert.deepEqual(summarizeUninstall(fw.actions), [{ kind: 'firewall', items: ['ufw: allow proto tcp from any to any port 8181 (ha-setup-haproxy)'] }]);
  assert.deepEqual(classifyUninstallAction({ kind: 'run', title: 'stop rpcbind (started with the NFS server, not enabled)', script: 'systemctl stop rpcbind' }), { kind: 'stop', item: 'rpcbind (stop only)' });
  assert.deepEqual(classifyUninstallAction({ kind: 'run', title: 'remove /etc/systemd/system/x.service.d if nothing else is in it', script: 'rmdir' }), { kind: 'remove', item: '/etc/systemd/system/x.service.d (if empty)' });
});

test('the firewall fact runs read-only under set -euo pipefail here and parses', (t) => {
  const r = spawnSync('bash', ['-s'], { input: `set -euo pipefail\n${firewallRemnantsFact.script}\n`, encoding: 'utf8' });
  if (r.error) return t.skip('bash not available');
  assert.equal(r.status, 0, r.stderr);
  const res: ExecResult = { code: 0, stdout: r.stdout, stderr: r.stderr, durationMs: 0 };
  const f = firewallRemnantsFact.parse(r.stdout, res);
  // This machine is not a server of any cluster: none of ha-setup's rules are here.
  assert.deepEqual([f.ufw, f.nft, f.nftTable, f.iptables, f.ip6tables], [[], [], false, [], []]);
});
