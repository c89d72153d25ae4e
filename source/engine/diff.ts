/**
 * Unified diffs of the files a plan would write, for the plan view and `plan --json`.
 */
import { createTwoFilesPatch, FILE_HEADERS_ONLY } from 'diff';
import type { FileDiff } from './events.js';
import type { Action } from './step.js';

/** "--- a/etc/x" / "+++ b/etc/x" then hunks; "" when the content does not change. */
export function fileDiff(path: string, previous: string | null, next: string): FileDiff {
  if (previous === next) return { path, diff: '' };
  const name = path.replace(/^\/+/, '');
  const diff = createTwoFilesPatch(`a/${name}`, `b/${name}`, previous ?? '', next, undefined, undefined, {
    headerOptions: FILE_HEADERS_ONLY,
  });
  return { path, diff };
}

/** The diffs of every write action of a plan, in order. */
export function planDiffs(actions: Action[]): FileDiff[] {
  return actions.flatMap((a) => (a.kind === 'write' ? [fileDiff(a.path, a.previous, a.content)] : []));
}
