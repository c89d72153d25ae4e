/**
 * The standby load balancer in the lab (topology A with lb_standby and lb_vip): 4 hosts
 * re-mapped by this test's table (lb .11, lb_standby .12, app1 .13, app2 .14, lb_vip .102), a
 * stand-in TLS service on the app hosts (test/fixtures/haproxy/standin-tls.py), then the
 * haproxy and keepalived runbooks. Asserted on the servers and through the VIP from this
 * machine with openssl s_client:
 *  - both load balancers run the same haproxy.cfg (apart from their peer name), lb_vip is on
 *    exactly one of them, and requests through the VIP are balanced;
 *  - the stick table is shared (HAProxy peers): after haproxy stops on the VIP holder, the VIP
 *    moves to the other load balancer and a resumed TLS session still reaches the app server
 *    that issued it;
 *  - haproxy running again does not pull the VIP back (nopreempt); a second run plans nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useLab, type Lab, writeLabTable } from '../helpers/lab.js';

const fixture = useLab({ hosts: 4 });
const VIP = '198.18.0.102';
const STANDIN = readFileSync(new URL('../../../test/fixtures/haproxy/standin-tls.py', import.meta.url), 'utf8');
/** The lab's hosts (named by the lab's roles) as this table uses them. */
const LB = 'db_primary';
const LB2 = 'db_standby';
const APP1 = 'nfs_primary';
const APP2 = 'nfs_standby';

function table(lab: Lab): string {
  lab.env.HA_SETUP_HOME ??= mkdtempSync(join(tmpdir(), 'ha-lb-pair-home-'));
  return writeLabTable(lab, join(lab.info.dir, 'lb-pair.yaml'), {
    cluster: 'lbpair',
    servers: { app1: lab.host(APP1).address, app2: lab.host(APP2).address, lb: lab.host(LB).address, lb_standby: lab.host(LB2).address, lb_vip: VIP },
    options: { haproxy: { appCheckInter: '500ms', appCheckFall: 2, appCheckRise: 2 } },
  });
}

async function startStandin(lab: Lab, host: string, name: string): Promise<void> {
  await lab.sh(
    host,
    [
      'set -e',
      'mkdir -p /opt/standin && cd /opt/standin',
      `cat > standin.py <<'PYEOF'\n${STANDIN}PYEOF`,
      `[ -f key.pem ] || openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=${name} -days 2 -keyout key.pem -out cert.pem 2>/dev/null`,
      'systemctl stop standin-tls 2>/dev/null || true; systemctl reset-failed standin-tls 2>/dev/null || true',
      `systemd-run --unit=standin-tls --collect python3 /opt/standin/standin.py ${name} 8181 /opt/standin/cert.pem /opt/standin/key.pem`,
      'for i in $(seq 1 50); do ss -Hltn "sport = :8181" | grep -q . && exit 0; sleep 0.1; done; echo "stand-in did not listen" >&2; exit 1',
    ].join('\n'),
  );
}

/** One TLS connection through the VIP from this machine: which backend answered, resumed or not. */
function through(sess: { out?: string; in?: string } = {}): { backend: string | null; reused: boolean } {
  const args = ['s_client', '-connect', `${VIP}:8181`, '-ign_eof', ...(sess.out ? ['-sess_out', sess.out] : []), ...(sess.in ? ['-sess_in', sess.in] : [])];
  const r = spawnSync('openssl', args, { input: 'GET / HTTP/1.0\r\n\r\n', encoding: 'utf8', timeout: 10_000 });
  return { backend: /^backend (\S+)/m.exec(r.stdout)?.[1] ?? null, reused: /^Reused, /m.test(r.stdout) };
}

const holdsVip = async (lab: Lab, h: string): Promise<boolean> => (await lab.sh(h, `ip -o addr show | grep -cF ' ${VIP}/' || true`)).trim() !== '0';
const holders = async (lab: Lab): Promise<string[]> => (await Promise.all([LB, LB2].map(async (h) => ((await holdsVip(lab, h)) ? h : null)))).filter((h): h is string => h !== null);

async function until<T>(what: string, ms: number, fn: () => Promise<T | undefined | false>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('apply: HAProxy on both load balancers with a shared stick table, lb_vip on exactly one, balanced through the VIP', { timeout: 300_000 }, async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  await Promise.all([startStandin(lab, APP1, 'app1'), startStandin(lab, APP2, 'app2')]);
  const r = await lab.cli(['apply', '--config', table(lab), '--yes', '--runbook', 'facts,haproxy,keepalived']);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  for (const [h, alias, other] of [[LB, 'lb', LB2], [LB2, 'lb_standby', LB]] as const) {
    const s = await lab.sh(h, 'systemctl is-active haproxy keepalived; haproxy -c -f /etc/haproxy/haproxy.cfg >/dev/null && echo valid; grep -E "^ *(localpeer|peer) " /etc/haproxy/haproxy.cfg | sed "s/^ *//"; ss -Hltn "sport = :10000" | grep -c .');
    assert.deepEqual(s.trim().split('\n'), ['active', 'active', 'valid', `localpeer ${alias}`, `peer lb ${lab.host(LB).address}:10000`, `peer lb_standby ${lab.host(LB2).address}:10000`, '1'], `${h}: ${s}`);
    const conf = await lab.sh(h, 'cat /etc/keepalived/keepalived.conf');
    assert.match(conf, /virtual_router_id 53\n/);
    assert.match(conf, new RegExp(`unicast_peer \\{\\s+${lab.host(other).address.replace(/\./g, '\\.')}\\s+\\}`));
    assert.match(conf, /script "\/usr\/local\/lib\/ha-setup\/keepalived\/haproxy-check 8181"/);
  }
  const on = await until('lb_vip on one load balancer', 15_000, async () => {
    const hs = await holders(lab);
    return hs.length === 1 && hs;
  });
  t.diagnostic(`lb_vip is on ${on[0]}`);
  const fresh = Array.from({ length: 6 }, () => through().backend);
  t.diagnostic(`new sessions through lb_vip: ${fresh.join(' ')}`);
  assert.equal(fresh.filter((b) => b === 'app1').length, 3, fresh.join(' '));
  assert.equal(fresh.filter((b) => b === 'app2').length, 3, fresh.join(' '));
});

test('haproxy stops on the VIP holder: lb_vip moves, a resumed TLS session keeps its app server (shared stick table); no move back (nopreempt)', { timeout: 120_000 }, async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  const [holder] = await holders(lab);
  assert.ok(holder, 'one load balancer holds lb_vip');
  const other = holder === LB ? LB2 : LB;
  const sess = join(lab.info.dir, 'lb-pair.sess');
  const first = through({ out: sess });
  assert.ok(first.backend, 'the first connection through lb_vip answered');
  // The peers connection pushes the new stick entry to the other load balancer within milliseconds.
  await new Promise((r) => setTimeout(r, 1000));

  await lab.sh(holder, 'systemctl stop haproxy');
  const stopped = Date.now();
  await until(`lb_vip on ${other}`, 10_000, async () => (await holders(lab)).join() === other);
  const moved = Date.now() - stopped;
  t.diagnostic(`lb_vip moved from ${holder} to ${other} ${(moved / 1000).toFixed(2)} s after haproxy stopped`);
  const resumed = Array.from({ length: 4 }, () => through({ in: sess }));
  t.diagnostic(`resumed session (issued by ${first.backend} through ${holder}) through ${other}: ${resumed.map((r) => `${r.backend}${r.reused ? '(reused)' : ''}`).join(' ')}`);
  for (const r of resumed) {
    assert.equal(r.reused, true, 'the TLS session was resumed');
    assert.equal(r.backend, first.backend, 'the session kept its app server across the load balancer failover');
  }
  assert.match(await lab.sh(holder, 'journalctl -t ha-setup-keepalived -o cat'), /haproxy check: FAIL: haproxy is not active/);

  await lab.sh(holder, 'systemctl start haproxy');
  await until(`the haproxy check to pass again on ${holder}`, 10_000, async () => /haproxy check: ok: haproxy listens on TCP 8181\s*$/.test(await lab.sh(holder, 'journalctl -t ha-setup-keepalived -o cat')));
  const end = Date.now() + 4000;
  while (Date.now() < end) {
    assert.deepEqual(await holders(lab), [other], 'lb_vip stays where it is (nopreempt)');
    await new Promise((r) => setTimeout(r, 400));
  }
});

test('a second run plans nothing on either load balancer', async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  const r = await lab.cli(['plan', '--config', table(lab), '--runbook', 'facts,haproxy,keepalived', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const plan = JSON.parse(r.stdout) as { hosts: Record<string, { steps: { id: string; status: string; reason?: string }[] }> };
  for (const h of ['lb', 'lb_standby']) for (const s of plan.hosts[h]!.steps) assert.equal(s.status, 'skip', `${h} ${s.id}: ${s.reason}`);
});
