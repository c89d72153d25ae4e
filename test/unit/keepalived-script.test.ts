/**
 * assets/keepalived/pg-ha.sh, the script keepalived runs on the DB nodes, executed for real
 * under bash with stand-ins for what it talks to: psql (local answers and the peer's answers
 * over the replication connection), setpriv, ip (which addresses the node holds), logger,
 * systemctl, pg_ctl. The peer's TCP reachability is real (a listening or a closed port on
 * 127.0.0.1). Each case asserts the decision: exit status, what was stopped or promoted, the
 * fence marker, the generation file keepalived tracks, and the logged reason.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../../../assets/keepalived/pg-ha.sh', import.meta.url));
const VIP = '198.18.0.100';

let server: Server;
let openPort = 0;
let closedPort = 0;

test.before(async () => {
  server = createServer((s) => s.destroy());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  openPort = (server.address() as { port: number }).port;
  const tmp = createServer();
  await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', () => r()));
  closedPort = (tmp.address() as { port: number }).port;
  await new Promise<void>((r) => tmp.close(() => r()));
});
test.after(() => new Promise<void>((r) => server.close(() => r())));

type Local = 'primary' | 'standby' | 'down' | 'hung';
type Peer = 'primary' | 'standby' | 'down' | 'auth-fails';

interface Node {
  dir: string;
  fake: string;
  run(...args: string[]): { code: number; stdout: string; stderr: string; ms: number };
  log(): string;
  calls(name: 'systemctl' | 'pg_ctl'): string[];
  promoted(): boolean;
  file(rel: string): string | null;
}

/** A DB node: its PostgreSQL (local), the peer's, whether it holds the VIP, its link. */
function node(opts: { local: Local; timeline?: number; peer: Peer; peerTimeline?: number; vip?: boolean; linkDown?: boolean; fenceWait?: number }): Node {
  const dir = mkdtempSync(join(tmpdir(), 'pg-ha-'));
  const fake = join(dir, 'fake');
  const bin = join(dir, 'bin');
  const pgbin = join(dir, 'pgbin');
  const data = join(dir, 'data');
  for (const d of [fake, bin, pgbin, data, join(dir, 'sys/class/net/eth0')]) mkdirSync(d, { recursive: true });
  const script = (path: string, text: string) => {
    writeFileSync(path, `#!/bin/bash\n${text}\n`);
    chmodSync(path, 0o755);
  };
  script(join(bin, 'setpriv'), 'while [ "$1" != "--" ]; do shift; done; shift; exec "$@"');
  script(join(bin, 'ip'), `cat ${fake}/ip`);
  script(join(bin, 'logger'), `for a; do m=$a; done; echo "$m" >> ${fake}/log`);
  script(join(bin, 'systemctl'), `if [ "$1" = list-jobs ]; then cat ${fake}/jobs 2>/dev/null; exit 0; fi; echo "$*" >> ${fake}/systemctl; if [ "$1" = stop ]; then rm -f ${data}/postmaster.pid; fi`);
  script(join(pgbin, 'pg_ctl'), `echo "$*" >> ${fake}/pg_ctl; rm -f ${data}/postmaster.pid`);
  // psql: the peer when the connection string asks for replication, else the local server.
  script(
    join(pgbin, 'psql'),
    [
      'args="$*"',
      `case $args in *pg_promote*) touch ${fake}/promoted; printf 'primary %08X' $(( $(cat ${fake}/timeline) + 1 )) > ${fake}/local.out; echo t; exit 0 ;; esac`,
      `case $args in *"show synchronous_standby_names"*) cat ${fake}/sync 2>/dev/null; exit 0 ;; *"alter system"* | *pg_reload_conf*) echo "$args" >> ${fake}/altered; exit 0 ;; esac`,
      'case $args in *pg_last_wal_receive_lsn*) echo "0/3000060 received, 0/3000060 replayed"; exit 0 ;; esac',
      `if [[ $args == *replication=true* ]]; then w=peer; else w=local; fi`,
      `if [ -f ${fake}/$w.sleep ]; then sleep "$(cat ${fake}/$w.sleep)"; fi`,
      `cat ${fake}/$w.out 2>/dev/null; cat ${fake}/$w.err >&2 2>/dev/null; exit "$(cat ${fake}/$w.rc 2>/dev/null || echo 0)"`,
    ].join('\n'),
  );
  const tl = opts.timeline ?? 1;
  writeFileSync(join(fake, 'timeline'), String(tl));
  if (opts.local !== 'down') writeFileSync(join(data, 'postmaster.pid'), `${process.pid}\n${data}\n`);
  if (opts.local === 'primary') writeFileSync(join(fake, 'local.out'), `primary ${tl.toString(16).padStart(8, '0').toUpperCase()}\n`);
  if (opts.local === 'standby') writeFileSync(join(fake, 'local.out'), 'standby\n');
  if (opts.local === 'down') {
    writeFileSync(join(fake, 'local.rc'), '2');
    writeFileSync(join(fake, 'local.err'), 'psql: error: connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed: No such file or directory\n');
  }
  if (opts.local === 'hung') writeFileSync(join(fake, 'local.sleep'), '5');
  const ptl = opts.peerTimeline ?? tl;
  if (opts.peer === 'primary' || opts.peer === 'standby') {
    writeFileSync(join(fake, 'peer.out'), `7301234567890123456|${ptl}|0/3000060|\n${opts.peer === 'primary' ? 'off' : 'on'}\n`);
  }
  if (opts.peer === 'auth-fails') {
    writeFileSync(join(fake, 'peer.rc'), '2');
    writeFileSync(join(fake, 'peer.err'), 'psql: error: connection to server at "127.0.0.1", port 5432 failed: FATAL:  password authentication failed for user "replicator"\n');
  }
  writeFileSync(join(fake, 'ip'), `1: lo    inet 127.0.0.1/8 scope host lo\n2: eth0    inet 127.0.0.2/8 brd 127.255.255.255 scope global eth0\n${opts.vip ? `2: eth0    inet ${VIP}/24 scope global secondary eth0\n` : ''}`);
  writeFileSync(join(dir, 'sys/class/net/eth0/carrier'), opts.linkDown ? '0\n' : '1\n');
  writeFileSync(join(dir, 'sys/class/net/eth0/operstate'), opts.linkDown ? 'down\n' : 'up\n');
  const env = [
    `HA_ADDRESS=127.0.0.2`,
    `HA_PEER=127.0.0.1`,
    `HA_VIP=${VIP}`,
    `HA_IFACE=eth0`,
    `HA_PORT=${opts.peer === 'down' ? closedPort : openPort}`,
    `HA_BINDIR=${pgbin}`,
    `HA_DATADIR=${data}`,
    `HA_SOCKDIR=/var/run/postgresql`,
    `HA_UNIT=postgresql@15-main`,
    `HA_PASSFILE=/nonexistent/.pgpass-ha-setup`,
    `HA_CA=/nonexistent/ca.crt`,
    `HA_PEER_TIMEOUT=1`,
    `HA_FENCE_WAIT=${opts.fenceWait ?? 1}`,
  ].join('\n');
  writeFileSync(join(dir, 'env'), `${env}\n`);
  const read = (p: string): string | null => (existsSync(p) ? readFileSync(p, 'utf8') : null);
  return {
    dir,
    fake,
    run(...args) {
      const t0 = Date.now();
      const r = spawnSync('bash', [SCRIPT, ...args], {
        encoding: 'utf8',
        timeout: 30_000,
        env: { HA_PATH_PREFIX: bin, HA_KEEPALIVED_ENV: join(dir, 'env'), HA_RUN_DIR: join(dir, 'run'), HA_LIB_DIR: join(dir, 'lib'), HA_SYSFS: join(dir, 'sys'), HA_SYSTEMD_DIR: join(dir, 'sys'), PATH: process.env.PATH },
      });
      return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - t0 };
    },
    log: () => read(join(fake, 'log')) ?? '',
    calls: (name) => (read(join(fake, name)) ?? '').split('\n').filter(Boolean),
    promoted: () => existsSync(join(fake, 'promoted')),
    file: (rel) => read(join(dir, rel)),
  };
}

const cleanup = (n: Node) => rmSync(n.dir, { recursive: true, force: true });

// ---------------------------------------------------------------------------------------------
// check (chk_pg_health, weight 0) and the generation file (track_file pg_generation, weight 2)

test('check: a writable primary passes, records its timeline as the generation (its priority bonus)', () => {
  const n = node({ local: 'primary', timeline: 3, peer: 'standby', vip: true });
  const r = n.run('check');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(n.file('lib/pg-generation')?.trim(), '3');
  assert.match(n.log(), /check: ok: writable primary on timeline 3/);
  assert.deepEqual(n.calls('systemctl'), []);
  cleanup(n);
});

test('check: a standby that does not hold the VIP passes (it must be able to take over when the primary dies)', () => {
  const n = node({ local: 'standby', peer: 'down' });
  const r = n.run('check');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(n.file('lib/pg-generation')?.trim(), '0');
  assert.match(n.log(), /healthy standby, can take over/);
  cleanup(n);
});

test('check: a standby holding the VIP fails (at the second check) unless a promotion is under way', () => {
  const n = node({ local: 'standby', peer: 'primary', vip: true });
  assert.equal(n.run('check').code, 0, 'the first check may come before notify master marks the promotion');
  assert.equal(n.run('check').code, 1);
  assert.match(n.log(), /tolerated once[\s\S]*FAIL: holds the VIP but is a read-only standby/);
  mkdirSync(join(n.dir, 'run'), { recursive: true });
  writeFileSync(join(n.dir, 'run/promote'), `promoting ${Math.floor(Date.now() / 1000)}\n`);
  assert.equal(n.run('check').code, 0);
  assert.match(n.log(), /holds the VIP, promotion under way/);
  cleanup(n);
});

test('check: PostgreSQL down fails at once; no answer is tolerated once, not twice', () => {
  const down = node({ local: 'down', peer: 'standby' });
  assert.equal(down.run('check').code, 1);
  assert.match(down.log(), /FAIL: PostgreSQL is not running/);
  cleanup(down);
  const hung = node({ local: 'hung', peer: 'standby' });
  const first = hung.run('check');
  assert.equal(first.code, 0);
  assert.ok(first.ms >= 1900, `the local query is cut at 2 s (${first.ms} ms)`);
  assert.equal(hung.run('check').code, 1);
  assert.match(hung.log(), /did not answer once .*tolerated[\s\S]*FAIL: PostgreSQL did not answer twice in a row/);
  cleanup(hung);
});

test('check: PostgreSQL down while systemd restarts it (a runbook applying a setting) is no failure; stopped is', () => {
  const n = node({ local: 'down', peer: 'standby' });
  writeFileSync(join(n.fake, 'jobs'), '812 postgresql@15-main.service restart running\n');
  assert.equal(n.run('check').code, 0);
  assert.match(n.log(), /being restarted by systemd: tolerated/);
  writeFileSync(join(n.fake, 'jobs'), '813 postgresql@15-main.service stop running\n');
  assert.equal(n.run('check').code, 1);
  cleanup(n);
});

test('check: a primary whose peer is a primary on a newer timeline is stale: fenced and failing', () => {
  const n = node({ local: 'primary', timeline: 1, peer: 'primary', peerTimeline: 2, vip: true });
  const r = n.run('check');
  assert.equal(r.code, 1);
  assert.deepEqual(n.calls('systemctl'), ['stop postgresql@15-main']);
  assert.match(n.file('lib/pg-fenced') ?? '', /stale primary: 127\.0\.0\.1 is the primary on timeline 2, this node is on timeline 1/);
  assert.equal(n.file('lib/pg-generation')?.trim(), '0');
  assert.match(n.log(), /FENCING: stopping PostgreSQL/);
  cleanup(n);
});

test('check: a fenced node whose PostgreSQL still runs as a primary fails and is stopped, without raising its generation', () => {
  const n = node({ local: 'primary', timeline: 1, peer: 'down' });
  mkdirSync(join(n.dir, 'lib'), { recursive: true });
  writeFileSync(join(n.dir, 'lib/pg-fenced'), '2026-11-22T01:16:00Z FAULT with the VIP interface down\n');
  assert.equal(n.run('check').code, 1);
  assert.equal(n.file('lib/pg-generation')?.trim(), '0');
  assert.deepEqual(n.calls('systemctl'), ['stop --no-block postgresql@15-main']);
  cleanup(n);
});

test('check: of two primaries the newer one stays healthy', () => {
  const n = node({ local: 'primary', timeline: 2, peer: 'primary', peerTimeline: 1, vip: true });
  assert.equal(n.run('check').code, 0);
  assert.deepEqual(n.calls('systemctl'), []);
  assert.match(n.log(), /peer 127\.0\.0\.1 also a primary on timeline 1: the stale one/);
  cleanup(n);
});

// ---------------------------------------------------------------------------------------------
// notify

test('notify master: a standby whose peer is down is promoted, and its generation rises at once', () => {
  const n = node({ local: 'standby', timeline: 1, peer: 'down', vip: true });
  const r = n.run('notify', 'master');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(n.promoted(), true);
  assert.equal(n.file('lib/pg-generation')?.trim(), '2');
  assert.match(n.log(), /PROMOTING: the local standby \(WAL 0\/3000060 received, 0\/3000060 replayed\)[\s\S]*PROMOTED in \d+ ms: this node is the writable primary on timeline 2/);
  cleanup(n);
});

test('notify master with synchronous replication: the promoted standby stops waiting for the standby that is gone', () => {
  const n = node({ local: 'standby', timeline: 1, peer: 'down', vip: true });
  writeFileSync(join(n.fake, 'sync'), '*\n');
  n.run('notify', 'master');
  assert.equal(n.promoted(), true);
  assert.match(readFileSync(join(n.fake, 'altered'), 'utf8'), /alter system set synchronous_standby_names = ''[\s\S]*select pg_reload_conf\(\)/);
  assert.match(n.log(), /sync replication: no standby is left, so commits no longer wait for one \(synchronous_standby_names was '\*'; ha-setup rejoin db restores it\)/);
  const a = node({ local: 'standby', timeline: 1, peer: 'down', vip: true });
  a.run('notify', 'master');
  assert.equal(existsSync(join(a.fake, 'altered')), false, 'async: nothing to change');
  cleanup(n);
  cleanup(a);
});

test('notify master: never promotes while the peer is a reachable writable primary (waits, then declines)', () => {
  const n = node({ local: 'standby', peer: 'primary', vip: true, fenceWait: 0.6 });
  const r = n.run('notify', 'master');
  assert.equal(r.code, 0);
  assert.equal(n.promoted(), false);
  assert.ok(r.ms >= 600, `waited for the old primary to stop (${r.ms} ms)`);
  assert.match(n.log(), /waiting up to 0\.6 s[\s\S]*NOT PROMOTING: 127\.0\.0\.1 is still a reachable writable primary/);
  assert.match(n.file('run/promote') ?? '', /^declined/);
  // ...and the health check then hands the VIP back at once.
  assert.equal(n.run('check').code, 1);
  cleanup(n);
});

test('notify master: a peer that cannot be checked (password refused) counts as a possible primary', () => {
  const n = node({ local: 'standby', peer: 'auth-fails', vip: true, fenceWait: 0.3 });
  n.run('notify', 'master');
  assert.equal(n.promoted(), false);
  assert.match(n.log(), /could not be checked .*password authentication failed/);
  cleanup(n);
});

test('notify master: promotes once the old primary stops during the wait', () => {
  const n = node({ local: 'standby', peer: 'primary', vip: true, fenceWait: 5 });
  // The old primary goes down 0.5 s into the wait.
  spawn('bash', ['-c', `sleep 0.5; echo 2 > ${n.fake}/peer.rc; : > ${n.fake}/peer.out; echo 'FATAL:  the database system is shutting down' > ${n.fake}/peer.err`], { detached: true, stdio: 'ignore' }).unref();
  const r = n.run('notify', 'master');
  assert.equal(n.promoted(), true, n.log());
  assert.ok(r.ms >= 400 && r.ms < 4000, `${r.ms} ms`);
  cleanup(n);
});

test('notify backup: a primary is fenced only when the peer is a primary on the same or a newer timeline', () => {
  const stale = node({ local: 'primary', timeline: 1, peer: 'primary', peerTimeline: 2 });
  stale.run('notify', 'backup');
  assert.deepEqual(stale.calls('systemctl'), ['stop postgresql@15-main']);
  assert.ok(stale.file('lib/pg-fenced'));
  cleanup(stale);
  // keepalived always starts in BACKUP: the healthy primary must survive that.
  const boot = node({ local: 'primary', timeline: 1, peer: 'standby' });
  boot.run('notify', 'backup');
  assert.deepEqual(boot.calls('systemctl'), []);
  assert.match(boot.log(), /BACKUP: PostgreSQL stays the primary here/);
  cleanup(boot);
  const newer = node({ local: 'primary', timeline: 3, peer: 'primary', peerTimeline: 2 });
  newer.run('notify', 'backup');
  assert.deepEqual(newer.calls('systemctl'), []);
  assert.match(newer.log(), /this node is the newer primary \(timeline 3 > 2\)/);
  cleanup(newer);
});

test('notify fault: a primary is fenced when the VIP interface lost its link, kept otherwise', () => {
  const cut = node({ local: 'primary', peer: 'down', linkDown: true });
  cut.run('notify', 'fault');
  assert.deepEqual(cut.calls('systemctl'), ['stop postgresql@15-main'], cut.log());
  assert.match(cut.file('lib/pg-fenced') ?? '', /FAULT with the VIP's interface down/);
  cleanup(cut);
  const up = node({ local: 'primary', peer: 'standby' });
  up.run('notify', 'fault');
  assert.deepEqual(up.calls('systemctl'), []);
  cleanup(up);
});

test('notify fault: PostgreSQL down while the peer is a standby that takes over: marked fenced (no comeback as a primary)', () => {
  const n = node({ local: 'down', peer: 'standby' });
  n.run('notify', 'fault');
  assert.match(n.file('lib/pg-fenced') ?? '', /FAULT with PostgreSQL down while 127\.0\.0\.1 is a standby that takes over/);
  assert.equal(n.run('may-start').code, 1);
  cleanup(n);
  const alone = node({ local: 'down', peer: 'down' });
  alone.run('notify', 'fault');
  assert.equal(alone.file('lib/pg-fenced'), null, 'nobody else can take over: it may come back as it was');
  assert.match(alone.log(), /not fenced: nobody else can take over/);
  cleanup(alone);
});

test('notify master-rx-lower-pri (two MASTERs): the stale one fences itself at once, the newer one stays', () => {
  const stale = node({ local: 'primary', timeline: 1, peer: 'primary', peerTimeline: 2, vip: true });
  stale.run('notify', 'master-rx-lower-pri');
  assert.deepEqual(stale.calls('systemctl'), ['stop postgresql@15-main']);
  assert.match(stale.file('lib/pg-fenced') ?? '', /two MASTERs: 127\.0\.0\.1 is the primary on a newer timeline \(2 > 1\)/);
  cleanup(stale);
  const newer = node({ local: 'primary', timeline: 2, peer: 'primary', peerTimeline: 1, vip: true });
  newer.run('notify', 'master-rx-lower-pri');
  assert.deepEqual(newer.calls('systemctl'), []);
  assert.match(newer.log(), /two MASTERs: this node is the newer primary \(timeline 2, 127\.0\.0\.1: 1\): kept/);
  cleanup(newer);
});

test('notify stop: the primary is fenced when the peer is a standby that takes over; kept when nobody could', () => {
  const a = node({ local: 'primary', peer: 'standby' });
  a.run('notify', 'stop');
  assert.deepEqual(a.calls('systemctl'), ['stop postgresql@15-main']);
  cleanup(a);
  const b = node({ local: 'primary', peer: 'down' });
  b.run('notify', 'stop');
  assert.deepEqual(b.calls('systemctl'), []);
  assert.match(b.log(), /STOP: PostgreSQL stays the primary/);
  cleanup(b);
});

test('notify stop during ha-setup uninstall (its mark, fresh): nothing fenced, the log says why; a mark older than 120 s is ignored', () => {
  const a = node({ local: 'primary', peer: 'standby' });
  mkdirSync(join(a.dir, 'run'), { recursive: true });
  writeFileSync(join(a.dir, 'run/uninstall'), `${Math.floor(Date.now() / 1000)}\n`);
  assert.equal(a.run('notify', 'stop').code, 0);
  assert.deepEqual(a.calls('systemctl'), []);
  assert.equal(a.file('lib/pg-fenced'), null);
  assert.match(a.log(), /STOP: ha-setup uninstall stops keepalived on both nodes .*PostgreSQL here \(primary 1\) is left to uninstall's PostgreSQL step/);
  cleanup(a);
  for (const mark of [`${Math.floor(Date.now() / 1000) - 300}`, 'garbage']) {
    const b = node({ local: 'primary', peer: 'standby' });
    mkdirSync(join(b.dir, 'run'), { recursive: true });
    writeFileSync(join(b.dir, 'run/uninstall'), `${mark}\n`);
    b.run('notify', 'stop');
    assert.deepEqual(b.calls('systemctl'), ['stop postgresql@15-main'], `mark ${mark}`);
    cleanup(b);
  }
});

// ---------------------------------------------------------------------------------------------
// may-start (ExecStartPre of the PostgreSQL unit)

test('may-start: a fenced node starts only as a standby; the fence lifts once it runs as one', () => {
  const n = node({ local: 'primary', timeline: 1, peer: 'primary', peerTimeline: 2 });
  n.run('check'); // fences it
  const refused = n.run('may-start');
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /fenced by ha-setup .*may start here only as a standby; run ha-setup rejoin db/);
  writeFileSync(join(n.dir, 'data/standby.signal'), '');
  assert.equal(n.run('may-start').code, 0);
  // Running as a standby again: the check lifts the fence.
  writeFileSync(join(n.dir, 'data/postmaster.pid'), `${process.pid}\n`);
  writeFileSync(join(n.fake, 'local.out'), 'standby\n');
  assert.equal(n.run('check').code, 0);
  assert.equal(n.file('lib/pg-fenced'), null);
  assert.match(n.log(), /fence lifted/);
  const clean = node({ local: 'down', peer: 'standby' });
  assert.equal(clean.run('may-start').code, 0, 'a node that was never fenced starts freely');
  cleanup(n);
  cleanup(clean);
});

test('status: one KEY=value line per fact', () => {
  const n = node({ local: 'primary', timeline: 2, peer: 'standby', vip: true });
  n.run('check');
  assert.equal(n.run('status').stdout, 'POSTGRES=primary\nTIMELINE=2\nVIP=yes\nFENCED=no\nGENERATION=2\n');
  cleanup(n);
});

test('pg-ha has no role-primary command any more: the bonus is the watched generation file, not a polled script', () => {
  const n = node({ local: 'standby', peer: 'down' });
  const r = n.run('role-primary');
  assert.equal(r.code, 2);
  assert.match(r.stderr, /usage: pg-ha check \| notify/);
  cleanup(n);
});
