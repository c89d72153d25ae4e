/** Lists to choose from (Select) and one-line fields (LineInput), honouring the colour theme (NO_COLOR). */
import { useReducer, useRef } from 'react';
import { Box, Text, useInput } from 'ink';
import { TextField } from './text-field.js';
import { useTheme } from './theme.js';

export function SelectIndicator({ isSelected = false }: { isSelected?: boolean }) {
  const t = useTheme();
  return (
    <Box marginRight={1}>
      <Text color={t.c('cyan')}>{isSelected ? '❯' : ' '}</Text>
    </Box>
  );
}

export function SelectItem({ isSelected = false, label }: { isSelected?: boolean; label: string }) {
  const t = useTheme();
  return (
    <Text color={isSelected ? t.c('cyan') : undefined} bold={isSelected}>
      {label}
    </Text>
  );
}

/**
 * A list to choose from (in place of ink-select-input): up/down or k/j move (wrapping around),
 * enter chooses, 1-9 choose the n-th item directly.
 *
 * The highlighted item lives in a ref that every key reads and updates: keys handled before the
 * screen re-renders (down and enter in one terminal read, as over a slow SSH link) reach a handler
 * from the previous render, and ink-select-input then chose the item that was highlighted before
 * the arrow. An enter that arrives as a newline counts (typed before the terminal was in raw mode).
 */
export function Select<V>(props: {
  items: Array<{ key?: string; label: string; value: V }>;
  initialIndex?: number;
  isFocused?: boolean;
  onSelect(item: { key?: string; label: string; value: V }): void;
}) {
  const { items, initialIndex = 0, isFocused = true } = props;
  const index = useRef(Math.min(Math.max(0, initialIndex), Math.max(0, items.length - 1)));
  const shape = useRef(items.map((i) => i.value));
  const latest = useRef(props);
  latest.current = props;
  const [, redraw] = useReducer((n: number) => n + 1, 0);
  // Other items (not just new labels): back to the first.
  const values = items.map((i) => i.value);
  if (values.length !== shape.current.length || values.some((v, i) => !Object.is(v, shape.current[i]))) {
    shape.current = values;
    index.current = 0;
  }
  useInput(
    (input, key) => {
      const { items: list, onSelect } = latest.current;
      if (!list.length) return;
      const at = Math.min(index.current, list.length - 1);
      if (key.upArrow || input === 'k') index.current = (at - 1 + list.length) % list.length;
      else if (key.downArrow || input === 'j') index.current = (at + 1) % list.length;
      else if (key.return || input === '\n' || input === '\r') return onSelect(list[at]!);
      else if (/^[1-9]$/.test(input)) {
        const n = Number(input) - 1;
        if (n < list.length) {
          index.current = n;
          redraw();
          return onSelect(list[n]!);
        }
        return;
      } else return;
      redraw();
    },
    { isActive: isFocused },
  );
  const at = Math.min(index.current, items.length - 1);
  return (
    <Box flexDirection="column">
      {items.map((item, i) => (
        <Box key={item.key ?? String(i)}>
          <SelectIndicator isSelected={i === at} />
          <SelectItem isSelected={i === at} label={item.label} />
        </Box>
      ))}
    </Box>
  );
}

/**
 * A text field whose value never holds a line break: a newline or carriage return typed or pasted
 * into it (a cooked-mode enter, a pasted line with its end) submits what came before it.
 */
export function LineInput(props: { value: string; onChange(value: string): void; onSubmit(value: string): void; mask?: string; focus?: boolean }) {
  const { value, onChange, onSubmit, mask, focus } = props;
  return (
    <TextField
      value={value}
      mask={mask}
      focus={focus}
      onChange={(v) => {
        const cut = v.search(/[\r\n]/);
        if (cut < 0) return onChange(v);
        const line = v.slice(0, cut);
        onChange(line);
        onSubmit(line);
      }}
      onSubmit={onSubmit}
    />
  );
}
