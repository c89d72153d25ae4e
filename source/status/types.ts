/**
 * What `ha-setup status --json` prints: the live health of the cluster. Field names are part of
 * the tool's interface for monitoring scripts: add fields, never rename or remove one without
 * raising STATUS_SCHEMA. Every section is null when the table has nothing of that kind.
 * README.md ("Status") documents the fields in prose.
 */

/** Raised on an incompatible change of this structure. */
export const STATUS_SCHEMA = 1;

export type ServiceName = 'ssh' | 'vip' | 'postgres' | 'keepalived' | 'haproxy' | 'nfs' | 'k8s';

/** Something that needs attention (it makes the exit code 1), or a note (it does not). */
export interface Finding {
  service: ServiceName;
  /** The host it is about, when it is about one. */
  host?: string;
  message: string;
  /** One line: what to do about it, when there is an obvious fix. */
  fix?: string;
}

export interface HostReach {
  alias: string;
  address: string;
  reachable: boolean;
  latencyMs?: number;
  error?: string;
}

export interface VipStatus {
  /** db_vip, nfs_vip or lb_vip. */
  alias: string;
  address: string;
  /** The two hosts it floats between (the table's primary first). */
  pair: [string, string];
  /** Hosts that have the address on an interface now (`ip -o addr show`). */
  holders: string[];
  /** False when keepalived is not set up on the pair (the VIP is not expected anywhere yet). */
  deployed: boolean;
  /** Pair hosts that could not be asked (their holding is unknown). */
  unknown: string[];
}

/** `pg-ha status` of the keepalived runbook's helper (null fields: the helper is not installed). */
export interface FenceStatus {
  /** The helper /usr/local/lib/ha-setup/keepalived/pg-ha is installed. */
  installed: boolean;
  /** The node is fenced: PostgreSQL may start there only as a standby (until `ha-setup rejoin db`). */
  fenced: boolean | null;
  /** What the helper reports: primary | standby | down | unknown. */
  postgres: string | null;
  /** keepalived's tracked generation (the primary's timeline, 0 otherwise). */
  generation: string | null;
}

/** One standby seen from the primary (a row of pg_stat_replication). */
export interface ReplicationRow {
  clientAddr: string | null;
  /** The table alias whose address is clientAddr (or whose slot name is the application_name). */
  host: string | null;
  applicationName: string;
  /** startup | catchup | streaming | backup | stopping */
  state: string;
  /** async | potential | sync | quorum */
  syncState: string;
  sentLsn: string | null;
  replayLsn: string | null;
  /** pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn): bytes the standby has not replayed yet. */
  lagBytes: number | null;
  writeLagSeconds: number | null;
  flushLagSeconds: number | null;
  /** NULL in PostgreSQL once the standby is caught up and nothing is written. */
  replayLagSeconds: number | null;
}

/** The standby's own view (pg_stat_wal_receiver, pg_last_*()). */
export interface StandbyView {
  /** pg_stat_wal_receiver.status (streaming, ...) or null when no WAL receiver runs. */
  receiver: string | null;
  senderHost: string | null;
  receiveLsn: string | null;
  replayLsn: string | null;
  /** Received but not yet replayed. */
  replayBacklogBytes: number | null;
  /** pg_last_xact_replay_timestamp(), ISO (UTC). */
  lastReplayAt: string | null;
  /** Seconds since that commit was made on the primary (grows while the primary is idle). */
  lastReplayAgeSeconds: number | null;
}

export interface PgNodeStatus {
  host: string;
  address: string;
  /** PostgreSQL's binaries are installed here (the PostgreSQL runbooks ran). */
  deployed: boolean;
  /** running: answers queries; down: not running; unknown: running but did not answer, or host unreachable. */
  state: 'running' | 'down' | 'unknown';
  role: 'primary' | 'standby' | null;
  timeline: number | null;
  /** The systemd unit and what `systemctl is-active` says of it. */
  unit: string | null;
  unitState: string | null;
  /** Why state is not running (psql's error, or "host unreachable"). */
  error: string | null;
  fence: FenceStatus | null;
  /** Primary: its current WAL position. */
  currentLsn: string | null;
  /** Primary: every row of pg_stat_replication. */
  replication: ReplicationRow[];
  /** Standby: its receiver and replay position. */
  standby: StandbyView | null;
  /** Topology C: the ha-setup-pg-health unit's state (null when not installed). */
  healthService: string | null;
}

/** The replication of one standby node, both sides combined. */
export interface ReplicationLink {
  standby: string;
  /** The writable primary it should stream from (null when there is none). */
  primary: string | null;
  /** pg_stat_replication.state on the primary (null: no row for this standby). */
  state: string | null;
  syncState: string | null;
  /** Receiver status on the standby. */
  receiver: string | null;
  lagBytes: number | null;
  /**
   * Seconds behind: the primary's replay_lag when PostgreSQL reports one; 0 when nothing is
   * outstanding (lagBytes 0); else the age of the last replayed commit (an upper bound).
   */
  lagSeconds: number | null;
  writeLagSeconds: number | null;
  flushLagSeconds: number | null;
  replayLagSeconds: number | null;
}

export interface PostgresStatus {
  nodes: PgNodeStatus[];
  /** The one writable primary (null when none answers as one, or when two do). */
  primary: string | null;
  replication: ReplicationLink[];
}

export interface KeepalivedNode {
  host: string;
  /** db, nfs, or lb (the load balancer pair lb + lb_standby). */
  pair: string;
  /** keepalived.conf has this pair's vrrp_instance (the keepalived runbook ran). */
  deployed: boolean;
  /** `systemctl is-active keepalived` (null: host unreachable). */
  active: string | null;
  enabled: string | null;
  /** The last verdict of the pair's health check (its own record; null when none yet). */
  check: { ok: boolean; message: string } | null;
}

export interface HaproxyServer {
  name: string;
  /** The table alias of its address (app1, db_primary ...), when one matches. */
  host: string | null;
  address: string | null;
  /** HAProxy's status column as is: UP, DOWN, MAINT, "UP 1/2" (going down) ... */
  status: string;
  /** up | down | maint | drain | no-check | other */
  state: 'up' | 'down' | 'maint' | 'drain' | 'no-check' | 'other';
  /** L4OK, L4CON, L7STS ... (empty when no check ran yet). */
  checkStatus: string;
  checkCode: string | null;
  /** Seconds since the last UP/DOWN change. */
  lastChangeSeconds: number | null;
  sessions: number | null;
}

export interface HaproxyProxy {
  name: string;
  /** app: topology A's backend; db: topology C's database routing; other: anything else. */
  kind: 'app' | 'db' | 'other';
  /** The BACKEND row's status (UP / DOWN). */
  status: string | null;
  servers: HaproxyServer[];
}

export interface HaproxyStatus {
  /** lb or lb_standby. */
  host: string;
  /** haproxy.cfg is ha-setup's (runbook haproxy or db-routing ran). */
  deployed: boolean;
  active: string | null;
  /** Where the figures came from: the admin socket (`show stat`) or the stats page's CSV. */
  source: 'socket' | 'stats-page' | null;
  /** Why the figures could not be read. */
  error: string | null;
  proxies: HaproxyProxy[];
}

export interface NfsServerStatus {
  host: string;
  /** The export file ha-setup writes is there (the nfs runbook ran). */
  deployed: boolean;
  unit: string;
  active: string | null;
  /** Something listens on TCP 2049. */
  listening: boolean | null;
  /** The replication timer's state, and the result of its last pass. */
  replicationTimer: string | null;
  lastPass: { result: string; secondsAgo: number | null } | null;
}

export interface NfsClientCheck {
  host: string;
  /** How the export was reached through the NFS VIP: nfs-ls (libnfs), showmount, or a TCP connect to 2049. */
  method: 'nfs-ls' | 'showmount' | 'tcp' | null;
  ok: boolean | null;
  detail: string;
  /** The share's mount on this app server: source and whether it answered (null: not mounted). */
  mount: { source: string; ok: boolean } | null;
}

export interface NfsStatus {
  vip: string | null;
  exportDir: string;
  servers: NfsServerStatus[];
  clients: NfsClientCheck[];
}

/** A condition of the Deployment's status (Available, Progressing, ReplicaFailure) as the API reports it. */
export interface K8sCondition {
  type: string;
  /** True | False | Unknown */
  status: string;
  reason: string | null;
  message: string | null;
}

/** One pod of the app's Deployment (`kubectl get pods -l <selector> -o json`). */
export interface K8sPod {
  name: string;
  /** spec.nodeName (null: not scheduled on a node yet). */
  node: string | null;
  /** The table alias of that node: by the pod's status.hostIP, else by the node's name. */
  host: string | null;
  /** status.phase: Pending, Running, Succeeded, Failed, Unknown. */
  phase: string;
  /** The pod's Ready condition is True (it gets traffic). */
  ready: boolean;
  /** Containers ready, and containers (kubectl's READY column "1/1"). */
  containersReady: number;
  containers: number;
  /** The containers' restartCount, summed. */
  restarts: number;
  /**
   * Why it is not ready, when the API says: a container's waiting or terminated reason
   * (CrashLoopBackOff, ImagePullBackOff, Error ...) or the reason of a False pod condition
   * (Unschedulable); null when ready.
   */
  reason: string | null;
  /** That condition's message (the scheduler's "0/3 nodes are available: ..."), when there is one. */
  message: string | null;
  /** metadata.deletionTimestamp is set: it is on its way out (shown, not counted). */
  terminating: boolean;
}

/** The pods of the Deployment on one node. */
export interface K8sNodePods {
  /** The Kubernetes node name; null for the pods not scheduled on any node. */
  node: string | null;
  /** Its table alias (app1 ...), when it matches one. */
  host: string | null;
  ready: number;
  total: number;
  /** Pods of the Deployment on it that are being deleted (not in ready or total). */
  terminating: number;
}

/** The Deployment's replica counts (spec.replicas and status.*Replicas). */
export interface K8sReplicas {
  /** spec.replicas: wanted. */
  desired: number;
  /** status.replicas: pods that exist, old and new. */
  current: number;
  updated: number;
  ready: number;
  available: number;
}

/** Topology k8s: the app's Deployment as kubectl on k8s_master sees it (options.k8s, as app-scale). */
export interface K8sStatus {
  /** k8s_master. */
  host: string;
  namespace: string;
  /** The Deployment's name (options.k8s.deployment). */
  deployment: string;
  /**
   * ok: the API answered and the Deployment exists; no-kubectl: kubectl is not on root's PATH
   * on the host; api-unreachable: kubectl could not reach the API server; no-deployment: the API
   * says it does not exist; error: the API refused or failed (see error); unknown: the host did
   * not answer.
   */
  state: 'ok' | 'no-kubectl' | 'api-unreachable' | 'no-deployment' | 'error' | 'unknown';
  /** kubectl's error (its last line), when state is not ok. */
  error: string | null;
  /** The kubeconfig kubectl used ($KUBECONFIG, root's ~/.kube/config or /etc/kubernetes/admin.conf; null: none). */
  kubeconfig: string | null;
  replicas: K8sReplicas | null;
  /**
   * The rollout, from the Progressing condition: complete (NewReplicaSetAvailable), progressing,
   * failed (ProgressDeadlineExceeded), unknown (no such condition); rolledOut is what
   * `kubectl rollout status` (and app-scale) decides: every wanted replica updated, ready and
   * available, no old one left.
   */
  rollout: { state: 'complete' | 'progressing' | 'failed' | 'unknown'; reason: string | null; message: string | null; rolledOut: boolean } | null;
  conditions: K8sCondition[];
  /** spec.selector.matchLabels as a label selector (app=ccc): how its pods were found. */
  selector: string | null;
  pods: K8sPod[];
  /** Pods per node, ready / total (terminating pods left out), in node order; unscheduled last. */
  nodes: K8sNodePods[];
  /** App hosts of the table no pod runs on (only when the pods' nodes could be matched to the table). */
  idleAppHosts: string[];
  /** Why the pods could not be listed. */
  podsError: string | null;
  configMap: {
    name: string;
    /** options.k8s.dbHostKey (DB_HOST). */
    key: string;
    /** read: the map was read (value null: the key is not set); not-found; unknown: not asked, or the API failed. */
    state: 'read' | 'not-found' | 'unknown';
    value: string | null;
    /** The table's db_vip, which app-scale puts there (null: the table has none). */
    dbVip: string | null;
    error: string | null;
  };
}

export interface ClusterHealth {
  schema: number;
  cluster: string;
  topology: string;
  /** ISO time the collection started, and how long it took. */
  checkedAt: string;
  durationMs: number;
  /** No problem found (the exit code is 0 exactly then). */
  healthy: boolean;
  problems: Finding[];
  notes: Finding[];
  lock: { pid: number; hostname: string; startedAt: string; command: string; alive: boolean } | null;
  lastRun: { runId: string; ok: boolean; finishedAt: string; failed?: { stepId: string; hosts: string[] } } | null;
  resumeAt: { runbookId: string; stepId: string; hosts: string[]; runId: string } | null;
  hosts: HostReach[];
  vips: VipStatus[];
  postgres: PostgresStatus | null;
  keepalived: KeepalivedNode[] | null;
  /** One entry per load balancer (lb, and lb_standby when the table has it). */
  haproxy: HaproxyStatus[] | null;
  nfs: NfsStatus | null;
  /**
   * Topology k8s: the app tier on k8s_master (null when the table has no k8s_master in topology
   * k8s, or no options.k8s). `status` always sets it; optional in the type only so that
   * structures built before it was added still type-check.
   */
  k8s?: K8sStatus | null;
}
