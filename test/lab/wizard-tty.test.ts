/**
 * The guided flow on a real terminal (issue 7, proof 3): `node bin/ha-setup.js` runs in a tmux
 * pane (a real PTY, 160x60) and is driven with keystrokes, as a new user would, from an empty
 * HA_SETUP_HOME and an empty ~/.ssh/known_hosts (HOME is a temporary directory holding only the
 * lab's key as ~/.ssh/id_ed25519) to a finished run on the lab, checking each screen by its text:
 * cluster name -> topology -> server table (typed in, with an inline error fixed on the way) ->
 * review -> saved -> connectivity check (every host's unknown host key asked with its SHA256
 * fingerprint, compared with the lab's own keys, and trusted with y) -> runbook choice (facts,
 * os-prep and the PostgreSQL runbooks) -> plan review (a host expanded) -> run -> summary; then
 * the servers are checked over OpenSSH for what the run did.
 *
 * The lab has the 7 hosts of topology A (`lab up --topology lb`): the wizard saves only a full
 * table (every role and both VIPs), so a smaller lab cannot be entered through it. The runbooks
 * chosen are facts, os-prep and the PostgreSQL ones (the cluster marker on every host, the DB
 * pair with a streaming standby): under a minute in the lab. The NFS runbook is left out: the
 * wizard cannot set options.nfs, and this machine has no kernel NFS (see the lab docs).
 * tmux: `bash scripts/host-setup.sh` installs it.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stripVTControlCharacters } from 'node:util';
import { useLab, type Lab } from '../helpers/lab.js';
import { readCheckpoints } from '../../source/engine/checkpoint.js';
import { pgLocal } from '../helpers/pg.js';
import { RUNBOOKS } from '../../runbooks/index.js';

const fixture = useLab({ topology: 'lb' });
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const CLUSTER = 'wizlab';
const ALIASES = ['db_primary', 'db_standby', 'db_vip', 'nfs_primary', 'nfs_standby', 'nfs_vip', 'app1', 'app2', 'lb'];
const HOSTS = ALIASES.filter((a) => !a.endsWith('_vip'));
const VIPS: Record<string, string> = { db_vip: '198.18.0.100', nfs_vip: '198.18.0.101' };
const hasTmux = spawnSync('tmux', ['-V']).status === 0;
/** The runbooks chosen on the runbook screen: the first seven of the registry. */
const PICKED = ['facts', 'os-prep', 'pg-primary', 'pg-ssl', 'pg-users', 'pg-standby', 'pg-verify'];
const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A tmux server of its own (own socket), one session with one pane running the tool. */
class Terminal {
  readonly sock: string;
  readonly raw: string;
  readonly statusFile: string;
  constructor(readonly dir: string) {
    this.sock = join(dir, 'tmux.sock');
    this.raw = join(dir, 'pane.raw');
    this.statusFile = join(dir, 'exit-status');
  }

  tmux(args: string[], env: NodeJS.ProcessEnv = { PATH: process.env.PATH, LC_ALL: 'C.UTF-8' }): string {
    const r = spawnSync('tmux', ['-u', '-S', this.sock, '-f', '/dev/null', ...args], { env, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`tmux ${args[0]}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** Starts `command` in a 160x60 pane with exactly `env`; the pane's raw output is logged too. */
  start(command: string, env: NodeJS.ProcessEnv): void {
    const go = join(this.dir, 'go');
    // The command waits for `go` so that the raw log is attached before the first byte.
    // The shell records the program's exit status in a file: tmux's pane_dead_status proved
    // unreliable (several runs showed the pane dead with no status, the program gone).
    this.tmux(['new-session', '-d', '-s', 'w', '-x', '160', '-y', '60', `while [ ! -e ${go} ]; do sleep 0.05; done; ${command}; echo $? > ${this.statusFile}`], env);
    this.tmux(['set-option', '-t', 'w', 'remain-on-exit', 'on']);
    this.tmux(['pipe-pane', '-t', 'w', '-o', `cat >> ${this.raw}`]);
    writeFileSync(go, '');
  }

  /** The pane as shown now (no escapes). */
  screen(): string {
    return this.tmux(['capture-pane', '-p', '-t', 'w']);
  }

  /** Everything the program drew so far: its raw output without escape sequences. */
  drawn(): string {
    return existsSync(this.raw) ? stripVTControlCharacters(readFileSync(this.raw, 'utf8')) : '';
  }

  /** One key (a tmux key name). Keys are sent one per screen change, as typed: Ink takes a read
   *  holding several keys for text. */
  keys(key: string): void {
    this.tmux(['send-keys', '-t', 'w', key]);
  }

  type(text: string): void {
    this.tmux(['send-keys', '-t', 'w', '-l', text]);
  }

  /**
   * Waits until the pane shows `re` (or, with where 'drawn', the program ever drew it), then
   * 150 ms more, as a person between seeing a screen and pressing the next key; the match.
   */
  async waitFor(re: RegExp, timeoutMs = 20_000, where: 'screen' | 'drawn' = 'screen'): Promise<RegExpExecArray> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const text = where === 'screen' ? this.screen() : this.drawn();
      const m = re.exec(text);
      if (m) {
        await new Promise((r) => setTimeout(r, 150));
        return m;
      }
      if (this.exit() !== undefined || Date.now() > end) {
        throw new Error(`waiting for ${re} (${where}): ${this.exit() !== undefined ? `the program exited (${this.exit()})` : `timed out after ${timeoutMs / 1000} s`}; the pane:\n${this.screen()}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The program's exit status once it is gone (128 + n when killed by signal n), else undefined. */
  exit(): number | undefined {
    if (!existsSync(this.statusFile)) return undefined;
    const text = readFileSync(this.statusFile, 'utf8').trim();
    return text === '' ? undefined : Number(text);
  }

  /** Ends the tmux server (and the program, if it still runs). */
  close(): void {
    if (existsSync(this.sock)) spawnSync('tmux', ['-S', this.sock, 'kill-server']);
  }
}

const terminals: Terminal[] = [];
after(() => terminals.forEach((t) => t.close()));

/** The SHA256 fingerprint of a host's key of this type, from the lab's own known_hosts. */
function labFingerprint(lab: Lab, address: string, keyType: string, dir: string): string {
  const line = readFileSync(lab.info.knownHostsFile, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${address} ${keyType} `));
  assert.ok(line, `the lab has no ${keyType} key for ${address}`);
  const one = join(dir, 'one-key');
  writeFileSync(one, `${line}\n`);
  const r = spawnSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', one], { encoding: 'utf8' });
  return r.stdout.split(' ')[1]!;
}

test('the guided flow on a real terminal: empty state -> table -> host keys -> runbooks -> plan -> run -> summary', { skip: !hasTmux && 'tmux is not installed (bash scripts/host-setup.sh installs it)', timeout: 10 * 60_000 }, async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  const dir = mkdtempSync(join(tmpdir(), 'ha-wizard-tty-'));
  const home = join(dir, 'home');
  const state = join(dir, 'state');
  mkdirSync(join(home, '.ssh'), { recursive: true, mode: 0o700 });
  copyFileSync(lab.info.keyFile, join(home, '.ssh', 'id_ed25519'));
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: home, USER: 'root', LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8', TERM: 'xterm-256color', HA_SETUP_HOME: state };
  const term = new Terminal(dir);
  terminals.push(term);
  term.start(`${JSON.stringify(process.execPath)} ${JSON.stringify(join(ROOT, 'bin/ha-setup.js'))}`, env);
  const address = (alias: string) => VIPS[alias] ?? lab.host(alias).address;

  // 1. No saved cluster: the first screen offers a new cluster (selected) or the local lab.
  await term.waitFor(/❯ New cluster/);
  assert.match(term.screen(), /Rehearse on a local lab/);
  term.keys('Enter');
  await term.waitFor(/Cluster name/);
  term.type(CLUSTER);
  await term.waitFor(new RegExp(`Name: ${CLUSTER}`));
  term.keys('Enter');

  // 2. Topology: lb is the first choice.
  await term.waitFor(new RegExp(`Topology of cluster ${CLUSTER}`));
  term.keys('Enter');

  // 3. The server table: every role typed in; enter keeps a value and edits the next one. Like a
  // person, the test types into a field once the screen shows it is being edited (keys typed
  // within a few ms of the enter that moved on land in the wrong field: see the report).
  await term.waitFor(new RegExp(`Servers of cluster ${CLUSTER} · topology lb`));
  term.keys('Enter');
  await term.waitFor(/enter keep, next field/);
  for (const alias of ALIASES) {
    await term.waitFor(new RegExp(`❯ ${alias}\\s`));
    if (alias === 'db_vip') {
      // A typo is flagged on the field while typing, and fixed.
      term.type('198.18.0.256');
      const err = await term.waitFor(/✗ (.*)$/m);
      t.diagnostic(`inline error for 198.18.0.256: ${err[1]}`);
      // One key at a time, as typed (Ink reads several keys that arrive together as text).
      for (const left of ['198.18.0.25', '198.18.0.2', '198.18.0.']) {
        term.keys('BSpace');
        await term.waitFor(new RegExp(`❯ db_vip .*  ${left.replace(/\./g, '\\.')}$`, 'm'));
      }
      term.type('100');
      await term.waitFor(/❯ db_vip .*  198\.18\.0\.100$/m);
      assert.doesNotMatch(term.screen(), /✗ /, 'the error is gone once the address is right');
    } else term.type(address(alias));
    // Enter only once the field shows the address (a read holding text and enter is taken as text).
    await term.waitFor(new RegExp(`❯ ${alias} .*  ${address(alias).replace(/\./g, '\\.')}$`, 'm'));
    term.keys('Enter');
  }
  await term.waitFor(/r review and save/);
  for (const alias of ALIASES) assert.match(term.screen(), new RegExp(`${alias} .*  ${address(alias).replace(/\./g, '\\.')}$`, 'm'), alias);
  term.keys('r');

  // 4. Review, save.
  await term.waitFor(/✓ The table is complete and valid: press s to save it\./);
  term.keys('s');
  const saved = await term.waitFor(new RegExp(`✓ Saved cluster ${CLUSTER} to (\\S+)`));
  assert.ok(saved[1]!.startsWith(state), `saved under HA_SETUP_HOME: ${saved[1]}`);
  term.keys('Enter');

  // 5. The connectivity check: all 7 hosts at once; each unknown host key asked, one at a time.
  await term.waitFor(new RegExp(`Checking 7 hosts of ${CLUSTER}: SSH, OS, sudo, clock`));
  const trusted = new Set<string>();
  while (trusted.size < HOSTS.length) {
    const m = await term.waitFor(/(\d+\.\d+\.\d+\.\d+):22 presents an unknown (\S+) host key:[\s│]*(SHA256:[A-Za-z0-9+/]+)/, 30_000);
    const [, addr, keyType, fingerprint] = m;
    assert.ok(!trusted.has(addr!), `asked twice about ${addr}`);
    assert.equal(fingerprint, labFingerprint(lab, addr!, keyType!, dir), `the fingerprint shown for ${addr}`);
    assert.match(term.screen(), new RegExp(`Trust it and add it to ${join(home, '.ssh', 'known_hosts').replace(/\./g, '\\.')}\\? \\(y/n\\)`));
    term.keys('y');
    trusted.add(addr!);
    // The next question (or the results) replaces this one.
    const end = Date.now() + 10_000;
    while (term.screen().includes(`${addr}:22 presents`) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  }
  await term.waitFor(/✓ All 7 hosts are ready/, 60_000);
  const check = term.screen();
  for (const alias of HOSTS) {
    assert.match(check, new RegExp(`✓ ${alias} ${address(alias).replace(/\./g, '\\.')}\\s+Debian GNU/Linux 12 \\(bookworm\\) · root · clock [+-]\\d+\\.\\d s`), alias);
  }
  const knownHosts = readFileSync(join(home, '.ssh', 'known_hosts'), 'utf8');
  assert.equal(knownHosts.trim().split('\n').length, HOSTS.length, 'each trusted key was added to ~/.ssh/known_hosts');
  term.keys('Enter');

  // 6. Runbooks: all chosen by default; a: none; then the first seven (facts, os-prep and the
  // PostgreSQL ones), one space and one down at a time.
  await term.waitFor(new RegExp(`Runbooks to run, in this order \\(${RUNBOOKS.length} of ${RUNBOOKS.length} chosen\\)`));
  term.keys('a');
  await term.waitFor(/\(0 of \d+ chosen\)/);
  PICKED.forEach((id, i) => assert.equal(RUNBOOKS[i]!.id, id, 'the registry order'));
  for (let i = 0; i < PICKED.length; i++) {
    const rb = RUNBOOKS[i]!;
    await term.waitFor(new RegExp(`❯ \\[ \\] ${escape(rb.title)} \\(${rb.id}, `));
    term.keys('Space');
    await term.waitFor(new RegExp(`\\(${i + 1} of ${RUNBOOKS.length} chosen\\)`));
    if (i < PICKED.length - 1) term.keys('Down');
  }
  const choice = term.screen();
  for (const rb of RUNBOOKS) {
    const on = PICKED.includes(rb.id) ? 'x' : ' ';
    assert.match(choice, new RegExp(`\\[${on}\\] ${escape(rb.title)} \\(${rb.id}, ${rb.steps.length} steps?\\)`), rb.id);
  }
  term.keys('Enter');

  // 7. The plan, read-only, per host; enter expands the focused host into its steps.
  const plan = await term.waitFor(new RegExp(`Plan for ${CLUSTER}: (\\d+) changes? on (\\d+) hosts?`), 120_000);
  t.diagnostic(`plan: ${plan[0]}`);
  assert.equal(plan[2], '7');
  assert.match(term.drawn(), /Gathering facts and planning \(read-only\)/);
  for (const alias of HOSTS) assert.match(term.screen(), new RegExp(`▸ ${alias}\\s+\\d+ commands?, \\d+ file writes?`), alias);
  term.keys('Enter');
  // An expanded host is taller than the pane: these are looked for in what was drawn.
  await term.waitFor(/❯ ▾ db_primary/, 20_000, 'drawn');
  await term.waitFor(/• Mark each server as a member of this cluster \(\/etc\/ha-setup\/cluster\.json\): \d+ actions?/, 20_000, 'drawn');
  await term.waitFor(/write Record cluster wizlab \(\/etc\/ha-setup\/cluster\.json\)/, 20_000, 'drawn');
  await term.waitFor(/\+hostssl lunadirectordb lunadirector\s+198\.18\.0\.15\/32 scram-sha-256/, 20_000, 'drawn');
  assert.equal((await lab.ssh('db_primary', 'test -e /etc/ha-setup/cluster.json')).code, 1, 'the plan changed nothing');
  term.keys('a');

  // 8. The run, live, then the summary.
  await term.waitFor(new RegExp(`▶ Applying ${PICKED.join(', ')}: \\d+ steps on 7 hosts`), 20_000, 'drawn');
  const doneLine = await term.waitFor(/✓ Done: (\d+) changed, (\d+) unchanged, 0 failed in [\d.ms]+/, 5 * 60_000, 'drawn');
  t.diagnostic(doneLine[0]);
  for (const alias of HOSTS) assert.match(term.drawn(), new RegExp(`✓ Mark each server as a member of this cluster \\(/etc/ha-setup/cluster\\.json\\) · ${alias} changed`), alias);
  await term.waitFor(new RegExp(`✓ ${CLUSTER} is set up`));
  const summary = term.screen();
  assert.match(summary, /\(DB VIP\)\s+198\.18\.0\.100:5432$/m);
  assert.match(summary, /\(NFS VIP\)\s+198\.18\.0\.101:\/\S*$/m);
  assert.match(summary, new RegExp(`Load balancer.*\\s+https://${lab.host('lb').address.replace(/\./g, '\\.')}:8181$`, 'm'));
  assert.ok(summary.includes(join(state, 'clusters', CLUSTER, 'secrets.json')), 'where the secrets are kept');
  for (const cmd of ['status', 'drill', 'uninstall']) assert.match(summary, new RegExp(`ha-setup ${cmd} .*--cluster ${CLUSTER}`), cmd);
  // Enter closes the summary. A key that arrives in the same moment the screen is first drawn
  // can reach the previous screen's input handler (seen once in CI: the program kept showing the
  // summary): like a user, press it again if nothing happened after 3 s; at most three times.
  const end = Date.now() + 15_000;
  for (let presses = 0; term.exit() === undefined && Date.now() < end; ) {
    if (presses < 3 && Date.now() > end - 15_000 + presses * 3000) {
      term.keys('Enter');
      presses++;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  if (term.exit() === undefined) {
    const ps = spawnSync('bash', ['-c', 'for p in $(pgrep -f "bin/ha-setup.js"); do echo "== $p $(cat /proc/$p/wchan 2>/dev/null)"; ls -l /proc/$p/fd 2>/dev/null | sed 1d | awk \'{print $NF}\' | sort | uniq -c; done'], { encoding: 'utf8' });
    t.diagnostic(`still running after enter:\n${ps.stdout}`);
  }
  assert.equal(term.exit(), 0, `enter on the summary ends the program with exit status 0; the pane:\n${term.screen()}`);

  // 9. The servers: what the run did, read over OpenSSH.
  for (const alias of HOSTS) {
    const marker = JSON.parse(await lab.sh(alias, 'cat /etc/ha-setup/cluster.json')) as { cluster?: string };
    assert.equal(marker.cluster, CLUSTER, `${alias}: the cluster marker`);
  }
  // PostgreSQL enabled and running on the DB pair (the lab image has it installed and disabled),
  // the standby streaming from the primary.
  for (const alias of ['db_primary', 'db_standby']) {
    assert.equal((await lab.sh(alias, 'systemctl is-active postgresql@15-main; systemctl is-enabled postgresql@15-main')).trim(), 'active\nenabled', alias);
  }
  assert.equal(await pgLocal(lab, 'db_primary', 'select host(client_addr), state from pg_stat_replication;'), `${lab.host('db_standby').address}|streaming\n`);
  const cp = readCheckpoints(CLUSTER, { HA_SETUP_HOME: state });
  assert.equal(cp.lastRun?.ok, true);
  term.close();
  rmSync(dir, { recursive: true, force: true });
});
