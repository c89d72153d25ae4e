/** Which front end the apps sit behind: HAProxy (lb) or a Kubernetes master (k8s). */
import { Box, Text } from 'ink';
import type { Topology } from '../../inventory/types.js';
import { roleOf } from '../../inventory/roles.js';
import { Select } from '../select.js';
import { useTheme } from '../theme.js';

const ITEMS: { key: string; label: string; value: Topology }[] = [
  { key: 'lb', label: `lb: ${roleOf('lb')!.title}`, value: 'lb' },
  { key: 'k8s', label: `k8s: ${roleOf('k8s_master')!.title}`, value: 'k8s' },
];

export function TopologyScreen({ cluster, value, onSelect }: { cluster: string; value: Topology; onSelect(t: Topology): void }) {
  const t = useTheme();
  return (
    <Box flexDirection="column">
      <Text bold>Topology of cluster {cluster}</Text>
      <Text dimColor={t.dim}>lb: {roleOf('lb')!.description}</Text>
      <Text dimColor={t.dim}>k8s: {roleOf('k8s_master')!.description}</Text>
      <Box marginTop={1}>
        <Select
          items={ITEMS}
          initialIndex={Math.max(0, ITEMS.findIndex((i) => i.value === value))}
          onSelect={(item) => onSelect(item.value)}
        />
      </Box>
    </Box>
  );
}
