/**
 * Plan fixtures of the PostgreSQL runbooks: facts in -> commands and files out.
 *
 * Each test/fixtures/plans/*.json names an OS, a PostgreSQL version and a firewall, gives the
 * facts of every host (parsed fact values; defaults below fill what a fixture leaves out) and
 * cases: what each step must plan, refuse, or find already done. The RHEL-family fixtures and
 * the versions other than the lab's (Debian 12 + PostgreSQL 15) are proven ONLY here, not on a
 * server: the test names say so.
 *
 * A fixture may refer to what an earlier case wrote ({"$written": path}: the file as the plan
 * wrote it, i.e. after apply), to the SCRAM verifier of a stored secret ({"$scram": name}) and
 * to the sha256 of the replication passfile ({"$passfileSha256": true}).
 *
 * Besides the per-case expectations, every plan of every step on every host of every case is
 * checked for: a reason when empty; no secret in any title, reason, error, file, or in a run
 * script outside its heredoc bodies; every postgresql setting written valid for the version.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { contextOptions, createHostContext, tableOf } from '../../source/engine/context.js';
import { Secret } from '../../source/engine/shell.js';
import type { Action, FactMap, HostContext, Plan, Runbook, Step } from '../../source/engine/step.js';
import { osPrepRunbook } from '../../runbooks/os-prep.js';
import { pgPrimaryRunbook } from '../../runbooks/pg-primary.js';
import { pgSslRunbook } from '../../runbooks/pg-ssl.js';
import { passfileContent, pgStandbyRunbook } from '../../runbooks/pg-standby.js';
import { pgUsersRunbook, scramKeysMd5 } from '../../runbooks/pg-users.js';
import { pgVerifyRunbook } from '../../runbooks/pg-verify.js';
import { ALLOW_DATA_WIPE } from '../../runbooks/lib/options.js';
import { parseConf, RECOVERY_CONF_PARAMS, KNOWN_SETTINGS } from '../../runbooks/lib/pg-settings.js';

export const PG_RUNBOOKS: Runbook[] = [osPrepRunbook, pgPrimaryRunbook, pgSslRunbook, pgUsersRunbook, pgStandbyRunbook, pgVerifyRunbook];
const FIXTURES = new URL('../../../test/fixtures/', import.meta.url);

// ---------------------------------------------------------------------------------------------
// The driver

/** Deterministic secrets, remembered so that the checks can look for them. */
export class TestSecrets {
  readonly issued = new Map<string, Secret>();
  get = (name: string): Secret => {
    let s = this.issued.get(name);
    if (!s) {
      s = new Secret(name, `T${createHash('sha256').update(name).digest('base64url').slice(0, 23)}`);
      this.issued.set(name, s);
    }
    return s;
  };
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
const isObj = (v: unknown): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function deepMerge(base: Json, over: Json | undefined): Json {
  if (over === undefined) return base;
  if (!isObj(base) || !isObj(over) || '$written' in over || '$scram' in over) return over;
  const out: Record<string, Json> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in base ? deepMerge(base[k]!, v) : v;
  return out;
}

interface Fixture {
  title: string;
  proof: string;
  cluster: string;
  options?: Json;
  servers?: Record<string, string | null>;
  defaults?: Record<string, Json>;
  hosts: Record<string, Record<string, Json>>;
  cases: FixtureCase[];
}
interface FixtureCase {
  name: string;
  facts?: Record<string, Record<string, Json>>;
  options?: Json;
  servers?: Record<string, string | null>;
  allowDataWipe?: string;
  /** Every step must plan nothing (with a reason); pg-verify's test runs in verify(), not in the plan. */
  allDone?: boolean;
  expect?: Record<string, Expectation>;
}
type Expectation =
  | { empty: string }
  | { refuses: string }
  | { actions: ActionExpect[]; reason?: string };
interface ActionExpect {
  kind: 'run' | 'write';
  title?: string;
  path?: string;
  mode?: string;
  owner?: string;
  has?: string[];
  lacks?: string[];
}

/** Fact values every host has unless the fixture says otherwise. */
function defaultFacts(address: string, hostname: string): Record<string, Json> {
  return {
    os: { id: 'debian', family: 'debian', versionId: '12', major: 12, prettyName: 'Debian GNU/Linux 12 (bookworm)', hostname, kernel: '6.1.0-18-amd64', init: 'systemd', packageManager: 'apt' },
    prep: { umask: '0022', arch: 'x86_64', codename: 'bookworm', hostname, hostnameResolves: true, hostsFile: `127.0.0.1\tlocalhost\n${address}\t${hostname}\n`, timeSync: 'systemd-timesyncd', container: null, pendingUpdates: 0, rebootRequired: false },
    net: { addresses: [{ iface: 'lo', family: 'inet', address: '127.0.0.1', prefix: 8, scope: 'host' }, { iface: 'eth0', family: 'inet', address, prefix: 24, scope: 'global' }], hostname, fqdn: hostname },
    pkgs: { serverInstalled: true, candidate: null, pgdgRepo: false, clusters: [] },
    pg: {
      family: 'debian', installedVersions: [], binaries: true, dataDirExists: true, dataVersion: null, systemIdentifier: null, clusterState: null, standbyConfigured: false, baseDirs: 3,
      running: false, livePort: null, unitEnabled: 'enabled', includes: [], hba: null, dropIns: { replication: null, ssl: null }, dropInDirExists: false, cloneMarker: null,
      inRecovery: null, serverVersionNum: null, settings: {}, slots: [], replication: [], walReceiver: null, databases: [], roles: [], userTablesInPostgresDb: null, publicCreateInPostgresDb: null,
    },
    peer: { ok: false, error: 'no replication password file yet', systemIdentifier: null, timeline: null, serverVersionNum: null, inHotStandby: null, settings: {} },
    tls: { dirExists: false, key: null, publicKeyPem: null, cert: null, ca: null, now: 1767225600 },
    pf: { exists: false, sha256: null, mode: null, owner: null },
    fw: {
      firewalld: { running: false, defaultZone: '', runtime: [], permanent: [] },
      ufw: { installed: false, active: false, rules: [] },
      nft: { installed: false, serviceEnabled: false, chains: [], sets: [], tables: [], conf: null, ours: null, accept: null },
      iptables: { v4: null, v6: null, persist: null },
    },
    se: { mode: 'absent', semanage: false, postgresPorts: [], archiveDirType: null },
    resolve: {},
    nonlocal: null,
    archive: { exists: false, owner: '-', mode: '' },
  };
}

/** pg.settings in fixtures: "name": "value" (pg_settings.setting, base unit) or a partial row. */
function expandSettings(s: Json): Json {
  if (!isObj(s)) return s;
  const out: Record<string, Json> = {};
  for (const [name, v] of Object.entries(s)) {
    const known = KNOWN_SETTINGS[name];
    const row: Record<string, Json> = { setting: '', unit: known?.unit ?? '', context: known?.context ?? 'sighup', pendingRestart: false, sourcefile: '' };
    out[name] = isObj(v) ? { ...row, ...v } : { ...row, setting: String(v) };
  }
  return out;
}

export interface Loaded {
  fixture: Fixture;
  file: string;
}

interface Outcome {
  stepId: string;
  alias: string;
  plan?: Plan;
  error?: Error;
}

function inventoryFor(fx: Fixture, c: FixtureCase): { cluster: string; servers: Record<string, string>; options: Record<string, unknown> } {
  const y = parseYaml(readFileSync(new URL(fx.cluster, FIXTURES), 'utf8')) as { cluster: string; servers: Record<string, string>; options: Json };
  const servers: Record<string, string> = { ...y.servers };
  for (const [k, v] of Object.entries({ ...fx.servers, ...c.servers })) {
    if (v === null) delete servers[k];
    else servers[k] = v;
  }
  const options = deepMerge(deepMerge(y.options ?? {}, fx.options), c.options) as Record<string, unknown>;
  return { cluster: y.cluster, servers, options };
}

/** Run plan() of every step of the PostgreSQL runbooks on every target, with the case's facts. */
export function runCase(fx: Fixture, c: FixtureCase, written: Map<string, string>, secrets: TestSecrets): { outcomes: Outcome[]; version: number } {
  const inv = inventoryFor(fx, c);
  const version = Number((inv.options.postgres as { version?: number } | undefined)?.version ?? 15);
  const table = tableOf(inv);
  const options: Record<string | symbol, unknown> = contextOptions({ cluster: inv.cluster, options: inv.options });
  if (c.allowDataWipe !== undefined) options[ALLOW_DATA_WIPE] = c.allowDataWipe;
  const ctxOf = (alias: string): HostContext => createHostContext({ host: table.hosts[alias]!, table, options: options as Record<string, unknown>, secret: secrets.get });
  const outcomes: Outcome[] = [];
  for (const rb of PG_RUNBOOKS) {
    for (const step of rb.steps as Step<FactMap>[]) {
      for (const alias of step.targets({ hosts: table.hosts, options: options as Record<string, unknown> })) {
        const host = table.hosts[alias];
        if (!host) continue;
        const ctx = ctxOf(alias);
        const hostname = `${alias.replace(/_/g, '-')}-host`;
        let facts = defaultFacts(host.address, hostname) as Json;
        facts = deepMerge(facts, (fx.defaults ?? {}) as Json);
        facts = deepMerge(facts, (fx.hosts[alias] ?? {}) as Json);
        facts = deepMerge(facts, (c.facts?.[alias] ?? {}) as Json);
        const values = resolvePlaceholders(facts, alias, written, secrets, ctx) as Record<string, Json>;
        if (isObj(values.pg)) values.pg = { ...values.pg, settings: expandSettings(values.pg.settings ?? {}) };
        const defs = typeof step.facts === 'function' ? step.facts(ctx) : step.facts;
        const given: Record<string, unknown> = {};
        for (const key of Object.keys(defs)) {
          if (!(key in values)) throw new Error(`fixture ${fx.title}: no fact "${key}" for ${alias} (step ${step.id})`);
          given[key] = values[key];
        }
        try {
          outcomes.push({ stepId: step.id, alias, plan: step.plan(given as never, ctx) });
        } catch (e) {
          outcomes.push({ stepId: step.id, alias, error: e as Error });
        }
      }
    }
  }
  return { outcomes, version };
}

const SCRAM_SALT = 'c2FsdHNhbHRzYWx0c2FsdA==';

function resolvePlaceholders(v: Json, alias: string, written: Map<string, string>, secrets: TestSecrets, ctx: HostContext): Json {
  if (Array.isArray(v)) return v.map((x) => resolvePlaceholders(x, alias, written, secrets, ctx));
  if (!isObj(v)) return v;
  if (typeof v.$written === 'string') {
    const text = written.get(`${alias}:${v.$written}`);
    if (text === undefined) throw new Error(`no earlier case wrote ${v.$written} on ${alias}`);
    return text;
  }
  if (typeof v.$scram === 'string') {
    return { kind: 'scram', iterations: 4096, salt: SCRAM_SALT, keysMd5: scramKeysMd5(secrets.get(v.$scram).reveal(), SCRAM_SALT, 4096) };
  }
  if (v.$passfileSha256 === true) return createHash('sha256').update(passfileContent(ctx)).digest('hex');
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, resolvePlaceholders(x, alias, written, secrets, ctx)]));
}

// ---------------------------------------------------------------------------------------------
// Checks

/** A run script with its heredoc bodies cut out: what may end up in argv or a ps listing. */
export function withoutHeredocBodies(script: string): string {
  const out: string[] = [];
  let tag: string | null = null;
  for (const line of script.split('\n')) {
    if (tag !== null) {
      if (line === tag) tag = null;
      continue;
    }
    out.push(line);
    const m = /<<'([A-Z0-9_]+)'/.exec(line);
    if (m) tag = m[1]!;
  }
  assert.equal(tag, null, 'a heredoc is not closed');
  return out.join('\n');
}

function assertNoSecrets(o: Outcome, secrets: TestSecrets): void {
  const where = `${o.stepId}@${o.alias}`;
  for (const s of secrets.issued.values()) {
    const v = s.reveal();
    const bad = (text: string | undefined, what: string): void => assert.ok(!text?.includes(v), `${where}: secret ${s.name} appears in ${what}`);
    bad(o.error?.message, 'the error');
    bad(o.plan?.reason, 'the reason');
    for (const a of o.plan?.actions ?? []) {
      bad(a.title, 'a title');
      if (a.kind === 'run') bad(withoutHeredocBodies(a.script), `the command text outside heredocs: ${a.title}`);
      else {
        bad(a.path, 'a file path');
        bad(a.content, `the content of ${a.path}`);
      }
    }
  }
}

/** Settings PostgreSQL no longer (or not yet) accepts, by version: kept apart from KNOWN_SETTINGS on purpose. */
const REJECTED: Record<string, (v: number) => boolean> = {
  checkpoint_segments: () => true,
  wal_keep_segments: (v) => v >= 13,
  wal_keep_size: (v) => v < 13,
  max_slot_wal_keep_size: (v) => v < 13,
  standby_mode: () => true,
  trigger_file: () => true,
  promote_trigger_file: (v) => v >= 16 || v < 12,
  stats_temp_directory: (v) => v >= 15,
  ssl_min_protocol_version: (v) => v < 12,
  primary_conninfo: (v) => v < 12,
  primary_slot_name: (v) => v < 12,
};

function assertSettingsValid(o: Outcome, version: number): void {
  for (const a of o.plan?.actions ?? []) {
    if (a.kind !== 'write') continue;
    if (/\/conf\.d\/[^/]+\.conf$/.test(a.path)) {
      for (const name of parseConf(a.content).keys()) {
        assert.ok(KNOWN_SETTINGS[name], `${o.stepId}@${o.alias}: ${name} in ${a.path} is not a setting ha-setup knows`);
        assert.ok(!REJECTED[name]?.(version), `${o.stepId}@${o.alias}: PostgreSQL ${version} rejects ${name} (${a.path})`);
      }
    }
    if (a.path.endsWith('/recovery.conf')) {
      assert.ok(version <= 11, `${o.stepId}@${o.alias}: recovery.conf written for PostgreSQL ${version} (it refuses to start with one from 12)`);
      for (const name of parseConf(a.content).keys()) assert.ok(RECOVERY_CONF_PARAMS.includes(name), `${name} is not a recovery.conf parameter`);
    }
  }
  for (const a of o.plan?.actions ?? []) {
    if (a.kind !== 'run') continue;
    if (version >= 12) assert.ok(!/recovery\.conf/.test(a.script), `${o.stepId}@${o.alias}: a command mentions recovery.conf on PostgreSQL ${version}`);
    if (/\/bin\/pg_basebackup /.test(a.script)) assert.equal(/ -R\b/.test(a.script), version >= 12, `${o.stepId}@${o.alias}: pg_basebackup -R only from 12`);
  }
}

function matchAction(a: Action, e: ActionExpect, where: string): void {
  assert.equal(a.kind, e.kind, `${where}: kind`);
  if (e.title !== undefined) assert.ok((a.title ?? '').includes(e.title), `${where}: title "${a.title}" lacks "${e.title}"`);
  const text = a.kind === 'run' ? a.script : a.content;
  if (a.kind === 'write') {
    if (e.path !== undefined) assert.equal(a.path, e.path, `${where}: path`);
    if (e.mode !== undefined) assert.equal(`0${a.mode.toString(8)}`, e.mode, `${where}: mode of ${a.path}`);
    if (e.owner !== undefined) assert.equal(a.owner, e.owner, `${where}: owner of ${a.path}`);
  }
  for (const h of e.has ?? []) assert.ok(text.includes(h), `${where}: ${a.kind === 'run' ? 'script' : a.path} lacks ${JSON.stringify(h)}:\n${text}`);
  for (const l of e.lacks ?? []) assert.ok(!text.includes(l), `${where}: ${a.kind === 'run' ? 'script' : a.path} must not contain ${JSON.stringify(l)}:\n${text}`);
}

function checkExpectation(o: Outcome | undefined, key: string, e: Expectation): void {
  assert.ok(o, `${key}: no such step on that host`);
  if ('refuses' in e) {
    assert.ok(o.error, `${key}: expected a refusal, got ${JSON.stringify(o.plan?.actions.map((a) => a.title))}`);
    assert.ok(o.error.message.includes(e.refuses), `${key}: refusal "${o.error.message}" lacks "${e.refuses}"`);
    assert.ok(!o.error.message.includes('\n'), `${key}: the refusal is one line`);
    return;
  }
  if (o.error) assert.fail(`${key}: unexpected error: ${o.error.message}`);
  const plan = o.plan!;
  if ('empty' in e) {
    assert.deepEqual(plan.actions.map((a) => a.title), [], `${key}: expected nothing to do`);
    assert.ok(plan.reason?.includes(e.empty), `${key}: reason "${plan.reason}" lacks "${e.empty}"`);
    return;
  }
  assert.equal(plan.actions.length, e.actions.length, `${key}: ${plan.actions.length} actions: ${plan.actions.map((a) => a.title).join(' | ')}`);
  e.actions.forEach((x, i) => matchAction(plan.actions[i]!, x, `${key} action ${i + 1}`));
  if (e.reason !== undefined) assert.ok(plan.reason?.includes(e.reason), `${key}: reason "${plan.reason}" lacks "${e.reason}"`);
}

// ---------------------------------------------------------------------------------------------
// The tests

function loadFixtures(): Loaded[] {
  const dir = new URL('plans/', FIXTURES);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => ({ fixture: JSON.parse(readFileSync(new URL(file, dir), 'utf8')) as Fixture, file }));
}

const fixtures = loadFixtures();

test('there are plan fixtures for Rocky 9/PG 16, CentOS 7/PG 10, Ubuntu 24.04/PG 16 and Debian 12/PG 15', () => {
  const titles = fixtures.map((f) => f.fixture.title).join('\n');
  for (const want of [/Rocky Linux 9.*PostgreSQL 16.*firewalld.*SELinux enforcing/, /CentOS 7.*PostgreSQL 10/, /Ubuntu 24\.04.*PostgreSQL 16.*ufw/, /Debian 12.*PostgreSQL 15.*nftables/]) {
    assert.match(titles, want);
  }
});

/** Every run script of every plan, checked with bash -n (syntax, quoting) once all cases ran. */
const allScripts = new Set<string>();

for (const { fixture, file } of fixtures) {
  test(`${fixture.title} [${fixture.proof}] (${file})`, async (t) => {
    const written = new Map<string, string>();
    const secrets = new TestSecrets();
    for (const c of fixture.cases) {
      await t.test(c.name, () => {
        const { outcomes, version } = runCase(fixture, c, written, secrets);
        // What this case's plans write is what the next cases find on the servers ("after apply").
        for (const o of outcomes) for (const a of o.plan?.actions ?? []) if (a.kind === 'write') written.set(`${o.alias}:${a.path}`, a.content);
        for (const o of outcomes) for (const a of o.plan?.actions ?? []) if (a.kind === 'run') allScripts.add(a.script);
        const byKey = new Map(outcomes.map((o) => [`${o.stepId}@${o.alias}`, o]));
        const expected = new Set(Object.keys(c.expect ?? {}));
        for (const [key, e] of Object.entries(c.expect ?? {})) checkExpectation(byKey.get(key), key, e);
        for (const o of outcomes) {
          const key = `${o.stepId}@${o.alias}`;
          assertNoSecrets(o, secrets);
          if (o.error && !expected.has(key)) assert.fail(`${key}: unexpected error: ${o.error.message}`);
          if (o.plan && o.plan.actions.length === 0) assert.ok(o.plan.reason?.trim(), `${key}: empty plan without a reason`);
          assertSettingsValid(o, version);
          if (c.allDone) {
            assert.deepEqual(o.plan?.actions.map((a) => a.title), [], `${key}: converged facts must give an empty plan (reason: ${o.plan?.reason})`);
          }
        }
      });
    }
  });
}

test('every command of every fixture plan is valid bash (bash -n: syntax and quoting)', () => {
  assert.ok(allScripts.size > 100, `${allScripts.size} scripts`);
  const bad: string[] = [];
  for (const script of allScripts) {
    const r = spawnSync('bash', ['-n'], { input: `set -euo pipefail\n${script}`, encoding: 'utf8' });
    if (r.status !== 0) bad.push(`${r.stderr}\n${script}`);
  }
  assert.deepEqual(bad, []);
});
