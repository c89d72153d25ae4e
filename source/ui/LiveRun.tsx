/** RunView fed by a RunStore (what renderRun mounts). */
import { useEffect, useSyncExternalStore } from 'react';
import { RunView } from './RunView.js';
import type { RunStore } from './run-store.js';

export function useRunState(store: RunStore) {
  return useSyncExternalStore(store.subscribe, store.getState, store.getState);
}

export function LiveRun({ store, spinnerFrame }: { store: RunStore; spinnerFrame?: string }) {
  const state = useRunState(store);
  useEffect(() => store.markRendered(state), [store, state]);
  return <RunView state={state} spinnerFrame={spinnerFrame} />;
}
