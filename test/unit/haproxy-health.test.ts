/**
 * The DB health service (assets/haproxy/pg-health.py) as it runs on a DB node, with a stand-in
 * psql whose answer the test sets: 200 only for a writable primary, 503 for a standby, a
 * read-only primary, a failing or hanging psql; HAProxy's default check (OPTIONS / HTTP/1.0)
 * and HEAD are answered; each check is logged; the password reaches psql only through
 * PGPASSFILE (the service's environment), never its argv.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../../../assets/haproxy/pg-health.py', import.meta.url));
const noPython = spawnSync('python3', ['--version']).status !== 0;

/** A raw HTTP request; returns the status line and body. */
function request(port: number, text: string): Promise<{ status: string; body: string }> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let data = '';
    s.on('data', (d) => (data += d.toString()));
    s.on('end', () => {
      const [head = '', body = ''] = data.split('\r\n\r\n');
      resolve({ status: head.split('\r\n')[0] ?? '', body });
    });
    s.on('error', reject);
    s.write(text);
  });
}

async function waitListening(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = connect(port, '127.0.0.1');
      s.on('connect', () => (s.destroy(), r(true)));
      s.on('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the health service did not listen');
}

test('pg-health.py: 200 only on the writable primary, 503 otherwise, every check logged', { skip: noPython ? 'python3 is not installed on this machine' : false }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ha-health-'));
  const answer = join(dir, 'answer');
  const argvLog = join(dir, 'argv');
  // Stand-in psql: records its argv and PGPASSFILE, prints the answer file (or fails / hangs).
  const psql = join(dir, 'psql');
  writeFileSync(
    psql,
    `#!/bin/bash\necho "$* PGPASSFILE=$PGPASSFILE" >> ${argvLog}\na=$(cat ${answer})\ncase "$a" in\n  fail) echo 'psql: error: connection to server at "127.0.0.1", port 5432 failed: Connection refused' >&2; exit 2;;\n  hang) sleep 30;;\n  *) echo "$a";;\nesac\n`,
  );
  chmodSync(psql, 0o755);
  const port = 20000 + Math.floor(Math.random() * 20000);
  const logs: string[] = [];
  const child: ChildProcess = spawn('python3', [SCRIPT, '--listen', '127.0.0.1', '--port', String(port), '--psql', psql, '--pg-port', '5432', '--timeout', '1'], {
    env: { ...process.env, PGPASSFILE: '/etc/ha-setup/pg-health.pgpass' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d: Buffer) => logs.push(...d.toString().split('\n').filter(Boolean)));
  t.after(() => child.kill('SIGTERM'));
  await waitListening(port);

  const check = async (state: string, req = 'OPTIONS / HTTP/1.0\r\n\r\n') => {
    writeFileSync(answer, state);
    return request(port, req);
  };
  assert.deepEqual(await check('primary'), { status: 'HTTP/1.0 200 OK', body: 'primary\n' });
  assert.deepEqual(await check('primary', 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'), { status: 'HTTP/1.0 200 OK', body: 'primary\n' });
  assert.deepEqual(await check('primary', 'HEAD / HTTP/1.0\r\n\r\n'), { status: 'HTTP/1.0 200 OK', body: '' });
  assert.deepEqual(await check('standby'), { status: 'HTTP/1.0 503 Service Unavailable', body: 'standby\n' });
  assert.deepEqual(await check('read-only'), { status: 'HTTP/1.0 503 Service Unavailable', body: 'read-only\n' });
  const down = await check('fail');
  assert.equal(down.status, 'HTTP/1.0 503 Service Unavailable');
  assert.match(down.body, /^down: psql: error: connection to server at "127\.0\.0\.1", port 5432 failed: Connection refused\n$/);
  assert.equal((await check('something else')).status, 'HTTP/1.0 503 Service Unavailable');
  const t0 = Date.now();
  const hung = await check('hang');
  assert.equal(hung.status, 'HTTP/1.0 503 Service Unavailable');
  assert.match(hung.body, /^down: no answer within 2 s\n$/);
  assert.ok(Date.now() - t0 < 4000, 'a hanging psql is cut off');

  // psql was called as health_check_user over TCP to 127.0.0.1, the password file from the environment.
  const argv = readFileSync(argvLog, 'utf8').trim().split('\n')[0]!;
  assert.match(argv, /^-X -A -t -q -h 127\.0\.0\.1 -p 5432 -U health_check_user -d postgres -c select case when pg_is_in_recovery\(\) then 'standby' .* PGPASSFILE=\/etc\/ha-setup\/pg-health\.pgpass$/);
  // One log line per check, with its verdict.
  await new Promise((r) => setTimeout(r, 100));
  const checks = logs.filter((l) => l.startsWith('check from 127.0.0.1: '));
  assert.deepEqual(checks.slice(0, 5), [
    'check from 127.0.0.1: primary -> 200',
    'check from 127.0.0.1: primary -> 200',
    'check from 127.0.0.1: primary -> 200',
    'check from 127.0.0.1: standby -> 503',
    'check from 127.0.0.1: read-only -> 503',
  ]);
  assert.equal(checks.length, 8);
  assert.match(logs[0]!, /^listening on 127\.0\.0\.1:\d+, checking 127\.0\.0\.1:5432 as health_check_user$/);
});
