/**
 * Mount the guided flow (check, runbooks, plan, run, summary) on the terminal for a saved
 * table; one SSH connection per host for the whole flow, unknown host keys asked in the UI.
 */
import { render } from 'ink';
import type { Inventory } from '../inventory/types.js';
import type { Runbook } from '../engine/step.js';
import { createTransportPool } from '../transport/connect.js';
import { GuidedFlow, type GuidedResult } from './wizard/GuidedFlow.js';
import { createHostKeyStore } from './wizard/host-key-store.js';
import { noColor, ThemeProvider } from './theme.js';
import type { WizardIO } from './run-wizard.js';
import { keyedStdin } from './key-stdin.js';

export async function runGuided(io: WizardIO, inventory: Inventory, runbooks: Runbook[], opts: { fromStep?: string } = {}): Promise<GuidedResult> {
  const hostKeys = createHostKeyStore();
  const pool = createTransportPool(inventory.ssh, { env: io.env, onUnknownHostKey: hostKeys.ask });
  let result: GuidedResult = { ended: 'quit' };
  try {
    const instance = render(
      <ThemeProvider color={!noColor(io.env)}>
        <GuidedFlow
          inventory={inventory}
          runbooks={runbooks}
          transport={(h) => pool.get(h)}
          hostKeys={hostKeys}
          env={io.env}
          {...(opts.fromStep ? { fromStep: opts.fromStep } : {})}
          onExit={(r) => {
            result = r;
            instance.unmount();
          }}
        />
      </ThemeProvider>,
      { stdin: keyedStdin(io.stdin), stdout: io.stdout, stderr: io.stderr, patchConsole: false },
    );
    await instance.waitUntilExit();
  } finally {
    await pool.closeAll();
  }
  return result;
}
