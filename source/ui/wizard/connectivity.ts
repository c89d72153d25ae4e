/**
 * The wizard's connectivity check: every host of the table at once, over the caller's
 * transports: SSH reachable (host key questions come from the transport), the OS (the same
 * fact every runbook reads), sudo without a password when the login user is not root, and
 * the clock against the jump host. Each problem comes with its fix. No Ink here.
 */
import type { HostRef } from '../../engine/step.js';
import type { Inventory } from '../../inventory/types.js';
import { hostsAndAddresses } from '../../inventory/roles.js';
import type { Transport } from '../../transport/types.js';
import { osFact, type OsInfo } from '../../../runbooks/lib/host-facts.js';

/** Clock difference above which a host is reported (keepalived, TLS and logs need agreeing clocks). */
export const MAX_SKEW_MS = 2000;

export interface Problem {
  what: string;
  fix: string;
}

export interface HostCheck {
  alias: string;
  address: string;
  status: 'checking' | 'ok' | 'problems';
  user?: string;
  os?: string;
  /** root: logged in as root; ok: sudo -n works; no: it asks for a password (a problem). */
  sudo?: 'root' | 'ok' | 'no';
  /** Host clock minus the jump host's, in ms. */
  skewMs?: number;
  problems: Problem[];
}

export interface CheckOptions {
  transport(host: HostRef): Transport;
  /** The jump host's clock (ms since the epoch); injectable for tests. */
  now?: () => number;
  /** Called whenever a host's check changes (all checks, in table order). */
  onUpdate?: (checks: HostCheck[]) => void;
}

const first = (s: string): string => s.split('\n')[0] ?? s;

async function checkHost(h: HostRef, opts: CheckOptions, set: (c: Partial<HostCheck>) => void): Promise<void> {
  const now = opts.now ?? Date.now;
  const problems: Problem[] = [];
  const t = opts.transport(h);
  try {
    await t.connect();
  } catch (e) {
    const err = e as Error & { fix?: string };
    problems.push({ what: `SSH: ${first(err.message)}`, fix: err.fix ?? `check that ${h.address} is up, reachable from here and runs sshd` });
    set({ status: 'problems', problems });
    return;
  }
  set({ user: t.user });
  try {
    const res = await t.exec(osFact.script);
    const os: OsInfo = osFact.parse(res.stdout, res);
    set({ os: `${os.prettyName}${os.init === 'systemd' ? '' : ' (no systemd)'}` });
    if (os.family === 'unknown') problems.push({ what: `unsupported OS ${os.prettyName}`, fix: 'use Debian/Ubuntu or a RHEL-family release (Rocky, Alma, RHEL)' });
    if (os.init !== 'systemd') problems.push({ what: 'systemd is not running', fix: 'the runbooks manage services with systemctl: use a host booted with systemd' });
  } catch (e) {
    problems.push({ what: `could not read the OS: ${first((e as Error).message)}`, fix: 'check that /etc/os-release exists and bash is installed' });
  }
  if (t.user === 'root') set({ sudo: 'root' });
  else {
    try {
      const res = await t.exec('sudo -n true');
      set({ sudo: res.code === 0 ? 'ok' : 'no' });
      if (res.code !== 0) {
        problems.push({
          what: `sudo asks user ${t.user} for a password`,
          fix: `allow it without one: echo '${t.user} ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/ha-setup (as root, mode 0440)`,
        });
      }
    } catch (e) {
      problems.push({ what: `sudo check failed: ${first((e as Error).message)}`, fix: 'install sudo, or log in as root (ssh user: root)' });
    }
  }
  try {
    const before = now();
    const res = await t.exec('date +%s%3N');
    const after = now();
    const remote = Number(res.stdout.trim());
    if (res.code !== 0 || !Number.isFinite(remote)) throw new Error(`date printed "${res.stdout.trim()}"`);
    const skewMs = Math.round(remote - (before + after) / 2);
    set({ skewMs });
    if (Math.abs(skewMs) > MAX_SKEW_MS) {
      problems.push({
        what: `clock is ${(Math.abs(skewMs) / 1000).toFixed(1)} s ${skewMs > 0 ? 'ahead of' : 'behind'} the jump host`,
        fix: 'enable time sync on both (apt-get install chrony / dnf install chrony; systemctl enable --now chrony)',
      });
    }
  } catch (e) {
    problems.push({ what: `could not read the clock: ${first((e as Error).message)}`, fix: 'check that date(1) works on the host' });
  }
  set({ status: problems.length ? 'problems' : 'ok', problems });
}

/** Check every host of the table at once; resolves with all results in table order. */
export async function checkConnectivity(inv: Inventory, opts: CheckOptions): Promise<HostCheck[]> {
  const hosts = Object.values(hostsAndAddresses(inv).hosts);
  let checks: HostCheck[] = hosts.map((h) => ({ alias: h.alias, address: h.address, status: 'checking', problems: [] }));
  opts.onUpdate?.(checks);
  await Promise.all(
    hosts.map((h, i) =>
      checkHost(h, opts, (change) => {
        checks = checks.map((c, j) => (j === i ? { ...c, ...change } : c));
        opts.onUpdate?.(checks);
      }),
    ),
  );
  return checks;
}
