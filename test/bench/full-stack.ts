/**
 * Benchmark of the full topology A (issue 7): a 7-host lab of its own (`lab up --topology lb`,
 * its lab.yaml plus the lab's NFS settings, as test/lab/full-stack.test.ts), then
 * `ha-setup apply --config <table> --yes` with every runbook, then the same apply again.
 * Prints, each next to its target:
 *  - the wall time of the whole apply (the CLI process, start to exit);
 *  - the critical path of the remote commands' own durations, from the run's transcript (see
 *    criticalPath() for how it follows the runner's schedule);
 *  - wall / critical path (target <= 1.15);
 *  - the wall time of the second, no-change apply (target <= 5 s);
 * and, to show where the tool spends time outside remote commands: the time before the first
 * step, the SSH connection set-up per host, and the steps with the most time outside remote
 * commands (step wall minus its critical host's command time, with the number of commands,
 * facts and file writes, whose SFTP uploads the transcript does not time).
 *
 *   node dist/test/bench/full-stack.js [--keep]    (--keep: leave the transcripts, path printed)
 *
 * Take the machine's lab lock first (see the briefing); the lab is always taken down.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { defaultLabCache, labDown, labPrerequisites, labUp, type LabInfo } from '../../source/lab/index.js';
import { bridgeExists } from '../../source/lab/network.js';

const CLI = fileURLToPath(new URL('../../../bin/ha-setup.js', import.meta.url));
const STANDIN = readFileSync(new URL('../../../test/fixtures/haproxy/standin-tls.py', import.meta.url), 'utf8');
const LAB_NFS = { server: 'ganesha', exportDir: '/srv/nfs', graceSec: 10, mountClients: false };
const RATIO_TARGET = 1.15;
const NO_CHANGE_TARGET_S = 5;

const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const verdict = (ok: boolean): string => (ok ? 'ok' : 'OVER TARGET');

interface Timed {
  code: number;
  stdout: string;
  stderr: string;
  /** Absolute ms: process spawned, process gone. */
  t0: number;
  t1: number;
  /** Each stdout line with the time it arrived (absolute ms). */
  lines: { at: number; text: string }[];
}

function ha(args: string[], env: NodeJS.ProcessEnv): Promise<Timed> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const c = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let partial = '';
    const lines: Timed['lines'] = [];
    c.stdout.on('data', (d: Buffer) => {
      const at = Date.now();
      stdout += d.toString();
      partial += d.toString();
      const parts = partial.split('\n');
      partial = parts.pop()!;
      for (const text of parts) lines.push({ at, text });
    });
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr, t0, t1: Date.now(), lines }));
  });
}

function ssh(info: LabInfo, address: string, script: string): Promise<number> {
  return new Promise((resolve) => {
    const c = spawn('ssh', ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${info.knownHostsFile}`,
      '-o', 'ConnectTimeout=5', '-i', info.keyFile, `root@${address}`, 'bash -s'], { stdio: ['pipe', 'ignore', 'inherit'] });
    c.on('close', (code) => resolve(code ?? 255));
    c.stdin.end(script);
  });
}

// ---------------------------------------------------------------------------------------------
// The transcript (source/engine/transcript.ts): per command a start line
//   <ISO time> [host] <step> fact|command|verify: <title>
// and an end line
//   <ISO time> [host] <step> exit <code> in <ms> ms
// written when the transport returned, with the command's own duration (ssh channel open to
// close, as the transport measured it); file writes as `<ISO time> [host] <step> write <path>`
// (no duration), and per host step a result line `<ISO time> [host] <step> done ...`.

interface Cmd {
  host: string;
  step: string;
  /** Absolute ms: the end line's time minus the recorded duration, and that time. */
  start: number;
  end: number;
}

interface Parsed {
  cmds: Cmd[];
  /** Counts per step: command starts by kind, writes. */
  kinds: Map<string, { fact: number; command: number; verify: number; write: number }>;
  /** `${step}@${host}` -> absolute ms of its result line. */
  results: Map<string, number>;
  /** host -> absolute ms of its first command start line. */
  firstCommand: Map<string, number>;
}

function parseTranscript(path: string): Parsed {
  const cmds: Cmd[] = [];
  const kinds: Parsed['kinds'] = new Map();
  const results = new Map<string, number>();
  const firstCommand = new Map<string, number>();
  const count = (step: string) => {
    let k = kinds.get(step);
    if (!k) kinds.set(step, (k = { fact: 0, command: 0, verify: 0, write: 0 }));
    return k;
  };
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^(\d{4}-\d\d-\d\dT[\d:.]+Z) \[(\S+)\] (\S+) (.*)$/.exec(line);
    if (!m) continue;
    const [, iso, host, step, rest] = m as unknown as [string, string, string, string, string];
    const at = Date.parse(iso);
    const end = /^exit -?\d+(?: \([^)]*\))? in (\d+) ms$/.exec(rest);
    const start = /^(fact|command|verify): /.exec(rest);
    if (end) cmds.push({ host, step, start: at - Number(end[1]), end: at });
    else if (start) {
      count(step)[start[1] as 'fact' | 'command' | 'verify']++;
      if (!firstCommand.has(host)) firstCommand.set(host, at);
    } else if (rest.startsWith('write ')) count(step).write++;
    else if (/^(done|FAILED)\b/.test(rest)) results.set(`${step}@${host}`, at);
  }
  return { cmds, kinds, results, firstCommand };
}

/** Total length of the union of intervals (overlapping fact probes counted once). */
function unionMs(intervals: [number, number][]): number {
  const sorted = [...intervals].sort((a, b) => a[0] - b[0]);
  let total = 0;
  let cur: [number, number] | undefined;
  for (const [a, b] of sorted) {
    if (!cur || a > cur[1]) {
      if (cur) total += cur[1] - cur[0];
      cur = [a, b];
    } else cur[1] = Math.max(cur[1], b);
  }
  if (cur) total += cur[1] - cur[0];
  return total;
}

/**
 * The critical path of the remote commands, following source/engine/runner.ts: steps run one
 * after the other (a step starts when the previous one finished on all its hosts), and a step
 * runs on all its hosts at once (at most 8; topology A has 7). So the run can be no shorter
 * than the sum, over steps in order, of the longest host's remote command time in that step.
 * A host's time in a step is the union of its commands' intervals [end - duration, end]:
 * facts are probed up to 4 at once per host (runner gather()), so overlapping probes count
 * once; the step's own commands and verify() commands run one after another. Facts cached from
 * an earlier step have no line and cost nothing, as in the run.
 */
function criticalPath(p: Parsed): { totalMs: number; perStep: Map<string, { host: string; busyMs: number; hosts: number }> } {
  const byStep = new Map<string, Map<string, [number, number][]>>();
  for (const c of p.cmds) {
    const hosts = byStep.get(c.step) ?? new Map<string, [number, number][]>();
    byStep.set(c.step, hosts);
    const iv = hosts.get(c.host) ?? [];
    hosts.set(c.host, iv);
    iv.push([c.start, c.end]);
  }
  const perStep = new Map<string, { host: string; busyMs: number; hosts: number }>();
  let totalMs = 0;
  for (const [step, hosts] of byStep) {
    let best = { host: '', busyMs: 0, hosts: hosts.size };
    for (const [host, iv] of hosts) {
      const busy = unionMs(iv);
      if (busy > best.busyMs) best = { host, busyMs: busy, hosts: hosts.size };
    }
    perStep.set(step, best);
    totalMs += best.busyMs;
  }
  return { totalMs, perStep };
}

/** Step walls from the live output: a step starts at its `▸ <step>:` line, ends at the next one (or the summary). */
function stepWalls(run: Timed): { step: string; start: number; end: number }[] {
  const marks = run.lines.filter((l) => /^▸ \S+: /.test(l.text)).map((l) => ({ step: /^▸ (\S+):/.exec(l.text)![1]!, at: l.at }));
  const done = run.lines.find((l) => /^(✓ Done|✗ FAILED)/.test(l.text))?.at ?? run.t1;
  return marks.map((m, i) => ({ step: m.step, start: m.at, end: marks[i + 1]?.at ?? done }));
}

function analyse(label: string, run: Timed): { wallMs: number; criticalMs: number } {
  const path = /^transcript: (\S+\.log)$/m.exec(run.stdout)?.[1];
  if (!path) throw new Error(`${label}: no transcript path in the output`);
  const parsed = parseTranscript(path);
  const cp = criticalPath(parsed);
  const wallMs = run.t1 - run.t0;
  const walls = stepWalls(run);
  const toolMs = Number(/✓ Done in ([\d.]+)s/.exec(run.stdout)?.[1] ?? NaN) * 1000;
  const commandCount = parsed.cmds.length;
  console.log(`${label}: ${commandCount} remote commands, ${[...parsed.kinds.values()].reduce((n, k) => n + k.write, 0)} file writes, ${walls.length} steps with hosts`);
  console.log(`  wall ${s(wallMs)} (the tool's own "Done in": ${Number.isFinite(toolMs) ? s(toolMs) : 'n/a'}); critical path of remote commands ${s(cp.totalMs)}`);
  if (walls.length) {
    const first = walls[0]!;
    const conn = [...parsed.firstCommand].map(([h, at]) => `${h} ${((at - first.start) / 1000).toFixed(2)}`).join(', ');
    console.log(`  before the first step: ${s(first.start - run.t0)} (node start, modules, table, lock, secrets); after the last: ${s(run.t1 - walls[walls.length - 1]!.end)}`);
    console.log(`  first remote command per host after the first step started (s; SSH connection set-up): ${conn}`);
    const rows = walls.map((w) => {
      const c = cp.perStep.get(w.step);
      const k = parsed.kinds.get(w.step) ?? { fact: 0, command: 0, verify: 0, write: 0 };
      const hostSpans = [...parsed.results].filter(([key]) => key.startsWith(`${w.step}@`)).map(([key, at]) => [key.split('@')[1]!, at - w.start] as const);
      const slowest = hostSpans.sort((a, b) => b[1] - a[1])[0];
      return { ...w, wall: w.end - w.start, busy: c?.busyMs ?? 0, critical: c?.host ?? '-', k, slowest };
    });
    const top = [...rows].sort((a, b) => b.busy - a.busy).slice(0, 5);
    console.log(`  the longest steps on the critical path: ${top.map((r) => `${r.step} ${s(r.busy)} (${r.critical})`).join(', ')}`);
    const outside = rows.reduce((n, r) => n + Math.max(0, r.wall - r.busy), 0);
    console.log(`  time outside remote commands within steps: ${s(outside)} over ${rows.length} steps; the 12 largest:`);
    for (const r of [...rows].sort((a, b) => b.wall - b.busy - (a.wall - a.busy)).slice(0, 12)) {
      console.log(
        `    ${r.step.padEnd(30)} wall ${s(r.wall).padStart(7)}  commands ${s(r.busy).padStart(7)} (${r.critical})  outside ${s(r.wall - r.busy).padStart(7)}` +
          `  [${r.k.fact} facts, ${r.k.command} commands, ${r.k.verify} verify, ${r.k.write} writes; slowest host ${r.slowest ? `${r.slowest[0]} ${s(r.slowest[1])}` : '-'}]`,
      );
    }
  }
  return { wallMs, criticalMs: cp.totalMs };
}

async function main(): Promise<void> {
  const pre = labPrerequisites();
  if (!pre.ok) {
    console.log(`full-stack bench: cannot run: ${pre.message}`);
    process.exitCode = 1;
    return;
  }
  if (bridgeExists()) {
    console.log('full-stack bench: a lab is up on this machine; run ha-setup lab down first');
    process.exitCode = 1;
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'ha-full-stack-bench-'));
  const env: NodeJS.ProcessEnv = { ...process.env, HA_SETUP_LAB_DIR: join(dir, 'lab'), HA_SETUP_LAB_CACHE: defaultLabCache(), HA_SETUP_HOME: join(dir, 'home') };
  const stop = () => void labDown({ env }).finally(() => process.exit(130));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const info = await labUp({ topology: 'lb', env });
    console.log(`lab: ${info.hosts.length} hosts up (${info.hosts.map((h) => h.alias).join(', ')})`);
    const table = parse(readFileSync(info.tableFile, 'utf8')) as { options?: Record<string, unknown> };
    table.options = { ...table.options, nfs: LAB_NFS };
    const file = join(dir, 'full-stack.yaml');
    writeFileSync(file, stringify(table));
    // The app on app1/app2 (what HAProxy passes TLS through to), as in the lab test.
    for (const alias of ['app1', 'app2']) {
      const h = info.hosts.find((x) => x.alias === alias)!;
      const code = await ssh(info, h.address, [
        'set -e', 'mkdir -p /opt/standin && cd /opt/standin', `cat > standin.py <<'PYEOF'\n${STANDIN}PYEOF`,
        `openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=${alias} -days 2 -keyout key.pem -out cert.pem 2>/dev/null`,
        `systemd-run --unit=standin-tls --collect python3 /opt/standin/standin.py ${alias} 8181 /opt/standin/cert.pem /opt/standin/key.pem >/dev/null 2>&1`,
      ].join('\n'));
      if (code !== 0) throw new Error(`stand-in on ${alias}: exit ${code}`);
    }

    const first = await ha(['apply', '--config', file, '--yes'], env);
    if (first.code !== 0) {
      console.log(`the full apply FAILED (exit ${first.code}); figures below are of a failed run`);
      console.log(first.stdout.split('\n').filter((l) => /✗|FAILED|exit \d/.test(l)).slice(0, 20).join('\n'));
    }
    const a = analyse('full apply', first);
    const second = await ha(['apply', '--config', file, '--yes'], env);
    const b = analyse('second apply (nothing to change)', second);
    const changed = /Done in [\d.ms]+: (\d+) host steps? changed/.exec(second.stdout)?.[1];

    const ratio = a.wallMs / a.criticalMs;
    console.log('');
    console.log(`whole apply, wall time:                         ${s(a.wallMs)}`);
    console.log(`critical path of the remote commands' durations: ${s(a.criticalMs)}`);
    console.log(`wall / critical path:                            ${ratio.toFixed(2)}  [target <= ${RATIO_TARGET}: ${verdict(ratio <= RATIO_TARGET)}]`);
    console.log(`second, no-change apply, wall time:              ${s(b.wallMs)} (${changed ?? '?'} host steps changed)  [target <= ${NO_CHANGE_TARGET_S} s: ${verdict(b.wallMs <= NO_CHANGE_TARGET_S * 1000)}]`);
    if (first.code !== 0 || second.code !== 0) process.exitCode = 1;
  } finally {
    const down = await labDown({ env }).catch((e: Error) => ({ left: [e.message] }));
    if (down.left.length) console.log(`lab down left: ${down.left.join('; ')}`);
    if (process.argv.includes('--keep')) {
      rmSync(join(dir, 'lab'), { recursive: true, force: true });
      console.log(`kept: ${dir} (table, HA_SETUP_HOME with the transcripts)`);
    } else rmSync(dir, { recursive: true, force: true });
  }
}

await main();
