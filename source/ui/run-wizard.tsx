/** Mount the wizard on the terminal and resolve when it ends (what `ha-setup` with no command calls). */
import { render } from 'ink';
import { Wizard, type WizardResult } from './Wizard.js';
import { noColor, ThemeProvider } from './theme.js';
import { keyedStdin } from './key-stdin.js';

export interface WizardIO {
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
}

export async function runWizard(io: WizardIO): Promise<WizardResult> {
  let result: WizardResult = { proceed: false };
  const instance = render(
    <ThemeProvider color={!noColor(io.env)}>
      <Wizard
        env={io.env}
        onExit={(r) => {
          result = r;
          instance.unmount();
        }}
      />
    </ThemeProvider>,
    // ctrl-c is handled by the wizard (quit without saving), so the terminal is restored cleanly.
    { stdin: keyedStdin(io.stdin), stdout: io.stdout, stderr: io.stderr, exitOnCtrlC: false, patchConsole: false },
  );
  await instance.waitUntilExit();
  return result;
}
