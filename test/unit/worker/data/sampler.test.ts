// Tests for epoch shuffling and sharding: permutations are deterministic per (seed, epoch), every sample is seen
// exactly once per epoch across ranks, all ranks take the same number of steps, and re-sharding keeps global batches.

import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { SigmaError } from '../../../../shared/errors.js';
import { globalBatches, permutation, splitForRank, stepsPerEpoch } from '../../../../worker/data/sampler.js';
import { repeatedShardPlan } from '../../../../worker/data/repeated.js';

/** The ImageNet loader's sharder without repeated augmentation. */
const shardPlan = (n: number, seed: number, epoch: number, w: number, rank: number, b: number, dropLast: boolean) =>
  repeatedShardPlan(n, seed, epoch, w, rank, b, dropLast, 1);

describe('permutation', () => {
  it('is a permutation, the same for the same (seed, epoch), different otherwise', () => {
    const p = permutation(1000, 42, 0);
    assert.deepEqual([...p].sort((a, b) => a - b), Array.from({ length: 1000 }, (_, i) => i));
    assert.deepEqual(p, permutation(1000, 42, 0));
    assert.notDeepEqual(p, permutation(1000, 42, 1));
    assert.notDeepEqual(p, permutation(1000, 43, 0));
    assert.notDeepEqual(permutation(1000, 42, 1), permutation(1000, 42, 2));
    assert.notDeepEqual(p, Int32Array.from({ length: 1000 }, (_, i) => i));
    assert.equal(permutation(0, 1, 0).length, 0);
    assert.deepEqual([...permutation(1, 1, 0)], [0]);
  });

  it('moves every position with roughly uniform probability', () => {
    // Position of sample 0 over 4000 epochs of n=8: each slot expected 500 times.
    const counts = new Array(8).fill(0);
    for (let e = 0; e < 4000; e++) counts[permutation(8, 9, e).indexOf(0)]++;
    for (const c of counts) assert.ok(c > 400 && c < 600, `counts ${counts}`);
  });
});

describe('splitForRank', () => {
  it('splits contiguously with sizes differing by at most one', () => {
    for (const [m, w] of [[16, 4], [10, 4], [3, 5], [0, 3], [7, 1]] as const) {
      const g = Int32Array.from({ length: m }, (_, i) => 100 + i);
      const parts = Array.from({ length: w }, (_, r) => [...splitForRank(g, w, r)]);
      assert.deepEqual(parts.flat(), [...g], `m=${m} w=${w}`);
      const sizes = parts.map((p) => p.length);
      assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `sizes ${sizes}`);
      assert.ok(sizes.every((s, r) => r === 0 || s <= sizes[r - 1]!), 'earlier ranks take the extra samples');
    }
  });

  it('rejects a rank outside the world', () => {
    assert.throws(() => splitForRank(new Int32Array(4), 2, 2), (e: unknown) => e instanceof SigmaError && e.message.includes('rank=2'));
  });
});

describe('shard plans (repeatedShardPlan, r = 1)', () => {
  // (n, worldSize, batchPerRank): even, uneven last batch, more ranks than samples in the last batch, n < worldSize.
  const combos: [number, number, number][] = [
    [100, 1, 10],
    [100, 4, 8],
    [101, 3, 7],
    [7, 4, 3],
    [10, 16, 1],
    [1000, 8, 32],
    [5, 2, 100],
    [0, 2, 4],
  ];

  for (const [n, w, b] of combos) {
    for (const dropLast of [false, true]) {
      it(`n=${n} world=${w} batch=${b} dropLast=${dropLast}: each sample once per epoch across ranks`, () => {
        const G = w * b;
        const plans = Array.from({ length: w }, (_, r) => shardPlan(n, 5, 3, w, r, b, dropLast));
        const steps = stepsPerEpoch(n, G, dropLast);
        const global = globalBatches(n, 5, 3, G, dropLast);
        assert.equal(global.length, steps);
        const seen = new Int32Array(n);
        for (const plan of plans) {
          assert.equal(plan.steps, steps, 'every rank takes the same number of steps');
          assert.equal(plan.globalBatch, G);
          let count = 0;
          for (const s of plan) {
            assert.equal(s.step, count++);
            assert.equal(s.globalSize, global[s.step]!.length);
            assert.ok(s.ids.length <= b);
            for (const id of s.ids) seen[id]!++;
          }
          assert.equal(count, steps);
        }
        // The ranks' parts of step s, concatenated in rank order, are the global batch of step s.
        for (let s = 0; s < steps; s++) {
          const joined = plans.flatMap((p) => [...p.batch(s).ids]);
          assert.deepEqual(joined, [...global[s]!]);
        }
        const kept = dropLast ? steps * G : n;
        assert.equal(plans[0]!.dropped, n - kept);
        assert.equal([...seen].filter((c) => c === 1).length, kept);
        assert.equal([...seen].filter((c) => c > 1).length, 0, 'no sample twice');
        if (!dropLast) assert.ok(seen.every((c) => c === 1), 'every sample exactly once');
      });
    }
  }

  it('is the same for the same (seed, epoch) and different across epochs', () => {
    const ids = (seed: number, epoch: number): number[] => [...shardPlan(64, seed, epoch, 2, 1, 8, false)].flatMap((s) => [...s.ids]);
    assert.deepEqual(ids(1, 0), ids(1, 0));
    assert.notDeepEqual(ids(1, 0), ids(1, 1));
    assert.notDeepEqual(ids(1, 0), ids(2, 0));
    // Different epochs also drop different samples.
    const dropped = (epoch: number): number[] => {
      const seen = new Set(globalBatches(10, 1, epoch, 4, true).flatMap((g) => [...g]));
      return Array.from({ length: 10 }, (_, i) => i).filter((i) => !seen.has(i));
    };
    assert.equal(dropped(0).length, 2);
    assert.ok([1, 2, 3, 4, 5].some((e) => dropped(e).join() !== dropped(0).join()));
  });

  it('keeps each step\'s global batch when the world is re-sharded at a fixed global batch', () => {
    const union = (w: number, step: number): number[] =>
      Array.from({ length: w }, (_, r) => [...shardPlan(200, 7, 2, w, r, 16 / w, false).batch(step).ids]).flat();
    for (let step = 0; step < 13; step++) {
      assert.deepEqual(union(2, step), union(4, step));
      assert.deepEqual(union(1, step), union(8, step));
    }
  });

  it('resumes mid-epoch from a step', () => {
    const plan = shardPlan(50, 1, 0, 2, 0, 4, false);
    const all = [...plan];
    const rest = [...plan.iterate(3)];
    assert.deepEqual(rest, all.slice(3));
    assert.throws(() => plan.batch(plan.steps), (e: unknown) => e instanceof SigmaError && e.code === 'SGT_DATA_INVALID');
  });

  it('rejects invalid arguments naming the value', () => {
    const bad = (f: () => unknown, needle: string): void =>
      assert.throws(f, (e: unknown) => e instanceof SigmaError && e.code === 'SGT_DATA_INVALID' && e.message.includes(needle));
    bad(() => shardPlan(10, 1, 0, 2, 2, 4, false), 'rank=2');
    bad(() => shardPlan(10, 1, 0, 0, 0, 4, false), 'worldSize=0');
    bad(() => shardPlan(10, 1, 0, 2, 0, 0, false), 'batchPerRank=0');
    bad(() => shardPlan(-1, 1, 0, 2, 0, 4, false), 'n=-1');
    bad(() => shardPlan(10, 1, 1.5, 2, 0, 4, false), 'epoch=1.5');
  });
});
