/**
 * Plain yes/no questions for the non-Ink paths (apply confirmation, unknown host keys).
 * A question is only asked when a person can answer it; otherwise it is an error naming the
 * flag that answers it. Questions are asked one at a time even when hosts connect in parallel.
 */
import { createInterface } from 'node:readline/promises';
import type { CliIO } from '../cli.js';
import { canPrompt } from '../ui/tty.js';

let queue: Promise<unknown> = Promise.resolve();

export class NeedsFlagError extends Error {}

export function askYesNo(io: CliIO, question: string, flag: string): Promise<boolean> {
  if (!canPrompt({ stdin: io.stdin, stdout: io.stdout, env: io.env })) {
    return Promise.reject(new NeedsFlagError(`${question.replace(/\?$/, '')}: no terminal to ask; pass ${flag}`));
  }
  const asked = queue.then(async () => {
    const rl = createInterface({ input: io.stdin, output: io.stderr as NodeJS.WritableStream });
    try {
      const answer = await rl.question(`${question} [y/N] `);
      return /^y(es)?$/i.test(answer.trim());
    } finally {
      rl.close();
    }
  });
  queue = asked.catch(() => undefined);
  return asked;
}
