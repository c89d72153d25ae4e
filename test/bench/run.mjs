#!/usr/bin/env node
// npm run bench [name ...]: builds, then runs each benchmark under test/bench (they print figures;
// they are not pass/fail tests). Names: ssh-overhead, lab, failover, render, full-stack (topology A
// applied in a 7-host lab: wall time vs the remote commands' critical path, a no-change re-run), ...
// (default: all that exist).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.json')], { stdio: 'inherit' });
const dir = join(root, 'dist/test/bench');
const all = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.js')).map((f) => f.replace(/\.js$/, '')) : [];
const names = process.argv.slice(2).length ? process.argv.slice(2) : all;
let failed = false;
for (const name of names) {
  if (!all.includes(name)) {
    console.error(`unknown benchmark ${name} (have: ${all.join(', ')})`);
    failed = true;
    continue;
  }
  console.log(`\n== bench ${name}`);
  const r = spawnSync(process.execPath, [join(dir, `${name}.js`)], { stdio: 'inherit' });
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
