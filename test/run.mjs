#!/usr/bin/env node
// The one test entry point (npm test): build, prepare the machine for the lab, run every suite.
// Usage: node test/run.mjs [suite ...]   suites: unit ui e2e lab (default: all)
import { execFileSync, spawnSync } from 'node:child_process';
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

let failed = false;
for (const suite of suites) {
  const files = testFiles(join(root, 'dist/test', suite));
  step(`${suite} tests (${files.length} files)`);
  if (files.length === 0) continue;
  // The lab and e2e suites start real servers: one file at a time.
  const serial = suite === 'lab' || suite === 'e2e';
  const args = ['--test', '--test-reporter=spec', `--test-concurrency=${serial ? 1 : 2}`, ...files];
  const r = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: root, env: { ...process.env, HA_SETUP_ROOT: root } });
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
