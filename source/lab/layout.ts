/**
 * Where the lab keeps things, and its fixed network plan.
 *
 *   <labDir>/state.json          hosts of the lab that is up (absent when down)
 *   <labDir>/lab.yaml            the lab's server table (ha-setup --config <this>)
 *   <labDir>/id_ed25519[.pub]    the lab's SSH key (kept across up/down)
 *   <labDir>/known_hosts         the hosts' keys, generated per host at up time
 *   <labDir>/hosts/<name>/       upper, work, root (overlay), nfs, launcher.log, *.pid
 *   <cache>/base-<hash>/         rootfs/ (the base image), repo/ (offline apt repo), build.json
 *
 * <cache> is HA_SETUP_LAB_CACHE, else <labDir>/cache: tests point it at the default lab's
 * cache so that the image is built once per machine, not once per test run.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { labDir } from '../paths.js';

export interface LabLayout {
  dir: string;
  cacheDir: string;
  stateFile: string;
  tableFile: string;
  keyFile: string;
  knownHostsFile: string;
  hostsDir: string;
  lockDir: string;
}

export function labLayout(env: NodeJS.ProcessEnv = process.env): LabLayout {
  const dir = labDir(env);
  return {
    dir,
    cacheDir: env.HA_SETUP_LAB_CACHE || join(dir, 'cache'),
    stateFile: join(dir, 'state.json'),
    tableFile: join(dir, 'lab.yaml'),
    keyFile: join(dir, 'id_ed25519'),
    knownHostsFile: join(dir, 'known_hosts'),
    hostsDir: join(dir, 'hosts'),
    lockDir: join(dir, 'lock'),
  };
}

/** The default (shared) image cache, whatever HA_SETUP_LAB_DIR says. */
export function defaultLabCache(env: NodeJS.ProcessEnv = process.env): string {
  return env.HA_SETUP_LAB_CACHE || join(labDir({ ...env, HA_SETUP_LAB_DIR: '' }), 'cache');
}

/** The machine's side of the lab network. Only one lab can be up on a machine. */
export const BRIDGE = 'halab0';
export const MACHINE_ADDRESS = '198.18.0.1';
export const PREFIX = 24;
export const REPO_PORT = 3142;
export const REPO_URL = `http://${MACHINE_ADDRESS}:${REPO_PORT}/`;
export const FIRST_HOST_OCTET = 11;
export const DB_VIP = '198.18.0.100';
export const NFS_VIP = '198.18.0.101';

/** Cgroup directory name of a host (in the cgroup2 tree and the v1 name=systemd tree). */
export const cgroupName = (host: string) => `ha-lab-${host}`;
/** The machine side of a host's veth, as systemd-nspawn --network-bridge names it. */
export const vethName = (host: string) => `vb-${host}`;

/** assets/lab/ of this package (dist/source/lab/*.js -> ../../../assets/lab). */
export const assetsDir = fileURLToPath(new URL('../../../assets/lab/', import.meta.url));
