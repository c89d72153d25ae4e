import { Secret } from './shell.js';

/**
 * Masks every registered secret value in any text before it reaches an event, the
 * transcript, an error message or the screen.
 */
export class Redactor {
  #secrets = new Map<string, Secret>();

  add(...secrets: Secret[]): this {
    for (const s of secrets) {
      const v = s.reveal();
      if (v.length >= 4) this.#secrets.set(v, s);
    }
    return this;
  }

  get size(): number {
    return this.#secrets.size;
  }

  redact(text: string): string {
    if (this.#secrets.size === 0 || !text) return text;
    let out = text;
    // Longest first, so that a secret containing another is masked whole.
    const values = [...this.#secrets.keys()].sort((a, b) => b.length - a.length);
    for (const v of values) {
      if (out.includes(v)) out = out.split(v).join(this.#secrets.get(v)!.masked);
    }
    return out;
  }

  redactError(err: unknown): Error {
    const e = err instanceof Error ? err : new Error(String(err));
    const red = new Error(this.redact(e.message));
    red.stack = e.stack ? this.redact(e.stack) : undefined;
    (red as Error & { cause?: unknown }).cause = (e as Error & { cause?: unknown }).cause;
    return red;
  }
}
