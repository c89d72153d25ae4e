/**
 * The NFS drill's server-side scripts (source/drill/nfs-remote.ts), executed for real under bash
 * on this machine: the probe with a stand-in nfs-cp (the real one talks to the VIP in the lab
 * test) and with a "mounted" share (a directory the given mount table says is the share from the
 * VIP), the watcher with a stand-in `ip`, the after-drill listing and the cleanup on directories
 * laid out like an NFS server's export and the replication's kept-aside directory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  nfsCleanupScript,
  nfsFilesScript,
  nfsProbeDir,
  nfsProbeScript,
  nfsWatchScript,
  parseCleanup,
  parseNfsFiles,
  replicationIdleScript,
  stopNfsProbeScript,
  type NfsProbeSpec,
} from '../../source/drill/nfs-remote.js';
import { parseNfsProbeLine, parseNfsWatchLine, parseToolLine } from '../../source/drill/nfs-measure.js';

const VIP = '198.18.0.101';
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Runs a script as the transport does (bash -s, set -euo pipefail first), collecting stdout lines. */
function runScript(script: string, path: string) {
  const child = spawn('bash', ['-s'], { env: { PATH: path, LANG: 'C' }, stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const times: number[] = [];
  const t0 = Date.now();
  let buf = '';
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop()!;
    for (const p of parts) {
      lines.push(p);
      times.push(Date.now() - t0);
    }
  });
  child.stdin.end(`set -euo pipefail\n${script}`);
  const exited = new Promise<number>((r) => child.on('close', (c) => r(c ?? -1)));
  return { child, lines, times, exited };
}

const waitFor = async (cond: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
};

/**
 * A stand-in nfs-cp: records its argv, copies the local file into `share` under the URL's file
 * name and says "copied N bytes" like libnfs's; from the `failFrom`-th call on it fails like
 * libnfs does when nothing listens on the VIP (or hangs, to be killed by the write timeout).
 */
function fakeNfsCp(dir: string, share: string, failFrom: number, how: 'refused' | 'hang' = 'refused'): string {
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  writeFileSync(
    join(bin, 'nfs-cp'),
    [
      '#!/bin/bash',
      `printf '%s\\n' "$*" >> ${dir}/argv`,
      `n=$(wc -l < ${dir}/argv)`,
      `if [ "$n" -ge ${failFrom} ]; then`,
      how === 'hang'
        ? '  sleep 30'
        : `  echo "Failed to mount nfs share : mount_cb: RPC error: Mount failed with error ECONNREFUSED(111) Connection refused(111)" >&2; echo "Failed to open $2" >&2; exit 10`,
      'fi',
      'f=${2##*/}; f=${f%%\\?*}',
      `cp "$1" ${share}/"$f" && echo "copied $(stat -c %s "$1") bytes"`,
    ].join('\n'),
  );
  chmodSync(join(bin, 'nfs-cp'), 0o755);
  return bin;
}

function spec(run: string, over: Partial<NfsProbeSpec> = {}): NfsProbeSpec {
  return { run, vip: VIP, exportDir: '/srv/nfs', mountPath: '/srv/nfs', maxSeconds: 20, writeTimeout: 1, setupSeconds: 2, mountsFile: '/nonexistent', ...over };
}

test('probe (nfs-cp): TOOL, READY, ACK <n> per numbered file written through the VIP URL, DONE after the stop file', async () => {
  const run = 'aa11bb';
  const dir = mkdtempSync(join(tmpdir(), 'nfs-probe-'));
  const share = join(dir, 'share');
  mkdirSync(share);
  const bin = fakeNfsCp(dir, share, Infinity);
  const p = runScript(nfsProbeScript(spec(run)), `${bin}:${SYSTEM_PATH}`);
  await waitFor(() => p.lines.filter((l) => l.startsWith('ACK ')).length >= 5);
  assert.deepEqual(p.lines.slice(0, 4), ['TOOL nfs-cp libnfs, NFSv4 (/srv/nfs is not mounted)', 'READY', 'ACK 1', 'ACK 2']);
  assert.deepEqual(parseToolLine(p.lines[0]!), { tool: 'nfs-cp', detail: 'libnfs, NFSv4 (/srv/nfs is not mounted)' });
  const argv = readFileSync(join(dir, 'argv'), 'utf8').split('\n');
  assert.equal(argv[0], `${nfsProbeDir(run)}/data nfs://${VIP}/srv/nfs/.ha-setup-drill.${run}.setup?version=4`, 'first the setup file');
  assert.equal(argv[1], `${nfsProbeDir(run)}/data nfs://${VIP}/srv/nfs/.ha-setup-drill.${run}.000001?version=4`);
  assert.equal(readFileSync(join(share, `.ha-setup-drill.${run}.000003`), 'utf8'), `${run} 3\n`, 'content: the run and the number');
  spawn('bash', ['-c', stopNfsProbeScript(run)]);
  assert.equal(await p.exited, 0);
  assert.match(p.lines[p.lines.length - 1]!, /^DONE \d+$/);
  const acks = p.lines.map((l, i) => parseNfsProbeLine(l, i)).filter((e) => e !== null);
  assert.deepEqual(acks.map((e) => e.seq), acks.map((_, i) => i + 1), 'consecutive numbers, all acknowledged');
  assert.equal(existsSync(nfsProbeDir(run)), false, 'the work directory is removed');
  rmSync(dir, { recursive: true, force: true });
});

test('probe (nfs-cp): a refused write is ERR <n> with libnfs\'s reason (without the per-file line); a hung one is killed after the write timeout', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nfs-probe-'));
  const share = join(dir, 'share');
  mkdirSync(share);
  const refused = runScript(nfsProbeScript(spec('cc22dd')), `${fakeNfsCp(dir, share, 4)}:${SYSTEM_PATH}`);
  await waitFor(() => refused.lines.filter((l) => l.startsWith('ERR ')).length >= 2);
  spawn('bash', ['-c', stopNfsProbeScript('cc22dd')]);
  assert.equal(await refused.exited, 0);
  assert.deepEqual(refused.lines.slice(1, 5), ['READY', 'ACK 1', 'ACK 2', 'ERR 3 Failed to mount nfs share : mount_cb: RPC error: Mount failed with error ECONNREFUSED(111) Connection refused(111)']);

  const dir2 = mkdtempSync(join(tmpdir(), 'nfs-probe-'));
  mkdirSync(join(dir2, 'share'));
  const hung = runScript(nfsProbeScript(spec('ee33ff')), `${fakeNfsCp(dir2, join(dir2, 'share'), 3, 'hang')}:${SYSTEM_PATH}`);
  await waitFor(() => hung.lines.filter((l) => l.startsWith('ERR ')).length >= 2, 15_000);
  spawn('bash', ['-c', stopNfsProbeScript('ee33ff')]);
  assert.equal(await hung.exited, 0);
  const i = hung.lines.indexOf('ERR 2 no answer within 1 s');
  assert.ok(i > 0, hung.lines.join('\n'));
  const took = hung.times[i]! - hung.times[i - 1]!;
  assert.ok(took >= 900 && took < 5000, `the hung write was given up after ${took} ms`);
  rmSync(dir, { recursive: true, force: true });
  rmSync(dir2, { recursive: true, force: true });
});

test('probe (mount): the share mounted from the VIP is written through the mount with dd conv=fsync; nfs-cp is not used', async () => {
  const run = 'ab12cd';
  const dir = mkdtempSync(join(tmpdir(), 'nfs-probe-'));
  const mnt = join(dir, 'mnt');
  mkdirSync(mnt);
  writeFileSync(join(dir, 'mounts'), `sysfs /sys sysfs rw 0 0\n${VIP}:/srv/nfs ${mnt} nfs4 rw,relatime,vers=4.2,hard,proto=tcp 0 0\n`);
  const bin = fakeNfsCp(dir, mnt, 1); // would fail every write: must not be called
  const p = runScript(nfsProbeScript(spec(run, { mountPath: mnt, mountsFile: join(dir, 'mounts') })), `${bin}:${SYSTEM_PATH}`);
  await waitFor(() => p.lines.filter((l) => l.startsWith('ACK ')).length >= 3);
  spawn('bash', ['-c', stopNfsProbeScript(run)]);
  assert.equal(await p.exited, 0);
  assert.equal(p.lines[0], `TOOL mount ${VIP}:/srv/nfs (nfs4) on ${mnt}`);
  assert.equal(existsSync(join(dir, 'argv')), false, 'nfs-cp was not called');
  assert.equal(readFileSync(join(mnt, `.ha-setup-drill.${run}.000002`), 'utf8'), `${run} 2\n`);
  assert.equal(readFileSync(join(mnt, `.ha-setup-drill.${run}.setup`), 'utf8'), `${run} setup\n`);
  rmSync(dir, { recursive: true, force: true });
});

test('probe: a mount from elsewhere and no nfs-cp, or no write working within the setup time: SETUP-FAILED with the reason', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nfs-probe-'));
  writeFileSync(join(dir, 'mounts'), '198.18.0.11:/srv/nfs /srv/nfs nfs4 rw 0 0\n');
  const p = runScript(nfsProbeScript(spec('de45fa', { mountsFile: join(dir, 'mounts') })), SYSTEM_PATH);
  assert.equal(await p.exited, 3);
  assert.deepEqual(p.lines, [
    'SETUP-FAILED /srv/nfs is mounted from 198.18.0.11:/srv/nfs (nfs4), not from 198.18.0.101:/srv/nfs and nfs-cp (libnfs-utils) is not installed: mount the share (ha-setup apply --runbook nfs) or install libnfs-utils on this app server',
  ]);
  const share = join(dir, 'share');
  mkdirSync(share);
  const q = runScript(nfsProbeScript(spec('fa56de', { setupSeconds: 1 })), `${fakeNfsCp(dir, share, 1)}:${SYSTEM_PATH}`);
  assert.equal(await q.exited, 3);
  assert.match(q.lines[q.lines.length - 1]!, /^SETUP-FAILED Failed to mount nfs share : .*ECONNREFUSED/);
  assert.equal(q.lines.includes('READY'), false);
  rmSync(dir, { recursive: true, force: true });
});

test('watcher: VIP 0/1 when the address comes and goes, FILES <highest> <count> as drill files appear (rsync temporary files ignored)', async () => {
  const run = 'bb44cc';
  const dir = mkdtempSync(join(tmpdir(), 'nfs-watch-'));
  const exp = join(dir, 'export');
  mkdirSync(exp);
  mkdirSync(join(dir, 'bin'));
  // `ip -o addr show`: the VIP is listed while the file "vip" exists.
  writeFileSync(
    join(dir, 'bin', 'ip'),
    `#!/bin/bash\necho "2: eth0    inet 198.18.0.11/24 brd 198.18.0.255 scope global eth0"\n[ -e ${dir}/vip ] && echo "2: eth0    inet ${VIP}/24 scope global secondary eth0"\nexit 0\n`,
  );
  chmodSync(join(dir, 'bin', 'ip'), 0o755);
  const w = runScript(nfsWatchScript(VIP, exp, run), `${join(dir, 'bin')}:${SYSTEM_PATH}`);
  await waitFor(() => w.lines.length >= 2);
  assert.deepEqual(w.lines.slice(0, 2), ['VIP 0', 'FILES 0 0']);
  writeFileSync(join(dir, 'vip'), '');
  await waitFor(() => w.lines.includes('VIP 1'));
  for (const n of [1, 2, 3]) writeFileSync(join(exp, `.ha-setup-drill.${run}.${String(n).padStart(6, '0')}`), `${run} ${n}\n`);
  writeFileSync(join(exp, `.ha-setup-drill.${run}.setup`), '');
  // rsync's temporary file for #4 while a pass is under way on this (receiving) server: it once
  // killed the watcher (10#8rzlLL is no number) and must be neither counted nor fatal.
  writeFileSync(join(exp, `.ha-setup-drill.${run}.000004.8rzlLL`), '');
  writeFileSync(join(exp, '.ha-setup-drill.otherrun.000009'), '');
  await waitFor(() => w.lines.includes('FILES 3 3'));
  writeFileSync(join(exp, `.ha-setup-drill.${run}.000005`), `${run} 5\n`);
  await waitFor(() => w.lines.includes('FILES 5 4'), 3000);
  rmSync(join(dir, 'vip'));
  await waitFor(() => w.lines.filter((l) => l === 'VIP 0').length === 2);
  w.child.kill();
  await w.exited;
  const events = w.lines.map((l) => parseNfsWatchLine(l, 5, 'nfs_standby'));
  assert.deepEqual(events[1], { files: { t: 5, alias: 'nfs_standby', max: 0, count: 0 } });
  assert.ok(events.some((e) => e && 'vip' in e && e.vip.holds));
  rmSync(dir, { recursive: true, force: true });
});

test('after the drill: the files listed by number (right content, wrong content, kept aside); the cleanup removes only the drill\'s', async () => {
  const run = 'cc55dd';
  const dir = mkdtempSync(join(tmpdir(), 'nfs-files-'));
  const exp = join(dir, 'export');
  const replaced = join(dir, 'replaced');
  mkdirSync(exp);
  mkdirSync(join(replaced, '2026-11-22'), { recursive: true });
  mkdirSync(join(replaced, '2026-11-21'), { recursive: true });
  const name = (n: number) => `.ha-setup-drill.${run}.${String(n).padStart(6, '0')}`;
  for (const n of [1, 2, 3, 5, 12]) writeFileSync(join(exp, name(n)), `${run} ${n}\n`);
  writeFileSync(join(exp, name(4)), ''); // copied by a pass between create and write
  writeFileSync(join(exp, `${name(9)}.Xa81Qz`), `${run} 9\n`); // rsync's temporary file: not the file
  writeFileSync(join(exp, `.ha-setup-drill.${run}.setup`), `${run} setup\n`);
  writeFileSync(join(exp, 'app-data.bin'), 'the app');
  writeFileSync(join(exp, name(6).replace(run, 'zz99zz')), 'another drill');
  for (const n of [7, 8]) writeFileSync(join(replaced, '2026-11-22', name(n)), `${run} ${n}\n`);
  writeFileSync(join(replaced, '2026-11-21', 'report.pdf'), 'kept by a real failover');

  const ls = runScript(nfsFilesScript(exp, replaced, run), SYSTEM_PATH);
  assert.equal(await ls.exited, 0);
  assert.deepEqual(parseNfsFiles(ls.lines.join('\n')), { share: [1, 2, 3, 5, 12], bad: [4], replaced: [7, 8] });

  const clean = runScript(nfsCleanupScript(exp, replaced, run), SYSTEM_PATH);
  assert.equal(await clean.exited, 0);
  assert.deepEqual(parseCleanup(clean.lines.join('\n')), { removed: 10, left: 0 }, '8 in the share (numbered, empty, rsync temporary, setup), 2 kept aside');
  assert.deepEqual(readdirSync(exp).sort(), ['.ha-setup-drill.zz99zz.000006', 'app-data.bin']);
  assert.equal(existsSync(join(replaced, '2026-11-22')), false, 'a kept-aside directory that held only drill files is gone');
  assert.deepEqual(readdirSync(join(replaced, '2026-11-21')), ['report.pdf'], "the real failover's kept files stay");
  const again = runScript(nfsCleanupScript(exp, replaced, run), SYSTEM_PATH);
  assert.equal(await again.exited, 0);
  assert.deepEqual(again.lines, ['REMOVED=0', 'LEFT=0']);
  rmSync(dir, { recursive: true, force: true });
});

test('replication idle: waits while the replication service is activating (a pass under way), then returns', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nfs-idle-'));
  mkdirSync(join(dir, 'bin'));
  // systemctl is-active: "activating" for the first three calls, then "inactive".
  writeFileSync(
    join(dir, 'bin', 'systemctl'),
    `#!/bin/bash\necho "$*" >> ${dir}/calls\nif [ "$(wc -l < ${dir}/calls)" -le 3 ]; then echo activating; else echo inactive; exit 3; fi\n`,
  );
  chmodSync(join(dir, 'bin', 'systemctl'), 0o755);
  const t0 = Date.now();
  const w = runScript(replicationIdleScript('ha-setup-nfs-replicate.service'), `${join(dir, 'bin')}:${SYSTEM_PATH}`);
  assert.equal(await w.exited, 0);
  const took = Date.now() - t0;
  assert.ok(took >= 1400 && took < 5000, `returned after ${took} ms (three waits of 0.5 s)`);
  assert.deepEqual(readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n'), Array(4).fill('is-active ha-setup-nfs-replicate.service'));
  rmSync(dir, { recursive: true, force: true });
});
