// Budget batching: every item exactly once per epoch across ranks, equal batch counts, budget respected,
// determinism from (seed, epoch), different epochs differ.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SigmaError } from '../../../../shared/errors.js';
import { pairSizes, paddedSize, planAllBatches, planBatches } from '../../../../worker/data/budget.js';
import { Rng } from '../../../../worker/rng.js';

function randomSizes(n: number, seed: number, max: number): Int32Array {
  const r = new Rng(seed);
  const s = new Int32Array(n);
  // a skewed length distribution like text: many short, a tail of long
  for (let i = 0; i < n; i++) s[i] = 1 + Math.floor(max * Math.pow(r.float(), 2.5));
  return s;
}

describe('budget planner', () => {
  it('covers every item exactly once across ranks, with equal batch counts, within budget, over many seeds and world sizes', () => {
    for (let seed = 0; seed < 12; seed++) {
      for (const worldSize of [1, 2, 3, 4, 7, 8]) {
        const n = 50 + ((seed * 97) % 900);
        const sizes = randomSizes(n, seed + 1000, 60);
        const budget = 60 + ((seed * 37) % 300);
        const maxItems = seed % 3 === 0 ? 16 : 0;
        const seen = new Uint8Array(n);
        let count = -1;
        for (let rank = 0; rank < worldSize; rank++) {
          const mine = planBatches({ sizes, budget, maxItems, seed, epoch: seed % 4, rank, worldSize });
          if (count < 0) count = mine.length;
          assert.equal(mine.length, count, `seed ${seed} W ${worldSize}: rank ${rank} has ${mine.length} batches, rank 0 has ${count}`);
          for (const b of mine) {
            assert.ok(b.length > 0);
            assert.ok(paddedSize(sizes, b) <= budget, `padded ${paddedSize(sizes, b)} > ${budget}`);
            if (maxItems) assert.ok(b.length <= maxItems);
            for (const i of b) {
              assert.equal(seen[i], 0, `item ${i} twice`);
              seen[i] = 1;
            }
          }
        }
        assert.equal(seen.reduce((a, b) => a + b, 0), n, `seed ${seed} W ${worldSize}: items missing`);
      }
    }
  });

  it('is deterministic from (seed, epoch) and differs between epochs and seeds', () => {
    const sizes = randomSizes(2000, 7, 80);
    const o = { sizes, budget: 400, seed: 3, epoch: 1, rank: 1, worldSize: 4 };
    const a = planBatches(o);
    const b = planBatches({ ...o });
    assert.deepEqual(a, b);
    const key = (bs: Int32Array[]) => bs.map((x) => Array.from(x).join(',')).join(';');
    assert.notEqual(key(planBatches({ ...o, epoch: 2 })), key(a));
    assert.notEqual(key(planBatches({ ...o, seed: 4 })), key(a));
  });

  it('buckets by length: batches hold similar sizes, so padding is small', () => {
    const sizes = randomSizes(20000, 11, 100);
    const all = planAllBatches({ sizes, budget: 2000, seed: 1, epoch: 0, worldSize: 2 });
    let padded = 0;
    let real = 0;
    for (const b of all) {
      padded += paddedSize(sizes, b);
      for (const i of b) real += sizes[i]!;
    }
    // random batching of this distribution pads ~3×; bucketing keeps it within a few percent
    assert.ok(padded / real < 1.1, `padding ratio ${padded / real}`);
  });

  it('splits batches to make the count divisible by the world size (a remainder is never dropped)', () => {
    const sizes = new Int32Array(10).fill(5); // budget 25 → 2 batches of 5; 3 ranks need 3 batches
    const all = planAllBatches({ sizes, budget: 25, seed: 0, epoch: 0, worldSize: 3 });
    assert.equal(all.length, 3);
    assert.deepEqual(all.map((b) => b.length).sort(), [2, 3, 5]);
  });

  it('oversize items: an error naming the item by default, their own batch on request', () => {
    const sizes = Int32Array.from([3, 4, 50, 2]);
    assert.throws(
      () => planAllBatches({ sizes, budget: 10, seed: 0, epoch: 0, worldSize: 1 }),
      (e: unknown) => e instanceof SigmaError && e.code === 'SGT_BATCH_BUDGET' && /item 2 has size 50 > budget 10/.test(e.message),
    );
    const all = planAllBatches({ sizes, budget: 10, seed: 0, epoch: 0, worldSize: 1, oversize: 'own-batch' });
    assert.ok(all.some((b) => b.length === 1 && b[0] === 2));
    assert.equal(all.reduce((a, b) => a + b.length, 0), 4);
  });

  it('refuses fewer items than ranks, and unsplittable remainders', () => {
    assert.throws(() => planAllBatches({ sizes: new Int32Array(3).fill(1), budget: 10, seed: 0, epoch: 0, worldSize: 4 }), /3 items/);
    assert.throws(
      () => planAllBatches({ sizes: new Int32Array(5).fill(10), budget: 10, seed: 0, epoch: 0, worldSize: 4 }),
      /single-item batches/,
    );
  });

  it('pair sizes: max or sum of the sides, with extra tokens per side', () => {
    const a = Int32Array.from([3, 10, 0]);
    const b = Int32Array.from([5, 2, 0]);
    assert.deepEqual(pairSizes(a, b, 'max', 1), Int32Array.from([6, 11, 1]));
    assert.deepEqual(pairSizes(a, b, 'sum'), Int32Array.from([8, 12, 0]));
    assert.throws(() => pairSizes(a, b.subarray(1), 'max'), /3 source lengths vs 2/);
  });
});
