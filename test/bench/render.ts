/**
 * Benchmark: 100,000 output lines of one command streamed through a real run (runRunbooks with
 * its real Transcript) into the run view: the Ink LiveRun on a fake terminal, and the plain
 * renderer. Each renderer runs in its own child process so that its peak RSS is its own.
 * Checks that every line reached the transcript and prints, per renderer: wall time, peak RSS
 * (target < 200 MB), how long the view took to catch up after the last line, and how much it
 * wrote to the terminal.
 *
 *   node dist/test/bench/render.js [--lines 100000] [--chunk 500]
 *
 * The fake command emits its lines in chunks of --chunk per macrotask (like a socket would),
 * so the view renders while the output streams.
 */
import { spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { runRunbooks } from '../../source/engine/runner.js';
import { defineStep, planOf, type Runbook } from '../../source/engine/step.js';
import type { EventSink } from '../../source/engine/events.js';
import type { ExecOptions, ExecResult, Transport } from '../../source/transport/types.js';
import { renderRun } from '../../source/ui/render-run.js';
import { createPlainRenderer } from '../../source/render/plain.js';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : dflt;
  return Number.isFinite(v) && v > 0 ? v : dflt;
};
const LINES = arg('--lines', 100_000);
const CHUNK = arg('--chunk', 500);

/** A terminal that counts what it is sent and keeps nothing. */
class CountingTerminal extends EventEmitter {
  isTTY = true;
  columns = 120;
  rows = 40;
  bytes = 0;
  writes = 0;
  write(s: string): boolean {
    this.bytes += s.length;
    this.writes++;
    return true;
  }
}

/** A transport whose one command prints LINES numbered lines, CHUNK per macrotask. */
class StreamingTransport implements Transport {
  readonly user = 'root';
  constructor(readonly name: string) {}
  async connect(): Promise<void> {}
  async exec(script: string, options: ExecOptions = {}): Promise<ExecResult> {
    const started = Date.now();
    if (script !== 'flood') return { code: 0, stdout: '', stderr: '', durationMs: 0 };
    for (let i = 1; i <= LINES; i++) {
      options.onLine?.('stdout', `line ${i} of ${LINES}: the quick brown fox jumps over the lazy dog`);
      if (i % CHUNK === 0) await new Promise((r) => setImmediate(r));
    }
    return { code: 0, stdout: '', stderr: '', durationMs: Date.now() - started };
  }
  async readFile(): Promise<string | null> {
    return null;
  }
  async writeFile(): Promise<{ changed: boolean }> {
    return { changed: true };
  }
  async close(): Promise<void> {}
}

async function countTranscriptLines(path: string): Promise<number> {
  let n = 0;
  const rl = createInterface({ input: createReadStream(path) });
  for await (const line of rl) if (/^\[app1\] stdout: line \d+ of /.test(line)) n++;
  return n;
}

async function child(mode: 'ink' | 'plain'): Promise<void> {
  const home = mkdtempSync(join(tmpdir(), 'ha-setup-bench-'));
  try {
    const term = new CountingTerminal();
    let sink: EventSink;
    let done: () => Promise<void> = async () => {};
    if (mode === 'ink') {
      const view = renderRun({ stdout: term, stderr: term, env: { NO_COLOR: '' }, interactive: true });
      sink = view.sink;
      done = view.done;
    } else {
      sink = createPlainRenderer(term, { color: false });
    }
    const step = defineStep({
      id: 'flood',
      title: 'Print a lot',
      targets: () => ['app1'],
      facts: {},
      plan: () => planOf({ kind: 'run', title: 'flood', script: 'flood' }),
    });
    const rb: Runbook = { id: 'bench', title: 'bench', description: '', steps: [step] };
    const t0 = performance.now();
    const res = await runRunbooks({
      runbooks: [rb],
      inventory: { cluster: 'bench', topology: 'lb', servers: { app1: '198.18.0.21' }, ssh: {}, options: {} },
      transport: (h) => new StreamingTransport(h.alias),
      events: sink,
      mode: 'apply',
      env: { ...process.env, HA_SETUP_HOME: home },
      resumeCommand: 'ha-setup apply',
    });
    const t1 = performance.now();
    await done();
    const t2 = performance.now();
    const inTranscript = await countTranscriptLines(res.transcriptPath);
    const out = {
      mode,
      ok: res.ok,
      lines: LINES,
      inTranscript,
      runMs: Math.round(t1 - t0),
      catchUpMs: Math.round(t2 - t1),
      peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
      terminalKb: Math.round(term.bytes / 1024),
      terminalWrites: term.writes,
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

function parent(): number {
  const self = fileURLToPath(import.meta.url);
  let bad = false;
  console.log(`render: ${LINES} output lines, ${CHUNK} per macrotask, through runRunbooks (real transcript) into each view`);
  for (const mode of ['ink', 'plain'] as const) {
    const r = spawnSync(process.execPath, [self, '--child', mode, '--lines', String(LINES), '--chunk', String(CHUNK)], { encoding: 'utf8' });
    const line = r.stdout.trim().split('\n').at(-1) ?? '';
    let f: Record<string, number | string | boolean>;
    try {
      f = JSON.parse(line);
    } catch {
      console.log(`${mode}: failed (exit ${r.status}): ${r.stderr.trim().split('\n').slice(-5).join(' | ')}`);
      bad = true;
      continue;
    }
    const all = f.inTranscript === LINES;
    const rssOk = Number(f.peakRssMb) < 200;
    if (!all || !rssOk || !f.ok) bad = true;
    console.log(
      `${mode.padEnd(5)}: ${f.runMs} ms run + ${f.catchUpMs} ms until the view caught up; peak RSS ${f.peakRssMb} MB (target < 200: ${rssOk ? 'ok' : 'OVER'}); ` +
        `${f.inTranscript}/${LINES} lines in the transcript (${all ? 'all' : 'MISSING SOME'}); terminal got ${f.terminalKb} KB in ${f.terminalWrites} writes`,
    );
  }
  return bad ? 1 : 0;
}

const ci = process.argv.indexOf('--child');
if (ci >= 0) {
  await child(process.argv[ci + 1] === 'plain' ? 'plain' : 'ink');
} else {
  process.exitCode = parent();
}
