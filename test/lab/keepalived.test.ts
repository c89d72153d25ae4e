/**
 * keepalived on a real DB pair in the lab (3 hosts: the pair, and 198.18.0.13 as app1), asserted
 * on the servers with OpenSSH: after `apply` of the PostgreSQL runbooks and keepalived the VIP is
 * bound on exactly one server (the primary), the generated config is what keepalived runs, a
 * second run changes nothing; the split brain the lab found with the guides' config does not
 * happen: freeze the primary, the standby takes over, thaw it, and the old primary neither takes
 * the VIP back nor accepts writes; `ha-setup rejoin db` then makes it a streaming standby again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useLab, type Lab, writeLabTable } from '../helpers/lab.js';
import { fault } from '../../source/lab/index.js';

const fixture = useLab({ hosts: 3 });
const VIP = '198.18.0.100';
const PG = 'facts,os-prep,pg-primary,pg-ssl,pg-users,pg-standby,pg-verify';
const DB = ['db_primary', 'db_standby'] as const;

/** The lab's hosts as a table with an app server (the drill's probe and the apps' pg_hba line). */
function table(lab: Lab): string {
  lab.env.HA_SETUP_HOME ??= mkdtempSync(join(tmpdir(), 'ha-keepalived-home-'));
  return writeLabTable(lab, join(lab.info.dir, 'keepalived.yaml'), {
    cluster: 'ka',
    servers: { db_primary: lab.host('db_primary').address, db_standby: lab.host('db_standby').address, db_vip: VIP, app1: lab.host('nfs_primary').address },
    options: { postgres: { version: 15 } },
  });
}

const holdsVip = async (lab: Lab, h: string): Promise<boolean> => (await lab.sh(h, `ip -o addr show | grep -cF ' ${VIP}/' || true`)).trim() !== '0';
const status = async (lab: Lab, h: string): Promise<Record<string, string>> =>
  Object.fromEntries((await lab.sh(h, '/usr/local/lib/ha-setup/keepalived/pg-ha status')).trim().split('\n').map((l) => l.split('=') as [string, string]));
/** SQL through the VIP from the app server, as the app user (the application's own path). */
function viaVip(lab: Lab, sql: string) {
  const secrets = JSON.parse(readFileSync(join(lab.env.HA_SETUP_HOME!, 'clusters/ka/secrets.json'), 'utf8')) as { secrets: Record<string, string> };
  const script = `export PGPASSWORD=${secrets.secrets['postgres.app']}\ntimeout 10 psql -X -At -q -v ON_ERROR_STOP=1 -d "host=${VIP} dbname=lunadirectordb user=lunadirector sslmode=require connect_timeout=3" -c "${sql}" 2>&1`;
  return lab.ssh('nfs_primary', script);
}
const psql = (sql: string, db = 'postgres') => `cd / && runuser -u postgres -- psql -X -At -v ON_ERROR_STOP=1 -d ${db} -c "${sql}"`;

async function until<T>(what: string, ms: number, fn: () => Promise<T | undefined | false>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('apply: the PostgreSQL pair and keepalived; the VIP is bound on exactly one server, the primary', { timeout: 300_000 }, async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  const r = await lab.cli(['apply', '--config', table(lab), '--yes', '--runbook', `${PG},keepalived`]);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.deepEqual(await Promise.all(DB.map((h) => holdsVip(lab, h))), [true, false]);
  for (const [h, prio, peer] of [
    ['db_primary', 151, lab.host('db_standby').address],
    ['db_standby', 150, lab.host('db_primary').address],
  ] as const) {
    const conf = await lab.sh(h, 'cat /etc/keepalived/keepalived.conf; stat -c %a /etc/keepalived/keepalived.conf; keepalived -t -f /etc/keepalived/keepalived.conf && echo CONFIG-OK');
    for (const want of ['state BACKUP', 'nopreempt', `priority ${prio}`, 'virtual_router_id 51', 'advert_int 1', `unicast_src_ip ${lab.host(h).address}`, `${VIP}/24 dev host0`, 'enable_script_security', 'script_user root']) {
      assert.ok(conf.includes(want), `${h}: ${want}`);
    }
    assert.match(conf, new RegExp(`unicast_peer \\{\\s+${peer.replace(/\./g, '\\.')}\\s+\\}`));
    assert.match(conf, /auth_pass [A-Za-z0-9_-]{8}\n/);
    assert.match(conf, /\n640\nCONFIG-OK\n$/);
    assert.equal((await lab.sh(h, 'systemctl is-active keepalived; systemctl is-enabled keepalived')).trim(), 'active\nenabled');
  }
  assert.equal((await status(lab, 'db_primary')).POSTGRES, 'primary');
  assert.match(await lab.sh('db_primary', 'journalctl -t ha-setup-keepalived -o cat'), /MASTER: already the writable primary \(timeline 1\)/);
  assert.match(await lab.sh('db_standby', 'journalctl -t ha-setup-keepalived -o cat'), /check: ok: healthy standby, can take over/);
});

test('a second run plans nothing on either server', async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  const r = await lab.cli(['plan', '--config', table(lab), '--runbook', 'keepalived', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const plan = JSON.parse(r.stdout) as { hosts: Record<string, { steps: { id: string; status: string; reason?: string }[] }> };
  for (const h of DB) for (const s of plan.hosts[h]!.steps) assert.equal(s.status, 'skip', `${h} ${s.id}: ${s.reason}`);
});

test('freeze the primary: the standby takes over; thawed, the old primary does not take the VIP back and accepts no writes', { timeout: 120_000 }, async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  const created = await viaVip(lab, 'create table if not exists ka_probe (n int)');
  assert.equal(created.code, 0, created.stdout);
  const t0 = Date.now();
  await fault('db_primary', 'freeze', undefined, { env: lab.env });
  try {
    await until('db_standby to hold the VIP as the primary', 20_000, async () => (await holdsVip(lab, 'db_standby')) && (await status(lab, 'db_standby')).POSTGRES === 'primary');
    t.diagnostic(`standby took over ${((Date.now() - t0) / 1000).toFixed(1)} s after the freeze`);
    const w = await until('a write through the VIP', 10_000, async () => {
      const r = await viaVip(lab, "insert into ka_probe values (1) returning 'written'");
      return r.code === 0 && r.stdout;
    });
    assert.equal(w.trim(), 'written');
  } finally {
    await fault('db_primary', 'thaw', undefined, { env: lab.env });
  }
  // A frozen host still has the VIP configured when it thaws (it never got to remove it); its
  // keepalived must give it up at once, and the new primary must keep it throughout.
  const thawed = Date.now();
  await until('the thawed old primary to drop its stale VIP', 3000, async () => !(await holdsVip(lab, 'db_primary')));
  t.diagnostic(`the thawed old primary dropped its stale VIP binding within ${Date.now() - thawed} ms`);
  const end = Date.now() + 8000;
  while (Date.now() < end) {
    assert.equal(await holdsVip(lab, 'db_primary'), false, 'the thawed old primary took the VIP back');
    assert.equal(await holdsVip(lab, 'db_standby'), true, 'the new primary lost the VIP');
    await new Promise((r) => setTimeout(r, 250));
  }
  // The promoted standby's priority rose above anything the old primary had, as soon as promote
  // wrote its generation: 150 + 2 x timeline 2 = 154 > 151 + 2 x timeline 1 = 153.
  assert.match(await lab.sh('db_standby', 'journalctl -u keepalived -o cat --no-pager'), /\(ha_setup_db\) Changing effective priority from \d+ to 154/);
  const old = await status(lab, 'db_primary');
  assert.equal(old.POSTGRES, 'down', 'the old primary is stopped');
  assert.equal(old.FENCED, 'yes');
  // It accepts no writes: nothing listens there, and systemd refuses to start it as a primary.
  const direct = await lab.ssh('nfs_primary', `timeout 10 psql "host=${lab.host('db_primary').address} dbname=postgres user=nobody connect_timeout=3" -c 'select 1' 2>&1`);
  assert.notEqual(direct.code, 0);
  assert.match(direct.stdout, /Connection refused/);
  const start = await lab.ssh('db_primary', 'systemctl start postgresql@15-main 2>&1; systemctl is-active postgresql@15-main; journalctl -t ha-setup-keepalived -o cat');
  assert.match(start.stdout, /\nfailed\n|\ninactive\n/);
  assert.match(start.stdout, /refusing to start PostgreSQL: fenced by ha-setup/);
  assert.match(start.stdout, /FENCING: stopping PostgreSQL \(postgresql@15-main\): (stale primary|BACKUP while|two MASTERs)/);
  assert.equal((await status(lab, 'db_primary')).POSTGRES, 'down');
  // The new primary still takes writes through the VIP, from the app server.
  const again = await viaVip(lab, 'insert into ka_probe values (2); select count(*) from ka_probe');
  assert.equal(again.code, 0, again.stdout);
  assert.equal(again.stdout.trim(), '2');
});

test('rejoin db: the old primary becomes a streaming standby of the new one (pg_rewind), and its fence lifts', { timeout: 120_000 }, async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  const r = await lab.cli(['rejoin', 'db', '--config', table(lab), '--yes']);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /db_primary \(198\.18\.0\.11\) is a streaming standby of db_standby \(198\.18\.0\.12\) again, by pg_rewind/);
  assert.match(r.stdout, /swap db_primary and db_standby in the config/);
  const repl = await lab.sh('db_standby', psql("select host(client_addr) || ' ' || state from pg_stat_replication"));
  assert.equal(repl.trim(), `${lab.host('db_primary').address} streaming`);
  await until('the fence to lift on db_primary', 10_000, async () => (await status(lab, 'db_primary')).FENCED === 'no');
  assert.equal((await status(lab, 'db_primary')).POSTGRES, 'standby');
  // The rejoined node holds the rows written after the failover, and the rewind left no hba block behind.
  await until('the rows written after the failover to reach db_primary', 10_000, async () => (await lab.sh('db_primary', psql('select count(*) from ka_probe', 'lunadirectordb'))).trim() === '2');
  assert.doesNotMatch(await lab.sh('db_standby', 'cat /etc/postgresql/15/main/pg_hba.conf'), /ha-setup rejoin/);
  assert.deepEqual(await Promise.all(DB.map((h) => holdsVip(lab, h))), [false, true]);
});
