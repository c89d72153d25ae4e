/** Choose the runbooks to run: all, in order, by default. space toggles, a all/none, enter goes on. */
import { useState } from 'react';
import { Box, Text, useInput } from 'ink';
import type { Runbook } from '../../engine/step.js';
import { KeyHints, useTheme } from '../theme.js';

export interface RunbookScreenProps {
  runbooks: Runbook[];
  onChoose(chosen: Runbook[]): void;
  onQuit(): void;
}

export function RunbookScreen({ runbooks, onChoose, onQuit }: RunbookScreenProps) {
  const t = useTheme();
  const [on, setOn] = useState<boolean[]>(() => runbooks.map(() => true));
  const [focus, setFocus] = useState(0);
  const [notice, setNotice] = useState<string | undefined>();
  useInput((input, key) => {
    if (key.escape) return onQuit();
    if (key.upArrow) setFocus((f) => Math.max(0, f - 1));
    else if (key.downArrow) setFocus((f) => Math.min(runbooks.length - 1, f + 1));
    else if (input === ' ') setOn((v) => v.map((x, i) => (i === focus ? !x : x)));
    else if (input === 'a') setOn((v) => v.map(() => !v.every(Boolean)));
    else if (key.return) {
      const chosen = runbooks.filter((_, i) => on[i]);
      if (chosen.length === 0) setNotice('Choose at least one runbook (space).');
      else onChoose(chosen);
      return;
    }
    setNotice(undefined);
  });
  const count = on.filter(Boolean).length;
  return (
    <Box flexDirection="column">
      <Text bold>{`Runbooks to run, in this order (${count} of ${runbooks.length} chosen)`}</Text>
      {runbooks.map((rb, i) => (
        <Text key={rb.id} color={i === focus ? t.c('cyan') : undefined}>
          {`${i === focus ? '❯' : ' '} [${on[i] ? 'x' : ' '}] ${rb.title} `}
          <Text dimColor={t.dim}>{`(${rb.id}, ${rb.steps.length} ${rb.steps.length === 1 ? 'step' : 'steps'})`}</Text>
        </Text>
      ))}
      {notice !== undefined && <Text color={t.c('red')}>{notice}</Text>}
      <KeyHints keys={[['↑/↓', 'move'], ['space', 'toggle'], ['a', 'all/none'], ['enter', 'review the plan'], ['esc', 'quit']]} />
    </Box>
  );
}
