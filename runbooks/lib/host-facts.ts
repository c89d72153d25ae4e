/**
 * Facts every runbook reads about a host: what OS it runs and how it is managed.
 * Read-only; runs as the login user (no sudo needed).
 */
import type { FactDef } from '../../source/engine/step.js';

export type OsFamily = 'debian' | 'rhel';

export interface OsInfo {
  /** os-release ID: debian, ubuntu, rhel, rocky, almalinux, centos, ol ... */
  id: string;
  family: OsFamily | 'unknown';
  /** os-release VERSION_ID, e.g. "12", "24.04", "9.4", "7". */
  versionId: string;
  major: number;
  prettyName: string;
  hostname: string;
  kernel: string;
  init: 'systemd' | 'other';
  packageManager: 'apt' | 'dnf' | 'yum' | 'unknown';
}

/** Derive the family from os-release ID and ID_LIKE. Exported for the plan fixtures. */
export function osFamily(id: string, idLike: string): OsInfo['family'] {
  const words = [id, ...idLike.split(/\s+/)].map((w) => w.toLowerCase());
  if (words.some((w) => w === 'debian' || w === 'ubuntu')) return 'debian';
  if (words.some((w) => ['rhel', 'fedora', 'centos', 'rocky', 'almalinux', 'ol'].includes(w))) return 'rhel';
  return 'unknown';
}

/** Parse the KEY=value lines of /etc/os-release (values may be quoted). */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    let v = m[2]!.trim();
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1);
    out[m[1]!] = v.replace(/\\(.)/g, '$1');
  }
  return out;
}

export const osFact: FactDef<OsInfo> = {
  id: 'os',
  script: [
    'cat /etc/os-release 2>/dev/null || true',
    'echo "HA_HOSTNAME=$(hostname)"',
    'echo "HA_KERNEL=$(uname -r)"',
    'if [ -d /run/systemd/system ]; then echo HA_INIT=systemd; else echo HA_INIT=other; fi',
    'for pm in apt-get dnf yum; do if command -v $pm >/dev/null 2>&1; then echo "HA_PM=$pm"; break; fi; done',
  ].join('\n'),
  parse(stdout) {
    const kv = parseOsRelease(stdout);
    const versionId = kv.VERSION_ID ?? '';
    const pm = kv.HA_PM === 'apt-get' ? 'apt' : kv.HA_PM === 'dnf' ? 'dnf' : kv.HA_PM === 'yum' ? 'yum' : 'unknown';
    return {
      id: kv.ID ?? 'unknown',
      family: osFamily(kv.ID ?? '', kv.ID_LIKE ?? ''),
      versionId,
      major: Number.parseInt(versionId, 10) || 0,
      prettyName: kv.PRETTY_NAME ?? kv.ID ?? 'unknown',
      hostname: kv.HA_HOSTNAME ?? '',
      kernel: kv.HA_KERNEL ?? '',
      init: kv.HA_INIT === 'systemd' ? 'systemd' : 'other',
      packageManager: pm,
    };
  },
};
