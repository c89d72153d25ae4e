/**
 * The foundation runbook, first in every run: reports what each server of the table runs
 * (the guides' "check the OS of every server" preparation) and marks each server as a member
 * of this cluster, so that a server cannot be configured for two clusters by mistake.
 */
import { clusterName } from '../source/engine/context.js';
import { sh } from '../source/engine/shell.js';
import { defineStep, done, planOf, type ExecContext, type FactDef, type HostContext, type Runbook } from '../source/engine/step.js';
import { osFact, type OsInfo } from './lib/host-facts.js';

/**
 * The content of a file, or null when it does not exist. A failure to read (permissions)
 * is an error, not "absent".
 */
export function fileFact(id: string, path: string, opts: { sudo?: boolean } = {}): FactDef<string | null> {
  const p = sh`${path}`;
  return {
    id,
    sudo: opts.sudo,
    script: `if [ -e ${p} ]; then echo HA_FILE_PRESENT; cat -- ${p}; else echo HA_FILE_ABSENT; fi`,
    parse(stdout, result) {
      const nl = stdout.indexOf('\n');
      const head = nl < 0 ? stdout : stdout.slice(0, nl);
      if (result.code === 0 && head === 'HA_FILE_ABSENT') return null;
      if (result.code === 0 && head === 'HA_FILE_PRESENT') return stdout.slice(nl + 1);
      throw new Error(`cannot read ${path} (exit ${result.code}): ${result.stderr.trim().split('\n').pop() ?? ''}`);
    },
  };
}

export interface TimeSync {
  /** timedatectl NTPSynchronized: true, false, or null when unknown. */
  synchronized: boolean | null;
  ntpEnabled: boolean | null;
}

export const timeSyncFact: FactDef<TimeSync> = {
  id: 'time-sync',
  script: [
    'if command -v timedatectl >/dev/null 2>&1; then',
    '  echo "HA_SYNC=$(timedatectl show -p NTPSynchronized --value 2>/dev/null || true)"',
    '  echo "HA_NTP=$(timedatectl show -p NTP --value 2>/dev/null || true)"',
    'fi',
  ].join('\n'),
  parse(stdout) {
    const val = (k: string): boolean | null => {
      const m = new RegExp(`^${k}=(yes|no)$`, 'm').exec(stdout);
      return m ? m[1] === 'yes' : null;
    };
    return { synchronized: val('HA_SYNC'), ntpEnabled: val('HA_NTP') };
  },
};

/** Free space on / in KiB (null when df gave nothing). */
export const diskFact: FactDef<{ freeKiB: number | null }> = {
  id: 'disk-root',
  script: `echo "HA_FREE_KB=$(df -Pk / 2>/dev/null | awk 'NR==2 {print $4}' || true)"`,
  parse(stdout) {
    const m = /^HA_FREE_KB=(\d+)$/m.exec(stdout);
    return { freeKiB: m ? Number(m[1]) : null };
  },
};

export function formatFree(kib: number | null): string {
  if (kib === null) return 'free disk unknown';
  const gib = kib / 1024 / 1024;
  if (gib >= 10) return `${Math.round(gib)} GB free on /`;
  if (gib >= 1) return `${gib.toFixed(1)} GB free on /`;
  return `${Math.round(kib / 1024)} MB free on /`;
}

/** "Debian GNU/Linux 12 (bookworm), systemd, apt, kernel 6.1, 12 GB free on /, time synchronized" */
export function describeHost(os: OsInfo, time: TimeSync, disk: { freeKiB: number | null }): string {
  const kernel = /^(\d+\.\d+)/.exec(os.kernel)?.[1] ?? (os.kernel || 'unknown');
  const sync =
    time.synchronized === true ? 'time synchronized' : time.synchronized === false ? `clock NOT synchronized${time.ntpEnabled === false ? ' (NTP off)' : ''}` : 'time sync unknown';
  const init = os.init === 'systemd' ? 'systemd' : 'no systemd';
  return `${os.prettyName}, ${init}, ${os.packageManager}, kernel ${kernel}, ${formatFree(disk.freeKiB)}, ${sync}`;
}

export const MARKER_PATH = '/etc/ha-setup/cluster.json';
const markerFact = fileFact('cluster-marker', MARKER_PATH);

export function markerContent(ctx: HostContext): string {
  const marker = { cluster: clusterName(ctx), alias: ctx.host.alias, address: ctx.host.address, managedBy: 'ha-setup' };
  return `${JSON.stringify(marker, null, 2)}\n`;
}

/** The cluster a marker names, or null when the text is not a marker. */
export function markerCluster(text: string): string | null {
  try {
    const v = JSON.parse(text) as { cluster?: unknown };
    return typeof v.cluster === 'string' ? v.cluster : null;
  } catch {
    return null;
  }
}

function refuseOtherCluster(ctx: HostContext, other: string): Error {
  const { alias, address } = ctx.host;
  return new Error(
    `${alias} (${address}) already belongs to cluster "${other}" (${MARKER_PATH}), not "${clusterName(ctx)}": ` +
      `use --cluster ${other} if that is the one you mean, or if cluster ${other} no longer exists, delete ${MARKER_PATH} on ${alias} and run again`,
  );
}

const allHosts = ({ hosts }: { hosts: Record<string, unknown> }): string[] => Object.keys(hosts).filter((a) => hosts[a]);

export const osFactsStep = defineStep({
  id: 'os-facts',
  title: 'Read what each server runs',
  targets: allHosts,
  facts: { os: osFact, time: timeSyncFact, disk: diskFact },
  plan: ({ os, time, disk }) => done(describeHost(os, time, disk)),
});

export const clusterMarkerStep = defineStep({
  id: 'cluster-marker',
  title: `Mark each server as a member of this cluster (${MARKER_PATH})`,
  targets: allHosts,
  facts: { marker: markerFact },
  inputs: (ctx) => ({ cluster: clusterName(ctx) }),
  plan: ({ marker }, ctx) => {
    const want = markerContent(ctx);
    if (marker === want) return done('marker already up to date');
    const other = marker === null ? null : markerCluster(marker);
    if (other !== null && other !== clusterName(ctx)) throw refuseOtherCluster(ctx, other);
    return planOf(
      marker === null && { kind: 'run', title: 'Create /etc/ha-setup', script: sh`install -d -m 0755 /etc/ha-setup`, sudo: true },
      {
        kind: 'write',
        title: `Record cluster ${clusterName(ctx)}`,
        path: MARKER_PATH,
        content: want,
        mode: 0o644,
        owner: 'root',
        group: 'root',
        previous: marker,
      },
    );
  },
  verify: async (ctx: ExecContext) => {
    const now = await ctx.transport.readFile(MARKER_PATH);
    if (now !== markerContent(ctx)) {
      throw new Error(`${MARKER_PATH} on ${ctx.host.alias} does not hold the expected marker after writing it`);
    }
    return `marker names cluster ${clusterName(ctx)}`;
  },
  undo: async (ctx: ExecContext) => {
    const now = await ctx.transport.readFile(MARKER_PATH);
    if (now === null) {
      ctx.log(`${MARKER_PATH} is already gone`);
      return;
    }
    const other = markerCluster(now);
    if (other !== null && other !== clusterName(ctx)) throw refuseOtherCluster(ctx, other);
    await ctx.run('Remove the cluster marker', `${sh`rm -f -- ${MARKER_PATH}`}\nrmdir /etc/ha-setup 2>/dev/null || true`, { sudo: true });
  },
});

export const factsRunbook: Runbook = {
  id: 'facts',
  title: 'Server facts and cluster marker',
  description:
    "The guides' preparation: know what every server of the table runs (OS, init system, package manager, kernel, " +
    'time sync, free disk) before configuring anything, and mark each server as belonging to this cluster.',
  steps: [osFactsStep, clusterMarkerStep],
};
