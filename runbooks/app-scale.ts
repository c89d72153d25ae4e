/**
 * Topology B (Kubernetes): on the k8s_master, put the DB VIP into the app's config map,
 * `kubectl scale deployment <name> --replicas=<N>`, wait for the rollout, report the pods per
 * node. No Kubernetes runs in the lab: this runbook is proven by plan fixtures and by its
 * parsers run on a transcript of kubectl's output format (test/fixtures/kubectl).
 */
import { z } from 'zod';
import { sh } from '../source/engine/shell.js';
import { defineStep, done, type Action, type ExecContext, type FactDef, type Runbook } from '../source/engine/step.js';
import { b64, parseKv } from './lib/pg-facts.js';

const name = z.string().regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, 'must be a Kubernetes object name (lowercase letters, digits, - and .)');

export const k8sOptionsSchema = z.strictObject({
  namespace: name.default('default'),
  /** The app's Deployment (kubectl get deployments). */
  deployment: name,
  /** The app's ConfigMap that carries the database address. */
  configMap: name,
  /** The key of the config map that holds the database address. */
  dbHostKey: z.string().regex(/^[-._a-zA-Z0-9]+$/, 'must be a config map key (letters, digits, - _ .)').default('DB_HOST'),
  replicas: z.coerce.number().int().min(0).max(100).default(2),
  /** How long kubectl rollout status waits (seconds). */
  rolloutTimeout: z.coerce.number().int().min(10).max(3600).default(300),
});
export type K8sOptions = z.infer<typeof k8sOptionsSchema>;

export function k8sOptions(options: Record<string, unknown>): K8sOptions {
  const raw = options.k8s ?? {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error('options.k8s: must be a mapping (deployment, configMap, replicas, ...)');
  const parsed = k8sOptionsSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  if (issue.code === 'unrecognized_keys') throw new Error(`options.k8s: unknown setting ${issue.keys.map((k) => `"${k}"`).join(', ')}; known: ${Object.keys(k8sOptionsSchema.shape).join(', ')}`);
  const key = issue.path.map(String).join('.');
  const value = (raw as Record<string, unknown>)[key];
  if (value === undefined) return fail(`options.k8s.${key}: not set; give the app's ${key === 'configMap' ? 'ConfigMap' : 'Deployment'} name (kubectl get ${key === 'configMap' ? 'configmaps' : 'deployments'} -n <namespace>)`);
  return fail(`options.k8s.${key}: ${issue.message} (got ${JSON.stringify(value)})`);
}
const fail = (m: string): never => {
  throw new Error(m);
};

// ---------------------------------------------------------------------------------------------
// Parsers of kubectl output (tested on test/fixtures/kubectl)

export interface DeploymentInfo {
  /** spec.replicas: wanted. */
  replicas: number;
  /** status.replicas: pods that exist now, old and new. */
  currentReplicas: number;
  updatedReplicas: number;
  readyReplicas: number;
  availableReplicas: number;
  generation: number;
  observedGeneration: number;
  matchLabels: Record<string, string>;
}

interface DeploymentJson {
  metadata?: { generation?: number };
  spec?: { replicas?: number; selector?: { matchLabels?: Record<string, string> } };
  status?: { observedGeneration?: number; replicas?: number; updatedReplicas?: number; readyReplicas?: number; availableReplicas?: number };
}

/** `kubectl get deployment NAME -o json`. */
export function parseDeployment(json: string): DeploymentInfo {
  const d = JSON.parse(json) as DeploymentJson;
  return {
    replicas: d.spec?.replicas ?? 1,
    currentReplicas: d.status?.replicas ?? 0,
    updatedReplicas: d.status?.updatedReplicas ?? 0,
    readyReplicas: d.status?.readyReplicas ?? 0,
    availableReplicas: d.status?.availableReplicas ?? 0,
    generation: d.metadata?.generation ?? 0,
    observedGeneration: d.status?.observedGeneration ?? 0,
    matchLabels: d.spec?.selector?.matchLabels ?? {},
  };
}

/**
 * Rolled out, as kubectl rollout status decides it: the controller saw the latest spec, every
 * wanted replica is updated and available, and no old replica is left.
 */
export const rolledOut = (d: DeploymentInfo): boolean =>
  d.observedGeneration >= d.generation &&
  d.updatedReplicas === d.replicas &&
  d.currentReplicas === d.updatedReplicas &&
  d.availableReplicas === d.replicas &&
  d.readyReplicas === d.replicas;

/** `kubectl get configmap NAME -o json` -> its data. */
export function parseConfigMap(json: string): Record<string, string> {
  return (JSON.parse(json) as { data?: Record<string, string> }).data ?? {};
}

export interface PodRow {
  name: string;
  ready: string;
  status: string;
  restarts: string;
  age: string;
  ip: string;
  node: string;
}

/**
 * `kubectl get pods -o wide`: columns are cut at the header's offsets (kubectl aligns them
 * with a tabwriter), because cells may hold spaces: RESTARTS reads "2 (5m ago)" since 1.22.
 */
export function parseGetPodsWide(text: string): PodRow[] {
  const lines = text.split('\n').filter((l) => l.trim());
  const header = lines.findIndex((l) => /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE\b/.test(l));
  if (header < 0) {
    if (lines.some((l) => /^No resources found/.test(l))) return [];
    throw new Error(`kubectl get pods -o wide: no header line in "${lines[0] ?? ''}"`);
  }
  const h = lines[header]!;
  const cols = ['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE', 'IP', 'NODE', 'NOMINATED NODE'];
  const at = cols.map((c) => h.search(new RegExp(`(^|\\s)${c}(\\s|$)`)) + (c === 'NAME' ? 0 : 1));
  const cell = (l: string, i: number): string => l.slice(at[i]!, i + 1 < at.length && at[i + 1]! > 0 ? at[i + 1] : undefined).trim();
  return lines.slice(header + 1).map((l) => ({
    name: cell(l, 0),
    ready: cell(l, 1),
    status: cell(l, 2),
    restarts: cell(l, 3),
    age: cell(l, 4),
    ip: cell(l, 5),
    node: cell(l, 6),
  }));
}

/** Running pods with every container ready, counted per node. */
export function podsPerNode(rows: PodRow[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of rows) {
    const [ok, all] = r.ready.split('/').map(Number);
    if (r.status !== 'Running' || !all || ok !== all) continue;
    out[r.node] = (out[r.node] ?? 0) + 1;
  }
  return out;
}

/** `kubectl rollout status`: done, or the last waiting/error line. */
export function parseRolloutStatus(text: string): { done: boolean; message: string } {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  const last = lines[lines.length - 1] ?? '';
  return { done: /successfully rolled out$/.test(last), message: last };
}

export const selectorOf = (labels: Record<string, string>): string =>
  Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

// ---------------------------------------------------------------------------------------------
// Facts and steps

/** kubectl as root on the master: the admin kubeconfig when root has none of its own (also `ha-setup status`'s). */
export const KUBECTL_ENV = 'if [ -z "${KUBECONFIG:-}" ] && [ ! -f "$HOME/.kube/config" ] && [ -f /etc/kubernetes/admin.conf ]; then export KUBECONFIG=/etc/kubernetes/admin.conf; fi';

export interface K8sFacts {
  kubectl: boolean;
  deployment: DeploymentInfo | null;
  deploymentError: string | null;
  configMap: Record<string, string> | null;
  configMapError: string | null;
}

export function k8sFact(o: K8sOptions): FactDef<K8sFacts> {
  const get = (key: string, kind: string, n: string): string =>
    `if out=$(kubectl get ${kind} ${sh`${n}`} -n ${sh`${o.namespace}`} -o json 2>&1); then echo "${key}=$(printf '%s' "$out" | base64 -w0)"; else echo "${key}_ERR=$(printf '%s' "$out" | tail -n1 | base64 -w0)"; fi`;
  return {
    id: `k8s-${o.namespace}-${o.deployment}-${o.configMap}`,
    sudo: true,
    script: [KUBECTL_ENV, 'if ! command -v kubectl >/dev/null 2>&1; then echo KUBECTL=no; exit 0; fi', 'echo KUBECTL=yes', get('DEPLOY', 'deployment', o.deployment), get('CM', 'configmap', o.configMap)].join('\n'),
    parse(stdout) {
      const kv = parseKv(stdout);
      const dep = b64(kv, 'DEPLOY');
      const cm = b64(kv, 'CM');
      return {
        kubectl: kv.KUBECTL === 'yes',
        deployment: dep ? parseDeployment(dep) : null,
        deploymentError: b64(kv, 'DEPLOY_ERR'),
        configMap: cm ? parseConfigMap(cm) : null,
        configMapError: b64(kv, 'CM_ERR'),
      };
    },
  };
}

/** The control-plane node; a table without one (topology lb) has nothing to scale here. */
const master = ({ hosts }: { hosts: Record<string, unknown> }): string[] => (hosts.k8s_master ? ['k8s_master'] : []);
const kubectl = (script: string): string => `${KUBECTL_ENV}\n${script}`;

function needKubectl(f: K8sFacts, alias: string, o: K8sOptions): void {
  if (!f.kubectl) throw new Error(`${alias}: kubectl is not installed (or not on root's PATH); run this on the Kubernetes control-plane node`);
  if (!f.deployment) throw new Error(`${alias}: deployment ${o.deployment} not found in namespace ${o.namespace} (${f.deploymentError ?? 'no answer'}); deploy the app first or fix options.k8s.deployment`);
}

const configMap = defineStep({
  id: 'app-scale.configmap',
  title: "The DB VIP in the app's config map",
  targets: master,
  facts: (ctx) => ({ k: k8sFact(k8sOptions(ctx.options)) }),
  inputs: (ctx) => [k8sOptions(ctx.options), ctx.addresses.db_vip],
  plan({ k }, ctx) {
    const o = k8sOptions(ctx.options);
    const vip = ctx.addresses.db_vip;
    if (!vip) throw new Error('app-scale: the server table has no db_vip; add it (the address the app connects to)');
    needKubectl(k, ctx.host.alias, o);
    if (!k.configMap) throw new Error(`${ctx.host.alias}: config map ${o.configMap} not found in namespace ${o.namespace} (${k.configMapError ?? 'no answer'}); create it with the app's manifests or fix options.k8s.configMap`);
    const now = k.configMap[o.dbHostKey];
    if (now === vip) return done(`config map ${o.configMap}: ${o.dbHostKey} = ${vip}`);
    const patch = JSON.stringify({ data: { [o.dbHostKey]: vip } });
    return {
      actions: [
        { kind: 'run', title: `set ${o.dbHostKey} = ${vip} in config map ${o.configMap} (was ${now ?? 'unset'})`, script: kubectl(sh`kubectl patch configmap ${o.configMap} -n ${o.namespace} --type merge -p ${patch}`), sudo: true },
        // Pods read a config map's values at start: restart them so that they use the VIP.
        { kind: 'run', title: `restart the pods of deployment ${o.deployment} (they read the config map at start)`, script: kubectl(sh`kubectl rollout restart ${`deployment/${o.deployment}`} -n ${o.namespace}`), sudo: true },
      ],
      reason: `namespace ${o.namespace}`,
    };
  },
});

/** The pods of the deployment per node, after the rollout finished. */
async function rolloutReport(ctx: ExecContext, o: K8sOptions, labels: Record<string, string>): Promise<string> {
  const status = await ctx.run(`wait for the rollout of ${o.deployment}`, kubectl(sh`kubectl rollout status ${`deployment/${o.deployment}`} -n ${o.namespace} ${`--timeout=${o.rolloutTimeout}s`}`), { sudo: true, check: false });
  const st = parseRolloutStatus(`${status.stdout}\n${status.stderr}`);
  if (!st.done) throw new Error(`${ctx.host.alias}: deployment ${o.deployment} did not roll out within ${o.rolloutTimeout} s: ${st.message}`);
  const pods = await ctx.run(`pods of ${o.deployment} per node`, kubectl(sh`kubectl get pods -n ${o.namespace} -l ${selectorOf(labels)} -o wide`), { sudo: true });
  const per = podsPerNode(parseGetPodsWide(pods.stdout));
  const total = Object.values(per).reduce((a, b) => a + b, 0);
  if (total !== o.replicas) throw new Error(`${ctx.host.alias}: ${total} pod(s) of ${o.deployment} are running and ready, ${o.replicas} wanted`);
  const nodes = Object.entries(per).sort(([a], [b]) => a.localeCompare(b)).map(([n, c]) => `${n} ${c}`);
  return `${total} pod(s) of ${o.deployment} running and ready${nodes.length ? `: ${nodes.join(', ')}` : ''}`;
}

const scale = defineStep({
  id: 'app-scale.replicas',
  title: 'Scale the app deployment, wait for the rollout, pods per node',
  targets: master,
  facts: (ctx) => ({ k: k8sFact(k8sOptions(ctx.options)) }),
  inputs: (ctx) => k8sOptions(ctx.options),
  plan({ k }, ctx) {
    const o = k8sOptions(ctx.options);
    needKubectl(k, ctx.host.alias, o);
    const d = k.deployment!;
    if (Object.keys(d.matchLabels).length === 0) throw new Error(`${ctx.host.alias}: deployment ${o.deployment} has no spec.selector.matchLabels; ha-setup finds its pods by them`);
    if (d.replicas === o.replicas && rolledOut(d)) return done(`deployment ${o.deployment}: ${d.replicas}/${o.replicas} replicas updated, ready and available`);
    const actions: Action[] = [];
    if (d.replicas !== o.replicas) {
      actions.push({ kind: 'run', title: `kubectl scale deployment ${o.deployment} --replicas=${o.replicas} (now ${d.replicas})`, script: kubectl(sh`kubectl scale deployment ${o.deployment} -n ${o.namespace} ${`--replicas=${o.replicas}`}`), sudo: true });
    }
    actions.push({ kind: 'run', title: `kubectl rollout status deployment/${o.deployment} (up to ${o.rolloutTimeout} s), then pods per node`, script: kubectl(sh`kubectl rollout status ${`deployment/${o.deployment}`} -n ${o.namespace} ${`--timeout=${o.rolloutTimeout}s`}`), sudo: true });
    return { actions, reason: `${d.readyReplicas} of ${d.replicas} replicas ready now` };
  },
  async apply(plan, ctx, facts) {
    const o = k8sOptions(ctx.options);
    for (const a of plan.actions) if (a.kind === 'run' && a.title.startsWith('kubectl scale')) await ctx.run(a.title, a.script, { sudo: true });
    ctx.log(await rolloutReport(ctx, o, (facts as { k: K8sFacts }).k.deployment!.matchLabels));
  },
  async verify(ctx) {
    const o = k8sOptions(ctx.options);
    const dep = await ctx.run(`deployment ${o.deployment}`, kubectl(sh`kubectl get deployment ${o.deployment} -n ${o.namespace} -o json`), { sudo: true });
    return rolloutReport(ctx, o, parseDeployment(dep.stdout).matchLabels);
  },
});

export const appScaleRunbook: Runbook = {
  id: 'app-scale',
  title: 'App on Kubernetes: DB VIP in the config map, replicas, rollout',
  description:
    "The k8s guide's app steps on the master: the DB VIP into the app's config map (pods restarted to read it), kubectl scale deployment <name> --replicas=<N>, kubectl rollout status, pods per node. Proven by plan fixtures and kubectl output fixtures only (no Kubernetes in the lab).",
  steps: [configMap, scale],
};
