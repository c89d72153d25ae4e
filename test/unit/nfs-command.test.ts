/**
 * `ha-setup nfs server|client`: the guides' helper as a subcommand. Bad arguments: one usage
 * line, exit 2. Without --yes it plans against THIS machine (facts read for real, read-only)
 * and changes nothing: /etc/fstab and /etc/exports.d are compared before and after.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main, type CliIO } from '../../source/cli.js';
import { parseNfsArgs, USAGE } from '../../source/commands/nfs.js';

function io(env: NodeJS.ProcessEnv = {}): CliIO & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    stdout: { write: (s: string) => (out += s), isTTY: false },
    stderr: { write: (s: string) => (err += s), isTTY: false },
    stdin: process.stdin,
    env: { ...process.env, NO_COLOR: '1', ...env },
    out: () => out,
    err: () => err,
  };
}

test('arguments: server takes one or more IP addresses, client exactly one', () => {
  assert.deepEqual(parseNfsArgs(['server', '198.18.0.15', '198.18.0.16']), { mode: 'server', addresses: ['198.18.0.15', '198.18.0.16'] });
  assert.deepEqual(parseNfsArgs(['client', '198.18.0.101']), { mode: 'client', addresses: ['198.18.0.101'] });
  for (const bad of [[], ['server'], ['client'], ['client', '198.18.0.1', '198.18.0.2'], ['1', '198.18.0.15'], ['server', 'not-an-ip'], ['mount', '198.18.0.1']]) {
    assert.equal(parseNfsArgs(bad), null, JSON.stringify(bad));
  }
});

test('bad arguments: the usage line on stderr, exit 2', async () => {
  for (const args of [['nfs'], ['nfs', 'client'], ['nfs', 'server', 'x.y']]) {
    const c = io();
    assert.equal(await main(args, c), 2, args.join(' '));
    assert.equal(c.err(), `${USAGE}\n`);
    assert.equal(c.out(), '');
  }
});

const digest = (p: string): string => (existsSync(p) ? createHash('sha256').update(readFileSync(p)).digest('hex') : 'absent');
const exportsD = (): string => (existsSync('/etc/exports.d') ? readdirSync('/etc/exports.d').join(',') : 'absent');

test('client <vip> without --yes: the plan for this machine (fstab line from the VIP), nothing changed', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root or sudo -n (the facts read /etc/fstab and mounts as root)');
  const home = mkdtempSync(join(tmpdir(), 'nfs-cmd-'));
  try {
    const before = digest('/etc/fstab');
    const c = io({ HA_SETUP_HOME: home });
    const code = await main(['nfs', 'client', '198.18.0.101'], c);
    assert.equal(code, 0, c.err());
    assert.match(c.out(), /\+198\.18\.0\.101:\/usr\/safenet\/ccc\/packages \/usr\/safenet\/ccc\/packages nfs4 rw,hard,_netdev,proto=tcp,timeo=600,retrans=2,noatime 0 0/);
    assert.match(c.out(), /mount \/usr\/safenet\/ccc\/packages/);
    assert.match(c.out(), /To apply: ha-setup nfs client 198\.18\.0\.101 --yes/);
    assert.equal(digest('/etc/fstab'), before, '/etc/fstab unchanged');
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test('server <app ip>... without --yes: exports to exactly those addresses, nothing changed', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root');
  const home = mkdtempSync(join(tmpdir(), 'nfs-cmd-'));
  try {
    const before = exportsD();
    const c = io({ HA_SETUP_HOME: home });
    const code = await main(['nfs', 'server', '198.18.0.15', '198.18.0.16'], c);
    assert.equal(code, 0, c.err());
    const line = c.out().split('\n').find((l) => l.includes('+/usr/safenet/ccc/packages '));
    assert.ok(line, c.out());
    assert.match(line, /198\.18\.0\.15\(rw,sync,no_subtree_check,no_root_squash,fsid=\d+\) 198\.18\.0\.16\(rw,/);
    assert.doesNotMatch(c.out(), /nfs\.replication|nfs\.mount/, 'replication and mounts are not part of the helper');
    assert.equal(exportsD(), before, '/etc/exports.d unchanged');
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
