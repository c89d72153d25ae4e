/** The red panel shown when a step fails on a host: what, where, the last lines, how to resume. */
import { Box, Text } from 'ink';
import type { RunFailure } from './run-state.js';
import { useTheme } from './theme.js';

export function FailurePanel({ failure }: { failure: RunFailure }) {
  const t = useTheme();
  return (
    <Box flexDirection="column" borderStyle="round" borderColor={t.c('red')} paddingX={1} alignSelf="flex-start">
      <Text color={t.c('red')} bold>
        ✗ {failure.title} failed on {failure.host}
      </Text>
      <Text>{failure.error}</Text>
      {failure.command !== undefined && (
        <Text>
          <Text bold>Command: </Text>
          {failure.command}
        </Text>
      )}
      {failure.lastLines.length > 0 && (
        <Box flexDirection="column">
          <Text bold>Last lines:</Text>
          {failure.lastLines.map((line, i) => (
            <Text key={i} dimColor={t.dim}>
              {'  '}
              {line}
            </Text>
          ))}
        </Box>
      )}
      <Text>
        <Text bold>Full log: </Text>
        {failure.transcriptPath}
      </Text>
      <Text>
        <Text bold>Resume with: </Text>
        <Text color={t.c('cyan')}>{failure.resumeCommand}</Text>
      </Text>
    </Box>
  );
}
