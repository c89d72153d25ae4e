/** Small helpers for the Ink tests: plain frames and waiting for content (never sleeping blind). */
import { EventEmitter } from 'node:events';
import { stripVTControlCharacters } from 'node:util';

/** The frame as text: no colour escapes, no trailing spaces on lines. */
export function plain(frame: string | undefined): string {
  return stripVTControlCharacters(frame ?? '')
    .split('\n')
    .map((l) => l.trimEnd())
    .join('\n');
}

/**
 * Let React run its passive effects (Ink's useInput attaches handlers in effects): call it after
 * a frame appears and before sending the next key, or the key may reach the previous handler.
 */
export async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((r) => setTimeout(r, 0));
}

/** Poll until `check` passes (returns truthy / does not throw), or fail with the last frame. */
export async function waitFor<T>(check: () => T, describe: () => string, timeoutMs = 10_000): Promise<T> {
  const start = Date.now();
  let lastError: unknown;
  for (;;) {
    try {
      const v = check();
      if (v) {
        await settle();
        return v;
      }
    } catch (e) {
      lastError = e;
    }
    if (Date.now() - start > timeoutMs) {
      const why = lastError instanceof Error ? `${lastError.message}\n` : '';
      throw new Error(`timed out after ${timeoutMs}ms\n${why}last frame:\n${describe()}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Wait until the last frame (plain) contains `text`. */
export function waitForText(lastFrame: () => string | undefined, text: string, timeoutMs?: number): Promise<string> {
  return waitFor<string | undefined>(
    () => {
      const f = plain(lastFrame());
      return f.includes(text) ? f : undefined;
    },
    () => plain(lastFrame()),
    timeoutMs,
  ) as Promise<string>;
}

export const keys = {
  up: '\u001B[A',
  down: '\u001B[B',
  enter: '\r',
  escape: '\u001B',
  backspace: '\u007F',
  ctrlC: '\u0003',
  tab: '\t',
};

/** What Ink reads keys from (as ink-testing-library's stdin): one write() is one read. */
export class FakeStdin extends EventEmitter {
  isTTY = true;
  data: string | null = null;
  write(data: string) {
    this.data = data;
    this.emit('readable');
    this.emit('data', data);
  }
  read = () => {
    const d = this.data;
    this.data = null;
    return d;
  };
  setEncoding() {}
  setRawMode() {}
  resume() {}
  pause() {}
  ref() {}
  unref() {}
}
