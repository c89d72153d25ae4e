import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { useState } from 'react';
import { Text } from 'ink';
import { render, cleanup } from 'ink-testing-library';
import { LineInput, Select } from '../../source/ui/select.js';
import { plain, settle, waitFor } from './helpers.js';

afterEach(() => cleanup());

const items = [
  { key: 'a', label: 'Alpha', value: 'a' },
  { key: 'b', label: 'Beta', value: 'b' },
];

test('Select: an enter that arrives as a newline (typed before raw mode) chooses the highlighted item', async () => {
  const chosen: string[] = [];
  const { stdin, lastFrame } = render(<Select items={items} onSelect={(i) => chosen.push(i.value)} />);
  await settle();
  stdin.write('\n');
  await waitFor(() => chosen.length === 1, () => plain(lastFrame()));
  assert.deepEqual(chosen, ['a']);
  stdin.write('\u001b[B');
  await waitFor(() => plain(lastFrame()).includes('❯ Beta'), () => plain(lastFrame()));
  stdin.write('\n');
  await waitFor(() => chosen.length === 2, () => plain(lastFrame()));
  stdin.write('\r');
  await waitFor(() => chosen.length === 3, () => plain(lastFrame()));
  assert.deepEqual(chosen, ['a', 'b', 'b']);
});

test('Select: not focused, a newline chooses nothing', async () => {
  const chosen: string[] = [];
  const { stdin } = render(<Select items={items} isFocused={false} onSelect={(i) => chosen.push(i.value)} />);
  await settle();
  stdin.write('\n');
  stdin.write('\r');
  await settle();
  assert.deepEqual(chosen, []);
});

function Field({ submitted }: { submitted: string[] }) {
  const [value, setValue] = useState('');
  return (
    <>
      <LineInput value={value} onChange={setValue} onSubmit={(v) => submitted.push(v)} />
      <Text>{`value=[${value}]`}</Text>
    </>
  );
}

test('LineInput: text and a newline in one read submit the text; the value never holds a line break', async () => {
  const submitted: string[] = [];
  const { stdin, lastFrame } = render(<Field submitted={submitted} />);
  await settle();
  stdin.write('lab\n');
  await waitFor(() => submitted.length === 1, () => plain(lastFrame()));
  assert.deepEqual(submitted, ['lab']);
  await waitFor(() => plain(lastFrame()).includes('value=[lab]'), () => plain(lastFrame()));
  stdin.write('x');
  await waitFor(() => plain(lastFrame()).includes('value=[labx]'), () => plain(lastFrame()));
  stdin.write('\r');
  await waitFor(() => submitted.length === 2, () => plain(lastFrame()));
  assert.deepEqual(submitted, ['lab', 'labx']);
});

test('Select: down and enter in one read choose the item below (the highlight is not from the last render)', async () => {
  const chosen: string[] = [];
  const { stdin, lastFrame } = render(<Select items={[...items, { key: 'c', label: 'Gamma', value: 'c' }]} onSelect={(i) => chosen.push(i.value)} />);
  await waitFor(() => plain(lastFrame()).includes('❯ Alpha'), () => plain(lastFrame()));
  stdin.write('\u001b[B\r');
  await waitFor(() => chosen.length === 1, () => plain(lastFrame()));
  assert.deepEqual(chosen, ['b']);
  stdin.write('\u001b[B\u001b[B\r');
  await waitFor(() => chosen.length === 2, () => plain(lastFrame()));
  assert.deepEqual(chosen, ['b', 'a'], 'two downs from Beta wrap around to Alpha');
  stdin.write('3');
  await waitFor(() => chosen.length === 3, () => plain(lastFrame()));
  assert.deepEqual(chosen, ['b', 'a', 'c']);
  await waitFor(() => plain(lastFrame()).includes('❯ Gamma'), () => plain(lastFrame()));
});
