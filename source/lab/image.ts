/**
 * The lab's base image: Debian bookworm (debootstrap --variant=minbase) with systemd and the
 * packages the runbooks use, plus the offline apt repository built from the same downloads.
 * Built once and cached under <cache>/base-<hash>; <hash> covers the recipe (package lists,
 * the build script and every file under assets/lab/image), so editing any of them rebuilds.
 */
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  rmdirSync,
  statSync,
  writeFileSync,
  appendFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { assetsDir, REPO_URL } from './layout.js';
import { alive, allPids, must, readPid, run, sleep } from './exec.js';
import { cgroup2Root, cgroupV1SystemdRoot } from './prereqs.js';
import { removeCgroups } from './cgroups.js';

export const SUITE = 'bookworm';
export const DEFAULT_MIRROR = 'http://deb.debian.org/debian';

/** debootstrap --include (first stage). */
export const BASE_PACKAGES = [
  'systemd', 'systemd-sysv', 'dbus', 'openssh-server', 'iproute2', 'procps', 'sudo', 'python3',
  'ca-certificates', 'netbase',
];
/** Installed inside the base (second stage, no recommends). */
export const IMAGE_PACKAGES = [
  'postgresql-15', 'keepalived', 'haproxy', 'rsync', 'nfs-ganesha', 'nfs-ganesha-vfs', 'libnfs-utils',
  'openssl', 'nftables', 'iputils-ping', 'less',
];
/**
 * In the offline repository (with their recommends): what runbooks install. chrony, ufw and curl
 * are deliberately NOT in the image, so that a real apt-get install in a host can be shown.
 */
export const REPO_PACKAGES = [
  ...IMAGE_PACKAGES, 'postgresql', 'postgresql-contrib', 'postgresql-client-15', 'chrony', 'ufw', 'curl',
];
export const NOT_IN_IMAGE = ['chrony', 'ufw', 'curl'];

const RECIPE_VERSION = 1;

export interface ImageInfo {
  hash: string;
  dir: string;
  rootfs: string;
  repo: string;
  /** ISO time the build finished. */
  builtAt: string;
  buildSeconds: number;
  /** Seconds per phase: debootstrap, packages, repo index. */
  phases: Record<string, number>;
  sizeBytes: number;
  repoBytes: number;
}

function imageAssetFiles(): string[] {
  const dir = join(assetsDir, 'image');
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(p);
    }
  };
  walk(dir);
  return out;
}

/** Hash of everything that decides the image's content. */
export function recipeHash(): string {
  const h = createHash('sha256');
  h.update(JSON.stringify({ RECIPE_VERSION, SUITE, BASE_PACKAGES, IMAGE_PACKAGES, REPO_PACKAGES, REPO_URL }));
  for (const f of imageAssetFiles()) {
    h.update(`\0${f.slice(assetsDir.length)}\0`);
    h.update(readFileSync(f));
  }
  return h.digest('hex').slice(0, 16);
}

/** The cached image for the current recipe, if it was built. */
export function cachedImage(cacheDir: string): ImageInfo | undefined {
  const file = join(cacheDir, `base-${recipeHash()}`, 'build.json');
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as ImageInfo;
  } catch {
    return undefined;
  }
}

export interface BuildOptions {
  cacheDir: string;
  /** Build even when a cached image exists (the old one is replaced). */
  rebuild?: boolean;
  mirror?: string;
  log?: (line: string) => void;
}

/** The image for the current recipe: from the cache, or built now (about 1-2 minutes). */
export async function ensureImage(opts: BuildOptions): Promise<ImageInfo> {
  if (!opts.rebuild) {
    const cached = cachedImage(opts.cacheDir);
    if (cached && existsSync(cached.rootfs)) return cached;
  }
  mkdirSync(opts.cacheDir, { recursive: true, mode: 0o700 });
  const release = await lockBuild(opts.cacheDir, opts.log);
  try {
    // Another process may have built it while we waited for the lock.
    const cached = cachedImage(opts.cacheDir);
    if (cached && existsSync(cached.rootfs) && !opts.rebuild) return cached;
    return await build(opts);
  } finally {
    release();
  }
}

async function lockBuild(cacheDir: string, log?: (l: string) => void): Promise<() => void> {
  const lock = join(cacheDir, 'build.lock');
  const end = Date.now() + 20 * 60_000;
  let told = false;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      return () => rmSync(lock, { recursive: true, force: true });
    } catch {
      const holder = readPid(join(lock, 'pid'));
      if (!alive(holder)) {
        rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > end) throw new Error(`the lab image is being built by process ${holder} for 20 minutes; stop it or remove ${lock}`);
      if (!told) log?.(`waiting for process ${holder}, which is building the lab image`);
      told = true;
      await sleep(1000);
    }
  }
}

async function build(opts: BuildOptions): Promise<ImageInfo> {
  const log = opts.log ?? (() => {});
  const hash = recipeHash();
  const final = join(opts.cacheDir, `base-${hash}`);
  const tmp = join(opts.cacheDir, `build-${hash}.tmp`);
  const logFile = join(opts.cacheDir, 'build.log');
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(tmp, 'repo'), { recursive: true });
  writeFileSync(logFile, `build of base-${hash} started ${new Date().toISOString()}\n`);
  const toLog = (l: string) => appendFileSync(logFile, `${l}\n`);
  const mirror = opts.mirror ?? process.env.HA_SETUP_LAB_MIRROR ?? DEFAULT_MIRROR;
  const started = Date.now();
  const phases: Record<string, number> = {};
  const phase = async (name: string, fn: () => Promise<void>) => {
    const t = Date.now();
    await fn();
    phases[name] = Math.round((Date.now() - t) / 100) / 10;
  };

  const rootfs = join(tmp, 'rootfs');
  await phase('debootstrap', async () => {
    log(`lab image: debootstrap ${SUITE} (minbase + systemd, ssh ...) from ${mirror}`);
    mkdirSync(join(opts.cacheDir, 'debs'), { recursive: true });
    const r = await run(
      'debootstrap',
      [
        '--variant=minbase',
        `--include=${BASE_PACKAGES.join(',')}`,
        `--cache-dir=${join(opts.cacheDir, 'debs')}`,
        SUITE,
        rootfs,
        mirror,
      ],
      { onLine: toLog, timeoutMs: 20 * 60_000 },
    );
    if (r.code !== 0) throw new Error(`debootstrap failed (exit ${r.code}); see ${logFile}`);
  });

  await phase('packages', async () => {
    log(`lab image: installing ${IMAGE_PACKAGES.join(' ')}; downloading the offline repository`);
    await inContainer(rootfs, join(tmp, 'repo'), mirror, toLog, logFile);
  });

  await phase('repo', async () => {
    await writeRepoIndex(join(tmp, 'repo'));
  });

  const info: ImageInfo = {
    hash,
    dir: final,
    rootfs: join(final, 'rootfs'),
    repo: join(final, 'repo'),
    builtAt: new Date().toISOString(),
    buildSeconds: Math.round((Date.now() - started) / 100) / 10,
    phases,
    sizeBytes: await diskUsage(rootfs),
    repoBytes: await diskUsage(join(tmp, 'repo')),
  };
  writeFileSync(join(tmp, 'build.json'), `${JSON.stringify(info, null, 2)}\n`);
  if (existsSync(final)) await removeImageDir(final);
  renameSync(tmp, final);
  await pruneOldImages(opts.cacheDir, final);
  log(`lab image: built in ${info.buildSeconds} s (${(info.sizeBytes / 2 ** 20).toFixed(0)} MiB)`);
  return info;
}

/** Second stage: the build script runs inside the rootfs under systemd-nspawn (not booted). */
async function inContainer(rootfs: string, repo: string, mirror: string, toLog: (l: string) => void, logFile: string) {
  const cgName = `build-${process.pid}`;
  const cgDirs = [cgroup2Root(), cgroupV1SystemdRoot()].filter(Boolean).map((r) => join(r!, `ha-lab-${cgName}`));
  // Pitfall 2: nspawn gets a cgroup of its own, joined before it starts.
  const wrapper = 'for d in "$@"; do [ "$d" = -- ] && break; mkdir -p "$d" && echo $$ > "$d/cgroup.procs" || exit 90; done; ' +
    'while [ "$1" != -- ]; do shift; done; shift; exec "$@"';
  const args = [
    '-c', wrapper, 'ha-lab-build', ...cgDirs, '--',
    'systemd-nspawn', '--quiet', '--register=no', '--keep-unit', `--machine=ha-lab-${cgName}`,
    `--directory=${rootfs}`, '--resolv-conf=copy-host', '--timezone=off',
    `--bind=${repo}:/lab-repo`, `--bind-ro=${join(assetsDir, 'image', 'build-base.sh')}:/lab-build.sh`,
    `--setenv=LAB_MIRROR=${mirror}`,
    `--setenv=LAB_PACKAGES=${IMAGE_PACKAGES.join(' ')}`,
    `--setenv=LAB_REPO_PKGS=${REPO_PACKAGES.join(' ')}`,
    `--setenv=LAB_REPO_URL=${REPO_URL}`,
    '/bin/bash', '/lab-build.sh',
  ];
  try {
    const r = await run('/bin/bash', args, {
      onLine: toLog,
      timeoutMs: 20 * 60_000,
      env: { ...process.env, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: '1' },
    });
    if (r.code !== 0) throw new Error(`installing packages in the lab image failed (exit ${r.code}); see ${logFile}`);
  } finally {
    await removeCgroups(cgName);
  }
  // nspawn's bind mount points, and copy-host's copy of the machine's resolver: not for hosts.
  rmdirSync(join(rootfs, 'lab-repo'));
  rmSync(join(rootfs, 'lab-build.sh'), { force: true });
  writeFileSync(join(rootfs, 'etc', 'resolv.conf'), '# no DNS in the ha-setup lab: use addresses\n');
}

/** Packages, Packages.gz and a Release file for a flat repository (deb [trusted=yes] URL ./). */
export async function writeRepoIndex(repo: string): Promise<void> {
  const packages = await must('dpkg-scanpackages', ['--multiversion', '.', '/dev/null'], { cwd: repo });
  const gz = gzipSync(packages);
  writeFileSync(join(repo, 'Packages'), packages);
  writeFileSync(join(repo, 'Packages.gz'), gz);
  const sum = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');
  const release = [
    'Origin: ha-setup-lab',
    'Label: ha-setup-lab',
    'Suite: lab',
    'Codename: lab',
    `Date: ${new Date().toUTCString()}`,
    'Architectures: amd64 all',
    'Description: ha-setup lab offline repository',
    'SHA256:',
    ` ${sum(packages)} ${Buffer.byteLength(packages)} Packages`,
    ` ${sum(gz)} ${gz.length} Packages.gz`,
    '',
  ].join('\n');
  writeFileSync(join(repo, 'Release'), release);
}

async function diskUsage(path: string): Promise<number> {
  const out = await must('du', ['-sb', path]);
  return Number(out.split(/\s/)[0]);
}

/** An image directory some host still uses as its overlay lower dir (seen in any mount table). */
function imageInUse(dir: string): boolean {
  for (const pid of allPids()) {
    try {
      if (readFileSync(`/proc/${pid}/mountinfo`, 'utf8').includes(`lowerdir=${dir}/`)) return true;
    } catch {
      /* gone */
    }
  }
  return false;
}

async function removeImageDir(dir: string) {
  if (imageInUse(dir)) throw new Error(`cannot replace ${dir}: a running lab uses it (run ha-setup lab down first)`);
  rmSync(dir, { recursive: true, force: true });
}

/** Older images (other recipes) go, unless a running lab still uses one. */
async function pruneOldImages(cacheDir: string, keep: string) {
  for (const name of readdirSync(cacheDir)) {
    const p = join(cacheDir, name);
    if (p === keep || !/^(base-[0-9a-f]+|build-[0-9a-f]+\.tmp)$/.test(name)) continue;
    if (!statSync(p).isDirectory() || imageInUse(p)) continue;
    rmSync(p, { recursive: true, force: true });
  }
}
