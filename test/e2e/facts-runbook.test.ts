/**
 * The foundation end to end: the real facts runbook, through the real runner and SSH transport,
 * against a real OpenSSH sshd on 127.0.0.1 (its own host key and authorized key). The "server"
 * is this machine, so its state is asserted by reading this machine's files directly.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSshd, sshdUnavailable, type Sshd } from '../helpers/sshd.js';
import { runRunbooks } from '../../source/engine/runner.js';
import type { EngineEvent } from '../../source/engine/events.js';
import type { Inventory } from '../../source/inventory/types.js';
import { createTransportPool } from '../../source/transport/connect.js';
import { factsRunbook, MARKER_PATH } from '../../runbooks/facts.js';
import { readOsRelease } from '../helpers/os.js';

const why = sshdUnavailable();
let sshd: Sshd;
let home: string;
let savedMarker: string | null = null;

before(async () => {
  if (why) return;
  sshd = await startSshd();
  home = mkdtempSync(join(tmpdir(), 'ha-e2e-home-'));
  if (existsSync(MARKER_PATH)) {
    savedMarker = `${MARKER_PATH}.e2e-saved`;
    renameSync(MARKER_PATH, savedMarker);
  }
});

after(async () => {
  if (why) return;
  await sshd?.stop();
  rmSync(home, { recursive: true, force: true });
  rmSync(MARKER_PATH, { force: true });
  if (savedMarker) renameSync(savedMarker, MARKER_PATH);
});

function inventory(): Inventory {
  return {
    cluster: 'e2e',
    topology: 'lb',
    servers: { db_primary: '127.0.0.1' },
    ssh: { user: 'root', port: sshd.port, identity: sshd.clientKeyPath, knownHosts: sshd.knownHostsPath, configFile: '/dev/null' },
    options: {},
  };
}

async function run(mode: 'apply' | 'plan') {
  const inv = inventory();
  const pool = createTransportPool(inv.ssh, { env: { ...process.env, HOME: home, SSH_AUTH_SOCK: '' } });
  const events: EngineEvent[] = [];
  try {
    const result = await runRunbooks({
      runbooks: [factsRunbook],
      inventory: inv,
      transport: (h) => pool.get(h),
      events: (e) => events.push(e),
      mode,
      env: { ...process.env, HA_SETUP_HOME: home },
      resumeCommand: 'ha-setup apply --yes',
    });
    return { result, events };
  } finally {
    await pool.closeAll();
  }
}

test('first apply gathers OS facts over SSH and writes the marker on the server', { skip: why ?? false }, async () => {
  const { result, events } = await run('apply');
  assert.equal(result.ok, true, JSON.stringify(events.filter((e) => e.type === 'step-failed')));
  const skipped = events.find((e) => e.type === 'step-skipped' && e.stepId === 'os-facts');
  assert.ok(skipped && skipped.type === 'step-skipped');
  // The facts step reports what the server really runs.
  assert.ok(skipped.reason.includes(readOsRelease().PRETTY_NAME!), skipped.reason);
  // The marker is on the server, with the content, owner and mode the step promised.
  const marker = JSON.parse(readFileSync(MARKER_PATH, 'utf8'));
  assert.deepEqual(marker, { cluster: 'e2e', alias: 'db_primary', address: '127.0.0.1', managedBy: 'ha-setup' });
  const st = statSync(MARKER_PATH);
  assert.equal(st.mode & 0o777, 0o644);
  assert.equal(st.uid, 0);
  assert.equal(result.changed, 1);
  const written = events.filter((e) => e.type === 'file-written');
  assert.equal(written.length, 1);
  // The transcript exists, is private, and holds the commands.
  assert.equal(statSync(result.transcriptPath).mode & 0o777, 0o600);
  assert.match(readFileSync(result.transcriptPath, 'utf8'), /cluster\.json/);
});

test('second apply plans nothing and changes nothing', { skip: why ?? false }, async () => {
  const before = statSync(MARKER_PATH);
  const { result, events } = await run('apply');
  assert.equal(result.ok, true);
  assert.equal(result.changed, 0);
  const planned = events.filter((e) => e.type === 'step-planned');
  assert.equal(planned.length, 2);
  for (const p of planned) if (p.type === 'step-planned') assert.deepEqual(p.actions, [], `${p.stepId} planned actions`);
  const skips = events.filter((e) => e.type === 'step-skipped').map((e) => (e.type === 'step-skipped' ? e.reason : ''));
  assert.ok(skips.some((r) => /up to date/.test(r)), skips.join(' | '));
  assert.equal(events.filter((e) => e.type === 'file-written' || e.type === 'command-started').length, 0);
  const afterStat = statSync(MARKER_PATH);
  assert.equal(afterStat.mtimeMs, before.mtimeMs);
  assert.equal(afterStat.ino, before.ino);
});

test('a changed host key is refused, naming the host and the known_hosts file', { skip: why ?? false }, async () => {
  await sshd.rotateHostKey();
  const beforeMarker = readFileSync(MARKER_PATH, 'utf8');
  const { result, events } = await run('apply');
  assert.equal(result.ok, false);
  const failed = events.find((e) => e.type === 'step-failed');
  assert.ok(failed && failed.type === 'step-failed');
  assert.match(failed.error, /127\.0\.0\.1/);
  assert.ok(failed.error.includes(sshd.knownHostsPath), failed.error);
  assert.match(failed.error, /changed/i);
  assert.equal(events.filter((e) => e.type === 'command-started').length, 0);
  assert.equal(readFileSync(MARKER_PATH, 'utf8'), beforeMarker);
});
