/**
 * The SSH transport against a real OpenSSH sshd on 127.0.0.1 (test/helpers/sshd.ts), and the
 * local transport on this machine. The "remote" host is this machine, so server state (files,
 * owners, processes in /proc) is checked directly.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, openSync, readdirSync, readFileSync, closeSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Secret, heredoc, sh } from '../../source/engine/shell.js';
import { createSshTransport, type ConnectOptions } from '../../source/transport/connect.js';
import { LocalTransport } from '../../source/transport/local.js';
import type { SshTransport, UnknownHostKey } from '../../source/transport/ssh.js';
import { TransportError } from '../../source/transport/types.js';
import type { SshSettings } from '../../source/inventory/types.js';
import { createTestUser, freePort, sshdUnavailable, startSshd, type Sshd, type TestUser } from '../helpers/sshd.js';

const unavailable = sshdUnavailable();
const BACKUP_ROOT = '/var/lib/ha-setup';

/** argv of every process on this machine. */
function processes(): string[][] {
  const out: string[][] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const raw = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
      if (raw) out.push(raw.replace(/\0$/, '').split('\0'));
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}
const running = (argv: string[]) => processes().some((p) => p.length === argv.length && p.every((w, i) => w === argv[i]));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rnd = () => randomBytes(4).toString('hex');
const uidOf = (user: string) => Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
const gidOf = (group: string) => Number(execFileSync('getent', ['group', group], { encoding: 'utf8' }).split(':')[2]);
const keygenFingerprint = (pub: string) => execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', pub], { encoding: 'utf8' }).split(' ')[1]!;
const logins = (s: Sshd, user = 'root') => s.log().split('\n').filter((l) => l.startsWith(`Accepted publickey for ${user} `) || l.startsWith(`Accepted password for ${user} `)).length;

function isTransportError(kind: TransportError['kind'], ...parts: string[]) {
  return (err: unknown) => {
    assert.ok(err instanceof TransportError, `expected a TransportError, got ${String(err)}`);
    assert.equal(err.kind, kind, err.message);
    for (const p of parts) assert.ok(err.message.includes(p), `message should contain "${p}": ${err.message}`);
    assert.ok(!err.message.includes('\n'), 'one line');
    return true;
  };
}

describe('SshTransport against a real sshd', { skip: unavailable ?? false }, () => {
  let sshd: Sshd;
  let t: SshTransport;
  const opened: SshTransport[] = [];
  let backupRootExisted = true;
  const writeBase = `/tmp/ha-e2e-wf-${rnd()}`;

  const mk = (settings: SshSettings = {}, options: ConnectOptions = {}, s: Sshd = sshd): SshTransport => {
    const tr = createSshTransport(
      { alias: 'e2e', address: '127.0.0.1' },
      { port: s.port, identity: s.clientKeyPath, knownHosts: s.knownHostsPath, configFile: '/nonexistent/ssh_config', ...settings },
      { env: { HOME: s.dir, USER: 'root' }, ...options },
    );
    opened.push(tr);
    return tr;
  };

  before(async () => {
    backupRootExisted = existsSync(BACKUP_ROOT);
    sshd = await startSshd({ passwordAuth: true });
    t = mk();
    await t.connect();
  });
  after(async () => {
    await Promise.allSettled(opened.map((o) => o.close()));
    await sshd?.stop();
    rmSync(writeBase, { recursive: true, force: true });
    rmSync(join(BACKUP_ROOT, 'backups', writeBase), { recursive: true, force: true });
    if (!backupRootExisted) rmSync(BACKUP_ROOT, { recursive: true, force: true });
  });

  test('the test sshd listens on 127.0.0.1 only', () => {
    const listening = (file: string) =>
      readFileSync(file, 'utf8')
        .split('\n')
        .slice(1)
        .map((l) => l.trim().split(/\s+/))
        .filter((f) => f[3] === '0A' && parseInt(f[1]?.split(':')[1] ?? '', 16) === sshd.port)
        .map((f) => f[1]!.split(':')[0]);
    assert.deepEqual(listening('/proc/net/tcp'), ['0100007F']);
    assert.deepEqual(existsSync('/proc/net/tcp6') ? listening('/proc/net/tcp6') : [], []);
  });

  test('exec: lines as they arrive, stdout/stderr, exit code, prelude (cd /, LC_ALL=C)', async () => {
    const lines: string[] = [];
    const r = await t.exec('echo one\necho two >&2\npwd\necho "$LC_ALL"\nprintf last\nexit 3', {
      onLine: (stream, line) => lines.push(`${stream}:${line}`),
    });
    assert.equal(r.code, 3);
    assert.equal(r.stdout, 'one\n/\nC\nlast');
    assert.equal(r.stderr, 'two\n');
    assert.deepEqual(lines.filter((l) => l.startsWith('stdout:')), ['stdout:one', 'stdout:/', 'stdout:C', 'stdout:last']);
    assert.deepEqual(lines.filter((l) => l.startsWith('stderr:')), ['stderr:two']);
    assert.equal(r.killed, undefined);
    assert.ok(r.durationMs >= 0 && r.durationMs < 5000);
  });

  test('set -euo pipefail: a failing command, a failing pipe and an unset variable stop the script', async () => {
    const e = await t.exec('false\necho after');
    assert.equal(e.code, 1);
    assert.equal(e.stdout, '');
    const p = await t.exec('false | true\necho after');
    assert.equal(p.code, 1);
    assert.equal(p.stdout, '');
    const u = await t.exec('echo "$NOT_SET_ANYWHERE"\necho after');
    assert.notEqual(u.code, 0);
    assert.match(u.stderr, /NOT_SET_ANYWHERE: unbound variable/);
  });

  test('a script with quotes, $, backslashes and a heredoc runs exactly as written', async () => {
    const payload = `it's "quoted" $HOME \\n \`tick\` %s\nsecond line`;
    const doc = heredoc(payload);
    const file = join(sshd.dir, `q-${rnd()}.txt`);
    const script = [`cat > ${sh`${file}`} ${doc.open}`, doc.body, sh`cat -- ${file}`, `echo "a'b" 'c"d' $'e\\tf'`].join('\n');
    const r = await t.exec(script);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(file, 'utf8'), `${payload}\n`);
    assert.equal(r.stdout, `${payload}\na'b c"d e\tf\n`);
  });

  test('the script text is never in any process argv (root and through sudo checked below)', async () => {
    const marker = `HA_MARK_${rnd()}`;
    const dur = `2.${Math.floor(Math.random() * 900) + 100}`;
    const run = t.exec(`: ${marker}\nsleep ${dur}\necho ${marker}-done`);
    let seen = false;
    for (let i = 0; i < 40 && !seen; i++) {
      await sleep(50);
      seen = running(['sleep', dur]);
    }
    assert.ok(seen, 'control: the remote sleep is visible in /proc');
    const leaks = processes().filter((argv) => argv.join(' ').includes(marker));
    assert.deepEqual(leaks, []);
    const r = await run;
    assert.equal(r.stdout, `${marker}-done\n`);
  });

  test('writeFile: atomic rename, mode/owner/group, parent dirs, backup (cp -p), unchanged on identical writes', async () => {
    const target = join(writeBase, 'etc/app/app.conf');
    const r1 = await t.writeFile(target, 'one\n', { mode: 0o640, owner: 'nobody', group: 'nogroup' });
    assert.deepEqual(r1, { changed: true });
    let st = statSync(target);
    assert.equal(st.mode & 0o7777, 0o640);
    assert.equal(st.uid, uidOf('nobody'));
    assert.equal(st.gid, gidOf('nogroup'));
    assert.equal(statSync(dirname(target)).mode & 0o777, 0o755);
    assert.equal(readFileSync(target, 'utf8'), 'one\n');

    assert.deepEqual(await t.writeFile(target, 'one\n', { mode: 0o640, owner: 'nobody', group: 'nogroup' }), { changed: false });

    const oldFd = openSync(target, 'r');
    const r3 = await t.writeFile(target, 'two\n', { mode: 0o640, owner: 'nobody', group: 'nogroup' });
    assert.equal(r3.changed, true);
    assert.match(r3.backupPath ?? '', new RegExp(`^${BACKUP_ROOT}/backups${target}\\.\\d{8}T\\d{6}Z$`));
    assert.equal(readFileSync(r3.backupPath!, 'utf8'), 'one\n');
    const bst = statSync(r3.backupPath!);
    assert.equal(bst.mode & 0o7777, 0o640, 'cp -p keeps the mode');
    assert.equal(bst.uid, uidOf('nobody'), 'cp -p keeps the owner');
    assert.equal(statSync(join(BACKUP_ROOT, 'backups')).mode & 0o777, 0o700);
    // The old inode still holds the old content: the file was replaced by a rename.
    assert.equal(readFileSync(oldFd, 'utf8'), 'one\n');
    closeSync(oldFd);
    st = statSync(target);
    assert.equal(readFileSync(target, 'utf8'), 'two\n');
    assert.deepEqual(readdirSync(dirname(target)), ['app.conf'], 'no temp file left next to it');
    assert.deepEqual(readdirSync(sshd.remoteTmp), [], 'the upload dir is removed');

    // Only the mode differs: changed, and a second backup with its own name.
    const r4 = await t.writeFile(target, 'two\n', { mode: 0o600, owner: 'nobody', group: 'nogroup' });
    assert.equal(r4.changed, true);
    assert.ok(r4.backupPath && r4.backupPath !== r3.backupPath);
    assert.equal(statSync(target).mode & 0o7777, 0o600);

    const r5 = await t.writeFile(target, 'three\n', { mode: 0o600, backup: false });
    assert.deepEqual(r5, { changed: true });
    assert.equal(statSync(target).uid, 0, 'owner defaults to root');
    assert.equal(statSync(target).gid, 0);
  });

  test('readFile: content as root (exact bytes), null when missing, an error for a directory', async () => {
    const f = join(sshd.dir, `secret-${rnd()}`);
    writeFileSync(f, 'line 1\nno newline at end', { mode: 0o600 });
    assert.equal(await t.readFile(f), 'line 1\nno newline at end');
    assert.equal(await t.readFile(join(sshd.dir, 'does-not-exist')), null);
    await assert.rejects(t.readFile(sshd.dir), isTransportError('command', `reading ${sshd.dir} failed`));
  });

  test('one connection for many commands, at most 8 channels at once (12 in parallel)', async () => {
    const before = logins(sshd);
    const tr = mk();
    const rs = await Promise.all(Array.from({ length: 12 }, (_, i) => tr.exec(`sleep 0.2\necho ${i}`)));
    rs.forEach((r, i) => assert.equal(r.stdout, `${i}\n`));
    assert.equal(logins(sshd) - before, 1, 'exactly one SSH login for all of them');
  });

  test('command timeout ends the whole process group; abort too', async () => {
    const a = `31.${rnd().slice(0, 3).replace(/\D/g, '1')}`;
    const b = `32.${rnd().slice(0, 3).replace(/\D/g, '1')}`;
    const r = await t.exec(`sleep ${a} &\nsleep ${b}\necho not reached`, { timeoutMs: 1000 });
    assert.equal(r.killed, 'timeout');
    assert.notEqual(r.code, 0);
    assert.equal(r.stdout, '');
    assert.ok(r.durationMs < 4000, `took ${r.durationMs} ms`);
    await sleep(300);
    assert.equal(running(['sleep', a]), false, 'the background sleep is gone');
    assert.equal(running(['sleep', b]), false);

    const ac = new AbortController();
    setTimeout(() => ac.abort(), 300);
    const c = `33.${Date.now() % 1000}`;
    const ab = await t.exec(`sleep ${c}`, { signal: ac.signal });
    assert.equal(ab.killed, 'aborted');
    await sleep(300);
    assert.equal(running(['sleep', c]), false);
  });

  test('output beyond the cap is cut in the middle, with a note; lines still all stream', async () => {
    let count = 0;
    const r = await t.exec('for i in $(seq 1 40000); do echo "line $i ........................................"; done', {
      onLine: () => count++,
    });
    assert.equal(count, 40000);
    assert.ok(r.stdout.length < 1.1 * 1024 * 1024, `kept ${r.stdout.length}`);
    assert.match(r.stdout, /^line 1 \./);
    assert.match(r.stdout, /\[ha-setup: \d+ characters of stdout not kept\]/);
    assert.match(r.stdout, /line 40000 \.+\n$/);
  });

  test('a dropped connection fails the running command clearly; the next command reconnects', async () => {
    const tr = mk();
    const before = logins(sshd);
    await tr.connect();
    // Kill this session's sshd process (the first sshd above the script).
    const kill = 'p=$$\nwhile [ "$(cat /proc/$p/comm)" != sshd ]; do p=$(cut -d" " -f4 /proc/$p/stat); done\nkill -9 "$p"\nsleep 5';
    await assert.rejects(tr.exec(kill), isTransportError('unreachable', 'connection to 127.0.0.1:', 'was lost'));
    const r = await tr.exec('echo back');
    assert.equal(r.stdout, 'back\n');
    assert.equal(logins(sshd) - before, 2);
  });

  test('ProxyJump: the target is reached through a jump host (forwardOut as the socket)', async () => {
    const before = logins(sshd);
    const tr = mk({ proxyJump: `root@127.0.0.1:${sshd.port}` });
    const r = await tr.exec('echo "$SSH_CONNECTION"');
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^127\.0\.0\.1 \d+ 127\.0\.0\.1 \d+\n$/);
    assert.equal(logins(sshd) - before, 2, 'one login to the jump host, one to the target through it');
  });

  test('a wrong key is an auth error naming user@host:port and the key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ha-e2e-key-'));
    try {
      const wrong = join(dir, 'id_wrong');
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', wrong], { stdio: 'ignore' });
      await assert.rejects(mk({ identity: wrong }).connect(), isTransportError('auth', `authentication failed for root@127.0.0.1:${sshd.port} with key ${wrong}`, 'check --identity'));
      await assert.rejects(mk({ identity: join(dir, 'missing') }).connect(), isTransportError('auth', `cannot read the key ${join(dir, 'missing')}`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a closed port is "connection refused"; a silent port is a connect timeout', async () => {
    const port = await freePort();
    await assert.rejects(mk({ port }).connect(), isTransportError('unreachable', `connection refused by 127.0.0.1:${port}`, 'check that sshd runs'));

    const sockets: Socket[] = [];
    const silent: Server = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const sp = (silent.address() as { port: number }).port;
    try {
      const t0 = Date.now();
      await assert.rejects(mk({ port: sp }, { connectTimeoutMs: 500 }).connect(), isTransportError('timeout', `no SSH answer from 127.0.0.1:${sp} within 0.5 s`));
      assert.ok(Date.now() - t0 < 3000);
    } finally {
      sockets.forEach((s) => s.destroy());
      silent.close();
    }
  });

  describe('host keys', () => {
    let hk: Sshd;
    let fp = '';
    const mkHk = (options: ConnectOptions = {}) => mk({}, options, hk);
    before(async () => {
      hk = await startSshd({ prefillKnownHosts: false });
      fp = keygenFingerprint(`${hk.hostKeyPath}.pub`);
    });
    after(async () => hk?.stop());

    test('unknown key without --accept-new-host-keys: refused, fingerprint and the fix shown, nothing written', async () => {
      await assert.rejects(
        mkHk().connect(),
        isTransportError('host-key-unknown', `[127.0.0.1]:${hk.port}`, `ssh-ed25519 ${fp}`, '--accept-new-host-keys', `ssh-keyscan -p ${hk.port} 127.0.0.1 >> ${hk.knownHostsPath}`),
      );
      assert.equal(readFileSync(hk.knownHostsPath, 'utf8'), '');
    });

    test('onUnknownHostKey is asked: no refuses, yes accepts and appends', async () => {
      const asked: UnknownHostKey[] = [];
      await assert.rejects(
        mkHk({ onUnknownHostKey: async (k) => (asked.push(k), false) }).connect(),
        isTransportError('host-key-unknown', 'was not accepted'),
      );
      assert.deepEqual(asked[0], { host: '127.0.0.1', port: hk.port, keyType: 'ssh-ed25519', fingerprint: fp, knownHostsFile: hk.knownHostsPath, otherKeyTypes: [] });
      assert.equal(readFileSync(hk.knownHostsPath, 'utf8'), '');

      const yes = mkHk({ onUnknownHostKey: async () => true });
      assert.equal((await yes.exec('echo ok')).stdout, 'ok\n');
      assert.equal(spawnSync('ssh-keygen', ['-F', `[127.0.0.1]:${hk.port}`, '-f', hk.knownHostsPath]).status, 0, 'ssh-keygen -F finds the new entry');
      writeFileSync(hk.knownHostsPath, '');
    });

    test('--accept-new-host-keys accepts and appends (plain); later connections match without it', async () => {
      await mkHk({ acceptNewHostKeys: true }).connect();
      const text = readFileSync(hk.knownHostsPath, 'utf8');
      assert.equal(text, `[127.0.0.1]:${hk.port} ssh-ed25519 ${hk.hostKey().toString('base64')}\n`);
      await mkHk().connect();
      assert.equal(readFileSync(hk.knownHostsPath, 'utf8'), text, 'nothing appended on a match');
    });

    test('a CHANGED key is refused even with --accept-new-host-keys, naming the host, file and line; the fix works', async () => {
      await hk.rotateHostKey();
      const newFp = keygenFingerprint(`${hk.hostKeyPath}.pub`);
      let asked = false;
      await assert.rejects(
        mkHk({ acceptNewHostKeys: true, onUnknownHostKey: async () => (asked = true) }).connect(),
        isTransportError('host-key-changed', `[127.0.0.1]:${hk.port}`, 'CHANGED', newFp, `${hk.knownHostsPath} line 1`, `ssh-keygen -R '[127.0.0.1]:${hk.port}' -f ${hk.knownHostsPath}`),
      );
      assert.equal(asked, false, 'never asked about a changed key');
      assert.equal(readFileSync(hk.knownHostsPath, 'utf8').split('\n').filter(Boolean).length, 1, 'known_hosts untouched');
      // The fix the message gives, then accepting the new key, works.
      execFileSync('ssh-keygen', ['-R', `[127.0.0.1]:${hk.port}`, '-f', hk.knownHostsPath], { stdio: 'ignore' });
      await mkHk({ acceptNewHostKeys: true }).connect();
    });

    test('a key listed under @revoked is refused', async () => {
      const key = hk.hostKey().toString('base64');
      writeFileSync(hk.knownHostsPath, `[127.0.0.1]:${hk.port} ssh-ed25519 ${key}\n@revoked * ssh-ed25519 ${key}\n`);
      await assert.rejects(mkHk({ acceptNewHostKeys: true }).connect(), isTransportError('host-key-changed', '@revoked', `${hk.knownHostsPath} line 2`));
    });
  });

  const noSudo = spawnSync('sudo', ['-V']).error ? 'sudo is not installed here (apt-get install sudo); the lab covers it' : false;
  describe('sudo and other users', { skip: noSudo }, () => {
    let ok: TestUser;
    let nopw: TestUser;
    before(() => {
      ok = createTestUser('nopasswd');
      nopw = createTestUser('password');
    });
    after(() => {
      ok?.remove();
      nopw?.remove();
    });

    test('login as a NOPASSWD user: plain, sudo (root), sudo -u another user', async () => {
      const u = mk({ user: ok.name });
      assert.equal(u.user, ok.name);
      assert.equal((await u.exec('id -un')).stdout, `${ok.name}\n`);
      assert.equal((await u.exec('id -un\npwd', { sudo: true })).stdout, 'root\n/\n');
      assert.equal((await u.exec('id -un', { user: 'nobody' })).stdout, 'nobody\n');
      const f = join(sshd.dir, `root-only-${rnd()}`);
      writeFileSync(f, 'root only', { mode: 0o600 });
      assert.equal(await u.readFile(f), 'root only');
      const target = join(writeBase, 'sudo/file.conf');
      assert.deepEqual(await u.writeFile(target, 'x\n', { mode: 0o644 }), { changed: true });
      assert.equal(statSync(target).uid, 0);
      assert.deepEqual(readdirSync(sshd.remoteTmp), []);
    });

    test('through sudo, the script is not in argv either, and a timeout still ends it', async () => {
      const u = mk({ user: ok.name });
      const marker = `HA_MARK_${rnd()}`;
      const dur = `3.${Date.now() % 1000}`;
      const run = u.exec(`: ${marker}\nsleep ${dur}`, { sudo: true, timeoutMs: 1500 });
      let seen = false;
      for (let i = 0; i < 40 && !seen; i++) {
        await sleep(50);
        seen = running(['sleep', dur]);
      }
      assert.ok(seen, 'control: the sleep is visible');
      assert.ok(processes().some((p) => p[0] === 'sudo' && p.includes('-n')), 'control: the command runs under sudo -n');
      assert.deepEqual(processes().filter((argv) => argv.join(' ').includes(marker)), []);
      const r = await run;
      assert.equal(r.killed, 'timeout');
      await sleep(300);
      assert.equal(running(['sleep', dur]), false);
    });

    test('sudo that needs a password is a clear "sudo" error naming user and host, never a hang', async () => {
      const u = mk({ user: nopw.name });
      assert.equal((await u.exec('id -un')).stdout, `${nopw.name}\n`, 'plain commands work');
      const t0 = Date.now();
      await assert.rejects(u.exec('id -un', { sudo: true }), isTransportError('sudo', nopw.name, `grant NOPASSWD sudo to ${nopw.name} on e2e, or log in as root`));
      await assert.rejects(u.writeFile(join(writeBase, 'nope'), 'x', { mode: 0o644 }), isTransportError('sudo'));
      assert.ok(Date.now() - t0 < 5000);
      assert.equal(existsSync(join(writeBase, 'nope')), false);
      assert.deepEqual(readdirSync(sshd.remoteTmp), [], 'the upload dir is removed when sudo refuses');
    });

    test('logged in as root, user: X runs as X (runuser, HOME of X)', async () => {
      const r = await t.exec('id -un\necho "$HOME"', { user: ok.name });
      assert.equal(r.stdout, `${ok.name}\n/home/${ok.name}\n`);
    });

    test('password login with a Secret; a wrong password is an auth error that does not show it', async () => {
      const pw = new Secret('ssh password', ok.password);
      const u = mk({ user: ok.name, identity: undefined }, { password: pw });
      assert.equal((await u.exec('id -un')).stdout, `${ok.name}\n`);
      const bad = new Secret('ssh password', `${ok.password}x`);
      await assert.rejects(mk({ user: ok.name, identity: undefined }, { password: bad }).connect(), (err: unknown) => {
        isTransportError('auth', `authentication failed for ${ok.name}@127.0.0.1:${sshd.port} with the password`)(err);
        assert.ok(!(err as Error).message.includes(ok.password));
        return true;
      });
    });
  });
});

describe('LocalTransport on this machine', () => {
  const local = new LocalTransport({ name: 'jump' });
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'ha-e2e-local-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('exec: same prelude and semantics as over SSH', async () => {
    const lines: string[] = [];
    const r = await local.exec('pwd\necho "$LC_ALL"\necho err >&2\nfalse\necho not reached', { onLine: (s, l) => lines.push(`${s}:${l}`) });
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '/\nC\n');
    assert.equal(r.stderr, 'err\n');
    assert.deepEqual(lines.sort(), ['stderr:err', 'stdout:/', 'stdout:C']);
  });

  test('timeout ends the process group', async () => {
    const a = `34.${Date.now() % 1000}`;
    const r = await local.exec(`sleep ${a} &\nsleep ${a}`, { timeoutMs: 700 });
    assert.equal(r.killed, 'timeout');
    await sleep(200);
    assert.equal(running(['sleep', a]), false);
  });

  test('user: nobody when root (runuser); writeFile with a local backup dir; readFile', { skip: process.getuid?.() === 0 ? false : 'needs root' }, async () => {
    assert.equal((await local.exec('id -un', { user: 'nobody' })).stdout, 'nobody\n');
    const backups = join(dir, 'backups');
    const l = new LocalTransport({ backupDir: backups });
    const target = join(dir, 'conf/a.conf');
    assert.deepEqual(await l.writeFile(target, 'a\n', { mode: 0o640, owner: 'nobody', group: 'nogroup' }), { changed: true });
    assert.deepEqual(await l.writeFile(target, 'a\n', { mode: 0o640, owner: 'nobody', group: 'nogroup' }), { changed: false });
    const r = await l.writeFile(target, 'b\n', { mode: 0o640, owner: 'nobody', group: 'nogroup' });
    assert.match(r.backupPath ?? '', new RegExp(`^${backups}${target}\\.\\d{8}T\\d{6}Z$`));
    assert.equal(readFileSync(r.backupPath!, 'utf8'), 'a\n');
    assert.equal(statSync(target).uid, uidOf('nobody'));
    assert.equal(statSync(target).mode & 0o7777, 0o640);
    assert.equal(await l.readFile(target), 'b\n');
    assert.equal(await l.readFile(join(dir, 'missing')), null);
  });
});
