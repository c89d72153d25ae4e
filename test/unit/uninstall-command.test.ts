/**
 * `ha-setup uninstall` before it connects anywhere: a wrong --purge-data name is refused in one
 * line naming the cluster (exit 2, nothing on stdout), and which path it takes: the uninstall
 * screen only for a person at a terminal without --yes, --dry-run or --json; otherwise the
 * plain path with its yes/no prompt or --yes. The screen path itself runs in the lab on a real
 * terminal (test/lab/uninstall.test.ts); the screen's frames are in test/ui/uninstall-screen.test.tsx.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main, type CliIO, type GlobalFlags } from '../../source/cli.js';
import { wantsScreen } from '../../source/commands/uninstall.js';

const LB = fileURLToPath(new URL('../../../test/fixtures/cluster-lb.yaml', import.meta.url));

test('a wrong --purge-data name: one line naming the cluster, exit 2, before any connection', async () => {
  const home = mkdtempSync(join(tmpdir(), 'ha-setup-uninstall-cmd-'));
  try {
    let stdout = '';
    let stderr = '';
    const io: CliIO = { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, stdin: process.stdin, env: { HA_SETUP_HOME: home } };
    for (const wrong of ['fixture', '', 'fixture-lb ']) {
      stdout = '';
      stderr = '';
      const t0 = Date.now();
      const code = await main(['uninstall', '--config', LB, '--yes', '--purge-data', wrong], io);
      assert.equal(code, 2);
      assert.equal(stdout, '');
      assert.equal(
        stderr,
        `ha-setup uninstall: --purge-data "${wrong}" does not match the cluster name "fixture-lb": type the cluster's name to confirm deleting its data directories, or leave --purge-data out to keep the data\n`,
      );
      // No SSH was tried (the fixture's addresses answer nobody here: a try would take seconds).
      assert.ok(Date.now() - t0 < 2000);
    }
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test('the screen only for a person at a terminal without --yes, --dry-run or --json', () => {
  const tty = { isTTY: true } as never;
  const pipe = { isTTY: false } as never;
  const io = (o: { stdin?: unknown; stdout?: unknown; env?: NodeJS.ProcessEnv } = {}) => ({ stdin: (o.stdin ?? tty) as NodeJS.ReadStream, stdout: (o.stdout ?? tty) as CliIO['stdout'], env: o.env ?? {} });
  const args = (values: GlobalFlags = {}) => ({ values });
  assert.equal(wantsScreen(args(), io()), true);
  assert.equal(wantsScreen(args({ yes: true }), io()), false);
  assert.equal(wantsScreen(args({ 'dry-run': true }), io()), false);
  assert.equal(wantsScreen(args({ json: true }), io()), false);
  assert.equal(wantsScreen(args({ 'purge-data': 'fixture-lb' }), io()), true);
  assert.equal(wantsScreen(args(), io({ stdin: pipe })), false, 'no keys to read: the plain prompt fails and names --yes');
  assert.equal(wantsScreen(args(), io({ stdout: pipe })), false);
  assert.equal(wantsScreen(args(), io({ env: { CI: 'true' } })), false);
});
