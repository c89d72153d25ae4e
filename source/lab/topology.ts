/**
 * Which hosts a lab has (names, addresses) and the server table written for it.
 */
import type { Inventory, Topology } from '../inventory/types.js';
import { DB_VIP, FIRST_HOST_OCTET, NFS_VIP, PREFIX } from './layout.js';

export interface HostSpec {
  /** The server table's key: db_primary ... or host1 ... */
  alias: string;
  /** Hostname inside the host (alias with - for _), also its nspawn machine name. */
  name: string;
  address: string;
}

export interface LabShape {
  topology: Topology;
  /** 'roles': a whole topology; 'partial': fewer than 7 hosts, named as the first roles of the
   *  table (db_primary, db_standby, nfs_primary ...), written as a `partial: true` table. */
  scheme: 'roles' | 'partial';
  hosts: HostSpec[];
}

export const MAX_HOSTS = 32;

const ROLES: Record<Topology, string[]> = {
  lb: ['db_primary', 'db_standby', 'nfs_primary', 'nfs_standby', 'app1', 'app2', 'lb'],
  k8s: ['db_primary', 'db_standby', 'nfs_primary', 'nfs_standby', 'app1', 'app2', 'k8s_master'],
};

const spec = (alias: string, i: number): HostSpec => ({
  alias,
  name: alias.replace(/_/g, '-'),
  address: `198.18.0.${FIRST_HOST_OCTET + i}`,
});

/**
 * --hosts N: N < 7 gives the first N roles of the table (db_primary, db_standby, nfs_primary,
 * nfs_standby, app1, app2: two hosts are the database pair); N >= 7 gives the lb roles (then
 * app3, app4 ...).
 * --topology lb|k8s: the 7 roles of that topology (with --hosts N >= 7: more app servers).
 */
export function labShape(opts: { hosts?: number; topology?: string }): LabShape {
  const topology = opts.topology ?? 'lb';
  if (topology !== 'lb' && topology !== 'k8s') {
    throw new Error(`--topology "${topology}" is not known (use lb or k8s)`);
  }
  const n = opts.hosts ?? (opts.topology ? 7 : 3);
  if (!Number.isInteger(n) || n < 1 || n > MAX_HOSTS) {
    throw new Error(`--hosts must be a whole number from 1 to ${MAX_HOSTS} (got ${opts.hosts})`);
  }
  if (opts.topology && n < 7) {
    throw new Error(`--topology ${topology} needs 7 hosts or more (got --hosts ${n})`);
  }
  if (n < 7) {
    return { topology, scheme: 'partial', hosts: ROLES[topology].slice(0, n).map(spec) };
  }
  const roles = [...ROLES[topology]];
  for (let app = 3; roles.length < n; app++) roles.push(`app${app}`);
  return { topology, scheme: 'roles', hosts: roles.map(spec) };
}

export interface TablePaths {
  keyFile: string;
  knownHostsFile: string;
}

/** The lab's server table, as an Inventory (what ha-setup --config <lab.yaml> loads). */
export function labInventory(shape: LabShape, paths: TablePaths): Inventory {
  const servers: Record<string, string> = {};
  for (const h of shape.hosts) servers[h.alias] = h.address;
  // A VIP is part of the table when both hosts of its pair are.
  if (servers.db_primary && servers.db_standby) servers.db_vip = DB_VIP;
  if (servers.nfs_primary && servers.nfs_standby) servers.nfs_vip = NFS_VIP;
  return {
    cluster: 'lab',
    topology: shape.topology,
    ...(shape.scheme === 'partial' ? { partial: true } : {}),
    servers,
    network: { prefix: PREFIX },
    ssh: { user: 'root', identity: paths.keyFile, knownHosts: paths.knownHostsFile },
    options: { postgres: { version: 15 } },
  };
}

/** lab.yaml: the same table in the format of test/fixtures/cluster-lb.yaml, with comments. */
export function labTableYaml(shape: LabShape, paths: TablePaths): string {
  const inv = labInventory(shape, paths);
  const roles = ROLES[shape.topology];
  const lines = [
    `# The ha-setup lab: ${shape.hosts.length} Debian 12 hosts on this machine (written by \`ha-setup lab up\`).`,
    `# Use it like any servers: ha-setup --config <this file> plan`,
  ];
  if (shape.scheme === 'partial') {
    lines.push(
      `# A partial table: the first ${shape.hosts.length} roles of the ${roles.length}-host topology (${roles.join(', ')}).`,
      '# Runbooks that need a role not listed here stop before running and name it.',
    );
  }
  lines.push(`cluster: ${inv.cluster}`, `topology: ${inv.topology}`);
  if (inv.partial) lines.push('partial: true');
  lines.push('servers:');
  for (const [alias, address] of Object.entries(inv.servers)) lines.push(`  ${alias}: ${address}`);
  lines.push(
    'network:',
    `  prefix: ${PREFIX}`,
    'ssh:',
    '  user: root',
    `  identity: ${JSON.stringify(paths.keyFile)}`,
    `  knownHosts: ${JSON.stringify(paths.knownHostsFile)}`,
    'options:',
    '  postgres:',
    '    version: 15',
  );
  if ('nfs_primary' in inv.servers) {
    lines.push(
      '  # The lab has no kernel NFS (no nfsd, no NFS client): nfs-ganesha serves /srv/nfs (a',
      '  # directory with file handles in every lab host), and the app hosts reach it with the',
      '  # libnfs tools instead of a mount. On real servers leave these out (kernel server, mounts).',
      '  nfs:',
      '    server: ganesha',
      '    exportDir: /srv/nfs',
      '    graceSec: 10',
      '    mountClients: false',
    );
  }
  lines.push('');
  return lines.join('\n');
}
