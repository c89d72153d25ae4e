/**
 * What ~/.ssh/config says about a host, via the ssh-config package's compute(): HostName, User,
 * Port, IdentityFile, ProxyJump, UserKnownHostsFile and a few related options. Values come back
 * raw; expandSshPath() expands ~ and the common % tokens once the final user and port are known.
 * `Match exec` is not evaluated (no command is ever run while reading a config).
 */
import { readFileSync } from 'node:fs';
import SSHConfig from 'ssh-config';

export interface SshConfigValues {
  hostName?: string;
  user?: string;
  port?: number;
  /** In the order ssh would try them; tokens and ~ not yet expanded. */
  identityFiles: string[];
  /** Raw ProxyJump value (undefined for none). */
  proxyJump?: string;
  userKnownHostsFiles: string[];
  hashKnownHosts?: boolean;
  /** yes | no | accept-new | ask ... as written. */
  strictHostKeyChecking?: string;
  connectTimeoutMs?: number;
  identityAgent?: string;
}

/** Parses config text; throws a one-line error naming the file on a syntax error. */
export function parseSshConfig(text: string, file = 'ssh config'): SSHConfig {
  try {
    return SSHConfig.parse(text);
  } catch (err) {
    throw new Error(`${file}: cannot parse (${(err as Error).message.split('\n')[0]}); fix the file or pass another with ssh.configFile`);
  }
}

/** The parsed file, or null when it does not exist. */
export function loadSshConfig(file: string): SSHConfig | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`${file}: cannot read (${(err as Error).message})`);
  }
  return parseSshConfig(text, file);
}

const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);
const list = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

export function lookupSshConfig(config: SSHConfig | null, host: string): SshConfigValues {
  if (!config) return { identityFiles: [], userKnownHostsFiles: [] };
  const c = config.compute(host, { ignoreCase: true, matchExec: false });
  const out: SshConfigValues = {
    identityFiles: list(c.identityfile).filter((f) => f.toLowerCase() !== 'none'),
    userKnownHostsFiles: list(c.userknownhostsfile).flatMap((f) => f.split(/\s+/)).filter((f) => f && f !== 'none'),
  };
  const hostName = first(c.hostname);
  if (hostName) out.hostName = hostName.replace(/%h/g, host).replace(/%%/g, '%');
  const user = first(c.user);
  if (user) out.user = user;
  const port = first(c.port);
  if (port !== undefined) {
    const n = Number(port);
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`ssh config: Port "${port}" for ${host} is not a port number; fix it in the config`);
    out.port = n;
  }
  const jump = first(c.proxyjump);
  if (jump && jump.toLowerCase() !== 'none') out.proxyJump = jump;
  const hash = first(c.hashknownhosts);
  if (hash) out.hashKnownHosts = hash.toLowerCase() === 'yes';
  const strict = first(c.stricthostkeychecking);
  if (strict) out.strictHostKeyChecking = strict.toLowerCase();
  const timeout = Number(first(c.connecttimeout));
  if (Number.isFinite(timeout) && timeout > 0) out.connectTimeoutMs = timeout * 1000;
  const agent = first(c.identityagent);
  if (agent) out.identityAgent = agent;
  return out;
}

export interface TokenContext {
  /** %h: the remote host name (after HostName). */
  host: string;
  /** %n: the name as given (the address from the table). */
  originalHost: string;
  /** %p */
  port: number;
  /** %r: the remote login user. */
  user: string;
  /** %u: the local user. */
  localUser: string;
  /** %d and ~: the local home directory. */
  home: string;
}

/** Expands a leading ~ and the tokens %h %n %p %r %u %d %%. Unknown tokens are left as they are. */
export function expandSshPath(value: string, ctx: TokenContext): string {
  let v = value;
  if (v === '~' || v.startsWith('~/')) v = ctx.home + v.slice(1);
  const tokens: Record<string, string> = {
    h: ctx.host,
    n: ctx.originalHost,
    p: String(ctx.port),
    r: ctx.user,
    u: ctx.localUser,
    d: ctx.home,
    '%': '%',
  };
  return v.replace(/%([hnprud%])/g, (m, t: string) => tokens[t] ?? m);
}

export interface JumpSpec {
  user?: string;
  host: string;
  port?: number;
}

/**
 * Parses a ProxyJump / ssh -J value: `[user@]host[:port]`, `[user@][v6addr]:port` or
 * `ssh://[user@]host[:port]`, several separated by commas (connected in that order).
 */
export function parseProxyJump(spec: string): JumpSpec[] {
  return spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((part) => {
      let s = part.replace(/^ssh:\/\//, '');
      const out: JumpSpec = { host: '' };
      const at = s.lastIndexOf('@');
      if (at >= 0) {
        out.user = s.slice(0, at);
        s = s.slice(at + 1);
      }
      const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
      const plain = /^([^:]+)(?::(\d+))?$/.exec(s);
      const m = v6 ?? plain;
      if (!m || !m[1]) throw new Error(`ProxyJump "${part}" is not [user@]host[:port]; fix ssh.proxyJump or the ssh config`);
      out.host = m[1];
      if (m[2]) {
        const port = Number(m[2]);
        if (port < 1 || port > 65535) throw new Error(`ProxyJump "${part}": port ${m[2]} is out of range`);
        out.port = port;
      }
      return out;
    });
}
