/** After saving: the table, where it is, how to export it. */
import { Box, Text } from 'ink';
import type { Inventory } from '../../inventory/types.js';
import { formatTable } from '../../inventory/format.js';
import { useTheme } from '../theme.js';
import { TableLines } from './ReviewScreen.js';

export function SavedScreen({ inventory, path }: { inventory: Inventory; path: string }) {
  const t = useTheme();
  return (
    <Box flexDirection="column">
      <Text color={t.c('green')} bold>
        ✓ Saved cluster {inventory.cluster} to {path}
      </Text>
      <Box marginY={1}>
        <TableLines text={formatTable(inventory, 'text').trimEnd()} />
      </Box>
      <Text>
        Export it for a change ticket or another machine:{' '}
        <Text color={t.c('cyan')}>{`ha-setup table export --cluster ${inventory.cluster} --out FILE`}</Text>
      </Text>
    </Box>
  );
}
