/**
 * The lab's proof: `ha-setup apply` deploys the facts runbook to a 3-host lab by its table,
 * over real SSH with strict host-key checking (the lab's known_hosts, no accept flag); a second
 * run changes nothing; fault injection changes what the runbook sees (a host whose sshd is
 * stopped, or whose link is cut, is reported unreachable by name); restore brings it back.
 * Server state is read with OpenSSH, not through the tool.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useLab, type Lab } from '../helpers/lab.js';
import { fault } from '../../source/lab/index.js';

const fixture = useLab({ hosts: 3 });
const HOSTS = ['db_primary', 'db_standby', 'nfs_primary'];

function withHome(lab: Lab): Lab {
  // Each test file gets its own ha-setup state (checkpoints, lock, transcripts).
  lab.env.HA_SETUP_HOME ??= mkdtempSync(join(tmpdir(), 'ha-deploy-home-'));
  return lab;
}

const marker = (lab: Lab, h: string) => lab.sh(h, 'cat /etc/ha-setup/cluster.json; stat -c %Y.%i /etc/ha-setup/cluster.json');

test('apply --runbook facts deploys to every lab host over SSH with strict host keys', async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  withHome(lab);
  const r = await lab.cli(['apply', '--config', lab.info.tableFile, '--runbook', 'facts', '--yes']);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  for (const h of HOSTS) {
    // The facts the tool reported are the host's own.
    assert.match(r.stdout, new RegExp(`${h}.*Debian GNU/Linux 12 \\(bookworm\\), systemd, apt`));
    const out = await marker(lab, h);
    const json = JSON.parse(out.slice(0, out.lastIndexOf('}') + 1));
    assert.deepEqual(json, { cluster: 'lab', alias: h, address: lab.host(h).address, managedBy: 'ha-setup' });
  }
});

test('a second apply plans nothing and touches no file', async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  withHome(lab);
  const before = await Promise.all(HOSTS.map((h) => marker(lab, h)));
  const plan = await lab.cli(['plan', '--config', lab.info.tableFile, '--runbook', 'facts', '--json']);
  assert.equal(plan.code, 0, plan.stderr);
  const data = JSON.parse(plan.stdout) as { hosts: Record<string, { steps: { id: string; status: string; actions: unknown[] }[] }> };
  assert.deepEqual(Object.keys(data.hosts).sort(), [...HOSTS].sort());
  for (const h of HOSTS) for (const s of data.hosts[h]!.steps) assert.equal(s.status, 'skip', `${h} ${s.id}`);
  const r = await lab.cli(['apply', '--config', lab.info.tableFile, '--runbook', 'facts', '--yes']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await Promise.all(HOSTS.map((h) => marker(lab, h))), before);
});

test('a host whose sshd is stopped is reported unreachable by name; restore fixes it', async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  withHome(lab);
  await fault('db_standby', 'stop-service', 'ssh', { env: lab.env });
  try {
    const r = await lab.cli(['apply', '--config', lab.info.tableFile, '--runbook', 'facts', '--yes']);
    assert.equal(r.code, 1);
    const all = `${r.stdout}\n${r.stderr}`;
    assert.match(all, /db_standby.*connection refused by 198\.18\.0\.12:22/);
    assert.match(all, /ha-setup apply --config .* --yes/, 'the resume command is shown');
    // The other hosts were still reached in that step.
    assert.match(all, /db_primary.*Debian GNU\/Linux 12/);
  } finally {
    await fault('db_standby', 'restore', undefined, { env: lab.env });
  }
  const again = await lab.cli(['apply', '--config', lab.info.tableFile, '--runbook', 'facts', '--yes']);
  assert.equal(again.code, 0, again.stderr);
});

test('a host whose link is cut is reported unreachable by name within the connect timeout', async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  withHome(lab);
  await fault('nfs_primary', 'cut-link', undefined, { env: lab.env });
  try {
    const t0 = Date.now();
    const r = await lab.cli(['status', '--config', lab.info.tableFile, '--json']);
    const ms = Date.now() - t0;
    assert.equal(r.code, 1);
    const status = JSON.parse(r.stdout) as { hosts: { alias: string; reachable: boolean; error?: string }[] };
    const byAlias = Object.fromEntries(status.hosts.map((h) => [h.alias, h]));
    assert.equal(byAlias.db_primary!.reachable, true);
    assert.equal(byAlias.db_standby!.reachable, true);
    assert.equal(byAlias.nfs_primary!.reachable, false);
    assert.match(byAlias.nfs_primary!.error!, /198\.18\.0\.13/);
    assert.ok(ms < 15_000, `status took ${ms} ms`);
  } finally {
    await fault('nfs_primary', 'restore', undefined, { env: lab.env });
  }
});
