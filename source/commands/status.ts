/**
 * ha-setup status: the live health of the cluster (who holds each VIP, PostgreSQL roles and
 * replication lag, the keepalived fence, keepalived, HAProxy's backends (Kubernetes: the app's pods), NFS and its export
 * through the VIP), the run lock and the last run. Collected by source/status/ (one short script
 * per host, in parallel, each under a deadline).
 *
 *   --json           the whole structure (source/status/types.ts), for monitoring scripts
 *   --watch [SEC]    refresh every SEC seconds (default 2) until Ctrl-C: on a terminal the view
 *                    is redrawn in place; elsewhere each refresh follows a timestamp line
 *                    (with --json: one JSON document per line)
 * Exit code: 0 healthy, 1 a problem was found (with --watch: that of the last refresh).
 */
import type { CliIO, CommandArgs } from '../cli.js';
import { createTransportPool } from '../transport/connect.js';
import { collectHealth } from '../status/collect.js';
import { renderHealth } from '../status/render.js';
import type { ClusterHealth } from '../status/types.js';
import { isCI } from '../ui/tty.js';
import { loadTable, resumeCommand } from './session.js';

/** The refresh interval from `--watch [SECONDS]` (the seconds come as the positional). */
export function watchInterval(args: CommandArgs): number | null {
  const [word, ...extra] = args.positionals;
  if (!args.values.watch) {
    if (word !== undefined) throw new Error(`status takes no argument "${word}" (did you mean --watch ${word}?)`);
    return null;
  }
  if (extra.length) throw new Error(`status --watch takes one number of seconds, not "${args.positionals.join(' ')}"`);
  if (word === undefined) return 2;
  const n = Number(word);
  if (!Number.isFinite(n) || n < 0.5 || n > 3600) throw new Error(`--watch ${word}: give the refresh interval in seconds, from 0.5 to 3600 (e.g. --watch 5)`);
  return n;
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });

export interface ShowOptions {
  /** Refresh interval in seconds; null: once. */
  interval: number | null;
  json: boolean;
  color: boolean;
  resumeCommand?: string;
  /** Ends --watch (besides SIGINT and SIGTERM). */
  signal?: AbortSignal;
}

/** Prints the health once, or refreshed until stopped; the exit code of the last one. */
export async function showHealth(collect: () => Promise<ClusterHealth>, io: Pick<CliIO, 'stdout' | 'env'>, o: ShowOptions): Promise<number> {
  const code = (h: ClusterHealth) => (h.healthy ? 0 : 1);
  const render = (h: ClusterHealth) => renderHealth(h, { color: o.color, resumeCommand: o.resumeCommand });
  if (o.interval === null) {
    const h = await collect();
    io.stdout.write(o.json ? `${JSON.stringify(h, null, 2)}\n` : render(h));
    return code(h);
  }
  const interval = o.interval;
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  o.signal?.addEventListener('abort', onSignal);
  if (o.signal?.aborted) stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const aborted = new Promise<null>((resolve) => stop.signal.addEventListener('abort', () => resolve(null), { once: true }));
  // Redraw in place only on a terminal (and not in CI); elsewhere each refresh follows a timestamp line.
  const redraw = Boolean(io.stdout.isTTY) && !isCI(io.env) && !o.json;
  let last = 0;
  try {
    if (redraw) io.stdout.write('\x1b[?25l\x1b[2J');
    while (!stop.signal.aborted) {
      const h = await Promise.race([collect(), aborted]);
      if (!h || stop.signal.aborted) break;
      last = code(h);
      if (o.json) io.stdout.write(`${JSON.stringify(h)}\n`);
      else if (redraw) {
        const text = `${render(h)}\nRefreshed every ${interval} s; Ctrl-C to stop.`;
        // Home, each line cleared to its end, then everything below cleared: no flicker.
        io.stdout.write(`\x1b[H${text.split('\n').join('\x1b[K\n')}\x1b[K\x1b[J`);
      } else {
        io.stdout.write(`--- ${h.checkedAt} ---\n${render(h)}`);
      }
      await sleep(interval * 1000, stop.signal);
    }
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    o.signal?.removeEventListener('abort', onSignal);
    if (redraw) io.stdout.write('\x1b[?25h\n');
  }
  return last;
}

export async function run(args: CommandArgs, io: CliIO): Promise<number> {
  const interval = watchInterval(args);
  const inv = await loadTable(args, io);
  const json = Boolean(args.values.json);
  const pool = createTransportPool(inv.ssh, { env: io.env, connectTimeoutMs: 5000 });
  try {
    return await showHealth(() => collectHealth(inv, { transport: (h) => pool.get(h), env: io.env }), io, {
      interval,
      json,
      color: !io.env.NO_COLOR && Boolean(io.stdout.isTTY) && !json,
      resumeCommand: resumeCommand(args, 'apply'),
    });
  } finally {
    await pool.closeAll();
  }
}
