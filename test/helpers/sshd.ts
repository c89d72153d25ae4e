/**
 * A real OpenSSH sshd for tests: own temp dir, own host key, an authorized_keys with a fresh
 * client key, listening on 127.0.0.1 only (never 0.0.0.0), started in the foreground (-D -e)
 * so that stop() is a kill of its pid. Needs root and /usr/sbin/sshd (scripts/host-setup.sh).
 *
 * Also: throwaway local users (with or without a NOPASSWD sudoers drop-in) for the sudo tests.
 * Everything created is removed by stop()/remove() and, as a last resort, on process exit.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SSHD = '/usr/sbin/sshd';

/** Why the sshd tests cannot run here, or null when they can. */
export function sshdUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (sshd must run as root to log users in)';
  if (!existsSync(SSHD)) return `${SSHD} is missing: run bash scripts/host-setup.sh`;
  try {
    execFileSync('ssh-keygen', ['-?'], { stdio: 'ignore' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'ssh-keygen is missing: run bash scripts/host-setup.sh';
  }
  return null;
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const exitCleanups = new Set<() => void>();
process.on('exit', () => {
  for (const c of exitCleanups) {
    try {
      c();
    } catch {
      /* best effort at exit */
    }
  }
});

export interface SshdOptions {
  /** Fill known_hosts with the host key (default true); false leaves it empty. */
  prefillKnownHosts?: boolean;
  /** Allow password logins (for a user created with createTestUser). Default false. */
  passwordAuth?: boolean;
  /** Extra sshd_config lines. */
  extraConfig?: string[];
}

export interface Sshd {
  host: '127.0.0.1';
  port: number;
  dir: string;
  hostKeyPath: string;
  /** The host public key blob (what a client's hostVerifier receives). */
  hostKey(): Buffer;
  clientKeyPath: string;
  knownHostsPath: string;
  /** Remote TMPDIR for sessions (SetEnv), so tests can see what temp files remain. */
  remoteTmp: string;
  /** sshd's log (stderr) so far. */
  log(): string;
  /** Replace the host key with a new one and restart on the same port. */
  rotateHostKey(): Promise<void>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

function keygen(path: string, comment: string): void {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path], { stdio: 'ignore' });
}

function pubBlob(pubPath: string): Buffer {
  const [, b64] = readFileSync(pubPath, 'utf8').trim().split(/\s+/);
  return Buffer.from(b64 ?? '', 'base64');
}

export async function startSshd(opts: SshdOptions = {}): Promise<Sshd> {
  const why = sshdUnavailable();
  if (why) throw new Error(`cannot start sshd: ${why}`);
  const dir = mkdtempSync(join(tmpdir(), 'ha-setup-sshd-'));
  chmodSync(dir, 0o755); // other users read authorized_keys from here (as themselves)
  const cleanupDir = () => rmSync(dir, { recursive: true, force: true });
  exitCleanups.add(cleanupDir);
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }); // sshd's privilege separation dir

  const hostKeyPath = join(dir, 'host_ed25519');
  const clientKeyPath = join(dir, 'client_ed25519');
  const knownHostsPath = join(dir, 'known_hosts');
  const remoteTmp = join(dir, 'remote-tmp');
  mkdirSync(remoteTmp, { mode: 0o1777 });
  chmodSync(remoteTmp, 0o1777);
  keygen(hostKeyPath, 'ha-setup-test-host');
  keygen(clientKeyPath, 'ha-setup-test-client');
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${clientKeyPath}.pub`), { mode: 0o644 });
  const port = await freePort();
  const hostKey = () => pubBlob(`${hostKeyPath}.pub`);
  writeFileSync(knownHostsPath, opts.prefillKnownHosts === false ? '' : `[127.0.0.1]:${port} ssh-ed25519 ${hostKey().toString('base64')}\n`);

  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      ...(opts.extraConfig ?? []), // first: for sshd the first value of an option wins
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      'AddressFamily inet',
      `HostKey ${hostKeyPath}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'StrictModes no',
      'UsePAM no',
      'PermitRootLogin yes',
      'PubkeyAuthentication yes',
      `PasswordAuthentication ${opts.passwordAuth ? 'yes' : 'no'}`,
      'KbdInteractiveAuthentication no',
      'Subsystem sftp internal-sftp',
      `SetEnv TMPDIR=${remoteTmp}`,
      'PrintMotd no',
      'LogLevel VERBOSE',
      'MaxStartups 100:30:200',
      '',
    ].join('\n'),
  );

  let child: ChildProcess | undefined;
  let log = '';
  const killSync = () => {
    if (child?.pid && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
    }
  };
  exitCleanups.add(killSync);

  const start = () =>
    new Promise<void>((resolve, reject) => {
      const c = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
      child = c;
      const timer = setTimeout(() => reject(new Error(`sshd did not start within 10 s:\n${log}`)), 10_000);
      c.stderr!.setEncoding('utf8');
      c.stderr!.on('data', (d: string) => {
        log += d;
        if (log.includes(`Server listening on 127.0.0.1 port ${port}`)) {
          clearTimeout(timer);
          resolve();
        }
      });
      c.on('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`sshd exited (${code ?? signal}):\n${log}`));
      });
    });

  const stopProcess = () =>
    new Promise<void>((resolve) => {
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return resolve();
      c.once('exit', () => resolve());
      c.kill('SIGTERM');
    });

  await start();
  return {
    host: '127.0.0.1',
    port,
    dir,
    hostKeyPath,
    hostKey,
    clientKeyPath,
    knownHostsPath,
    remoteTmp,
    log: () => log,
    async restart() {
      await stopProcess();
      log += '--- restart ---\n';
      await start();
    },
    async rotateHostKey() {
      await stopProcess();
      rmSync(hostKeyPath, { force: true });
      rmSync(`${hostKeyPath}.pub`, { force: true });
      keygen(hostKeyPath, 'ha-setup-test-host-rotated');
      log += '--- restart with a new host key ---\n';
      await start();
    },
    async stop() {
      await stopProcess();
      exitCleanups.delete(killSync);
      cleanupDir();
      exitCleanups.delete(cleanupDir);
    },
  };
}

export interface TestUser {
  name: string;
  password: string;
  /** The sudoers drop-in, if any. */
  sudoersFile?: string;
  remove(): void;
}

/**
 * A throwaway local user (login shell bash, a random password) that may log in with the sshd's
 * client key. sudo: 'nopasswd' adds a NOPASSWD drop-in, 'password' a drop-in that needs a
 * password (so `sudo -n` fails), 'none' nothing.
 */
export function createTestUser(sudo: 'nopasswd' | 'password' | 'none'): TestUser {
  const name = `hast${randomBytes(3).toString('hex')}`;
  const password = randomBytes(12).toString('base64url');
  execFileSync('useradd', ['-m', '-s', '/bin/bash', name], { stdio: 'ignore' });
  let sudoersFile: string | undefined;
  const remove = () => {
    if (sudoersFile) rmSync(sudoersFile, { force: true });
    try {
      execFileSync('userdel', ['-r', '-f', name], { stdio: 'ignore' });
    } catch {
      /* already gone */
    }
  };
  exitCleanups.add(remove);
  // The password goes on stdin, never in argv.
  execFileSync('chpasswd', [], { input: `${name}:${password}\n`, stdio: ['pipe', 'ignore', 'ignore'] });
  if (sudo !== 'none') {
    sudoersFile = `/etc/sudoers.d/ha-setup-test-${name}`;
    const rule = sudo === 'nopasswd' ? `${name} ALL=(ALL:ALL) NOPASSWD: ALL\n` : `${name} ALL=(ALL:ALL) ALL\n`;
    writeFileSync(sudoersFile, rule, { mode: 0o440 });
    execFileSync('visudo', ['-c', '-q', '-f', sudoersFile], { stdio: 'ignore' });
  }
  return {
    name,
    password,
    ...(sudoersFile ? { sudoersFile } : {}),
    remove() {
      remove();
      exitCleanups.delete(remove);
    },
  };
}
