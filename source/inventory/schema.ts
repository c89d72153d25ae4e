/**
 * The shape of a server table (YAML file, saved cluster), as a zod schema, and the translation
 * of zod's issues into one-line field messages that say the fix. Cross-field rules (addresses,
 * duplicates, subnets, roles per topology) live in ./validate.ts.
 */
import { z } from 'zod';

/** One problem in a table: the field ("servers.db_vip", "ssh.port"; "" for the whole table). */
export interface FieldError {
  field: string;
  /** One line; says what is wrong and how to fix it. */
  message: string;
  /** 1-based line in the YAML file, when the table came from one. */
  line?: number;
  /** 1-based column, for YAML syntax errors. */
  column?: number;
}

/** Same rule as clusterDir() in source/paths.ts (a test keeps the two in step). */
export const CLUSTER_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
export const CLUSTER_NAME_RULE = 'use letters, digits, . _ - (starting with a letter or digit, at most 63 characters)';

const text = z.string().trim().min(1);

export const sshSettingsSchema = z.strictObject({
  user: text.optional(),
  port: z.number().int().min(1).max(65535).optional(),
  identity: text.optional(),
  knownHosts: text.optional(),
  configFile: text.optional(),
  proxyJump: text.optional(),
});

export const sshSchema = sshSettingsSchema.extend({
  hosts: z.record(z.string(), sshSettingsSchema).optional(),
});

export const networkSchema = z.strictObject({
  prefix: z.number().int().min(1).max(128).optional(),
});

export const inventorySchema = z.strictObject({
  cluster: z.string().trim().regex(CLUSTER_NAME_RE),
  topology: z.enum(['lb', 'k8s']),
  /** true: only some roles are listed (a staged rollout, a small lab); see Inventory.partial. */
  partial: z.boolean().optional(),
  /** null (an empty value in YAML) means "not set"; validate.ts reports it if the role is needed. */
  servers: z.record(z.string(), z.string().trim().nullable()),
  network: networkSchema.optional(),
  ssh: sshSchema.nullish().transform((v) => v ?? {}),
  options: z
    .record(z.string(), z.unknown())
    .nullish()
    .transform((v) => v ?? {}),
});

export type InventoryShape = z.output<typeof inventorySchema>;

/** Edit distance, for "did you mean ...?". */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/** The closest candidate, if it is close enough to be a typo. */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

export function fieldName(path: readonly PropertyKey[]): string {
  return path.map(String).join('.');
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v = input;
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

/** How a value reads in a message: "x", the number 3, a list, a mapping, empty. */
export function describeValue(v: unknown): string {
  if (v === null || v === undefined) return 'empty';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') return `the number ${v}`;
  if (typeof v === 'boolean') return `${v}`;
  if (Array.isArray(v)) return 'a list';
  return 'a mapping';
}

const MISSING_HINT: Record<string, string> = {
  cluster: 'add `cluster: NAME`, the name the table is saved under (e.g. cluster: prod)',
  topology: 'add `topology: lb` (HAProxy in front of the apps) or `topology: k8s` (Kubernetes)',
  servers: 'add a `servers:` mapping of alias to IP address or hostname (db_primary: 198.18.0.11, ...)',
};

const EXPECTED: Record<string, string> = {
  string: 'text',
  number: 'a number',
  int: 'a whole number',
  record: 'a mapping (key: value lines)',
  object: 'a mapping (key: value lines)',
  array: 'a list',
  boolean: 'true or false',
};

const RANGES: Record<string, { min: number; max: number; what: string }> = {
  port: { min: 1, max: 65535, what: 'the SSH port, usually 22' },
  prefix: { min: 1, max: 128, what: 'the prefix length of the servers\' subnet, e.g. 24' },
};

/** The keys a mapping at this path may have, for unknown-key suggestions. */
function knownKeysAt(path: readonly PropertyKey[]): string[] {
  const p = path.map(String);
  if (p.length === 0) return Object.keys(inventorySchema.shape);
  if (p[0] === 'ssh' && p.length === 1) return Object.keys(sshSchema.shape);
  if (p[0] === 'ssh' && p[1] === 'hosts') return Object.keys(sshSettingsSchema.shape);
  if (p[0] === 'network') return Object.keys(networkSchema.shape);
  return [];
}

function unknownKeyMessage(key: string, known: string[]): string {
  const guess = nearest(key, known);
  const hint = guess ? ` (did you mean ${guess}?)` : '';
  return `unknown key${hint}: the keys here are ${known.join(', ')}`;
}

/** zod issues -> one-line field messages (never zod's own wording dumped raw). */
export function issuesToErrors(issues: readonly z.core.$ZodIssue[], input: unknown): FieldError[] {
  const errors: FieldError[] = [];
  for (const issue of issues) {
    const field = fieldName(issue.path);
    const last = String(issue.path[issue.path.length - 1] ?? '');
    const value = valueAt(input, issue.path);
    const range = RANGES[last];
    switch (issue.code) {
      case 'unrecognized_keys':
        for (const key of issue.keys) {
          errors.push({ field: fieldName([...issue.path, key]), message: unknownKeyMessage(key, knownKeysAt(issue.path)) });
        }
        continue;
      case 'invalid_type': {
        if (value === undefined) {
          errors.push({ field, message: `missing: ${MISSING_HINT[field] ?? 'add it'}` });
        } else if (issue.path[0] === 'servers' && issue.path.length === 2) {
          const quote = typeof value === 'number' ? ': write it in quotes' : '';
          errors.push({ field, message: `must be an IP address or hostname, not ${describeValue(value)}${quote}` });
        } else if (range && typeof value === 'number') {
          errors.push({ field, message: `${value} is not a whole number: use ${range.min}-${range.max} (${range.what})` });
        } else {
          const want = EXPECTED[issue.expected] ?? issue.expected;
          errors.push({ field, message: `must be ${want}, not ${describeValue(value)}` });
        }
        continue;
      }
      case 'invalid_value':
        if (field === 'topology') {
          errors.push({ field, message: `${describeValue(value)} is not a topology: use lb (HAProxy in front of the apps) or k8s (Kubernetes)` });
        } else {
          errors.push({ field, message: `${describeValue(value)} is not allowed: use one of ${issue.values.map(String).join(', ')}` });
        }
        continue;
      case 'invalid_format':
        if (field === 'cluster') {
          errors.push({ field, message: `${describeValue(value)} is not a valid cluster name: ${CLUSTER_NAME_RULE}` });
          continue;
        }
        break;
      case 'too_small':
      case 'too_big':
        if (range) {
          errors.push({ field, message: `${value} is out of range: use ${range.min}-${range.max} (${range.what})` });
          continue;
        }
        if (typeof value === 'string') {
          errors.push({ field, message: 'is empty: give a value or remove the key' });
          continue;
        }
        break;
    }
    errors.push({ field, message: (issue.message.split('\n')[0] ?? 'invalid').replace(/^Invalid input: /, '') });
  }
  return errors;
}
