/**
 * Review the plan before applying: one line per host (commands, file writes, diffs), enter
 * expands a host into its steps with every command and diff. a: apply; esc: quit.
 */
import { useState } from 'react';
import { Box, Text, useInput } from 'ink';
import { plural, type HostPlan } from './plan-review.js';
import { KeyHints, useTheme } from '../theme.js';

export interface PlanReviewScreenProps {
  cluster: string;
  hosts: HostPlan[];
  onApply(): void;
  onQuit(): void;
}

export function PlanReviewScreen({ cluster, hosts, onApply, onQuit }: PlanReviewScreenProps) {
  const t = useTheme();
  const [focus, setFocus] = useState(0);
  const [open, setOpen] = useState<Set<string>>(new Set());
  const failed = hosts.some((h) => h.errors > 0);
  useInput((input, key) => {
    if (key.escape || input === 'q') onQuit();
    else if (key.upArrow) setFocus((f) => Math.max(0, f - 1));
    else if (key.downArrow) setFocus((f) => Math.min(hosts.length - 1, f + 1));
    else if (key.return || input === ' ') {
      const h = hosts[focus]?.host;
      if (h) setOpen((o) => (o.has(h) ? new Set([...o].filter((x) => x !== h)) : new Set([...o, h])));
    } else if (input === 'a' && !failed) onApply();
  });
  const changes = hosts.reduce((n, h) => n + h.commands + h.writes, 0);
  return (
    <Box flexDirection="column">
      <Text bold>{`Plan for ${cluster}: ${plural(changes, 'change')} on ${plural(hosts.filter((h) => h.commands + h.writes > 0).length, 'host')}`}</Text>
      {hosts.map((h, i) => (
        <Box key={h.host} flexDirection="column">
          <Text color={i === focus ? t.c('cyan') : undefined}>
            {`${i === focus ? '❯' : ' '} ${open.has(h.host) ? '▾' : '▸'} ${h.host}  `}
            <Text color={h.errors ? t.c('red') : undefined}>{summary(h)}</Text>
          </Text>
          {open.has(h.host) && <HostSteps plan={h} />}
        </Box>
      ))}
      {failed && <Text color={t.c('red')}>The plan failed on some hosts (see above): fix that and start again; nothing was changed.</Text>}
      <KeyHints keys={[['↑/↓', 'move'], ['enter', 'expand/collapse'], ...(failed ? [] : ([['a', 'apply']] as [string, string][])), ['esc', 'quit']]} />
    </Box>
  );
}

function summary(h: HostPlan): string {
  if (h.errors) return `${plural(h.errors, 'step')} failed to plan`;
  if (h.commands + h.writes === 0) return `nothing to do (${plural(h.steps.length, 'step')} checked)`;
  return `${plural(h.commands, 'command')}, ${plural(h.writes, 'file write')}, ${plural(h.diffs, 'diff')}`;
}

function HostSteps({ plan }: { plan: HostPlan }) {
  const t = useTheme();
  return (
    <Box flexDirection="column" marginLeft={4}>
      {plan.steps.map((s) => (
        <Box key={s.stepId} flexDirection="column">
          {s.error !== undefined ? (
            <Text color={t.c('red')}>{`✗ ${s.title}: ${s.error}`}</Text>
          ) : s.actions.length === 0 ? (
            <Text>
              <Text color={t.c('green')}>•</Text> {s.title}: nothing to do
              {s.reason !== undefined && <Text dimColor={t.dim}>{` · ${s.reason}`}</Text>}
            </Text>
          ) : (
            <Text>
              <Text color={t.c('yellow')}>•</Text> {`${s.title}: ${plural(s.actions.length, 'action')}, ${plural(s.diffs.length, 'diff')}`}
            </Text>
          )}
          {s.actions.map((a, i) => (
            <Text key={i}>{`    ${a.kind === 'run' ? 'run  ' : 'write'} ${a.kind === 'run' ? a.title : a.title ? `${a.title} (${a.path})` : a.path}`}</Text>
          ))}
          {s.diffs.map((d) =>
            d.diff
              .replace(/\n$/, '')
              .split('\n')
              .map((line, i) => (
                <Text key={`${d.path}:${i}`} color={line.startsWith('+') && !line.startsWith('+++') ? t.c('green') : line.startsWith('-') && !line.startsWith('---') ? t.c('red') : undefined}>
                  {`      ${line}`}
                </Text>
              )),
          )}
        </Box>
      ))}
    </Box>
  );
}
