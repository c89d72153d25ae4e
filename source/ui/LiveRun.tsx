/**
 * RunView fed by a RunStore (what renderRun mounts). With a DecisionStore, a failed step opens
 * the failure menu under the run view (Retry / Skip / Show full log / Quit); the log view
 * replaces the menu until the user goes back.
 */
import { useEffect, useState, useSyncExternalStore } from 'react';
import { Box } from 'ink';
import { RunView } from './RunView.js';
import type { RunStore } from './run-store.js';
import type { DecisionStore } from './decision-store.js';
import type { StepFailure } from '../engine/runner.js';
import type { RunFailure, RunState } from './run-state.js';
import { FailureMenu } from './FailureMenu.js';
import { LogView } from './LogView.js';
import { tailLines } from './log-tail.js';

export function useRunState(store: RunStore) {
  return useSyncExternalStore(store.subscribe, store.getState, store.getState);
}

export interface LiveRunProps {
  store: RunStore;
  decisions?: DecisionStore;
  spinnerFrame?: string;
  /** Reads the log lines for "Show full log" (default: the transcript's last 200 lines). */
  readLog?: (path: string) => string[];
  /** Lines of the log view (default 20). */
  logHeight?: number;
}

const noDecisions = { subscribe: () => () => {}, getPending: () => undefined };

export function LiveRun({ store, decisions, spinnerFrame, readLog, logHeight }: LiveRunProps) {
  const state = useRunState(store);
  const d = decisions ?? noDecisions;
  const pending = useSyncExternalStore(d.subscribe, d.getPending, d.getPending);
  useEffect(() => store.markRendered(state), [store, state]);
  return (
    <Box flexDirection="column">
      <RunView state={state} spinnerFrame={spinnerFrame} />
      {pending && decisions && (
        <FailureQuestion key={`${pending.stepId}#${pending.attempt}`} failure={pending} state={state} decisions={decisions} readLog={readLog} logHeight={logHeight} />
      )}
    </Box>
  );
}

function FailureQuestion(props: { failure: StepFailure; state: RunState; decisions: DecisionStore; readLog?: (path: string) => string[]; logHeight?: number }) {
  const { failure, state, decisions } = props;
  const [log, setLog] = useState<string[] | undefined>(undefined);
  const shown: RunFailure = state.failures.find((f) => f.stepId === failure.stepId && failure.hosts.includes(f.host)) ?? {
    stepId: failure.stepId,
    title: failure.title,
    host: failure.hosts.join(', '),
    error: failure.error,
    lastLines: [],
    transcriptPath: failure.transcriptPath,
    resumeCommand: '',
  };
  if (log) {
    return <LogView title={`Transcript: ${failure.transcriptPath}`} lines={log} height={props.logHeight} onBack={() => setLog(undefined)} />;
  }
  return (
    <FailureMenu
      failure={shown}
      panel={false}
      skipRisk={failure.skipRisk}
      onChoice={(choice) => {
        if (choice !== 'log') return decisions.answer(choice);
        try {
          setLog((props.readLog ?? ((p) => tailLines(p, 200)))(failure.transcriptPath));
        } catch (e) {
          setLog([`cannot read ${failure.transcriptPath}: ${(e as Error).message}`]);
        }
      }}
    />
  );
}
