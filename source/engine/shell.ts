/**
 * Remote command text. Commands are values: every interpolated value is quoted by one
 * function (POSIX single quotes, which dash, bash and busybox sh all read the same way),
 * and secrets are marked so that every printed form masks them.
 *
 * Never build a remote command with zx: its quoting emits bash-only $'..'.
 */

/** A value that must never be printed, logged or put in argv. */
export class Secret {
  readonly #value: string;
  constructor(
    readonly name: string,
    value: string,
  ) {
    this.#value = value;
  }
  /** The real value: only for stdin payloads, 0600 files and the redactor. */
  reveal(): string {
    return this.#value;
  }
  /** What printed forms show instead of the value. */
  get masked(): string {
    return `<${this.name}: ${this.#value.length} characters>`;
  }
  toString(): string {
    return this.masked;
  }
  toJSON(): string {
    return this.masked;
  }
}

/** Quote one word for a POSIX shell. */
export function quote(word: string | number): string {
  const s = String(word);
  if (s !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Text that is inserted into a command as is (already quoted, or shell syntax). */
export class Raw {
  constructor(readonly text: string) {}
}
export const raw = (text: string): Raw => new Raw(text);

export type ShellValue = string | number | Raw | readonly (string | number)[];

/**
 * Tagged template: sh`install -m ${mode} ${src} ${dest}` quotes every interpolation.
 * Arrays become several quoted words. Secrets are refused here on purpose: a secret goes
 * on stdin (see Script.stdin) or in a 0600 file, never into the command text.
 */
export function sh(strings: TemplateStringsArray, ...values: ShellValue[]): string {
  let out = strings[0] ?? '';
  values.forEach((v, i) => {
    if ((v as unknown) instanceof Secret) {
      throw new Error('sh``: a Secret cannot be interpolated into a command; pass it on stdin');
    }
    if (v instanceof Raw) out += v.text;
    else if (Array.isArray(v)) out += v.map((w) => quote(w)).join(' ');
    else out += quote(v as string | number);
    out += strings[i + 1] ?? '';
  });
  return out;
}

/**
 * A heredoc that carries data (possibly secret) to a command's stdin without it ever being
 * in any process's argv. The delimiter is chosen so that it cannot occur in the payload.
 */
export function heredoc(payload: string): { open: string; body: string } {
  let tag = 'HA_SETUP_EOF';
  let n = 0;
  while (payload.split('\n').includes(tag)) tag = `HA_SETUP_EOF_${++n}`;
  return { open: `<<'${tag}'`, body: `${payload}\n${tag}` };
}
