/**
 * The app-scale runbook (topology B, Kubernetes) WITHOUT Kubernetes: no cluster runs on this
 * machine or in the lab. Proven here by
 * - its parsers run on a transcript in kubectl's output format (test/fixtures/kubectl), and
 * - plan and apply through the real runner, the runbook's scripts run by real bash with a
 *   stand-in kubectl (test/fixtures/kubectl/kubectl) that replays that transcript.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runRunbooks } from '../../source/engine/runner.js';
import type { EngineEvent } from '../../source/engine/events.js';
import { appScaleRunbook, k8sOptions, parseConfigMap, parseDeployment, parseGetPodsWide, parseRolloutStatus, podsPerNode, rolledOut } from '../../runbooks/app-scale.js';
import { FakePool, tempHome } from '../helpers/fake-transport.js';
import type { Inventory } from '../../source/inventory/types.js';

const DIR = fileURLToPath(new URL('../../../test/fixtures/kubectl/', import.meta.url));

/** The answers of a transcript by command, in order. */
function answers(file: string): Map<string, { code: number; out: string }[]> {
  const out = new Map<string, { code: number; out: string }[]>();
  let cur: { code: number; lines: string[] } | undefined;
  let cmd = '';
  const flush = (): void => {
    if (cur) out.set(cmd, [...(out.get(cmd) ?? []), { code: cur.code, out: `${cur.lines.join('\n').trimEnd()}\n` }]);
  };
  for (const line of readFileSync(join(DIR, file), 'utf8').split('\n')) {
    if (line.startsWith('$ ')) {
      flush();
      cmd = line.slice(2);
      cur = { code: 0, lines: [] };
    } else if (cur && line.startsWith('! exit ') && cur.lines.length === 0) cur.code = Number(line.slice(7));
    else if (cur) cur.lines.push(line);
  }
  flush();
  return out;
}

const scale = answers('scale-transcript.txt');
const failures = answers('failures-transcript.txt');
const first = (m: typeof scale, cmd: string, i = 0): string => m.get(cmd)![i]!.out;

test('kubectl get pods -o wide: columns cut at the header, RESTARTS "1 (12s ago)" kept whole; pods per node count Running + ready only', () => {
  const rows = parseGetPodsWide(first(scale, 'kubectl get pods -n default -l app=ccc -o wide'));
  assert.deepEqual(rows, [
    { name: 'ccc-5d8f7c9b6d-2xk4p', ready: '1/1', status: 'Running', restarts: '0', age: '41s', ip: '10.244.1.17', node: 'worker1' },
    { name: 'ccc-5d8f7c9b6d-q7m9z', ready: '1/1', status: 'Running', restarts: '1 (12s ago)', age: '40s', ip: '10.244.2.9', node: 'worker2' },
    { name: 'ccc-7b9c6d5f4-lw2rt', ready: '0/1', status: 'Terminating', restarts: '3 (2d1h ago)', age: '2d', ip: '10.244.2.4', node: 'worker2' },
  ]);
  assert.deepEqual(podsPerNode(rows), { worker1: 1, worker2: 1 });
  // The later listing has narrower columns: offsets come from its own header.
  assert.deepEqual(parseGetPodsWide(first(scale, 'kubectl get pods -n default -l app=ccc -o wide', 1)).map((r) => `${r.restarts}|${r.node}`), ['0|worker1', '1 (29s ago)|worker2']);
  assert.deepEqual(parseGetPodsWide(first(failures, 'kubectl get pods -n kube-system -o wide')), []);
  assert.throws(() => parseGetPodsWide('error: You must be logged in to the server (Unauthorized)\n'), /no header line in "error: You must be logged in/);
});

test('kubectl rollout status, get deployment / configmap -o json', () => {
  assert.deepEqual(parseRolloutStatus(first(scale, 'kubectl rollout status deployment/ccc -n default --timeout=300s')), { done: true, message: 'deployment "ccc" successfully rolled out' });
  assert.deepEqual(parseRolloutStatus(first(failures, 'kubectl rollout status deployment/ccc -n default --timeout=300s')), { done: false, message: 'error: deployment "ccc" exceeded its progress deadline' });
  const d1 = parseDeployment(first(scale, 'kubectl get deployment ccc -n default -o json'));
  assert.deepEqual(d1, { replicas: 1, currentReplicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1, generation: 4, observedGeneration: 4, matchLabels: { app: 'ccc' } });
  assert.equal(rolledOut(d1), true);
  // Mid-rollout after a restart: 1 wanted, 1 updated and available, but an old pod is still there.
  assert.equal(rolledOut(parseDeployment(first(scale, 'kubectl get deployment ccc -n default -o json', 1))), false, 'an old replica is left');
  assert.equal(parseConfigMap(first(scale, 'kubectl get configmap ccc-config -n default -o json')).DB_HOST, '10.0.0.50');
});

function k8sInventory(options: Record<string, unknown>): Inventory {
  return { cluster: 'k8s', topology: 'k8s', servers: { db_vip: '198.18.0.100', app1: '198.18.0.15', app2: '198.18.0.16', k8s_master: '198.18.0.17' }, ssh: {}, options };
}

/** Runs the runbook with the stand-in kubectl replaying `transcript` (fresh answer counters). */
async function withKubectl(transcript: string, mode: 'plan' | 'apply', options: Record<string, unknown>, env: NodeJS.ProcessEnv) {
  const state = mkdtempSync(join(tmpdir(), 'kubectl-state-'));
  process.env.PATH = `${DIR}:${process.env.PATH}`;
  process.env.KUBECTL_TRANSCRIPT = join(DIR, transcript);
  process.env.KUBECTL_STATE = state;
  const events: EngineEvent[] = [];
  const pool = new FakePool({ localBash: true });
  const result = await runRunbooks({ mode, runbooks: [appScaleRunbook], inventory: k8sInventory(options), transport: pool.transport, events: (e) => events.push(e), env, resumeCommand: 'x' });
  const calls = (() => {
    try {
      return readFileSync(join(state, 'calls'), 'utf8').trim().split('\n');
    } catch {
      return [];
    }
  })();
  return { result, events, calls };
}

const OPTS = { k8s: { deployment: 'ccc', configMap: 'ccc-config' } };

test('plan: the DB VIP goes into the config map (pods restarted), the deployment is scaled 1 -> 2 with a rollout wait', async () => {
  const { env } = tempHome();
  const { result, events } = await withKubectl('scale-transcript.txt', 'plan', OPTS, env);
  assert.equal(result.ok, true);
  const planned = events.filter((e): e is Extract<EngineEvent, { type: 'step-planned' }> => e.type === 'step-planned');
  assert.deepEqual(
    planned.map((p) => [p.stepId, p.actions.map((a) => (a.kind === 'run' ? a.script.split('\n').pop() : ''))]),
    [
      ['app-scale.configmap', [`kubectl patch configmap ccc-config -n default --type merge -p '{"data":{"DB_HOST":"198.18.0.100"}}'`, 'kubectl rollout restart deployment/ccc -n default']],
      ['app-scale.replicas', ['kubectl scale deployment ccc -n default --replicas=2', 'kubectl rollout status deployment/ccc -n default --timeout=300s']],
    ],
  );
  assert.equal(planned[0]!.actions[0]!.title, 'set DB_HOST = 198.18.0.100 in config map ccc-config (was 10.0.0.50)');
  assert.equal(planned[1]!.actions[0]!.title, 'kubectl scale deployment ccc --replicas=2 (now 1)');
});

test('apply: patch, restart, scale, rollout status, pods per node; the next plan has nothing to do', async () => {
  const { env } = tempHome();
  const { result, events, calls } = await withKubectl('scale-transcript.txt', 'apply', OPTS, env);
  assert.equal(result.ok, true, JSON.stringify(events.filter((e) => e.type === 'step-failed')));
  assert.deepEqual(calls, [
    'kubectl get deployment ccc -n default -o json',
    'kubectl get configmap ccc-config -n default -o json',
    'kubectl patch configmap ccc-config -n default --type merge -p {"data":{"DB_HOST":"198.18.0.100"}}',
    'kubectl rollout restart deployment/ccc -n default',
    'kubectl get deployment ccc -n default -o json',
    'kubectl get configmap ccc-config -n default -o json',
    'kubectl scale deployment ccc -n default --replicas=2',
    'kubectl rollout status deployment/ccc -n default --timeout=300s',
    'kubectl get pods -n default -l app=ccc -o wide',
    'kubectl get deployment ccc -n default -o json',
    'kubectl rollout status deployment/ccc -n default --timeout=300s',
    'kubectl get pods -n default -l app=ccc -o wide',
  ]);
  const out = events.filter((e): e is Extract<EngineEvent, { type: 'output' }> => e.type === 'output').map((e) => e.line);
  assert.ok(out.includes('2 pod(s) of ccc running and ready: worker1 1, worker2 1'), out.join('\n'));
  const fin = events.find((e): e is Extract<EngineEvent, { type: 'step-finished' }> => e.type === 'step-finished' && e.stepId === 'app-scale.replicas')!;
  assert.equal(fin.note, '2 pod(s) of ccc running and ready: worker1 1, worker2 1');

  // What the cluster answers after the run (the transcript's last answers): nothing to do.
  const state = process.env.KUBECTL_STATE!;
  const events2: EngineEvent[] = [];
  const again = await runRunbooks({ mode: 'plan', runbooks: [appScaleRunbook], inventory: k8sInventory(OPTS), transport: new FakePool({ localBash: true }).transport, events: (e) => events2.push(e), env, resumeCommand: 'x' });
  assert.equal(again.changed, 0);
  assert.deepEqual(
    events2.filter((e): e is Extract<EngineEvent, { type: 'step-skipped' }> => e.type === 'step-skipped').map((e) => e.reason),
    ['config map ccc-config: DB_HOST = 198.18.0.100', 'deployment ccc: 2/2 replicas updated, ready and available'],
  );
  assert.ok(state);
});

test('refusals and bad options: one line naming the object or field and the fix', async () => {
  const { env } = tempHome();
  const { result, events } = await withKubectl('failures-transcript.txt', 'plan', { k8s: { deployment: 'nope', configMap: 'ccc-config' } }, env);
  assert.equal(result.ok, false);
  const failed = events.find((e): e is Extract<EngineEvent, { type: 'step-failed' }> => e.type === 'step-failed')!;
  assert.equal(failed.error, 'k8s_master: deployment nope not found in namespace default (Error from server (NotFound): deployments.apps "nope" not found); deploy the app first or fix options.k8s.deployment');
  assert.throws(() => k8sOptions({ k8s: { configMap: 'ccc-config' } }), /^Error: options\.k8s\.deployment: not set; give the app's Deployment name \(kubectl get deployments -n <namespace>\)$/);
  assert.throws(() => k8sOptions({ k8s: { deployment: 'CCC', configMap: 'x' } }), /^Error: options\.k8s\.deployment: must be a Kubernetes object name .* \(got "CCC"\)$/);
  assert.throws(() => k8sOptions({ k8s: { deployment: 'ccc', configMap: 'x', replicas: -1 } }), /^Error: options\.k8s\.replicas: /);
  assert.throws(() => k8sOptions({ k8s: { deployment: 'ccc', configMap: 'x', replica: 2 } }), /^Error: options\.k8s: unknown setting "replica"; known: namespace, deployment, /);
});
