/**
 * `ha-setup status` as a command: the --watch flag (with its seconds as the positional), the
 * once/refreshed output on a terminal and elsewhere, --json, and the exit code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { main } from '../../source/cli.js';
import { showHealth, watchInterval } from '../../source/commands/status.js';
import type { ClusterHealth } from '../../source/status/types.js';
import { STATUS_SCHEMA } from '../../source/status/types.js';

function health(healthy: boolean, at: string): ClusterHealth {
  return {
    schema: STATUS_SCHEMA,
    cluster: 'c',
    topology: 'lb',
    checkedAt: at,
    durationMs: 120,
    healthy,
    problems: healthy ? [] : [{ service: 'postgres', host: 'db_primary', message: 'PostgreSQL is down on db_primary', fix: 'ha-setup rejoin db' }],
    notes: [],
    lock: null,
    lastRun: null,
    resumeAt: null,
    hosts: [{ alias: 'db_primary', address: '198.18.0.11', reachable: true, latencyMs: 12 }],
    vips: [],
    postgres: null,
    keepalived: null,
    haproxy: null,
    nfs: null,
  };
}

const sink = (isTTY = false) => {
  const s = { text: '', isTTY, write: (x: string) => void (s.text += x) };
  return s;
};

test('--watch takes its seconds as the next word (default 2); stray words and bad numbers are one-line errors', () => {
  const a = (watch: boolean, positionals: string[]) => ({ positionals, values: { watch } });
  assert.equal(watchInterval(a(false, [])), null);
  assert.equal(watchInterval(a(true, [])), 2);
  assert.equal(watchInterval(a(true, ['5'])), 5);
  assert.equal(watchInterval(a(true, ['0.5'])), 0.5);
  assert.throws(() => watchInterval(a(true, ['0'])), /--watch 0: give the refresh interval in seconds, from 0\.5 to 3600/);
  assert.throws(() => watchInterval(a(true, ['soon'])), /--watch soon/);
  assert.throws(() => watchInterval(a(false, ['5'])), /status takes no argument "5" \(did you mean --watch 5\?\)/);
  assert.throws(() => watchInterval(a(true, ['5', '6'])), /one number of seconds/);
});

test('the CLI parses --watch for status (and --help documents it and the exit code)', async () => {
  const out = sink();
  const err = sink();
  const io = { stdout: out, stderr: err, stdin: process.stdin, env: { ...process.env, HA_SETUP_HOME: '/nonexistent-ha-setup-home' } };
  // No table: the command starts (the flag parsed) and fails on the table, not on the flag.
  const code = await main(['status', '--watch', '3', '--config', '/nonexistent/table.yaml'], io as never);
  assert.equal(code, 1);
  assert.doesNotMatch(err.text, /Unknown option|unexpected argument/);
  assert.match(err.text, /table\.yaml/);
  const help = sink();
  await main(['--help'], { ...io, stdout: help } as never);
  assert.match(help.text, /--watch \[SECONDS\] +status: refresh every SECONDS \(default 2\) until Ctrl-C; status exits\n +0 when healthy, 1 when it found a problem/);
  assert.match(help.text, /status +Live health: .*exit 1 on a problem/);
});

test('once: plain text or --json, exit code 0 when healthy and 1 on a problem', async () => {
  const out = sink();
  assert.equal(await showHealth(async () => health(true, '2026-11-22T03:00:00.000Z'), { stdout: out, env: {} }, { interval: null, json: false, color: false }), 0);
  assert.match(out.text, /^Cluster c \(topology lb\)  checked 2026-11-22 03:00:00Z in 0\.1 s$/m);
  assert.match(out.text, /Healthy: no problem found\.\n$/);
  const j = sink();
  assert.equal(await showHealth(async () => health(false, '2026-11-22T03:00:00.000Z'), { stdout: j, env: {} }, { interval: null, json: true, color: false }), 1);
  const parsed = JSON.parse(j.text) as ClusterHealth;
  assert.equal(parsed.healthy, false);
  assert.equal(parsed.problems[0]!.fix, 'ha-setup rejoin db');
});

test('--watch off a terminal: each refresh after a timestamp line, until stopped; the last refresh decides the exit code', async () => {
  const out = sink(false);
  const stop = new AbortController();
  let n = 0;
  const collect = async () => {
    n++;
    if (n === 3) stop.abort();
    return health(n < 2, `2026-11-22T03:00:0${n}.000Z`);
  };
  const code = await showHealth(collect, { stdout: out, env: {} }, { interval: 0.01, json: false, color: false, signal: stop.signal });
  assert.equal(code, 1);
  const stamps = out.text.match(/^--- .* ---$/gm);
  assert.deepEqual(stamps, ['--- 2026-11-22T03:00:01.000Z ---', '--- 2026-11-22T03:00:02.000Z ---']);
  assert.doesNotMatch(out.text, /\x1b/, 'no cursor movement off a terminal');
  assert.match(out.text, /Healthy: no problem found\.\n--- 2026-11-22T03:00:02\.000Z ---\n/);
  assert.match(out.text, /✗ PostgreSQL is down on db_primary\n {6}fix: ha-setup rejoin db\n/);
});

test('--watch on a terminal redraws in place (home, lines cleared, rest cleared) and restores the cursor; --json watch prints one document per line', async () => {
  const out = sink(true);
  const stop = new AbortController();
  let n = 0;
  await showHealth(
    async () => {
      if (++n === 2) stop.abort();
      return health(true, `2026-11-22T03:00:0${n}.000Z`);
    },
    { stdout: out, env: { TERM: 'xterm' } },
    { interval: 0.01, json: false, color: false, signal: stop.signal },
  );
  assert.ok(out.text.startsWith('\x1b[?25l\x1b[2J\x1b[H'), JSON.stringify(out.text.slice(0, 20)));
  assert.match(out.text, /Refreshed every 0\.01 s; Ctrl-C to stop\.\x1b\[K\x1b\[J/);
  assert.ok(out.text.endsWith('\x1b[?25h\n'));
  assert.equal(out.text.match(/\x1b\[H/g)!.length, 1, 'the second refresh was stopped before it drew');

  const j = sink(true);
  const stop2 = new AbortController();
  let m = 0;
  await showHealth(
    async () => {
      if (++m === 3) stop2.abort();
      return health(true, `2026-11-22T03:00:0${m}.000Z`);
    },
    { stdout: j, env: {} },
    { interval: 0.01, json: true, color: false, signal: stop2.signal },
  );
  const docs = j.text.trim().split('\n').map((l) => JSON.parse(l) as ClusterHealth);
  assert.deepEqual(docs.map((d) => d.checkedAt), ['2026-11-22T03:00:01.000Z', '2026-11-22T03:00:02.000Z']);
});
