/**
 * The full topology A in the lab (issue 7, proof 1): `ha-setup lab up --topology lb` brings up 7
 * hosts and writes a full server table (lab.yaml: db pair + DB VIP, NFS pair + NFS VIP, app1,
 * app2, lb); `ha-setup apply --config <that table> --yes` runs every runbook in order, with no
 * question asked; then the guides' acceptance checks, asserted on the servers over OpenSSH (and
 * from this machine through the lb), never from the tool's own report:
 *  - keepalived on both pairs: the DB VIP bound on db_primary only, the NFS VIP on nfs_primary
 *    only, keepalived active and enabled on the four nodes;
 *  - the standby streams (pg_stat_replication on the primary, pg_stat_wal_receiver on the
 *    standby); the guides' replication test: a table created on the primary is listed on the
 *    standby, dropped, and CREATE TABLE on the standby fails "in a read-only transaction";
 *  - app1 and app2 reach PostgreSQL through the DB VIP with TLS (sslmode=verify-full, the CA
 *    from a DB node, the app user's generated password) and land on db_primary;
 *  - the NFS share: a file written from app1 through the NFS VIP is read from app2;
 *  - HAProxy on lb balances new TLS sessions on 8181 over app1 and app2 (the app is the
 *    stand-in TLS service of test/fixtures/haproxy/standin-tls.py, as in haproxy.test.ts);
 * then a second run plans nothing (plan --json: every host step "skip" with a reason) and a
 * second apply changes nothing.
 *
 * The table is lab.yaml as `lab up` wrote it, unchanged. It carries what this machine needs for
 * NFS (no kernel NFS here, see /work/shared/docs/lab.md): options.nfs server ganesha, exportDir
 * /srv/nfs (a file-handle-capable mount in every lab host), a 10 s grace period, mountClients
 * false (no `mount -t nfs` possible; the app servers use the libnfs clients instead); the file
 * is checked to be a full (not partial) 7-role table first.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { useLab, type Lab } from '../helpers/lab.js';
import { appClient, pgLocal, type AppClient } from '../helpers/pg.js';
import { waitFor } from '../../source/lab/exec.js';
import { RUNBOOKS } from '../../runbooks/index.js';

const fixture = useLab({ topology: 'lb' });

const CLI = fileURLToPath(new URL('../../../bin/ha-setup.js', import.meta.url));
const STANDIN = readFileSync(new URL('../../../test/fixtures/haproxy/standin-tls.py', import.meta.url), 'utf8');
const ROLES = ['db_primary', 'db_standby', 'nfs_primary', 'nfs_standby', 'app1', 'app2', 'lb'];
const READ_ONLY = 'cannot execute CREATE TABLE in a read-only transaction';
/** The lab's NFS settings (no kernel NFS on this machine). */
const LAB_NFS = { server: 'ganesha', exportDir: '/srv/nfs', graceSec: 10, mountClients: false };

interface Table {
  cluster: string;
  topology: string;
  partial?: boolean;
  servers: Record<string, string>;
  options?: Record<string, unknown>;
}

/** What the tests of this file share, in file order. */
const state: { file?: string; table?: Table; applied?: boolean; app?: Record<'app1' | 'app2', AppClient> } = {};

function setup(lab: Lab): { file: string; table: Table } {
  if (state.file && state.table) return { file: state.file, table: state.table };
  const dir = mkdtempSync(join(tmpdir(), 'ha-full-stack-'));
  lab.env.HA_SETUP_HOME = join(dir, 'home');
  const table = parse(readFileSync(lab.info.tableFile, 'utf8')) as Table;
  // lab.yaml carries the lab's NFS settings itself (a new user applies it as it is).
  assert.deepEqual(table.options?.nfs, LAB_NFS);
  const file = join(dir, 'full-stack.yaml');
  writeFileSync(file, stringify(table));
  state.file = file;
  state.table = table;
  return { file, table };
}

/** `ha-setup <args>` with the lab's environment; no stdin (nothing may be asked). */
function cli(lab: Lab, args: string[], timeoutMs = 15 * 60_000): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [CLI, ...args], { env: lab.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 255, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

const out = (r: { stdout: string; stderr: string }): string => `${r.stdout}\n${r.stderr}`;
const holds = async (lab: Lab, alias: string, vip: string): Promise<boolean> =>
  (await lab.sh(alias, `ip -o addr show | grep -cF ' ${vip}/' || true`)).trim() !== '0';

async function startStandin(lab: Lab, alias: string): Promise<void> {
  await lab.sh(
    alias,
    [
      'set -e',
      'mkdir -p /opt/standin && cd /opt/standin',
      `cat > standin.py <<'PYEOF'\n${STANDIN}PYEOF`,
      `[ -f key.pem ] || openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=${alias} -days 2 -keyout key.pem -out cert.pem 2>/dev/null`,
      'systemctl stop standin-tls 2>/dev/null || true; systemctl reset-failed standin-tls 2>/dev/null || true',
      `systemd-run --unit=standin-tls --collect python3 /opt/standin/standin.py ${alias} 8181 /opt/standin/cert.pem /opt/standin/key.pem`,
      'for i in $(seq 1 50); do ss -Hltn "sport = :8181" | grep -q . && exit 0; sleep 0.1; done; echo "stand-in did not listen" >&2; exit 1',
    ].join('\n'),
  );
}

/** One new TLS connection to the lb's 8181 from this machine: the backend that answered. */
function through(lb: string): string | null {
  const r = spawnSync('openssl', ['s_client', '-connect', `${lb}:8181`, '-ign_eof'], { input: 'GET / HTTP/1.0\r\n\r\n', encoding: 'utf8', timeout: 10_000 });
  return /^backend (\S+)/m.exec(r.stdout)?.[1] ?? null;
}

/** Retries a libnfs client command while the server is in its grace period or starting. */
async function nfsTry(lab: Lab, alias: string, script: string, ms = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
  const end = Date.now() + ms;
  for (;;) {
    const r = await lab.ssh(alias, script);
    if (r.code === 0 || Date.now() > end) return r;
    await new Promise((res) => setTimeout(res, 1000));
  }
}

test('the full topology A from lab.yaml, non-interactively: apply --config --yes runs every runbook in order', { timeout: 20 * 60_000 }, async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  const { file, table } = setup(lab);
  // lab.yaml is a full table of the 7 roles and both VIPs, not a partial one.
  assert.equal(table.partial, undefined, 'lab.yaml of a 7-host lab is a full table');
  assert.equal(table.topology, 'lb');
  assert.deepEqual(Object.keys(table.servers).sort(), [...ROLES, 'db_vip', 'nfs_vip'].sort());
  for (const role of ROLES) assert.equal(table.servers[role], lab.host(role).address, role);

  // The app (what HAProxy passes TLS through to) runs on the app servers before the apply.
  await Promise.all(['app1', 'app2'].map((a) => startStandin(lab, a)));

  const r = await cli(lab, ['apply', '--config', file, '--yes']);
  t.diagnostic(`full apply: ${(r.ms / 1000).toFixed(1)} s`);
  assert.equal(r.code, 0, out(r));
  assert.match(r.stdout, /✓ Done in [\dm.s]+: \d+ host steps changed, \d+ unchanged\./);
  // Every registered runbook, in the registry's order; the steps started in that order.
  const head = /^ha-setup apply: run \S+, \d+ steps \(([^)]*)\)$/m.exec(r.stdout);
  assert.ok(head, r.stdout.slice(0, 2000));
  assert.deepEqual(head[1]!.split(', '), RUNBOOKS.map((rb) => rb.id));
  const order = RUNBOOKS.flatMap((rb) => rb.steps.map((s) => s.id));
  const started = [...r.stdout.matchAll(/^▸ (\S+): /gm)].map((m) => m[1]!);
  assert.deepEqual(started, order.filter((id) => started.includes(id)), 'steps started in runbook order');
  // Every runbook with work in topology A ran (db-routing is for topology C, app-scale for k8s;
  // nfs-mount has no target in the lab, whose table says mountClients: false: no NFS client here).
  for (const rb of RUNBOOKS.filter((x) => x.id !== 'db-routing' && x.id !== 'app-scale' && x.id !== 'nfs-mount')) {
    assert.ok(rb.steps.some((s) => started.includes(s.id)), `runbook ${rb.id} ran no step`);
  }
  assert.doesNotMatch(r.stdout, /left out step/);
  state.applied = true;
});

test('keepalived on both pairs: the DB VIP on db_primary only, the NFS VIP on nfs_primary only', async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  assert.ok(state.applied, 'needs the full apply');
  const { db_vip: dbVip, nfs_vip: nfsVip } = state.table!.servers as Record<string, string>;
  for (const node of ['db_primary', 'db_standby', 'nfs_primary', 'nfs_standby']) {
    assert.equal((await lab.sh(node, 'systemctl is-active keepalived; systemctl is-enabled keepalived')).trim(), 'active\nenabled', node);
  }
  // The nfs runbook runs before keepalived, whose start step waits for nfs_primary to take the VIP.
  await waitFor(async () => (await holds(lab, 'nfs_primary', nfsVip!)) || (await holds(lab, 'nfs_standby', nfsVip!)), 20_000, 250);
  const vips = {
    db: await Promise.all(['db_primary', 'db_standby'].map((h) => holds(lab, h, dbVip!))),
    nfs: await Promise.all(['nfs_primary', 'nfs_standby'].map((h) => holds(lab, h, nfsVip!))),
    others: await Promise.all(['app1', 'app2', 'lb'].map(async (h) => (await holds(lab, h, dbVip!)) || (await holds(lab, h, nfsVip!)))),
  };
  t.diagnostic(`VIPs: ${JSON.stringify(vips)}`);
  if (!vips.nfs[0]) {
    // Why: the NFS pair's VRRP transitions and its health check verdicts, per node.
    for (const node of ['nfs_primary', 'nfs_standby']) {
      const log = await lab.sh(node, "journalctl -o short-precise --no-pager -u keepalived | grep -E 'Entering|nfs check' | tail -10");
      t.diagnostic(`${node}:\n${log}`);
    }
  }
  assert.deepEqual(vips.db, [true, false], 'the DB VIP is bound on db_primary only');
  assert.deepEqual(vips.nfs, [true, false], 'the NFS VIP is bound on nfs_primary only');
  assert.deepEqual(vips.others, [false, false, false]);
  for (const [node, instance] of [['db_primary', 'ha_setup_db'], ['nfs_primary', 'ha_setup_nfs']] as const) {
    assert.match(await lab.sh(node, 'cat /etc/keepalived/keepalived.conf'), new RegExp(`vrrp_instance ${instance} \\{`), node);
  }
});

test('PostgreSQL: the standby streams; the guides\' replication test; the read-only standby refuses CREATE TABLE', async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  assert.ok(state.applied, 'needs the full apply');
  const primary = lab.host('db_primary').address;
  const standby = lab.host('db_standby').address;
  assert.equal(
    await pgLocal(lab, 'db_primary', 'select host(client_addr), state from pg_stat_replication;'),
    `${standby}|streaming\n`,
  );
  assert.equal(await pgLocal(lab, 'db_standby', 'select status, sender_host, pg_is_in_recovery() from pg_stat_wal_receiver;'), `streaming|${primary}|t\n`);

  // The guides' test, as they give it: on the primary, then on the standby.
  const listed = "select count(*) from pg_tables where schemaname = 'public' and tablename = 'test';";
  await pgLocal(lab, 'db_primary', 'CREATE TABLE test (name char(10));');
  assert.ok(await waitFor(async () => (await pgLocal(lab, 'db_standby', listed)) === '1\n', 10_000, 200), 'the table is listed on the standby');
  await pgLocal(lab, 'db_primary', 'DROP TABLE test;');
  assert.ok(await waitFor(async () => (await pgLocal(lab, 'db_standby', listed)) === '0\n', 10_000, 200), 'the drop reaches the standby');
  const refused = await lab.ssh('db_standby', `cd / && runuser -u postgres -- psql -X -At -v ON_ERROR_STOP=1 -c 'CREATE TABLE test (name char(10));' 2>&1`);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stdout, new RegExp(`ERROR:\\s+${READ_ONLY}`));
});

test('app1 and app2 reach PostgreSQL through the DB VIP with TLS (verify-full) and land on db_primary', async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  assert.ok(state.applied, 'needs the full apply');
  const vip = state.table!.servers.db_vip!;
  const password = (JSON.parse(readFileSync(join(lab.env.HA_SETUP_HOME!, 'clusters', state.table!.cluster, 'secrets.json'), 'utf8')) as { secrets: Record<string, string> })
    .secrets['postgres.app'];
  assert.ok(password, 'the generated app password is in the cluster secrets');
  const caPem = await lab.sh('db_primary', 'cat /etc/ha-setup/pg-tls/ca.crt');
  const clients = {} as Record<'app1' | 'app2', AppClient>;
  // The server answering through the VIP is db_primary's PostgreSQL: same start time (to the µs).
  const primaryStart = (await pgLocal(lab, 'db_primary', 'select pg_postmaster_start_time();')).trim();
  for (const app of ['app1', 'app2'] as const) {
    clients[app] = await appClient(lab, lab.host(app).address, { user: 'lunadirector', db: 'lunadirectordb', password, caPem, name: vip });
    const who = await clients[app].query(
      vip,
      'select inet_server_addr(), pg_is_in_recovery(), (select ssl from pg_stat_ssl where pid = pg_backend_pid()), current_user, pg_postmaster_start_time();',
    );
    assert.equal(who, `${vip}|f|t|lunadirector|${primaryStart}`, `${app} through the DB VIP`);
  }
  // Writes through the VIP from one app server are read through it from the other.
  await clients.app1.query(vip, "CREATE TABLE IF NOT EXISTS full_stack_probe (note text);\nINSERT INTO full_stack_probe VALUES ('from app1');");
  assert.equal(await clients.app2.query(vip, 'select note from full_stack_probe;'), 'from app1');
  state.app = clients;
});

test('NFS: a file written from app1 through the NFS VIP is read from app2', async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  assert.ok(state.applied, 'needs the full apply');
  const vip = state.table!.servers.nfs_vip!;
  const url = (f: string) => `nfs://${vip}/srv/nfs/${f}?version=4`;
  const text = `written on app1 at ${Date.now()}`;
  const w = await nfsTry(lab, 'app1', `printf '%s\\n' '${text}' > /tmp/full-stack.txt && nfs-cp /tmp/full-stack.txt '${url('full-stack.txt')}'`);
  assert.equal(w.code, 0, `nfs-cp from app1: ${w.stderr}`);
  const rd = await nfsTry(lab, 'app2', `nfs-cat '${url('full-stack.txt')}'`);
  assert.equal(rd.code, 0, rd.stderr);
  assert.equal(rd.stdout.trim(), text);
  // The file is in the export directory of the NFS server that holds the VIP (which one it is,
  // is checked by the keepalived test above).
  const holder = (await holds(lab, 'nfs_primary', vip)) ? 'nfs_primary' : 'nfs_standby';
  assert.equal((await lab.sh(holder, 'cat /srv/nfs/full-stack.txt')).trim(), text, `the file is in the export on ${holder}, the NFS VIP holder`);
  // lb is no app server: the export refuses it.
  assert.notEqual((await lab.ssh('lb', `nfs-cat '${url('full-stack.txt')}'`)).code, 0, 'lb must not read the share');
});

test('HAProxy on lb balances new TLS sessions on 8181 over app1 and app2', async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  assert.ok(state.applied, 'needs the full apply');
  const lb = lab.host('lb').address;
  assert.equal((await lab.sh('lb', 'systemctl is-active haproxy; haproxy -c -f /etc/haproxy/haproxy.cfg >/dev/null && echo valid')).trim(), 'active\nvalid');
  const answers = Array.from({ length: 6 }, () => through(lb));
  t.diagnostic(`6 new sessions through ${lb}:8181: ${answers.join(' ')}`);
  assert.equal(answers.filter((b) => b === 'app1').length, 3, answers.join(' '));
  assert.equal(answers.filter((b) => b === 'app2').length, 3, answers.join(' '));
});

test('a second run plans nothing and a second apply changes nothing', { timeout: 10 * 60_000 }, async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  assert.ok(state.applied, 'needs the full apply');
  const plan = await cli(lab, ['plan', '--config', state.file!, '--json']);
  assert.equal(plan.code, 0, plan.stderr);
  const data = JSON.parse(plan.stdout) as { hosts: Record<string, { steps: { id: string; status: string; reason?: string; actions: unknown[] }[] }> };
  assert.deepEqual(Object.keys(data.hosts).sort(), [...ROLES].sort());
  let steps = 0;
  for (const [host, h] of Object.entries(data.hosts)) {
    for (const s of h.steps) {
      steps++;
      assert.equal(s.status, 'skip', `${host} ${s.id}: ${JSON.stringify(s.actions).slice(0, 500)}`);
      assert.ok(s.reason?.trim(), `${host} ${s.id}: an empty plan says why`);
    }
  }
  const again = await cli(lab, ['apply', '--config', state.file!, '--yes']);
  t.diagnostic(`plan --json: ${(plan.ms / 1000).toFixed(1)} s; second apply: ${(again.ms / 1000).toFixed(1)} s (${steps} host steps)`);
  assert.equal(again.code, 0, out(again));
  assert.match(again.stdout, new RegExp(`✓ Done in [\\dm.s]+: 0 host steps changed, ${steps} unchanged\\.`));
  assert.doesNotMatch(again.stdout, /changed in|^\[\S+\] wrote /m);
});
