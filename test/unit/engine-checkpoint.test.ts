import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointStore, inputHash, readCheckpoints, resumePoint, stableJson, writeFileAtomic } from '../../source/engine/checkpoint.js';
import { fileDiff } from '../../source/engine/diff.js';
import { Secret } from '../../source/engine/shell.js';
import { defineStep, done } from '../../source/engine/step.js';
import { clusterDir } from '../../source/paths.js';
import { tempHome } from '../helpers/fake-transport.js';

test('writeFileAtomic: mode set, no temp file left, a failed rename cleans up and keeps the old file', () => {
  const { home } = tempHome();
  const file = join(home, 'state.json');
  writeFileAtomic(file, 'one\n', 0o600);
  writeFileAtomic(file, 'two\n', 0o600);
  assert.equal(readFileSync(file, 'utf8'), 'two\n');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  // Renaming a file over a non-empty directory fails: the temp file must not stay behind.
  const dirTarget = join(home, 'adir');
  mkdirSync(dirTarget);
  writeFileSync(join(dirTarget, 'x'), 'x');
  assert.throws(() => writeFileAtomic(dirTarget, 'three\n', 0o600));
  assert.deepEqual(readdirSync(home).sort(), ['adir', 'state.json']);
});

test('stableJson and inputHash: key order does not matter, values and address do; secrets hash by their mask', () => {
  assert.equal(stableJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: undefined } }), '{"a":{"d":[1,{"x":1,"y":2}]},"b":1}');
  const h = inputHash('s', { a: 1, b: 2 }, '198.18.0.11');
  assert.equal(h, inputHash('s', { b: 2, a: 1 }, '198.18.0.11'));
  assert.notEqual(h, inputHash('s', { a: 1, b: 3 }, '198.18.0.11'));
  assert.notEqual(h, inputHash('s', { a: 1, b: 2 }, '198.18.0.12'));
  assert.notEqual(h, inputHash('t', { a: 1, b: 2 }, '198.18.0.11'));
  assert.equal(stableJson({ pw: new Secret('pw', 'abcdefgh') }), '{"pw":"<pw: 8 characters>"}');
});

test('readCheckpoints, resumePoint and a corrupt file', () => {
  const { env } = tempHome();
  assert.deepEqual(readCheckpoints('c1', env), { version: 1, steps: {} });
  const store = new CheckpointStore(clusterDir('c1', env));
  const rec = (status: 'done' | 'failed') => ({ status, inputHash: 'h', finishedAt: 't', changed: false, runId: 'R' });
  store.set('a', 'h1', rec('done'));
  store.set('b', 'h1', rec('done'));
  store.set('b', 'h2', rec('failed'));
  store.set('c', 'h2', rec('failed'));
  store.save();
  const s = (id: string) => defineStep({ id, title: id, targets: () => [], facts: {}, plan: () => done('x') });
  const rbs = [
    { id: 'one', title: '', description: '', steps: [s('a')] },
    { id: 'two', title: '', description: '', steps: [s('b'), s('c')] },
  ];
  const cp = readCheckpoints('c1', env);
  assert.deepEqual(resumePoint(cp, rbs), { runbookId: 'two', stepId: 'b', hosts: ['h2'], runId: 'R' });
  store.set('b', 'h2', rec('done'));
  store.set('c', 'h2', undefined);
  store.save();
  assert.equal(resumePoint(readCheckpoints('c1', env), rbs), null);
  assert.equal(readCheckpoints('c1', env).steps.c, undefined);
  writeFileSync(join(clusterDir('c1', env), 'checkpoints.json'), '{"steps": ');
  assert.throws(() => readCheckpoints('c1', env), /checkpoints file .*checkpoints.json is not valid JSON .*; move it aside to start with no checkpoints/);
});

test('fileDiff: unified diff with a/ b/ names, empty when unchanged, a creation from nothing', () => {
  assert.deepEqual(fileDiff('/etc/x.conf', 'a\nb\n', 'a\nb\n'), { path: '/etc/x.conf', diff: '' });
  assert.equal(fileDiff('/etc/x.conf', null, 'new\n').diff, '--- a/etc/x.conf\n+++ b/etc/x.conf\n@@ -0,0 +1,1 @@\n+new\n');
  assert.equal(fileDiff('/etc/x.conf', 'a\nb\n', 'a\nc\n').diff, '--- a/etc/x.conf\n+++ b/etc/x.conf\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n');
});
