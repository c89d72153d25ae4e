/**
 * The status scripts: which host gets which section (from the table), that each script is valid
 * bash that always reaches its end marker, and that nothing secret (the HAProxy stats password)
 * is ever on a command line: the script reads it on the lb and pipes it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { hostScript, statusPlan, MARKER } from '../../source/status/scripts.js';
import { splitSections } from '../../source/status/parse.js';

const FULL = {
  cluster: 'c',
  topology: 'lb' as const,
  servers: {
    db_primary: '198.18.0.11',
    db_standby: '198.18.0.12',
    db_vip: '198.18.0.100',
    nfs_primary: '198.18.0.13',
    nfs_standby: '198.18.0.14',
    nfs_vip: '198.18.0.101',
    app1: '198.18.0.15',
    app2: '198.18.0.16',
    lb: '198.18.0.17',
    lb_standby: '198.18.0.18',
    lb_vip: '198.18.0.102',
  },
  options: { nfs: { server: 'ganesha', exportDir: '/srv/nfs' } },
};

test('each host gets the sections of its roles; VIP pairs only with their VIP; NFS clients only with nfs_vip', () => {
  const plan = statusPlan(FULL);
  assert.deepEqual(plan.hosts, {
    db_primary: ['ip', 'keepalived', 'pg', 'pg-ha'],
    db_standby: ['ip', 'keepalived', 'pg', 'pg-ha'],
    nfs_primary: ['ip', 'keepalived', 'nfs-server'],
    nfs_standby: ['ip', 'keepalived', 'nfs-server'],
    lb: ['ip', 'keepalived', 'haproxy'],
    lb_standby: ['ip', 'keepalived', 'haproxy'],
    app1: ['nfs-client'],
    app2: ['nfs-client'],
  });
  assert.deepEqual(plan.pairs.map((p) => p.vipAlias), ['db_vip', 'nfs_vip', 'lb_vip']);

  const partial = statusPlan({ topology: 'k8s', servers: { db_primary: '198.18.0.11', db_standby: '198.18.0.12', app1: '198.18.0.15', k8s_master: '198.18.0.17' } });
  assert.deepEqual(partial.hosts, { db_primary: ['pg', 'pg-ha'], db_standby: ['pg', 'pg-ha'] });
  assert.deepEqual(partial.pairs, []);
});

test('every script is valid bash, runs to its end marker on a machine without any of the services, and prints each section', () => {
  const plan = statusPlan(FULL);
  for (const [alias, sections] of Object.entries(plan.hosts)) {
    const script = hostScript(FULL, sections, alias);
    const syntax = spawnSync('bash', ['-n'], { input: script, encoding: 'utf8' });
    assert.equal(syntax.status, 0, `${alias}: ${syntax.stderr}`);
    // As the transport runs it: set -euo pipefail first (the script turns -e and pipefail off).
    const r = spawnSync('bash', ['-s'], { input: `set -euo pipefail\n${script}`, encoding: 'utf8', timeout: 30_000, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
    assert.equal(r.status, 0, `${alias}: ${r.stderr}`);
    const got = splitSections(r.stdout);
    for (const s of sections) assert.ok(got[s] !== undefined, `${alias}: section ${s} missing`);
    assert.equal(got.end, '', `${alias}: no end marker`);
  }
});

test('the stats password is read from haproxy.cfg on the lb and piped: no secret, and no way to one, in any argv', () => {
  const script = hostScript(FULL, ['haproxy'], 'lb');
  assert.match(script, /auth=\$\(awk '\$1 == "stats" && \$2 == "auth" \{ print \$3; exit \}' \/etc\/haproxy\/haproxy\.cfg/);
  // base64 reads it on stdin (printf is a builtin), the inner bash reads the header value from its stdin.
  assert.match(script, /printf '%s' "\$auth" \| base64 -w0 \| timeout 4 bash -c 'IFS= read -r a; exec 3<>"\/dev\/tcp\/\$0\/\$1"/);
  assert.doesNotMatch(script, /curl|wget|--user|-u admin/);
  // Run it for real against a local stand-in of the stats page: the password is sent in the
  // header, yet no process of the script has it in its argv (checked from inside the server).
  const server = String.raw`
import base64, os, socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print(s.getsockname()[1], flush=True)
c, _ = s.accept(); req = b""
while b"\r\n\r\n" not in req:
    chunk = c.recv(4096)
    if not chunk: break
    req += chunk
req = req.decode()
argvs = []
for p in os.listdir("/proc"):
    if p.isdigit():
        try: argvs.append(open(f"/proc/{p}/cmdline", "rb").read().replace(b"\0", b" ").decode())
        except OSError: pass
leak = any("s3cret-Pw" in a for a in argvs)
auth = [l for l in req.split("\r\n") if l.startswith("Authorization: Basic ")]
ok = auth and base64.b64decode(auth[0].split()[-1]).decode() == "admin:s3cret-Pw"
open(sys.argv[1], "w").write("leak" if leak else "clean")
c.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n# pxname,svname,status,addr,\napp,app1,UP,10.0.0.1:8181,\n" if ok and not leak else b"HTTP/1.0 403 Forbidden\r\n\r\n")
c.close()
`;
  const py = spawnSync('bash', ['-c', 'command -v python3'], { encoding: 'utf8' });
  if (py.status !== 0) return;
  const cfgDir = spawnSync('mktemp', ['-d'], { encoding: 'utf8' }).stdout.trim();
  const cfg = `${cfgDir}/haproxy.cfg`;
  writeFileSync(cfg, 'listen stats\n    stats auth admin:s3cret-Pw\n');
  writeFileSync(`${cfgDir}/server.py`, server);
  const harness = [
    `coproc SRV { python3 ${cfgDir}/server.py ${cfgDir}/verdict; }`,
    'read -r port <&"${SRV[0]}"',
    // The lb's section of the script, with this harness's config file and port.
    hostScript({ ...FULL, options: { ...FULL.options, haproxy: { statsPort: 7000 } } }, ['haproxy'], 'lb').replaceAll('/etc/haproxy/haproxy.cfg', cfg).replace(' 127.0.0.1 7000 ', ' 127.0.0.1 "$port" '),
  ].join('\n');
  const r = spawnSync('bash', ['-s'], { input: harness, encoding: 'utf8', timeout: 20_000 });
  // The server decided before it answered: no process had the password in its argv.
  const verdict = spawnSync('cat', [`${cfgDir}/verdict`], { encoding: 'utf8' }).stdout;
  spawnSync('rm', ['-rf', cfgDir]);
  assert.match(r.stdout, /^SOURCE=stats-page$/m, r.stderr);
  assert.match(r.stdout, /^HTTP\/1\.0 200 OK/m, r.stdout + r.stderr);
  assert.match(r.stdout, /^app,app1,UP,10\.0\.0\.1:8181,$/m);
  assert.equal(verdict, 'clean');
  assert.ok(!r.stdout.includes('s3cret-Pw'));
});

test('sections are split on the marker; a script cut off by its timeout keeps what it printed and has no end', () => {
  const out = `${MARKER} ip\n1: lo    inet 127.0.0.1/8 scope host lo\n${MARKER} pg\nUNIT=postgresql@15-main\nROLE=primary\n`;
  const s = splitSections(out);
  assert.equal(s.ip, '1: lo    inet 127.0.0.1/8 scope host lo');
  assert.equal(s.pg, 'UNIT=postgresql@15-main\nROLE=primary\n');
  assert.equal(s.end, undefined);
});
