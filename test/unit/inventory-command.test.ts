import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { main, type CliIO } from '../../source/cli.js';
import { formatTable } from '../../source/inventory/format.js';
import { loadConfigFile } from '../../source/inventory/load.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const fixture = (name: string) => join(root, 'test/fixtures', name);
const LB = fixture('cluster-lb.yaml');

let home: string;
before(() => {
  home = mkdtempSync(join(tmpdir(), 'ha-setup-table-cmd-'));
});
after(() => rmSync(home, { recursive: true, force: true }));

async function table(args: string[], env: NodeJS.ProcessEnv = { HA_SETUP_HOME: home }) {
  let stdout = '';
  let stderr = '';
  const io: CliIO = {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    stdin: process.stdin,
    env,
  };
  const code = await main(['table', ...args], io);
  return { code, stdout, stderr };
}

test('table --config FILE prints the text table by default', async () => {
  const r = await table(['--config', LB]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.equal(r.stdout, formatTable(loadConfigFile(LB), 'text'));
  assert.match(r.stdout, /^Database virtual IP {4}db_vip {7}198\.18\.0\.100 {2}keepalived virtual IP of the database pair; apps connect here$/m);
});

test('--format md|csv|json and --json', async () => {
  const md = await table(['--config', LB, '--format', 'md']);
  assert.equal(md.code, 0);
  assert.match(md.stdout, /^\*\*Server table: cluster fixture-lb, topology lb \(HAProxy load balancer\)\*\*\n\n\| Role \| Alias \| Address \| Description \|\n/);
  const csv = await table(['--config', LB, '-f', 'csv']);
  assert.match(csv.stdout, /^role,alias,address,description\r\nPostgreSQL primary,db_primary,198\.18\.0\.11,/);
  const json = await table(['--config', LB, '--json']);
  const rows = JSON.parse(json.stdout) as { alias: string; address: string | null }[];
  assert.equal(rows.length, 9);
  assert.deepEqual(rows.find((x) => x.alias === 'lb'), JSON.parse(formatTable(loadConfigFile(LB), 'json'))[8]);
  assert.equal((await table(['--config', LB, '--json', '--format', 'json'])).code, 0);
});

test('bad flags: unknown format, --json with another format, unknown subcommand (exit 2)', async () => {
  const xml = await table(['--config', LB, '--format', 'xml']);
  assert.equal(xml.code, 2);
  assert.equal(xml.stderr, 'ha-setup table: --format: "xml" is not a table format: use text, md, csv, json\n');
  const both = await table(['--config', LB, '--json', '--format', 'md']);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /--json and --format md disagree/);
  const sub = await table(['show']);
  assert.equal(sub.code, 2);
  assert.match(sub.stderr, /unknown subcommand "show": use: ha-setup table/);
  assert.equal(xml.stdout + both.stdout + sub.stdout, '');
});

test('an invalid table: every error on its own line, prefixed by the file, exit 1', async () => {
  const bad = fixture('bad-table.yaml');
  const r = await table(['--config', bad]);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  const lines = r.stderr.trimEnd().split('\n');
  for (const line of lines) assert.ok(line.startsWith(`${bad}:`), line);
  assert.deepEqual(
    lines.map((l) => l.slice(bad.length)),
    [
      ":6: servers.db_standby: 198.18.0.11 is also db_primary's address: each role needs its own server (give db_standby a different IP or hostname)",
      ':7: servers.db_vip: 198.18.1.100 is outside 198.18.0.0/24, the subnet of db_primary (198.18.0.11) and db_standby (198.18.0.11): keepalived can only move a VIP inside the pair\'s subnet; pick a free address in 198.18.0.0/24 (or fix network.prefix)',
      ':8: servers.nfs_primary: "198.18.0.256" is not a valid IPv4 address (256 is above 255); an all-numeric name cannot be a hostname, so fix the typo',
      ':11: servers.app1: "198.18.0" is not a valid IPv4 address (3 numbers, not 4); an all-numeric name cannot be a hostname, so fix the typo',
      ': servers.app2: not set: every topology needs at least two app servers (app1, app2); give app2 an IP address or hostname',
      ': servers.lb: not set: the lb topology needs the HAProxy load balancer; give lb an IP address or hostname',
      ':12: servers.k8s_master: k8s_master (Kubernetes master) belongs to topology k8s, but topology is lb: use lb instead, or set topology: k8s',
      ':16: ssh.port: 70000 is out of range: use 1-65535 (the SSH port, usually 22)',
    ],
  );
  const syntax = await table(['--config', fixture('bad-syntax.yaml')]);
  assert.equal(syntax.code, 1);
  assert.match(syntax.stderr, /^.*bad-syntax\.yaml:7:3: YAML syntax error: Map keys must be unique\n$/);
});

test('no table anywhere: says how to make one', async () => {
  const r = await table([], { HA_SETUP_HOME: join(home, 'empty') });
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'ha-setup table: no server table: run `ha-setup` (the wizard) or pass --config FILE\n');
});

test('table import FILE saves under its cluster name; table export prints or writes YAML', async () => {
  const env = { HA_SETUP_HOME: join(home, 'io') };
  const imp = await table(['import', LB], env);
  assert.equal(imp.code, 0, imp.stderr);
  assert.match(imp.stdout, /^saved: cluster "fixture-lb", 9 servers, in .*clusters\/fixture-lb\/table\.json \(use it with --cluster fixture-lb\)\n$/);
  assert.ok(existsSync(join(env.HA_SETUP_HOME, 'clusters/fixture-lb/table.json')));
  assert.match((await table(['import', LB], env)).stdout, /^unchanged: /);

  const shown = await table(['--cluster', 'fixture-lb', '-f', 'md'], env);
  assert.equal(shown.stdout, formatTable(loadConfigFile(LB), 'md'));

  const exp = await table(['export', '--cluster', 'fixture-lb'], env);
  assert.equal(exp.code, 0);
  assert.match(exp.stdout, /^# ha-setup server table of cluster fixture-lb/);
  const out = join(env.HA_SETUP_HOME, 'exported.yaml');
  const written = await table(['export', '--cluster', 'fixture-lb', '--out', out], env);
  assert.equal(written.code, 0);
  assert.equal(written.stdout, '');
  assert.match(written.stderr, /wrote the table of cluster "fixture-lb" to .*exported\.yaml/);
  assert.equal(readFileSync(out, 'utf8'), exp.stdout);
  assert.deepEqual(loadConfigFile(out), loadConfigFile(LB));

  const bad = await table(['import', fixture('bad-table.yaml')], env);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /bad-table\.yaml:6: servers\.db_standby/);
  assert.equal(existsSync(join(env.HA_SETUP_HOME, 'clusters/bad-table')), false);
  assert.equal((await table(['import'], env)).code, 2);
});

test('the installed entry point: node bin/ha-setup.js table --config test/fixtures/cluster-lb.yaml --format md', async () => {
  const { stdout, stderr } = await promisify(execFile)(
    process.execPath,
    [join(root, 'bin/ha-setup.js'), 'table', '--config', 'test/fixtures/cluster-lb.yaml', '--format', 'md'],
    { cwd: root, env: { ...process.env, HA_SETUP_HOME: join(home, 'bin') } },
  );
  assert.equal(stderr, '');
  const lines = stdout.split('\n');
  assert.equal(lines[0], '**Server table: cluster fixture-lb, topology lb (HAProxy load balancer)**');
  assert.equal(lines[2], '| Role | Alias | Address | Description |');
  assert.equal(lines[3], '| --- | --- | --- | --- |');
  assert.equal(lines[6], '| Database virtual IP | db_vip | 198.18.0.100 | keepalived virtual IP of the database pair; apps connect here |');
  assert.equal(lines[12], '| HAProxy load balancer | lb | 198.18.0.17 | HAProxy in front of the app servers: TLS passed through on 8181, sticky on the TLS session id |');
  assert.equal(lines.length, 14);
});
