/**
 * Every runbook, in the order `apply` runs them by default. Add new runbooks here.
 */
import type { Runbook } from '../source/engine/step.js';
import { factsRunbook } from './facts.js';

export const RUNBOOKS: Runbook[] = [factsRunbook];

/** The runbook with this id; the error lists the known ids. */
export function findRunbook(id: string): Runbook {
  const rb = RUNBOOKS.find((r) => r.id === id);
  if (!rb) throw new Error(`unknown runbook "${id}" (known: ${RUNBOOKS.map((r) => r.id).join(', ')})`);
  return rb;
}
