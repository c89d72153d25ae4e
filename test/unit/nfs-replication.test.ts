/**
 * The replication pieces, run for real on this machine (bash, openssl, rsync, ssh-keygen):
 *  - the key the server derives from the secret (assets/nfs/replication-key.sh) is a valid
 *    OpenSSH key whose public half is exactly what the jump host computes for the peer;
 *  - the push script runs rsync only while this host holds the VIP, and the peer's forced
 *    command (the receiver) accepts that rsync and refuses everything else.
 * ssh itself is replaced by a stand-in that runs the forced command locally with
 * SSH_ORIGINAL_COMMAND set, as sshd does; rsync and the scripts are the real ones.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { publicKeyFromSeed } from '../../runbooks/lib/nfs-key.js';
import { NFS_PATHS } from '../../runbooks/lib/nfs-facts.js';
import { nfsOptions } from '../../runbooks/lib/nfs-options.js';
import { receiveScript, renderNfsAsset, replicateScript } from '../../runbooks/lib/nfs-render.js';

const have = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

test('the key derived on the server from the secret is a valid OpenSSH ed25519 key; its public half is what the jump host computes', (t) => {
  for (const c of ['openssl', 'ssh-keygen', 'od', 'base64']) if (!have(c)) return t.skip(`${c} is not installed`);
  const dir = mkdtempSync(join(tmpdir(), 'nfs-key-'));
  try {
    const script = join(dir, 'keygen');
    writeFileSync(script, renderNfsAsset('replication-key.sh'), { mode: 0o755 });
    // As the step sends it (a heredoc: the seed and a newline), and without the newline.
    for (const [seed, input] of [['Tabc-DEF_123456789012345', 'Tabc-DEF_123456789012345\n'], ["a secret with spaces and 'quotes'", "a secret with spaces and 'quotes'"]] as const) {
      const key = join(dir, 'sub', 'key');
      const r = spawnSync('bash', [script, key, 'ha-setup-nfs-replication@nfs_primary'], { input, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const expected = publicKeyFromSeed(seed, 'ha-setup-nfs-replication@nfs_primary');
      assert.equal(readFileSync(`${key}.pub`, 'utf8').trim(), expected);
      const y = spawnSync('ssh-keygen', ['-y', '-f', key], { encoding: 'utf8' });
      assert.equal(y.status, 0, y.stderr);
      assert.equal(y.stdout.trim(), expected, 'ssh-keygen reads the private key and derives the same public key');
      assert.equal(statSync(key).mode & 0o777, 0o600);
      rmSync(join(dir, 'sub'), { recursive: true });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

interface Setup {
  dir: string;
  src: string;
  dst: string;
  replaced: string;
  env: NodeJS.ProcessEnv;
  push(vip: string): ReturnType<typeof spawnSync>;
  receive(command: string): ReturnType<typeof spawnSync>;
}

function setup(): Setup {
  // Under /var/tmp: options.nfs refuses /tmp (lost on reboot).
  const dir = mkdtempSync('/var/tmp/nfs-repl-');
  const src = join(dir, 'share-active');
  const dst = join(dir, 'share-standby');
  const replaced = join(dir, 'replaced');
  const bin = join(dir, 'bin');
  for (const d of [src, dst, bin]) mkdirSync(d, { recursive: true });
  // The receiver for the standby, whose share is `dst` (the same path on both servers in real
  // life; here two directories, so the push script's target is rewritten to dst).
  const o = nfsOptions({ nfs: { exportDir: dst } });
  const recv = join(bin, 'receive');
  writeFileSync(recv, receiveScript('nfs_standby', o).replaceAll(NFS_PATHS.replaced, replaced), { mode: 0o755 });
  // ssh stand-in: drop the options and the host, run the forced command as sshd would.
  writeFileSync(
    join(bin, 'ssh'),
    `#!/bin/sh\nwhile [ $# -gt 0 ]; do case $1 in -o|-i|-l) shift 2;; -*) shift;; *) shift; break;; esac; done\nSSH_ORIGINAL_COMMAND="$*" SSH_CLIENT='198.18.0.13 4242 22' exec ${recv}\n`,
    { mode: 0o755 },
  );
  chmodSync(join(bin, 'ssh'), 0o755);
  // logger may be missing or log to nowhere: a stand-in that prints to stderr.
  writeFileSync(join(bin, 'logger'), '#!/bin/sh\nshift 2; echo "logger: $*" >&2\n', { mode: 0o755 });
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
  return {
    dir,
    src,
    dst,
    replaced,
    env,
    push(vip) {
      const script = join(bin, `push-${vip}`);
      const text = replicateScript('nfs_primary', nfsOptions({ nfs: { exportDir: src } }), 'peer.invalid', vip)
        .replaceAll(NFS_PATHS.replaced, replaced)
        .replace(`root@peer.invalid:${src}/`, `root@peer.invalid:${dst}/`);
      writeFileSync(script, text, { mode: 0o755 });
      return spawnSync('sh', [script], { env, encoding: 'utf8' });
    },
    receive(command) {
      return spawnSync(recv, [], { env: { ...env, SSH_ORIGINAL_COMMAND: command, SSH_CLIENT: '198.18.0.99 1 22' }, encoding: 'utf8', input: '' });
    },
  };
}

test('the push runs only on the VIP holder, copies through the restricted receiver, keeps what it replaces or deletes', (t) => {
  if (!have('rsync') || !have('ip')) return t.skip('rsync or ip is not installed');
  const s = setup();
  try {
    writeFileSync(join(s.src, 'a.txt'), 'from app1\n');
    mkdirSync(join(s.src, 'sub'));
    writeFileSync(join(s.src, 'sub', 'b.bin'), Buffer.alloc(70_000, 7));
    // Not holding the VIP (an address this machine does not have): nothing happens.
    const idle = s.push('198.18.0.254');
    assert.equal(idle.status, 0, String(idle.stderr));
    assert.ok(!existsSync(join(s.dst, 'a.txt')), 'a server without the VIP does not push');
    // Holding it (127.0.0.1 is on lo here): the share is copied.
    const r = s.push('127.0.0.1');
    assert.equal(r.status, 0, String(r.stderr));
    assert.equal(readFileSync(join(s.dst, 'a.txt'), 'utf8'), 'from app1\n');
    assert.equal(readFileSync(join(s.dst, 'sub', 'b.bin')).length, 70_000);
    // A deletion and a change on the active side: mirrored, the old versions kept aside.
    rmSync(join(s.src, 'a.txt'));
    writeFileSync(join(s.src, 'sub', 'b.bin'), 'new\n');
    const r2 = s.push('127.0.0.1');
    assert.equal(r2.status, 0, String(r2.stderr));
    assert.ok(!existsSync(join(s.dst, 'a.txt')));
    assert.equal(readFileSync(join(s.dst, 'sub', 'b.bin'), 'utf8'), 'new\n');
    const day = new Date().toISOString().slice(0, 10);
    assert.equal(readFileSync(join(s.replaced, day, 'a.txt'), 'utf8'), 'from app1\n', 'the deleted file is kept under nfs-replaced/<date>');
    assert.equal(readFileSync(join(s.replaced, day, 'sub', 'b.bin')).length, 70_000);
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test('the forced command refuses anything but an rsync receiver into the share', () => {
  const s = setup();
  try {
    const refused = [
      'sh -c id',
      'rsync --server --sender -logDtpre.iLsfxCIvu . /etc/',
      `rsync --server -logDtpre.iLsfxCIvu . /etc/`,
      `rsync --server -logDtpre.iLsfxCIvu --remove-source-files . ${s.dst}/`,
      `rsync --server -logDtpre.iLsfxCIvu --backup-dir /etc . ${s.dst}/`,
      `rsync --server -logDtpre.iLsfxCIvu . ${s.dst}/; id`,
      `rsync --server -logDtpre.iLsfxCIvu . ${s.dst}/ $(id)`,
      `rsync --server -e. . ${s.dst}/ /tmp/`,
      '',
    ];
    for (const cmd of refused) {
      const r = s.receive(cmd);
      assert.notEqual(r.status, 0, `accepted: ${JSON.stringify(cmd)}`);
      assert.match(String(r.stderr), /ha-setup: refused/, cmd);
    }
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});
