/**
 * Every runbook, in the order `apply` runs them by default. Add new runbooks here.
 * ON_DEMAND runbooks (uninstall) never run by default: only by name or their own command.
 */
import type { Runbook } from '../source/engine/step.js';
import { factsRunbook } from './facts.js';
import { keepalivedRunbook } from './keepalived.js';
import { nfsMountRunbook, nfsRunbook } from './nfs.js';
import { haproxyRunbook } from './haproxy.js';
import { dbRoutingRunbook } from './db-routing.js';
import { appScaleRunbook } from './app-scale.js';
import { uninstallRunbook } from './uninstall.js';
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
  // The services the VIPs follow come before keepalived: started on a pair whose service already
  // runs, keepalived gives each VIP to the pair's primary (both nodes becoming healthy at once
  // would give it to whichever passed its check first). The mounts need the NFS VIP: after it.
  nfsRunbook,
  haproxyRunbook,
  keepalivedRunbook,
  nfsMountRunbook,
  dbRoutingRunbook,
  appScaleRunbook,
];

/** Runbooks that run only when asked for by name (ha-setup uninstall, apply --runbook uninstall). */
export const ON_DEMAND: Runbook[] = [uninstallRunbook];

/** The runbook with this id; the error lists the known ids. */
export function findRunbook(id: string): Runbook {
  const all = [...RUNBOOKS, ...ON_DEMAND];
  const rb = all.find((r) => r.id === id);
  if (!rb) throw new Error(`unknown runbook "${id}" (known: ${all.map((r) => r.id).join(', ')})`);
  return rb;
}
