/**
 * PostgreSQL on lab hosts, seen the way an admin or an app sees it (not through ha-setup):
 * psql as postgres on the server's own socket, and an app client that connects over the
 * network with sslmode=verify-full. Everything goes over OpenSSH (lab.ssh), scripts and
 * passwords on stdin: a password is written into a 0600 PGPASSFILE, never put in argv.
 */
import { quote } from '../../source/engine/shell.js';
import type { Lab, SshResult } from './lab.js';

export const PG_BIN = '/usr/lib/postgresql/15/bin';

/** SQL as postgres over the local socket of `host`; must succeed; returns psql -At output. */
export function pgLocal(lab: Lab, host: string, sql: string, db = 'postgres'): Promise<string> {
  return lab.sh(host, `cd / && runuser -u postgres -- ${PG_BIN}/psql -X -At -q -v ON_ERROR_STOP=1 -d ${quote(db)} <<'HA_TEST_SQL'\n${sql}\nHA_TEST_SQL`);
}

export interface AppClient {
  /** The host the client runs on (its address). */
  host: string;
  user: string;
  db: string;
  /** The name libpq checks the server certificate against (the DB VIP). */
  name: string;
  port: number;
  /** Runs SQL on `node` (hostaddr) as the app; the result, whatever the exit code. */
  psql(node: string, sql: string, opts?: { name?: string }): Promise<SshResult>;
  /** psql() that must succeed; its trimmed stdout. */
  query(node: string, sql: string): Promise<string>;
}

const CLIENT_DIR = '/root/ha-test-client';

/**
 * Puts the app's password (0600 PGPASSFILE) and the cluster CA file on `host`, both sent in
 * the SSH script on stdin, and returns a client that connects with host=<name> (checked
 * against the certificate's subjectAltName) and hostaddr=<node>.
 */
export async function appClient(
  lab: Lab,
  host: string,
  opts: { user: string; db: string; password: string; caPem: string; name: string; port?: number },
): Promise<AppClient> {
  if (/[:\\\n]/.test(opts.password)) throw new Error('the password needs .pgpass escaping, which this helper does not do');
  await lab.sh(
    host,
    [
      'set -e',
      'umask 077',
      `mkdir -p ${CLIENT_DIR}`,
      `cat > ${CLIENT_DIR}/pgpass <<'HA_TEST_EOF'`,
      `*:*:${opts.db}:${opts.user}:${opts.password}`,
      'HA_TEST_EOF',
      `cat > ${CLIENT_DIR}/ca.crt <<'HA_TEST_EOF'`,
      opts.caPem.trimEnd(),
      'HA_TEST_EOF',
      `chmod 0644 ${CLIENT_DIR}/ca.crt`,
    ].join('\n'),
  );
  const port = opts.port ?? 5432;
  const client: AppClient = {
    host,
    user: opts.user,
    db: opts.db,
    name: opts.name,
    port,
    psql(node, sql, o = {}) {
      const conninfo = `host=${o.name ?? opts.name} hostaddr=${node} port=${port} dbname=${opts.db} user=${opts.user} sslmode=verify-full sslrootcert=${CLIENT_DIR}/ca.crt connect_timeout=5`;
      return lab.ssh(host, `export PGPASSFILE=${CLIENT_DIR}/pgpass\n${PG_BIN}/psql -X -At -q -w -v ON_ERROR_STOP=1 ${quote(conninfo)} <<'HA_TEST_SQL'\n${sql}\nHA_TEST_SQL`);
    },
    async query(node, sql) {
      const r = await client.psql(node, sql);
      if (r.code !== 0) throw new Error(`${opts.user}@${node} from ${host}: exit ${r.code}: ${r.stderr.trim()}`);
      return r.stdout.trim();
    },
  };
  return client;
}

/**
 * A TCP connection from `from` to `to:port` within `seconds`: 'open', 'timeout' (no answer:
 * a firewall dropping it) or 'refused' (a reset: nothing listening, or a firewall rejecting).
 */
export async function tcpProbe(lab: Lab, from: string, to: string, port: number, seconds = 2): Promise<'open' | 'timeout' | 'refused'> {
  const r = await lab.ssh(from, `timeout ${seconds} bash -c ${quote(`</dev/tcp/${to}/${port}`)} 2>/dev/null && echo open || echo "failed $?"`);
  const out = r.stdout.trim();
  if (out === 'open') return 'open';
  if (out === 'failed 124') return 'timeout';
  if (out.startsWith('failed')) return 'refused';
  throw new Error(`tcp probe from ${from} to ${to}:${port}: ${r.stderr.trim() || out}`);
}
