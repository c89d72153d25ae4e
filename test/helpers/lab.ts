/**
 * A lab for a test file: `const lab = useLab({ hosts: 3 })` at the top level registers before()
 * and after() hooks that bring a lab up in a lab directory of its own under /tmp (the image
 * cache is shared: the default lab's cache, or HA_SETUP_LAB_CACHE) and ALWAYS tear it down:
 * after the tests (passed or failed), on SIGINT/SIGTERM, on an uncaught exception, and, as a
 * last resort, synchronously on process exit. Tests call `lab.get(t)`, which skips the test with
 * t.skip(<exactly what is missing>) when this machine cannot host a lab (and only then).
 *
 * `withLab(t, { hosts }, fn)` does the same around one test.
 */
import { after, before, type TestContext } from 'node:test';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { parse as parseYaml, stringify } from 'yaml';
import { fileURLToPath } from 'node:url';
import {
  defaultLabCache,
  labDown,
  labPrerequisites,
  labUp,
  type LabDownReport,
  type LabInfo,
} from '../../source/lab/index.js';
import { bridgeExists, bridgeOwner } from '../../source/lab/network.js';
import type { HostSpec } from '../../source/lab/topology.js';

const cli = fileURLToPath(new URL('../../../bin/ha-setup.js', import.meta.url));

export interface SshResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Milliseconds the ssh client ran. */
  ms: number;
}

export interface SshOptions {
  user?: string;
  /** ssh -o ConnectTimeout (seconds, default 5). */
  connectTimeout?: number;
  /** Kill ssh after this many ms (default 120 s). */
  timeoutMs?: number;
}

export interface Lab {
  info: LabInfo;
  /** Environment with this lab's HA_SETUP_LAB_DIR / HA_SETUP_LAB_CACHE (for the CLI). */
  env: NodeJS.ProcessEnv;
  host(alias: string): HostSpec;
  /** Runs a script (bash -s, on stdin) over OpenSSH with strict host-key checking. */
  ssh(host: HostSpec | string, script: string, options?: SshOptions): Promise<SshResult>;
  /** ssh() that must exit 0; returns stdout. */
  sh(host: HostSpec | string, script: string, options?: SshOptions): Promise<string>;
  /** Runs `ha-setup <args>` with this lab's environment. */
  cli(args: string[]): Promise<SshResult>;
  down(): Promise<LabDownReport>;
}

/** What a test's server table holds besides the lab's SSH settings. */
export interface LabTableSpec {
  cluster: string;
  topology?: 'lb' | 'k8s';
  servers: Record<string, string>;
  /** The lab's network block (prefix 24): as `ha-setup lab up` writes it. */
  network?: boolean;
  options?: Record<string, unknown>;
}

/**
 * Writes a partial server table for this lab to `file` and returns the path: the given servers
 * and options, SSH as the lab's own table has it (root, the lab's key and known_hosts).
 */
export function writeLabTable(lab: Lab, file: string, spec: LabTableSpec): string {
  const own = parseYaml(readFileSync(lab.info.tableFile, 'utf8')) as { ssh: unknown; network?: unknown };
  const table = {
    cluster: spec.cluster,
    topology: spec.topology ?? 'lb',
    partial: true,
    servers: spec.servers,
    ...(spec.network ? { network: own.network ?? { prefix: 24 } } : {}),
    ssh: own.ssh,
    ...(spec.options ? { options: spec.options } : {}),
  };
  writeFileSync(file, stringify(table));
  return file;
}

/** Why this machine cannot host a lab, or undefined when it can. */
export function labSkipReason(): string | undefined {
  const pre = labPrerequisites();
  return pre.ok ? undefined : pre.message;
}

export function labEnv(): NodeJS.ProcessEnv {
  const dir = mkdtempSync('/tmp/ha-setup-lab-test-');
  return { ...process.env, HA_SETUP_LAB_DIR: dir, HA_SETUP_LAB_CACHE: defaultLabCache(process.env) };
}

// Every lab this process has up, for the emergency teardown paths.
const live = new Map<string, NodeJS.ProcessEnv>();
let handlersInstalled = false;
let emergency: Promise<void> | undefined;

/**
 * Tears down every lab of this process, once, however many signals arrive meanwhile. The work
 * is done by `ha-setup lab down` in a session of its own, so that it completes even when this
 * process is killed right after the signal (the test runner ends its children on Ctrl-C).
 */
function downAll(why: string): Promise<void> {
  if (!emergency) {
    try {
      process.stderr.write(`lab helper: ${why}: tearing the lab down\n`);
    } catch {
      /* stderr may be gone with the test runner */
    }
    emergency = Promise.all(
      [...live.values()].map(
        (env) =>
          new Promise<void>((resolve) => {
            const c = spawn('/bin/sh', ['-c', '"$0" "$1" lab down && rm -rf -- "$2"', process.execPath, cli, env.HA_SETUP_LAB_DIR!], {
              env,
              detached: true,
              stdio: 'ignore',
            });
            c.on('close', () => resolve());
            c.on('error', () => resolve());
          }),
      ),
    ).then(() => live.clear());
  }
  return emergency;
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      void downAll(sig).finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
    });
  }
  process.on('uncaughtException', (e) => {
    void downAll(`uncaught exception (${e.message})`).finally(() => process.exit(1));
  });
  process.on('exit', () => {
    // Last resort, synchronous: a process.exit() that skipped the after() hooks.
    for (const env of live.values()) spawnSync(process.execPath, [cli, 'lab', 'down'], { env, stdio: 'ignore', timeout: 60_000 });
  });
}

async function teardown(env: NodeJS.ProcessEnv): Promise<LabDownReport> {
  const report = await labDown({ env });
  if (report.left.length === 0) {
    live.delete(env.HA_SETUP_LAB_DIR!);
    rmSync(env.HA_SETUP_LAB_DIR!, { recursive: true, force: true });
  }
  return report;
}

async function bringUp(opts: { hosts?: number; topology?: string }): Promise<Lab> {
  const owner = bridgeOwner();
  if (bridgeExists()) {
    throw new Error(
      `a lab is already up on this machine (${owner ?? 'unknown owner'}); the lab tests need the lab network: ` +
        `stop it first (HA_SETUP_LAB_DIR=${owner ?? '<dir>'} ha-setup lab down)`,
    );
  }
  installHandlers();
  const env = labEnv();
  live.set(env.HA_SETUP_LAB_DIR!, env);
  const info = await labUp({ ...opts, env, log: (l) => process.stderr.write(`# ${l}\n`) });
  return makeLab(info, env);
}

function makeLab(info: LabInfo, env: NodeJS.ProcessEnv): Lab {
  const host = (alias: string) => {
    const h = info.hosts.find((x) => x.alias === alias || x.name === alias || x.address === alias);
    if (!h) throw new Error(`no host ${alias} in the lab`);
    return h;
  };
  const ssh = (target: HostSpec | string, script: string, o: SshOptions = {}) => {
    const h = typeof target === 'string' ? host(target) : target;
    const args = [
      '-o', 'BatchMode=yes',
      '-o', 'StrictHostKeyChecking=yes',
      '-o', `UserKnownHostsFile=${info.knownHostsFile}`,
      '-o', 'GlobalKnownHostsFile=/dev/null',
      '-o', 'IdentitiesOnly=yes',
      '-o', `ConnectTimeout=${o.connectTimeout ?? 5}`,
      '-o', 'LogLevel=ERROR',
      '-F', '/dev/null',
      '-i', info.keyFile,
      `${o.user ?? 'root'}@${h.address}`,
      'bash -s',
    ];
    return runProcess('ssh', args, script, o.timeoutMs ?? 120_000);
  };
  return {
    info,
    env,
    host,
    ssh,
    async sh(target, script, o) {
      const r = await ssh(target, script, o);
      if (r.code !== 0) {
        const name = typeof target === 'string' ? target : target.alias;
        throw new Error(`${name}: exit ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
      }
      return r.stdout;
    },
    cli: (args) => runProcess(process.execPath, [cli, ...args], '', 300_000, env),
    down: () => teardown(env),
  };
}

function runProcess(cmd: string, args: string[], input: string, timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<SshResult> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 255, stdout, stderr, ms: Date.now() - t0 });
    });
    child.stdin.end(input);
  });
}

export interface LabFixture {
  /** The lab, or undefined after t.skip(reason) when this machine cannot host one. */
  get(t: TestContext): Lab | undefined;
}

/** Brings a lab up before the file's tests and down after them (see the top of this file). */
export function useLab(opts: { hosts?: number; topology?: string }): LabFixture {
  const reason = labSkipReason();
  let lab: Lab | undefined;
  let failure: Error | undefined;
  before(async () => {
    if (reason) return;
    try {
      lab = await bringUp(opts);
    } catch (e) {
      failure = e as Error;
    }
  }, { timeout: 20 * 60_000 });
  after(async () => {
    for (const env of [...live.values()]) {
      const r = await teardown(env);
      if (r.left.length) throw new Error(`lab down left: ${r.left.join('; ')}`);
    }
  }, { timeout: 120_000 });
  return {
    get(t) {
      if (reason) {
        t.skip(reason);
        return undefined;
      }
      if (failure) throw new Error(`the lab did not come up: ${failure.message}`);
      if (!lab) throw new Error('the lab is not up (useLab() must be called at the top level of the test file)');
      return lab;
    },
  };
}

/** A lab around one test: up, fn(lab), down (always). Skips the test when no lab can run. */
export async function withLab(
  t: TestContext,
  opts: { hosts?: number; topology?: string },
  fn: (lab: Lab) => Promise<void>,
): Promise<void> {
  const reason = labSkipReason();
  if (reason) {
    t.skip(reason);
    return;
  }
  const lab = await bringUp(opts).catch(async (e: Error) => {
    for (const env of [...live.values()]) await teardown(env).catch(() => undefined);
    throw e;
  });
  try {
    await fn(lab);
  } finally {
    await lab.down();
  }
}
