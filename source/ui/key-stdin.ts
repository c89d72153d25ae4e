/**
 * The terminal's input for Ink, one key per read.
 *
 * Ink hands a whole terminal read to the input handlers and splits only escape sequences out of
 * it. Several keys in one read happen: a held backspace over a slow SSH link, a pasted line with
 * its enter, keys typed while the screen was still being drawn. Ink then sees "\x7f\x7f" (neither
 * a delete nor text: lost), "lab\r" (text with a carriage return in it, not an enter) or "\b\b"
 * (inserted into a field as text). Here each control character becomes a read of its own, text
 * between them stays together, and a newline counts as enter: typed before the screen put the
 * terminal in raw mode, enter arrives as "\n" (the terminal's cooked mode translates it). The
 * input components (text-field.tsx, select.tsx) apply keys handled in one turn one after another.
 */
const ESC = '\u001b';
const isControl = (ch: string): boolean => {
  const code = ch.charCodeAt(0);
  return (code < 0x20 && ch !== ESC) || code === 0x7f;
};

/** One terminal read as the keys in it. */
export function splitKeys(read: string): string[] {
  const keys: string[] = [];
  let text = '';
  const flush = () => {
    if (text) keys.push(text);
    text = '';
  };
  for (let i = 0; i < read.length; i++) {
    const ch = read[i]!;
    const next = read[i + 1];
    if (ch === ESC && next !== undefined && isControl(next)) {
      // meta + a control key (alt+backspace, alt+enter): one key, as Ink reads it.
      flush();
      keys.push(ESC + next);
      i++;
    } else if (isControl(ch)) {
      flush();
      if (ch === '\r' && next === '\n') i++; // a pasted Windows line end: one enter
      keys.push(ch === '\n' ? '\r' : ch);
    } else {
      text += ch;
    }
  }
  flush();
  return keys;
}

const wrapped = new WeakMap<NodeJS.ReadStream, NodeJS.ReadStream>();

/**
 * `stdin` as Ink should read it: each read() returns one key (see splitKeys); everything else is
 * the real stream. Ink reads until read() returns null, so the keys of one terminal read are
 * handled in one turn, before the screen re-renders: the input components (TextField, Select)
 * keep their state in refs so that each key applies to what the previous one left.
 */
export function keyedStdin(stdin: NodeJS.ReadStream): NodeJS.ReadStream {
  const known = wrapped.get(stdin);
  if (known) return known;
  const queue: string[] = [];
  const read = (): string | null => {
    while (queue.length === 0) {
      const chunk = stdin.read() as string | Buffer | null;
      if (chunk === null) return null;
      queue.push(...splitKeys(typeof chunk === 'string' ? chunk : chunk.toString('utf8')));
    }
    return queue.shift()!;
  };
  const proxy: NodeJS.ReadStream = new Proxy(stdin, {
    get(target, prop) {
      if (prop === 'read') return read;
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  wrapped.set(stdin, proxy);
  return proxy;
}
