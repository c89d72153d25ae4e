/**
 * Tables as YAML files (--config FILE, import/export), and the one way every command finds its
 * table: resolveInventory().
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { isMap, isScalar, LineCounter, parseDocument, stringify, type Document } from 'yaml';
import type { Inventory } from './types.js';
import { sortAliases } from './roles.js';
import { clusterSource, listClusters, loadCluster, saveCluster, tablePath } from './store.js';
import { InventoryError, validateInventory, type FieldError } from './validate.js';

export const NO_TABLE = 'no server table: run `ha-setup` (the wizard) or pass --config FILE';

/** Server addresses YAML would read as numbers (10.1, 1e3) are kept as written. */
function keepServerScalarsAsText(doc: Document): void {
  const servers = doc.get('servers', true);
  if (!isMap(servers)) return;
  for (const pair of servers.items) {
    if (isScalar(pair.value) && typeof pair.value.value === 'number') {
      pair.value.value = pair.value.source ?? String(pair.value.value);
    }
  }
}

/** The line of a field's key in the YAML file, or undefined if the key is not in the file. */
function lineOf(doc: Document, counter: LineCounter, field: string): number | undefined {
  if (!field) return undefined;
  const path = field.split('.');
  const parent = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true);
  if (!isMap(parent)) return undefined;
  const pair = parent.items.find((p) => isScalar(p.key) && String(p.key.value) === path[path.length - 1]);
  const range = pair && isScalar(pair.key) ? pair.key.range : undefined;
  return range ? counter.linePos(range[0]).line : undefined;
}

/**
 * Parse and validate a YAML table. Throws an InventoryError naming sourceName: YAML syntax
 * errors with line and column, table errors with the line of the field when it exists.
 */
export function parseConfigYaml(text: string, sourceName: string): Inventory {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new InventoryError(
      sourceName,
      doc.errors.map((e) => {
        const pos = counter.linePos(e.pos[0]);
        const message = (e.message.split('\n')[0] ?? e.code).replace(/ at line \d+, column \d+:?$/, '');
        return { field: '', line: pos.line, column: pos.col, message: `YAML syntax error: ${message}` };
      }),
    );
  }
  if (doc.contents === null) {
    throw new InventoryError(sourceName, [{ field: '', message: 'the file is empty: write the table (see test/fixtures/cluster-lb.yaml)' }]);
  }
  keepServerScalarsAsText(doc);
  const data: unknown = doc.toJS({ maxAliasCount: 100 });
  const result = validateInventory(data);
  if (!result.ok) {
    const errors: FieldError[] = result.errors.map((e) => {
      const line = lineOf(doc, counter, e.field);
      return line === undefined ? e : { ...e, line };
    });
    throw new InventoryError(sourceName, errors);
  }
  return result.inventory;
}

/** Read and validate a YAML table file (--config). */
export function loadConfigFile(path: string): Inventory {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (e as Error).message;
    throw new Error(`--config: cannot read ${path}: ${why}`);
  }
  return parseConfigYaml(text, path);
}

/** The table as YAML, keys in a fixed order; parseConfigYaml(toYaml(inv)) gives inv back. */
export function toYaml(inv: Inventory): string {
  const servers: Record<string, string> = {};
  for (const alias of sortAliases(Object.keys(inv.servers))) servers[alias] = inv.servers[alias]!;
  const doc: Record<string, unknown> = { cluster: inv.cluster, topology: inv.topology };
  if (inv.partial) doc.partial = true;
  doc.servers = servers;
  if (inv.network) doc.network = inv.network;
  doc.ssh = inv.ssh ?? {};
  doc.options = inv.options ?? {};
  const header = `# ha-setup server table of cluster ${inv.cluster}. Check it with: ha-setup table --config FILE\n`;
  return header + stringify(doc, { lineWidth: 0 });
}

/** Write a saved cluster's table as YAML to path (when given); returns the YAML. */
export function exportCluster(name: string, path?: string, env: NodeJS.ProcessEnv = process.env): string {
  const inv = loadCluster(name, env);
  if (!inv) throw new Error(`no saved cluster "${name}": ${savedHint(env)}`);
  const yaml = toYaml(inv);
  if (path) writeFileSync(path, yaml);
  return yaml;
}

export interface ImportResult {
  inventory: Inventory;
  /** The saved table file. */
  path: string;
  /** What was saved before under that name: 'none', the same table, or a different one (replaced). */
  previous: 'none' | 'same' | 'replaced';
}

/** JSON with object keys sorted, to compare tables whatever their key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function sameTable(a: Inventory, b: Inventory): boolean {
  return canonical(a) === canonical(b);
}

/**
 * Validate a YAML table and save it under its cluster name. A different table already saved
 * under that name is only replaced with force (it may describe servers that were set up).
 */
export function importConfigFile(path: string, opts: { force?: boolean } = {}, env: NodeJS.ProcessEnv = process.env): ImportResult {
  const inventory = loadConfigFile(path);
  const before = loadSavedForImport(inventory.cluster, env);
  if (before && !sameTable(before, inventory) && !opts.force) {
    throw new Error(
      `cluster "${inventory.cluster}" already has a different saved table (${tablePath(inventory.cluster, env)}): pass --force to replace it, or change cluster: in ${path}`,
    );
  }
  const previous = before ? (sameTable(before, inventory) ? 'same' : 'replaced') : 'none';
  return { inventory, path: saveCluster(inventory, env), previous };
}

/** A saved table that no longer validates is simply replaced by an import. */
function loadSavedForImport(name: string, env: NodeJS.ProcessEnv): Inventory | undefined {
  try {
    return loadCluster(name, env);
  } catch {
    return undefined;
  }
}

function savedHint(env: NodeJS.ProcessEnv): string {
  const saved = listClusters(env);
  return saved.length ? `saved clusters: ${saved.join(', ')}` : 'no cluster is saved yet';
}

/**
 * The table a command works on: the --config file if given, else the saved cluster (--cluster,
 * default "default"), else an error saying how to make one.
 */
export async function resolveInventory(
  flags: { config?: string; cluster?: string },
  env: NodeJS.ProcessEnv = process.env,
): Promise<Inventory> {
  if (flags.config) {
    const inv = loadConfigFile(flags.config);
    if (flags.cluster && flags.cluster !== inv.cluster) {
      throw new Error(`--cluster ${flags.cluster} does not match cluster: ${inv.cluster} in ${flags.config}: pass only one of them`);
    }
    return inv;
  }
  const name = flags.cluster ?? 'default';
  let inv: Inventory | undefined;
  try {
    inv = loadCluster(name, env);
  } catch (e) {
    if (e instanceof InventoryError) throw e;
    throw new Error(flags.cluster ? `--cluster: ${(e as Error).message}` : (e as Error).message);
  }
  if (inv) return inv;
  if (flags.cluster) throw new Error(`${NO_TABLE} (${clusterSource(name)} is not saved; ${savedHint(env)})`);
  const saved = listClusters(env);
  throw new Error(saved.length ? `${NO_TABLE}, or pick a saved cluster with --cluster (${saved.join(', ')})` : NO_TABLE);
}
