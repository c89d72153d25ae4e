/** The last run failed: resume at the failed step, start over (done steps are re-checked), or cancel. */
import { Box, Text, useInput } from 'ink';
import { failedWhere, type LastFailure, type ResumeChoice } from './last-failure.js';
import { Select } from './select.js';
import { KeyHints, useTheme } from './theme.js';

export function ResumeScreen({ cluster, failure, onChoice }: { cluster: string; failure: LastFailure; onChoice(c: ResumeChoice): void }) {
  const t = useTheme();
  useInput((input, key) => {
    if (key.escape || (key.ctrl && input === 'c')) onChoice('cancel');
  });
  const items: { key: string; label: string; value: ResumeChoice }[] = [
    { key: 'resume', label: `Resume at step ${failure.stepId} (${failedWhere(failure)})`, value: 'resume' },
    { key: 'start-over', label: 'Start over (steps already done are re-checked, not redone)', value: 'start-over' },
    { key: 'cancel', label: 'Cancel', value: 'cancel' },
  ];
  return (
    <Box flexDirection="column">
      <Text color={t.c('yellow')} bold>
        The last run of {cluster} stopped at {failure.title} ({failure.stepId}).
      </Text>
      <Select items={items} onSelect={(item) => onChoice(item.value)} />
      <KeyHints keys={[['↑/↓', 'move'], ['enter', 'choose'], ['esc', 'cancel']]} />
    </Box>
  );
}
