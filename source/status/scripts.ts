/**
 * The one read-only script `ha-setup status` runs on each host, built from the table: a section
 * per service the host has a role in, each introduced by a marker line (`@@ha-status <name>`)
 * and printing KEY=value lines (or a command's own output) that ./parse.ts reads. Every command
 * that could wait on something has its own `timeout`; the transport adds one for the whole
 * script. Nothing secret is in any argv: the HAProxy stats password is read from haproxy.cfg on
 * the lb itself and reaches the stats page through bash builtins and a pipe. On k8s_master
 * (topology k8s) kubectl is asked read-only, as root with app-scale's kubeconfig handling: only
 * the config map's DB host key leaves the host, not the rest of the map.
 */
import { heredoc, quote, sh } from '../engine/shell.js';
import type { Inventory } from '../inventory/types.js';
import { appNumber } from '../inventory/roles.js';
import { PAIRS, PG_SCRIPT, type Pair } from '../../runbooks/lib/keepalived-config.js';
import { pgOptions } from '../../runbooks/lib/options.js';
import { asPostgres, perFamily } from '../../runbooks/lib/pg-layout.js';
import { HAPROXY_CFG, haproxyOptions } from '../../runbooks/lib/haproxy-config.js';
import { nfsOptions } from '../../runbooks/lib/nfs-options.js';
import { NFS_PATHS, REPLICATION_TIMER } from '../../runbooks/lib/nfs-facts.js';
import { KUBECTL_ENV, k8sOptions, type K8sOptions } from '../../runbooks/app-scale.js';

export const MARKER = '@@ha-status';
/** The HAProxy hosts of topology lb. */
export const LOAD_BALANCERS = ['lb', 'lb_standby'] as const;

/** The sections a host's script has, in order. */
export type SectionName =
  | 'ip'
  | 'keepalived'
  | 'pg'
  | 'pg-ha'
  | 'haproxy'
  | 'haproxy-stats'
  | 'nfs-server'
  | 'nfs-client'
  | 'k8s'
  | 'k8s-deployment'
  | 'k8s-configmap'
  | 'k8s-pods';

/** The roles status looks at, from the table (only what the table lists). */
export interface StatusPlan {
  /** alias -> the sections its script prints. */
  hosts: Record<string, SectionName[]>;
  /** Pairs whose two hosts and VIP are all in the table. */
  pairs: Pair[];
}

const has = (inv: Pick<Inventory, 'servers'>, alias: string): boolean => typeof inv.servers[alias] === 'string' && inv.servers[alias]!.trim() !== '';

/** options.k8s as app-scale reads it; null when the table has none or an invalid one (./evaluate.ts says which). */
export function statusK8sOptions(options: Record<string, unknown> | undefined): K8sOptions | null {
  try {
    return k8sOptions(options ?? {});
  } catch {
    return null;
  }
}

export function statusPlan(inv: Pick<Inventory, 'servers' | 'topology'> & { options?: Inventory['options'] }): StatusPlan {
  const hosts: Record<string, SectionName[]> = {};
  const add = (alias: string, ...s: SectionName[]): void => {
    if (!has(inv, alias)) return;
    const list = (hosts[alias] ??= []);
    for (const x of s) if (!list.includes(x)) list.push(x);
  };
  const pairs = Object.values(PAIRS).filter((p) => has(inv, p.primary) && has(inv, p.standby) && has(inv, p.vipAlias));
  for (const p of pairs) for (const h of [p.primary, p.standby]) add(h, 'ip', 'keepalived');
  for (const h of ['db_primary', 'db_standby']) add(h, 'pg', 'pg-ha');
  if (inv.topology === 'lb') for (const h of LOAD_BALANCERS) add(h, 'haproxy');
  // Without options.k8s there is no deployment to look at (app-scale needs them too).
  if (inv.topology === 'k8s' && statusK8sOptions(inv.options)) add('k8s_master', 'k8s');
  for (const h of ['nfs_primary', 'nfs_standby']) add(h, 'nfs-server');
  if (has(inv, 'nfs_vip') && (has(inv, 'nfs_primary') || has(inv, 'nfs_standby'))) {
    for (const a of Object.keys(inv.servers).filter((x) => appNumber(x) !== undefined)) add(a, 'nfs-client');
  }
  return { hosts, pairs };
}

const section = (name: SectionName, body: string): string => `echo ${quote(`${MARKER} ${name}`)}\n${body}`;

/** `ip -o addr show`: who holds which address. */
const ipSection = (): string => section('ip', 'ip -o addr show 2>&1');

/** Where each pair's keepalived health check records its last verdict (assets/keepalived/*). */
const CHECK_RECORD: Record<string, string> = { db: 'check.last', nfs: 'nfs-check.last', lb: 'haproxy-check.last' };

function keepalivedSection(alias: string): string {
  const pair = Object.values(PAIRS).find((p) => p.primary === alias || p.standby === alias)!;
  const last = `/run/ha-setup-keepalived/${CHECK_RECORD[pair.kind] ?? 'check.last'}`;
  return section(
    'keepalived',
    [
      sh`if grep -qs ${`vrrp_instance ${pair.instance} `} /etc/keepalived/keepalived.conf; then echo CONFIGURED=yes; else echo CONFIGURED=no; fi`,
      'echo "ACTIVE=$(systemctl is-active keepalived 2>/dev/null)"',
      'echo "ENABLED=$(systemctl is-enabled keepalived 2>/dev/null)"',
      sh`if [ -f ${last} ]; then echo "CHECK=$(head -c 300 ${last} | tr '\\n' ' ')"; fi`,
    ].join('\n'),
  );
}

/** The SQL of the PostgreSQL section: KEY=value lines, a REPL= line per standby on a primary. */
export function pgStatusSql(): string {
  const lag = (col: string) => `coalesce(round(extract(epoch from ${col})::numeric, 3)::text, '')`;
  const repl = [
    "coalesce(host(client_addr), '')",
    "coalesce(application_name, '')",
    "coalesce(state, '')",
    "coalesce(sync_state, '')",
    "coalesce(sent_lsn::text, '')",
    "coalesce(replay_lsn::text, '')",
    "coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint::text, '')",
    lag('write_lag'),
    lag('flush_lag'),
    lag('replay_lag'),
  ];
  return [
    'select pg_is_in_recovery() as in_recovery \\gset',
    '\\if :in_recovery',
    "select 'ROLE=standby';",
    "select 'TIMELINE=' || coalesce((select received_tli::text from pg_stat_wal_receiver), (select timeline_id::text from pg_control_checkpoint()));",
    "select 'RECEIVER=' || coalesce((select status || '|' || coalesce(sender_host, '') from pg_stat_wal_receiver), '');",
    "select 'RECEIVE_LSN=' || coalesce(pg_last_wal_receive_lsn()::text, '');",
    "select 'REPLAY_LSN=' || coalesce(pg_last_wal_replay_lsn()::text, '');",
    "select 'REPLAY_BACKLOG=' || coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint::text, '');",
    "select 'LAST_REPLAY_AT=' || coalesce(to_char(pg_last_xact_replay_timestamp() at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), '');",
    `select 'LAST_REPLAY_AGE=' || ${lag('now() - pg_last_xact_replay_timestamp()')};`,
    '\\else',
    "select 'ROLE=primary';",
    "select 'TIMELINE=' || ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int;",
    "select 'CURRENT_LSN=' || pg_current_wal_lsn();",
    `select 'REPL=' || ${repl.join(" || '|' || ")} from pg_stat_replication order by application_name;`,
    '\\endif',
  ].join('\n');
}

function pgSection(inv: Pick<Inventory, 'options'>): string {
  const { version, port } = pgOptions(inv.options);
  const doc = heredoc(pgStatusSql());
  const psql = sh`timeout 5 "$bindir/psql" -X -At -q -v ON_ERROR_STOP=1 -h "$sock" -p ${port} -d postgres`;
  return section(
    'pg',
    [
      perFamily(version, (l) => sh`unit=${l.unit} bindir=${l.binDir} sock=${l.socketDir} datadir=${l.dataDir}`),
      'echo "UNIT=$unit"',
      'echo "UNIT_STATE=$(systemctl is-active "$unit" 2>/dev/null)"',
      'if [ -x "$bindir/psql" ]; then echo INSTALLED=yes; else echo INSTALLED=no; fi',
      'pid=$(head -n 1 "$datadir/postmaster.pid" 2>/dev/null)',
      'if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo POSTMASTER=yes; else echo POSTMASTER=no; fi',
      'systemctl cat ha-setup-pg-health >/dev/null 2>&1 && echo "HEALTH=$(systemctl is-active ha-setup-pg-health 2>/dev/null)"',
      `out=$( ${asPostgres(psql)} 2>&1 ${doc.open}`,
      doc.body,
      ')',
      'rc=$?',
      'if [ $rc -eq 0 ]; then printf \'%s\\n\' "$out"; else echo "ERROR=$(printf \'%s\' "${out:-psql exit $rc}" | tr \'\\n\' \' \' | cut -c1-300)"; fi',
    ].join('\n'),
  );
}

const pgHaSection = (): string =>
  section('pg-ha', sh`if [ -x ${PG_SCRIPT} ]; then timeout 8 ${PG_SCRIPT} status 2>&1; else echo INSTALLED=no; fi`);

function haproxySection(inv: Pick<Inventory, 'options'>): string {
  const o = haproxyOptions(inv.options);
  // A wildcard bind is reached on loopback.
  const addr = o.statsAddress === '0.0.0.0' || o.statsAddress === '::' ? '127.0.0.1' : o.statsAddress;
  return [
    section(
      'haproxy',
      [
        'if command -v haproxy >/dev/null 2>&1; then echo INSTALLED=yes; else echo INSTALLED=no; fi',
        sh`if grep -qs '^# Managed by ha-setup' ${HAPROXY_CFG}; then echo MANAGED=yes; else echo MANAGED=no; fi`,
        'echo "ACTIVE=$(systemctl is-active haproxy 2>/dev/null)"',
        sh`sock=$(awk '$1 == "stats" && $2 == "socket" { print $3; exit }' ${HAPROXY_CFG} 2>/dev/null)`,
      ].join('\n'),
    ),
    section(
      'haproxy-stats',
      [
        // The admin socket when haproxy.cfg declares one (and socat is there to talk to it).
        'if [ -n "$sock" ] && [ -S "$sock" ] && command -v socat >/dev/null 2>&1; then',
        '  echo SOURCE=socket',
        '  echo "show stat" | timeout 4 socat stdio "unix-connect:$sock" 2>&1',
        'else',
        '  echo SOURCE=stats-page',
        // "stats auth user:password" from the file; base64 reads it on stdin, printf is a
        // builtin, the inner bash reads it from its stdin: it is in no process's argv.
        sh`  auth=$(awk '$1 == "stats" && $2 == "auth" { print $3; exit }' ${HAPROXY_CFG} 2>/dev/null)`,
        '  if [ -z "$auth" ]; then echo "ERROR=no stats auth line in the config"; else',
        '    printf \'%s\' "$auth" | base64 -w0 | timeout 4 bash -c \'IFS= read -r a; exec 3<>"/dev/tcp/$0/$1" || exit 3; printf "GET /;csv;norefresh HTTP/1.0\\r\\nAuthorization: Basic %s\\r\\n\\r\\n" "$a" >&3; cat <&3\' ' +
          sh`${addr} ${o.statsPort}` +
          ' 2>&1 || echo "ERROR=the stats page on ' +
          `${addr}:${o.statsPort}` +
          ' did not answer (exit $?)"',
        '  fi',
        'fi',
      ].join('\n'),
    ),
  ].join('\n');
}

function nfsServerSection(inv: Pick<Inventory, 'options'>): string {
  const o = nfsOptions(inv.options);
  const unit = o.server === 'ganesha' ? 'nfs-ganesha' : 'nfs-server';
  const managed = o.server === 'ganesha' ? NFS_PATHS.ganeshaConf : NFS_PATHS.exports;
  const service = REPLICATION_TIMER.replace(/\.timer$/, '.service');
  return section(
    'nfs-server',
    [
      sh`echo UNIT=${unit}`,
      sh`if grep -qs '^# Managed by ha-setup' ${managed}; then echo MANAGED=yes; else echo MANAGED=no; fi`,
      sh`echo "ACTIVE=$(systemctl is-active ${unit} 2>/dev/null)"`,
      'echo "LISTEN=$(ss -Hltn "sport = :2049" 2>/dev/null | grep -c .)"',
      sh`echo "TIMER=$(systemctl is-active ${REPLICATION_TIMER} 2>/dev/null)"`,
      sh`systemctl show ${service} -p Result -p ExecMainExitTimestampMonotonic 2>/dev/null`,
      'echo "UPTIME=$(cut -d" " -f1 /proc/uptime)"',
    ].join('\n'),
  );
}

function nfsClientSection(inv: Pick<Inventory, 'options' | 'servers'>): string {
  const o = nfsOptions(inv.options);
  const vip = inv.servers.nfs_vip!;
  const url = `nfs://${vip.includes(':') ? `[${vip}]` : vip}${o.exportDir}?version=4`;
  return section(
    'nfs-client',
    [
      sh`mp=${o.mountPath}`,
      // The share's mount: only an NFS file system on the mount path counts.
      'fs=$(findmnt -n -o FSTYPE --mountpoint "$mp" 2>/dev/null)',
      'if [ "${fs#nfs}" != "$fs" ]; then',
      '  echo "MOUNT_SOURCE=$(findmnt -n -o SOURCE --mountpoint "$mp" 2>/dev/null)"',
      '  if timeout -s KILL 5 stat -f "$mp" >/dev/null 2>&1; then echo MOUNT_OK=yes; else echo MOUNT_OK=no; fi',
      'fi',
      'if command -v nfs-ls >/dev/null 2>&1; then',
      '  echo METHOD=nfs-ls',
      `  out=$(${sh`timeout 6 nfs-ls ${url}`} 2>&1); rc=$?`,
      'elif command -v showmount >/dev/null 2>&1; then',
      '  echo METHOD=showmount',
      `  out=$(${sh`timeout 6 showmount -e --no-headers ${vip}`} 2>&1); rc=$?`,
      sh`  if [ $rc -eq 0 ] && ! printf '%s\\n' "$out" | grep -q ${`^${o.exportDir} `}; then out=${`${o.exportDir} is not in the export list: `}"$out"; rc=1; fi`,
      'else',
      '  echo METHOD=tcp',
      `  out=$(${sh`timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/2049"' ${vip}`} 2>&1); rc=$?`,
      'fi',
      'echo "EXIT=$rc"',
      'echo "DETAIL=$(printf \'%s\' "$out" | head -n 3 | tr \'\\n\' \' \' | cut -c1-200)"',
    ].join('\n'),
  );
}

/** The limits of each kubectl call: the API request, and a hard stop (discovery retries included). */
export const KUBECTL_LIMITS = { requestSeconds: 3, hardSeconds: 4 } as const;

/**
 * The app's Deployment, its pods and the config map's DB host key, read-only, as app-scale reads
 * them (root, KUBECTL_ENV). Each kubectl answer is printed as is (JSON), then EXIT= and, when it
 * failed, ERROR= with the last line of its stderr (kept apart, so that warnings never break the
 * JSON). When the first call shows the API unreachable, the others are not tried (each would
 * wait its own time limit).
 */
function k8sSection(inv: Pick<Inventory, 'options'>): string {
  const o = k8sOptions(inv.options);
  const { requestSeconds: req, hardSeconds: hard } = KUBECTL_LIMITS;
  // jsonpath needs the dots of a key escaped (db.host -> db\.host).
  const keyPath = `jsonpath={.data.${o.dbHostKey.replaceAll('.', '\\.')}}`;
  const selectorOf = 'go-template={{range $k, $v := .spec.selector.matchLabels}}{{$k}}={{$v}},{{end}}';
  return section(
    'k8s',
    [
      KUBECTL_ENV,
      'if [ -n "${KUBECONFIG:-}" ]; then echo "KUBECONFIG=$KUBECONFIG"; elif [ -f "$HOME/.kube/config" ]; then echo "KUBECONFIG=$HOME/.kube/config"; else echo KUBECONFIG=; fi',
      'if ! command -v kubectl >/dev/null 2>&1; then',
      '  echo KUBECTL=no',
      'else',
      '  echo KUBECTL=yes',
      '  kc() {',
      `    { kc_err=$(timeout -k 1 ${hard} kubectl "$@" --request-timeout=${req}s 2>&1 1>&3 3>&-); kc_rc=$?; } 3>&1`,
      '    echo',
      '    echo "EXIT=$kc_rc"',
      '    if [ "$kc_rc" -ne 0 ]; then echo "ERROR=$(printf \'%s\\n\' "$kc_err" | tail -n 1 | cut -c1-300)"; fi',
      '  }',
      `  echo ${quote(`${MARKER} k8s-deployment`)}`,
      sh`  kc get deployment ${o.deployment} -n ${o.namespace} -o json`,
      // The API answered: with the deployment, or that there is none.
      '  dep_rc=$kc_rc',
      '  if [ "$dep_rc" -eq 0 ] || printf \'%s\\n\' "$kc_err" | grep -q \'^Error from server (NotFound)\'; then',
      `    echo ${quote(`${MARKER} k8s-configmap`)}`,
      sh`    kc get configmap ${o.configMap} -n ${o.namespace} -o ${keyPath}`,
      '    if [ "$dep_rc" -eq 0 ]; then',
      `      echo ${quote(`${MARKER} k8s-pods`)}`,
      sh`      sel=$(timeout -k 1 ${hard} kubectl get deployment ${o.deployment} -n ${o.namespace} -o ${selectorOf} ${`--request-timeout=${req}s`} 2>/dev/null)`,
      '      sel=${sel%,}',
      '      echo "SELECTOR=$sel"',
      sh`      if [ -n "$sel" ]; then kc get pods -n ${o.namespace} -l "$sel" -o json; fi`,
      '    fi',
      '  fi',
      'fi',
    ].join('\n'),
  );
}

/** The whole script of one host (null when status has nothing to ask it beyond SSH). */
export function hostScript(inv: Pick<Inventory, 'servers' | 'options' | 'topology'>, sections: SectionName[], alias: string): string {
  const parts: string[] = ['set +e +o pipefail', 'export LC_ALL=C'];
  for (const s of sections) {
    if (s === 'ip') parts.push(ipSection());
    else if (s === 'keepalived') parts.push(keepalivedSection(alias));
    else if (s === 'pg') parts.push(pgSection(inv));
    else if (s === 'pg-ha') parts.push(pgHaSection());
    else if (s === 'haproxy') parts.push(haproxySection(inv));
    else if (s === 'nfs-server') parts.push(nfsServerSection(inv));
    else if (s === 'nfs-client') parts.push(nfsClientSection(inv));
    else if (s === 'k8s') parts.push(k8sSection(inv));
  }
  parts.push(`echo ${quote(`${MARKER} end`)}`);
  return parts.join('\n');
}
