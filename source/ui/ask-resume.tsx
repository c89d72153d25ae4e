/** Mount ResumeScreen on the terminal and resolve with the choice. */
import { render } from 'ink';
import type { LastFailure, ResumeChoice } from './last-failure.js';
import { ResumeScreen } from './ResumeScreen.js';
import { noColor, ThemeProvider } from './theme.js';
import { keyedStdin } from './key-stdin.js';

type IO = { stdin: NodeJS.ReadStream; stdout: { write(s: string): unknown }; stderr: { write(s: string): unknown }; env: NodeJS.ProcessEnv };

export async function askResume(io: IO, cluster: string, failure: LastFailure): Promise<ResumeChoice> {
  let choice: ResumeChoice = 'cancel';
  const instance = render(
    <ThemeProvider color={!noColor(io.env)}>
      <ResumeScreen
        cluster={cluster}
        failure={failure}
        onChoice={(c) => {
          choice = c;
          instance.unmount();
        }}
      />
    </ThemeProvider>,
    { stdin: keyedStdin(io.stdin), stdout: io.stdout as NodeJS.WriteStream, stderr: io.stderr as NodeJS.WriteStream, exitOnCtrlC: false, patchConsole: false },
  );
  await instance.waitUntilExit();
  return choice;
}
