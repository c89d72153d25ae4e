/**
 * After a failed step in an interactive run: Retry / Skip this step / Show full log / Quit.
 * Arrow keys + enter (Select), or the first letter. Input is only read while
 * `isActive`, so the menu can stay mounted under other screens.
 */
import { Box, Text, useInput } from 'ink';
import type { RunFailure } from './run-state.js';
import { FailurePanel } from './FailurePanel.js';
import { Select } from './select.js';
import { KeyHints, useTheme } from './theme.js';

export type FailureChoice = 'retry' | 'skip' | 'log' | 'quit';

const CHOICES: { key: string; label: string; value: FailureChoice }[] = [
  { key: 'r', label: 'Retry', value: 'retry' },
  { key: 's', label: 'Skip this step', value: 'skip' },
  { key: 'l', label: 'Show full log', value: 'log' },
  { key: 'q', label: 'Quit', value: 'quit' },
];

export interface FailureMenuProps {
  failure: RunFailure;
  onChoice(choice: FailureChoice): void;
  isActive?: boolean;
  /** What skipping this step risks (shown under the choices). */
  skipRisk?: string;
  /** Draw the failure panel above the menu (default true; off when the run view shows it already). */
  panel?: boolean;
}

export function FailureMenu({ failure, onChoice, isActive = true, skipRisk, panel = true }: FailureMenuProps) {
  const t = useTheme();
  useInput(
    (input) => {
      const hit = CHOICES.find((c) => c.key === input.toLowerCase());
      if (hit) onChoice(hit.value);
    },
    { isActive },
  );
  return (
    <Box flexDirection="column">
      {panel && <FailurePanel failure={failure} />}
      <Text bold>What now?</Text>
      <Select
        items={CHOICES.map((c) => ({ key: c.value, label: `${c.label} (${c.key})`, value: c.value }))}
        isFocused={isActive}
        onSelect={(item) => onChoice(item.value)}
      />
      {skipRisk !== undefined && (
        <Text color={t.c('yellow')} wrap="wrap">
          {`Skipping risks: ${skipRisk}`}
        </Text>
      )}
      <KeyHints keys={[['↑/↓', 'move'], ['enter', 'choose'], ['r/s/l/q', 'shortcut']]} />
    </Box>
  );
}
