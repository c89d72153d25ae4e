/**
 * The files under assets/ that runbooks write to servers: read once, and templates with their
 * {{placeholders}} filled in. Every placeholder must be given and every value used, so that a
 * template and its caller cannot drift apart silently.
 */
import { readFileSync } from 'node:fs';

const ROOT = new URL('../../../assets/', import.meta.url);
const cache = new Map<string, string>();

/** assets/<path> as it is ("keepalived/pg-ha.sh"). */
export function readAsset(path: string): string {
  let text = cache.get(path);
  if (text === undefined) {
    text = readFileSync(new URL(path, ROOT), 'utf8');
    cache.set(path, text);
  }
  return text;
}

/** assets/<path> with every {{key}} replaced; a missing or an unused key is a bug. */
export function renderAssetTemplate(path: string, vars: Record<string, string | number>): string {
  const used = new Set<string>();
  const out = readAsset(path).replace(/\{\{(\w+)\}\}/g, (_m, key: string) => {
    if (!(key in vars)) throw new Error(`bug: template ${path} needs {{${key}}}`);
    used.add(key);
    return String(vars[key]);
  });
  const unused = Object.keys(vars).filter((k) => !used.has(k));
  if (unused.length) throw new Error(`bug: template ${path} has no {{${unused.join('}}, {{')}}}`);
  return out;
}
