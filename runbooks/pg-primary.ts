/**
 * The PostgreSQL primary: replication settings as a drop-in file (never an edit of
 * postgresql.conf beyond one include_dir line on the RHEL family), correct for the server's
 * version, applied with a reload or, only when a setting needs it, a restart; SELinux labels
 * where needed; and a physical replication slot for the standby.
 */
import { sh } from '../source/engine/shell.js';
import { defineStep, done, planOf, type Action, type ExecContext, type FactDef, type HostContext, type Runbook } from '../source/engine/step.js';
import { osFact } from './lib/host-facts.js';
import { dataWipeOverride, pgOptions } from './lib/options.js';
import { hasIncludeDir, holdsAddress, holdsData, netFact, parseKv, pgFact, selinuxFact, type PgFacts } from './lib/pg-facts.js';
import { DB_NODES, DROPIN, layoutFor, livePort, pendingAction, psqlAnyFamily, psqlScript, renderAsset, slotName, sqlLiteral, type PgLayout } from './lib/pg-layout.js';
import { dropInPlan, listenAddresses, renderConf, replicationSettings } from './lib/pg-settings.js';
import { dataGuard, primaryOf, standbyOf } from './pg-standby.js';


/** listen_addresses for this node (see options.postgres.listen). */
export function listenFor(ctx: HostContext): string {
  return listenAddresses(pgOptions(ctx.options).listen, ctx.host.address, ctx.addresses.db_vip);
}

function describe(pg: PgFacts): string {
  if (!pg.binaries) return 'not installed yet';
  if (!pg.running) return 'installed, not running';
  return pg.inRecovery ? 'running in recovery (a standby)' : 'running as a primary';
}

/**
 * Before anything is configured: db_primary must not be a standby, and db_standby must not be
 * a primary holding data (the table's roles swapped). Catches the mistake before the first
 * configuration change; pg-standby.clone checks it again against the primary's identity.
 */
const rolesCheck = defineStep({
  id: 'pg-primary.roles-check',
  title: 'The table names the right servers as primary and standby',
  targets: () => [...DB_NODES],
  facts: (ctx) => ({ os: osFact, pg: pgFact(pgOptions(ctx.options).version), net: netFact }),
  plan({ os, pg, net }, ctx) {
    const { alias, address } = ctx.host;
    const primary = primaryOf(ctx);
    const standby = standbyOf(ctx);
    if (primary === standby) throw new Error(`db_primary and db_standby are the same address ${primary}; fix the server table`);
    if (alias === 'db_primary') {
      if (pg.running && pg.inRecovery === true) {
        throw new Error(`db_primary (${address}) is in recovery, i.e. a standby: if a failover swapped the roles, swap db_primary and db_standby in the server table`);
      }
      return done(`db_primary (${address}): PostgreSQL ${describe(pg)}`);
    }
    const layout = layoutFor(os, pgOptions(ctx.options).version, alias);
    const vip = ctx.addresses.db_vip;
    const verdict = dataGuard({
      alias,
      address,
      hostname: os.hostname,
      dataDir: layout.dataDir,
      primaryAddress: primary,
      holdsVip: vip ? holdsAddress(net.addresses, vip) : false,
      vip,
      pg,
      peer: null,
      override: dataWipeOverride(ctx.options),
    });
    if (!verdict.ok) throw new Error(verdict.message);
    const data = holdsData(pg);
    return done(`db_standby (${address}): PostgreSQL ${describe(pg)}${data ? `, ${data}` : ''}; ${verdict.note}`);
  },
});

const INCLUDE_LINE = "include_dir = 'conf.d'";

const includeDir = defineStep({
  id: 'pg-primary.include-dir',
  title: "postgresql.conf reads conf.d/ (include_dir, added once if missing)",
  targets: () => [...DB_NODES],
  facts: (ctx) => ({ os: osFact, pg: pgFact(pgOptions(ctx.options).version) }),
  plan({ os, pg }, ctx) {
    const layout = layoutFor(os, pgOptions(ctx.options).version, ctx.host.alias);
    if (pg.dataVersion === null) {
      return planOf(pendingAction(`add ${INCLUDE_LINE} to ${layout.confFile}`, `${layout.dataDir} is initialised (step os-prep.postgres)`));
    }
    const has = hasIncludeDir(pg.includes);
    if (has && pg.dropInDirExists) return done(`${layout.confFile} has ${INCLUDE_LINE} and ${layout.dropInDir} exists`);
    const actions: Action[] = [];
    if (!pg.dropInDirExists) {
      actions.push({ kind: 'run', title: `create ${layout.dropInDir}`, script: sh`install -d -m 0755 -o postgres -g postgres ${layout.dropInDir}`, sudo: true });
    }
    if (!has) {
      const text = `\n# Added by ha-setup: read the drop-in files of conf.d/ (ha-setup*.conf) after this file.\n${INCLUDE_LINE}\n`;
      actions.push({
        kind: 'run',
        title: `append ${INCLUDE_LINE} to ${layout.confFile}`,
        // Appended (never edited in place), and only if still missing when it runs.
        script: `if ! grep -Eq ${sh`${"^[[:space:]]*include_dir[[:space:]]*=?[[:space:]]*'?conf\\.d'?"}`} ${sh`${layout.confFile}`}; then printf '%s' ${sh`${text}`} >> ${sh`${layout.confFile}`}; fi`,
        sudo: true,
      });
    }
    return { actions, reason: 'ha-setup writes its settings as drop-in files, never with sed on postgresql.conf' };
  },
});

const selinux = defineStep({
  id: 'pg-primary.selinux',
  title: 'SELinux labels for a non-default port and the WAL archive directory',
  targets: () => [...DB_NODES],
  facts: (ctx) => ({ os: osFact, se: selinuxFact(pgOptions(ctx.options).archiveDir) }),
  plan({ os, se }, ctx) {
    const o = pgOptions(ctx.options);
    if (se.mode === 'absent' || se.mode === 'disabled') return done(`SELinux is ${se.mode === 'absent' ? 'not installed' : 'disabled'}: no labels needed`);
    const actions: Action[] = [];
    const needPort = o.port !== 5432 && !se.postgresPorts.includes(o.port);
    const needArchive = o.archiveDir !== undefined && se.archiveDirType !== 'postgresql_db_t';
    if ((needPort || needArchive) && !se.semanage) {
      const pkg = os.major >= 8 ? 'policycoreutils-python-utils' : 'policycoreutils-python';
      actions.push({ kind: 'run', title: `install ${pkg} (semanage)`, script: sh`${os.packageManager === 'yum' ? 'yum' : 'dnf'} install -y ${pkg}`, sudo: true });
    }
    if (needPort) {
      actions.push({ kind: 'run', title: `label tcp port ${o.port} postgresql_port_t`, script: sh`semanage port -a -t postgresql_port_t -p tcp ${o.port}`, sudo: true });
    }
    if (needArchive) {
      const dir = o.archiveDir!;
      actions.push({
        kind: 'run',
        title: `label ${dir} postgresql_db_t`,
        script: [sh`install -d -m 0700 -o postgres -g postgres ${dir}`, sh`semanage fcontext -a -t postgresql_db_t ${`${dir}(/.*)?`}`, sh`restorecon -R ${dir}`].join('\n'),
        sudo: true,
      });
    }
    if (actions.length === 0) {
      return done(`SELinux ${se.mode}: port ${o.port} ${o.port === 5432 ? 'is the default postgresql_port_t port' : 'is labelled postgresql_port_t'}${o.archiveDir ? `, ${o.archiveDir} is postgresql_db_t` : ''}`);
    }
    return { actions, reason: `SELinux is ${se.mode}` };
  },
});

/** A directory's owner and mode (for the archive directory). */
function dirFact(path: string): FactDef<{ exists: boolean; owner: string; mode: string }> {
  return {
    id: `dir-${path}`,
    sudo: true,
    script: `echo "STAT=$(stat -c '%U %a' ${sh`${path}`} 2>/dev/null || echo -)"`,
    parse(stdout) {
      const [owner = '-', mode = ''] = (parseKv(stdout).STAT ?? '-').split(' ');
      return { exists: owner !== '-', owner, mode };
    },
  };
}

/** The sysctl file that lets PostgreSQL bind the VIP before keepalived moves it here. */
export const NONLOCAL_BIND = '/etc/sysctl.d/90-ha-setup-pg.conf';
const nonlocalFact: FactDef<string | null> = {
  id: 'sysctl-ha-setup-pg',
  script: `if [ -f ${NONLOCAL_BIND} ]; then echo PRESENT; cat ${NONLOCAL_BIND}; else echo ABSENT; fi`,
  parse: (stdout) => (stdout.startsWith('PRESENT\n') ? stdout.slice('PRESENT\n'.length) : null),
};

/** Actions for listen = explicit (ip_nonlocal_bind) and the archive directory. */
function supportActions(ctx: HostContext, nonlocal: string | null, archive: { exists: boolean; owner: string; mode: string } | null): Action[] {
  const o = pgOptions(ctx.options);
  const out: Action[] = [];
  if (o.listen === 'explicit') {
    const content = '# Managed by ha-setup (pg-primary): PostgreSQL may bind the DB VIP before keepalived moves it here.\nnet.ipv4.ip_nonlocal_bind = 1\nnet.ipv6.ip_nonlocal_bind = 1\n';
    if (nonlocal !== content) {
      out.push({ kind: 'write', title: `write ${NONLOCAL_BIND}`, path: NONLOCAL_BIND, content, mode: 0o644, owner: 'root', group: 'root', previous: nonlocal });
      out.push({ kind: 'run', title: 'apply net.ipv4/ipv6.ip_nonlocal_bind = 1', script: sh`sysctl -p ${NONLOCAL_BIND}`, sudo: true });
    }
  }
  if (o.archiveDir && archive && (!archive.exists || archive.owner !== 'postgres' || archive.mode !== '700')) {
    out.push({ kind: 'run', title: `create the WAL archive directory ${o.archiveDir} (postgres, 0700)`, script: sh`install -d -m 0700 -o postgres -g postgres ${o.archiveDir}`, sudo: true });
  }
  return out;
}

export function primaryDropIn(ctx: HostContext): { content: string; settings: ReturnType<typeof replicationSettings> } {
  const o = pgOptions(ctx.options);
  const settings = replicationSettings({ version: o.version, options: o, listen: listenFor(ctx) });
  const content = renderAsset('ha-setup.conf.tmpl', { runbook: 'pg-primary', version: o.version, alias: ctx.host.alias, settings: renderConf([], settings).trimEnd() });
  return { content, settings };
}

/** verify(): every setting of ha-setup.conf is in effect from that file (nothing read later overrides it). */
export async function verifyDropIn(ctx: ExecContext, names: string[]): Promise<string> {
  const o = pgOptions(ctx.options);
  const sql = `select name || '=' || setting || ' from ' || coalesce(sourcefile, 'the default') from pg_settings where name in (${names.map(sqlLiteral).join(', ')}) and not pending_restart and coalesce(sourcefile, '') not like ${sqlLiteral(`%/conf.d/${DROPIN.replication}`)};`;
  const r = await ctx.run('check that no other file overrides ha-setup.conf', psqlAnyFamily(o.version, o.port, sql), { sudo: true });
  const rows = r.stdout.trim().split('\n').filter(Boolean);
  if (rows.length) throw new Error(`${ctx.host.alias}: settings of ha-setup.conf are overridden by a file read after it: ${rows.join('; ')}; remove them there`);
  return `${names.length} settings in effect from ha-setup.conf`;
}

const settings = defineStep({
  id: 'pg-primary.settings',
  title: 'Replication settings (conf.d/ha-setup.conf), reload or restart when needed',
  targets: () => ['db_primary'],
  facts: (ctx) => {
    const o = pgOptions(ctx.options);
    return { os: osFact, pg: pgFact(o.version), nonlocal: nonlocalFact, ...(o.archiveDir ? { archive: dirFact(o.archiveDir) } : {}) };
  },
  inputs: (ctx) => primaryDropIn(ctx).content,
  plan(facts, ctx) {
    const { os, pg, nonlocal } = facts;
    const archive = (facts as { archive?: { exists: boolean; owner: string; mode: string } }).archive ?? null;
    const o = pgOptions(ctx.options);
    const layout = layoutFor(os, o.version, ctx.host.alias);
    const { content, settings: wanted } = primaryDropIn(ctx);
    const support = supportActions(ctx, nonlocal, archive);
    const p = dropInPlan({
      alias: ctx.host.alias,
      path: `${layout.dropInDir}/${DROPIN.replication}`,
      content,
      previous: pg.dropIns.replication,
      wanted,
      unit: layout.unit,
      running: pg.running,
      live: pg.settings,
      autoConf: `${layout.dataDir}/postgresql.auto.conf`,
    });
    const versionNote = o.version < 13 ? `; PostgreSQL ${o.version} cannot bound the WAL a slot keeps (max_slot_wal_keep_size is 13+): watch pg_wal while the standby is down` : '';
    if (support.length === 0 && p.actions.length === 0) return done(`${p.summary}${versionNote}`);
    return { actions: [...support, ...p.actions], reason: `${p.summary}${versionNote}` };
  },
  async verify(ctx) {
    const o = pgOptions(ctx.options);
    return verifyDropIn(ctx, replicationSettings({ version: o.version, options: o, listen: listenFor(ctx) }).map((s) => s.name));
  },
});

const slot = defineStep({
  id: 'pg-primary.slot',
  title: 'Physical replication slot for the standby',
  targets: () => ['db_primary'],
  facts: (ctx) => ({ os: osFact, pg: pgFact(pgOptions(ctx.options).version) }),
  inputs: (ctx) => standbyOf(ctx),
  plan({ os, pg }, ctx) {
    const o = pgOptions(ctx.options);
    const layout: PgLayout = layoutFor(os, o.version, ctx.host.alias);
    const name = slotName(standbyOf(ctx));
    const bound =
      o.version >= 13
        ? o.maxSlotWalKeepSizeMb < 0
          ? 'max_slot_wal_keep_size = -1: the slot may keep unlimited WAL while the standby is away'
          : `the slot keeps at most ${o.maxSlotWalKeepSizeMb} MB of WAL (max_slot_wal_keep_size)`
        : `PostgreSQL ${o.version} cannot bound the WAL a slot keeps: a standby that stays away fills pg_wal (drop the slot with pg_drop_replication_slot('${name}') if it is gone for good)`;
    const existing = pg.slots.find((s) => s.name === name);
    if (existing && existing.type === 'physical') return done(`slot ${name} exists (${existing.active ? 'in use' : 'not in use yet'}); ${bound}`);
    if (existing) throw new Error(`${ctx.host.alias}: a ${existing.type} slot named ${name} exists; drop it (select pg_drop_replication_slot('${name}')) so that ha-setup can create the physical one`);
    if (!pg.running) return { actions: [pendingAction(`create replication slot ${name}`, `${layout.unit} runs (step pg-primary.settings)`)], reason: bound };
    if (pg.inRecovery) throw new Error(`${ctx.host.alias} is in recovery: slots are created on the primary; check the server table's roles`);
    const sql = `select pg_create_physical_replication_slot(${sqlLiteral(name)});`;
    return {
      actions: [{ kind: 'run', title: `create physical replication slot ${name} for db_standby`, script: psqlScript(layout, livePort(pg, o.port), sql), sudo: true }],
      reason: bound,
    };
  },
});

export const pgPrimaryRunbook: Runbook = {
  id: 'pg-primary',
  title: 'PostgreSQL primary',
  description:
    "The guides' primary configuration (listen_addresses, wal_level, max_wal_senders, WAL retention, archive), written as a version-correct drop-in file with wal_log_hints, scram-sha-256 and a replication slot bounded by max_slot_wal_keep_size; no archive into /tmp.",
  steps: [rolesCheck, includeDir, selinux, settings, slot],
};

