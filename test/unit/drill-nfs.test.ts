/**
 * The NFS drill's figures (source/drill/nfs-measure.ts) from probe and watcher output as the jump
 * host receives it, its report (source/drill/nfs-report.ts), its fault drivers
 * (source/drill/nfs-fault.ts), the table it needs, and the CLI's argument errors.
 *
 * The transcripts are lines as they arrived at the jump host ("<ms> <host> <line>"), shaped like
 * a lab run: a write about every 45 ms, replication passes every 15 s reaching the standby, the
 * NFS server stopped on the holder, failed writes, the VIP moving, writes on the survivor.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ProbeEvent, VipEvent } from '../../source/drill/measure.js';
import {
  measureNfs,
  normaliseNfsError,
  nfsRpo,
  parseNfsProbeLine,
  summariseRpo,
  parseNfsWatchLine,
  replicationObserved,
  type FilesEvent,
} from '../../source/drill/nfs-measure.js';
import { nfsFaultRefusal, nfsLabFaultDriver, nfsSshFaultDriver, nfsSshFaultScripts } from '../../source/drill/nfs-fault.js';
import { formatNfsReport } from '../../source/drill/nfs-report.js';
import { nfsDrillHosts, type NfsDrillReport } from '../../source/drill/nfs-run.js';
import { parseNfsNodeState } from '../../source/drill/nfs-remote.js';
import type { Transport } from '../../source/transport/types.js';
import { main } from '../../source/cli.js';

const REFUSED = 'Failed to mount nfs share : mount_cb: RPC error: Mount failed with error ECONNREFUSED(111) Connection refused(111)';

/** Parses a transcript into the drill's events, as runNfsDrill does line by line. */
function parse(transcript: string): { probe: ProbeEvent[]; vip: VipEvent[]; files: FilesEvent[] } {
  const probe: ProbeEvent[] = [];
  const vip: VipEvent[] = [];
  const files: FilesEvent[] = [];
  for (const raw of transcript.trim().split('\n')) {
    const m = /^(\d+) (\S+) (.*)$/.exec(raw.trim());
    if (!m) throw new Error(`bad transcript line ${raw}`);
    const t = Number(m[1]);
    if (m[2] === 'app1') {
      const e = parseNfsProbeLine(m[3]!, t);
      if (e) probe.push(e);
    } else {
      const e = parseNfsWatchLine(m[3]!, t, m[2]!);
      if (e && 'vip' in e) vip.push(e.vip);
      else if (e) files.push(e.files);
    }
  }
  return { probe, vip, files };
}

/** `n` writes from `t`, every `step` ms, numbered from `seq`: ACK, or ERR with `error`. */
function writes(t: number, n: number, seq: number, error?: string, step = 45): string[] {
  return Array.from({ length: n }, (_, i) => `${t + i * step} app1 ${error ? `ERR ${seq + i} ${error}` : `ACK ${seq + i}`}`);
}

/**
 * stop-nfs at 40 000 ms: 888 writes acknowledged before (1..888, 45 ms apart from 100 ms);
 * passes reached the standby at 15 600 (up to #344) and 30 700 (up to #679); the holder's NFS
 * server stops, writes are refused for ~2.6 s, the VIP moves at 42 900, writes resume at 43 000.
 */
function stopNfsTranscript(): string {
  return [
    '20 nfs_primary VIP 1',
    '25 nfs_primary FILES 0 0',
    '22 nfs_standby VIP 0',
    '30 nfs_standby FILES 0 0',
    ...writes(100, 888, 1),
    '15600 nfs_standby FILES 344 344',
    '30700 nfs_standby FILES 679 679',
    `40110 app1 ERR 889 ${REFUSED}`,
    ...writes(40300, 50, 890, REFUSED, 52),
    '42850 nfs_primary VIP 0',
    '42900 nfs_standby VIP 1',
    ...writes(43000, 200, 940),
  ]
    .sort((a, b) => Number(a.split(' ')[0]) - Number(b.split(' ')[0]))
    .join('\n');
}

test('parsing: ACK <n>, ERR <n> <why>, VIP 0|1, FILES <highest> <count>; other lines ignored', () => {
  assert.deepEqual(parseNfsProbeLine('ACK 17', 1234), { t: 1234, seq: 17, ok: true });
  assert.deepEqual(parseNfsProbeLine(`ERR 18 ${REFUSED}`, 1300), { t: 1300, seq: 18, ok: false, error: REFUSED });
  assert.deepEqual(parseNfsProbeLine('ERR 19', 1), { t: 1, seq: 19, ok: false, error: 'failed' });
  for (const l of ['READY', 'DONE 200', 'TOOL nfs-cp libnfs', 'ACK 1 00000001']) assert.equal(parseNfsProbeLine(l, 1), null, l);
  assert.deepEqual(parseNfsWatchLine('VIP 1', 7, 'nfs_primary'), { vip: { t: 7, alias: 'nfs_primary', holds: true } });
  assert.deepEqual(parseNfsWatchLine('FILES 344 343', 8, 'nfs_standby'), { files: { t: 8, alias: 'nfs_standby', max: 344, count: 343 } });
  assert.equal(parseNfsWatchLine('FILES x', 8, 'nfs_standby'), null);
  assert.equal(normaliseNfsError('Failed to creat file .ha-setup-drill.ab12cd.000123: NFS4ERR_GRACE'), 'Failed to creat file <file>: NFS4ERR_GRACE');
});

test('stop-nfs: VIP moved, RTO to the first acknowledged write after the failures, outage, errors grouped', () => {
  const { probe, vip } = parse(stopNfsTranscript());
  const m = measureNfs(probe, vip, 40_000, 'nfs_primary', 'nfs_standby');
  assert.equal(m.vipMovedMs, 2900);
  assert.equal(m.rtoMs, 3000);
  assert.equal(m.outageMs, 43_000 - (100 + 887 * 45), 'from the last acknowledged write before the first failure');
  assert.equal(m.failoverAt, 43_000);
  assert.equal(m.vipBackToOldMs, null);
  assert.deepEqual([m.attempted, m.acknowledged, m.failed, m.failedAfterRecovery], [1139, 1088, 51, 0]);
  assert.deepEqual(m.errors, [{ error: REFUSED, count: 51 }]);
});

test('replication lag: passes seen on the standby, the largest lag at a pass, the lag and the unreplicated files at the fault', () => {
  const { probe, files } = parse(stopNfsTranscript());
  const standby = files.filter((f) => f.alias === 'nfs_standby');
  const r = replicationObserved(probe, standby, 40_000);
  assert.equal(r.passes, 2);
  // Pass 1 at 15 600 brought #1 (acknowledged at 100): 15 500 ms old; pass 2 at 30 700 brought
  // #345.. (acknowledged at 100 + 344 * 45 = 15 580): 15 120 ms old.
  assert.equal(r.maxLagMs, 15_500);
  assert.equal(r.standbyMaxAtFault, 679);
  // #888 was acknowledged at 40 015, after the fault (by the old holder, before the stop took effect).
  assert.equal(r.unreplicatedAtFault, 887 - 679);
  assert.equal(r.lagAtFaultMs, 40_000 - (100 + 679 * 45), 'the oldest write the standby lacked at the fault');
  // Passes after the fault (the survivor now takes writes itself) do not count.
  const later = replicationObserved(probe, [...standby, { t: 45_000, alias: 'nfs_standby', max: 1100, count: 900 }], 40_000);
  assert.equal(later.passes, 2);
  assert.deepEqual(replicationObserved(probe, [], 40_000).passes, 0);
  // A pass still under way at the next listing (0.5 s later) is one pass, not two.
  const split = [
    { t: 15_600, alias: 'nfs_standby', max: 200, count: 200 },
    { t: 16_100, alias: 'nfs_standby', max: 344, count: 344 },
    { t: 30_700, alias: 'nfs_standby', max: 679, count: 679 },
  ];
  const s2 = replicationObserved(probe, split, 40_000);
  assert.equal(s2.passes, 2);
  assert.equal(s2.maxLagMs, 15_500, 'the lag is read when the pass starts arriving');
  assert.equal(replicationObserved(probe, split.slice(0, 2), 40_000).passes, 1);
  assert.equal(replicationObserved(probe, [], 40_000).lagAtFaultMs, 40_000 - 100, 'nothing replicated: the first write is at risk');
});

test('RPO: missing files before the failover point are the replication window; after it, or older than the window, they are not expected', () => {
  const { probe, vip } = parse(stopNfsTranscript());
  const m = measureNfs(probe, vip, 40_000, 'nfs_primary', 'nfs_standby');
  // What nfs_standby holds afterwards: everything up to the last pass, and all writes it took itself.
  const present = [...Array.from({ length: 679 }, (_, i) => i + 1), ...Array.from({ length: 200 }, (_, i) => 940 + i)];
  const rpo = nfsRpo(probe, present, 40_000, m.failoverAt, 20_000);
  assert.equal(rpo.acknowledged, 1088);
  assert.equal(rpo.missing.length, 888 - 679);
  assert.deepEqual(rpo.missingBeforeFailover, rpo.missing);
  assert.deepEqual(rpo.missingAfterFailover, []);
  assert.deepEqual(rpo.missingBeyondWindow, []);
  // The old holder came back with the VIP and its stale copy: the survivor's writes are missing there.
  const stale = nfsRpo(probe, Array.from({ length: 888 }, (_, i) => i + 1), 40_000, m.failoverAt, 20_000);
  assert.deepEqual(stale.missingAfterFailover, Array.from({ length: 200 }, (_, i) => 940 + i));
  // A replication that lost an old file.
  const hole = nfsRpo(probe, present.filter((s) => s !== 10), 40_000, m.failoverAt, 20_000);
  assert.deepEqual(hole.missingBeyondWindow, [10]);
});

test('no write failed (the VIP moved between two writes): RTO 0, the failover point is the VIP move; the VIP going back is seen', () => {
  const { probe, vip } = parse(
    [...writes(0, 100, 1), '4480 nfs_primary VIP 0', '4490 nfs_standby VIP 1', ...writes(4500, 100, 101), '9000 nfs_standby VIP 0', '9010 nfs_primary VIP 1'].join('\n'),
  );
  const m = measureNfs(probe, vip, 4400, 'nfs_primary', 'nfs_standby');
  assert.equal(m.rtoMs, 0);
  assert.equal(m.outageMs, 0);
  assert.equal(m.vipMovedMs, 90);
  assert.equal(m.failoverAt, 4490);
  assert.equal(m.vipBackToOldMs, 9010 - 4400);
  const rpo = nfsRpo(probe, Array.from({ length: 200 }, (_, i) => i + 1).filter((s) => s !== 99 && s !== 150), 4400, m.failoverAt, 20_000);
  assert.deepEqual([rpo.missingBeforeFailover, rpo.missingAfterFailover], [[99], [150]]);
  // Writes that never came back: no RTO, no failover point; every missing file counts as unexpected.
  const dead = measureNfs(parse([...writes(0, 10, 1), ...writes(500, 20, 11, 'no answer within 1 s')].join('\n')).probe, [], 450, 'nfs_primary', 'nfs_standby');
  assert.deepEqual([dead.rtoMs, dead.failoverAt, dead.vipMovedMs], [null, null, null]);
});

/**
 * Captured in the lab (4 hosts, nfs-ganesha, replication every 15 s, probe with nfs-cp) with
 * runNfsDrill, every line as it reached the jump host: stop-nfs on nfs_primary (fault at 31 623
 * ms) and freeze on nfs_primary (fault at 19 251 ms, thawed at ~24.4 s). Only the acknowledged
 * writes that the figures depend on are kept (the first ones, the one after each replication
 * pass, those around the fault and the last ones); every other line is as captured.
 */
const CAPTURED_STOP_NFS = `
147 nfs_primary VIP 1
148 nfs_standby VIP 0
148 nfs_standby FILES 0 0
272 app1 TOOL nfs-cp libnfs, NFSv4 (/srv/nfs is mounted from /dev/vda (ext4), not from 198.18.0.101:/srv/nfs)
278 app1 READY
286 app1 ACK 1
291 app1 ACK 2
298 app1 ACK 3
15048 app1 ACK 2441
15268 nfs_standby FILES 2440 2440
31042 app1 ACK 5119
31475 app1 ACK 5183
31481 app1 ACK 5184
31487 app1 ACK 5185
31492 app1 ACK 5186
31500 app1 ACK 5187
31505 app1 ACK 5188
31510 app1 ACK 5189
31515 app1 ACK 5190
31521 app1 ACK 5191
31527 app1 ACK 5192
31535 app1 ACK 5193
31540 app1 ACK 5194
31546 app1 ACK 5195
31554 app1 ACK 5196
31558 app1 ACK 5197
31559 nfs_standby FILES 5118 5118
31564 app1 ACK 5198
31570 app1 ACK 5199
31575 app1 ACK 5200
31581 app1 ACK 5201
31588 app1 ACK 5202
31593 app1 ACK 5203
31599 app1 ACK 5204
31605 app1 ACK 5205
31612 app1 ACK 5206
31617 app1 ACK 5207
31633 app1 ACK 5208
31634 app1 ACK 5209
31642 app1 ACK 5210
31648 app1 ACK 5211
31653 app1 ACK 5212
31660 app1 ACK 5213
31668 app1 ACK 5214
31673 app1 ACK 5215
31680 app1 ACK 5216
31689 app1 ACK 5217
31699 app1 ACK 5218
31711 app1 ACK 5219
31721 app1 ACK 5220
31730 app1 ACK 5221
31738 app1 ACK 5222
31747 app1 ACK 5223
31753 app1 ACK 5224
31763 app1 ERR 5225 Failed to creat file /.ha-setup-drill.b9e5bf268bec.005225: nfs_service failed
31821 app1 ERR 5226 Failed to mount nfs share : nfs_service failed
31880 app1 ERR 5227 Failed to mount nfs share : nfs_service failed
31938 app1 ERR 5228 Failed to mount nfs share : nfs_service failed
31996 app1 ERR 5229 Failed to mount nfs share : nfs_service failed
32054 app1 ERR 5230 Failed to mount nfs share : nfs_service failed
32111 app1 ERR 5231 Failed to mount nfs share : nfs_service failed
32169 app1 ERR 5232 Failed to mount nfs share : nfs_service failed
32228 app1 ERR 5233 Failed to mount nfs share : nfs_service failed
32286 app1 ERR 5234 Failed to mount nfs share : nfs_service failed
32344 app1 ERR 5235 Failed to mount nfs share : nfs_service failed
32402 app1 ERR 5236 Failed to mount nfs share : nfs_service failed
32460 app1 ERR 5237 Failed to mount nfs share : nfs_service failed
32518 app1 ERR 5238 Failed to mount nfs share : nfs_service failed
32576 app1 ERR 5239 Failed to mount nfs share : nfs_service failed
32636 app1 ERR 5240 Failed to mount nfs share : nfs_service failed
32693 app1 ERR 5241 Failed to mount nfs share : nfs_service failed
32753 app1 ERR 5242 Failed to mount nfs share : nfs_service failed
32811 app1 ERR 5243 Failed to mount nfs share : nfs_service failed
32870 app1 ERR 5244 Failed to mount nfs share : nfs_service failed
32931 app1 ERR 5245 Failed to mount nfs share : nfs_service failed
32989 app1 ERR 5246 Failed to mount nfs share : nfs_service failed
33047 app1 ERR 5247 Failed to mount nfs share : nfs_service failed
33106 app1 ERR 5248 Failed to mount nfs share : nfs_service failed
33165 app1 ERR 5249 Failed to mount nfs share : nfs_service failed
33223 app1 ERR 5250 Failed to mount nfs share : nfs_service failed
33284 app1 ERR 5251 Failed to mount nfs share : nfs_service failed
33341 app1 ERR 5252 Failed to mount nfs share : nfs_service failed
33399 app1 ERR 5253 Failed to mount nfs share : nfs_service failed
33458 app1 ERR 5254 Failed to mount nfs share : nfs_service failed
33516 app1 ERR 5255 Failed to mount nfs share : nfs_service failed
33574 app1 ERR 5256 Failed to mount nfs share : nfs_service failed
33632 app1 ERR 5257 Failed to mount nfs share : nfs_service failed
33691 app1 ERR 5258 Failed to mount nfs share : nfs_service failed
33749 app1 ERR 5259 Failed to mount nfs share : nfs_service failed
33807 app1 ERR 5260 Failed to mount nfs share : nfs_service failed
33865 app1 ERR 5261 Failed to mount nfs share : nfs_service failed
33923 app1 ERR 5262 Failed to mount nfs share : nfs_service failed
33984 app1 ERR 5263 Failed to mount nfs share : nfs_service failed
34043 app1 ERR 5264 Failed to mount nfs share : nfs_service failed
34101 app1 ERR 5265 Failed to mount nfs share : nfs_service failed
34159 app1 ERR 5266 Failed to mount nfs share : nfs_service failed
34218 app1 ERR 5267 Failed to mount nfs share : nfs_service failed
34276 app1 ERR 5268 Failed to mount nfs share : nfs_service failed
34335 app1 ERR 5269 Failed to mount nfs share : nfs_service failed
34393 app1 ERR 5270 Failed to mount nfs share : nfs_service failed
34454 app1 ERR 5271 Failed to mount nfs share : nfs_service failed
34513 app1 ERR 5272 Failed to mount nfs share : nfs_service failed
34573 app1 ERR 5273 Failed to mount nfs share : nfs_service failed
34632 app1 ERR 5274 Failed to mount nfs share : nfs_service failed
34690 app1 ERR 5275 Failed to mount nfs share : nfs_service failed
34749 app1 ERR 5276 Failed to mount nfs share : nfs_service failed
34807 app1 ERR 5277 Failed to mount nfs share : nfs_service failed
34865 app1 ERR 5278 Failed to mount nfs share : nfs_service failed
34924 app1 ERR 5279 Failed to mount nfs share : nfs_service failed
34938 nfs_primary VIP 0
35382 nfs_standby VIP 1
35985 app1 ERR 5280 no answer within 1 s
36046 app1 ACK 5281
36053 app1 ACK 5282
36059 app1 ACK 5283
36066 app1 ACK 5284
36072 app1 ACK 5285
36077 app1 ACK 5286
36083 app1 ACK 5287
36088 app1 ACK 5288
36097 app1 ACK 5289
36107 app1 ACK 5290
36112 app1 ACK 5291
36118 app1 ACK 5292
36124 app1 ACK 5293
36129 app1 ACK 5294
36135 app1 ACK 5295
36141 app1 ACK 5296
36147 app1 ACK 5297
36155 app1 ACK 5298
36162 app1 ACK 5299
36168 app1 ACK 5300
36173 app1 ACK 5301
36179 app1 ACK 5302
36185 app1 ACK 5303
36191 app1 ACK 5304
36196 app1 ACK 5305
36202 app1 ACK 5306
36209 app1 ACK 5307
36217 app1 ACK 5308
36222 app1 ACK 5309
36228 app1 ACK 5310
36233 app1 ACK 5311
36239 app1 ACK 5312
36244 app1 ACK 5313
36250 app1 ACK 5314
36256 app1 ACK 5315
36264 app1 ACK 5316
36271 app1 ACK 5317
36283 app1 ACK 5318
36289 app1 ACK 5319
36295 app1 ACK 5320
36300 app1 ACK 5321
36306 app1 ACK 5322
36312 app1 ACK 5323
36322 app1 ACK 5324
36328 app1 ACK 5325
36334 app1 ACK 5326
36339 app1 ACK 5327
36345 app1 ACK 5328
36351 app1 ACK 5329
36356 app1 ACK 5330
36362 app1 ACK 5331
36368 app1 ACK 5332
36378 app1 ACK 5333
36383 app1 ACK 5334
36389 app1 ACK 5335
36395 app1 ACK 5336
36400 app1 ACK 5337
36405 app1 ACK 5338
36410 app1 ACK 5339
36416 app1 ACK 5340
36421 app1 ACK 5341
36428 app1 ACK 5342
36434 nfs_standby FILES 5342 5180
36439 app1 ACK 5343
36445 app1 ACK 5344
46088 app1 ACK 6918
46094 app1 ACK 6919
46099 app1 ACK 6920
46108 app1 ACK 6921
46114 app1 ACK 6922
46114 app1 DONE 6922
`;
const CAPTURED_FREEZE = `
142 nfs_primary VIP 1
142 nfs_standby VIP 0
142 nfs_standby FILES 0 0
233 app1 TOOL nfs-cp libnfs, NFSv4 (/srv/nfs is mounted from /dev/vda (ext4), not from 198.18.0.101:/srv/nfs)
241 app1 READY
252 app1 ACK 1
258 app1 ACK 2
264 app1 ACK 3
3836 app1 ACK 560
3997 nfs_standby FILES 559 559
18985 app1 ACK 2932
19105 app1 ACK 2946
19114 app1 ACK 2947
19122 app1 ACK 2948
19135 app1 ACK 2949
19147 app1 ACK 2950
19153 app1 ACK 2951
19159 app1 ACK 2952
19166 app1 ACK 2953
19172 app1 ACK 2954
19179 app1 ACK 2955
19185 app1 ACK 2956
19191 app1 ACK 2957
19198 app1 ACK 2958
19200 nfs_standby FILES 2931 2931
19204 app1 ACK 2959
19210 app1 ACK 2960
19215 app1 ACK 2961
19221 app1 ACK 2962
19227 app1 ACK 2963
19234 app1 ACK 2964
19240 app1 ACK 2965
19246 app1 ACK 2966
20252 app1 ERR 2967 no answer within 1 s
21310 app1 ERR 2968 no answer within 1 s
22327 nfs_standby VIP 1
22367 app1 ERR 2969 no answer within 1 s
22428 app1 ACK 2970
22436 app1 ACK 2971
22438 nfs_standby FILES 2971 2933
22442 app1 ACK 2972
22448 app1 ACK 2973
22454 app1 ACK 2974
22459 app1 ACK 2975
22465 app1 ACK 2976
22470 app1 ACK 2977
22476 app1 ACK 2978
22482 app1 ACK 2979
22496 app1 ACK 2980
22501 app1 ACK 2981
22507 app1 ACK 2982
22513 app1 ACK 2983
22519 app1 ACK 2984
22524 app1 ACK 2985
22530 app1 ACK 2986
22535 app1 ACK 2987
22541 app1 ACK 2988
22548 app1 ACK 2989
22554 app1 ACK 2990
22559 app1 ACK 2991
22565 app1 ACK 2992
22570 app1 ACK 2993
22576 app1 ACK 2994
22581 app1 ACK 2995
22587 app1 ACK 2996
22592 app1 ACK 2997
22598 app1 ACK 2998
22604 app1 ACK 2999
22609 app1 ACK 3000
22614 app1 ACK 3001
22620 app1 ACK 3002
22626 app1 ACK 3003
22631 app1 ACK 3004
22637 app1 ACK 3005
22643 app1 ACK 3006
22648 app1 ACK 3007
22655 app1 ACK 3008
22661 app1 ACK 3009
22666 app1 ACK 3010
22673 app1 ACK 3011
22678 app1 ACK 3012
22685 app1 ACK 3013
22691 app1 ACK 3014
22696 app1 ACK 3015
22703 app1 ACK 3016
22710 app1 ACK 3017
22716 app1 ACK 3018
22722 app1 ACK 3019
22728 app1 ACK 3020
22734 app1 ACK 3021
22740 app1 ACK 3022
22746 app1 ACK 3023
22752 app1 ACK 3024
22758 app1 ACK 3025
22766 app1 ACK 3026
22771 app1 ACK 3027
22777 app1 ACK 3028
22783 app1 ACK 3029
22789 app1 ACK 3030
22794 app1 ACK 3031
22800 app1 ACK 3032
22805 app1 ACK 3033
22811 app1 ACK 3034
22818 app1 ACK 3035
22824 app1 ACK 3036
24507 nfs_standby VIP 0
32480 app1 ACK 4573
32485 app1 ACK 4574
32496 app1 ACK 4575
32502 app1 ACK 4576
32507 app1 ACK 4577
32507 app1 DONE 4577
`;

test('captured stop-nfs: the VIP moved 3.76 s and writes resumed 4.42 s after the fault; lag at the fault 0.58 s, up to 16.5 s', () => {
  const { probe, vip, files } = parse(CAPTURED_STOP_NFS);
  const fault = 31_623;
  const m = measureNfs(probe, vip, fault, 'nfs_primary', 'nfs_standby');
  assert.equal(m.vipMovedMs, 35_382 - fault, "nfs_standby's VIP 1");
  assert.equal(m.rtoMs, 36_046 - fault, 'ACK 5281, the first after the failures');
  assert.equal(m.outageMs, 36_046 - 31_753, 'since ACK 5224, the last before ERR 5225');
  assert.equal(m.vipBackToOldMs, null);
  assert.deepEqual(m.errors, [
    { error: 'Failed to mount nfs share : nfs_service failed', count: 54 },
    { error: 'Failed to creat file /<file>: nfs_service failed', count: 1 },
    { error: 'no answer within 1 s', count: 1 },
  ]);
  const r = replicationObserved(probe, files.filter((f) => f.alias === 'nfs_standby'), fault);
  assert.equal(r.passes, 2);
  assert.equal(r.maxLagMs, 31_559 - 15_048, 'pass 2 brought #2441, acknowledged at 15 048');
  assert.equal(r.lagAtFaultMs, fault - 31_042, '#5119 was the oldest write nfs_standby lacked');
  assert.equal(r.standbyMaxAtFault, 5118);
  // Afterwards nfs_standby holds what replication brought and what it took itself.
  const rpo = nfsRpo(probe, probe.filter((e) => e.ok && (e.seq <= 5118 || e.t >= 36_046)).map((e) => e.seq), fault, m.failoverAt, 20_000);
  assert.equal(rpo.missing[0], 5119);
  assert.equal(rpo.missingAfterFailover.length, 0);
  assert.equal(rpo.missingBeforeFailover.length, rpo.missing.length);
});

test('captured freeze: the thawed nfs_primary never noticed it lost the VIP and took it back from nfs_standby', () => {
  const { probe, vip } = parse(CAPTURED_FREEZE);
  const fault = 19_251;
  const m = measureNfs(probe, vip, fault, 'nfs_primary', 'nfs_standby');
  assert.equal(m.vipMovedMs, 22_327 - fault);
  assert.equal(m.rtoMs, 22_428 - fault);
  assert.deepEqual(m.errors, [{ error: 'no answer within 1 s', count: 3 }]);
  assert.equal(m.vipBackToOldMs, 24_507 - fault, "nfs_standby's VIP 0 while nfs_primary's last word was VIP 1");
  // nfs_primary's copy: what it acknowledged before it froze. The writes nfs_standby took are not in it.
  const rpo = nfsRpo(probe, probe.filter((e) => e.ok && e.t < fault).map((e) => e.seq), fault, m.failoverAt, 20_000);
  assert.equal(rpo.missingAfterFailover[0], 2970);
  assert.deepEqual(rpo.missingBeforeFailover, []);
});

function report(over: Partial<NfsDrillReport> = {}): NfsDrillReport {
  const { probe, vip, files } = parse(stopNfsTranscript());
  const measured = measureNfs(probe, vip, 40_000, 'nfs_primary', 'nfs_standby');
  const repl = replicationObserved(probe, files.filter((f) => f.alias === 'nfs_standby'), 40_000);
  const present = [...Array.from({ length: 679 }, (_, i) => i + 1), ...Array.from({ length: 200 }, (_, i) => 940 + i)];
  const rpo = nfsRpo(probe, present, 40_000, measured.failoverAt, 20_000);
  const host = (alias: string, address: string, holdsVip: boolean) => ({ alias, address, holdsVip, nfs: 'active', port: true, keepalived: 'active', timer: 'active', iface: 'host0', files: null });
  return {
    pair: 'nfs',
    fault: 'stop-nfs',
    mode: 'lab',
    vip: '198.18.0.101',
    share: { exportDir: '/srv/nfs', mountPath: '/srv/nfs', server: 'ganesha', unit: 'nfs-ganesha' },
    probe: { from: { alias: 'app1', address: '198.18.0.13' }, tool: 'nfs-cp', detail: 'libnfs, NFSv4 (/srv/nfs is not mounted)', writeTimeoutSec: 1 },
    target: { alias: 'nfs_primary', address: '198.18.0.11' },
    survivor: { alias: 'nfs_standby', address: '198.18.0.12' },
    startedAt: '2026-11-22T04:00:00.000Z',
    faultAt: '2026-11-22T04:00:40.000Z',
    injected: 'nfs_primary: stopped nfs-ganesha',
    undone: 'nfs_primary: started nfs-ganesha',
    measured,
    replication: { ...repl, intervalSec: 15, windowMs: 20_000 },
    rpo: { ...summariseRpo(rpo), checkedOn: 'nfs_standby', keptAsideOnOld: 0, onOldOnly: 209, note: 'rsync replication every 15 s: ...' },
    after: { hosts: [host('nfs_primary', '198.18.0.11', false), host('nfs_standby', '198.18.0.12', true)], vipHolders: ['nfs_standby'] },
    checks: [
      { name: 'the VIP is held by exactly one server', ok: true, detail: 'nfs_standby' },
      { name: 'no file acknowledged after the failover is missing on the VIP holder', ok: true, detail: '0 missing' },
    ],
    decisions: [
      { host: 'nfs_primary', time: '04:00:41.210', message: 'nfs check: FAIL: no NFS server unit is active (nfs-ganesha, nfs-server)' },
      { host: 'nfs_standby', time: '04:00:42.880', message: 'vrrp: (ha_setup_nfs) Entering MASTER STATE' },
    ],
    cleanup: [{ host: 'nfs_standby', removed: 1139, left: 0 }, { host: 'nfs_primary', removed: 888, left: 0 }],
    advice: ["nfs_primary's copy of /srv/nfs diverged from nfs_standby's: ..."],
    ok: true,
    ...over,
  };
}

test('plain report: the figures, the RPO split with its explanation, the servers, checks, decisions and what to check', () => {
  const text = formatNfsReport(report());
  assert.match(text, /^Drill nfs \(lab\): stop-nfs on nfs_primary \(198\.18\.0\.11\); probe on app1 through the NFS VIP 198\.18\.0\.101$/m);
  assert.match(text, /probe tool: nfs-cp \(libnfs, NFSv4 \(\/srv\/nfs is not mounted\)\); a write counts as failed after 1 s/);
  assert.match(text, /VIP moved to nfs_standby after\s+2\.90 s/);
  assert.match(text, /writes succeed again \(RTO\) after\s+3\.00 s {3}\(no write acknowledged for 2\.98 s\)/);
  assert.match(text, /acknowledged files lost \(RPO\)\s+209 of 1088 on nfs_standby: #680, #681,/);
  assert.match(text, /written before the failover\s+209 \(the replication window: expected up to ~20\.00 s of writes\)/);
  assert.match(text, /written after the failover\s+0$/m);
  assert.match(text, /replication lag observed\s+9\.35 s at the fault \(208 file\(s\) not yet on nfs_standby\); up to 15\.50 s over 2 pass\(es\); timer every 15 s/);
  assert.match(text, /Of the lost files, 209 were still in nfs_primary's copy/);
  assert.match(text, /51 x Failed to mount nfs share/);
  assert.match(text, /server\s+address\s+VIP\s+nfs-ganesha\s+port 2049\s+keepalived\s+replication timer/);
  assert.match(text, /nfs_standby\s+198\.18\.0\.12\s+yes\s+active\s+answers\s+active\s+active/);
  assert.match(text, /04:00:42\.880 {2}nfs_standby {2}vrrp: \(ha_setup_nfs\) Entering MASTER STATE/);
  assert.match(text, /what to check now:\n {4}- nfs_primary's copy of \/srv\/nfs diverged/);
  assert.match(text, /\ndrill passed\n$/);
  const failed = formatNfsReport(report({ ok: false, checks: [{ name: 'the VIP is held by exactly one server', ok: false, detail: 'nfs_primary, nfs_standby' }] }));
  assert.match(failed, /FAIL {2}the VIP is held by exactly one server \(nfs_primary, nfs_standby\)/);
  assert.match(failed, /drill FAILED: 1 check\(s\) failed\n$/);
});

test('node state: the VIP, the NFS unit, port 2049, keepalived, the replication timer, the interface', () => {
  assert.deepEqual(parseNfsNodeState('VIP=yes\nNFS=active\nPORT=yes\nKEEPALIVED=active\nTIMER=active\nIFACE=host0\n'), {
    holdsVip: true,
    nfs: 'active',
    port: true,
    keepalived: 'active',
    timer: 'active',
    iface: 'host0',
  });
  assert.deepEqual(parseNfsNodeState('VIP=no\nNFS=inactive\nPORT=no\nKEEPALIVED=\n'), { holdsVip: false, nfs: 'inactive', port: false, keepalived: 'unknown', timer: 'unknown', iface: '' });
});

test('faults: the lab driver maps each fault to the lab injection and undoes it (the NFS server is started again)', async () => {
  const calls: string[] = [];
  const d = nfsLabFaultDriver({ alias: 'nfs_primary', address: '198.18.0.11', unit: 'nfs-ganesha', iface: 'host0' }, async (host, kind, arg) => {
    calls.push([host, kind, arg].filter(Boolean).join(' '));
    return `db_primary: ${kind === 'stop-service' ? 'stopped' : 'started'} ${arg}`; // the lab's own name for 198.18.0.11
  });
  assert.equal(await d.inject('stop-nfs'), 'nfs_primary: stopped nfs-ganesha', "the table's alias, not the lab's");
  calls.length = 0;
  for (const f of ['stop-nfs', 'stop-keepalived', 'cut-link', 'freeze', 'reboot'] as const) {
    await d.inject(f);
    await d.undo(f);
  }
  assert.deepEqual(calls, [
    '198.18.0.11 stop-service nfs-ganesha',
    '198.18.0.11 start-service nfs-ganesha',
    '198.18.0.11 stop-service keepalived',
    '198.18.0.11 start-service keepalived',
    '198.18.0.11 cut-link',
    '198.18.0.11 restore-link',
    '198.18.0.11 freeze',
    '198.18.0.11 thaw',
    '198.18.0.11 reboot',
  ]);
});

test('faults on real servers: timers armed before cut-link and freeze; freeze refused for the kernel server', async () => {
  const target = { alias: 'nfs_primary', address: '10.0.0.21', unit: 'nfs-server', iface: 'ens3' };
  const k = nfsSshFaultScripts(target, 38, 'kernel');
  assert.equal(k['stop-nfs'].inject, 'systemctl stop nfs-server');
  assert.equal(k['stop-nfs'].undo, 'systemctl start nfs-server');
  const cut = k['cut-link'].inject.split('\n');
  assert.match(cut.find((l) => l.startsWith('systemd-run'))!, /--on-active=38s \/bin\/sh -c 'ip link set dev ens3 up'/);
  assert.ok(cut.findIndex((l) => l.startsWith('systemd-run')) < cut.findIndex((l) => l.includes('link set dev ens3 down')), 'the timer is armed before the link goes down');
  const g = nfsSshFaultScripts({ ...target, unit: 'nfs-ganesha' }, 38, 'ganesha');
  assert.match(g.freeze.inject, /--on-active=38s \/bin\/sh -c 'pkill -CONT -x keepalived; pkill -CONT -x ganesha\.nfsd; true'[\s\S]*\npkill -STOP -x ganesha\.nfsd; pkill -STOP -x keepalived; true$/);
  assert.match(nfsFaultRefusal('freeze', 'ssh', 'kernel')!, /^--fault freeze: the kernel NFS server runs as kernel threads/);
  assert.equal(nfsFaultRefusal('freeze', 'lab', 'kernel'), null);
  assert.equal(nfsFaultRefusal('freeze', 'ssh', 'ganesha'), null);
  // The driver refuses before running anything on the server.
  const ran: string[] = [];
  const transport = { name: 'nfs_primary', user: 'root', exec: async (s: string) => (ran.push(s), { code: 0, stdout: '', stderr: '', durationMs: 1 }) } as unknown as Transport;
  await assert.rejects(nfsSshFaultDriver(target, transport, 38, 'kernel').inject('freeze'), /cannot be frozen over SSH/);
  assert.deepEqual(ran, []);
  assert.equal(await nfsSshFaultDriver(target, transport, 38, 'kernel').inject('stop-nfs'), 'nfs_primary: stop the NFS server (nfs-server)');
  assert.equal(await nfsSshFaultDriver(target, transport, 38, 'kernel').undo('stop-nfs'), 'nfs_primary: nfs-server started again');
  assert.deepEqual(ran, ['systemctl stop nfs-server', 'systemctl start nfs-server']);
});

test('drill hosts: the NFS pair, its VIP and the first app server; one-line errors otherwise', () => {
  const inv = (servers: Record<string, string>) => ({ servers });
  const h = nfsDrillHosts(inv({ nfs_primary: '10.0.0.1', nfs_standby: '10.0.0.2', nfs_vip: '10.0.0.9', app2: '10.0.0.6', app1: '10.0.0.5' }));
  assert.deepEqual([h.primary.alias, h.standby.alias, h.vip, h.app.alias], ['nfs_primary', 'nfs_standby', '10.0.0.9', 'app1']);
  assert.throws(() => nfsDrillHosts(inv({ nfs_primary: '10.0.0.1', nfs_standby: '10.0.0.2', nfs_vip: '10.0.0.9' })), /^Error: the server table has no app server \(app1\)/);
  assert.throws(() => nfsDrillHosts(inv({ nfs_primary: '10.0.0.1', nfs_standby: '10.0.0.2', app1: '10.0.0.5' })), /no nfs_vip: add nfs_vip: <IP>/);
  assert.throws(() => nfsDrillHosts(inv({ nfs_primary: '10.0.0.1', nfs_vip: '10.0.0.9', app1: '10.0.0.5' })), /no nfs_standby: add nfs_standby: <IP>/);
});

test('ha-setup drill nfs: usage names it, unknown faults are refused with the NFS list', async () => {
  const out: string[] = [];
  const err: string[] = [];
  const io = { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) }, stdin: process.stdin, env: { ...process.env, HA_SETUP_HOME: mkdtempSync(join(tmpdir(), 'drill-nfs-home-')) } };
  assert.equal(await main(['drill'], io), 0);
  assert.match(out.join(''), /ha-setup drill nfs --config FILE \[--fault KIND\] \[--json\] \[--yes\]\n {2}KIND: stop-nfs, stop-keepalived, cut-link, freeze, reboot \(default stop-nfs\)/);
  assert.equal(await main(['drill', 'nfs', '--fault', 'stop-postgres'], io), 2);
  assert.match(err.join(''), /ha-setup drill nfs: --fault stop-postgres is not known \(one of: stop-nfs, stop-keepalived, cut-link, freeze, reboot\)/);
  assert.equal(await main(['drill', 'nfs', 'extra'], io), 2);
  assert.match(err.join(''), /unknown "nfs extra"/);
});
