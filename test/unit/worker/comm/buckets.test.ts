// Unit tests of gradient buckets: plan sizes and boundaries, pack/unpack round trip, and the overlapping reducer
// against a fake all-reducer (no sockets).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BucketReducer, packBucket, planBuckets, planBucketsFor, unpackBucket, type AllReducer } from '../../../../worker/comm/buckets.js';

test('plan: greedy in the given order, ≤ bucketBytes, oversized tensors alone, empty tensors kept', () => {
  // bucketBytes 40 → 10 floats per bucket.
  const plan = planBuckets([4, 4, 3, 12, 0, 5, 5, 1], 40);
  assert.deepEqual(
    plan.buckets.map((b) => b.entries.map((e) => [e.tensor, e.offset, e.length])),
    [
      [[0, 0, 4], [1, 4, 4]], // 8; +3 would be 11 > 10
      [[2, 0, 3]], // 3; +12 > 10
      [[3, 0, 12], [4, 12, 0]], // oversized alone; the empty tensor fits anywhere
      [[5, 0, 5], [6, 5, 5]], // exactly 10
      [[7, 0, 1]],
    ],
  );
  assert.deepEqual(plan.buckets.map((b) => b.length), [8, 3, 12, 10, 1]);
  assert.equal(plan.maxLength, 12);
  assert.equal(plan.totalLength, 34);
  assert.ok(plan.buckets.every((b, i) => b.index === i));
});

test('plan: default 25 MB buckets; sizes validated', () => {
  const mb = (n: number) => (n * 1024 * 1024) / 4;
  const plan = planBuckets([mb(10), mb(10), mb(10), mb(30), mb(1)]);
  assert.deepEqual(plan.buckets.map((b) => b.length), [mb(20), mb(10), mb(30), mb(1)]);
  assert.deepEqual(planBuckets([]).buckets, []);
  assert.deepEqual(planBucketsFor([new Float32Array(3), new Float32Array(5)], 16).buckets.map((b) => b.length), [3, 5]);
  assert.throws(() => planBuckets([3, -1]), /SGT_COMM: gradient 1 has size -1/);
  assert.throws(() => planBuckets([2.5]), /gradient 0 has size 2.5/);
  assert.throws(() => planBuckets([1], 2), /bucketBytes=2/);
});

test('pack/unpack round trip restores every tensor', () => {
  const sizes = [7, 0, 130, 1, 64, 33];
  const plan = planBuckets(sizes, 400);
  const grads = sizes.map((n, t) => Float32Array.from({ length: n }, (_, i) => t * 1000 + i));
  const back = sizes.map((n) => new Float32Array(n));
  const flat = new Float32Array(plan.maxLength);
  for (let b = 0; b < plan.buckets.length; b++) {
    flat.fill(NaN);
    packBucket(plan, b, grads, flat);
    unpackBucket(plan, b, flat, back);
  }
  assert.deepEqual(back, grads);
  assert.throws(() => packBucket(plan, 0, grads, new Float32Array(1)), /flat buffer has 1/);
});

/** Fake ring of `world` identical ranks: the sum is world × data, after a delay so transfers overlap packing. */
class FakeRing implements AllReducer {
  calls: number[] = [];
  active = 0;
  constructor(private readonly world: number) {}
  async allReduceSum(data: Float32Array): Promise<void> {
    assert.equal(this.active, 0, 'one all-reduce at a time');
    this.active++;
    this.calls.push(data.length);
    await new Promise((r) => setTimeout(r, 2));
    for (let i = 0; i < data.length; i++) data[i] *= this.world;
    this.active--;
  }
}

test('BucketReducer sums in place, bucket by bucket, reusing two staging buffers', async () => {
  const sizes = [300_000, 5, 200_000, 0, 450_000, 17];
  const plan = planBuckets(sizes, 2_000_000); // 500k floats per bucket → 4 buckets
  const ring = new FakeRing(3);
  const reducer = new BucketReducer(ring, plan);
  for (let stepNo = 0; stepNo < 2; stepNo++) {
    const grads = sizes.map((n, t) => Float32Array.from({ length: n }, (_, i) => t + i * 1e-3 + stepNo));
    const want = grads.map((g) => g.map((v) => v * 3));
    await reducer.allReduce(grads);
    assert.deepEqual(grads, want);
  }
  assert.deepEqual(ring.calls, [...plan.buckets.map((b) => b.length), ...plan.buckets.map((b) => b.length)]);
  await assert.rejects(reducer.allReduce([new Float32Array(1)]), /got 1 gradient arrays, the bucket plan has 6/);
});
