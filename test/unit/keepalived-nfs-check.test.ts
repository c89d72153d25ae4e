/**
 * assets/keepalived/nfs-check.sh, notify side: the NFS holder generation (track_file
 * nfs_generation, weight 2). Run with bash against temporary directories (HA_LIB_DIR and a share
 * directory); the VIP moving between real servers is proven in the lab (test/lab/drill-nfs.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../../../assets/keepalived/nfs-check.sh', import.meta.url));

function server() {
  const dir = mkdtempSync(join(tmpdir(), 'nfs-check-'));
  for (const d of ['lib', 'run', 'share']) mkdirSync(join(dir, d));
  const env = { ...process.env, HA_LIB_DIR: join(dir, 'lib'), HA_RUN_DIR: join(dir, 'run') };
  return {
    dir,
    share: join(dir, 'share'),
    notify: (state: string) => spawnSync('bash', [SCRIPT, 'notify', state, join(dir, 'share')], { env, encoding: 'utf8' }),
    own: () => Number(readFileSync(join(dir, 'lib', 'nfs-generation'), 'utf8')),
    shared: () => Number(readFileSync(join(dir, 'share', '.ha-setup-nfs-generation'), 'utf8')),
  };
}

/** The effective priority keepalived computes: base + 2 x generation. */
const priority = (base: number, g: number) => base + 2 * g;

test('each takeover outranks the previous holder: generations alternate upwards through the replicated share', () => {
  const p = server();
  const s = server();
  try {
    assert.equal(p.notify('master').status, 0);
    assert.deepEqual([p.own(), p.shared()], [1, 1]);
    // Replication copies the holder's share (with its generation file) to the standby.
    writeFileSync(join(s.share, '.ha-setup-nfs-generation'), `${p.shared()}\n`);
    // nfs_primary freezes; nfs_standby takes over with a generation above the one it saw.
    assert.equal(s.notify('master').status, 0);
    assert.equal(s.own(), 2);
    // The thawed nfs_primary still advertises 151 + 2 x 1: below the new holder's 150 + 2 x 2.
    assert.ok(priority(150, s.own()) > priority(151, p.own()));
    // It goes BACKUP and keeps its generation; replication brings the new holder's file.
    assert.equal(p.notify('backup').status, 0);
    assert.equal(p.own(), 1);
    writeFileSync(join(p.share, '.ha-setup-nfs-generation'), `${s.shared()}\n`);
    // Later the standby fails and nfs_primary takes over again: above 2.
    p.notify('master');
    assert.equal(p.own(), 3);
    assert.ok(priority(151, p.own()) > priority(150, s.own()));
  } finally {
    rmSync(p.dir, { recursive: true, force: true });
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test('a generation file that is not a number counts as 0; the generation stops at 50 (priority at most 251); an unknown state is refused', () => {
  const n = server();
  try {
    writeFileSync(join(n.share, '.ha-setup-nfs-generation'), 'garbage\n');
    n.notify('master');
    assert.equal(n.own(), 1);
    writeFileSync(join(n.share, '.ha-setup-nfs-generation'), '77\n');
    n.notify('master');
    assert.equal(n.own(), 50);
    assert.ok(priority(151, n.own()) <= 254);
    const bad = n.notify('sideways');
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /usage: nfs-check/);
  } finally {
    rmSync(n.dir, { recursive: true, force: true });
  }
});
