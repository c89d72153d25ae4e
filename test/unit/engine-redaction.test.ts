import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { runRunbooks } from '../../source/engine/runner.js';
import { SecretStore } from '../../source/engine/secrets.js';
import { heredoc } from '../../source/engine/shell.js';
import { defineStep, planOf, type Runbook } from '../../source/engine/step.js';
import type { EngineEvent } from '../../source/engine/events.js';
import { clusterDir } from '../../source/paths.js';
import { FakePool, fakeInventory, tempHome } from '../helpers/fake-transport.js';

test('a secret in a heredoc, echoed to stderr by a failing command, appears nowhere: events, transcript, error', async () => {
  const { env } = tempHome();
  // Real bash runs the script: the secret really goes through stdin and back out on stderr.
  const pool = new FakePool({ localBash: true });
  const step = defineStep({
    id: 'set-password',
    title: 'Set the replication password',
    targets: () => ['db_primary'],
    facts: {},
    plan: (_f, ctx) => {
      const pw = ctx.secret('postgres_replicator');
      const doc = heredoc(`ALTER ROLE replicator PASSWORD '${pw.reveal()}';`);
      return planOf(
        { kind: 'run', title: `Set password (${pw.reveal()})`, script: `cat >&2 ${doc.open}\n${doc.body}\necho "psql: error near ${pw.reveal()}" >&2\nexit 3` },
        { kind: 'write', path: '/etc/app/db.env', content: `DB_PASSWORD=${pw.reveal()}\n`, mode: 0o600, owner: 'app', previous: `DB_PASSWORD=${pw.reveal()}x\n` },
      );
    },
  });
  const rb: Runbook = { id: 'postgres', title: '', description: '', steps: [step] };
  const events: EngineEvent[] = [];
  const inventory = fakeInventory({ db_primary: '198.18.0.11' });
  const planRun = await runRunbooks({ mode: 'plan', runbooks: [rb], inventory, transport: pool.transport, events: (e) => events.push(e), env, resumeCommand: 'x' });
  const res = await runRunbooks({ mode: 'apply', runbooks: [rb], inventory, transport: pool.transport, events: (e) => events.push(e), env, resumeCommand: 'x' });
  assert.equal(planRun.ok, true);
  assert.equal(res.ok, false);

  const secret = new SecretStore(clusterDir('test', env)).get('postgres_replicator');
  const value = secret.reveal();
  assert.equal(value.length, 24);
  // The command really printed the secret (the fake ran real bash).
  const sent = pool.get('db_primary').execs.at(-1)!.script;
  assert.ok(sent.includes(value), 'the real script carries the secret (on stdin, not argv)');

  const all = JSON.stringify(events);
  assert.ok(!all.includes(value), 'no event holds the value');
  assert.ok(all.includes(secret.masked));
  const failed = events.find((e) => e.type === 'step-failed');
  assert.ok(failed && failed.type === 'step-failed');
  assert.equal(failed.error, `"Set password (${secret.masked})" failed with exit code 3: ALTER ROLE replicator PASSWORD '${secret.masked}'; | psql: error near ${secret.masked}`);
  assert.deepEqual(failed.lastLines, [`stderr: ALTER ROLE replicator PASSWORD '${secret.masked}';`, `stderr: psql: error near ${secret.masked}`]);
  const planned = events.find((e) => e.type === 'step-planned');
  assert.ok(planned && planned.type === 'step-planned');
  assert.match(planned.diffs[0]!.diff, new RegExp(`-DB_PASSWORD=<postgres_replicator: 24 characters>x\n\\+DB_PASSWORD=<postgres_replicator: 24 characters>\n`));

  for (const path of [planRun.transcriptPath, res.transcriptPath]) {
    const text = readFileSync(path, 'utf8');
    assert.ok(!text.includes(value), `transcript ${path} holds no value`);
    assert.ok(text.includes(secret.masked));
  }
});
