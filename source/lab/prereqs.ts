/**
 * Can this machine host a lab? Lists exactly what is missing. Nothing is installed from here:
 * scripts/host-setup.sh (run by `npm test`) installs the packages.
 */
import { existsSync, readFileSync } from 'node:fs';
import { which } from './exec.js';

export interface Prerequisites {
  ok: boolean;
  /** Debian packages to install (apt-get install -y --no-install-recommends ...). */
  packages: string[];
  /** Other things missing: privileges, kernel features. */
  other: string[];
  /** One line: what is missing and how to get it ('' when ok). */
  message: string;
}

const COMMANDS: [cmd: string, pkg: string][] = [
  ['systemd-nspawn', 'systemd-container'],
  ['debootstrap', 'debootstrap'],
  ['dpkg-scanpackages', 'dpkg-dev'],
  ['ssh', 'openssh-client'],
  ['ssh-keygen', 'openssh-client'],
  ['ip', 'iproute2'],
  ['unshare', 'util-linux'],
  ['nsenter', 'util-linux'],
  ['mount', 'mount'],
];

/** The cgroup2 tree (hybrid machines mount it at /sys/fs/cgroup/unified). */
export function cgroup2Root(): string | undefined {
  const mounts = safeRead('/proc/self/mountinfo');
  for (const line of mounts.split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    if (post.startsWith('cgroup2 ')) {
      const mountPoint = pre.split(' ')[4];
      if (mountPoint === '/sys/fs/cgroup/unified' || mountPoint === '/sys/fs/cgroup') return mountPoint;
    }
  }
  return undefined;
}

/** The legacy name=systemd hierarchy, when the machine has one (pitfall 2: join it too). */
export function cgroupV1SystemdRoot(): string | undefined {
  return existsSync('/sys/fs/cgroup/systemd/cgroup.procs') ? '/sys/fs/cgroup/systemd' : undefined;
}

export function labPrerequisites(): Prerequisites {
  const packages = new Set<string>();
  const other: string[] = [];
  if (process.getuid?.() !== 0) other.push('root privileges (run it as root, e.g. with sudo)');
  for (const [cmd, pkg] of COMMANDS) if (!which(cmd)) packages.add(pkg);
  const cg = cgroup2Root();
  if (!cg) other.push('a cgroup2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified');
  else if (!existsSync(`${cg}/cgroup.procs`)) other.push(`a usable cgroup2 tree at ${cg}`);
  if (!/\toverlay\n/.test(safeRead('/proc/filesystems')) && !existsSync('/sys/module/overlay')) {
    other.push('overlayfs in the kernel (modprobe overlay)');
  }
  const pkgs = [...packages];
  const parts: string[] = [];
  if (pkgs.length) {
    parts.push(
      `missing packages ${pkgs.join(', ')} (run scripts/host-setup.sh as root, or apt-get install -y --no-install-recommends ${pkgs.join(' ')})`,
    );
  }
  if (other.length) parts.push(`missing ${other.join('; ')}`);
  const ok = parts.length === 0;
  return {
    ok,
    packages: pkgs,
    other,
    message: ok ? '' : `this machine cannot host the lab: ${parts.join('; ')}`,
  };
}

function safeRead(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}
