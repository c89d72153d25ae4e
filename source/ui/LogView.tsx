/**
 * A paged view of log lines (the transcript's tail after a failure): starts at the end,
 * ↑/↓ a line, PgUp/PgDn or b/space a page, g/G top/end, q/esc/enter back.
 */
import { useState } from 'react';
import { Box, Text, useInput } from 'ink';
import { cleanLine } from './run-state.js';
import { KeyHints, useTheme } from './theme.js';

export interface LogViewProps {
  title: string;
  lines: string[];
  /** Lines shown at once (default 20). */
  height?: number;
  onBack(): void;
  isActive?: boolean;
}

export function LogView({ title, lines, height = 20, onBack, isActive = true }: LogViewProps) {
  const t = useTheme();
  const maxTop = Math.max(0, lines.length - height);
  const [top, setTop] = useState(maxTop);
  const move = (delta: number) => setTop((v) => Math.min(maxTop, Math.max(0, v + delta)));
  useInput(
    (input, key) => {
      if (key.escape || key.return || input === 'q') onBack();
      else if (key.upArrow || input === 'k') move(-1);
      else if (key.downArrow || input === 'j') move(1);
      else if (key.pageUp || input === 'b') move(-height);
      else if (key.pageDown || input === ' ') move(height);
      else if (input === 'g') setTop(0);
      else if (input === 'G') setTop(maxTop);
    },
    { isActive },
  );
  const shown = lines.slice(top, top + height);
  const range = lines.length === 0 ? 'empty' : `lines ${top + 1}–${top + shown.length} of ${lines.length}`;
  return (
    <Box flexDirection="column">
      <Text bold>{title}</Text>
      <Text dimColor={t.dim}>{range}</Text>
      {shown.map((line, i) => (
        <Text key={top + i} wrap="truncate-end">
          {cleanLine(line)}
        </Text>
      ))}
      <KeyHints keys={[['↑/↓', 'line'], ['pgup/pgdn', 'page'], ['g/G', 'top/end'], ['q', 'back to the menu']]} />
    </Box>
  );
}
