/** The last lines of a (possibly large, still growing) text file, read from its end. No Ink here. */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/** Up to `count` last lines of the file (reads at most `maxBytes` from its end). */
export function tailLines(path: string, count = 200, maxBytes = 512 * 1024): string[] {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const start = Math.max(0, size - maxBytes);
    const buf = Buffer.alloc(size - start);
    let read = 0;
    while (read < buf.length) {
      const n = readSync(fd, buf, read, buf.length - read, start + read);
      if (n === 0) break;
      read += n;
    }
    const lines = buf.subarray(0, read).toString('utf8').replace(/\n$/, '').split('\n');
    if (start > 0) lines.shift(); // most likely cut in the middle
    return lines.slice(-count);
  } finally {
    closeSync(fd);
  }
}
