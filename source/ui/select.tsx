/** ink-select-input's indicator and item, honouring the colour theme (NO_COLOR); Select and LineInput. */
import { useRef } from 'react';
import { Box, Text, useInput } from 'ink';
import SelectInput from 'ink-select-input';
import TextInput from 'ink-text-input';
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
 * ink-select-input with the theme's indicator and item, and one more key: an enter that arrives
 * as a newline. A key typed while the terminal was still in cooked mode (type-ahead before the
 * screen took raw mode, or between two screens) reaches us as '\n', which Ink reports as neither
 * `return` nor anything else: without this the first enter of an impatient user was lost.
 */
export function Select<V>(props: {
  items: Array<{ key?: string; label: string; value: V }>;
  initialIndex?: number;
  isFocused?: boolean;
  onSelect(item: { key?: string; label: string; value: V }): void;
}) {
  const { items, initialIndex = 0, isFocused = true, onSelect } = props;
  const highlighted = useRef(items[initialIndex]);
  useInput(
    (input) => {
      if (input === '\n' && highlighted.current) onSelect(highlighted.current);
    },
    { isActive: isFocused },
  );
  return (
    <SelectInput
      items={items}
      initialIndex={initialIndex}
      isFocused={isFocused}
      indicatorComponent={SelectIndicator}
      itemComponent={SelectItem}
      onHighlight={(item) => (highlighted.current = item)}
      onSelect={onSelect}
    />
  );
}

/**
 * A text field whose value never holds a line break: a newline or carriage return typed or pasted
 * into it (a cooked-mode enter, a pasted line with its end) submits what came before it.
 */
export function LineInput(props: { value: string; onChange(value: string): void; onSubmit(value: string): void; mask?: string; focus?: boolean }) {
  const { value, onChange, onSubmit, mask, focus } = props;
  return (
    <TextInput
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
