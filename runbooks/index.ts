/**
 * Every runbook, in the order `apply` runs them by default. Add new runbooks here.
 */
import type { Runbook } from '../source/engine/step.js';
import { factsRunbook } from './facts.js';
import { osPrepRunbook } from './os-prep.js';
import { pgPrimaryRunbook } from './pg-primary.js';
import { pgSslRunbook } from './pg-ssl.js';
import { pgStandbyRunbook } from './pg-standby.js';
import { pgUsersRunbook } from './pg-users.js';
import { pgVerifyRunbook } from './pg-verify.js';

export const RUNBOOKS: Runbook[] = [
  factsRunbook,
  osPrepRunbook,
  pgPrimaryRunbook,
  pgSslRunbook,
  pgUsersRunbook,
  pgStandbyRunbook,
  pgVerifyRunbook,
];

/** The runbook with this id; the error lists the known ids. */
export function findRunbook(id: string): Runbook {
  const rb = RUNBOOKS.find((r) => r.id === id);
  if (!rb) throw new Error(`unknown runbook "${id}" (known: ${RUNBOOKS.map((r) => r.id).join(', ')})`);
  return rb;
}
