/**
 * Topology A in the lab: a stand-in TLS service (test/fixtures/haproxy/standin-tls.py, TLS 1.2,
 * session ids, answers "backend <name>") on two app hosts, HAProxy put on the lb host by the
 * haproxy runbook over SSH; then, from the machine, with openssl s_client through the lb:
 * new sessions are balanced over both backends, a resumed TLS session sticks to one backend,
 * a stopped backend is routed around with no failed request, the stats page needs the
 * generated password (which appears in no output or transcript), a second run plans nothing.
 *
 * Table (partial): app1 = 198.18.0.11, app2 = 198.18.0.12, lb = 198.18.0.13.
 * Uses the real CLI when runbook haproxy is registered in runbooks/index.ts, else the same
 * session code the CLI runs (source/commands/session.ts) with the runbook passed in.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useLab, type Lab, writeLabTable } from '../helpers/lab.js';
import { clusterDir } from '../../source/paths.js';
import { RUNBOOKS } from '../../runbooks/index.js';
import { haproxyRunbook } from '../../runbooks/haproxy.js';
import { runSession } from '../../source/commands/session.js';
import { resolveInventory } from '../../source/inventory/load.js';

const fixture = useLab({ hosts: 3 });
const CLUSTER = 'lab-haproxy';
const STANDIN = readFileSync(new URL('../../../test/fixtures/haproxy/standin-tls.py', import.meta.url), 'utf8');

function tableFor(lab: Lab, dir: string): string {
  return writeLabTable(lab, join(dir, 'haproxy-lab.yaml'), {
    cluster: CLUSTER,
    servers: { app1: lab.host('db_primary').address, app2: lab.host('db_standby').address, lb: lab.host('nfs_primary').address },
    network: true,
    options: { haproxy: { appCheckInter: '500ms', appCheckFall: 2, appCheckRise: 2 } },
  });
}

/** apply/plan of runbook haproxy: the CLI when registered, else the CLI's session code. */
async function run(lab: Lab, mode: 'apply' | 'plan', table: string): Promise<{ code: number; out: string; changed: number }> {
  if (RUNBOOKS.some((r) => r.id === 'haproxy')) {
    const r = await lab.cli([mode, '--config', table, '--runbook', 'haproxy', ...(mode === 'apply' ? ['--yes'] : ['--json'])]);
    const changed = mode === 'plan' && r.code === 0 ? JSON.parse(r.stdout).hosts?.lb?.steps?.filter((s: { status: string }) => s.status !== 'skip').length ?? -1 : -1;
    return { code: r.code, out: `${r.stdout}\n${r.stderr}`, changed };
  }
  let out = '';
  const sink = { write: (s: string) => (out += s) };
  const io = { stdout: sink, stderr: sink, stdin: process.stdin, env: lab.env };
  const args = { positionals: [], values: { config: table, runbook: ['haproxy'], yes: true } };
  const inv = await resolveInventory({ config: table }, lab.env);
  const { result } = await runSession(mode, args as never, io, inv, [haproxyRunbook]);
  return { code: result.ok ? 0 : 1, out, changed: result.changed };
}

/** One TLS connection through the lb from this machine: which backend answered, resumed or not. */
function through(lb: string, sess: { out?: string; in?: string } = {}): { backend: string | null; reused: boolean; code: number | null } {
  const args = ['s_client', '-connect', `${lb}:8181`, '-ign_eof', ...(sess.out ? ['-sess_out', sess.out] : []), ...(sess.in ? ['-sess_in', sess.in] : [])];
  const r = spawnSync('openssl', args, { input: 'GET / HTTP/1.0\r\n\r\n', encoding: 'utf8', timeout: 10_000 });
  return { backend: /^backend (\S+)/m.exec(r.stdout)?.[1] ?? null, reused: /^Reused, /m.test(r.stdout), code: r.status };
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

test('haproxy runbook: balanced, sticky on the TLS session, a stopped backend routed around, stats behind the generated password', { timeout: 600_000 }, async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  const dir = mkdtempSync(join(tmpdir(), 'ha-haproxy-lab-'));
  lab.env.HA_SETUP_HOME = join(dir, 'home');
  const table = tableFor(lab, dir);
  const lb = lab.host('nfs_primary').address;
  await Promise.all([startStandin(lab, 'db_primary', 'app1'), startStandin(lab, 'db_standby', 'app2')]);

  const t0 = Date.now();
  const applied = await run(lab, 'apply', table);
  const applyMs = Date.now() - t0;
  assert.equal(applied.code, 0, applied.out);
  t.diagnostic(`apply: ${applyMs} ms`);

  // Server state, read over SSH: running, enabled, the file passes haproxy -c, one server per app.
  const state = await lab.sh('nfs_primary', 'systemctl is-active haproxy; systemctl is-enabled haproxy; haproxy -c -f /etc/haproxy/haproxy.cfg >/dev/null && echo valid; stat -c %a /etc/haproxy/haproxy.cfg; grep -E "^ +server " /etc/haproxy/haproxy.cfg');
  assert.deepEqual(state.trim().split('\n'), ['active', 'enabled', 'valid', '600', '    server app1 198.18.0.11:8181 check', '    server app2 198.18.0.12:8181 check']);

  // The generated stats password: never in the output or the transcripts; the page needs it.
  const secrets = JSON.parse(readFileSync(join(clusterDir(CLUSTER, lab.env), 'secrets.json'), 'utf8')) as { secrets: Record<string, string> };
  const pw = secrets.secrets['haproxy.stats']!;
  assert.ok(pw && pw.length >= 16);
  assert.ok(!applied.out.includes(pw), 'the stats password is in the output');
  const runsDir = join(clusterDir(CLUSTER, lab.env), 'runs');
  for (const f of readdirSync(runsDir)) assert.ok(!readFileSync(join(runsDir, f), 'utf8').includes(pw), `the stats password is in transcript ${f}`);
  const stats = await lab.sh(
    'nfs_primary',
    // The password goes to python on stdin, not in argv.
    `python3 -c '
import sys, urllib.request, base64
pw = sys.stdin.readline().strip()
def get(auth):
    req = urllib.request.Request("http://127.0.0.1:7000/;csv")
    if auth: req.add_header("Authorization", "Basic " + base64.b64encode(("admin:" + pw).encode()).decode())
    try:
        r = urllib.request.urlopen(req, timeout=5); return r.status, r.read().decode()
    except urllib.error.HTTPError as e: return e.code, ""
print(get(False)[0]); code, body = get(True); print(code)
print(" ".join(sorted(l.split(",")[1] + ":" + l.split(",")[17] for l in body.splitlines() if l.startswith("app,app"))))
' <<'EOF'\n${pw}\nEOF`,
  );
  assert.deepEqual(stats.trim().split('\n'), ['401', '200', 'app1:UP app2:UP']);

  // Balanced: new TLS sessions alternate over both backends.
  const fresh = Array.from({ length: 6 }, () => through(lb).backend);
  t.diagnostic(`new sessions: ${fresh.join(' ')}`);
  assert.equal(fresh.filter((b) => b === 'app1').length, 3, fresh.join(' '));
  assert.equal(fresh.filter((b) => b === 'app2').length, 3, fresh.join(' '));

  // Sticky: a resumed session goes back to the backend that issued it, every time.
  const sess = join(dir, 'tls.sess');
  const first = through(lb, { out: sess });
  assert.ok(first.backend, 'first connection answered');
  const resumed = Array.from({ length: 6 }, () => through(lb, { in: sess }));
  t.diagnostic(`resumed session (issued by ${first.backend}): ${resumed.map((r) => `${r.backend}${r.reused ? '(reused)' : ''}`).join(' ')}`);
  for (const r of resumed) {
    assert.equal(r.reused, true, 'the TLS session was resumed');
    assert.equal(r.backend, first.backend);
  }

  // A backend stops: every request still succeeds (redispatch + retries), also the stuck session's.
  const victim = first.backend === 'app1' ? 'db_primary' : 'db_standby';
  const survivor = first.backend === 'app1' ? 'app2' : 'app1';
  await lab.sh(victim, 'systemctl stop standin-tls');
  const stoppedAt = Date.now();
  const after: string[] = [];
  let failed = 0;
  // For 3 s (the down check takes about 1 s) and at least 10 requests: a slow machine makes fewer
  // requests in 3 s, not fewer failures.
  while (Date.now() - stoppedAt < 3000 || after.length + failed < 10) {
    const r = through(lb, after.length % 2 ? { in: sess } : {});
    if (r.backend) after.push(r.backend);
    else failed++;
  }
  t.diagnostic(`${after.length + failed} requests in the ${((Date.now() - stoppedAt) / 1000).toFixed(1)} s after ${first.backend} stopped: ${failed} failed, answered by ${[...new Set(after)].join(', ')}`);
  assert.equal(failed, 0);
  assert.ok(after.length >= 10, `only ${after.length} requests`);
  assert.deepEqual([...new Set(after)], [survivor]);

  // Idempotent: a second run plans nothing.
  const again = await run(lab, 'plan', table);
  assert.equal(again.code, 0, again.out);
  assert.equal(again.changed, 0, again.out);
});
