/**
 * Resume after `kill -9` (issue 7, proof 2), on a 3-host lab (the DB pair, and 198.18.0.13 as
 * app1, as in keepalived.test.ts): `ha-setup apply --config <table> --yes` of the PostgreSQL
 * runbooks is killed with SIGKILL while the standby is being cloned (its pg_basebackup command
 * has started on db_standby, seen in the run's live output and on the server); then the same
 * command again:
 *  - it says it resumes at the interrupted step (pg-standby.clone on db_standby) and completes;
 *  - every step that was done before the kill (its checkpoint) ran no command and wrote no file
 *    the second time: verified, not redone; across both transcripts, the only host step that
 *    ran commands twice is the one the kill interrupted;
 *  - the standby streams from the primary afterwards (asserted on both servers).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { useLab, type Lab, writeLabTable } from '../helpers/lab.js';
import { pgLocal } from '../helpers/pg.js';
import { waitFor } from '../../source/lab/exec.js';
import type { Checkpoints } from '../../source/engine/checkpoint.js';

const fixture = useLab({ hosts: 3 });
const CLI = fileURLToPath(new URL('../../../bin/ha-setup.js', import.meta.url));
const CLUSTER = 'resume';
const VIP = '198.18.0.100';
const PG = 'facts,os-prep,pg-primary,pg-ssl,pg-users,pg-standby,pg-verify';
const CLONE = 'pg-standby.clone';

function table(lab: Lab): string {
  const dir = mkdtempSync(join(tmpdir(), 'ha-resume-'));
  lab.env.HA_SETUP_HOME = join(dir, 'home');
  return writeLabTable(lab, join(dir, 'resume.yaml'), {
    cluster: CLUSTER,
    servers: { db_primary: lab.host('db_primary').address, db_standby: lab.host('db_standby').address, db_vip: VIP, app1: lab.host('nfs_primary').address },
    network: true,
    options: { postgres: { version: 15 } },
  });
}

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `ha-setup <args>`; `killWhen` sees every stdout line and may return a promise: when it
 * resolves true, the tool gets SIGKILL (kill -9). Resolves when the process is gone.
 */
function cli(lab: Lab, args: string[], killWhen?: (line: string) => Promise<boolean> | undefined): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: lab.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let partial = '';
    let armed = Boolean(killWhen);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      partial += d.toString();
      const lines = partial.split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        const decision = armed ? killWhen!(line) : undefined;
        if (decision) {
          armed = false;
          void decision.then((kill) => {
            if (kill && child.exitCode === null) child.kill('SIGKILL');
          });
        }
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 10 * 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Per transcript: the host steps that ran a command or changed a file, and each host step's result line. */
function transcriptActions(path: string): { acted: Set<string>; results: Map<string, string>; finished: boolean; text: string } {
  const text = readFileSync(path, 'utf8');
  const acted = new Set<string>();
  const results = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\d{4}-\S+Z \[(\S+)\] (\S+) (command|write|done|FAILED)(.*)$/.exec(line);
    if (!m) continue;
    const [, host, step, kind, rest] = m;
    const key = `${step}@${host}`;
    if (kind === 'command') acted.add(key);
    else if (kind === 'write' && / changed \(\d+ bytes\)/.test(rest!)) acted.add(key);
    else if (kind === 'done' || kind === 'FAILED') results.set(key, `${kind}${rest}`);
  }
  return { acted, results, finished: /^finished: /m.test(text), text };
}

/** The transcript lines of one host step (`step@host`): what it ran, for failure messages. */
function stepLines(text: string, key: string): string {
  const [step, host] = key.split('@');
  return text
    .split('\n')
    .filter((l) => l.includes(`[${host}] ${step} `) && !/ fact: /.test(l))
    .join('\n');
}

const transcriptOf = (r: Run): string => {
  const m = /^transcript: (\S+\.log)$/m.exec(r.stdout);
  assert.ok(m, `no transcript path in the output:\n${r.stdout.slice(0, 1500)}`);
  return m[1]!;
};

test('kill -9 during the standby clone, then the same command: it resumes there, redoes nothing done, and the standby streams', { timeout: 15 * 60_000 }, async (t) => {
  const lab = fixture.get(t);
  if (!lab) return;
  const file = table(lab);
  const args = ['apply', '--config', file, '--yes', '--runbook', PG];

  // 1. The first run, killed once pg_basebackup has started on db_standby.
  let basebackupSeen = false;
  const first = await cli(lab, args, (line) => {
    if (!/^\[db_standby\] \$ pg_basebackup from db_primary/.test(line)) return undefined;
    return (async () => {
      // The command is on its way: wait (briefly) until the server runs it, then kill.
      basebackupSeen = await waitFor(async () => (await lab.ssh('db_standby', 'pgrep -x pg_basebackup >/dev/null && echo yes || true')).stdout.trim() === 'yes', 5000, 50);
      return true;
    })();
  });
  t.diagnostic(`killed: signal ${first.signal}, pg_basebackup seen running on db_standby: ${basebackupSeen}`);
  assert.equal(first.signal, 'SIGKILL', `the tool was not killed (exit ${first.code}):\n${first.stdout}\n${first.stderr}`);
  assert.match(first.stdout, /^▸ pg-standby\.clone: /m);
  const killedPath = transcriptOf(first);
  const killed = transcriptActions(killedPath);
  assert.equal(killed.finished, false, 'the killed run never finished its transcript');
  assert.match(killed.text, /\[db_standby\] pg-standby\.clone command: pg_basebackup from db_primary/);

  // What the checkpoints say was done before the kill: every step up to the clone, not the clone.
  const cpFile = join(lab.env.HA_SETUP_HOME!, 'clusters', CLUSTER, 'checkpoints.json');
  const cp = JSON.parse(readFileSync(cpFile, 'utf8')) as Checkpoints;
  const doneBefore = new Set<string>();
  for (const [step, hosts] of Object.entries(cp.steps)) for (const [host, rec] of Object.entries(hosts)) if (rec.status === 'done') doneBefore.add(`${step}@${host}`);
  assert.equal(cp.steps[CLONE]?.db_standby, undefined, 'the clone has no checkpoint (it was interrupted)');
  for (const key of ['os-facts@db_primary', 'cluster-marker@app1', 'pg-primary.slot@db_primary', 'pg-users.hba@db_standby', 'pg-standby.passfile@db_primary', 'pg-standby.passfile@db_standby']) {
    assert.ok(doneBefore.has(key), `${key} was done before the kill (checkpoints: ${[...doneBefore].join(' ')})`);
  }
  // Those steps did their work in the killed run (a fresh lab): the second run must not repeat it.
  assert.ok([...doneBefore].some((k) => killed.acted.has(k)), 'the killed run changed things before the clone');

  // 2. The same command again. The three checks below are subtests so that each is reported.
  const second = await cli(lab, args);
  let resumed: ReturnType<typeof transcriptActions> | undefined;
  await t.test('the re-run says it resumes at the interrupted step, and completes', () => {
    assert.equal(second.code, 0, `${second.stdout}\n${second.stderr}`);
    assert.match(
      second.stderr,
      /The last run of resume stopped at Clone the primary into the standby \(pg_basebackup\) and stream from it \(pg-standby\.clone\), interrupted on db_standby at [^:]+:\d\d UTC: resuming there \(steps already done are re-checked, not redone\)\./,
    );
    assert.match(second.stdout, /✓ Done in [\dm.s]+: \d+ host steps? changed, \d+ unchanged\./, second.stdout.slice(-3000));
    resumed = transcriptActions(transcriptOf(second));
    assert.equal(resumed.finished, true);
  });

  // Nothing that was done before the kill was applied again: no command, no changed file, and
  // its result says it was verified against its checkpoint.
  await t.test('steps done before the kill are verified, not redone (transcripts)', () => {
    const again = resumed;
    assert.ok(again, 'the re-run has a transcript');
    for (const key of doneBefore) {
      assert.equal(again.acted.has(key), false, `${key} ran commands again after the resume:\n${stepLines(again.text, key)}`);
      assert.match(again.results.get(key) ?? '(no result)', /^done \(no change\): verified \(checkpoint\)/, key);
    }
    const twice = [...killed.acted].filter((k) => again.acted.has(k));
    assert.deepEqual(twice, [`${CLONE}@db_standby`], 'only the interrupted step ran commands in both runs');
    assert.match(again.results.get(`${CLONE}@db_standby`) ?? '', /^done \(changed\)/);
  });

  // 3. The servers: the standby streams from the primary; no clone left half done.
  await t.test('the standby streams from the primary; no clone left half done', async () => {
    const primary = lab.host('db_primary').address;
    const standby = lab.host('db_standby').address;
    assert.equal(await pgLocal(lab, 'db_primary', 'select host(client_addr), state from pg_stat_replication;'), `${standby}|streaming\n`);
    assert.equal(await pgLocal(lab, 'db_standby', 'select status, sender_host, pg_is_in_recovery() from pg_stat_wal_receiver;'), `streaming|${primary}|t\n`);
    assert.equal((await lab.ssh('db_standby', 'pgrep -x pg_basebackup')).code, 1, 'no pg_basebackup left running');
    assert.equal((await lab.ssh('db_standby', 'test -e /var/lib/postgresql/15/ha-setup-clone-in-progress')).code, 1, 'the clone marker is gone');
    const ids = await Promise.all(['db_primary', 'db_standby'].map((h) => pgLocal(lab, h, 'select system_identifier from pg_control_system();')));
    assert.equal(ids[1], ids[0], 'the standby is a clone of the primary');
  });
});
