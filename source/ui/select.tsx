/** ink-select-input's indicator and item, honouring the colour theme (NO_COLOR). */
import { Box, Text } from 'ink';
import { useTheme } from './theme.js';

export function SelectIndicator({ isSelected = false }: { isSelected?: boolean }) {
  const t = useTheme();
  return (
    <Box marginRight={1}>
      <Text color={t.c('cyan')}>{isSelected ? '❯' : ' '}</Text>
    </Box>
  );
}

export function SelectItem({ isSelected = false, label }: { isSelected?: boolean; label: string }) {
  const t = useTheme();
  return (
    <Text color={isSelected ? t.c('cyan') : undefined} bold={isSelected}>
      {label}
    </Text>
  );
}
