/**
 * The uninstall screen: per host, what the uninstall plan stops and disables, unmounts, restores,
 * removes and edits (from the plan's actions, see summarizeUninstall), then one question:
 * y uninstall (data kept) · p also delete the data directories · n cancel. The data purge asks
 * for the cluster's name to be typed; a wrong name deletes nothing and asks again.
 * `askUninstall` mounts it on the terminal and resolves with the answer.
 */
import { useState } from 'react';
import { Box, render, Text, useInput } from 'ink';
import { LineInput } from './select.js';
import { summarizeUninstall, type UninstallKind } from '../../runbooks/uninstall.js';
import type { HostPlan } from './wizard/plan-review.js';
import { KeyHints, noColor, ThemeProvider, useTheme } from './theme.js';
import { keyedStdin } from './key-stdin.js';

export type UninstallChoice = { purge: boolean } | 'cancel';

export interface UninstallScreenProps {
  cluster: string;
  /** The uninstall plan per host, made with the purge asked for (so that the data directories show). */
  hosts: HostPlan[];
  /** --purge-data was given with the right name: the data directories are deleted. */
  purgeChosen?: boolean;
  onChoice(choice: UninstallChoice): void;
}

const LABEL: Record<Exclude<UninstallKind, 'purge'>, string> = {
  unmount: 'unmount',
  stop: 'stop, disable',
  restore: 'restore',
  remove: 'remove',
  edit: 'edit',
  firewall: 'delete rule',
  other: 'also run',
};
const WIDTH = 13;

type HostSummary = { host: string; groups: { kind: UninstallKind; items: string[] }[]; data: string[] };

export function summarizeHosts(hosts: HostPlan[]): HostSummary[] {
  return hosts.map((h) => {
    const groups = summarizeUninstall(h.steps.flatMap((s) => s.actions));
    return { host: h.host, groups: groups.filter((g) => g.kind !== 'purge'), data: groups.find((g) => g.kind === 'purge')?.items ?? [] };
  });
}

export function UninstallScreen({ cluster, hosts, purgeChosen = false, onChoice }: UninstallScreenProps) {
  const t = useTheme();
  const [phase, setPhase] = useState<'review' | 'purge'>('review');
  const [typed, setTyped] = useState('');
  const [wrong, setWrong] = useState<string | undefined>();
  const summary = summarizeHosts(hosts);
  const data = summary.flatMap((h) => h.data.map((d) => ({ host: h.host, dir: d })));
  const canPurge = !purgeChosen && data.length > 0;

  useInput(
    (input, key) => {
      if (input === 'y' || key.return) onChoice({ purge: purgeChosen });
      else if (input === 'n' || key.escape || (key.ctrl && input === 'c')) onChoice('cancel');
      else if (input === 'p' && canPurge) setPhase('purge');
    },
    { isActive: phase === 'review' },
  );
  useInput(
    (input, key) => {
      if (key.escape) {
        setPhase('review');
        setTyped('');
        setWrong(undefined);
      } else if (key.ctrl && input === 'c') onChoice('cancel');
    },
    { isActive: phase === 'purge' },
  );

  const dataLabel = purgeChosen ? 'DELETE data' : 'data kept';
  return (
    <Box flexDirection="column">
      <Text bold>{`Uninstall ${cluster}: what each host gets back`}</Text>
      {summary.map((h) => (
        <Box key={h.host} flexDirection="column">
          <Text bold>{h.host}</Text>
          {h.groups.length === 0 && h.data.length === 0 && <Text dimColor={t.dim}>{'  nothing to undo'}</Text>}
          {h.groups.map((g) =>
            g.items.map((item, i) => (
              <Text key={`${g.kind}:${item}`}>
                {'  '}
                <Text color={t.c('yellow')}>{(i === 0 ? LABEL[g.kind as Exclude<UninstallKind, 'purge'>] : '').padEnd(WIDTH)}</Text> {item}
              </Text>
            )),
          )}
          {h.data.map((d, i) => (
            <Text key={`data:${d}`}>
              {'  '}
              <Text color={purgeChosen ? t.c('red') : t.c('green')}>{(i === 0 ? dataLabel : '').padEnd(WIDTH)}</Text> {d}
            </Text>
          ))}
        </Box>
      ))}
      {phase === 'review' ? (
        <Box flexDirection="column" marginTop={1}>
          {purgeChosen ? (
            <Text color={t.c('red')} bold>{`The data directories above WILL BE DELETED (--purge-data ${cluster}).`}</Text>
          ) : (
            data.length > 0 && <Text>{'Data directories are kept; p deletes them too (asks for the cluster name).'}</Text>
          )}
          <Text bold>{`Uninstall ${cluster}?`}</Text>
          <KeyHints keys={[['y/enter', purgeChosen ? 'uninstall and delete the data' : 'uninstall'], ...(canPurge ? ([['p', 'also delete the data']] as [string, string][]) : []), ['n/esc', 'cancel']]} />
        </Box>
      ) : (
        <Box flexDirection="column" marginTop={1}>
          <Text color={t.c('red')} bold>{`Delete the data directories of ${cluster}? This cannot be undone:`}</Text>
          {data.map((d) => (
            <Text key={`${d.host}:${d.dir}`}>{`  ${d.host}  ${d.dir}`}</Text>
          ))}
          <Box>
            <Text>{`Type the cluster name (${cluster}) to confirm: `}</Text>
            <LineInput
              value={typed}
              onChange={(v) => {
                setTyped(v);
                setWrong(undefined);
              }}
              onSubmit={(v) => {
                if (v.trim() === cluster) onChoice({ purge: true });
                else {
                  setWrong(v);
                  setTyped('');
                }
              }}
            />
          </Box>
          {wrong !== undefined && <Text color={t.c('red')}>{`✗ "${wrong}" is not the cluster's name: nothing deleted. Type ${cluster} exactly (esc: back).`}</Text>}
          <KeyHints keys={[['enter', 'confirm'], ['esc', 'back']]} />
        </Box>
      )}
    </Box>
  );
}

type IO = { stdin: NodeJS.ReadStream; stdout: { write(s: string): unknown }; stderr: { write(s: string): unknown }; env: NodeJS.ProcessEnv };

/** Mount UninstallScreen on the terminal and resolve with the answer (ctrl-c: cancel). */
export async function askUninstall(io: IO, props: Omit<UninstallScreenProps, 'onChoice'>): Promise<UninstallChoice> {
  let choice: UninstallChoice = 'cancel';
  const instance = render(
    <ThemeProvider color={!noColor(io.env)}>
      <UninstallScreen
        {...props}
        onChoice={(c) => {
          choice = c;
          instance.unmount();
        }}
      />
    </ThemeProvider>,
    { stdin: keyedStdin(io.stdin), stdout: io.stdout as NodeJS.WriteStream, stderr: io.stderr as NodeJS.WriteStream, exitOnCtrlC: false, patchConsole: false },
  );
  await instance.waitUntilExit();
  return choice;
}
