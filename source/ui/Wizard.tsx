/**
 * The server-table wizard: pick or name a cluster, choose the topology, fill in every role's
 * address (checked as you type), review, save. Ends with onExit: the saved inventory (and
 * whether the user wants to go on to the next stage), or nothing when quit before saving.
 * State lives in a pure reducer (wizard/wizard-state.ts); each screen is its own component.
 */
import { useReducer, type Dispatch } from 'react';
import { Box, Text, useInput } from 'ink';
import type { Inventory } from '../inventory/types.js';
import { listClusters, loadCluster, saveCluster } from '../inventory/store.js';
import { validateInventory } from '../inventory/validate.js';
import { initialWizardState, reduceWizard, reviewErrors, tableToSave, type WizardAction, type WizardState } from './wizard/wizard-state.js';
import { LAB_CLUSTER, NEW_CLUSTER, PickScreen } from './wizard/PickScreen.js';
import { NameScreen } from './wizard/NameScreen.js';
import { TopologyScreen } from './wizard/TopologyScreen.js';
import { ServersScreen } from './wizard/ServersScreen.js';
import { ReviewScreen } from './wizard/ReviewScreen.js';
import { SavedScreen } from './wizard/SavedScreen.js';
import { KeyHints, useTheme } from './theme.js';

export interface WizardResult {
  /** The saved table; undefined when the user quit before saving. */
  inventory?: Inventory;
  /** The user asked to go on (enter on the saved screen) rather than quit. */
  proceed: boolean;
  /** The user chose to rehearse on a local lab: the caller starts it and uses its table. */
  lab?: boolean;
}

export interface WizardProps {
  /** Where clusters are saved (HA_SETUP_HOME ...); default process.env. */
  env?: NodeJS.ProcessEnv;
  onExit(result: WizardResult): void;
}

export function Wizard({ env = process.env, onExit }: WizardProps) {
  const t = useTheme();
  const [state, dispatch] = useReducer(reduceWizard, env, (e: NodeJS.ProcessEnv) => initialWizardState(listClusters(e)));
  const quit = () => onExit(state.saved ? { inventory: state.saved.inventory, proceed: false } : { proceed: false });

  useInput((input, key) => {
    if (key.ctrl && input === 'c') quit();
    else if (key.escape && state.editing === undefined) quit();
  });
  useInput(
    (input) => {
      if (input === 's') save(state, env, dispatch);
      else if (input === 'e' || input === 'b') dispatch({ type: 'back' });
    },
    { isActive: state.screen === 'review' },
  );
  useInput(
    (_input, key) => {
      if (key.return && state.saved) onExit({ inventory: state.saved.inventory, proceed: true });
    },
    { isActive: state.screen === 'saved' },
  );

  const pick = (name: string) => {
    if (name === NEW_CLUSTER) return dispatch({ type: 'new-cluster' });
    if (name === LAB_CLUSTER) return onExit({ proceed: true, lab: true });
    try {
      const inventory = loadCluster(name, env);
      if (inventory) dispatch({ type: 'load-cluster', inventory });
      else dispatch({ type: 'notice', message: `cluster "${name}" has no saved table any more` });
    } catch (e) {
      dispatch({ type: 'notice', message: (e as Error).message.split('\n').join('; ') });
    }
  };

  return (
    <Box flexDirection="column">
      <Screen state={state} dispatch={dispatch} pick={pick} />
      {state.notice !== undefined && (
        <Box marginTop={1}>
          <Text color={t.c('red')}>{state.notice}</Text>
        </Box>
      )}
      <KeyHints keys={hints(state)} />
    </Box>
  );
}

function Screen({ state, dispatch, pick }: { state: WizardState; dispatch: Dispatch<WizardAction>; pick(name: string): void }) {
  switch (state.screen) {
    case 'pick':
      return <PickScreen existing={state.existing} onPick={pick} />;
    case 'name':
      return (
        <NameScreen
          value={state.cluster}
          error={state.nameError}
          onChange={(value) => dispatch({ type: 'name-change', value })}
          onSubmit={() => dispatch({ type: 'name-submit' })}
        />
      );
    case 'topology':
      return <TopologyScreen cluster={state.cluster} value={state.topology} onSelect={(topology) => dispatch({ type: 'topology', topology })} />;
    case 'servers':
      return <ServersScreen state={state} dispatch={dispatch} />;
    case 'review':
      return <ReviewScreen state={state} errors={reviewErrors(state)} />;
    case 'saved':
      return state.saved ? <SavedScreen inventory={state.saved.inventory} path={state.saved.path} /> : null;
  }
}

/** Validate again and save only a valid table (saveCluster refuses anything else too). */
function save(state: WizardState, env: NodeJS.ProcessEnv, dispatch: Dispatch<WizardAction>) {
  const errors = reviewErrors(state);
  if (errors.length > 0) return dispatch({ type: 'save-refused', errors: errors.length });
  const result = validateInventory(tableToSave(state));
  if (!result.ok) return dispatch({ type: 'save-refused', errors: result.errors.length });
  try {
    const path = saveCluster(result.inventory, env);
    dispatch({ type: 'saved', inventory: result.inventory, path });
  } catch (e) {
    dispatch({ type: 'notice', message: `Not saved: ${(e as Error).message.split('\n').join('; ')}` });
  }
}

function hints(state: WizardState): [string, string][] {
  const quit: [string, string] = ['esc', state.saved ? 'quit' : 'quit without saving'];
  switch (state.screen) {
    case 'pick':
      return [['↑/↓', 'move'], ['enter', 'choose'], quit];
    case 'name':
      return [['enter', 'next'], quit];
    case 'topology':
      return [['↑/↓', 'move'], ['enter', 'choose'], ['b', 'back'], quit];
    case 'servers':
      return state.editing
        ? [['enter', 'keep, next field'], ['↑/↓', 'keep, move'], ['tab', 'keep'], ['esc', 'undo this edit'], ['ctrl-c', 'quit']]
        : [['↑/↓', 'move'], ['enter', 'edit'], ['a', 'add app server'], ...(state.appCount > 2 ? ([['x', `remove app${state.appCount}`]] as [string, string][]) : []), ...(state.topology === 'lb' ? ([['l', 'lb_standby' in state.servers ? 'remove the standby lb' : 'add a standby lb']] as [string, string][]) : []), ['r', 'review and save'], ['b', 'back'], quit];
    case 'review':
      return [['s', 'save'], ['e', 'edit'], quit];
    case 'saved':
      return [['enter', 'continue'], quit];
  }
}
