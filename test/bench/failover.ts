/**
 * Benchmark of the DB failover in the lab: `ha-setup drill db` for every fault type, N runs
 * each (default 3), `ha-setup rejoin db` after each; prints the time until the VIP moved, the
 * RTO and the acknowledged rows lost, per run and as the median per fault.
 *
 *   node dist/test/bench/failover.js [--runs 3] [--faults stop-postgres,cut-link]
 *
 * Targets (issue 5): RTO <= 2 s for a stopped service (stop-postgres, stop-keepalived),
 * <= 5 s for a cut link or a frozen host. A reboot is reported without a target.
 * Brings up a 3-host lab of its own (the DB pair, and the third host as app1, where the probe
 * runs) and always takes it down. Take the machine's lab lock first (see the briefing).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultLabCache, labDown, labPrerequisites, labUp, type LabInfo } from '../../source/lab/index.js';
import { bridgeExists } from '../../source/lab/network.js';
import { DRILL_FAULTS, type DrillFault } from '../../source/drill/fault.js';
import type { DrillReport } from '../../source/drill/run.js';

const cli = fileURLToPath(new URL('../../../bin/ha-setup.js', import.meta.url));
const TARGET_MS: Partial<Record<DrillFault, number>> = { 'stop-postgres': 2000, 'stop-keepalived': 2000, 'cut-link': 5000, freeze: 5000 };

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const runs = Number(arg('--runs') ?? 3);
const faults = (arg('--faults')?.split(',') ?? [...DRILL_FAULTS]) as DrillFault[];

function ha(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [cli, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

function table(info: LabInfo): string {
  const host = (a: string) => info.hosts.find((h) => h.alias === a)!.address;
  const file = join(info.dir, 'failover.yaml');
  writeFileSync(
    file,
    [
      'cluster: failover-bench',
      'topology: lb',
      'partial: true',
      'servers:',
      `  db_primary: ${host('db_primary')}`,
      `  db_standby: ${host('db_standby')}`,
      '  db_vip: 198.18.0.100',
      `  app1: ${host('nfs_primary')}`,
      'ssh:',
      '  user: root',
      `  identity: ${JSON.stringify(info.keyFile)}`,
      `  knownHosts: ${JSON.stringify(info.knownHostsFile)}`,
      'options:',
      '  postgres:',
      '    version: 15',
      '',
    ].join('\n'),
  );
  return file;
}

const median = (xs: number[]): number | null => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const sec = (ms: number | null) => (ms === null ? 'never' : `${(ms / 1000).toFixed(2)} s`);

async function main(): Promise<number> {
  const pre = labPrerequisites();
  if (!pre.ok) {
    console.log(`skipped: ${pre.message}`);
    return 0;
  }
  if (bridgeExists()) {
    console.error('a lab is up on this machine: stop it first (ha-setup lab down)');
    return 1;
  }
  const dir = mkdtempSync(join(tmpdir(), 'ha-failover-bench-'));
  const env = { ...process.env, HA_SETUP_LAB_DIR: dir, HA_SETUP_LAB_CACHE: defaultLabCache(process.env), HA_SETUP_HOME: join(dir, 'home') };
  const results = new Map<DrillFault, DrillReport[]>();
  let failed = false;
  try {
    const info = await labUp({ hosts: 3, env });
    const file = table(info);
    const setup = await ha(['apply', '--config', file, '--yes', '--runbook', 'facts,os-prep,pg-primary,pg-ssl,pg-users,pg-standby,pg-verify,keepalived'], env);
    if (setup.code !== 0) throw new Error(`apply failed:\n${setup.stdout.slice(-2000)}\n${setup.stderr}`);
    for (const fault of faults) {
      for (let i = 1; i <= runs; i++) {
        const d = await ha(['drill', 'db', '--config', file, '--fault', fault, '--json'], env);
        let report: DrillReport | undefined;
        try {
          report = JSON.parse(d.stdout) as DrillReport;
        } catch {
          console.log(`${fault} #${i}: the drill did not report (exit ${d.code}): ${d.stderr.trim().split('\n').pop()}`);
          failed = true;
        }
        if (report) {
          results.set(fault, [...(results.get(fault) ?? []), report]);
          const m = report.measured;
          console.log(
            `${fault.padEnd(15)} #${i}  ${report.target.alias} -> ${report.survivor.alias}  VIP moved ${sec(m.vipMovedMs).padStart(7)}  RTO ${sec(m.rtoMs).padStart(7)}  lost ${report.rpo.missing ?? '?'} of ${report.rpo.acknowledged}  ${report.ok ? 'ok' : `FAILED: ${report.checks.filter((c) => !c.ok).map((c) => c.name).join('; ')}`}`,
          );
          if (!report.ok) {
            failed = true;
            for (const d of report.decisions) console.log(`    ${d.time}  ${d.host}  ${d.message}`);
          }
        }
        const r = await ha(['rejoin', 'db', '--config', file, '--yes'], env);
        if (r.code !== 0) throw new Error(`rejoin after ${fault} #${i} failed (exit ${r.code}):\n${r.stdout.trim().split('\n').slice(-10).join('\n')}\n${r.stderr.trim().split('\n').slice(-25).join('\n')}`);
      }
    }
  } finally {
    const down = await labDown({ env });
    if (down.left.length === 0) rmSync(dir, { recursive: true, force: true });
    else console.error(`lab down left: ${down.left.join('; ')}`);
  }
  console.log(`\nmedian of ${runs} runs per fault (lab: 3 Debian 12 hosts on this machine, async replication):`);
  console.log(`  ${'fault'.padEnd(16)}${'VIP moved'.padStart(10)}${'RTO'.padStart(10)}${'target'.padStart(9)}  rows lost`);
  for (const fault of faults) {
    const rs = results.get(fault) ?? [];
    const rto = median(rs.map((r) => r.measured.rtoMs).filter((x): x is number => x !== null));
    const vip = median(rs.map((r) => r.measured.vipMovedMs).filter((x): x is number => x !== null));
    const target = TARGET_MS[fault];
    const verdict = target === undefined ? '' : rto !== null && rto <= target ? 'ok' : 'OVER TARGET';
    const lost = rs.map((r) => r.rpo.missing ?? '?').join(', ');
    console.log(`  ${fault.padEnd(16)}${sec(vip).padStart(10)}${sec(rto).padStart(10)}${(target ? `<= ${target / 1000} s` : '-').padStart(9)}  ${lost}  ${verdict}`);
  }
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    console.error(e.message);
    process.exit(1);
  },
);
