/**
 * Benchmark: N trivial commands (`true`) over ONE SshTransport connection, against OpenSSH
 * with connection sharing (ControlMaster=auto, ControlPersist=60; the first call, untimed,
 * starts the master), both against the same real sshd on 127.0.0.1 in the same run. The two
 * are timed in alternating rounds so that load from other work on the machine hits both alike.
 *
 *   node dist/test/bench/ssh-overhead.js [--count 200] [--rounds 4] [--root]
 *
 * By default both log in as a throwaway user with a stock shell start-up, so that the figures
 * are the transport's and not the login user's ~/.bashrc (bash reads it for every SSH command,
 * and root's on a developer machine can be slow); --root measures as root instead.
 * Prints figures; the target is ours/OpenSSH <= 1.5. Needs root (sshd, useradd).
 */
import { execFile, execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { SshTransport } from '../../source/transport/ssh.js';
import { createTestUser, sshdUnavailable, startSshd } from '../helpers/sshd.js';

const run = promisify(execFile);
const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : dflt;
  return Number.isFinite(v) && v > 0 ? v : dflt;
};

async function main(): Promise<void> {
  const why = sshdUnavailable();
  if (why) {
    console.log(`ssh-overhead: cannot run: ${why}`);
    process.exitCode = 1;
    return;
  }
  const count = arg('--count', 200);
  const rounds = Math.min(arg('--rounds', 4), count);
  const asRoot = process.argv.includes('--root');
  const sshd = await startSshd();
  const user = asRoot ? undefined : createTestUser('none');
  const login = user?.name ?? 'root';
  const control = `${sshd.dir}/cm-%C`;
  const sshArgs = [
    '-F', '/dev/null',
    '-i', sshd.clientKeyPath,
    '-o', 'IdentitiesOnly=yes',
    '-o', `UserKnownHostsFile=${sshd.knownHostsPath}`,
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'BatchMode=yes',
    '-o', 'ControlMaster=auto',
    '-o', `ControlPath=${control}`,
    '-o', 'ControlPersist=60',
    '-p', String(sshd.port),
    `${login}@127.0.0.1`,
  ];
  const t = new SshTransport({
    name: 'bench',
    host: '127.0.0.1',
    port: sshd.port,
    user: login,
    identityFiles: [sshd.clientKeyPath],
    knownHostsFiles: [sshd.knownHostsPath],
  });
  try {
    // Warm-up, not timed: our connection, and OpenSSH's master.
    await t.connect();
    await t.exec('true');
    await run('ssh', [...sshArgs, 'true']);

    let ours = 0;
    let openssh = 0;
    const per = Math.ceil(count / rounds);
    let done = 0;
    for (let r = 0; r < rounds && done < count; r++) {
      const n = Math.min(per, count - done);
      let t0 = performance.now();
      for (let i = 0; i < n; i++) {
        const res = await t.exec('true');
        if (res.code !== 0) throw new Error(`ssh2 command failed: ${res.stderr}`);
      }
      ours += performance.now() - t0;
      t0 = performance.now();
      for (let i = 0; i < n; i++) await run('ssh', [...sshArgs, 'true']);
      openssh += performance.now() - t0;
      done += n;
    }
    // Extra figure: the same commands 8 at a time over the one connection.
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next++ < count) await t.exec('true');
      }),
    );
    const parallel = performance.now() - t0;

    const ms = (x: number) => x.toFixed(0).padStart(6);
    const each = (x: number) => (x / count).toFixed(2).padStart(6);
    const ratio = ours / openssh;
    console.log(`ssh-overhead: ${count} x \`true\` as ${login}${user ? ' (throwaway user, stock shell start-up)' : ''}, sshd on 127.0.0.1:${sshd.port}, ${rounds} alternating rounds`);
    console.log(`  SshTransport, one connection, sequential  total ${ms(ours)} ms   per command ${each(ours)} ms`);
    console.log(`  OpenSSH ControlMaster, sequential         total ${ms(openssh)} ms   per command ${each(openssh)} ms`);
    console.log(`  ratio SshTransport / OpenSSH: ${ratio.toFixed(2)} (target <= 1.5: ${ratio <= 1.5 ? 'met' : 'NOT met'})`);
    console.log(`  SshTransport, one connection, 8 at a time total ${ms(parallel)} ms   per command ${each(parallel)} ms`);
  } finally {
    await t.close();
    try {
      execFileSync('ssh', ['-o', `ControlPath=${control}`, '-p', String(sshd.port), '-O', 'exit', `${login}@127.0.0.1`], { stdio: 'ignore' });
    } catch {
      /* master already gone */
    }
    await sshd.stop();
    user?.remove();
  }
}

await main();
