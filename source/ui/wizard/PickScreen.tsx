/** First screen when clusters are saved: start a new table or edit a saved one. */
import { Box, Text } from 'ink';
import SelectInput from 'ink-select-input';
import { SelectIndicator, SelectItem } from '../select.js';

export const NEW_CLUSTER = '\u0000new';

export function PickScreen({ existing, onPick }: { existing: string[]; onPick(name: string): void }) {
  const items = [
    { key: NEW_CLUSTER, label: 'New cluster', value: NEW_CLUSTER },
    ...existing.map((name) => ({ key: name, label: `Edit saved cluster ${name}`, value: name })),
  ];
  return (
    <Box flexDirection="column">
      <Text bold>Server table: start a new cluster or edit a saved one</Text>
      <SelectInput items={items} indicatorComponent={SelectIndicator} itemComponent={SelectItem} onSelect={(item) => onPick(item.value)} />
    </Box>
  );
}
