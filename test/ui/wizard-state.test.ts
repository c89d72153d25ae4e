import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  aliasesOf,
  fieldError,
  initialWizardState,
  reduceWizard,
  tableToSave,
  type WizardAction,
  type WizardState,
} from '../../source/ui/wizard/wizard-state.js';

const run = (state: WizardState, ...actions: WizardAction[]) => actions.reduce(reduceWizard, state);

const named = () =>
  run(initialWizardState(), { type: 'new-cluster' }, { type: 'name-change', value: ' lab ' }, { type: 'name-submit' }, { type: 'topology', topology: 'lb' });

test('start: the pick screen (new cluster, saved ones, the local lab), with or without saved clusters', () => {
  assert.equal(initialWizardState(['prod']).screen, 'pick');
  assert.equal(initialWizardState().screen, 'pick');
});

test('a name is trimmed and checked; a saved name is refused for a new cluster', () => {
  assert.equal(named().cluster, 'lab');
  const dup = run(initialWizardState(['prod']), { type: 'new-cluster' }, { type: 'name-change', value: 'prod' }, { type: 'name-submit' });
  assert.equal(dup.screen, 'name');
  assert.match(dup.nameError!, /a cluster named "prod" is saved already/);
  const edited = run(dup, { type: 'name-change', value: 'prod2' });
  assert.equal(edited.nameError, undefined);
});

test('enter keeps the value and edits the next field; on the last field editing ends', () => {
  let s = run(named(), { type: 'edit-start' }, { type: 'edit-change', draft: ' 198.18.0.11 ' }, { type: 'edit-commit', move: 1, continue: true });
  assert.equal(s.servers.db_primary, '198.18.0.11');
  assert.deepEqual(s.editing, { alias: 'db_standby', draft: '' });
  assert.equal(s.focus, 1);
  s = run(s, { type: 'edit-cancel' }, { type: 'move', delta: 100 });
  assert.equal(aliasesOf(s)[s.focus], 'lb');
  s = run(s, { type: 'edit-start' }, { type: 'edit-change', draft: '198.18.0.17' }, { type: 'edit-commit', move: 1, continue: true });
  assert.equal(s.editing, undefined);
  assert.equal(s.servers.lb, '198.18.0.17');
});

test('one terminal read with several lines (a paste, or text and enter together) fills one field per line', () => {
  const s = run(named(), { type: 'edit-start' }, { type: 'edit-change', alias: 'db_primary', draft: '198.18.0.11\r198.18.0.12\n198.18.0.100\r\n19' });
  assert.equal(s.servers.db_primary, '198.18.0.11');
  assert.equal(s.servers.db_standby, '198.18.0.12');
  assert.equal(s.servers.db_vip, '198.18.0.100');
  assert.deepEqual(s.editing, { alias: 'nfs_primary', draft: '19' });
});

test('keys typed right after enter that reach the field just left are carried over to the field being edited', () => {
  let s = run(named(), { type: 'edit-start' }, { type: 'edit-change', alias: 'db_primary', draft: '198.18.0.11' }, { type: 'edit-commit', move: 1, continue: true });
  assert.deepEqual(s.editing, { alias: 'db_standby', draft: '' });
  // The text input of db_primary still had its value and appends the new keys to it.
  s = run(s, { type: 'edit-change', alias: 'db_primary', draft: '198.18.0.111' });
  assert.equal(s.servers.db_primary, '198.18.0.11', 'the committed value is not changed');
  assert.deepEqual(s.editing, { alias: 'db_standby', draft: '1' });
  s = run(s, { type: 'edit-change', alias: 'db_standby', draft: '198' });
  assert.deepEqual(s.editing, { alias: 'db_standby', draft: '198' });
  // A change from another field that is not an append of its value is dropped.
  assert.deepEqual(run(s, { type: 'edit-change', alias: 'db_primary', draft: 'x' }).editing, { alias: 'db_standby', draft: '198' });
});

test('esc while editing puts the old value back', () => {
  const s = run(named(), { type: 'edit-start' }, { type: 'edit-change', draft: 'x' }, { type: 'edit-cancel' });
  assert.equal(s.servers.db_primary, undefined);
  assert.equal(s.editing, undefined);
});

test('add and remove app servers', () => {
  let s = run(named(), { type: 'add-app' });
  assert.deepEqual(aliasesOf(s).filter((a) => a.startsWith('app')), ['app1', 'app2', 'app3']);
  assert.deepEqual(s.editing, { alias: 'app3', draft: '' });
  s = run(s, { type: 'edit-change', draft: '198.18.0.18' }, { type: 'edit-commit', move: 0, continue: false }, { type: 'remove-app' });
  assert.deepEqual(aliasesOf(s).filter((a) => a.startsWith('app')), ['app1', 'app2']);
  assert.equal(s.servers.app3, undefined);
  assert.equal(run(s, { type: 'remove-app' }).appCount, 2, 'two app servers is the minimum');
});

test('l adds the optional standby load balancer and its VIP together, and removes both; not in topology k8s', () => {
  let s = run(named(), { type: 'toggle-lb-standby' });
  assert.deepEqual(aliasesOf(s).slice(-3), ['lb', 'lb_standby', 'lb_vip']);
  assert.deepEqual(s.editing, { alias: 'lb_standby', draft: '' });
  s = run(s, { type: 'edit-change', draft: '198.18.0.18' }, { type: 'edit-commit', move: 0, continue: false }, { type: 'review' });
  assert.equal(s.servers.lb_standby, '198.18.0.18');
  assert.match(fieldError(s, 'lb_vip')!, /^not set: reserve a free IP address in the subnet of lb and lb_standby/);
  s = run(s, { type: 'back' }, { type: 'toggle-lb-standby' });
  assert.equal('lb_standby' in s.servers || 'lb_vip' in s.servers, false);
  assert.equal(aliasesOf(s).at(-1), 'lb');
  const k = run(named(), { type: 'toggle-lb-standby' }, { type: 'edit-cancel' }, { type: 'back' }, { type: 'topology', topology: 'k8s' });
  assert.equal('lb_standby' in k.servers, false, 'switching to k8s drops the standby lb');
  assert.deepEqual(run(k, { type: 'toggle-lb-standby' }).servers, k.servers);
});

test('switching topology carries the front-end address over (lb -> k8s_master)', () => {
  const s = run(named(), { type: 'move', delta: 8 }, { type: 'edit-start' }, { type: 'edit-change', draft: '198.18.0.17' }, { type: 'edit-commit', move: 0, continue: false });
  assert.equal(s.servers.lb, '198.18.0.17');
  const k = run(s, { type: 'back' }, { type: 'topology', topology: 'k8s' });
  assert.equal(k.servers.lb, undefined);
  assert.equal(k.servers.k8s_master, '198.18.0.17');
  assert.equal(aliasesOf(k).at(-1), 'k8s_master');
});

test('"not set" errors only once the user asked to review; saving leaves empty roles out', () => {
  let s = named();
  assert.equal(fieldError(s, 'db_vip'), undefined);
  s = run(s, { type: 'review' });
  assert.match(fieldError(s, 'db_vip')!, /^not set/);
  assert.deepEqual(tableToSave(s).servers, {});
  assert.deepEqual(
    run(s, { type: 'save-refused', errors: 1 }).notice,
    'Not saved: 1 problem left; press e to fix it (nothing is saved until the table is valid)',
  );
});
