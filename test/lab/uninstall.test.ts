/**
 * Uninstall proven on real servers (issue 6, "a clean way back out"): a 4-host lab that this
 * test's own table makes db_primary (.11), db_standby (.12), lb (.13) and app1 (.14), with the
 * DB VIP .100; ufw active (default deny, SSH allowed) on the DB pair and the lb, so that the
 * runbooks open ports in a real firewall. Through the real CLI over SSH:
 *
 * 1. Before apply, every host's state is recorded: active and enabled units, listening ports
 *    (ss -Hltnu), the firewall (ufw, nft, iptables) and a checksum listing of every path the
 *    runbooks write (see SNAPSHOT). apply (PostgreSQL pair, keepalived, HAProxy for topology A),
 *    rows written on the primary, `ha-setup uninstall` on a real terminal (a tmux pane): the
 *    uninstall screen lists what each host gets back and asks once; y runs it in the run view.
 *    Every host is as before apply
 *    (the differences are printed when not). The standby was never promoted on the way out.
 *    PostgreSQL is stopped and disabled by design (as it was before apply here; the packages and
 *    data stay): started by the test, both nodes still hold the rows. A second uninstall plans
 *    nothing.
 * 2. apply again (the data is still there), `uninstall --purge-data <wrong name>` is refused in
 *    one line and changes nothing (the primary keeps running, same postmaster), `uninstall
 *    --purge-data <cluster name>` deletes both data directories and leaves the hosts as before.
 *
 * Not part of what is compared: /var/lib/ha-setup, which keeps the backups of the files apply
 * replaced on purpose (asserted separately: nothing else is there); nft packet counters;
 * systemd-timedated, which timedatectl (the facts runbook) starts on the bus and which exits
 * when idle.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stripVTControlCharacters } from 'node:util';
import { parse } from 'yaml';
import { useLab, type Lab, writeLabTable } from '../helpers/lab.js';
import { waitFor } from '../../source/lab/exec.js';

const fixture = useLab({ hosts: 4 });

const CLUSTER = 'lab-uninstall';
const SERVERS = { db_primary: '198.18.0.11', db_standby: '198.18.0.12', lb: '198.18.0.13', app1: '198.18.0.14' } as const;
type Role = keyof typeof SERVERS;
const ROLES = Object.keys(SERVERS) as Role[];
const VIP = '198.18.0.100';
const RUNBOOKS = 'facts,os-prep,pg-primary,pg-ssl,pg-users,pg-standby,pg-verify,keepalived,haproxy';
const UNIT = 'postgresql@15-main';
const DATA = '/var/lib/postgresql/15/main';

/** Where the runbooks write (from their code: pg-*, keepalived, haproxy, facts, os-prep, nfs). */
const PATHS = [
  '/etc/postgresql',
  '/etc/keepalived',
  '/etc/haproxy',
  '/etc/ha-setup',
  '/usr/local/lib/ha-setup',
  '/usr/local/libexec/ha-setup',
  '/etc/systemd/system',
  '/etc/sysctl.d',
  '/etc/ufw',
  '/etc/nftables.conf',
  '/etc/hosts',
  '/etc/fstab',
  '/root/.ssh',
  '/run/ha-setup-keepalived',
  '/etc/exports.d',
  '/etc/ganesha',
  '/etc/apt/sources.list.d',
  // The postgres user's home (passfile, clone marks); its data directories are not compared.
  '/var/lib/postgresql',
];

const SNAPSHOT = [
  "systemctl list-units --type=service,timer,socket,path --state=active --no-legend --plain | awk '{print \"active \" $1}' | grep -Ev '^active (user@|user-runtime-dir@|session-|systemd-timedated)' | sort",
  "systemctl list-unit-files --state=enabled --no-legend | awk '{print \"enabled \" $1}' | sort",
  // Enabled by the Debian generator or by hand, which list-unit-files does not show for template instances.
  `for u in ${UNIT} postgresql keepalived haproxy ufw nftables; do echo "unit $u $(systemctl is-active $u 2>/dev/null || true) $(systemctl is-enabled $u 2>/dev/null || true)"; done`,
  "ss -Hltnu | awk '{print \"listen \" $1 \" \" $5}' | sort -u",
  `for p in ${PATHS.join(' ')}; do`,
  '  [ -e "$p" ] || continue',
  "  find \"$p\" -path '/var/lib/postgresql/*/main' -prune -o -printf '%y %m %u:%g %p\\n' | while read -r y m o f; do",
  '    if [ "$y" = f ]; then echo "file $f $m $o $(sha256sum < "$f" | cut -c1-16)"; else echo "$y $f $m $o"; fi',
  '  done',
  'done | sort',
  'if command -v ufw >/dev/null; then ufw status verbose | sed "s/^/ufw /"; fi',
  "nft list ruleset | sed -E 's/counter packets [0-9]+ bytes [0-9]+/counter/; s/^/nft /'",
  'iptables -S | sed "s/^/iptables /"',
  'ip -o -4 addr show | awk \'{print "addr " $2 " " $4}\'',
].join('\n');

const state: { home?: string; table?: string; before?: Map<Role, string>; uninstalled?: boolean; tty?: Terminal } = {};
after(() => {
  state.tty?.close();
  if (state.home) rmSync(state.home, { recursive: true, force: true });
});

const CLI = fileURLToPath(new URL('../../../bin/ha-setup.js', import.meta.url));
const hasTmux = spawnSync('tmux', ['-V']).status === 0;

/** A real terminal: a tmux server of its own, one 160x60 pane running one command. */
class Terminal {
  constructor(readonly dir: string) {}
  private tmux(args: string[], env: NodeJS.ProcessEnv = { PATH: process.env.PATH, LC_ALL: 'C.UTF-8' }): string {
    const r = spawnSync('tmux', ['-u', '-S', join(this.dir, 'tmux.sock'), '-f', '/dev/null', ...args], { env, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`tmux ${args[0]}: ${r.stderr.trim()}`);
    return r.stdout;
  }
  start(command: string, env: NodeJS.ProcessEnv): void {
    const go = join(this.dir, 'go');
    // The exit status goes to a file: tmux may report a dead pane before (or without) its status.
    this.tmux(['new-session', '-d', '-s', 'u', '-x', '160', '-y', '60', `while [ ! -e ${go} ]; do sleep 0.05; done; ${command}; echo $? > ${join(this.dir, 'exit')}`], env);
    this.tmux(['set-option', '-t', 'u', 'remain-on-exit', 'on']);
    this.tmux(['pipe-pane', '-t', 'u', '-o', `cat >> ${join(this.dir, 'pane.raw')}`]);
    writeFileSync(go, '');
  }
  screen(): string {
    return this.tmux(['capture-pane', '-p', '-t', 'u']);
  }
  /** Everything drawn so far, without escape sequences. */
  drawn(): string {
    const raw = join(this.dir, 'pane.raw');
    return existsSync(raw) ? stripVTControlCharacters(readFileSync(raw, 'utf8')) : '';
  }
  keys(...keys: string[]): void {
    this.tmux(['send-keys', '-t', 'u', ...keys]);
  }
  exit(): number | undefined {
    const file = join(this.dir, 'exit');
    const text = existsSync(file) ? readFileSync(file, 'utf8').trim() : '';
    return /^\d+$/.test(text) ? Number(text) : undefined;
  }
  async waitFor(re: RegExp, timeoutMs: number): Promise<string> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const screen = this.screen();
      if (re.test(screen)) return screen;
      if (this.exit() !== undefined || Date.now() > end) throw new Error(`waiting for ${re}: ${this.exit() !== undefined ? `exited (${this.exit()})` : 'timed out'}; the pane:\n${screen}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  async waitExit(timeoutMs: number): Promise<number> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const code = this.exit();
      if (code !== undefined) return code;
      if (Date.now() > end) throw new Error(`still running after ${timeoutMs / 1000} s; the pane:\n${this.screen()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  close(): void {
    spawnSync('tmux', ['-S', join(this.dir, 'tmux.sock'), 'kill-server']);
  }
}

/** `ha-setup uninstall` without --yes on a real terminal: the screen, checked, then y. */
async function uninstallOnScreen(lab: Lab, table: string, t: { diagnostic(s: string): void }): Promise<void> {
  const tty = new Terminal(mkdtempSync(join(state.home!, 'tty-')));
  state.tty = tty;
  const env: NodeJS.ProcessEnv = { ...lab.env, TERM: 'xterm-256color', LC_ALL: 'C.UTF-8', NO_COLOR: '1' };
  for (const k of Object.keys(env)) if (k === 'CI' || k === 'CONTINUOUS_INTEGRATION' || k.startsWith('CI_')) delete env[k];
  const t0 = Date.now();
  tty.start(`${process.execPath} ${CLI} uninstall --config ${table}`, env);
  const screen = await tty.waitFor(/^Uninstall lab-uninstall\?$/m, 60_000);
  t.diagnostic(`the uninstall screen, ${((Date.now() - t0) / 1000).toFixed(1)} s after the start:\n${screen.trimEnd()}`);
  // What the lab's hosts get back, as the screen lists it (the exact frames: test/ui/uninstall-screen.test.tsx).
  for (const want of [
    /^db_primary\n {2}stop, disable keepalived\n {16}postgresql@15-main\n {2}restore {7}\/etc\/postgresql\/15\/main\/pg_hba\.conf\n {2}remove {8}\/etc\/keepalived\/keepalived\.conf$/m,
    /^ {2}delete rule {3}ufw: allow proto tcp from 198\.18\.0\.12 to any port 5432 \(ha-setup-pg\)\n {16}ufw: allow proto tcp from 198\.18\.0\.14 to any port 5432 \(ha-setup-pg\)\n {16}ufw: allow proto vrrp from 198\.18\.0\.12 to any \(ha-setup-vrrp\)$/m,
    /^ {2}data kept {5}\/var\/lib\/postgresql\/15\/main$/m,
    /^lb\n {2}stop, disable haproxy\n {2}restore {7}\/etc\/haproxy\/haproxy\.cfg$/m,
    /^ {2}delete rule {3}ufw: allow proto tcp from any to any port 8181 \(ha-setup-haproxy\)$/m,
    /^app1\n {2}remove {8}\/etc\/ha-setup$/m,
    /^y\/enter uninstall · p also delete the data · n\/esc cancel$/m,
  ]) {
    assert.match(screen, want);
  }
  tty.keys('y');
  const code = await tty.waitExit(120_000);
  const drawn = tty.drawn();
  assert.equal(code, 0, drawn.slice(-3000));
  assert.match(drawn, /✓ Done: \d+ changed, \d+ unchanged, 0 failed in /);
  t.diagnostic(`uninstall on the terminal: ${((Date.now() - t0) / 1000).toFixed(1)} s in all`);
}

function setup(lab: Lab): string {
  if (state.table) return state.table;
  state.home = mkdtempSync(join(tmpdir(), 'ha-uninstall-home-'));
  lab.env.HA_SETUP_HOME = state.home;
  state.table = writeLabTable(lab, join(state.home, 'uninstall.yaml'), {
    cluster: CLUSTER,
    servers: { ...SERVERS, db_vip: VIP },
    network: true,
    options: { postgres: { version: 15 } },
  });
  return state.table;
}

const on = (lab: Lab, role: Role) => lab.host(SERVERS[role]);
const out = (r: { stdout: string; stderr: string }): string => `${r.stdout}\n${r.stderr}`;
const psql = (sql: string) => `cd / && runuser -u postgres -- psql -X -At -q -v ON_ERROR_STOP=1 -d lunadirectordb -c "${sql}"`;

async function snapshots(lab: Lab): Promise<Map<Role, string>> {
  const all = await Promise.all(ROLES.map((r) => lab.sh(on(lab, r), SNAPSHOT)));
  return new Map(ROLES.map((r, i) => [r, all[i]!]));
}

/** Lines only before (-) or only after (+), per host, in order. */
function differences(before: Map<Role, string>, now: Map<Role, string>): string[] {
  const diffs: string[] = [];
  for (const role of ROLES) {
    const b = before.get(role)!.trim().split('\n');
    const a = now.get(role)!.trim().split('\n');
    const bs = new Set(b);
    const as = new Set(a);
    for (const l of b) if (!as.has(l)) diffs.push(`${role} - ${l}`);
    for (const l of a) if (!bs.has(l)) diffs.push(`${role} + ${l}`);
  }
  return diffs;
}

function assertAsBefore(t: { diagnostic(s: string): void }, what: string, before: Map<Role, string>, now: Map<Role, string>): void {
  const diffs = differences(before, now);
  if (diffs.length) t.diagnostic(`${what}: differences from before apply (- before, + now):\n${diffs.join('\n')}`);
  assert.deepEqual(diffs, [], `${what}: every host as before apply (see the diagnostic)`);
}

async function planIsEmpty(lab: Lab, table: string): Promise<void> {
  const plan = await lab.cli(['plan', '--config', table, '--runbook', 'uninstall', '--json']);
  assert.equal(plan.code, 0, plan.stderr);
  const data = JSON.parse(plan.stdout) as { hosts: Record<string, { steps: { id: string; status: string; reason?: string }[] }> };
  assert.deepEqual(Object.keys(data.hosts).sort(), [...ROLES].sort());
  for (const [h, v] of Object.entries(data.hosts)) for (const s of v.steps) assert.equal(s.status, 'skip', `${h} ${s.id}: a second uninstall would change something (${s.reason})`);
}

test('apply, then uninstall: services, ports, files and firewall as before apply; the data kept; a second uninstall plans nothing', { timeout: 300_000 }, async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  const table = setup(lab);

  const ufw = ['set -e', 'export DEBIAN_FRONTEND=noninteractive', 'apt-get update -qq', 'apt-get install -y -qq ufw >/dev/null 2>&1', 'ufw allow 22/tcp >/dev/null', 'ufw --force enable >/dev/null', 'ufw status | head -n 1'];
  for (const s of await Promise.all((['db_primary', 'db_standby', 'lb'] as const).map((r) => lab.sh(on(lab, r), ufw.join('\n'), { timeoutMs: 180_000 })))) assert.equal(s.trim(), 'Status: active');

  const before = await snapshots(lab);
  state.before = before;
  const applied = await lab.cli(['apply', '--config', table, '--yes', '--runbook', RUNBOOKS]);
  t.diagnostic(`apply: ${(applied.ms / 1000).toFixed(1)} s`);
  assert.equal(applied.code, 0, out(applied));

  // The stack runs, so the way back has something to undo.
  assert.equal((await lab.sh(on(lab, 'lb'), 'systemctl is-active haproxy; ufw status | grep -c ha-setup-haproxy')).trim(), 'active\n2');
  for (const r of ['db_primary', 'db_standby'] as const) {
    assert.equal((await lab.sh(on(lab, r), `systemctl is-active keepalived ${UNIT}; ufw status | grep -c 'ha-setup-'`)).trim(), 'active\nactive\n3', r);
  }
  assert.match(await lab.sh(on(lab, 'db_primary'), 'ip -o addr show'), new RegExp(` ${VIP.replace(/\./g, '\\.')}/`));
  assert.ok(differences(before, await snapshots(lab)).length > 20, 'apply changed the hosts');

  // Rows written before the uninstall, on the standby too.
  assert.equal((await lab.sh(on(lab, 'db_primary'), psql('create table kept_rows (n int); insert into kept_rows select generate_series(1, 100); select count(*) from kept_rows'))).trim(), '100');
  assert.ok(await waitFor(async () => (await lab.ssh(on(lab, 'db_standby'), psql('select count(*) from kept_rows'))).stdout.trim() === '100', 10_000, 200), 'the rows reached the standby');

  if (hasTmux) await uninstallOnScreen(lab, table, t);
  else {
    t.diagnostic('tmux is not installed (bash scripts/host-setup.sh installs it): uninstall runs with --yes, the screen is not exercised here');
    const un = await lab.cli(['uninstall', '--config', table, '--yes']);
    assert.equal(un.code, 0, out(un));
  }
  assertAsBefore(t, 'after uninstall', before, await snapshots(lab));
  // app1 had no file replaced, so no backup either.
  for (const r of ROLES) {
    assert.equal((await lab.sh(on(lab, r), 'ls -A /var/lib/ha-setup 2>/dev/null || true')).trim(), r === 'app1' ? '' : 'backups', `${r}: /var/lib/ha-setup holds only the backups`);
  }

  // On the way out nothing failed over: the standby's keepalived stopped first, it is a standby still.
  const standbyLog = await lab.sh(on(lab, 'db_standby'), `journalctl -t ha-setup-keepalived -o cat --no-pager; test -f ${DATA}/standby.signal && echo STANDBY-SIGNAL`);
  assert.doesNotMatch(standbyLog, /PROMOT/);
  assert.match(standbyLog, /STANDBY-SIGNAL\n$/);
  // The primary's keepalived, stopped by uninstall (marked so), fenced nothing: nobody could take over.
  const primaryLog = (await lab.sh(on(lab, 'db_primary'), 'journalctl -t ha-setup-keepalived -o cat --no-pager | tail -n 3')).trim();
  t.diagnostic(`db_primary's keepalived on its way out: ${primaryLog.replace(/\n/g, ' | ')}`);
  assert.match(primaryLog, /STOP: ha-setup uninstall stops keepalived on both nodes/);
  assert.doesNotMatch(primaryLog, /FENCING/);

  // A second uninstall plans nothing.
  await planIsEmpty(lab, table);

  // PostgreSQL is left stopped and disabled by design (packages and data stay): started here,
  // for the check only, both nodes hold the rows; then stopped again, as before apply.
  for (const r of ['db_primary', 'db_standby'] as const) {
    assert.equal((await lab.sh(on(lab, r), `systemctl is-active ${UNIT} || true`)).trim(), 'inactive', r);
    const rows = await lab.sh(on(lab, r), `systemctl start ${UNIT}\nfor i in $(seq 1 50); do ${psql('select 1')} >/dev/null 2>&1 && break; sleep 0.2; done\n${psql('select count(*), pg_is_in_recovery() from kept_rows')}\nsystemctl stop ${UNIT}`);
    assert.equal(rows.trim(), r === 'db_primary' ? '100|f' : '100|t', `${r}: the rows are kept`);
  }
  assertAsBefore(t, 'after the data check', before, await snapshots(lab));
  state.uninstalled = true;
});

test('purge: a wrong cluster name is refused in one line and changes nothing; the right one deletes the data directories', { timeout: 300_000 }, async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  if (!state.before || !state.uninstalled) return t.skip('the first test did not pass');
  const table = setup(lab);

  const again = await lab.cli(['apply', '--config', table, '--yes', '--runbook', RUNBOOKS]);
  t.diagnostic(`apply after uninstall: ${(again.ms / 1000).toFixed(1)} s`);
  assert.equal(again.code, 0, out(again));
  assert.equal((await lab.sh(on(lab, 'db_primary'), psql('select count(*) from kept_rows'))).trim(), '100', 'apply after uninstall: the data is still there');

  const applied = await snapshots(lab);
  const pid = async () => (await lab.sh(on(lab, 'db_primary'), `head -n 1 ${DATA}/postmaster.pid`)).trim();
  const pidBefore = await pid();
  const wrong = await lab.cli(['uninstall', '--config', table, '--yes', '--purge-data', 'lab']);
  assert.equal(wrong.code, 2, out(wrong));
  assert.equal(wrong.stdout, '');
  assert.equal(
    wrong.stderr,
    `ha-setup uninstall: --purge-data "lab" does not match the cluster name "${CLUSTER}": type the cluster's name to confirm deleting its data directories, or leave --purge-data out to keep the data\n`,
  );
  const diffs = differences(applied, await snapshots(lab));
  if (diffs.length) t.diagnostic(`after the refused purge (- before it, + now):\n${diffs.join('\n')}`);
  assert.deepEqual(diffs, [], 'a refused purge changes nothing');
  assert.equal(await pid(), pidBefore, 'the primary kept running (same postmaster)');
  assert.equal((await lab.sh(on(lab, 'db_primary'), psql('select count(*) from kept_rows'))).trim(), '100');

  const purged = await lab.cli(['uninstall', '--config', table, '--yes', '--purge-data', CLUSTER]);
  assert.equal(purged.code, 0, out(purged));
  assert.match(purged.stderr, new RegExp(`^Data directories of cluster ${CLUSTER} WILL BE DELETED \\(--purge-data\\)\\.$`, 'm'));
  for (const r of ['db_primary', 'db_standby'] as const) {
    assert.match(purged.stdout, new RegExp(`\\[${r}\\] \\$ delete the data directory ${DATA} \\(--purge-data\\)`));
    assert.equal((await lab.ssh(on(lab, r), `test -e ${DATA}`)).code, 1, `${r}: ${DATA} is deleted`);
  }
  assertAsBefore(t, 'after uninstall --purge-data', state.before, await snapshots(lab));
});
