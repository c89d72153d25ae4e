/**
 * Plan fixture of the uninstall runbook (plan level; not run on servers yet): a cluster after
 * apply, given as the raw output of the uninstall fact script per host (so the parser is
 * exercised too), in -> per step and host the commands and files out, in the order of issue 6.
 * Plus: data kept unless --purge-data with the cluster's name typed; the include_dir removal
 * run with real sed on a copy of postgresql.conf; the fstab edit; idempotence.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { contextOptions, createHostContext, tableOf } from '../../source/engine/context.js';
import { Secret } from '../../source/engine/shell.js';
import type { Action, FactMap, HostContext, Plan, Step } from '../../source/engine/step.js';
import type { NfsClientFacts } from '../../runbooks/lib/nfs-facts.js';
import type { OsInfo } from '../../runbooks/lib/host-facts.js';
import { nfsUninstallPlan, parseInstalled, pgUninstallPlan, uninstallRunbook, unmountPlan, withPurgeData } from '../../runbooks/uninstall.js';

const fx = JSON.parse(readFileSync(new URL('../../../test/fixtures/nfs/uninstall-applied.json', import.meta.url), 'utf8')) as {
  servers: Record<string, string>;
  clients: Record<string, NfsClientFacts>;
  installed: Record<string, string[]>;
  expect: Record<string, string[]>;
};

const DEBIAN: OsInfo = { id: 'debian', family: 'debian', versionId: '12', major: 12, prettyName: 'Debian GNU/Linux 12 (bookworm)', hostname: 'h', kernel: '6.1.0', init: 'systemd', packageManager: 'apt' };
const table = tableOf({ servers: fx.servers });
const ctxFor = (alias: string, options: Record<string, unknown> = {}): HostContext =>
  createHostContext({ host: table.hosts[alias]!, table, options: contextOptions({ cluster: 'fixture-lb', options }), secret: (n) => new Secret(n, 'x'.repeat(24)) });

const show = (a: Action): string => (a.kind === 'run' ? a.script : `write ${a.path}`);

function planAll(options: Record<string, unknown> = {}): Map<string, Plan> {
  const out = new Map<string, Plan>();
  for (const step of uninstallRunbook.steps as Step<FactMap>[]) {
    for (const alias of step.targets({ hosts: table.hosts, options })) {
      const ctx = ctxFor(alias, options);
      const defs = typeof step.facts === 'function' ? step.facts(ctx) : step.facts;
      const values: Record<string, unknown> = {};
      for (const key of Object.keys(defs)) {
        if (key === 'os') values.os = DEBIAN;
        else if (key === 'cl') values.cl = fx.clients[alias];
        else if (key === 'inst') values.inst = parseInstalled((fx.installed[alias] ?? []).join('\n'));
        else throw new Error(`no fixture for fact ${key}`);
      }
      out.set(`${step.id}@${alias}`, step.plan(values as never, ctx));
    }
  }
  return out;
}

test('the order of issue 6: unmount on every app server, then HAProxy, keepalived, NFS, standby, primary, leftovers', () => {
  assert.deepEqual(uninstallRunbook.steps.map((s) => s.id), ['uninstall.unmount', 'uninstall.haproxy', 'uninstall.keepalived', 'uninstall.nfs', 'uninstall.standby', 'uninstall.primary', 'uninstall.leftovers']);
  const unmount = uninstallRunbook.steps[0]!;
  assert.deepEqual(unmount.targets({ hosts: table.hosts, options: {} }), ['app1', 'app2']);
});

test('plan fixture (plan level only, not run on servers): every step and host of an applied cluster', () => {
  const plans = planAll();
  for (const [key, want] of Object.entries(fx.expect)) {
    const p = plans.get(key);
    assert.ok(p, `no plan for ${key}`);
    assert.deepEqual(p.actions.map(show), want, key);
  }
  // Everything not listed plans nothing, with a reason.
  for (const [key, p] of plans) {
    if (key in fx.expect) continue;
    assert.deepEqual(p.actions.map(show), [], `${key} should have nothing to do`);
    assert.ok(p.reason, `${key}: a reason`);
  }
  assert.match(plans.get('uninstall.primary@db_primary')!.reason!, /data directory \/var\/lib\/postgresql\/15\/main is kept/);
  assert.match(plans.get('uninstall.nfs@nfs_primary')!.reason!, /shared data in \/usr\/safenet\/ccc\/packages is kept/);
});

test('fstab: only ha-setup entry removed; authorized_keys: only the replication line removed', () => {
  const plans = planAll();
  const fstab = plans.get('uninstall.unmount@app1')!.actions.find((a) => a.kind === 'write')!;
  assert.equal(fstab.kind === 'write' && fstab.content, 'UUID=abcd / ext4 errors=remount-ro 0 1\n');
  const keys = plans.get('uninstall.nfs@nfs_primary')!.actions.find((a) => a.kind === 'write')!;
  assert.equal(keys.kind === 'write' && keys.content, 'ssh-ed25519 AAAAadmin admin@jump\n');
  assert.equal(keys.kind === 'write' && keys.mode, 0o600);
  const hosts = plans.get('uninstall.leftovers@lb')!.actions[0]!;
  assert.equal(hosts.kind === 'write' && hosts.content, '127.0.0.1\tlocalhost\n');
  // After the unmount, nothing more to do there.
  const after = unmountPlan({ ...fx.clients.app1!, mounted: null, fstab: 'UUID=abcd / ext4 errors=remount-ro 0 1\n' }, ctxFor('app1'));
  assert.deepEqual(after.actions, []);
});

test('--purge-data: deletes the data directories only with the cluster name typed', () => {
  const inst = parseInstalled('');
  assert.throws(() => nfsUninstallPlan(inst, ctxFor('nfs_primary', withPurgeData({}, 'fixture'))), /^Error: --purge-data: the name typed \("fixture"\) is not this cluster's name "fixture-lb"/);
  const nfs = nfsUninstallPlan(inst, ctxFor('nfs_primary', withPurgeData({}, 'fixture-lb')));
  assert.deepEqual(nfs.actions.map(show), ['rm -rf -- /usr/safenet/ccc/packages /var/lib/ha-setup/nfs-replaced']);
  const pg = pgUninstallPlan({ os: DEBIAN, inst }, ctxFor('db_standby', withPurgeData({}, 'fixture-lb')));
  assert.deepEqual(pg.actions.map(show), ['rm -rf -- /var/lib/postgresql/15/main']);
  // Without the flag: nothing deleted, the reason says the data is kept.
  assert.deepEqual(pgUninstallPlan({ os: DEBIAN, inst }, ctxFor('db_standby')).actions, []);
});

test('the kernel NFS server keeps running when it serves other exports (only ha-setup\'s is withdrawn)', () => {
  const inst = parseInstalled(['OWN /etc/exports.d/ha-setup.exports', 'UNIT nfs-server active enabled', 'OTHER_EXPORTS=2'].join('\n'));
  const p = nfsUninstallPlan(inst, ctxFor('nfs_standby'));
  assert.deepEqual(p.actions.map(show), ['rm -rf -- /etc/exports.d/ha-setup.exports', 'exportfs -ra']);
  assert.match(p.reason!, /nfs-server keeps running: 2 other export/);
});

test("the include_dir removal (real sed on a copy) removes exactly ha-setup's two lines", (t) => {
  const sed = fx.expect['uninstall.primary@db_primary']!.find((c) => c.startsWith('sed '))!;
  const dir = mkdtempSync(join(tmpdir(), 'uninstall-sed-'));
  try {
    const file = join(dir, 'postgresql.conf');
    const original = "data_directory = '/var/lib/postgresql/15/main'\nport = 5432\n";
    const b64 = (fx.installed.db_primary!.find((l) => l.startsWith('PGCONF '))!.split(' ')[2])!;
    writeFileSync(file, Buffer.from(b64, 'base64').toString('utf8').replace("data_directory = '/var/lib/postgresql/15/main'\n", original));
    const r = spawnSync('bash', ['-c', sed.replace('/etc/postgresql/15/main/postgresql.conf', file)], { encoding: 'utf8' });
    if (r.error) return t.skip('bash/sed not available');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readFileSync(file, 'utf8'), `${original}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('idempotent: a file already restored, or removed, plans nothing', () => {
  const inst = parseInstalled(
    [
      'BK 0 /var/lib/ha-setup/backups/etc/ganesha/ganesha.conf.20261121T100000Z 1 1',
      'BK 1 /var/lib/ha-setup/backups/etc/ganesha/ganesha.conf.20261121T110000Z 0 1',
      'BK 1 /var/lib/ha-setup/backups/etc/exports.d/ha-setup.exports.20261121T101000Z 0 0',
    ].join('\n'),
  );
  assert.deepEqual(inst.backups.map((b) => [b.path, b.exists, b.sameAsOldest]), [
    ['/etc/exports.d/ha-setup.exports', false, false],
    ['/etc/ganesha/ganesha.conf', true, true],
  ]);
  assert.deepEqual(nfsUninstallPlan(inst, ctxFor('nfs_primary')).actions, []);
});
