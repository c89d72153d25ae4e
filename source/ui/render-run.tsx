/**
 * What apply and plan call to show a run. Interactive (stdout is a TTY, not CI, not --json):
 * an Ink RunView fed by the events. Otherwise the plain line renderer (source/render/plain.ts),
 * which never loads a prompt and reads cleanly in a CI log. With --json the plain progress goes
 * to stderr so stdout carries only the command's data.
 */
import { render } from 'ink';
import type { EventSink } from '../engine/events.js';
import type { FailureDecision, StepFailure } from '../engine/runner.js';
import { createDecisionStore } from './decision-store.js';
import { createPlainRenderer } from '../render/plain.js';
import { LiveRun } from './LiveRun.js';
import { createRunStore } from './run-store.js';
import { noColor, ThemeProvider } from './theme.js';
import { isInteractive } from './tty.js';
import { keyedStdin } from './key-stdin.js';

export { isCI, isInteractive } from './tty.js';

type Out = { write(s: string): unknown; isTTY?: boolean };

export interface RenderRunOptions {
  stdout: Out;
  stderr: Out;
  stdin?: NodeJS.ReadStream;
  env: NodeJS.ProcessEnv;
  json?: boolean;
  verbose?: boolean;
  /** Override the TTY/CI detection (tests). */
  interactive?: boolean;
  /** Fixed spinner frame (tests). */
  spinnerFrame?: string;
  /** Interactive only: offer the failure menu (needs keys from stdin); see RunRenderer.decide. */
  prompt?: boolean;
}

export interface RunRenderer {
  sink: EventSink;
  /** Wait until everything received is on the screen, then release the terminal. */
  done(): Promise<void>;
  /** Which path was taken. */
  interactive: boolean;
  /** Set when the failure menu is offered: pass as RunOptions.onFailure. */
  decide?: (failure: StepFailure) => Promise<FailureDecision>;
}

function colorFor(out: Out, env: NodeJS.ProcessEnv): boolean {
  if (noColor(env)) return false;
  if (env.FORCE_COLOR !== undefined) return env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false';
  return Boolean(out.isTTY);
}

export function renderRun(opts: RenderRunOptions): RunRenderer {
  const interactive = opts.interactive ?? isInteractive(opts);
  if (!interactive) {
    const out = opts.json ? opts.stderr : opts.stdout;
    const sink = createPlainRenderer(out, { color: colorFor(out, opts.env), ...(opts.verbose ? { verbose: true } : {}) });
    return { sink, done: async () => {}, interactive: false };
  }

  const store = createRunStore({ batchMs: 16 });
  const decisions = opts.prompt ? createDecisionStore() : undefined;
  const instance = render(
    <ThemeProvider color={!noColor(opts.env)}>
      <LiveRun store={store} decisions={decisions} spinnerFrame={opts.spinnerFrame} />
    </ThemeProvider>,
    {
      stdout: opts.stdout as NodeJS.WriteStream,
      stderr: opts.stderr as NodeJS.WriteStream,
      ...(opts.stdin ? { stdin: keyedStdin(opts.stdin) } : {}),
      patchConsole: false,
    },
  );
  // Created before unmount: Ink resolves only a promise that already exists.
  const exited = instance.waitUntilExit();
  // Ctrl-C (or any exit) while the failure menu is open must not leave the run waiting.
  let gone = false;
  void exited
    .finally(() => {
      gone = true;
      decisions?.close();
    })
    .catch(() => undefined);
  let finished = false;
  return {
    sink: store.dispatch,
    interactive: true,
    ...(decisions ? { decide: decisions.ask } : {}),
    async done() {
      if (finished) return exited.then(() => undefined);
      finished = true;
      if (gone) return exited.then(() => undefined); // already unmounted (ctrl-c): nothing will render
      store.flush();
      // Let the view catch up with the last events (bounded, in case it never mounted).
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([store.whenRendered(), new Promise<void>((r) => (timer = setTimeout(r, 2000)))]);
      clearTimeout(timer);
      instance.unmount();
      await exited;
    },
  };
}
