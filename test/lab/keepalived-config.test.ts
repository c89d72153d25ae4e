/**
 * keepalived itself checks every config the runbook generates (`keepalived -t`), for all four
 * nodes of the DB and NFS pairs, with and without SMTP settings: the lab image's keepalived
 * 2.2.7, run in a throwaway overlay of the image (a private mount namespace; nothing is written
 * to the cached image), with the runbook's scripts installed where the configs name them (with
 * enable_script_security keepalived refuses scripts it cannot vouch for). Needs the lab image,
 * not a running lab. Also the mutation check: a config keepalived rejects makes -t fail.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { contextOptions, createHostContext, tableOf } from '../../source/engine/context.js';
import { Secret } from '../../source/engine/shell.js';
import { cachedImage } from '../../source/lab/image.js';
import { defaultLabCache } from '../../source/lab/index.js';
import { keepalivedConf, vrrpAddresses } from '../../runbooks/lib/keepalived-config.js';

const ASSETS = fileURLToPath(new URL('../../../assets/keepalived/', import.meta.url));
const SERVERS = { db_primary: '198.18.0.11', db_standby: '198.18.0.12', db_vip: '198.18.0.100', nfs_primary: '198.18.0.13', nfs_standby: '198.18.0.14', nfs_vip: '198.18.0.101' };

function conf(alias: keyof typeof SERVERS, options: Record<string, unknown> = {}): string {
  const table = tableOf({ servers: SERVERS });
  const ctx = createHostContext({
    host: table.hosts[alias]!,
    table,
    options: contextOptions({ cluster: 'c', options: { postgres: { version: 15 }, ...options } }),
    secret: (n) => new Secret(n, createHash('sha256').update(n).digest('base64url').slice(0, 8)),
  });
  const net = { addresses: [{ iface: 'eth0', family: 'inet' as const, address: SERVERS[alias], prefix: 24, scope: 'global' }], hostname: 'h', fqdn: 'h' };
  return keepalivedConf(ctx, vrrpAddresses(ctx, net, {}));
}

/** keepalived -t on the config, inside an overlay of the lab image; null when that cannot run here. */
function check(configs: Record<string, string>): Record<string, { code: number; output: string }> | string {
  const image = cachedImage(defaultLabCache(process.env));
  if (!image) return 'no lab image is cached (ha-setup lab up builds it)';
  if (process.getuid?.() !== 0) return 'needs root (mount namespaces and overlayfs)';
  const dir = mkdtempSync(join(tmpdir(), 'ka-t-'));
  try {
    for (const [name, text] of Object.entries(configs)) writeFileSync(join(dir, `${name}.conf`), text);
    const script = [
      'set -e',
      `mkdir -p ${dir}/upper ${dir}/work ${dir}/root`,
      `mount -t overlay overlay -o lowerdir=${image.rootfs},upperdir=${dir}/upper,workdir=${dir}/work ${dir}/root`,
      `R=${dir}/root`,
      'install -d -m 0755 $R/usr/local/lib/ha-setup/keepalived $R/var/lib/ha-setup/keepalived $R/tmp/ka',
      `install -m 0755 ${ASSETS}pg-ha.sh $R/usr/local/lib/ha-setup/keepalived/pg-ha`,
      `install -m 0755 ${ASSETS}nfs-check.sh $R/usr/local/lib/ha-setup/keepalived/nfs-check`,
      `cp ${dir}/*.conf $R/tmp/ka/`,
      'mount -t proc proc $R/proc',
      'set +e',
      ...Object.keys(configs).map((n) => `out=$(chroot $R timeout 20 keepalived -t -f /tmp/ka/${n}.conf 2>&1); echo "RESULT ${n} $? $(printf %s "$out" | tr '\\n' ' ')"`),
    ].join('\n');
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'bash', '-c', script], { encoding: 'utf8', timeout: 120_000 });
    const out: Record<string, { code: number; output: string }> = {};
    for (const line of r.stdout.split('\n')) {
      const m = /^RESULT (\S+) (\d+) ?(.*)$/.exec(line);
      if (m) out[m[1]!] = { code: Number(m[2]), output: m[3]! };
    }
    if (Object.keys(out).length !== Object.keys(configs).length) throw new Error(`keepalived -t did not run: ${r.stderr || r.stdout}`);
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('keepalived -t accepts the generated config of every node of both pairs, with SMTP settings too', (t) => {
  const email = { keepalived: { email: { to: ['dba@example.com'], from: 'ka@example.com', smtpServer: '192.0.2.25 2525' } } };
  const configs = {
    db_primary: conf('db_primary'),
    db_standby: conf('db_standby'),
    nfs_primary: conf('nfs_primary'),
    nfs_standby: conf('nfs_standby', email),
    db_email: conf('db_primary', email),
    // The mutation check: keepalived must reject this one, or the test proves nothing.
    broken: conf('db_standby').replace('\n    nopreempt\n', '\n    nopreempt_typo\n'),
  };
  const r = check(configs);
  if (typeof r === 'string') {
    t.skip(r);
    return;
  }
  for (const name of Object.keys(configs).filter((n) => n !== 'broken')) assert.deepEqual(r[name], { code: 0, output: '' }, name);
  assert.notEqual(r.broken!.code, 0);
  assert.match(r.broken!.output, /Unknown keyword 'nopreempt_typo'/);
});
