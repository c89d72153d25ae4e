/**
 * From a server of the table and the ssh settings to a Transport. Precedence, first wins:
 * per-host settings (ssh.hosts.<alias>) > cluster settings (ssh.*) > ~/.ssh/config (or
 * ssh.configFile) > defaults (user root, port 22, ~/.ssh/id_ed25519|id_ecdsa|id_rsa when they
 * exist, ssh-agent from SSH_AUTH_SOCK, ~/.ssh/known_hosts).
 *
 * Jump hosts (ProxyJump, several separated by commas) are resolved through the ssh config like
 * the target; their user defaults to the config's, else the local user (as OpenSSH does), and
 * ssh.identity and ssh.knownHosts apply to them too.
 */
import { existsSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import type { HostRef } from '../engine/step.js';
import type { Secret } from '../engine/shell.js';
import type { Inventory, SshSettings } from '../inventory/types.js';
import { expandSshPath, loadSshConfig, lookupSshConfig, parseProxyJump, type TokenContext } from './ssh-config.js';
import { SshTransport, type SshTransportOptions, type UnknownHostKey } from './ssh.js';
import type { Transport } from './types.js';

export interface ConnectOptions {
  /** Add unknown host keys to known_hosts without asking (--accept-new-host-keys). */
  acceptNewHostKeys?: boolean;
  /** Asked about an unknown host key (the wizard shows the fingerprint); true accepts it. */
  onUnknownHostKey?: (key: UnknownHostKey) => Promise<boolean>;
  password?: Secret;
  /** HOME, USER and SSH_AUTH_SOCK come from here (default process.env). */
  env?: NodeJS.ProcessEnv;
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
}

const DEFAULT_IDENTITIES = ['id_ed25519', 'id_ecdsa', 'id_rsa'];
const GLOBAL_KNOWN_HOSTS = '/etc/ssh/ssh_known_hosts';

/** Per-host overrides over the cluster's ssh settings. */
export function mergeSshSettings(ssh: Inventory['ssh'] | undefined, alias: string): SshSettings {
  const { hosts, ...cluster } = ssh ?? {};
  const own = hosts?.[alias] ?? {};
  const out: SshSettings = { ...cluster };
  for (const [k, v] of Object.entries(own)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

function localUser(env: NodeJS.ProcessEnv): string {
  if (env.USER) return env.USER;
  try {
    return userInfo().username;
  } catch {
    return 'root';
  }
}

/** The fully resolved connection options for one server (pure apart from reading files). */
export function resolveSshOptions(target: HostRef, settings: SshSettings, options: ConnectOptions = {}): SshTransportOptions {
  const env = options.env ?? process.env;
  const home = env.HOME || homedir();
  const me = localUser(env);
  const configFile = expandSshPath(settings.configFile ?? '~/.ssh/config', { host: '', originalHost: '', port: 22, user: '', localUser: me, home });
  const config = loadSshConfig(configFile);

  const resolve = (address: string, over: { user?: string; port?: number }, defaultUser: string): SshTransportOptions => {
    const cfg = lookupSshConfig(config, address);
    const host = cfg.hostName ?? address;
    const user = over.user ?? cfg.user ?? defaultUser;
    const port = over.port ?? cfg.port ?? 22;
    const tokens: TokenContext = { host, originalHost: address, port, user, localUser: me, home };
    const expand = (p: string) => expandSshPath(p, tokens);

    let identityFiles: string[];
    let identityExplicit = false;
    if (settings.identity) {
      identityFiles = [expand(settings.identity)];
      identityExplicit = true;
    } else if (cfg.identityFiles.length) {
      identityFiles = cfg.identityFiles.map(expand);
    } else {
      identityFiles = DEFAULT_IDENTITIES.map((n) => `${home}/.ssh/${n}`).filter((f) => existsSync(f));
    }

    let knownHostsFiles: string[];
    if (settings.knownHosts) knownHostsFiles = [expand(settings.knownHosts)];
    else {
      const user = cfg.userKnownHostsFiles.length ? cfg.userKnownHostsFiles.map(expand) : [`${home}/.ssh/known_hosts`];
      knownHostsFiles = [...user, GLOBAL_KNOWN_HOSTS];
    }

    let agent = env.SSH_AUTH_SOCK || undefined;
    const a = cfg.identityAgent;
    if (a?.toLowerCase() === 'none') agent = undefined;
    else if (a && /^(\$\{?)?SSH_AUTH_SOCK\}?$/.test(a)) agent = env.SSH_AUTH_SOCK || undefined;
    else if (a) agent = expand(a);

    const o: SshTransportOptions = {
      name: target.alias,
      host,
      port,
      user,
      identityFiles,
      identityExplicit,
      knownHostsFiles,
      hashKnownHosts: cfg.hashKnownHosts === true,
      acceptNewHostKeys: options.acceptNewHostKeys === true || cfg.strictHostKeyChecking === 'accept-new',
      connectTimeoutMs: options.connectTimeoutMs ?? cfg.connectTimeoutMs,
      commandTimeoutMs: options.commandTimeoutMs,
      home,
    };
    if (agent) o.agent = agent;
    if (options.onUnknownHostKey) o.onUnknownHostKey = options.onUnknownHostKey;
    return o;
  };

  const main = resolve(target.address, { user: settings.user, port: settings.port }, 'root');
  if (options.password) main.password = options.password;
  const jumpSpec = settings.proxyJump ?? lookupSshConfig(config, target.address).proxyJump;
  if (jumpSpec) {
    // ssh -J a,b target: a is dialled first, b through a, the target through b.
    let via: SshTransportOptions | undefined;
    for (const hop of parseProxyJump(jumpSpec)) {
      const h = resolve(hop.host, { user: hop.user, port: hop.port }, me);
      if (via) h.jump = via;
      via = h;
    }
    if (via) main.jump = via;
  }
  return main;
}

export function createSshTransport(target: HostRef, settings: SshSettings, options: ConnectOptions = {}): SshTransport {
  return new SshTransport(resolveSshOptions(target, settings, options));
}

export interface TransportPool {
  /** The one transport of this server (created on first use, connected lazily). */
  get(target: HostRef): Transport;
  readonly size: number;
  closeAll(): Promise<void>;
}

/** One transport per alias, all closed at the end. */
export function createTransportPool(
  ssh: Inventory['ssh'] | undefined,
  options: ConnectOptions = {},
  create: (target: HostRef, settings: SshSettings, options: ConnectOptions) => Transport = createSshTransport,
): TransportPool {
  const pool = new Map<string, Transport>();
  return {
    get(target) {
      let t = pool.get(target.alias);
      if (!t) {
        t = create(target, mergeSshSettings(ssh, target.alias), options);
        pool.set(target.alias, t);
      }
      return t;
    },
    get size() {
      return pool.size;
    },
    async closeAll() {
      const all = [...pool.values()];
      pool.clear();
      await Promise.allSettled(all.map((t) => t.close()));
    },
  };
}
