/**
 * Holds the folded run state outside React, so the engine can emit events before, during and
 * after the Ink tree is mounted. Subscribers are told of changes at most once per `batchMs`
 * (0: at once), so a flood of output lines does not re-render the screen once per line.
 */
import type { EngineEvent, EventSink } from '../engine/events.js';
import { initialRunState, reduceRun, type RunState } from './run-state.js';

export interface RunStore {
  dispatch: EventSink;
  getState(): RunState;
  subscribe(listener: () => void): () => void;
  /** Tell subscribers now about anything pending. */
  flush(): void;
  /** The view calls this after committing a state to the screen. */
  markRendered(state: RunState): void;
  /** Resolves once the view has rendered the latest published state. */
  whenRendered(): Promise<void>;
}

export function createRunStore(opts: { batchMs?: number } = {}): RunStore {
  const batchMs = opts.batchMs ?? 0;
  let state = initialRunState;
  /** What subscribers see: lags `state` by at most batchMs. */
  let published = state;
  let timer: NodeJS.Timeout | undefined;
  const listeners = new Set<() => void>();
  let rendered: RunState | undefined;
  let waiters: (() => void)[] = [];

  const publish = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (published === state) return;
    published = state;
    for (const l of listeners) l();
  };

  return {
    dispatch(event: EngineEvent) {
      state = reduceRun(state, event);
      if (batchMs <= 0 || event.type === 'run-finished' || event.type === 'step-failed') publish();
      else timer ??= setTimeout(publish, batchMs);
    },
    getState: () => published,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    flush: publish,
    markRendered(s: RunState) {
      rendered = s;
      if (s !== published) return;
      const ready = waiters;
      waiters = [];
      for (const w of ready) w();
    },
    whenRendered() {
      if (rendered === published) return Promise.resolve();
      return new Promise((resolve) => waiters.push(resolve));
    },
  };
}
