/**
 * Starts and stops the offline apt repository's HTTP server (repo-server.js), a detached
 * process bound to 198.18.0.1 only. Stopped by its PID, checked against its command line.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MACHINE_ADDRESS, REPO_PORT } from './layout.js';
import { alive, cmdline, waitFor } from './exec.js';

const serverScript = fileURLToPath(new URL('./repo-server.js', import.meta.url));

/** True when pid is a repo server serving repoDir (guards against a reused pid). */
export function isRepoServer(pid: number | undefined, repoDir?: string): boolean {
  if (!pid || !alive(pid)) return false;
  const argv = cmdline(pid);
  return argv.includes(serverScript) && (repoDir === undefined || argv.includes(repoDir));
}

export async function startRepoServer(repoDir: string, logDir: string): Promise<number> {
  const out = openSync(join(logDir, 'repo-server.log'), 'a');
  const child = spawn(process.execPath, [serverScript, repoDir, MACHINE_ADDRESS, String(REPO_PORT)], {
    detached: true,
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  child.unref();
  const pid = child.pid;
  if (!pid) throw new Error('could not start the lab repository server');
  const up = await waitFor(async () => !alive(pid) || (await portOpen(MACHINE_ADDRESS, REPO_PORT)), 10_000, 50);
  if (!up || !alive(pid)) {
    throw new Error(`the lab repository server did not start on ${MACHINE_ADDRESS}:${REPO_PORT}; see ${join(logDir, 'repo-server.log')}`);
  }
  return pid;
}

export async function stopRepoServer(pid: number | undefined): Promise<void> {
  if (!isRepoServer(pid)) return;
  process.kill(pid!, 'SIGTERM');
  if (!(await waitFor(() => !alive(pid), 3000, 20))) process.kill(pid!, 'SIGKILL');
  await waitFor(() => !alive(pid), 2000, 20);
}

export function portOpen(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (v: boolean) => {
      s.destroy();
      resolve(v);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

