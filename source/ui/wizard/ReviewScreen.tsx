/** The filled-in table and every remaining problem; saving is refused until there are none. */
import { Box, Text } from 'ink';
import { formatTable } from '../../inventory/format.js';
import type { FieldError } from '../../inventory/validate.js';
import { useTheme } from '../theme.js';
import type { WizardState } from './wizard-state.js';

export function tableText(state: Pick<WizardState, 'cluster' | 'topology' | 'servers' | 'appCount'>): string {
  return formatTable({ cluster: state.cluster, topology: state.topology, servers: state.servers }, 'text', { appCount: state.appCount }).trimEnd();
}

export function ReviewScreen({ state, errors }: { state: WizardState; errors: FieldError[] }) {
  const t = useTheme();
  return (
    <Box flexDirection="column">
      <TableLines text={tableText(state)} />
      <Box marginTop={1} flexDirection="column">
        {errors.length === 0 ? (
          <Text color={t.c('green')}>✓ The table is complete and valid: press s to save it.</Text>
        ) : (
          <>
            <Text color={t.c('red')} bold>
              {`${errors.length} ${errors.length === 1 ? 'problem' : 'problems'} to fix before saving:`}
            </Text>
            {errors.map((e, i) => (
              <Box key={i} paddingLeft={2}>
                <Text color={t.c('red')}>{`✗ ${e.field ? `${e.field}: ` : ''}${e.message}`}</Text>
              </Box>
            ))}
          </>
        )}
      </Box>
    </Box>
  );
}

/** A formatted table, one terminal line per row (cut at the edge rather than wrapped, so columns stay aligned). */
export function TableLines({ text }: { text: string }) {
  return (
    <Box flexDirection="column">
      {text.split('\n').map((line, i) => (
        <Text key={i} wrap="truncate-end">
          {line === '' ? ' ' : line}
        </Text>
      ))}
    </Box>
  );
}
