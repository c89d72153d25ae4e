import { test, afterEach, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { render, cleanup } from 'ink-testing-library';
import { Wizard, type WizardResult } from '../../source/ui/Wizard.js';
import { listClusters, loadCluster, saveCluster } from '../../source/inventory/store.js';
import { validateField, validateInventory } from '../../source/inventory/validate.js';
import { keys, plain, settle, waitFor, waitForText } from './helpers.js';

let env: NodeJS.ProcessEnv;
beforeEach(() => {
  env = { ...process.env, HA_SETUP_HOME: mkdtempSync(join(tmpdir(), 'ha-wizard-test-')) };
});
afterEach(() => {
  cleanup();
  rmSync(env.HA_SETUP_HOME!, { recursive: true, force: true });
});

const LAB: Record<string, string> = {
  db_primary: '198.18.0.11',
  db_standby: '198.18.0.12',
  db_vip: '198.18.0.100',
  nfs_primary: '198.18.0.13',
  nfs_standby: '198.18.0.14',
  nfs_vip: '198.18.0.101',
  app1: '198.18.0.15',
  app2: '198.18.0.16',
  lb: '198.18.0.17',
};

/** Whitespace collapsed: Ink wraps long messages at the terminal width. */
const flat = (s: string) => s.replace(/\s+/g, ' ');

function mount() {
  const exits: WizardResult[] = [];
  const r = render(<Wizard env={env} onExit={(x) => exits.push(x)} />);
  const frame = () => plain(r.lastFrame());
  /** The first line of an alias's row on the servers screen. */
  const row = (alias: string) => frame().split('\n').find((l) => new RegExp(`^[❯ ] ${alias}\\s`).test(l)) ?? '';
  const focused = () => /^❯ (\S+)/m.exec(frame())?.[1];
  return {
    r,
    exits,
    frame,
    row,
    focused,
    /** Wait until the text is on screen (then let effects settle before the next key). */
    see: (text: string) => waitForText(r.lastFrame, text),
    seeFlat: (text: string) => waitFor(() => flat(frame()).includes(flat(text)), frame),
    async key(k: string) {
      r.stdin.write(k);
      await settle();
    },
    /** Type into the field being edited and wait until its row shows it. */
    async type(alias: string, text: string) {
      r.stdin.write(text);
      await waitFor(() => row(alias).includes(text), frame);
    },
    /** Enter on the field being edited: wait for focus to move to `next` (or stay, on the last). */
    async enter(next: string) {
      r.stdin.write(keys.enter);
      await waitFor(() => focused() === next, frame);
    },
  };
}

/** The first screen: new cluster (selected), saved ones, the local lab. */
async function newCluster(w: ReturnType<typeof mount>) {
  await w.see('❯ New cluster');
  assert.match(w.frame(), /^ {2}Rehearse on a local lab \(7 Debian hosts on this machine, as root\)$/m);
  await w.key(keys.enter);
}

async function toServers(w: ReturnType<typeof mount>, name = 'lab') {
  await newCluster(w);
  await w.see('Cluster name');
  w.r.stdin.write(name);
  await w.see(`Name: ${name}`);
  await w.key(keys.enter);
  await w.see(`Topology of cluster ${name}`);
  await w.key(keys.enter);
  await w.see(`Servers of cluster ${name} · topology lb`);
}

test('fill in the table with inline errors, fix them, save, see the table; it is saved', async () => {
  const w = mount();
  await toServers(w);
  assert.match(w.frame(), /^❯ db_primary\s+PostgreSQL primary\s+not set$/m);
  await w.key(keys.enter); // edit db_primary

  // A typo is reported while typing, by the inventory's own validator.
  await w.type('db_primary', '198.18.0.256');
  const typo = validateField('db_primary', '198.18.0.256', {}, 'lb')!;
  assert.match(typo, /198\.18\.0\.256/);
  await w.seeFlat(`✗ ${typo}`);
  for (let i = 0; i < 3; i++) await w.key(keys.backspace);
  await waitFor(() => w.row('db_primary').endsWith(' 198.18.0.'), w.frame);
  await w.type('db_primary', '11');
  assert.match(w.row('db_primary'), / 198\.18\.0\.11$/);
  assert.ok(!flat(w.frame()).includes(typo), 'the error goes away once fixed');
  await w.enter('db_standby');

  // The same address twice.
  await w.type('db_standby', '198.18.0.11');
  const dup = validateField('db_standby', '198.18.0.11', { db_primary: '198.18.0.11' }, 'lb')!;
  assert.match(dup, /db_primary/);
  await w.seeFlat(`✗ ${dup}`);
  await w.key(keys.backspace);
  await waitFor(() => w.row('db_standby').endsWith(' 198.18.0.1'), w.frame);
  await w.type('db_standby', '2');
  assert.match(w.row('db_standby'), / 198\.18\.0\.12$/);
  assert.ok(!flat(w.frame()).includes(dup));
  await w.enter('db_vip');

  const rest = ['db_vip', 'nfs_primary', 'nfs_standby', 'nfs_vip', 'app1', 'app2', 'lb'];
  for (const [i, alias] of rest.entries()) {
    await w.type(alias, LAB[alias]!);
    await w.enter(rest[i + 1] ?? 'lb');
  }
  await waitFor(() => w.frame().includes('↑/↓ move · enter edit'), w.frame); // editing ended on the last field
  for (const [alias, address] of Object.entries(LAB)) assert.match(w.row(alias), new RegExp(`${alias}\\s.*\\s${address.replace(/\./g, '\\.')}$`));
  assert.doesNotMatch(w.frame(), /✗/);

  await w.key('r');
  await w.see('✓ The table is complete and valid: press s to save it.');
  assert.match(w.frame(), /^Server table: cluster lab, topology lb/m);
  assert.match(w.frame(), /^Database virtual IP\s+db_vip\s+198\.18\.0\.100\s/m);
  await w.key('s');
  const saved = await w.see('✓ Saved cluster lab to ');
  const path = join(env.HA_SETUP_HOME!, 'clusters', 'lab', 'table.json');
  assert.ok(flat(saved).includes(`✓ Saved cluster lab to ${path}`), saved);
  assert.match(saved, /^HAProxy load balancer\s+lb\s+198\.18\.0\.17\s/m);
  assert.ok(flat(saved).includes('ha-setup table export --cluster lab --out FILE'));

  assert.deepEqual(listClusters(env), ['lab']);
  const inv = loadCluster('lab', env)!;
  assert.deepEqual(inv.servers, LAB);
  assert.equal(inv.topology, 'lb');

  await w.key(keys.enter);
  await waitFor(() => w.exits.length === 1, w.frame);
  assert.deepEqual(w.exits[0], { inventory: inv, proceed: true });
});

test('Save is refused while there are errors, and nothing is saved', async () => {
  const w = mount();
  await toServers(w);
  await w.key(keys.enter);
  await w.type('db_primary', '198.18.0.11');
  await w.enter('db_standby');
  await w.type('db_standby', '198.18.0.11'); // duplicate, kept on purpose
  await w.key(keys.tab); // keep it, stop editing
  await waitFor(() => w.frame().includes('↑/↓ move · enter edit'), w.frame);
  await w.key('r');
  const review = await w.see('problems to fix before saving:');
  const n = Number(/(\d+) problems to fix before saving/.exec(review)![1]);
  // As many as the inventory's validator finds: the duplicate and the 7 roles not set.
  const expected = validateInventory({
    cluster: 'lab',
    topology: 'lb',
    servers: { ...Object.fromEntries(Object.keys(LAB).map((a) => [a, null])), db_primary: '198.18.0.11', db_standby: '198.18.0.11' },
  });
  assert.equal(expected.ok, false);
  assert.equal(n, expected.ok ? 0 : expected.errors.length);
  assert.ok(n >= 8, `${n}`);
  assert.ok(flat(review).includes(`✗ servers.db_standby: ${validateField('db_standby', '198.18.0.11', { db_primary: '198.18.0.11' }, 'lb')}`));
  assert.ok(flat(review).includes('✗ servers.lb: '));

  await w.key('s');
  await w.seeFlat(`Not saved: ${n} problems left; press e to fix them (nothing is saved until the table is valid)`);
  assert.deepEqual(listClusters(env), []);
  assert.equal(loadCluster('lab', env), undefined);

  // Back on the servers screen, roles not set now say so inline.
  await w.key('e');
  await w.see('Servers of cluster lab');
  await w.seeFlat(`✗ ${validateField('lb', '', {}, 'lb')}`);
});

test('an invalid cluster name is refused inline', async () => {
  const w = mount();
  await newCluster(w);
  await w.see('Cluster name');
  w.r.stdin.write('my lab');
  await w.see('Name: my lab');
  await w.key(keys.enter);
  await w.see('✗ "my lab" is not a valid cluster name');
  assert.match(w.frame(), /^Cluster name$/m);
});

test('a saved cluster can be picked and edited; the change is saved', async () => {
  saveCluster({ cluster: 'prod', topology: 'lb', servers: LAB, ssh: { user: 'admin' }, options: { postgres: { version: 15 } } }, env);
  const w = mount();
  await w.see('❯ New cluster');
  assert.match(w.frame(), /^  Edit saved cluster prod$/m);
  await w.key(keys.down);
  await w.see('❯ Edit saved cluster prod');
  await w.key(keys.enter);
  await w.see('Topology of cluster prod');
  await w.key(keys.enter);
  await w.see('Servers of cluster prod · topology lb');
  assert.match(w.row('lb'), /198\.18\.0\.17$/);

  // Add app3 with a key; it opens for editing at once.
  await w.key('a');
  await waitFor(() => w.focused() === 'app3', w.frame);
  await w.type('app3', '198.18.0.18');
  await w.enter('lb');
  await w.key(keys.escape); // stop editing lb, keep its value
  await waitFor(() => w.frame().includes('x remove app3'), w.frame);
  await w.key('r');
  await w.see('✓ The table is complete and valid');
  await w.key('s');
  await w.see('✓ Saved cluster prod');
  const inv = loadCluster('prod', env)!;
  assert.deepEqual(inv.servers, { ...LAB, app3: '198.18.0.18' });
  // What the wizard does not edit is kept.
  assert.deepEqual(inv.ssh, { user: 'admin' });
  assert.deepEqual(inv.options, { postgres: { version: 15 } });
});

test('a saved table that no longer validates is reported on the pick screen, not loaded', async () => {
  saveCluster({ cluster: 'prod', topology: 'lb', servers: LAB, ssh: {}, options: {} }, env);
  const file = join(env.HA_SETUP_HOME!, 'clusters', 'prod', 'table.json');
  writeFileSync(file, JSON.stringify({ cluster: 'prod', topology: 'lb', servers: { ...LAB, db_vip: '198.18.0.300' } }));
  const w = mount();
  await w.see('Edit saved cluster prod');
  await w.key(keys.down);
  await w.see('❯ Edit saved cluster prod');
  await w.key(keys.enter);
  await w.seeFlat('servers.db_vip');
  assert.ok(flat(w.frame()).includes('198.18.0.300'));
  assert.match(w.frame(), /Server table: start a new cluster, rehearse on a lab, or edit a saved one/);
});

test('the k8s topology asks for k8s_master instead of lb', async () => {
  const w = mount();
  await newCluster(w);
  await w.see('Cluster name');
  w.r.stdin.write('kube');
  await w.see('Name: kube');
  await w.key(keys.enter);
  await w.see('Topology of cluster kube');
  await w.key(keys.down);
  await w.see('❯ k8s: Kubernetes master');
  await w.key(keys.enter);
  await w.see('Servers of cluster kube · topology k8s');
  assert.match(w.row('k8s_master'), /Kubernetes master\s+not set$/);
  assert.equal(w.row('lb'), '');
});

test('rehearse on a local lab: the wizard hands over to the caller, which starts the lab', async () => {
  const w = mount();
  await w.see('❯ New cluster');
  await w.key(keys.down);
  await w.see('❯ Rehearse on a local lab');
  await w.key(keys.enter);
  await waitFor(() => w.exits.length === 1, w.frame);
  assert.deepEqual(w.exits, [{ proceed: true, lab: true }]);
  assert.deepEqual(listClusters(env), []);
});

test('esc quits without saving; ctrl-c too', async () => {
  const w = mount();
  await toServers(w);
  await w.key(keys.enter);
  await w.type('db_primary', '198.18.0.11');
  await w.key(keys.escape); // first esc: undo this edit
  await waitFor(() => /^❯ db_primary\s+PostgreSQL primary\s+not set$/m.test(w.frame()), w.frame);
  assert.deepEqual(w.exits, []);
  await w.key(keys.escape); // second: quit
  await waitFor(() => w.exits.length === 1, w.frame);
  assert.deepEqual(w.exits, [{ proceed: false }]);
  assert.deepEqual(listClusters(env), []);

  const w2 = mount();
  await settle();
  await w2.key(keys.ctrlC);
  await waitFor(() => w2.exits.length === 1, w2.frame);
  assert.deepEqual(w2.exits, [{ proceed: false }]);
});
