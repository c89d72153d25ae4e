import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { render, cleanup } from 'ink-testing-library';
import { FailureMenu, type FailureChoice } from '../../source/ui/FailureMenu.js';
import type { RunFailure } from '../../source/ui/run-state.js';
import { keys, plain, settle, waitFor, waitForText } from './helpers.js';

afterEach(() => cleanup());

const failure: RunFailure = {
  stepId: 'pg.install',
  title: 'Install PostgreSQL',
  host: 'db_primary',
  error: 'install packages exited with code 100',
  command: 'apt-get install -y postgresql-15',
  lastLines: ['E: Unable to locate package postgresql-15'],
  transcriptPath: '/tmp/r1.log',
  resumeCommand: 'ha-setup apply --runbook postgres',
};

function mount(isActive = true) {
  const choices: FailureChoice[] = [];
  const r = render(<FailureMenu failure={failure} isActive={isActive} onChoice={(c) => choices.push(c)} />);
  return { r, choices };
}

test('shows the failure panel, the four choices and the keys', async () => {
  const { r } = mount();
  await settle();
  const f = plain(r.lastFrame());
  assert.match(f, /✗ Install PostgreSQL failed on db_primary/);
  assert.match(f, /Resume with: ha-setup apply --runbook postgres/);
  assert.ok(
    f.includes(['What now?', '❯ Retry (r)', '  Skip this step (s)', '  Show full log (l)', '  Quit (q)', '', '↑/↓ move · enter choose · r/s/l/q shortcut'].join('\n')),
    f,
  );
});

test('arrow down + enter chooses "skip"', async () => {
  const { r, choices } = mount();
  await settle();
  r.stdin.write(keys.down);
  await waitForText(r.lastFrame, '❯ Skip this step (s)');
  r.stdin.write(keys.enter);
  await waitFor(() => choices.length === 1, () => plain(r.lastFrame()));
  assert.deepEqual(choices, ['skip']);
});

test('a shortcut letter chooses directly', async () => {
  const { r, choices } = mount();
  await settle();
  r.stdin.write('l');
  await waitFor(() => choices.length === 1, () => plain(r.lastFrame()));
  r.stdin.write('q');
  await waitFor(() => choices.length === 2, () => plain(r.lastFrame()));
  assert.deepEqual(choices, ['log', 'quit']);
});

test('inactive: keys are ignored', async () => {
  const { r, choices } = mount(false);
  await settle();
  r.stdin.write('q');
  r.stdin.write(keys.enter);
  // The same menu, made active, does take keys: so the ones above were ignored, not lost.
  r.rerender(<FailureMenu failure={failure} isActive onChoice={(c) => choices.push(c)} />);
  await settle();
  r.stdin.write('r');
  await waitFor(() => choices.length >= 1, () => plain(r.lastFrame()));
  assert.deepEqual(choices, ['retry']);
});
