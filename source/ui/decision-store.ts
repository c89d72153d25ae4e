/**
 * The question the engine asks after a failed step (RunOptions.onFailure), held outside React so
 * the engine can await it: ask() resolves when the view answers. At most one question at a time.
 */
import type { FailureDecision, StepFailure } from '../engine/runner.js';

export interface DecisionStore {
  /** What RunOptions.onFailure calls. */
  ask(failure: StepFailure): Promise<FailureDecision>;
  /** The open question, if any. */
  getPending(): StepFailure | undefined;
  answer(decision: FailureDecision): void;
  subscribe(listener: () => void): () => void;
  /** The view is gone (unmounted, ctrl-c): the open question and every later one answer 'quit'. */
  close(): void;
}

export function createDecisionStore(): DecisionStore {
  let pending: { failure: StepFailure; resolve(d: FailureDecision): void } | undefined;
  let closed = false;
  const listeners = new Set<() => void>();
  const tell = () => listeners.forEach((l) => l());
  const answer = (decision: FailureDecision): void => {
    const p = pending;
    if (!p) return;
    pending = undefined;
    tell();
    p.resolve(decision);
  };
  return {
    ask(failure) {
      if (closed) return Promise.resolve('quit');
      if (pending) return Promise.reject(new Error('a failure question is already open'));
      return new Promise((resolve) => {
        pending = { failure, resolve };
        tell();
      });
    },
    getPending: () => pending?.failure,
    answer,
    close() {
      closed = true;
      answer('quit');
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
