/**
 * `ha-setup status` for topology k8s (the app's Deployment, seen by kubectl on k8s_master) WITHOUT
 * Kubernetes: no cluster runs on this machine or in the lab. Proven here by
 * - FIXTURES test/fixtures/status/k8s-healthy and k8s-degraded: the status script's output over
 *   kubectl answers written for these tests in kubectl 1.29's `-o json` shape (not captured from
 *   a cluster; see test/fixtures/status/README.md), parsed and evaluated into problems with their
 *   fix, rendered, and printed by --json;
 * - the generated status script run by real bash with the stand-in kubectl
 *   (test/fixtures/kubectl/kubectl) replaying those answers: it asks only `kubectl get`, reaches
 *   its end marker, and prints exactly the fixture; and, over answers kubectl prints when there is
 *   no API server (captured from a kubectl 1.32 client on a machine without a cluster), that a
 *   missing kubectl, an unreachable API, a missing deployment are named states, not crashes;
 * - when this machine has a kubectl, the script with that real kubectl and no cluster.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { evaluate, nodeResolver, type HostProbe } from '../../source/status/evaluate.js';
import { kubectlFailure, parseK8sDeployment, parseK8sPods, parseKubectlAnswer, podsByNode, splitSections } from '../../source/status/parse.js';
import { hostScript, MARKER, statusPlan } from '../../source/status/scripts.js';
import { renderHealth } from '../../source/status/render.js';
import { collectHealth } from '../../source/status/collect.js';
import { showHealth } from '../../source/commands/status.js';
import type { ClusterHealth } from '../../source/status/types.js';
import type { Inventory } from '../../source/inventory/types.js';
import { FakePool, tempHome } from '../helpers/fake-transport.js';

const KUBECTL_DIR = fileURLToPath(new URL('../../../test/fixtures/kubectl/', import.meta.url));
const fixture = (scenario: string): string => readFileSync(new URL(`../../../test/fixtures/status/${scenario}/k8s_master.txt`, import.meta.url), 'utf8');

/** The table the fixtures are written for (the lab's k8s addresses; options.k8s as app-scale's tests). */
const K8S_TABLE: Inventory = {
  cluster: 'st-k8s',
  topology: 'k8s',
  partial: true,
  servers: { db_vip: '198.18.0.100', app1: '198.18.0.15', app2: '198.18.0.16', k8s_master: '198.18.0.17' },
  ssh: {},
  options: { k8s: { deployment: 'ccc', configMap: 'ccc-config' } },
};

const local = { lock: null, lastRun: null, resumeAt: null };
const at = new Date('2026-11-22T04:10:20.000Z');
const reach = (alias: string, inv: Inventory = K8S_TABLE) => ({ alias, address: inv.servers[alias]!, reachable: true, latencyMs: 20 });

/** Every host of the table answered; k8s_master with `output` (app1/app2 have no section: only SSH). */
function run(output: string | null, inv: Inventory = K8S_TABLE): ClusterHealth {
  const probes: Record<string, HostProbe> = {};
  for (const alias of Object.keys(inv.servers).filter((a) => !a.endsWith('_vip'))) {
    probes[alias] = { reach: reach(alias, inv), sections: alias === 'k8s_master' && output !== null ? splitSections(output) : {} };
  }
  return evaluate(inv, statusPlan(inv), probes, local, at, 300);
}

const section = (scenario: string, name: string): string => splitSections(fixture(scenario))[name as 'k8s']!;

// ---------------------------------------------------------------------------------------------
// The plan and the script

test('k8s plan: k8s_master alone gets the k8s section, only in topology k8s with options.k8s (fixture tables, no Kubernetes in the lab)', () => {
  assert.deepEqual(statusPlan(K8S_TABLE).hosts, { k8s_master: ['k8s'] });
  // Without options.k8s there is no deployment to look at: nothing asked (evaluate says so in a note).
  assert.deepEqual(statusPlan({ ...K8S_TABLE, options: {} }).hosts, {});
  assert.deepEqual(statusPlan({ ...K8S_TABLE, options: { k8s: { deployment: 'CCC', configMap: 'x' } } }).hosts, {});
  // A k8s_master in topology lb (refused by validation anyway) is not asked.
  assert.deepEqual(statusPlan({ ...K8S_TABLE, topology: 'lb' }).hosts, {});

  const script = hostScript(K8S_TABLE, ['k8s'], 'k8s_master');
  assert.equal(spawnSync('bash', ['-n'], { input: script, encoding: 'utf8' }).status, 0);
  // app-scale's kubeconfig handling, word for word; every kubectl call is a `get`, each under a time limit.
  assert.ok(script.includes('if [ -z "${KUBECONFIG:-}" ] && [ ! -f "$HOME/.kube/config" ] && [ -f /etc/kubernetes/admin.conf ]; then export KUBECONFIG=/etc/kubernetes/admin.conf; fi'));
  assert.deepEqual([...script.matchAll(/\b(?:kc|kubectl) ([a-z-]+)/g)].map((m) => m[0]), ['kc get', 'kc get', 'kubectl get', 'kc get']);
  assert.match(script, /timeout -k 1 4 kubectl "\$@" --request-timeout=3s/);
  // Only the DB host key leaves the master, not the rest of the config map; a dotted key is escaped for jsonpath.
  assert.match(script, / -o 'jsonpath=\{\.data\.DB_HOST\}'$/m);
  const dotted = hostScript({ ...K8S_TABLE, options: { k8s: { deployment: 'ccc', configMap: 'ccc-config', dbHostKey: 'db.host', namespace: 'shop' } } }, ['k8s'], 'k8s_master');
  assert.match(dotted, /kc get configmap ccc-config -n shop -o 'jsonpath=\{\.data\.db\\\.host\}'$/m);
});

/** The stand-in kubectl's transcript that answers a fixture's calls with what the fixture shows. */
function transcriptOf(output: string): string {
  const s = splitSections(output);
  const answer = (cmd: string, text: string | undefined): string => {
    if (text === undefined) return '';
    const a = parseKubectlAnswer(text.replace(/^SELECTOR=.*\n/, ''));
    return a.exit === 0 ? `$ ${cmd}\n${a.body}\n` : `$ ${cmd}\n! exit ${a.exit}\n${a.error}\n`;
  };
  const selector = /^SELECTOR=(.*)$/m.exec(s['k8s-pods'] ?? '')?.[1];
  return [
    answer('kubectl get deployment ccc -n default -o json --request-timeout=3s', s['k8s-deployment']),
    answer('kubectl get configmap ccc-config -n default -o jsonpath={.data.DB_HOST} --request-timeout=3s', s['k8s-configmap']),
    selector ? `$ kubectl get deployment ccc -n default -o go-template={{range $k, $v := .spec.selector.matchLabels}}{{$k}}={{$v}},{{end}} --request-timeout=3s\n${selector},\n` : '',
    answer(`kubectl get pods -n default -l ${selector} -o json --request-timeout=3s`, s['k8s-pods']),
  ].join('');
}

/** The k8s_master script run by real bash (set -euo pipefail first, as the transport does) with `path` first on PATH. */
function runScript(transcript: string | null, opts: { path?: string; env?: NodeJS.ProcessEnv; inv?: Inventory } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'status-k8s-'));
  try {
    const home = join(dir, 'home');
    spawnSync('mkdir', ['-p', home]);
    if (transcript !== null) writeFileSync(join(dir, 'transcript'), transcript);
    const inv = opts.inv ?? K8S_TABLE;
    const script = hostScript(inv, statusPlan(inv).hosts.k8s_master!, 'k8s_master');
    const t0 = Date.now();
    const r = spawnSync('bash', ['-s'], {
      input: `set -euo pipefail\n${script}`,
      encoding: 'utf8',
      timeout: 30_000,
      env: { PATH: `${opts.path ?? KUBECTL_DIR}:${process.env.PATH}`, HOME: home, KUBECTL_TRANSCRIPT: join(dir, 'transcript'), KUBECTL_STATE: dir, ...opts.env },
    });
    let calls: string[] = [];
    try {
      calls = readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n');
    } catch {
      calls = [];
    }
    return { ...r, calls, ms: Date.now() - t0 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const python = spawnSync('bash', ['-c', 'command -v python3'], { encoding: 'utf8' }).status === 0;

test('fixtures replayed (no Kubernetes in the lab): the status script with real bash and the stand-in kubectl asks only kubectl get, reaches its end marker, prints exactly the fixture', { skip: !python && 'the stand-in kubectl needs python3' }, () => {
  for (const scenario of ['k8s-healthy', 'k8s-degraded']) {
    const want = fixture(scenario);
    const r = runScript(transcriptOf(want), { env: { KUBECONFIG: '/etc/kubernetes/admin.conf' } });
    assert.equal(r.status, 0, `${scenario}: ${r.stderr}`);
    assert.equal(r.stderr, '', `${scenario}: warnings stay out of the output`);
    assert.deepEqual(r.calls, [
      'kubectl get deployment ccc -n default -o json --request-timeout=3s',
      'kubectl get configmap ccc-config -n default -o jsonpath={.data.DB_HOST} --request-timeout=3s',
      'kubectl get deployment ccc -n default -o go-template={{range $k, $v := .spec.selector.matchLabels}}{{$k}}={{$v}},{{end}} --request-timeout=3s',
      'kubectl get pods -n default -l app=ccc -o json --request-timeout=3s',
    ]);
    const got = splitSections(r.stdout);
    assert.deepEqual(Object.keys(got), ['k8s', 'k8s-deployment', 'k8s-configmap', 'k8s-pods', 'end']);
    assert.equal(got.end, '');
    assert.equal(r.stdout, want, `${scenario}: the fixture is what the script prints over these answers`);
  }
});

/**
 * What kubectl prints when there is no API server: captured from a kubectl 1.32.4 client on a
 * machine without a cluster (no kubeconfig: localhost:8080; a kubeconfig to a closed port, its
 * address set here to k8s_master's). The klog lines go to stderr before the message.
 */
const klog = (server: string) =>
  Array.from({ length: 5 }, (_, i) => `E1206 00:35:23.20${i}298   14914 memcache.go:265] "Unhandled Error" err="couldn't get current server API group list: Get \\"${server.startsWith('localhost') ? 'http' : 'https'}://${server}/api?timeout=3s\\": dial tcp ${server.replace('localhost', '127.0.0.1')}: connect: connection refused"`).join('\n');
const REFUSED = `$ kubectl get deployment ccc -n default -o json --request-timeout=3s\n! exit 1\n${klog('198.18.0.17:6443')}\nThe connection to the server 198.18.0.17:6443 was refused - did you specify the right host or port?\n`;
const NO_CONFIG = `$ kubectl get deployment ccc -n default -o json --request-timeout=3s\n! exit 1\n${klog('localhost:8080')}\nThe connection to the server localhost:8080 was refused - did you specify the right host or port?\n`;
/** kubectl 1.29's answers for objects that are not there, and for a kubeconfig without the rights. */
const NOT_FOUND = [
  '$ kubectl get deployment ccc -n default -o json --request-timeout=3s',
  '! exit 1',
  'Error from server (NotFound): deployments.apps "ccc" not found',
  '$ kubectl get configmap ccc-config -n default -o jsonpath={.data.DB_HOST} --request-timeout=3s',
  '! exit 1',
  'Error from server (NotFound): configmaps "ccc-config" not found',
  '',
].join('\n');
const FORBIDDEN = [
  '$ kubectl get deployment ccc -n default -o json --request-timeout=3s',
  '! exit 1',
  'Error from server (Forbidden): deployments.apps "ccc" is forbidden: User "system:node:k8s-master" cannot get resource "deployments" in API group "apps" in the namespace "default"',
  '',
].join('\n');

test('kubectl answer fixtures (no Kubernetes in the lab): named states, not crashes: no kubectl, API unreachable, no kubeconfig, deployment and config map not found, forbidden', { skip: !python && 'the stand-in kubectl needs python3' }, () => {
  const states = (r: { status: number | null; stdout: string; stderr: string }) => {
    assert.equal(r.status, 0, r.stderr);
    assert.equal(splitSections(r.stdout).end, '', 'the script reaches its end marker');
    const h = run(r.stdout);
    return { h, k: h.k8s!, problems: h.problems.map((p) => [p.service, p.host, p.message, p.fix]) };
  };

  // kubectl not on PATH (this machine may have one): a PATH with a few tools and no kubectl.
  const which = (tool: string): string => spawnSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
  const bin = mkdtempSync(join(tmpdir(), 'nokubectl-'));
  for (const tool of ['timeout', 'tail', 'cut', 'grep']) spawnSync('ln', ['-s', which(tool), join(bin, tool)]);
  const none = spawnSync(which('bash'), ['-s'], { input: `set -euo pipefail\n${hostScript(K8S_TABLE, ['k8s'], 'k8s_master')}`, encoding: 'utf8', env: { PATH: bin, HOME: bin } });
  rmSync(bin, { recursive: true, force: true });
  const n = states(none);
  assert.equal(n.k.state, 'no-kubectl');
  assert.deepEqual(n.problems, [['k8s', 'k8s_master', "kubectl is not installed on k8s_master (or not on root's PATH): the app's Deployment cannot be checked", "k8s_master must be the control-plane node, with kubectl and /etc/kubernetes/admin.conf or root's ~/.kube/config (as app-scale needs)"]]);

  // The API server refuses connections: the one call is enough, the others are not tried.
  const refused = runScript(REFUSED, { env: { KUBECONFIG: '/etc/kubernetes/admin.conf' } });
  assert.deepEqual(refused.calls, ['kubectl get deployment ccc -n default -o json --request-timeout=3s']);
  const u = states(refused);
  assert.deepEqual([u.k.state, u.k.error, u.k.kubeconfig, u.k.configMap.state, u.k.pods], ['api-unreachable', 'The connection to the server 198.18.0.17:6443 was refused - did you specify the right host or port?', '/etc/kubernetes/admin.conf', 'unknown', []]);
  assert.deepEqual(u.problems, [
    [
      'k8s',
      'k8s_master',
      'the Kubernetes API server does not answer kubectl on k8s_master: The connection to the server 198.18.0.17:6443 was refused - did you specify the right host or port?',
      'on k8s_master: systemctl status kubelet, and crictl ps --name kube-apiserver (the API server of /etc/kubernetes/admin.conf)',
    ],
  ]);
  assert.doesNotMatch(refused.stdout, /memcache/, 'only the last line of stderr is kept');

  // No kubeconfig at all: kubectl falls back to localhost:8080; the fix says what is missing.
  const nc = states(runScript(NO_CONFIG));
  assert.equal(nc.k.kubeconfig, null);
  assert.equal(nc.k.state, 'api-unreachable');
  assert.equal(nc.problems[0]![3], 'root has no kubeconfig on k8s_master: kubectl needs /etc/kubernetes/admin.conf (kubeadm) or /root/.kube/config');

  // The deployment and the config map are not there: both named, the pods not asked.
  const nf = runScript(NOT_FOUND);
  assert.equal(nf.calls.length, 2);
  const f = states(nf);
  assert.deepEqual([f.k.state, f.k.configMap.state, f.k.replicas], ['no-deployment', 'not-found', null]);
  assert.deepEqual(f.problems, [
    ['k8s', 'k8s_master', 'deployment ccc not found in namespace default on k8s_master: the app does not run', 'deploy the app (its manifests) first, or fix options.k8s.deployment / options.k8s.namespace'],
    ['k8s', 'k8s_master', 'config map ccc-config not found in namespace default: the app has no database address', "create it with the app's manifests (or fix options.k8s.configMap), then ha-setup apply --runbook app-scale"],
  ]);

  const fb = states(runScript(FORBIDDEN, { env: { KUBECONFIG: '/etc/kubernetes/kubelet.conf' } }));
  assert.equal(fb.k.state, 'error');
  assert.deepEqual(fb.problems.map((p) => p[3]), ["root's kubeconfig on k8s_master (/etc/kubernetes/kubelet.conf) needs read access to deployments, pods and configmaps in default"]);
});

test('a hanging stand-in kubectl (no Kubernetes in the lab): an API server that never answers costs the time limit of one call, then is named unreachable', () => {
  const bin = mkdtempSync(join(tmpdir(), 'hangkubectl-'));
  writeFileSync(join(bin, 'kubectl'), '#!/bin/sh\nexec sleep 30\n');
  chmodSync(join(bin, 'kubectl'), 0o755);
  const r = runScript(null, { path: bin });
  rmSync(bin, { recursive: true, force: true });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(r.ms >= 3900 && r.ms < 7000, `took ${r.ms} ms`);
  assert.match(splitSections(r.stdout)['k8s-deployment']!, /^EXIT=124$/m);
  const h = run(r.stdout);
  assert.deepEqual([h.k8s!.state, h.k8s!.error], ['api-unreachable', 'no answer within 4 s']);
});

const realKubectl = spawnSync('bash', ['-c', 'command -v kubectl'], { encoding: 'utf8' }).stdout.trim();

test('no Kubernetes anywhere: this machine\'s real kubectl with no kubeconfig and with a kubeconfig to a closed port: API unreachable, named', { skip: !realKubectl && 'no kubectl on this machine' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'realkubectl-'));
  const cfg = join(dir, 'config');
  writeFileSync(cfg, ['apiVersion: v1', 'kind: Config', 'clusters:', '- cluster: {server: "https://127.0.0.1:9", insecure-skip-tls-verify: true}', '  name: k', 'contexts:', '- context: {cluster: k, user: u}', '  name: k', 'current-context: k', 'users:', '- name: u', '  user: {token: none}', ''].join('\n'));
  const closed = runScript(null, { path: '/nonexistent', env: { KUBECONFIG: cfg } });
  const noConfig = runScript(null, { path: '/nonexistent' });
  rmSync(dir, { recursive: true, force: true });
  for (const r of [closed, noConfig]) {
    assert.equal(r.status, 0, r.stderr);
    assert.equal(splitSections(r.stdout).end, '');
  }
  const a = run(closed.stdout).k8s!;
  assert.equal(a.state, 'api-unreachable');
  assert.match(a.error!, /127\.0\.0\.1:9/);
  const b = run(noConfig.stdout);
  assert.equal(b.k8s!.state, 'api-unreachable');
  assert.match(b.k8s!.error!, /localhost:8080/);
  assert.match(b.problems[0]!.fix!, /^root has no kubeconfig on k8s_master/);
});

// ---------------------------------------------------------------------------------------------
// Parse and evaluate the fixtures

test('fixture k8s-healthy (kubectl 1.29 -o json shape; no Kubernetes in the lab): deployment, pods and their nodes parsed from JSON', () => {
  const dep = parseKubectlAnswer(section('k8s-healthy', 'k8s-deployment'));
  assert.equal(dep.exit, 0);
  const d = parseK8sDeployment(dep.body);
  assert.deepEqual(d.replicas, { desired: 2, current: 2, updated: 2, ready: 2, available: 2 });
  assert.deepEqual(d.rollout, { state: 'complete', reason: 'NewReplicaSetAvailable', message: 'ReplicaSet "ccc-5d8f7c9b6d" has successfully progressed.', rolledOut: true });
  assert.equal(d.selector, 'app=ccc');
  assert.deepEqual(parseKubectlAnswer(section('k8s-healthy', 'k8s-configmap')), { body: '198.18.0.100', exit: 0, error: null });
  const pods = parseK8sPods(parseKubectlAnswer(section('k8s-healthy', 'k8s-pods').replace(/^SELECTOR=.*\n/, '')).body, nodeResolver(K8S_TABLE));
  assert.deepEqual(
    pods.map((p) => [p.name, p.node, p.host, p.phase, p.ready, `${p.containersReady}/${p.containers}`, p.restarts, p.reason]),
    [
      ['ccc-5d8f7c9b6d-2xk4p', 'worker1', 'app1', 'Running', true, '1/1', 0, null],
      ['ccc-5d8f7c9b6d-q7m9z', 'worker2', 'app2', 'Running', true, '1/1', 1, null],
    ],
  );
  assert.deepEqual(podsByNode(pods), [
    { node: 'worker1', host: 'app1', ready: 1, total: 1, terminating: 0 },
    { node: 'worker2', host: 'app2', ready: 1, total: 1, terminating: 0 },
  ]);
});

test('fixture k8s-degraded (no Kubernetes in the lab): a crash-looping pod, an unschedulable one, one terminating on a lost node; a failed rollout is told apart', () => {
  const pods = parseK8sPods(parseKubectlAnswer(section('k8s-degraded', 'k8s-pods').replace(/^SELECTOR=.*\n/, '')).body, nodeResolver(K8S_TABLE));
  assert.deepEqual(
    pods.map((p) => [p.name, p.node, p.host, p.phase, p.ready, p.restarts, p.reason, p.terminating]),
    [
      ['ccc-5d8f7c9b6d-2xk4p', 'worker1', 'app1', 'Running', true, 0, null, false],
      ['ccc-5d8f7c9b6d-8hq2n', 'worker1', 'app1', 'Running', false, 4, 'CrashLoopBackOff', false],
      ['ccc-5d8f7c9b6d-q7m9z', 'worker2', 'app2', 'Running', false, 1, 'Terminating', true],
      ['ccc-5d8f7c9b6d-x4v7c', null, null, 'Pending', false, 0, 'Unschedulable', false],
    ],
  );
  assert.match(pods[3]!.message!, /^0\/3 nodes are available: 1 Insufficient memory/);
  assert.deepEqual(podsByNode(pods), [
    { node: 'worker1', host: 'app1', ready: 1, total: 2, terminating: 0 },
    { node: 'worker2', host: 'app2', ready: 0, total: 0, terminating: 1 },
    { node: null, host: null, ready: 0, total: 1, terminating: 0 },
  ]);
  const json = parseKubectlAnswer(section('k8s-degraded', 'k8s-deployment')).body;
  const d = parseK8sDeployment(json);
  assert.deepEqual(d.replicas, { desired: 3, current: 3, updated: 3, ready: 1, available: 1 });
  // The latest ReplicaSet rolled out long ago (Progressing), but not every replica is available.
  assert.deepEqual([d.rollout.state, d.rollout.rolledOut], ['complete', false]);
  assert.deepEqual(d.conditions.find((c) => c.type === 'Available'), { type: 'Available', status: 'False', reason: 'MinimumReplicasUnavailable', message: 'Deployment does not have minimum availability.' });
  // The same deployment past its progress deadline, as the controller reports it.
  const raw = JSON.parse(json) as { status: { conditions: { type: string; status: string; reason: string; message: string }[] } };
  Object.assign(raw.status.conditions.find((c) => c.type === 'Progressing')!, { status: 'False', reason: 'ProgressDeadlineExceeded', message: 'ReplicaSet "ccc-5d8f7c9b6d" has timed out progressing.' });
  assert.equal(parseK8sDeployment(JSON.stringify(raw)).rollout.state, 'failed');

  assert.equal(kubectlFailure({ body: '', exit: 1, error: 'Error from server (NotFound): deployments.apps "ccc" not found' }), 'not-found');
  assert.equal(kubectlFailure({ body: '', exit: 1, error: 'Unable to connect to the server: dial tcp 198.18.0.17:6443: i/o timeout' }), 'unreachable');
  assert.equal(kubectlFailure({ body: '', exit: 124, error: null }), 'unreachable');
  assert.equal(kubectlFailure({ body: '', exit: 1, error: 'error: You must be logged in to the server (Unauthorized)' }), 'other');
});

test('fixture k8s-healthy (no Kubernetes in the lab): ready == desired, one pod per app node, the config map holds db_vip: no problem, no note', () => {
  const h = run(fixture('k8s-healthy'));
  assert.deepEqual(h.problems, []);
  assert.deepEqual(h.notes, []);
  assert.equal(h.healthy, true);
  const k = h.k8s!;
  assert.deepEqual([k.state, k.kubeconfig, k.selector, k.idleAppHosts], ['ok', '/etc/kubernetes/admin.conf', 'app=ccc', []]);
  assert.deepEqual(k.configMap, { name: 'ccc-config', key: 'DB_HOST', state: 'read', value: '198.18.0.100', dbVip: '198.18.0.100', error: null });
  assert.deepEqual(k.nodes.map((n) => `${n.node}(${n.host}) ${n.ready}/${n.total}`), ['worker1(app1) 1/1', 'worker2(app2) 1/1']);
  // Other topologies have no Kubernetes block.
  assert.equal(run(null, { ...K8S_TABLE, topology: 'lb' }).k8s, null);
});

test('fixture k8s-degraded (no Kubernetes in the lab): fewer ready than desired (pods and nodes named), all pods on one node, the config map not on db_vip: each with its one-line fix', () => {
  const h = run(fixture('k8s-degraded'));
  assert.equal(h.healthy, false);
  assert.deepEqual(
    h.problems.map((p) => [p.service, p.host, p.message, p.fix]),
    [
      [
        'k8s',
        'k8s_master',
        'deployment ccc: 1 of 3 replicas ready; not ready: ccc-5d8f7c9b6d-8hq2n on worker1 (app1): CrashLoopBackOff, 4 restarts; ccc-5d8f7c9b6d-x4v7c not scheduled: Unschedulable',
        'on k8s_master: kubectl describe pod ccc-5d8f7c9b6d-8hq2n ccc-5d8f7c9b6d-x4v7c -n default (their events say why); kubectl logs ccc-5d8f7c9b6d-8hq2n -n default --previous',
      ],
      [
        'k8s',
        'k8s_master',
        'all 2 pods of deployment ccc run on worker1 (app1): losing that node stops the app (the table has 2 app nodes: app1, app2)',
        'on k8s_master: kubectl get nodes (are the other app nodes Ready, not cordoned?), then kubectl rollout restart deployment/ccc -n default',
      ],
      ['k8s', 'k8s_master', "config map ccc-config: DB_HOST is 10.0.0.50, not db_vip 198.18.0.100: the app's database connections do not follow a failover", 'ha-setup apply --runbook app-scale'],
    ],
  );
  assert.ok(h.problems.every((p) => !p.fix || !p.fix.includes('\n')), 'each fix is one line');
  // Scaled by hand past options.k8s.replicas (default 2): a note, not a problem.
  assert.deepEqual(h.notes.map((n) => n.message), ['deployment ccc wants 3 replicas; options.k8s.replicas is 2']);
  assert.deepEqual(h.k8s!.idleAppHosts, ['app2']);

  // One app node in the table: pods together on it are not a problem.
  const one = { ...K8S_TABLE, servers: { db_vip: '198.18.0.100', app1: '198.18.0.15', k8s_master: '198.18.0.17' } };
  assert.ok(!run(fixture('k8s-degraded'), one).problems.some((p) => p.message.startsWith('all ')));
  // No db_vip in the table: the config map's value is shown, not judged.
  const noVip = run(fixture('k8s-degraded'), { ...K8S_TABLE, servers: { app1: '198.18.0.15', app2: '198.18.0.16', k8s_master: '198.18.0.17' } });
  assert.deepEqual([noVip.k8s!.configMap.value, noVip.k8s!.configMap.dbVip], ['10.0.0.50', null]);
  assert.ok(!noVip.problems.some((p) => p.message.startsWith('config map')));
});

test('fixture k8s-healthy cut off (no Kubernetes in the lab), host unreachable, options.k8s missing or invalid: unknown or a note/problem, never a crash', () => {
  const text = fixture('k8s-healthy');
  const cut = run(text.slice(0, text.indexOf(`${MARKER} k8s-configmap`) - 40));
  assert.deepEqual([cut.k8s!.state, cut.k8s!.error], ['unknown', 'no answer (the checks did not finish in time)']);
  assert.ok(cut.problems.some((p) => p.service === 'ssh' && /did not finish in time/.test(p.message)));

  const probes: Record<string, HostProbe> = { k8s_master: { reach: { alias: 'k8s_master', address: '198.18.0.17', reachable: false, error: 'no SSH answer within 12 s' }, sections: null } };
  const down = evaluate(K8S_TABLE, statusPlan(K8S_TABLE), probes, local, at, 1);
  assert.deepEqual([down.k8s!.state, down.k8s!.error], ['unknown', 'host unreachable']);
  assert.deepEqual(down.problems.map((p) => p.service), ['ssh']);

  const unset = run(null, { ...K8S_TABLE, options: {} });
  assert.equal(unset.k8s, null);
  assert.deepEqual(unset.problems, []);
  assert.deepEqual(unset.notes.map((n) => [n.service, n.fix]), [['k8s', 'set options.k8s.deployment and options.k8s.configMap in the table (app-scale needs them too)']]);
  const bad = run(null, { ...K8S_TABLE, options: { k8s: { deployment: 'ccc' } } });
  assert.deepEqual(bad.problems.map((p) => p.message), ["the app's Deployment is not checked: options.k8s.configMap: not set; give the app's ConfigMap name (kubectl get configmaps -n <namespace>)"]);
});

// ---------------------------------------------------------------------------------------------
// Render, --json, collect

test('fixture k8s-degraded rendered (no Kubernetes in the lab): a Kubernetes block like the HAProxy one, pods ready/total per node, the config map\'s DB host', () => {
  const text = renderHealth(run(fixture('k8s-degraded')));
  const block = text.slice(text.indexOf('Kubernetes on'), text.indexOf('\nProblems'));
  assert.equal(
    block,
    [
      'Kubernetes on k8s_master (deployment ccc, namespace default)',
      '  ✗ deployment ccc         1/3 ready, 3 updated, 1 available; rollout complete; Available False (MinimumReplicasUnavailable)',
      '  ✗ worker1 (app1)         1/2 pods ready: ccc-5d8f7c9b6d-8hq2n CrashLoopBackOff (4 restarts)',
      '  ✗ worker2 (app2)         0/0 pods ready, 1 terminating',
      '  ✗ not scheduled          0/1 pods ready: ccc-5d8f7c9b6d-x4v7c Unschedulable',
      '  ✗ config map ccc-config  DB_HOST = 10.0.0.50 (db_vip is 198.18.0.100)',
      '',
    ].join('\n'),
  );
  const ok = renderHealth(run(fixture('k8s-healthy')));
  assert.match(
    ok,
    /\nKubernetes on k8s_master \(deployment ccc, namespace default\)\n {2}✓ deployment ccc {9}2\/2 ready, 2 updated, 2 available; rollout complete\n {2}✓ worker1 \(app1\) {9}1\/1 pods ready\n {2}✓ worker2 \(app2\) {9}1\/1 pods ready\n {2}✓ config map ccc-config {2}DB_HOST = 198\.18\.0\.100 \(db_vip\)\n\nHealthy: no problem found\.\n$/,
  );
  // A named state is one line in the block.
  const unreachable = run(`${MARKER} k8s\nKUBECONFIG=/etc/kubernetes/admin.conf\nKUBECTL=yes\n${MARKER} k8s-deployment\n\nEXIT=124\n${MARKER} end\n`);
  assert.match(renderHealth(unreachable), /\nKubernetes on k8s_master \(deployment ccc, namespace default\)\n {2}✗ API server unreachable: no answer within 4 s\n\n/);
});

test('--json of fixture k8s-degraded (no Kubernetes in the lab) carries the same data: state, replicas, rollout, pods, nodes, config map, the problems', async () => {
  const h = run(fixture('k8s-degraded'));
  const out = { text: '', isTTY: false, write: (x: string) => void (out.text += x) };
  const code = await showHealth(async () => h, { stdout: out, env: {} }, { interval: null, json: true, color: false });
  assert.equal(code, 1);
  const doc = JSON.parse(out.text) as ClusterHealth;
  assert.deepEqual(doc.k8s, h.k8s);
  assert.deepEqual(doc.k8s!.replicas, { desired: 3, current: 3, updated: 3, ready: 1, available: 1 });
  assert.deepEqual(doc.k8s!.nodes.map((n) => [n.node, n.host, n.ready, n.total, n.terminating]), [['worker1', 'app1', 1, 2, 0], ['worker2', 'app2', 0, 0, 1], [null, null, 0, 1, 0]]);
  assert.equal(doc.k8s!.configMap.value, '10.0.0.50');
  assert.deepEqual(doc.problems.map((p) => p.service), ['k8s', 'k8s', 'k8s']);
});

test('collect over a fake transport answering fixture k8s-healthy (no Kubernetes in the lab): k8s_master runs the status script as root, the app nodes only answer SSH', async () => {
  const { env } = tempHome();
  const script = new RegExp(`^set \\+e \\+o pipefail\\nexport LC_ALL=C\\necho '${MARKER} k8s'\\n`);
  const pool = new FakePool({}, (t) => t.on(script, () => ({ stdout: fixture('k8s-healthy') })));
  const h = await collectHealth(K8S_TABLE, { transport: pool.transport, env });
  assert.equal(h.healthy, true, JSON.stringify(h.problems));
  assert.deepEqual(
    Object.fromEntries([...pool.hosts].map(([alias, t]) => [alias, t.execs.map((e) => [script.test(e.script) ? 'k8s script' : e.script, e.sudo])])),
    { app1: [['true', false]], app2: [['true', false]], k8s_master: [['k8s script', true]] },
  );
  assert.equal(h.k8s!.state, 'ok');
});
