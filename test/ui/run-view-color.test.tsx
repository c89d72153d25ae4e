// Colour on vs NO_COLOR. chalk decides its colour level when first imported, so force colour
// before loading Ink (dynamic imports below), or this test could pass by having no colour at all.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { EngineEvent } from '../../source/engine/events.js';
import { out, started } from './run-fixtures.js';

process.env.FORCE_COLOR = '1';
const { render, cleanup } = await import('ink-testing-library');
const { RunView } = await import('../../source/ui/RunView.js');
const { ThemeProvider } = await import('../../source/ui/theme.js');
const { foldRun } = await import('../../source/ui/run-state.js');

const COLOR = /\x1b\[(3\d|9\d)m/;
const events: EngineEvent[] = [
  started,
  { type: 'step-started', stepId: 'pg.install', host: 'db_primary' },
  out('db_primary', 'x'),
  { type: 'step-finished', stepId: 'pg.install', host: 'db_primary', changed: true, durationMs: 1 },
  { type: 'step-failed', stepId: 'pg.config', host: 'db_primary', error: 'boom', lastLines: [], transcriptPath: '/t', resumeCommand: 'r' },
];

function frame(color: boolean): string {
  const r = render(
    <ThemeProvider color={color}>
      <RunView state={foldRun(events)} spinnerFrame="*" />
    </ThemeProvider>,
  );
  const f = r.lastFrame() ?? '';
  cleanup();
  return f;
}

test('with colour the view is coloured (control for the next test)', () => {
  assert.match(frame(true), COLOR);
});

test('NO_COLOR: the same view emits no colour escapes', () => {
  const f = frame(false);
  assert.doesNotMatch(f, COLOR);
  assert.match(f, /✗ Configure PostgreSQL · db_primary failed: boom/);
});
