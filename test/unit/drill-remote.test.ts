/**
 * The probe script the drill runs on an app server, executed for real under bash with a
 * stand-in psql (the real one talks to the VIP in the lab tests): its output protocol, where the
 * password goes (a 0600 passfile from a heredoc, never argv, removed afterwards), the stop file.
 * Also the SSH fault commands for real servers and the CLI's argument errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probeDir, probeScript, stopProbeScript } from '../../source/drill/remote.js';
import { sshFaultScripts } from '../../source/drill/fault.js';
import { drillHosts } from '../../source/drill/run.js';
import { main } from '../../source/cli.js';

const PASSWORD = 'Sup3r-Secret_pw:with\\colon';
const CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

function spec(run: string, failFrom = Infinity) {
  return { run, vip: '198.18.0.100', port: 5432, db: 'lunadirectordb', user: 'lunadirector', password: PASSWORD, ca: CA, maxSeconds: 20, writeTimeout: 1, failFrom };
}

/** Runs the probe with a psql that records its argv and the passfile it was given. */
function runProbe(run: string, opts: { failFrom?: number; setupFails?: boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'probe-'));
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  writeFileSync(
    join(bin, 'psql'),
    [
      '#!/bin/bash',
      `printf '%s\\n' "$*" >> ${dir}/argv`,
      // Replaced atomically: the test reads them while the probe goes on writing.
      `cp "$PGPASSFILE" ${dir}/pgpass.seen.$$ && mv -f ${dir}/pgpass.seen.$$ ${dir}/pgpass.seen`,
      `stat -c %a "$PGPASSFILE" > ${dir}/pgpass.mode.$$ && mv -f ${dir}/pgpass.mode.$$ ${dir}/pgpass.mode`,
      `case "$*" in *"create table"*) ${opts.setupFails ? 'echo "FATAL:  no pg_hba.conf entry for host" >&2; exit 2' : 'exit 0'} ;; esac`,
      `n=$(grep -c insert ${dir}/argv)`,
      `if [ "$n" -ge ${opts.failFrom ?? 1_000_000} ]; then echo 'psql: error: connection to server at "198.18.0.100", port 5432 failed: Connection refused' >&2; exit 2; fi`,
      'echo 00000001',
    ].join('\n'),
  );
  chmodSync(join(bin, 'psql'), 0o755);
  const child = spawn('bash', ['-s'], { env: { PATH: `${bin}:${process.env.PATH}` }, stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let buf = '';
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop()!;
    lines.push(...parts);
  });
  child.stdin.end(`set -euo pipefail\n${probeScript({ ...spec(run), ...opts })}`);
  const exited = new Promise<number>((r) => child.on('close', (c) => r(c ?? -1)));
  return { dir, lines, exited };
}

const waitFor = async (cond: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
};

test('probe: READY, then ACK <n> <timeline> per numbered write, DONE after the stop file; the passfile is gone', async () => {
  const run = 'a1b2c3';
  const p = runProbe(run);
  await waitFor(() => p.lines.filter((l) => l.startsWith('ACK ')).length >= 5);
  assert.equal(p.lines[0], 'READY');
  assert.deepEqual(p.lines.slice(1, 4), ['ACK 1 00000001', 'ACK 2 00000001', 'ACK 3 00000001']);
  // The password: in a 0600 passfile (pgpass-escaped), never in psql's argv.
  assert.equal(readFileSync(join(p.dir, 'pgpass.seen'), 'utf8'), '198.18.0.100:5432:lunadirectordb:lunadirector:Sup3r-Secret_pw\\:with\\\\colon\n');
  assert.equal(readFileSync(join(p.dir, 'pgpass.mode'), 'utf8').trim(), '600');
  const argv = readFileSync(join(p.dir, 'argv'), 'utf8');
  assert.ok(!argv.includes('Sup3r'), 'no password in argv');
  assert.match(argv, /host=198\.18\.0\.100 port=5432 dbname=lunadirectordb user=lunadirector sslmode=verify-full sslrootcert=\/tmp\/ha-setup-drill\.a1b2c3\/ca\.crt/);
  assert.match(argv, /insert into ha_setup_drill \(run, seq\) values \('a1b2c3', 1\) returning substr\(pg_walfile_name\(pg_current_wal_lsn\(\)\), 1, 8\)/);
  const stop = spawn('bash', ['-c', stopProbeScript(run)]);
  await new Promise((r) => stop.on('close', r));
  assert.equal(await p.exited, 0);
  assert.match(p.lines[p.lines.length - 1]!, /^DONE \d+$/);
  assert.equal(existsSync(probeDir(run)), false, 'the work directory (passfile, CA) is removed');
  rmSync(p.dir, { recursive: true, force: true });
});

test('probe: a failed write is ERR <n> <error>, and the probe keeps going', async () => {
  const run = 'd4e5f6';
  const p = runProbe(run, { failFrom: 3 });
  await waitFor(() => p.lines.filter((l) => l.startsWith('ERR ')).length >= 2);
  assert.deepEqual(p.lines.slice(1, 3), ['ACK 1 00000001', 'ACK 2 00000001']);
  assert.match(p.lines[3]!, /^ERR 3 psql: error: connection to server at "198\.18\.0\.100", port 5432 failed: Connection refused$/);
  spawn('bash', ['-c', stopProbeScript(run)]);
  assert.equal(await p.exited, 0);
  rmSync(p.dir, { recursive: true, force: true });
});

test('probe: when the table cannot be created through the VIP it says why and stops', async () => {
  const p = runProbe('f7a8b9', { setupFails: true });
  assert.equal(await p.exited, 3);
  assert.deepEqual(p.lines, ['SETUP-FAILED FATAL:  no pg_hba.conf entry for host']);
  rmSync(p.dir, { recursive: true, force: true });
});

test('real-server faults: cut-link and freeze arm an undo timer on the server before they act', () => {
  const s = sshFaultScripts({ alias: 'db_primary', address: '10.0.0.11', unit: 'postgresql-16', iface: 'ens3' }, 36);
  assert.equal(s['stop-postgres'].inject, 'systemctl stop postgresql-16');
  assert.equal(s['stop-postgres'].undo, null, "the old primary's PostgreSQL is not started again (it is fenced)");
  assert.equal(s['stop-keepalived'].undo, 'systemctl start keepalived');
  const cut = s['cut-link'].inject.split('\n');
  assert.match(cut.find((l) => l.startsWith('systemd-run'))!, /--on-active=36s \/bin\/sh -c 'ip link set dev ens3 up'/);
  assert.ok(cut.findIndex((l) => l.startsWith('systemd-run')) < cut.findIndex((l) => l.includes('link set dev ens3 down')), 'the timer is armed before the link goes down');
  assert.match(s.freeze.inject, /--on-active=36s \/bin\/sh -c 'pkill -CONT -x keepalived; pkill -CONT -u postgres; true'[\s\S]*pkill -STOP -u postgres; pkill -STOP -x keepalived/);
  assert.match(s.reboot.inject, /systemctl reboot/);
});

test('drill hosts: the DB pair, the VIP and the first app server; one-line errors otherwise', () => {
  const inv = (servers: Record<string, string>) => ({ cluster: 'c', topology: 'lb' as const, servers, ssh: {}, options: {} });
  const h = drillHosts(inv({ db_primary: '10.0.0.1', db_standby: '10.0.0.2', db_vip: '10.0.0.9', app2: '10.0.0.6', app1: '10.0.0.5' }));
  assert.equal(h.app.alias, 'app1');
  assert.equal(h.vip, '10.0.0.9');
  assert.throws(() => drillHosts(inv({ db_primary: '10.0.0.1', db_standby: '10.0.0.2', db_vip: '10.0.0.9' })), /^Error: the server table has no app server \(app1\): the drill writes through the VIP from an app server/);
  assert.throws(() => drillHosts(inv({ db_primary: '10.0.0.1', db_standby: '10.0.0.2', app1: '10.0.0.5' })), /no db_vip: add db_vip: <IP>/);
});

test('ha-setup drill: usage, unknown fault (each pair has its own faults)', async () => {
  const out: string[] = [];
  const err: string[] = [];
  const io = { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) }, stdin: process.stdin, env: { ...process.env, HA_SETUP_HOME: mkdtempSync(join(tmpdir(), 'drill-home-')) } };
  assert.equal(await main(['drill'], io), 0);
  assert.match(out.join(''), /Usage: ha-setup drill db --config FILE \[--fault KIND\]/);
  assert.equal(await main(['drill', 'db', '--fault', 'explode'], io), 2);
  assert.match(err.join(''), /--fault explode is not known \(one of: stop-postgres, stop-keepalived, cut-link, freeze, reboot\)/);
  assert.match(out.join(''), /ha-setup drill nfs --config FILE \[--fault KIND\]/);
  assert.equal(await main(['drill', 'nfs', '--fault', 'stop-postgres'], io), 2);
  assert.match(err.join(''), /drill nfs: --fault stop-postgres is not known \(one of: stop-nfs, /);
  assert.equal(await main(['drill', 'web'], io), 2);
  assert.match(err.join(''), /ha-setup drill: unknown "web"/);
  assert.ok(statSync(io.env.HA_SETUP_HOME!).isDirectory());
});
