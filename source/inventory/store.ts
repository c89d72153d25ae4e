/**
 * Saved server tables: one per cluster, in <home>/clusters/<cluster>/table.json (conf, written
 * atomically). Only a valid table is ever saved, and a saved table is validated again on load
 * (it may have been edited by hand).
 */
import Conf from 'conf';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { clusterDir, haHome } from '../paths.js';
import type { Inventory } from './types.js';
import { InventoryError, validateInventory } from './validate.js';

const CONFIG_NAME = 'table';
const FILE_NAME = `${CONFIG_NAME}.json`;
/** conf's own bookkeeping key (migrations); never part of a table. */
const CONF_INTERNAL = '__internal__';

function tableStore(name: string, env: NodeJS.ProcessEnv): Conf<Record<string, unknown>> {
  return new Conf<Record<string, unknown>>({ projectName: 'ha-setup', cwd: clusterDir(name, env), configName: CONFIG_NAME });
}

/** Where a cluster's table is saved. */
export function tablePath(name: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(clusterDir(name, env), FILE_NAME);
}

/** How errors about a saved table name their source. */
export function clusterSource(name: string): string {
  return `cluster "${name}"`;
}

/**
 * Validate and save a table under its cluster name (replacing what was saved). Throws an
 * InventoryError, and saves nothing, if the table is not valid. Returns the file written.
 */
export function saveCluster(inv: Inventory, env: NodeJS.ProcessEnv = process.env): string {
  const result = validateInventory(inv);
  if (!result.ok) throw new InventoryError(clusterSource(String(inv?.cluster)), result.errors);
  const dir = clusterDir(result.inventory.cluster, env);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const store = tableStore(result.inventory.cluster, env);
  store.store = { ...result.inventory };
  return store.path;
}

/** The saved table of a cluster, or undefined if none is saved. Throws if it is not valid. */
export function loadCluster(name: string, env: NodeJS.ProcessEnv = process.env): Inventory | undefined {
  const path = tablePath(name, env);
  if (!existsSync(path)) return undefined;
  let data: Record<string, unknown>;
  try {
    data = { ...tableStore(name, env).store };
  } catch (e) {
    throw new Error(
      `${clusterSource(name)}: ${path} is not readable JSON (${(e as Error).message.split('\n')[0]}): fix it, or save the table again (ha-setup table import FILE)`,
    );
  }
  delete data[CONF_INTERNAL];
  const result = validateInventory(data);
  const source = `${clusterSource(name)} (${path})`;
  if (!result.ok) throw new InventoryError(source, result.errors);
  if (result.inventory.cluster !== name) {
    throw new InventoryError(source, [
      { field: 'cluster', message: `"${result.inventory.cluster}" does not match the directory it is saved in ("${name}"): set cluster: ${name}` },
    ]);
  }
  return result.inventory;
}

/** Names of the clusters that have a saved table, sorted. */
export function listClusters(env: NodeJS.ProcessEnv = process.env): string[] {
  const root = join(haHome(env), 'clusters');
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(root, d.name, FILE_NAME)))
    .map((d) => d.name)
    .sort();
}

/**
 * Forget a cluster's saved table. Its run state (checkpoints, secrets, logs) is kept: the
 * servers may still run with those secrets. Returns false if no table was saved.
 */
export function removeCluster(name: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const path = tablePath(name, env);
  if (!existsSync(path)) return false;
  rmSync(path);
  return true;
}
