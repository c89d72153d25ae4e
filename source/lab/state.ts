/**
 * The lab's state file (<labDir>/state.json): which hosts this lab has and what faults were
 * injected that need undoing. Process ids are not kept here: each host's launcher writes its
 * own (hosts/<name>/launcher.pid, nspawn.pid) and every use checks them against /proc.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { Topology } from '../inventory/types.js';
import type { LabLayout } from './layout.js';
import type { HostSpec } from './topology.js';

export interface HostState extends HostSpec {
  /** Units stopped by `lab fault <host> stop-service` (restarted by `restore`). */
  stoppedUnits: string[];
}

export interface LabState {
  version: 1;
  dir: string;
  createdAt: string;
  topology: Topology;
  scheme: 'roles' | 'partial';
  image: { hash: string; rootfs: string; repo: string };
  repoServerPid?: number;
  hosts: HostState[];
}

export function readState(layout: LabLayout): LabState | undefined {
  try {
    return JSON.parse(readFileSync(layout.stateFile, 'utf8')) as LabState;
  } catch {
    return undefined;
  }
}

export function writeState(layout: LabLayout, state: LabState): void {
  mkdirSync(layout.dir, { recursive: true, mode: 0o700 });
  const tmp = `${layout.stateFile}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, layout.stateFile);
}

/** A host of the lab by its alias (db_primary, app1), hostname (db-primary) or address. */
export function findHost(state: LabState | undefined, key: string): HostState {
  if (!state) throw new Error('no lab is up (run: ha-setup lab up)');
  const h = state.hosts.find((x) => x.alias === key || x.name === key || x.address === key);
  if (!h) {
    throw new Error(`host "${key}" is not in the lab (hosts: ${state.hosts.map((x) => x.alias).join(', ')})`);
  }
  return h;
}
