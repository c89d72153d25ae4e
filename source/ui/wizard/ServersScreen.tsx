/**
 * Every alias of the topology on one screen: title, description, address, inline error.
 * Browse with ↑/↓, enter edits; while editing, enter keeps the value and edits the next one,
 * ↑/↓ keep it and move, esc puts the old value back.
 */
import { Box, Text, useInput } from 'ink';
import { TextField } from '../text-field.js';
import { roleOf } from '../../inventory/roles.js';
import type { Topology } from '../../inventory/types.js';
import { NOT_SET } from '../../inventory/format.js';
import { aliasesOf, fieldError, type WizardAction, type WizardState } from './wizard-state.js';
import { useTheme } from '../theme.js';

export interface ServersScreenProps {
  state: WizardState;
  dispatch(action: WizardAction): void;
}

export function ServersScreen({ state, dispatch }: ServersScreenProps) {
  const t = useTheme();
  const editing = state.editing !== undefined;
  useInput((input, key) => {
    if (editing) {
      if (key.escape) dispatch({ type: 'edit-cancel' });
      else if (key.upArrow) dispatch({ type: 'edit-commit', move: -1, continue: true });
      else if (key.downArrow) dispatch({ type: 'edit-commit', move: 1, continue: true });
      else if (key.tab) dispatch({ type: 'edit-commit', move: 0, continue: false });
      return;
    }
    if (key.upArrow || input === 'k') dispatch({ type: 'move', delta: -1 });
    else if (key.downArrow || input === 'j') dispatch({ type: 'move', delta: 1 });
    else if (key.return) dispatch({ type: 'edit-start' });
    else if (input === 'a') dispatch({ type: 'add-app' });
    else if (input === 'x') dispatch({ type: 'remove-app' });
    else if (input === 'l') dispatch({ type: 'toggle-lb-standby' });
    else if (input === 'r' || key.tab) dispatch({ type: 'review' });
    else if (input === 'b') dispatch({ type: 'back' });
  });

  const aliases = aliasesOf(state);
  const aliasWidth = Math.max(...aliases.map((a) => a.length));
  const titleWidth = Math.max(...aliases.map((a) => roleOf(a, state.topology)?.title.length ?? 0));
  return (
    <Box flexDirection="column">
      <Text bold>
        Servers of cluster {state.cluster} · topology {state.topology}
      </Text>
      <Text dimColor={t.dim}>Give each role an IP address or hostname; a VIP is a free IP that keepalived moves between a pair.</Text>
      <Box flexDirection="column" marginTop={1}>
        {aliases.map((alias, i) => (
          <ServerRow
            key={alias}
            alias={alias}
            topology={state.topology}
            focused={i === state.focus}
            value={state.servers[alias] ?? ''}
            draft={state.editing?.alias === alias ? state.editing.draft : undefined}
            error={fieldError(state, alias)}
            aliasWidth={aliasWidth}
            titleWidth={titleWidth}
            onDraft={(draft) => dispatch({ type: 'edit-change', draft, alias })}
            onCommit={() => dispatch({ type: 'edit-commit', move: 1, continue: true })}
          />
        ))}
      </Box>
    </Box>
  );
}

interface ServerRowProps {
  alias: string;
  topology: Topology;
  focused: boolean;
  value: string;
  /** Set while this row is edited. */
  draft?: string;
  error?: string;
  aliasWidth: number;
  titleWidth: number;
  onDraft(draft: string): void;
  onCommit(): void;
}

function ServerRow(p: ServerRowProps) {
  const t = useTheme();
  const role = roleOf(p.alias, p.topology);
  const pointer = p.focused ? '❯' : ' ';
  return (
    <Box flexDirection="column">
      <Box>
        <Text color={p.focused ? t.c('cyan') : undefined} bold={p.focused}>
          {`${pointer} ${p.alias.padEnd(p.aliasWidth)}  `}
        </Text>
        <Text>{`${(role?.title ?? 'unknown alias').padEnd(p.titleWidth)}  `}</Text>
        {p.draft !== undefined ? (
          <TextField value={p.draft} onChange={p.onDraft} onSubmit={() => p.onCommit()} />
        ) : p.value.trim() === '' ? (
          <Text dimColor={t.dim}>{NOT_SET}</Text>
        ) : (
          <Text>{p.value}</Text>
        )}
      </Box>
      <Box paddingLeft={4}>
        <Text dimColor={t.dim} wrap="truncate-end">
          {role?.description ?? ''}
        </Text>
      </Box>
      {p.error !== undefined && (
        <Box paddingLeft={4}>
          <Text color={t.c('red')}>✗ {p.error}</Text>
        </Box>
      )}
    </Box>
  );
}
