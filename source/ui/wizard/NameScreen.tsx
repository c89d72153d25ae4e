/** The cluster's name: the key it is saved under and its state directory's name. */
import { Box, Text } from 'ink';
import { LineInput } from '../select.js';
import { useTheme } from '../theme.js';

export interface NameScreenProps {
  value: string;
  error?: string;
  onChange(value: string): void;
  onSubmit(): void;
}

export function NameScreen({ value, error, onChange, onSubmit }: NameScreenProps) {
  const t = useTheme();
  return (
    <Box flexDirection="column">
      <Text bold>Cluster name</Text>
      <Text dimColor={t.dim}>The name the table is saved under (letters, digits, . _ -), e.g. prod or lab.</Text>
      <Box marginTop={1}>
        <Text>Name: </Text>
        <LineInput value={value} onChange={onChange} onSubmit={() => onSubmit()} />
      </Box>
      {error !== undefined && <Text color={t.c('red')}>✗ {error}</Text>}
    </Box>
  );
}
