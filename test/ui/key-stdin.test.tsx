/**
 * Several keys in one terminal read (a held backspace over SSH, text and enter together, an enter
 * typed before raw mode): Ink alone loses or inserts them; through keyedStdin each is a key.
 */
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { useState } from 'react';
import { render, Text, type Instance } from 'ink';
import { TextField } from '../../source/ui/text-field.js';
import { keyedStdin, splitKeys } from '../../source/ui/key-stdin.js';
import { FakeStdin, plain, waitFor } from './helpers.js';

test('splitKeys: control keys one by one, text runs together, newline as enter, escape sequences kept whole', () => {
  const cases: [string, string[]][] = [
    ['abc', ['abc']],
    ['\x7f\x7f\x7f', ['\x7f', '\x7f', '\x7f']],
    ['lab\r', ['lab', '\r']],
    ['\n', ['\r']],
    ['a\r\nb\r\n', ['a', '\r', 'b', '\r']],
    ['ab\b\bc', ['ab', '\b', '\b', 'c']],
    ['\x1b[D\x1b[D', ['\x1b[D\x1b[D']],
    ['x\x1b\x7f', ['x', '\x1b\x7f']],
    ['\x1b', ['\x1b']],
    ['\x03', ['\x03']],
    ['198.18.0.1\t2', ['198.18.0.1', '\t', '2']],
    ['é€😀\r', ['é€😀', '\r']],
  ];
  for (const [read, keys] of cases) assert.deepEqual(splitKeys(read), keys, JSON.stringify(read));
});

class FakeStdout extends EventEmitter {
  columns = 100;
  last = '';
  write = (frame: string) => {
    this.last = frame;
    return true;
  };
}

function Field({ submitted }: { submitted: string[] }) {
  const [value, setValue] = useState('');
  return (
    <>
      <TextField value={value} onChange={setValue} onSubmit={(v) => submitted.push(v)} />
      <Text>{`value=${JSON.stringify(value)}`}</Text>
    </>
  );
}

let instance: Instance | undefined;
afterEach(() => instance?.unmount());

function mount(wrap: boolean) {
  const stdin = new FakeStdin();
  const stdout = new FakeStdout();
  const submitted: string[] = [];
  const input = stdin as unknown as NodeJS.ReadStream;
  instance = render(<Field submitted={submitted} />, {
    stdin: wrap ? keyedStdin(input) : input,
    stdout: stdout as unknown as NodeJS.WriteStream,
    debug: true,
    exitOnCtrlC: false,
    patchConsole: false,
  });
  const frame = () => plain(stdout.last);
  const settle = () => new Promise((r) => setTimeout(r, 30));
  return { stdin, frame, submitted, settle };
}

test('through keyedStdin: "abcd" then three backspaces in one read leave "a"; "x" and enter in one read submit "ax"; a newline is an enter', async () => {
  const t = mount(true);
  await t.settle();
  t.stdin.write('abcd');
  await waitFor(() => t.frame().includes('value="abcd"'), t.frame);
  t.stdin.write('\x7f\x7f\x7f');
  await waitFor(() => t.frame().includes('value="a"'), t.frame);
  t.stdin.write('x\r');
  await waitFor(() => t.submitted.length === 1, t.frame);
  assert.deepEqual(t.submitted, ['ax']);
  t.stdin.write('\b\n');
  await waitFor(() => t.submitted.length === 2, t.frame);
  assert.deepEqual(t.submitted, ['ax', 'a']);
  assert.ok(t.frame().includes('value="a"'), t.frame());
});

test('control: without keyedStdin, "x\\r" in one read is text (no enter): why keyedStdin exists', async () => {
  const t = mount(false);
  await t.settle();
  t.stdin.write('abcd');
  await waitFor(() => t.frame().includes('value="abcd"'), t.frame);
  t.stdin.write('x\r');
  await waitFor(() => t.frame().includes('value="abcdx\\r"'), t.frame);
  assert.deepEqual(t.submitted, []);
});


test('keyedStdin: one wrapper per stream; other members are the stream\'s own', () => {
  const s = new FakeStdin() as unknown as NodeJS.ReadStream;
  const k = keyedStdin(s);
  assert.equal(keyedStdin(s), k);
  assert.equal(k.isTTY, true);
});

test('keyedStdin: the keys of one read come one per read(), then null', () => {
  const s = new FakeStdin();
  const k = keyedStdin(s as unknown as NodeJS.ReadStream);
  s.write('ab\x7f\x7f\r');
  assert.deepEqual([k.read(), k.read(), k.read(), k.read(), k.read()], ['ab', '\x7f', '\x7f', '\r', null]);
});
