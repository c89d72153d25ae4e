#!/usr/bin/env node
// The one test entry point (npm test): build, prepare the machine for the lab, run every suite.
// Usage: node test/run.mjs [suite ...]   suites: unit ui e2e lab (default: all)
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const all = ['unit', 'ui', 'e2e', 'lab'];
const suites = process.argv.slice(2).length ? process.argv.slice(2) : all;

const step = (title) => process.stdout.write(`\n== ${title}\n`);

step('build (tsc)');
execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.json')], { stdio: 'inherit' });

if (suites.some((s) => s === 'e2e' || s === 'lab')) {
  step('machine set-up for the e2e and lab tests (scripts/host-setup.sh)');
  const r = spawnSync('bash', [join(root, 'scripts/host-setup.sh')], { stdio: 'inherit' });
  if (r.status !== 0) {
    process.stdout.write('host set-up failed: the e2e/lab tests will explain what they cannot run\n');
  }
}

function testFiles(dir) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...testFiles(p));
    else if (/\.test\.js$/.test(name)) out.push(p);
  }
  return out;
}

// Per test (a lab test starts, drives and tears down real servers: a full-stack apply and
// uninstall take a few minutes) and per suite; the sum of the suite budgets stays under CI's 90
// minutes with room for npm ci, the host set-up and the first build of the lab image.
const MIN = 60_000;
const TEST_TIMEOUT_MS = { unit: 2 * MIN, ui: 2 * MIN, e2e: 10 * MIN, lab: 20 * MIN };
const SUITE_BUDGET_MS = { unit: 8 * MIN, ui: 8 * MIN, e2e: 15 * MIN, lab: 45 * MIN };

let failed = false;
const totals = { pass: 0, fail: 0, skipped: 0 };
for (const suite of suites) {
  const files = testFiles(join(root, 'dist/test', suite));
  step(`${suite} tests (${files.length} files)`);
  if (files.length === 0) continue;
  // The lab and e2e suites start real servers: one file at a time.
  const serial = suite === 'lab' || suite === 'e2e';
  // Nothing may hang CI: a test that runs past its time fails (--test-timeout), a test file whose
  // process would stay alive after its tests (a child left running) is ended (--test-force-exit),
  // and a whole suite past its budget is killed and reported (the watchdog in runTee).
  const args = [
    '--test',
    '--test-reporter=spec',
    `--test-concurrency=${serial ? 1 : 2}`,
    `--test-timeout=${TEST_TIMEOUT_MS[suite]}`,
    '--test-force-exit',
    ...files,
  ];
  const env = { ...process.env, HA_SETUP_ROOT: root };
  if (suite === 'ui') {
    // Ink decides at import time, from CI / CONTINUOUS_INTEGRATION, to draw only the last frame.
    // The UI tests assert on live frames, as a user's terminal shows them; the tests of the CI
    // behaviour (plain output, no prompt) pass CI=true to the process they start themselves.
    delete env.CI;
    delete env.CONTINUOUS_INTEGRATION;
  }
  const r = await runTee(process.execPath, args, { cwd: root, env }, SUITE_BUDGET_MS[suite], suite);
  for (const k of Object.keys(totals)) {
    const m = new RegExp(`^ℹ ${k} (\\d+)$`, 'm').exec(r.output);
    if (m) totals[k] += Number(m[1]);
  }
  if (r.status !== 0) failed = true;
}
// One closing line over all suites (each suite above also printed its own summary).
process.stdout.write(`\n${totals.pass} passed, ${totals.fail} failed, ${totals.skipped} skipped\n`);
process.exit(failed || totals.fail > 0 ? 1 : 0);

/**
 * Run a command, echo its output as it comes, and keep the last 64 KB for the summary. Past
 * `budgetMs` its whole process group is killed and the suite fails, saying so.
 */
function runTee(cmd, args, opts, budgetMs, name) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    // Its own process group (so that the watchdog can end all of it): pass on a Ctrl-C ourselves.
    const stop = (sig) => {
      try {
        process.kill(-child.pid, sig);
      } catch {}
      process.exit(130);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    let overrun = false;
    const watchdog = setTimeout(() => {
      overrun = true;
      process.stdout.write(`\n!! ${name} suite: still running after ${budgetMs / 60_000} minutes: killed (the test running last is above)\n`);
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, budgetMs);
    let output = '';
    const keep = (chunk) => {
      output = (output + chunk.toString()).slice(-65536);
    };
    child.stdout.on('data', (c) => {
      process.stdout.write(c);
      keep(c);
    });
    child.stderr.on('data', (c) => process.stderr.write(c));
    child.on('close', (status) => {
      clearTimeout(watchdog);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve({ status: overrun ? 1 : status, output });
    });
  });
}
