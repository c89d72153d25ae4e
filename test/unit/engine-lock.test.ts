import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { acquireLock, LockError } from '../../source/engine/lock.js';
import { runRunbooks } from '../../source/engine/runner.js';
import { defineStep, done } from '../../source/engine/step.js';
import type { EngineEvent } from '../../source/engine/events.js';
import { clusterDir } from '../../source/paths.js';
import { FakePool, fakeInventory, tempHome } from '../helpers/fake-transport.js';

const rb = { id: 'rb', title: '', description: '', steps: [defineStep({ id: 's', title: 's', targets: () => ['h1'], facts: {}, plan: () => done('ok') })] };

/** The pid of a process that has exited (and was reaped). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

test('a second run is refused with who holds the lock and how to clear it', async () => {
  const { env } = tempHome();
  const dir = clusterDir('test', env);
  const held = acquireLock((mkdirSync(dir, { recursive: true }), dir), { cluster: 'test', command: 'ha-setup apply --config a.yaml' });
  try {
    const lockFile = join(dir, 'lock');
    assert.equal(statSync(lockFile).mode & 0o777, 0o600);
    const info = JSON.parse(readFileSync(lockFile, 'utf8'));
    assert.deepEqual(Object.keys(info).sort(), ['command', 'hostname', 'pid', 'startedAt']);
    const pool = new FakePool();
    const events: EngineEvent[] = [];
    await assert.rejects(
      runRunbooks({ mode: 'apply', runbooks: [rb], inventory: fakeInventory({ h1: '198.18.0.11' }), transport: pool.transport, events: (e) => events.push(e), env, resumeCommand: 'x' }),
      (e: Error) => {
        assert.ok(e instanceof LockError);
        assert.equal(
          e.message,
          `cluster test is being changed by pid ${process.pid} on ${hostname()} since ${info.startedAt} (started: ha-setup apply --config a.yaml); wait for it, or if that process is gone remove ${lockFile}`,
        );
        return true;
      },
    );
    assert.equal(events.length, 0);
    assert.equal(pool.hosts.size, 0);
    assert.ok(existsSync(lockFile), 'the refused run did not remove the holder’s lock');
  } finally {
    held.release();
  }
  assert.equal(existsSync(join(dir, 'lock')), false, 'release removes the lock');
});

test('a lock of a dead process on this machine is taken over, with a note; released after the run', async () => {
  const { env } = tempHome();
  const dir = clusterDir('test', env);
  mkdirSync(dir, { recursive: true });
  const pid = deadPid();
  writeFileSync(join(dir, 'lock'), JSON.stringify({ pid, hostname: hostname(), startedAt: '2026-01-01T00:00:00.000Z', command: 'ha-setup apply' }));
  const notes: string[] = [];
  const res = await runRunbooks({
    mode: 'apply',
    runbooks: [rb],
    inventory: fakeInventory({ h1: '198.18.0.11' }),
    transport: new FakePool().transport,
    events: () => {},
    env,
    resumeCommand: 'x',
    note: (l) => notes.push(l),
  });
  assert.equal(res.ok, true);
  assert.deepEqual(notes, [`took over the lock of cluster test: pid ${pid} on ${hostname()} (started 2026-01-01T00:00:00.000Z: ha-setup apply) no longer exists`]);
  assert.match(readFileSync(res.transcriptPath, 'utf8'), /note: took over the lock of cluster test/);
  assert.equal(existsSync(join(dir, 'lock')), false);
});

test('a lock from another machine is never taken over, even if the pid does not exist here', () => {
  const { env } = tempHome();
  const dir = clusterDir('test', env);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'lock'), JSON.stringify({ pid: deadPid(), hostname: 'other-jump-host', startedAt: 'T', command: 'ha-setup apply' }));
  assert.throws(() => acquireLock(dir, { cluster: 'test', command: 'x' }), /being changed by pid \d+ on other-jump-host since T/);
});

test('a failing run releases the lock too', async () => {
  const { env } = tempHome();
  const bad = { id: 'rb', title: '', description: '', steps: [defineStep({ id: 's', title: 's', targets: () => ['h1'], facts: {}, plan: () => { throw new Error('boom'); } })] };
  const res = await runRunbooks({ mode: 'apply', runbooks: [bad], inventory: fakeInventory({ h1: '198.18.0.11' }), transport: new FakePool().transport, events: () => {}, env, resumeCommand: 'x' });
  assert.equal(res.ok, false);
  assert.equal(existsSync(join(clusterDir('test', env), 'lock')), false);
});

test('SIGTERM releases the lock (child process)', () => {
  const { env } = tempHome();
  const dir = clusterDir('test', env);
  mkdirSync(dir, { recursive: true });
  const lockUrl = new URL('../../source/engine/lock.js', import.meta.url).href;
  const script = `
    const { acquireLock } = await import(${JSON.stringify(lockUrl)});
    acquireLock(${JSON.stringify(dir)}, { cluster: 'test', command: 'child' });
    process.stdout.write('locked\\n');
    process.kill(process.pid, 'SIGTERM');
    setTimeout(() => {}, 5000);
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { timeout: 10_000 });
  assert.equal(r.stdout.toString(), 'locked\n');
  assert.equal(r.signal, 'SIGTERM', 'the process still dies of the signal');
  assert.equal(existsSync(join(dir, 'lock')), false);
});
