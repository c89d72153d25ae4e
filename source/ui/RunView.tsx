/**
 * The live run: finished lines in <Static> (written once, never re-rendered), a small live box
 * with a spinner per running step/host and the last lines of its output, the failure panels,
 * and the summary. A function of the folded state (run-state.ts); no effects, no timers except
 * the spinner's.
 */
import { Box, Static, Text } from 'ink';
import Spinner from 'ink-spinner';
import {
  formatDuration,
  progress,
  runningItems,
  type OutputBuffer,
  type RunItem,
  type RunState,
  type RunSummary,
  type StaticEntry,
} from './run-state.js';
import { FailurePanel } from './FailurePanel.js';
import { useTheme } from './theme.js';

export interface RunViewProps {
  state: RunState;
  /** A fixed spinner frame instead of the animated one (tests, screen readers). */
  spinnerFrame?: string;
}

export function RunView({ state, spinnerFrame }: RunViewProps) {
  const running = runningItems(state);
  return (
    <>
      <Static items={state.static}>{(entry) => <StaticLine key={entry.key} entry={entry} />}</Static>
      <Box flexDirection="column">
        {groupByStep(running).map(([stepId, items]) => (
          <LiveStep
            key={stepId}
            items={items}
            output={state.output[stepId]}
            transcriptPath={state.transcriptPath}
            spinnerFrame={spinnerFrame}
          />
        ))}
        {!state.summary && state.order.length > 0 && <Progress state={state} />}
        {state.failures.map((f) => (
          <FailurePanel key={`${f.stepId}@${f.host}`} failure={f} />
        ))}
        {state.summary && <Summary summary={state.summary} dryRun={state.dryRun} />}
      </Box>
    </>
  );
}

function groupByStep(items: RunItem[]): [string, RunItem[]][] {
  const groups = new Map<string, RunItem[]>();
  for (const it of items) groups.set(it.stepId, [...(groups.get(it.stepId) ?? []), it]);
  return [...groups];
}

function SpinnerMark({ frame }: { frame?: string }) {
  const t = useTheme();
  return <Text color={t.c('cyan')}>{frame ?? <Spinner type="dots" />}</Text>;
}

function LiveStep(props: { items: RunItem[]; output?: OutputBuffer; transcriptPath?: string; spinnerFrame?: string }) {
  const t = useTheme();
  const { items, output } = props;
  return (
    <Box flexDirection="column">
      {items.map((it) => (
        <Text key={it.host}>
          <SpinnerMark frame={props.spinnerFrame} /> {it.title} · {it.host}
          {it.command !== undefined && <Text dimColor={t.dim}>{`  ${it.command}`}</Text>}
        </Text>
      ))}
      {output && output.hidden > 0 && (
        <Text dimColor={t.dim}>
          {`  … ${output.hidden} earlier ${output.hidden === 1 ? 'line' : 'lines'} hidden (full output: ${props.transcriptPath ?? 'the transcript'})`}
        </Text>
      )}
      {output?.lines.map((line, i) => (
        <Text key={i} wrap="truncate-end">
          {'  '}
          <Text color={t.c('gray')}>{line.host} │ </Text>
          {line.text}
        </Text>
      ))}
    </Box>
  );
}

function Progress({ state }: { state: RunState }) {
  const t = useTheme();
  const { finished, total } = progress(state);
  return <Text dimColor={t.dim}>{`${finished} of ${total} done`}</Text>;
}

export function StaticLine({ entry }: { entry: StaticEntry }) {
  const t = useTheme();
  if (entry.kind === 'header') {
    const verb = entry.dryRun ? 'Planning (dry run, nothing is changed)' : 'Applying';
    const steps = `${entry.steps} ${entry.steps === 1 ? 'step' : 'steps'}`;
    const hosts = `${entry.hosts} ${entry.hosts === 1 ? 'host' : 'hosts'}`;
    return (
      <Text bold>
        {`▶ ${verb} ${entry.runbooks.join(', ')}: ${steps} on ${hosts}`}
        <Text dimColor={t.dim} bold={false}>{` (run ${entry.runId})`}</Text>
      </Text>
    );
  }
  const what = `${entry.title} · ${entry.host}`;
  const took = entry.durationMs !== undefined ? ` (${formatDuration(entry.durationMs)})` : '';
  switch (entry.status) {
    case 'failed':
      return (
        <Text color={t.c('red')}>
          ✗ {what} failed: {entry.reason}
        </Text>
      );
    case 'done':
      return (
        <Text>
          <Text color={t.c('green')}>✓</Text> {what} {entry.changed ? <Text color={t.c('yellow')}>changed</Text> : 'unchanged'}
          {took}
          {entry.reason !== undefined && <Text dimColor={t.dim}>{` · ${entry.reason}`}</Text>}
        </Text>
      );
    case 'skipped':
      if (entry.afterFailure) {
        return (
          <Text color={t.c('yellow')}>
            ↷ {what} skipped: {entry.reason}
          </Text>
        );
      }
      return (
        <Text>
          <Text color={t.c('green')}>✓</Text> {what} unchanged
          <Text dimColor={t.dim}>{` · ${entry.reason ?? 'skipped'}`}</Text>
        </Text>
      );
    case 'planned':
      return <PlannedLines entry={entry} what={what} />;
  }
}

function PlannedLines({ entry, what }: { entry: Extract<StaticEntry, { kind: 'item' }>; what: string }) {
  const t = useTheme();
  const actions = entry.actions ?? [];
  if (actions.length === 0) {
    return (
      <Text>
        <Text color={t.c('green')}>•</Text> {what} nothing to do
        {entry.reason !== undefined && <Text dimColor={t.dim}>{` · ${entry.reason}`}</Text>}
      </Text>
    );
  }
  return (
    <Box flexDirection="column">
      <Text>
        <Text color={t.c('yellow')}>•</Text> {what} {actions.length} {actions.length === 1 ? 'change' : 'changes'}
        {entry.reason !== undefined && <Text dimColor={t.dim}>{` · ${entry.reason}`}</Text>}
      </Text>
      {actions.map((a, i) => (
        <Text key={i}>{`    ${a.kind === 'run' ? 'run  ' : 'write'} ${a.title}`}</Text>
      ))}
      {(entry.diffs ?? []).map((d) =>
        d.diff
          .replace(/\n$/, '')
          .split('\n')
          .map((line, i) => (
            <Text key={`${d.path}:${i}`} color={diffColor(line, t.c)}>
              {`      ${line}`}
            </Text>
          )),
      )}
    </Box>
  );
}

function diffColor(line: string, c: ReturnType<typeof useTheme>['c']) {
  if (line.startsWith('+++') || line.startsWith('---')) return undefined;
  if (line.startsWith('+')) return c('green');
  if (line.startsWith('-')) return c('red');
  if (line.startsWith('@@')) return c('cyan');
  return undefined;
}

function Summary({ summary, dryRun }: { summary: RunSummary; dryRun: boolean }) {
  const t = useTheme();
  const counts = dryRun
    ? `${summary.changed} would change, ${summary.unchanged} unchanged, ${summary.failed} failed`
    : `${summary.changed} changed, ${summary.unchanged} unchanged, ${summary.failed} failed`;
  const notRun = summary.notRun > 0 ? `, ${summary.notRun} not run` : '';
  const head = summary.ok ? (dryRun ? '✓ Plan ready' : '✓ Done') : dryRun ? '✗ Plan failed' : '✗ Failed';
  return (
    <Box flexDirection="column" marginTop={1}>
      <Text bold color={t.c(summary.ok ? 'green' : 'red')}>
        {`${head}: ${counts}${notRun} in ${formatDuration(summary.durationMs)}`}
      </Text>
      <Text>{`  Transcript: ${summary.transcriptPath}`}</Text>
    </Box>
  );
}
