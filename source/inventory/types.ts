/**
 * The server table and its options, as loaded from YAML (--config), from the saved cluster
 * (conf), or built by the wizard. Validation lives in ./validate.ts; this is only the shape.
 */
export type Topology = 'lb' | 'k8s';

export interface SshSettings {
  /** Login user (default: from ~/.ssh/config, else root). */
  user?: string;
  port?: number;
  /** Private key file. */
  identity?: string;
  /** known_hosts file (default ~/.ssh/known_hosts). */
  knownHosts?: string;
  /** ssh config file (default ~/.ssh/config). */
  configFile?: string;
  /** Jump host, as in ssh -J / ProxyJump (user@host:port). */
  proxyJump?: string;
}

export interface Inventory {
  /** Cluster name: the key under which it is saved, and the state directory's name. */
  cluster: string;
  topology: Topology;
  /** The table lists only some roles on purpose (a staged rollout, a two-host lab): the
   *  completeness check is skipped, and a step that targets a role the table does not list is
   *  left out of the run with a note naming the role. Every other rule still applies. */
  partial?: boolean;
  /** Alias -> IP or hostname. Aliases: db_primary, db_standby, db_vip, nfs_primary,
   *  nfs_standby, nfs_vip, app1..appN, lb (topology lb) or k8s_master (topology k8s). */
  servers: Record<string, string>;
  network?: {
    /** Prefix length of the servers' subnet, for the "VIP in the pair's subnet" check. */
    prefix?: number;
  };
  ssh: SshSettings & { hosts?: Record<string, SshSettings> };
  /** Runbook options (postgres.version, postgres.appUser, ...), checked by each runbook. */
  options: Record<string, unknown>;
}
