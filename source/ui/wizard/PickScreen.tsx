/** First screen: start a new table, rehearse on a local lab, or edit a saved table. */
import { Box, Text } from 'ink';
import { Select } from '../select.js';

export const NEW_CLUSTER = '\u0000new';
export const LAB_CLUSTER = '\u0000lab';

export function PickScreen({ existing, onPick }: { existing: string[]; onPick(name: string): void }) {
  const items = [
    { key: NEW_CLUSTER, label: 'New cluster', value: NEW_CLUSTER },
    ...existing.map((name) => ({ key: name, label: `Edit saved cluster ${name}`, value: name })),
    { key: LAB_CLUSTER, label: 'Rehearse on a local lab (7 Debian hosts on this machine, as root)', value: LAB_CLUSTER },
  ];
  return (
    <Box flexDirection="column">
      <Text bold>Server table: start a new cluster, rehearse on a lab, or edit a saved one</Text>
      <Select items={items} onSelect={(item) => onPick(item.value)} />
    </Box>
  );
}
