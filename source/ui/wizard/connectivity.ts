/**
 * The wizard's connectivity check: every host of the table at once, over the caller's
 * transports: SSH reachable (host key questions come from the transport), the OS (the same
 * fact every runbook reads), sudo without a password when the login user is not root, the
 * clock against the jump host, the interface each VIP will go on, the firewall tool, and the
 * PostgreSQL versions on the DB servers. Each problem comes with its fix. No Ink here.
 */
import type { HostRef } from '../../engine/step.js';
import type { Inventory } from '../../inventory/types.js';
import { hostsAndAddresses } from '../../inventory/roles.js';
import type { Transport } from '../../transport/types.js';
import ipaddr from 'ipaddr.js';
import { ROLES } from '../../inventory/roles.js';
import { osFact, type OsInfo } from '../../../runbooks/lib/host-facts.js';
import { pgOptions } from '../../../runbooks/lib/options.js';
import { firewallFact, firewallTool, netFact } from '../../../runbooks/lib/pg-facts.js';

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
  /** For a host of a keepalived pair: the interface each of its VIPs will go on, e.g. "db_vip on eth0". */
  vip?: string;
  /** The firewall tool that filters incoming traffic (the runbooks open ports with it), or "none". */
  firewall?: string;
  /** On a DB server: the PostgreSQL versions installed, e.g. "PostgreSQL 15" or "no PostgreSQL yet". */
  postgres?: string;
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

async function checkHost(h: HostRef, opts: CheckOptions, set: (c: Partial<HostCheck>) => void, inv?: Inventory): Promise<void> {
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
  if (inv) await checkRoleFacts(h, inv, t, set, problems);
  set({ status: problems.length ? 'problems' : 'ok', problems });
}

/** The pairs a host belongs to: [vip alias, the pair] from the roles. */
function vipsOf(alias: string): string[] {
  return ROLES.filter((r) => r.pair?.includes(alias)).map((r) => r.alias);
}

/**
 * What the runbooks will need of this host: an interface on each VIP's subnet (keepalived puts
 * the VIP there), the firewall tool (the runbooks open ports with it), and on a DB server the
 * PostgreSQL versions already installed.
 */
async function checkRoleFacts(h: HostRef, inv: Inventory, t: Transport, set: (c: Partial<HostCheck>) => void, problems: Problem[]): Promise<void> {
  const { addresses } = hostsAndAddresses(inv);
  const vips = vipsOf(h.alias).filter((v) => addresses[v] && ipaddr.isValid(addresses[v]!));
  if (vips.length) {
    try {
      const res = await t.exec(netFact.script);
      const net = netFact.parse(res.stdout, res);
      const found: string[] = [];
      for (const v of vips) {
        const vip = ipaddr.process(addresses[v]!);
        const on = net.addresses.find((a) => a.scope !== 'host' && ipaddr.isValid(a.address) && ipaddr.process(a.address).kind() === vip.kind() && vip.match(ipaddr.process(a.address), a.prefix));
        if (on) found.push(`${v} on ${on.iface}`);
        else {
          const have = net.addresses.filter((a) => a.scope !== 'host').map((a) => `${a.iface} ${a.address}/${a.prefix}`).join(', ') || 'none';
          problems.push({ what: `${v} ${addresses[v]} is in no subnet of this host's interfaces (${have})`, fix: `choose ${v} in the pair's subnet, or set options.keepalived.interface` });
        }
      }
      if (found.length) set({ vip: found.join(', ') });
    } catch (e) {
      problems.push({ what: `could not read the interfaces: ${first((e as Error).message)}`, fix: 'check that ip(8) (iproute2) is installed' });
    }
  }
  try {
    const res = await t.exec(firewallFact.script, { sudo: firewallFact.sudo });
    set({ firewall: firewallTool(firewallFact.parse(res.stdout, res)) });
  } catch {
    // Reported by the runbooks that need it; the sudo check above names the usual cause.
  }
  if (h.alias === 'db_primary' || h.alias === 'db_standby') {
    try {
      const res = await t.exec('ls -d /usr/lib/postgresql/*/bin/postgres /usr/pgsql-*/bin/postgres 2>/dev/null | sed -E "s#.*/postgresql/([0-9]+)/bin/postgres#\\1#; s#.*/pgsql-([0-9]+)/bin/postgres#\\1#" | sort -n | tr "\\n" " "');
      const versions = res.stdout.trim().split(/\s+/).filter(Boolean);
      let wanted: number | undefined;
      try {
        wanted = pgOptions(inv.options ?? {}).version;
      } catch {
        wanted = undefined;
      }
      set({ postgres: versions.length ? `PostgreSQL ${versions.join(', ')}` : `no PostgreSQL yet${wanted ? ` (pg-primary installs ${wanted})` : ''}` });
    } catch {
      // informational only
    }
  }
}

/** Check every host of the table at once; resolves with all results in table order. */
export async function checkConnectivity(inv: Inventory, opts: CheckOptions): Promise<HostCheck[]> {
  const hosts = Object.values(hostsAndAddresses(inv).hosts);
  let checks: HostCheck[] = hosts.map((h) => ({ alias: h.alias, address: h.address, status: 'checking', problems: [] }));
  opts.onUpdate?.(checks);
  await Promise.all(
    hosts.map((h, i) =>
      checkHost(
        h,
        opts,
        (change) => {
          checks = checks.map((c, j) => (j === i ? { ...c, ...change } : c));
          opts.onUpdate?.(checks);
        },
        inv,
      ),
    ),
  );
  return checks;
}
