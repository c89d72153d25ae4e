import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stripVTControlCharacters } from 'node:util';
import { main, type CliIO } from '../../source/cli.js';
import { clusterToResume, NO_TERMINAL } from '../../source/commands/wizard.js';
import { listClusters, saveCluster } from '../../source/inventory/store.js';
import { CheckpointStore } from '../../source/engine/checkpoint.js';
import { clusterDir } from '../../source/paths.js';

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

// A PTY test that fails midway must not leave `script` and the tool behind: they would keep this
// file's process (and the whole suite) alive. Each test's PTY is killed after it, pass or fail.
const live = new Set<() => void>();
afterEach(() => {
  for (const kill of live) kill();
  live.clear();
});

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
  const kill = () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    // The tool runs in its own session under `script`: kill it first, then `script`.
    spawnSync('pkill', ['-KILL', '-P', String(child.pid)]);
    child.kill('SIGKILL');
  };
  live.add(kill);
  void exited.then(() => live.delete(kill));
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
    await p.waitFor('New cluster');
    p.child.stdin.write('\r');
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

test('on a PTY: an enter typed before the first screen, text and enter in one read, and a held backspace (keys in one read) are all taken', { skip: !hasScript && 'util-linux `script` is not installed' }, async () => {
  const home = mkdtempSync(join(tmpdir(), 'ha-wizard-pty-'));
  try {
    const p = onPty(ptyEnv({ HA_SETUP_HOME: home }));
    // Type-ahead: the terminal is still in cooked mode, so this enter reaches the tool as "\n".
    p.child.stdin.write('\r');
    await p.waitFor('Cluster name');
    p.child.stdin.write('labxyz\u007f\u007f\u007f');
    // The field as last drawn: "lab" and the cursor (the three backspaces deleted xyz).
    const lastName = () => /^(\S*)/.exec(p.text().split('Name: ').pop() ?? '')?.[1];
    for (const end = Date.now() + 15_000; lastName() !== 'lab' && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
    assert.equal(lastName(), 'lab', p.text());
    p.child.stdin.write('2\u007f\r');
    await p.waitFor('Topology of cluster lab');
    p.child.stdin.write('\u001b[B\r');
    await p.waitFor('Servers of cluster lab · topology k8s');
    p.child.stdin.write('\u001b');
    assert.equal(await p.exited, 130);
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

/** A saved two-host table whose last run failed at pg-standby.clone on db_standby. */
function failedCluster(home: string): void {
  const env = { HA_SETUP_HOME: home };
  saveCluster(
    { cluster: 'prod', topology: 'lb', partial: true, servers: { db_primary: '198.18.0.11', db_standby: '198.18.0.12', db_vip: '198.18.0.100' }, ssh: {}, options: {} },
    env,
  );
  const store = new CheckpointStore(clusterDir('prod', env));
  store.set('pg-standby.clone', 'db_standby', { status: 'failed', inputHash: 'x', finishedAt: '2026-11-22T00:41:07.000Z', changed: false, runId: 'r1' });
  store.data.lastRun = { runId: 'r1', ok: false, finishedAt: '2026-11-22T00:41:08.000Z', failed: { stepId: 'pg-standby.clone', hosts: ['db_standby'] } };
  store.save();
}

test('clusterToResume finds the saved cluster whose last run failed, and where', () => {
  const home = mkdtempSync(join(tmpdir(), 'ha-wizard-resume-'));
  try {
    assert.equal(clusterToResume({ HA_SETUP_HOME: home }), undefined);
    failedCluster(home);
    const found = clusterToResume({ HA_SETUP_HOME: home });
    assert.equal(found?.inventory.cluster, 'prod');
    assert.deepEqual([found?.failure.stepId, found?.failure.hosts, found?.failure.at], ['pg-standby.clone', ['db_standby'], '2026-11-22T00:41:07.000Z']);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test('on a PTY: `ha-setup` offers to resume the failed run first; Cancel goes on to the table wizard', { skip: !hasScript && 'util-linux `script` is not installed' }, async () => {
  const home = mkdtempSync(join(tmpdir(), 'ha-wizard-pty-'));
  try {
    failedCluster(home);
    const p = onPty(ptyEnv({ HA_SETUP_HOME: home }));
    await p.waitFor('The last run of prod stopped at');
    await p.waitFor('Resume at step pg-standby.clone (failed on db_standby at 2026-11-22 00:41 UTC)');
    await p.waitFor('Start over (steps already done are re-checked, not redone)');
    p.child.stdin.write('\u001b[B');
    await p.waitFor('❯ Start over');
    p.child.stdin.write('\u001b[B');
    await p.waitFor('❯ Cancel');
    p.child.stdin.write('\r');
    await p.waitFor('Edit saved cluster prod');
    p.child.stdin.write('\u001b');
    assert.equal(await p.exited, 130);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
