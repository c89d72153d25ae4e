/**
 * OS preparation (the guides' "minimal install, full update, static IP or hostname, umask"):
 * package updates only when asked for, a time sync service, a resolvable host name, and on the
 * DB nodes the PostgreSQL packages of the chosen version, initialised and running.
 */
import ipaddr from 'ipaddr.js';
import { sh } from '../source/engine/shell.js';
import { defineStep, done, planOf, type Action, type HostContext, type Runbook } from '../source/engine/step.js';
import { osFact, type OsInfo } from './lib/host-facts.js';
import { pgOptions } from './lib/options.js';
import { netFact, osPrepFact, pgFact, pgPackagesFact, type OsPrepFacts, type PgPackageFacts } from './lib/pg-facts.js';
import { DB_NODES, layoutFor, type PgLayout } from './lib/pg-layout.js';

const allServers = ({ hosts }: { hosts: Record<string, unknown> }): string[] => Object.keys(hosts).filter((a) => hosts[a]);
const dbNodes = (): string[] => [...DB_NODES];

/** Scripts that install or create files start with this: the guides' `umask 0022`. */
const UMASK = 'umask 0022';

function pm(os: OsInfo, alias: string): 'apt' | 'dnf' | 'yum' {
  if (os.packageManager === 'unknown') throw new Error(`${alias}: no apt-get, dnf or yum found; ha-setup installs packages with one of them`);
  return os.packageManager;
}

function install(os: OsInfo, alias: string, packages: string[]): string {
  const tool = pm(os, alias);
  if (tool === 'apt') return sh`DEBIAN_FRONTEND=noninteractive apt-get install -y ${packages}`;
  return sh`${tool} install -y ${packages}`;
}

function rebootNote(prep: OsPrepFacts, alias: string): string {
  return prep.rebootRequired ? `; ${alias} needs a reboot (new kernel or libraries): ha-setup never reboots, do it in a maintenance window` : '';
}

const updates = defineStep({
  id: 'os-prep.updates',
  title: 'Package updates (only when options.postgres.updatePackages is true)',
  targets: allServers,
  facts: { os: osFact, prep: osPrepFact },
  inputs: (ctx) => pgOptions(ctx.options).updatePackages,
  plan({ os, prep }, ctx) {
    const { alias } = ctx.host;
    const pending = prep.pendingUpdates === null ? 'an unknown number of' : String(prep.pendingUpdates);
    if (!pgOptions(ctx.options).updatePackages) {
      return done(`package updates are opt-in (options.postgres.updatePackages: true); ${pending} pending update(s) left alone${rebootNote(prep, alias)}`);
    }
    if (prep.pendingUpdates === 0) return done(`no pending updates in the current package lists${rebootNote(prep, alias)}`);
    const tool = pm(os, alias);
    const script =
      tool === 'apt'
        ? 'export DEBIAN_FRONTEND=noninteractive\napt-get update\napt-get -y -o Dpkg::Options::=--force-confold upgrade'
        : tool === 'dnf'
          ? 'dnf -y upgrade'
          : 'yum -y update';
    return {
      actions: [{ kind: 'run', title: `upgrade ${pending} package(s) (${tool})`, script, sudo: true }],
      reason: 'a new kernel takes effect only after a reboot, which ha-setup leaves to you',
    };
  },
});

const timeSync = defineStep({
  id: 'os-prep.time-sync',
  title: 'Time synchronisation (chrony)',
  targets: allServers,
  facts: { os: osFact, prep: osPrepFact },
  plan({ os, prep }, ctx) {
    if (prep.timeSync) return done(`time is synchronised by ${prep.timeSync}`);
    // A container cannot set the clock (chrony's unit needs CAP_SYS_TIME): its host keeps time.
    if (prep.container) return done(`a ${prep.container} container: the clock is its host's, kept by the host's time sync`);
    if (os.init !== 'systemd') throw new Error(`${ctx.host.alias}: no time sync service and no systemd to start chrony with; install and start an NTP client yourself`);
    const service = os.family === 'debian' ? 'chrony' : 'chronyd';
    return planOf({
      kind: 'run',
      title: `install chrony and start ${service}`,
      script: `${UMASK}\n${install(os, ctx.host.alias, ['chrony'])}\n${sh`systemctl enable --now ${service}`}`,
      sudo: true,
    });
  },
});

/** The address this host is known by: the table's when it is an IP, else its first global IPv4. */
function ownAddress(ctx: HostContext, net: { addresses: { family: string; address: string; scope: string }[] }): string {
  if (ipaddr.isValid(ctx.host.address)) return ctx.host.address;
  const a = net.addresses.find((x) => x.family === 'inet' && x.scope === 'global');
  if (!a) throw new Error(`${ctx.host.alias}: no global IPv4 address to put in /etc/hosts for its host name`);
  return a.address;
}

const hostname = defineStep({
  id: 'os-prep.hostname',
  title: 'The host name resolves (/etc/hosts)',
  targets: allServers,
  facts: { prep: osPrepFact, net: netFact },
  plan({ prep, net }, ctx) {
    if (!prep.hostname) throw new Error(`${ctx.host.alias}: hostname printed nothing; set a host name (hostnamectl set-hostname NAME)`);
    if (prep.hostnameResolves) return done(`host name ${prep.hostname} resolves`);
    const names = [...new Set([net.fqdn, prep.hostname].filter((n) => n && n !== 'localhost'))];
    const previous = prep.hostsFile;
    const base = previous ?? '';
    const line = `${ownAddress(ctx, net)}\t${names.join(' ')}\t# added by ha-setup (os-prep)`;
    return planOf({
      kind: 'write',
      title: `make ${prep.hostname} resolvable in /etc/hosts`,
      path: '/etc/hosts',
      content: `${base}${base && !base.endsWith('\n') ? '\n' : ''}${line}\n`,
      mode: 0o644,
      owner: 'root',
      group: 'root',
      previous,
    });
  },
});

function pgdgRpmUrl(os: OsInfo, arch: string): string {
  return `https://download.postgresql.org/pub/repos/yum/reporpms/EL-${os.major}-${arch || 'x86_64'}/pgdg-redhat-repo-latest.noarch.rpm`;
}

export const PGDG_APT_KEY = '/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc';

/** Actions that install the server package (and the PGDG repository when the version needs it). */
function installActions(os: OsInfo, prep: OsPrepFacts, pkgs: PgPackageFacts, layout: PgLayout, alias: string): Action[] {
  const v = layout.version;
  if (layout.family === 'debian') {
    const out: Action[] = [];
    if (!pkgs.candidate && !pkgs.pgdgRepo) {
      if (!prep.codename) throw new Error(`${alias}: /etc/os-release has no VERSION_CODENAME, needed for the apt.postgresql.org repository line`);
      out.push({
        kind: 'run',
        title: `fetch the apt.postgresql.org signing key (PostgreSQL ${v} is not in ${os.prettyName}'s archive)`,
        script: [
          UMASK,
          install(os, alias, ['ca-certificates', 'curl']),
          sh`install -d -m 0755 /usr/share/postgresql-common/pgdg`,
          sh`curl -fsSL -o ${PGDG_APT_KEY} https://www.postgresql.org/media/keys/ACCC4CF8.asc`,
        ].join('\n'),
        sudo: true,
      });
      out.push({
        kind: 'write',
        title: 'add the apt.postgresql.org repository',
        path: '/etc/apt/sources.list.d/pgdg.list',
        content: `deb [signed-by=${PGDG_APT_KEY}] https://apt.postgresql.org/pub/repos/apt ${prep.codename}-pgdg main\n`,
        mode: 0o644,
        owner: 'root',
        group: 'root',
        previous: null,
      });
      out.push({ kind: 'run', title: 'refresh the package lists', script: 'apt-get update', sudo: true });
    }
    out.push({
      kind: 'run',
      title: `install ${layout.serverPackage} (creates and starts cluster ${v}/main)`,
      script: `${UMASK}\n${install(os, alias, [layout.serverPackage])}`,
      sudo: true,
    });
    return out;
  }
  const tool = pm(os, alias);
  const out: Action[] = [];
  if (!pkgs.pgdgRepo) {
    out.push({
      kind: 'run',
      title: `add the PGDG repository (EL-${os.major})`,
      script: [
        UMASK,
        sh`${tool} install -y ${pgdgRpmUrl(os, prep.arch)}`,
        // EL 8+: the distribution's postgresql module would shadow the PGDG packages.
        ...(os.major >= 8 ? [sh`${tool} -qy module disable postgresql`] : []),
      ].join('\n'),
      sudo: true,
    });
  }
  out.push({ kind: 'run', title: `install ${layout.serverPackage}`, script: `${UMASK}\n${install(os, alias, [layout.serverPackage])}`, sudo: true });
  return out;
}

/** Another cluster already serving on the configured port would stop ours from starting. */
function portConflict(pkgs: PgPackageFacts, v: number, port: number, alias: string): void {
  const other = pkgs.clusters.find((c) => c.version !== v && c.port === port && c.status === 'online');
  if (other) {
    throw new Error(
      `${alias}: PostgreSQL ${other.version} (cluster ${other.version}/${other.name}) already serves port ${port}; ha-setup does not stop other clusters: ` +
        `stop and disable it (pg_ctlcluster ${other.version} ${other.name} stop; systemctl disable postgresql@${other.version}-${other.name}) or set options.postgres.port`,
    );
  }
}

const postgresPackages = defineStep({
  id: 'os-prep.postgres',
  title: 'PostgreSQL server packages, an initialised cluster, running',
  targets: dbNodes,
  facts: (ctx) => {
    const v = pgOptions(ctx.options).version;
    return { os: osFact, prep: osPrepFact, pkgs: pgPackagesFact(v), pg: pgFact(v) };
  },
  inputs: (ctx) => pgOptions(ctx.options).version,
  plan({ os, prep, pkgs, pg }, ctx) {
    const o = pgOptions(ctx.options);
    const { alias } = ctx.host;
    const layout = layoutFor(os, o.version, alias);
    if (pg.cloneMarker && pkgs.serverInstalled) {
      // A clone of the primary is under way here or was interrupted (the tool was killed while
      // pg_basebackup ran): starting PostgreSQL, or creating a cluster in the half-filled data
      // directory, would race the copy. pg-standby.clone finishes it and starts the standby.
      return done(`${layout.dataDir} is being cloned from the primary (marker ${layout.cloneMarker}, system ${pg.cloneMarker}): pg-standby.clone finishes it and starts PostgreSQL`);
    }
    portConflict(pkgs, o.version, o.port, alias);
    const actions: Action[] = [];
    if (!pkgs.serverInstalled) actions.push(...installActions(os, prep, pkgs, layout, alias));
    if (pg.dataVersion !== null && pg.dataVersion !== o.version) {
      throw new Error(`${alias}: ${layout.dataDir} holds a PostgreSQL ${pg.dataVersion} cluster, not ${o.version}; ha-setup does not upgrade clusters (pg_upgrade)`);
    }
    if (pg.dataVersion === null) {
      actions.push(
        layout.family === 'debian'
          ? {
              kind: 'run',
              // The package creates 'main' unless /etc/postgresql-common/createcluster.conf says not to.
              title: `create cluster ${o.version}/main if the package did not`,
              // When its configuration outlived its data (uninstall --purge-data keeps /etc),
              // pg_createcluster refuses ("configuration already exists"): initdb the data alone.
              script: [
                UMASK,
                `if [ ! -f ${sh`${`${layout.dataDir}/PG_VERSION`}`} ]; then`,
                `  if [ -f ${sh`${layout.confFile}`} ]; then`,
                `    ${sh`install -d -m 0700 -o postgres -g postgres ${layout.dataDir}`}`,
                `    ${sh`runuser -u postgres -- ${`${layout.binDir}/initdb`} -D ${layout.dataDir} --auth-local=peer --auth-host=scram-sha-256`}`,
                '  else',
                `    ${sh`pg_createcluster ${o.version} main`}`,
                '  fi',
                'fi',
              ].join('\n'),
              sudo: true,
            }
          : { kind: 'run', title: `initialise ${layout.dataDir}`, script: `${UMASK}\n${sh`${layout.setupCommand!} initdb`}`, sudo: true },
      );
    }
    if (actions.length > 0 || !pg.running || pg.unitEnabled !== 'enabled') {
      actions.push({ kind: 'run', title: `enable and start ${layout.unit}`, script: sh`systemctl enable --now ${layout.unit}`, sudo: true });
    }
    const umaskNote = prep.umask && prep.umask !== '0022' ? ` (login umask here is ${prep.umask}; ha-setup's install commands set umask 0022)` : '';
    const others = pg.installedVersions.filter((x) => x !== o.version);
    const otherNote = others.length ? `; other PostgreSQL versions installed and left alone: ${others.join(', ')}` : '';
    if (actions.length === 0) {
      return done(`PostgreSQL ${o.version} is installed (${layout.serverPackage}), initialised in ${layout.dataDir} and running (${layout.unit})${otherNote}${umaskNote}`);
    }
    return { actions, reason: `PostgreSQL ${o.version} for ${os.prettyName}${otherNote}${umaskNote}` };
  },
});

export const osPrepRunbook: Runbook = {
  id: 'os-prep',
  title: 'OS preparation',
  description:
    "The guides' server preparation: package updates (opt-in here), time sync, a resolvable host name, umask 0022, and the PostgreSQL packages of the chosen version (apt, or the PGDG repository + postgresql<v>-server + postgresql-<v>-setup initdb on the RHEL family).",
  steps: [updates, timeSync, hostname, postgresPackages],
};

