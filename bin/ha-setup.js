#!/usr/bin/env node
// Entry point. Kept tiny: --help and --version never load Ink (see source/cli.ts).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = new URL('../dist/source/cli.js', import.meta.url);
if (!existsSync(fileURLToPath(cli))) {
  process.stderr.write('ha-setup: not built yet: run `npm install` in ' + fileURLToPath(new URL('..', import.meta.url)) + '\n');
  process.exit(1);
}
const { main } = await import(cli.href);
process.exitCode = await main(process.argv.slice(2));
