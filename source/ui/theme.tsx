/**
 * Colour on or off for the whole UI (NO_COLOR, --no-color terminals). Components ask for a colour
 * by name and get undefined when colour is off, so nothing emits colour escapes.
 */
import { createContext, useContext, type ReactNode } from 'react';
import { Box, Text } from 'ink';

export type ColorName = 'red' | 'green' | 'yellow' | 'blue' | 'cyan' | 'magenta' | 'gray';

export interface Theme {
  color: boolean;
  /** The colour, or undefined when colour is off. */
  c(name: ColorName): ColorName | undefined;
  /** Whether dim text is allowed (off with colour). */
  dim: boolean;
}

export function makeTheme(color: boolean): Theme {
  return { color, c: (name) => (color ? name : undefined), dim: color };
}

const ThemeContext = createContext<Theme>(makeTheme(true));

export function ThemeProvider({ color, children }: { color: boolean; children: ReactNode }) {
  return <ThemeContext.Provider value={makeTheme(color)}>{children}</ThemeContext.Provider>;
}

export function useTheme(): Theme {
  return useContext(ThemeContext);
}

/** Whether NO_COLOR asks for no colour (set and not empty, per no-color.org). */
export function noColor(env: NodeJS.ProcessEnv): boolean {
  return typeof env.NO_COLOR === 'string' && env.NO_COLOR !== '';
}

/** A footer of key hints: "↑/↓ move · enter edit · esc quit". */
export function KeyHints({ keys }: { keys: [string, string][] }) {
  const t = useTheme();
  return (
    <Box marginTop={1}>
      <Text dimColor={t.dim}>{keys.map(([k, what]) => `${k} ${what}`).join(' · ')}</Text>
    </Box>
  );
}
