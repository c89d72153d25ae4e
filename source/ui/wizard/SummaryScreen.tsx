/**
 * The end of the guided run: the filled-in table, the endpoints (DB VIP, NFS VIP, LB URL),
 * where the generated secrets are kept, and the commands to use next. enter/esc/q closes.
 */
import { Box, Text, useInput } from 'ink';
import type { Inventory } from '../../inventory/types.js';
import { formatTable } from '../../inventory/format.js';
import { haproxyOptions } from '../../../runbooks/lib/haproxy-config.js';
import { nfsOptions } from '../../../runbooks/lib/nfs-options.js';
import { pgOptions } from '../../../runbooks/lib/options.js';
import { KeyHints, useTheme } from '../theme.js';
import { TableLines } from './ReviewScreen.js';

export interface SummaryScreenProps {
  inventory: Inventory;
  ok: boolean;
  /** <clusterDir>/secrets.json */
  secretsPath: string;
  transcriptPath?: string;
  onClose(): void;
}

/** The cluster's endpoints, as far as the table names them. */
export function endpoints(inv: Inventory): [string, string][] {
  const s = inv.servers;
  const options = inv.options ?? {};
  const out: [string, string][] = [];
  const pg = safe(() => pgOptions(options));
  const ha = safe(() => haproxyOptions(options));
  const nfs = safe(() => nfsOptions(options));
  const front = s.lb_vip || s.lb;
  const where = s.lb_vip ? 'LB VIP' : 'lb';
  if (s.db_vip) out.push(['PostgreSQL (DB VIP)', `${s.db_vip}:${pg?.port ?? 5432}`]);
  if (pg?.dbViaHaproxy && front) out.push([`PostgreSQL through HAProxy (${where})`, `${front}:${ha?.dbPort ?? 15432}`]);
  if (s.nfs_vip) out.push(['NFS share (NFS VIP)', `${s.nfs_vip}:${nfs?.exportDir ?? '/'}`]);
  if (front) out.push([`Load balancer (${where})`, `https://${front}:${ha?.appPort ?? 8181}`]);
  if (s.k8s_master) out.push(['Kubernetes API', `https://${s.k8s_master}:6443`]);
  return out;
}

/** An option block's defaults, or undefined when the table's options do not parse (the runbooks name the field). */
function safe<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}

/** What to run next: status, failover drill, uninstall. */
export function nextCommands(cluster: string): [string, string][] {
  return [
    ['health and the last run', `ha-setup status --cluster ${cluster}`],
    ['failover drill', `ha-setup drill db --cluster ${cluster} --fault stop-postgres`],
    ['remove what ha-setup set up', `ha-setup uninstall --cluster ${cluster}`],
  ];
}

export function SummaryScreen({ inventory, ok, secretsPath, transcriptPath, onClose }: SummaryScreenProps) {
  const t = useTheme();
  useInput((input, key) => {
    // '\n' too: an enter typed while the run view had no input handler (the terminal not yet in
    // raw mode) arrives translated by the line discipline (ICRNL).
    if (key.return || key.escape || input === 'q' || input === '\n') onClose();
  });
  const eps = endpoints(inventory);
  const width = Math.max(...eps.map(([k]) => k.length), ...nextCommands(inventory.cluster).map(([k]) => k.length));
  return (
    <Box flexDirection="column">
      <Text bold color={t.c(ok ? 'green' : 'red')}>
        {ok ? `✓ ${inventory.cluster} is set up` : `✗ ${inventory.cluster} is not finished: run ha-setup again to resume`}
      </Text>
      <Box marginY={1}>
        <TableLines text={formatTable(inventory, 'text').trimEnd()} />
      </Box>
      {eps.length > 0 && <Text bold>Endpoints</Text>}
      {eps.map(([k, v]) => (
        <Text key={k}>{`  ${k.padEnd(width)}  ${v}`}</Text>
      ))}
      <Text bold>Secrets (the generated passwords, mode 0600; never printed)</Text>
      <Text>{`  ${secretsPath}`}</Text>
      {transcriptPath !== undefined && (
        <>
          <Text bold>Transcript</Text>
          <Text>{`  ${transcriptPath}`}</Text>
        </>
      )}
      <Text bold>Next</Text>
      {nextCommands(inventory.cluster).map(([k, v]) => (
        <Text key={k}>
          {`  ${k.padEnd(width)}  `}
          <Text color={t.c('cyan')}>{v}</Text>
        </Text>
      ))}
      <KeyHints keys={[['enter', 'close']]} />
    </Box>
  );
}
