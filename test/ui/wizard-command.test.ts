import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stripVTControlCharacters } from 'node:util';
import { main, type CliIO } from '../../source/cli.js';
import { NO_TERMINAL } from '../../source/commands/wizard.js';
import { listClusters } from '../../source/inventory/store.js';

const root = process.env.HA_SETUP_ROOT ?? fileURLToPath(new URL('../../..', import.meta.url));

function io(opts: { tty: boolean; env?: NodeJS.ProcessEnv }) {
  const out = { text: '', isTTY: opts.tty, write: (s: string) => ((out.text += s), true) };
  const err = { text: '', isTTY: opts.tty, write: (s: string) => ((err.text += s), true) };
  const stdin = { isTTY: opts.tty } as unknown as NodeJS.ReadStream;
  const cli: CliIO = { stdout: out, stderr: err, stdin, env: opts.env ?? {} };
  return { cli, out, err };
}

test('`ha-setup` without a terminal: one line naming the flags to use, exit 2, no prompt', async () => {
  const { cli, out, err } = io({ tty: false });
  assert.equal(await main([], cli), 2);
  assert.equal(err.text, `${NO_TERMINAL}\n`);
  assert.match(err.text, /--config FILE/);
  assert.match(err.text, /ha-setup table import FILE/);
  assert.equal(err.text.trimEnd().split('\n').length, 1);
  assert.equal(out.text, '');
});

test('`ha-setup` on a terminal but with CI=true: the same refusal', async () => {
  const { cli, err } = io({ tty: true, env: { CI: 'true' } });
  assert.equal(await main(['wizard'], cli), 2);
  assert.equal(err.text, `${NO_TERMINAL}\n`);
});

// The real binary on a real pseudo-terminal (util-linux `script`), keys sent as a user would.
const hasScript = spawnSync('script', ['--version']).status === 0;

function onPty(env: NodeJS.ProcessEnv) {
  const child = spawn('script', ['-qfec', `stty cols 100 rows 40; exec ${JSON.stringify(process.execPath)} bin/ha-setup.js`, '/dev/null'], {
    cwd: root,
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let screen = '';
  child.stdout.on('data', (d: Buffer) => (screen += d.toString()));
  child.stderr.on('data', (d: Buffer) => (screen += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const text = () => stripVTControlCharacters(screen);
  return {
    child,
    exited,
    text,
    async waitFor(s: string, timeoutMs = 15_000) {
      const start = Date.now();
      while (!text().includes(s)) {
        if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${JSON.stringify(s)}; screen:\n${text()}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

function ptyEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TERM: 'xterm-256color', ...extra };
  for (const k of Object.keys(env)) if (k === 'CI' || k === 'CONTINUOUS_INTEGRATION' || k.startsWith('CI_')) delete env[k];
  return { ...env, ...extra };
}

test('on a PTY: the wizard draws, takes keys, and esc quits without saving (exit 130)', { skip: !hasScript && 'util-linux `script` is not installed' }, async () => {
  const home = mkdtempSync(join(tmpdir(), 'ha-wizard-pty-'));
  try {
    const p = onPty(ptyEnv({ HA_SETUP_HOME: home }));
    await p.waitFor('Cluster name');
    p.child.stdin.write('lab');
    await p.waitFor('Name: lab');
    p.child.stdin.write('\r');
    await p.waitFor('Topology of cluster lab');
    p.child.stdin.write('\r');
    await p.waitFor('Servers of cluster lab · topology lb');
    p.child.stdin.write('\u001b');
    assert.equal(await p.exited, 130);
    assert.match(p.text(), /ha-setup: quit; nothing was saved/);
    assert.deepEqual(listClusters({ HA_SETUP_HOME: home }), []);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test('on a PTY with CI=true: no prompt, the one-line refusal, exit 2', { skip: !hasScript && 'util-linux `script` is not installed' }, async () => {
  const p = onPty(ptyEnv({ CI: 'true' }));
  p.child.stdin.end();
  assert.equal(await p.exited, 2);
  assert.equal(p.text().trim(), NO_TERMINAL);
});
