/**
 * Where ha-setup keeps things on the jump host. Everything lives under one directory per
 * user (HA_SETUP_HOME overrides it; tests use a temporary one):
 *
 *   <home>/clusters/<cluster>/checkpoints.json   what each step did on each host (atomic writes)
 *   <home>/clusters/<cluster>/lock                one run at a time (pid, host, start time)
 *   <home>/clusters/<cluster>/secrets.json        generated passwords, mode 0600 (dir 0700)
 *   <home>/clusters/<cluster>/runs/<run-id>.log   transcript of every command, mode 0600
 *   <home>/lab/                                   the lab's image cache, hosts, key, known_hosts
 */
import { homedir } from 'node:os';
import { join } from 'node:path';

export function haHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HA_SETUP_HOME) return env.HA_SETUP_HOME;
  const base = env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  return join(base, 'ha-setup');
}

export function clusterDir(cluster: string, env: NodeJS.ProcessEnv = process.env): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(cluster)) {
    throw new Error(`cluster name "${cluster}" is not valid (letters, digits, . _ -; up to 63 characters)`);
  }
  return join(haHome(env), 'clusters', cluster);
}

export function labDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.HA_SETUP_LAB_DIR || join(haHome(env), 'lab');
}
