/**
 * The drill's figures from observed timelines (source/drill/measure.ts), its parsers of what the
 * servers print (source/drill/remote.ts) and its report (source/drill/report.ts). The timelines
 * are shaped like the lab's: acknowledged writes every ~40 ms, a fault, failed writes, writes
 * on the promoted standby's timeline.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { measure, missingRows, normaliseError, parseProbeLine, type ProbeEvent, type VipEvent } from '../../source/drill/measure.js';
import { parseJournal, parseNodeState, parseRows } from '../../source/drill/remote.js';
import { formatReport } from '../../source/drill/report.js';
import type { DrillReport } from '../../source/drill/run.js';

/** n writes from t, every `step` ms: ACK on timeline tl, or ERR. */
function writes(from: number, n: number, startSeq: number, what: number | string, step = 40): ProbeEvent[] {
  return Array.from({ length: n }, (_, i) => {
    const seq = startSeq + i;
    const t = from + i * step;
    return typeof what === 'number' ? { t, seq, ok: true, timeline: what } : { t, seq, ok: false, error: what };
  });
}

const REFUSED = 'psql: error: connection to server at "198.18.0.100", port 5432 failed: Connection refused';

test('parseProbeLine: ACK with the timeline in hex, ERR with the message, anything else ignored', () => {
  assert.deepEqual(parseProbeLine('ACK 17 0000000A', 1234), { t: 1234, seq: 17, ok: true, timeline: 10 });
  assert.deepEqual(parseProbeLine(`ERR 18 ${REFUSED}`, 1300), { t: 1300, seq: 18, ok: false, error: REFUSED });
  assert.equal(parseProbeLine('READY', 1), null);
  assert.equal(parseProbeLine('DONE 200', 1), null);
});

test('a stopped primary: VIP moved, RTO to the first write on the new timeline, outage, no old-primary writes', () => {
  const probe = [...writes(0, 50, 1, 1), ...writes(2000, 30, 51, REFUSED), ...writes(3200, 40, 81, 2)];
  const vip: VipEvent[] = [
    { t: 10, alias: 'db_primary', holds: true },
    { t: 12, alias: 'db_standby', holds: false },
    { t: 2150, alias: 'db_primary', holds: false },
    { t: 2700, alias: 'db_standby', holds: true },
  ];
  const m = measure(probe, vip, 1990, 'db_standby');
  assert.equal(m.baselineTimeline, 1);
  assert.equal(m.vipMovedMs, 710);
  assert.equal(m.rtoMs, 1210);
  assert.equal(m.outageMs, 3200 - 1960, 'from the last acknowledged write before the first failure');
  assert.equal(m.failover, true);
  assert.equal(m.newTimeline, 2);
  assert.deepEqual([m.attempted, m.acknowledged, m.failed, m.failedAfterRecovery, m.ackedByOldPrimaryAfterFailover], [120, 90, 30, 0, 0]);
  assert.deepEqual(m.errors, [{ error: 'Connection refused', count: 30 }]);
});

test('writes that the old primary still acknowledges after the failover are counted (two primaries)', () => {
  const probe = [...writes(0, 10, 1, 1), ...writes(1000, 5, 11, 2), ...writes(1200, 3, 16, 1), ...writes(1320, 5, 19, 2)];
  const m = measure(probe, [], 900, 'db_standby');
  assert.equal(m.rtoMs, 100);
  assert.equal(m.ackedByOldPrimaryAfterFailover, 3);
  assert.equal(m.vipMovedMs, null);
});

test('no failover: RTO is the first acknowledged write after the first failure; no failure: RTO 0', () => {
  const bounced = measure([...writes(0, 10, 1, 1), ...writes(500, 5, 11, 'timeout'), ...writes(800, 5, 16, 1)], [], 450, 'db_standby');
  assert.equal(bounced.failover, false);
  assert.equal(bounced.rtoMs, 350);
  const untouched = measure(writes(0, 20, 1, 1), [], 300, 'db_standby');
  assert.equal(untouched.rtoMs, 0);
  assert.equal(untouched.outageMs, 0);
  const dead = measure([...writes(0, 10, 1, 1), ...writes(500, 50, 11, 'timeout')], [], 450, 'db_standby');
  assert.equal(dead.rtoMs, null, 'writes never came back');
});

test('RPO: acknowledged rows missing afterwards; failed attempts are not counted', () => {
  const probe = [...writes(0, 5, 1, 1), ...writes(200, 2, 6, REFUSED), ...writes(300, 3, 8, 2)];
  assert.deepEqual(missingRows(probe, [1, 2, 3, 8, 9, 10, 6]), [4, 5]);
  assert.deepEqual(missingRows(probe, [1, 2, 3, 4, 5, 8, 9, 10]), []);
});

test('errors are grouped without their varying parts', () => {
  assert.equal(normaliseError(REFUSED), 'Connection refused');
  assert.equal(normaliseError(''), 'failed');
});

test('parsers: node state, rows, journal lines', () => {
  const primary = parseNodeState('FAMILY=debian\nUNIT=postgresql@15-main\nPG=primary 00000002\nVIP=yes\nFENCED=no\nKEEPALIVED=active\nIFACE=host0\n');
  assert.deepEqual(primary, { postgres: 'primary', timeline: 2, receiver: null, holdsVip: true, fenced: false, keepalived: 'active', unit: 'postgresql@15-main', iface: 'host0', family: 'debian' });
  const standby = parseNodeState('PG=standby streaming\nVIP=no\nFENCED=no\nKEEPALIVED=active\n');
  assert.equal(standby.postgres, 'standby');
  assert.equal(standby.receiver, 'streaming');
  assert.equal(parseNodeState('PG=down\nVIP=no\nFENCED=yes\nKEEPALIVED=active\n').fenced, true);
  assert.deepEqual(parseRows('1,2,3,5\n'), [1, 2, 3, 5]);
  assert.deepEqual(parseRows('\n'), []);
  assert.deepEqual(parseJournal('2026-11-22T01:02:03.456789+0000 db-standby ha-setup-keepalived[812]: PROMOTING: the local standby\n'), [
    { time: '01:02:03.456', message: 'PROMOTING: the local standby' },
  ]);
});

test('the plain report: the figures, the servers afterwards, the checks and the decisions', () => {
  const probe = [...writes(0, 50, 1, 1), ...writes(2000, 30, 51, REFUSED), ...writes(3200, 40, 81, 2)];
  const measured = measure(probe, [{ t: 2700, alias: 'db_standby', holds: true }], 1990, 'db_standby');
  const report: DrillReport = {
    pair: 'db',
    fault: 'stop-postgres',
    mode: 'lab',
    vip: '198.18.0.100',
    probeFrom: { alias: 'app1', address: '198.18.0.13' },
    target: { alias: 'db_primary', address: '198.18.0.11' },
    survivor: { alias: 'db_standby', address: '198.18.0.12' },
    replication: 'async',
    startedAt: '2026-11-22T01:02:00.000Z',
    injected: 'db_primary: stopped postgresql@15-main',
    undone: null,
    measured,
    rpo: { checkedOn: 'db_standby', acknowledged: 90, missing: 0, missingSeqs: [] },
    after: {
      hosts: [
        { alias: 'db_primary', address: '198.18.0.11', postgres: 'down', timeline: null, receiver: null, holdsVip: false, fenced: false, keepalived: 'active', unit: 'postgresql@15-main', iface: 'host0', family: 'debian' },
        { alias: 'db_standby', address: '198.18.0.12', postgres: 'primary', timeline: 2, receiver: null, holdsVip: true, fenced: false, keepalived: 'active', unit: 'postgresql@15-main', iface: 'host0', family: 'debian' },
      ],
      vipHolders: ['db_standby'],
      primaries: ['db_standby'],
    },
    checks: [{ name: 'the VIP is held by exactly one server', ok: true, detail: 'db_standby' }],
    decisions: [{ host: 'db_standby', time: '01:02:02.700', message: 'PROMOTED in 310 ms: this node is the writable primary on timeline 2' }],
    ok: true,
  };
  const text = formatReport(report);
  assert.match(text, /^Drill db \(lab\): stop-postgres on db_primary \(198\.18\.0\.11\); probe on app1 through the VIP 198\.18\.0\.100$/m);
  assert.match(text, /VIP moved to db_standby after\s+0\.71 s/);
  assert.match(text, /writes succeed again \(RTO\) after\s+1\.21 s\s+\(no write acknowledged for 1\.24 s\)/);
  assert.match(text, /acknowledged rows lost \(RPO\)\s+0 of 90 \(async replication\)/);
  assert.match(text, /VIP held by\s+db_standby \(198\.18\.0\.12\)/);
  assert.match(text, /primary\s+db_standby \(timeline 2\)/);
  assert.match(text, /db_standby\s+198\.18\.0\.12\s+yes\s+primary \(timeline 2\)\s+active/);
  assert.match(text, /ok {4}the VIP is held by exactly one server/);
  assert.match(text, /01:02:02\.700  db_standby  PROMOTED in 310 ms/);
  assert.match(text, /db_primary is out of the pair; bring it back as a standby with: ha-setup rejoin db/);
  assert.match(text, /drill passed\n$/);
});
