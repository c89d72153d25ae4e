/**
 * The NFS and uninstall fact scripts run for real (read-only) on this machine under
 * `bash -s` with `set -euo pipefail`, as the transports run them; what they report is
 * compared with the machine's own files. (A fact that silently reports "absent" for an
 * existing file would make a plan overwrite it: this is what these tests catch.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import type { ExecResult } from '../../source/transport/types.js';
import type { FactDef } from '../../source/engine/step.js';
import { NFS_PATHS, nfsClientFact, nfsServerFact } from '../../runbooks/lib/nfs-facts.js';
import { installedFact, UNITS } from '../../runbooks/uninstall.js';

function gather<T>(f: FactDef<T>): T {
  const r = spawnSync('bash', ['-s'], { input: `set -euo pipefail\n${f.script}\n`, encoding: 'utf8' });
  assert.equal(r.status, 0, `fact ${f.id} failed: ${r.stderr}`);
  const res: ExecResult = { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr, durationMs: 0 };
  return f.parse(r.stdout, res);
}

const fileOrNull = (p: string): string | null => (existsSync(p) ? readFileSync(p, 'utf8') : null);

test('server fact: files as they are on disk (or null), the export directory, units', (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root (the fact runs with sudo on servers)');
  const f = gather(nfsServerFact('/var/tmp'));
  assert.equal(f.files.authorizedKeys, fileOrNull(NFS_PATHS.authorizedKeys));
  assert.equal(f.files.exports, fileOrNull(NFS_PATHS.exports));
  assert.equal(f.files.ganeshaConf, fileOrNull(NFS_PATHS.ganeshaConf));
  assert.deepEqual(f.dir, { exists: true, owner: 'root', mode: '1777' });
  assert.equal(gather(nfsServerFact('/nonexistent/x')).dir.exists, false);
  const dpkg = spawnSync('dpkg-query', ['-W', '-f=${Status}', 'rsync'], { encoding: 'utf8' });
  assert.equal(f.packages.includes('rsync'), dpkg.stdout.endsWith(' installed'));
});

test('client fact: /etc/fstab as it is, what is mounted at the path', () => {
  const f = gather(nfsClientFact('/'));
  assert.equal(f.fstab, fileOrNull('/etc/fstab'));
  assert.equal(f.mounted?.target, '/');
  assert.equal(f.dirExists, true);
  const none = gather(nfsClientFact('/nonexistent/mount'));
  assert.equal(none.mounted, null);
  assert.equal(none.dirExists, false);
});

test('uninstall fact: /etc/hosts and authorized_keys as they are, backups and ha-setup files found', (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root');
  const f = gather(installedFact(UNITS, ['/etc/postgresql/15/main/postgresql.conf']));
  assert.equal(f.hostsFile, fileOrNull('/etc/hosts'));
  assert.equal(f.authorizedKeys, fileOrNull(NFS_PATHS.authorizedKeys));
  assert.equal(f.postgresqlConf['/etc/postgresql/15/main/postgresql.conf'], fileOrNull('/etc/postgresql/15/main/postgresql.conf'));
  assert.ok(Number.isInteger(f.otherExports));
  assert.ok(f.owned.every((p) => p.includes('ha-setup')));
});
