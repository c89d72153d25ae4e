/**
 * The haproxy runbook through the real runner (plan and apply) on an in-memory lb whose
 * haproxy.cfg is read by the REAL config fact script (bash, sed, sha256sum on a temp copy) and
 * whose candidate file is checked by this machine's REAL `haproxy -c`:
 * - the stats password never appears in a plan diff, an event or a transcript (the runner's
 *   Redactor masks the stored secret in diffs; a password that is not ours never leaves the
 *   server: the fact prints only its sha256);
 * - the candidate is checked before the live file is replaced; a failing check leaves the
 *   live file untouched;
 * - a second plan after apply changes nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runRunbooks } from '../../source/engine/runner.js';
import { SecretStore } from '../../source/engine/secrets.js';
import type { EngineEvent } from '../../source/engine/events.js';
import { clusterDir } from '../../source/paths.js';
import { haproxyRunbook } from '../../runbooks/haproxy.js';
import { HAPROXY_CANDIDATE, HAPROXY_CFG, STATS_SECRET } from '../../runbooks/lib/haproxy-config.js';
import { haproxyFact } from '../../runbooks/lib/haproxy-facts.js';
import { FakePool, fakeInventory, tempHome, type FakeTransport } from '../helpers/fake-transport.js';

const OLD = 'OldStatsPassw0rd-not-ours';
const STALE = `global\n    maxconn 100\n\nlisten stats\n    bind 127.0.0.1:7000\n    mode http\n    stats enable\n    stats auth admin:${OLD}\n`;
const haproxyMissing = spawnSync('haproxy', ['-v']).status !== 0;

/** Runs a script with real bash, on stdin. */
function bash(script: string): { code: number; stdout: string; stderr: string } {
  const r = spawnSync('bash', ['-s'], { input: script, encoding: 'utf8' });
  return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

// The lb is a Debian 12 server with HAProxy 2.6 installed, whatever this machine has.
const HAVE_HAPROXY = 'if have haproxy; then echo "VERSION=$(haproxy -v 2>/dev/null | head -n1)"; fi';
const LB_VERSION = 'echo "VERSION=HAProxy version 2.6.12-1+deb12u1 2023/12/16 - https://haproxy.org/"';

function lbPool(opts: { checkFails?: boolean } = {}): FakePool {
  const dir = mkdtempSync(join(tmpdir(), 'ha-lb-'));
  return new FakePool({}, (t: FakeTransport) => {
    // The real config fact, run on a copy of the in-memory file.
    t.on(/^have\(\) .*haproxy -v/s, (script) => {
      const f = t.files.get(HAPROXY_CFG);
      const path = join(dir, 'haproxy.cfg');
      if (f) writeFileSync(path, f.content);
      return bash(script.replace(`f=${HAPROXY_CFG}`, `f=${f ? path : join(dir, 'absent')}`).replace('systemctl is-active haproxy', 'echo active').replace(HAVE_HAPROXY, LB_VERSION));
    });
    t.on(/^haproxy -c -f (\S+)$/, (_s, m) => {
      if (opts.checkFails) return { code: 1, stdout: '', stderr: "[ALERT]    (1) : config : parsing [x:3] : unknown keyword 'bogus'" };
      const path = join(dir, 'check.cfg');
      writeFileSync(path, t.files.get(m[1]!)?.content ?? '');
      return bash(`haproxy -c -f ${path}`);
    });
    t.on(/^rm -f (\S+)$/, (_s, m) => {
      t.files.delete(m[1]!);
      return { code: 0 };
    });
  });
}

const SERVERS = { app1: '198.18.0.15', app2: '198.18.0.16', lb: '198.18.0.17' };

test('the real config fact prints the sha256 of each stats password, never the password', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ha-fact-'));
  writeFileSync(join(dir, 'haproxy.cfg'), STALE);
  const r = bash(haproxyFact.script.replace(`f=${HAPROXY_CFG}`, `f=${join(dir, 'haproxy.cfg')}`));
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!r.stdout.includes(OLD));
  const facts = haproxyFact.parse(r.stdout, { code: 0, stdout: r.stdout, stderr: '', durationMs: 0 } as never);
  assert.equal(facts.config, STALE.replace(OLD, '@@HA_SETUP_MASKED@@'));
  assert.deepEqual(facts.authHashes, [spawnSync('sha256sum', { input: OLD, encoding: 'utf8' }).stdout.slice(0, 64)]);
});

test('plan and apply: the stats password is masked in diffs, events and transcripts; checked before installed; then nothing to do', async (t) => {
  if (haproxyMissing) {
    t.skip('haproxy is not installed on this machine (apt-get install -y haproxy): the candidate check runs the real haproxy -c');
    return;
  }
  const { env } = tempHome();
  const pool = lbPool();
  pool.get('lb').files.set(HAPROXY_CFG, { content: STALE, mode: 0o644, owner: 'root', group: 'root' });
  const events: EngineEvent[] = [];
  const inventory = fakeInventory(SERVERS);
  const run = (mode: 'plan' | 'apply', inv = inventory) => runRunbooks({ mode, runbooks: [haproxyRunbook], inventory: inv, transport: pool.transport, events: (e) => events.push(e), env, resumeCommand: 'x' });

  const plan = await run('plan');
  assert.equal(plan.ok, true);
  const pw = new SecretStore(clusterDir('test', env)).get(STATS_SECRET).reveal();
  const planned = events.find((e): e is Extract<EngineEvent, { type: 'step-planned' }> => e.type === 'step-planned' && e.stepId === 'haproxy.config')!;
  const diff = planned.diffs[0]!.diff;
  assert.match(diff, /^-    stats auth admin:<another password, sha256 [0-9a-f]{12}\.\.\.>$/m, 'the old password shows as its hash prefix');
  assert.match(diff, /^\+    stats auth admin:<haproxy\.stats: 24 characters>$/m, 'the new password is masked by the redactor');
  assert.match(diff, /^\+    server app2 198\.18\.0\.16:8181 check$/m);

  const applied = await run('apply');
  assert.equal(applied.ok, true, JSON.stringify(events.filter((e) => e.type === 'step-failed')));
  const lb = pool.get('lb');
  // Order on the server: candidate written, checked with haproxy -c, live file written, candidate removed, started.
  const log = pool.stats.log.filter((l) => l.host === 'lb').map((l) => l.script);
  const checkAt = log.findIndex((s) => s === `haproxy -c -f ${HAPROXY_CANDIDATE}`);
  assert.ok(checkAt >= 0);
  assert.deepEqual(lb.writes.map((w) => w.path), [HAPROXY_CANDIDATE, HAPROXY_CFG]);
  assert.ok(log.indexOf(`rm -f ${HAPROXY_CANDIDATE}`) > checkAt);
  assert.ok(log.includes('systemctl reload haproxy'), 'HAProxy runs (the fact says active): reloaded');
  assert.ok(!log.some((s) => /systemctl restart haproxy/.test(s)));
  assert.equal(lb.files.has(HAPROXY_CANDIDATE), false);
  assert.ok(lb.files.get(HAPROXY_CFG)!.content.includes(`    stats auth admin:${pw}\n`));
  assert.equal(lb.files.get(HAPROXY_CFG)!.mode, 0o600);

  // A changed option: the unchanged stats line is context, masked, in the diff.
  events.length = 0;
  const more = await run('plan', fakeInventory(SERVERS, { haproxy: { appCheckInter: '1s' } }));
  assert.equal(more.ok, true);
  const d2 = events.find((e): e is Extract<EngineEvent, { type: 'step-planned' }> => e.type === 'step-planned' && e.stepId === 'haproxy.config')!.diffs[0]!.diff;
  assert.match(d2, /^-    default-server inter 2s fall 3 rise 2\n\+    default-server inter 1s fall 3 rise 2$/m);

  // Nothing anywhere holds the password: events, transcripts.
  const all = JSON.stringify(events);
  assert.ok(!all.includes(pw) && !all.includes(OLD));
  const runs = join(clusterDir('test', env), 'runs');
  for (const f of readdirSync(runs)) {
    const text = readFileSync(join(runs, f), 'utf8');
    assert.ok(!text.includes(pw), `password in transcript ${f}`);
    assert.ok(!text.includes(OLD), `old password in transcript ${f}`);
  }

  // Idempotent: the same table and options plan nothing.
  events.length = 0;
  const again = await run('plan');
  assert.equal(again.changed, 0, JSON.stringify(events.filter((e) => e.type === 'step-planned' && e.actions.length)));
});

test('a candidate that fails haproxy -c leaves the live file as it was and says why in one line', async () => {
  const { env } = tempHome();
  const pool = lbPool({ checkFails: true });
  pool.get('lb').files.set(HAPROXY_CFG, { content: STALE, mode: 0o644, owner: 'root', group: 'root' });
  const events: EngineEvent[] = [];
  const r = await runRunbooks({ mode: 'apply', runbooks: [haproxyRunbook], inventory: fakeInventory(SERVERS), transport: pool.transport, events: (e) => events.push(e), env, resumeCommand: 'x' });
  assert.equal(r.ok, false);
  const failed = events.find((e): e is Extract<EngineEvent, { type: 'step-failed' }> => e.type === 'step-failed')!;
  assert.equal(failed.stepId, 'haproxy.config');
  assert.equal(failed.error, "lb: the new haproxy.cfg does not pass haproxy -c ([ALERT]    (1) : config : parsing [x:3] : unknown keyword 'bogus'); /etc/haproxy/haproxy.cfg was left as it was");
  assert.equal(pool.get('lb').files.get(HAPROXY_CFG)!.content, STALE);
  assert.equal(pool.get('lb').files.has(HAPROXY_CANDIDATE), false);
});
