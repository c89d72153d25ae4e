/** Event sequences shared by the run-state and RunView tests. */
import type { EngineEvent } from '../../source/engine/events.js';

export const T = '/tmp/ha/clusters/lab/runs/r1.log';
export const RESUME = 'ha-setup apply --cluster lab --runbook postgres';

export const started: EngineEvent = {
  type: 'run-started',
  runId: 'r1',
  runbooks: ['postgres'],
  steps: [
    { id: 'pg.install', title: 'Install PostgreSQL', hosts: ['db_primary', 'db_standby'] },
    { id: 'pg.config', title: 'Configure PostgreSQL', hosts: ['db_primary'] },
  ],
  transcriptPath: T,
  dryRun: false,
};

export const out = (host: string, line: string, stepId = 'pg.install'): EngineEvent => ({
  type: 'output',
  stepId,
  host,
  stream: 'stdout',
  line,
});
