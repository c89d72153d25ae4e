/**
 * What follows the saved table, in one Ink tree: connectivity check -> choose runbooks ->
 * plan (read-only) -> review -> apply with the live run view and the failure menu -> summary.
 * The engine, the transports and the host-key questions are passed in, so the whole flow
 * runs in tests on fake transports.
 */
import { useEffect, useMemo, useState } from 'react';
import { Box, Text } from 'ink';
import Spinner from 'ink-spinner';
import { join } from 'node:path';
import type { Inventory } from '../../inventory/types.js';
import type { HostRef, Runbook } from '../../engine/step.js';
import type { EngineEvent } from '../../engine/events.js';
import { runRunbooks, type RunResult } from '../../engine/runner.js';
import type { Transport } from '../../transport/types.js';
import { clusterDir } from '../../paths.js';
import { ConnectivityScreen } from './ConnectivityScreen.js';
import { RunbookScreen } from './RunbookScreen.js';
import { PlanReviewScreen } from './PlanReviewScreen.js';
import { SummaryScreen } from './SummaryScreen.js';
import { planByHost, type HostPlan } from './plan-review.js';
import type { HostKeyStore } from './host-key-store.js';
import { LiveRun } from '../LiveRun.js';
import { createRunStore } from '../run-store.js';
import { createDecisionStore } from '../decision-store.js';
import { useTheme } from '../theme.js';

export interface GuidedResult {
  /** Where it ended: quit on a screen, or the run's result. */
  ended: 'quit' | 'ran';
  result?: RunResult;
}

export interface GuidedFlowProps {
  inventory: Inventory;
  runbooks: Runbook[];
  transport(host: HostRef): Transport;
  hostKeys?: HostKeyStore;
  env: NodeJS.ProcessEnv;
  /** Resume: go straight to the run, starting at this step. */
  fromStep?: string;
  spinnerFrame?: string;
  now?: () => number;
  onExit(result: GuidedResult): void;
}

type Phase =
  | { name: 'check' }
  | { name: 'runbooks' }
  | { name: 'planning'; runbooks: Runbook[] }
  | { name: 'review'; runbooks: Runbook[]; hosts: HostPlan[] }
  /** The run view stays on screen; the summary follows it once the run is over. */
  | { name: 'run'; runbooks: Runbook[]; result?: RunResult };

const resumeCommand = (cluster: string) => `ha-setup apply --cluster ${cluster}`;

export function GuidedFlow(props: GuidedFlowProps) {
  const [phase, setPhase] = useState<Phase>(props.fromStep ? { name: 'run', runbooks: props.runbooks } : { name: 'check' });
  const [error, setError] = useState<string | undefined>();
  const quit = () => props.onExit({ ended: 'quit' });
  const t = useTheme();

  let screen;
  switch (phase.name) {
    case 'check':
      screen = (
        <ConnectivityScreen
          inventory={props.inventory}
          transport={props.transport}
          hostKeys={props.hostKeys}
          spinnerFrame={props.spinnerFrame}
          {...(props.now ? { now: props.now } : {})}
          onContinue={() => setPhase({ name: 'runbooks' })}
          onQuit={quit}
        />
      );
      break;
    case 'runbooks':
      screen = <RunbookScreen runbooks={props.runbooks} onChoose={(runbooks) => setPhase({ name: 'planning', runbooks })} onQuit={quit} />;
      break;
    case 'planning':
      screen = <Planning {...props} runbooks={phase.runbooks} onPlanned={(hosts) => setPhase({ name: 'review', runbooks: phase.runbooks, hosts })} onError={setError} />;
      break;
    case 'review':
      screen = <PlanReviewScreen cluster={props.inventory.cluster} hosts={phase.hosts} onApply={() => setPhase({ name: 'run', runbooks: phase.runbooks })} onQuit={quit} />;
      break;
    case 'run': {
      const result = phase.result;
      screen = (
        <Box flexDirection="column">
          <Running {...props} runbooks={phase.runbooks} onFinished={(r) => setPhase({ name: 'run', runbooks: phase.runbooks, result: r })} onError={setError} />
          {result && (
            <Box marginTop={1}>
              <SummaryScreen
                inventory={props.inventory}
                ok={result.ok}
                secretsPath={join(clusterDir(props.inventory.cluster, props.env), 'secrets.json')}
                transcriptPath={result.transcriptPath}
                onClose={() => props.onExit({ ended: 'ran', result })}
              />
            </Box>
          )}
        </Box>
      );
      break;
    }
  }
  if (error !== undefined) {
    return (
      <Box flexDirection="column">
        <Text color={t.c('red')}>{`✗ ${error}`}</Text>
        <Quitter onQuit={quit} />
      </Box>
    );
  }
  return screen;
}

/** Leaves at once (after an error that ends the flow). */
function Quitter({ onQuit }: { onQuit(): void }) {
  useEffect(() => onQuit(), [onQuit]);
  return null;
}

function Planning(props: GuidedFlowProps & { runbooks: Runbook[]; onPlanned(hosts: HostPlan[]): void; onError(message: string): void }) {
  const t = useTheme();
  useEffect(() => {
    const events: EngineEvent[] = [];
    runRunbooks({
      runbooks: props.runbooks,
      inventory: props.inventory,
      transport: props.transport,
      events: (e) => events.push(e),
      mode: 'plan',
      env: props.env,
      resumeCommand: resumeCommand(props.inventory.cluster),
      command: 'ha-setup (wizard: plan)',
    }).then(
      () => props.onPlanned(planByHost(events)),
      (e: Error) => props.onError(e.message.split('\n')[0]!),
    );
    // Plans once per visit of this screen.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  return (
    <Text>
      <Text color={t.c('cyan')}>{props.spinnerFrame ?? <Spinner type="dots" />}</Text> Gathering facts and planning (read-only)…
    </Text>
  );
}

function Running(props: GuidedFlowProps & { runbooks: Runbook[]; onFinished(result: RunResult): void; onError(message: string): void }) {
  const store = useMemo(() => createRunStore({ batchMs: 16 }), []);
  const decisions = useMemo(() => createDecisionStore(), []);
  // Leaving the screen (ctrl-c) while the failure menu is open stops the run instead of leaving it waiting.
  useEffect(() => () => decisions.close(), [decisions]);
  useEffect(() => {
    runRunbooks({
      runbooks: props.runbooks,
      inventory: props.inventory,
      transport: props.transport,
      events: store.dispatch,
      mode: 'apply',
      env: props.env,
      resumeCommand: resumeCommand(props.inventory.cluster),
      command: props.fromStep ? `ha-setup (wizard: resume at ${props.fromStep})` : 'ha-setup (wizard: apply)',
      onFailure: decisions.ask,
      ...(props.fromStep ? { fromStep: props.fromStep } : {}),
    }).then(
      async (result) => {
        store.flush();
        await store.whenRendered();
        props.onFinished(result);
      },
      (e: Error) => props.onError(e.message.split('\n')[0]!),
    );
    // One run per visit of this screen.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  return <LiveRun store={store} decisions={decisions} spinnerFrame={props.spinnerFrame} />;
}
