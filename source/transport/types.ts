/**
 * How the engine reaches a host. Two implementations: ssh2 (remote) and zx (the jump host
 * itself). Both run a command as a script on the stdin of `bash -s` with `set -euo pipefail`,
 * so that no script text, and no secret inside a heredoc, ever appears in argv.
 */

export interface ExecOptions {
  /** Run as root: `sudo -n` when the login user is not root. Default false. */
  sudo?: boolean;
  /** Run as this user (via `sudo -n -u`), e.g. postgres. Implies sudo. */
  user?: string;
  /** Kill the command after this many ms (default from the transport, e.g. 10 min). */
  timeoutMs?: number;
  /** Called per complete line of output, as it arrives. */
  onLine?: (stream: 'stdout' | 'stderr', line: string) => void;
  signal?: AbortSignal;
  /** Extra data appended after the script on stdin is not supported: use heredocs. */
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
  durationMs: number;
  /** Set when the command was killed by the timeout or the abort signal. */
  killed?: 'timeout' | 'aborted';
}

export interface WriteFileOptions {
  mode: number;
  owner?: string;
  group?: string;
  /** Keep a copy of the file it replaces (default true). */
  backup?: boolean;
}

export interface WriteFileResult {
  /** False when the file already had exactly this content, mode and owner. */
  changed: boolean;
  /** Where the replaced file was kept, if there was one. */
  backupPath?: string;
}

export interface Transport {
  /** What events and errors call this host: its alias or address. */
  readonly name: string;
  /** Login user on the host. */
  readonly user: string;
  connect(): Promise<void>;
  exec(script: string, options?: ExecOptions): Promise<ExecResult>;
  /** File content as root, or null when it does not exist. */
  readFile(path: string): Promise<string | null>;
  /** Atomic write (temp file in the same directory + rename), as root, owner and mode set. */
  writeFile(path: string, content: string, options: WriteFileOptions): Promise<WriteFileResult>;
  close(): Promise<void>;
}

/** A failure the user can act on: one line naming the host and the fix. */
export class TransportError extends Error {
  constructor(
    readonly host: string,
    readonly kind:
      | 'unreachable'
      | 'timeout'
      | 'auth'
      | 'host-key-changed'
      | 'host-key-unknown'
      | 'sudo'
      | 'command'
      | 'sftp',
    message: string,
    readonly fix?: string,
  ) {
    super(fix ? `${host}: ${message} (${fix})` : `${host}: ${message}`);
    this.name = 'TransportError';
  }
}
