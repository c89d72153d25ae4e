/**
 * A one-line text field (in place of ink-text-input) that stays right when several keys arrive
 * before the screen re-renders.
 *
 * Ink re-subscribes an input handler only after a render's effects run, so keys handled in the
 * same turn (a held backspace over SSH split into keys by keyedStdin, text and enter pasted
 * together) reach a handler from the previous render. ink-text-input computes the new value from
 * the value it was rendered with: three backspaces in one turn deleted one character. Here the
 * value, the cursor and the callbacks live in refs that every key reads and updates, so each key
 * applies to what the previous one left.
 *
 * Keys: text is inserted at the cursor; backspace deletes before it; left/right, home/end
 * (ctrl-a/ctrl-e) move it; ctrl-u deletes to the start, ctrl-w the word before the cursor; enter
 * submits. Up/down, tab, esc and ctrl-c are left to the screen.
 */
import { useRef, useReducer } from 'react';
import { Text, useInput } from 'ink';

export interface TextFieldProps {
  value: string;
  onChange(value: string): void;
  onSubmit?(value: string): void;
  /** Show this character for each character of the value (passwords, cluster-name confirmations). */
  mask?: string;
  focus?: boolean;
}

const BACKSPACES = /[\b\x7f]/;

export function TextField({ value, onChange, onSubmit, mask, focus = true }: TextFieldProps) {
  const latest = useRef(value);
  const cursor = useRef(value.length);
  const emitted = useRef<string | undefined>(undefined);
  const callbacks = useRef({ onChange, onSubmit });
  callbacks.current = { onChange, onSubmit };
  const [, redraw] = useReducer((n: number) => n + 1, 0);

  // The parent's value is the truth at each render. One that did not come from this field (a new
  // field opened, a value reset) puts the cursor at its end.
  if (value !== latest.current) {
    if (value !== emitted.current) cursor.current = value.length;
    latest.current = value;
  }
  if (cursor.current > value.length) cursor.current = value.length;

  useInput(
    (input, key) => {
      if (key.upArrow || key.downArrow || key.tab || key.escape || (key.ctrl && input === 'c')) return;
      const before = latest.current;
      let v = before;
      let c = Math.min(cursor.current, v.length);
      if (key.return) {
        callbacks.current.onSubmit?.(v);
        return;
      }
      if (key.leftArrow) c = Math.max(0, c - 1);
      else if (key.rightArrow) c = Math.min(v.length, c + 1);
      else if (key.home || (key.ctrl && input === 'a')) c = 0;
      else if (key.end || (key.ctrl && input === 'e')) c = v.length;
      else if (key.backspace || key.delete) {
        if (c > 0) {
          v = v.slice(0, c - 1) + v.slice(c);
          c--;
        }
      } else if (key.ctrl && input === 'u') {
        v = v.slice(c);
        c = 0;
      } else if (key.ctrl && input === 'w') {
        const start = v.slice(0, c).replace(/\S+\s*$/, '').length;
        v = v.slice(0, start) + v.slice(c);
        c = start;
      } else if (key.ctrl || key.meta) {
        return;
      } else {
        // Text (with the keys of a whole read when nothing split it: a backspace in it still deletes).
        for (const ch of input) {
          if (BACKSPACES.test(ch)) {
            if (c > 0) {
              v = v.slice(0, c - 1) + v.slice(c);
              c--;
            }
          } else if (ch === '\r' || ch === '\n' || ch.charCodeAt(0) >= 0x20) {
            v = v.slice(0, c) + ch + v.slice(c);
            c += ch.length;
          }
        }
      }
      cursor.current = c;
      if (v !== before) {
        latest.current = v;
        emitted.current = v;
        callbacks.current.onChange(v);
      }
      redraw();
    },
    { isActive: focus },
  );

  const shown = mask ? mask.repeat(value.length) : value;
  if (!focus) return <Text>{shown}</Text>;
  const at = Math.min(cursor.current, shown.length);
  // The cursor: the character under it in inverse video, or an inverse space at the end.
  const head = shown.slice(0, at);
  const under = [...shown.slice(at)][0] ?? ' ';
  const tail = shown.slice(at + (at < shown.length ? under.length : 0));
  return (
    <Text>
      {head}
      <Text inverse>{under}</Text>
      {tail}
    </Text>
  );
}
