/**
 * Topology C in the lab: PostgreSQL primary + standby set up by the pg runbooks (real CLI),
 * then runbook db-routing: the health service on both DB nodes and HAProxy on 15432 on the
 * lb. Read with OpenSSH, not through the tool: the primary answers 200 and the standby 503,
 * the service logs HAProxy's checks, the app reaches the primary through lb:15432; after a
 * failover (standby promoted, old primary stopped) 15432 reaches the new primary within the
 * checks' window (fall 3 x inter 3s); a second run plans nothing.
 *
 * Table (partial): db_primary = 198.18.0.11, db_standby = 198.18.0.12, lb = 198.18.0.13.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useLab, type Lab, writeLabTable } from '../helpers/lab.js';
import { pgLocal } from '../helpers/pg.js';
import { clusterDir } from '../../source/paths.js';
import { RUNBOOKS } from '../../runbooks/index.js';
import { dbRoutingRunbook } from '../../runbooks/db-routing.js';
import { runSession } from '../../source/commands/session.js';
import { resolveInventory } from '../../source/inventory/load.js';

const fixture = useLab({ hosts: 3 });
const CLUSTER = 'lab-dbroute';
const PRIMARY = 'db_primary';
const STANDBY = 'db_standby';
const LB = 'nfs_primary';

function tableFor(lab: Lab, dir: string): string {
  return writeLabTable(lab, join(dir, 'dbroute-lab.yaml'), {
    cluster: CLUSTER,
    servers: { db_primary: lab.host(PRIMARY).address, db_standby: lab.host(STANDBY).address, db_vip: '198.18.0.100', lb: lab.host(LB).address },
    network: true,
    options: { postgres: { dbViaHaproxy: true } },
  });
}

async function dbRouting(lab: Lab, mode: 'apply' | 'plan', table: string): Promise<{ code: number; out: string; changed: number }> {
  if (RUNBOOKS.some((r) => r.id === 'db-routing')) {
    const r = await lab.cli([mode, '--config', table, '--runbook', 'db-routing', ...(mode === 'apply' ? ['--yes'] : ['--json'])]);
    let changed = -1;
    if (mode === 'plan' && r.code === 0) {
      const hosts = (JSON.parse(r.stdout) as { hosts: Record<string, { steps: { status: string }[] }> }).hosts;
      changed = Object.values(hosts).flatMap((h) => h.steps).filter((s) => s.status !== 'skip').length;
    }
    return { code: r.code, out: `${r.stdout}\n${r.stderr}`, changed };
  }
  let out = '';
  const sink = { write: (s: string) => (out += s) };
  const io = { stdout: sink, stderr: sink, stdin: process.stdin, env: lab.env };
  const args = { positionals: [], values: { config: table, runbook: ['db-routing'], yes: true } };
  const inv = await resolveInventory({ config: table }, lab.env);
  const { result } = await runSession(mode, args as never, io, inv, [dbRoutingRunbook]);
  return { code: result.ok ? 0 : 1, out, changed: result.changed };
}

/** GET http://<db>:25432/ from the lb: the status code. */
const health = (lab: Lab, db: string): Promise<string> =>
  lab.sh(LB, `python3 -c 'import urllib.request as u, urllib.error as e
try: print(u.urlopen("http://${lab.host(db).address}:25432/", timeout=5).status)
except e.HTTPError as x: print(x.code)'`).then((s) => s.trim());

test('db-routing: 200 only on the primary, the app goes through lb:15432, and reaches the new primary after a failover', { timeout: 900_000 }, async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  const dir = mkdtempSync(join(tmpdir(), 'ha-dbroute-lab-'));
  lab.env.HA_SETUP_HOME = join(dir, 'home');
  const table = tableFor(lab, dir);

  // Each lab host recreates its PostgreSQL cluster on first boot (ha-lab-pg-identity): wait for it,
  // or the first start of postgresql@15-main races with it ("Assertion failed on job").
  await Promise.all([PRIMARY, STANDBY].map((h) => lab.sh(h, 'for i in $(seq 1 150); do [ -f /var/lib/ha-lab/pg-identity-done ] && exit 0; sleep 0.2; done; echo "first-boot cluster not ready" >&2; exit 1')));
  const pg = await lab.cli(['apply', '--config', table, '--runbook', 'os-prep,pg-primary,pg-ssl,pg-users,pg-standby', '--yes']);
  assert.equal(pg.code, 0, `${pg.stdout}\n${pg.stderr}`);
  t.diagnostic(`pg runbooks: ${(pg.ms / 1000).toFixed(1)} s`);

  const t0 = Date.now();
  const applied = await dbRouting(lab, 'apply', table);
  assert.equal(applied.code, 0, applied.out);
  t.diagnostic(`db-routing apply: ${Date.now() - t0} ms`);

  assert.equal(await health(lab, PRIMARY), '200');
  assert.equal(await health(lab, STANDBY), '503');
  for (const h of [PRIMARY, STANDBY]) {
    assert.equal((await lab.sh(h, 'systemctl is-enabled ha-setup-pg-health; systemctl is-active ha-setup-pg-health; stat -c "%a %U" /etc/ha-setup/pg-health.pgpass')).trim(), 'enabled\nactive\n600 ha-pg-health');
  }
  // HAProxy's checks, logged by the service (the lb is 198.18.0.13).
  await new Promise((r) => setTimeout(r, 3500));
  assert.match(await lab.sh(PRIMARY, 'journalctl -u ha-setup-pg-health --no-pager -o cat | tail -n 5'), /^check from 198\.18\.0\.13: primary -> 200$/m);
  assert.match(await lab.sh(STANDBY, 'journalctl -u ha-setup-pg-health --no-pager -o cat | tail -n 5'), /^check from 198\.18\.0\.13: standby -> 503$/m);

  // The app, on the lb, through HAProxy on 15432 (password in a 0600 PGPASSFILE, sent on stdin).
  const secrets = JSON.parse(readFileSync(join(clusterDir(CLUSTER, lab.env), 'secrets.json'), 'utf8')) as { secrets: Record<string, string> };
  const appPw = secrets.secrets['postgres.app']!;
  await lab.sh(LB, `umask 077; cat > /root/app.pgpass <<'EOF'\n*:*:lunadirectordb:lunadirector:${appPw}\nEOF`);
  const viaLb = async (): Promise<string> => {
    const r = await lab.ssh(LB, `PGPASSFILE=/root/app.pgpass PGCONNECT_TIMEOUT=2 /usr/lib/postgresql/15/bin/psql -X -At "host=127.0.0.1 port=15432 dbname=lunadirectordb user=lunadirector sslmode=require" -c "select inet_server_addr(), pg_is_in_recovery()"`);
    return r.code === 0 ? r.stdout.trim() : `error: ${r.stderr.trim()}`;
  };
  assert.equal(await viaLb(), `${lab.host(PRIMARY).address}|f`);

  // Failover: the standby is promoted, the old primary stopped.
  await pgLocal(lab, STANDBY, 'select pg_promote();');
  await lab.sh(PRIMARY, 'systemctl stop postgresql@15-main');
  const stopped = Date.now();
  let answer = '';
  const seen: string[] = [];
  while (Date.now() - stopped < 30_000) {
    answer = await viaLb();
    if (seen[seen.length - 1] !== answer) seen.push(answer);
    if (answer === `${lab.host(STANDBY).address}|f`) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const ms = Date.now() - stopped;
  t.diagnostic(`after the failover, lb:15432 reached the new primary in ${ms} ms (answers seen: ${seen.join(' / ')})`);
  assert.equal(answer, `${lab.host(STANDBY).address}|f`);
  // fall 3 x inter 3s for the old node, rise 2 x inter 3s for the new one, run in parallel.
  assert.ok(ms <= 12_000, `${ms} ms`);
  assert.equal(await health(lab, STANDBY), '200');
  assert.equal(await health(lab, PRIMARY), '503');

  // Idempotent: a second run of db-routing plans nothing (the table did not change).
  const again = await dbRouting(lab, 'plan', table);
  assert.equal(again.code, 0, again.out);
  assert.equal(again.changed, 0, again.out);
});
