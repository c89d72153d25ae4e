/**
 * The server table as text (aligned columns), GitHub Markdown (for a change ticket), CSV
 * (RFC 4180) or JSON. Works on partial tables too (the wizard shows one as it is filled in):
 * every role of the topology is listed, "not set" where there is no address yet.
 */
import type { Inventory, Topology } from './types.js';
import { roleOf, tableAliases } from './roles.js';

export const TABLE_FORMATS = ['text', 'md', 'csv', 'json'] as const;
export type TableFormat = (typeof TABLE_FORMATS)[number];

/** A table, complete or not. */
export interface TableSource {
  cluster?: string;
  topology: Topology;
  servers: Record<string, string | null | undefined>;
}

export interface TableRow {
  role: string;
  alias: string;
  /** null when not set. */
  address: string | null;
  description: string;
  kind: 'host' | 'vip';
}

export interface FormatOptions {
  /** List app1..appN even if fewer are set (the wizard, when the user asked for N apps). */
  appCount?: number;
}

export const NOT_SET = 'not set';

const TOPOLOGY_TITLE: Record<Topology, string> = { lb: 'HAProxy load balancer', k8s: 'Kubernetes' };

/** Check a --format value; the error names the flag and the allowed values. */
export function parseFormat(value: string, flag = '--format'): TableFormat {
  if ((TABLE_FORMATS as readonly string[]).includes(value)) return value as TableFormat;
  throw new Error(`${flag}: "${value}" is not a table format: use ${TABLE_FORMATS.join(', ')}`);
}

export function tableRows(inv: TableSource | Inventory, opts: FormatOptions = {}): TableRow[] {
  return tableAliases(inv.topology, inv.servers, opts.appCount).map((alias) => {
    const role = roleOf(alias, inv.topology);
    const value = inv.servers[alias];
    return {
      role: role?.title ?? 'unknown alias',
      alias,
      address: typeof value === 'string' && value.trim() !== '' ? value.trim() : null,
      description: role?.description ?? 'not a role of ha-setup: remove it or fix the alias',
      kind: alias.endsWith('_vip') ? 'vip' : 'host',
    };
  });
}

function cells(row: TableRow): string[] {
  return [row.role, row.alias, row.address ?? NOT_SET, row.description];
}

function title(inv: TableSource): string {
  const name = inv.cluster ? `cluster ${inv.cluster}` : 'new cluster';
  return `Server table: ${name}, topology ${inv.topology} (${TOPOLOGY_TITLE[inv.topology]})`;
}

function text(inv: TableSource, rows: TableRow[]): string {
  const table = [['ROLE', 'ALIAS', 'ADDRESS', 'DESCRIPTION'], ...rows.map(cells)];
  const widths = [0, 1, 2].map((i) => Math.max(...table.map((r) => r[i]!.length)));
  const lines = table.map((r) => r.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c)).join('  '));
  return `${title(inv)}\n\n${lines.join('\n')}\n`;
}

function mdCell(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

function markdown(inv: TableSource, rows: TableRow[]): string {
  const line = (c: string[]) => `| ${c.map(mdCell).join(' | ')} |`;
  const body = rows.map((r) => line(cells(r)));
  return [`**${mdCell(title(inv))}**`, '', line(['Role', 'Alias', 'Address', 'Description']), '| --- | --- | --- | --- |', ...body, ''].join('\n');
}

function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function csv(rows: TableRow[]): string {
  const lines = [['role', 'alias', 'address', 'description'], ...rows.map(cells)].map((r) => r.map(csvField).join(','));
  return lines.map((l) => `${l}\r\n`).join('');
}

/** Render the table; throws on an unknown format (naming --format and the allowed values). */
export function formatTable(inv: TableSource | Inventory, format: TableFormat | string, opts: FormatOptions = {}): string {
  const fmt = parseFormat(format);
  const rows = tableRows(inv, opts);
  switch (fmt) {
    case 'text':
      return text(inv, rows);
    case 'md':
      return markdown(inv, rows);
    case 'csv':
      return csv(rows);
    case 'json':
      return `${JSON.stringify(rows.map((r) => ({ role: r.role, alias: r.alias, address: r.address, description: r.description, kind: r.kind })), null, 2)}\n`;
  }
}
