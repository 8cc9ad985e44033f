// Unit tests of the ring schedule (pure index math): partitions are exact, and a socket-free simulation of the
// 2(N-1) steps yields the sum, bitwise identical on every rank.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chunkSpan, chunksPerSegment, recvSegment, segmentSpan, sendSegment } from '../../../../worker/comm/schedule.js';

test('segments and chunks tile [0, L) exactly, in order', () => {
  for (const N of [1, 2, 3, 4, 7]) {
    for (const L of [0, 1, 2, 3, 5, 8, 1001, 65_537]) {
      for (const M of [1, 2, 3, 5]) {
        let at = 0;
        for (let k = 0; k < N; k++) {
          const seg = segmentSpan(L, N, k);
          assert.equal(seg.start, at, `N=${N} L=${L} segment ${k} start`);
          assert.ok(seg.end - seg.start <= Math.ceil(L / N));
          for (let j = 0; j < M; j++) {
            const c = chunkSpan(L, N, M, k, j);
            assert.equal(c.start, at);
            assert.ok(c.end >= c.start);
            at = c.end;
          }
          assert.equal(at, seg.end);
        }
        assert.equal(at, L);
      }
    }
  }
});

test('chunksPerSegment: ceil(segment bytes / chunkBytes), never below 1', () => {
  assert.equal(chunksPerSegment(0, 2, 4, 1 << 20), 1);
  assert.equal(chunksPerSegment(1, 3, 4, 1 << 20), 1);
  // 64 MB over 2 ranks, 1 MB chunks: 32 per segment.
  assert.equal(chunksPerSegment(16 << 20, 2, 4, 1 << 20), 32);
  // One float over the chunk size adds a chunk; uneven segments use the larger one.
  assert.equal(chunksPerSegment(2 * (1 << 18) + 2, 2, 4, 1 << 20), 2);
  assert.equal(chunksPerSegment(1 << 18, 2, 4, 1 << 20), 1);
});

test('schedule: sends of step s are the receives of step s-1; owner of segment r+1 after reduce-scatter', () => {
  for (const N of [2, 3, 4, 5]) {
    for (let r = 0; r < N; r++) {
      assert.equal(sendSegment(r, N, 0), r);
      for (let s = 1; s < 2 * (N - 1); s++) assert.equal(sendSegment(r, N, s), recvSegment(r, N, s - 1));
      assert.equal(recvSegment(r, N, N - 2), (r + 1) % N);
      // What rank r sends at step s is what its successor receives at step s.
      for (let s = 0; s < 2 * (N - 1); s++) assert.equal(sendSegment(r, N, s), recvSegment((r + 1) % N, N, s));
      // All-gather delivers every segment except the one this rank owns.
      const ag = new Set(Array.from({ length: N - 1 }, (_, t) => recvSegment(r, N, N - 1 + t)));
      assert.equal(ag.size, N - 1);
      assert.ok(!ag.has((r + 1) % N));
    }
  }
});

test('socket-free simulation of the schedule gives the sum, bitwise identical on all ranks', () => {
  for (const N of [2, 3, 4]) {
    const L = 37;
    const M = 3;
    const data = Array.from({ length: N }, (_, r) => Float32Array.from({ length: L }, (_, i) => Math.fround(0.1 * (i + 1) + r / 3)));
    const ref = Float64Array.from({ length: L }, (_, i) => data.reduce((s, d) => s + d[i], 0));
    // Message in flight from rank r to r+1 at (step, chunk): a copy, as a socket would deliver it.
    for (let s = 0; s < 2 * (N - 1); s++) {
      for (let j = 0; j < M; j++) {
        const msgs = data.map((d, r) => {
          const c = chunkSpan(L, N, M, sendSegment(r, N, s), j);
          return d.slice(c.start, c.end);
        });
        data.forEach((d, r) => {
          const p = msgs[(r - 1 + N) % N];
          const c = chunkSpan(L, N, M, recvSegment(r, N, s), j);
          for (let i = 0; i < p.length; i++) d[c.start + i] = s < N - 1 ? Math.fround(d[c.start + i] + p[i]) : p[i];
        });
      }
    }
    for (let r = 1; r < N; r++) assert.deepEqual(Buffer.from(data[r].buffer), Buffer.from(data[0].buffer), `rank ${r} vs 0`);
    data[0].forEach((v, i) => assert.ok(Math.abs(v - ref[i]) <= 1e-6 * ref[i], `element ${i}: ${v} vs ${ref[i]}`));
  }
});
