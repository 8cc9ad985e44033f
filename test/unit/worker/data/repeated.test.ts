// Tests for repeated augmentation as a sampler: every (id, repeat) pair once per epoch across ranks (so each id
// exactly r times), copies in the same global batch, equal steps per rank, worldSize-independent global batches,
// and r = 1 reproducing globalBatches split by splitForRank.

import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { repeatedShardPlan } from '../../../../worker/data/repeated.js';
import { globalBatches, splitForRank } from '../../../../worker/data/sampler.js';

describe('repeatedShardPlan', () => {
  it('covers every (id, repeat) exactly once per epoch across ranks; every id r times', () => {
    const n = 23, r = 2, world = 3, b = 4;
    const seen = new Map<string, number>();
    const perId = new Array(n).fill(0);
    const steps = new Set<number>();
    for (let rank = 0; rank < world; rank++) {
      const plan = repeatedShardPlan(n, 5, 1, world, rank, b, false, r);
      steps.add(plan.steps);
      for (const s of plan) {
        assert.equal(s.ids.length, s.repeats.length);
        s.ids.forEach((id, k) => {
          const key = `${id}/${s.repeats[k]}`;
          seen.set(key, (seen.get(key) ?? 0) + 1);
          perId[id]++;
        });
      }
    }
    assert.deepEqual([...steps], [Math.ceil((n * r) / (world * b))]);
    assert.equal(seen.size, n * r);
    assert.ok([...seen.values()].every((c) => c === 1));
    assert.ok(perId.every((c) => c === r));
  });

  it('puts the copies of a sample next to each other (same global batch when it is even)', () => {
    const plan = repeatedShardPlan(10, 3, 0, 2, 0, 2, false, 2); // global batch 4
    const plan1 = repeatedShardPlan(10, 3, 0, 2, 1, 2, false, 2);
    for (let s = 0; s < plan.steps; s++) {
      const ids = [...plan.batch(s).ids, ...plan1.batch(s).ids];
      for (const id of ids) assert.equal(ids.filter((v) => v === id).length, 2, `step ${s}`);
    }
  });

  it('global batches do not depend on the world size; different epochs differ', () => {
    const flat = (world: number, epoch = 0): string[][] => {
      const plans = Array.from({ length: world }, (_, rank) => repeatedShardPlan(30, 9, epoch, world, rank, 12 / world, true, 2));
      return Array.from({ length: plans[0]!.steps }, (_, s) =>
        plans.flatMap((p) => Array.from(p.batch(s).ids, (id, k) => `${id}/${p.batch(s).repeats[k]}`)),
      );
    };
    assert.deepEqual(flat(1), flat(2));
    assert.deepEqual(flat(2), flat(4));
    assert.notDeepEqual(flat(2, 0), flat(2, 1));
    const p = repeatedShardPlan(30, 9, 0, 2, 0, 6, true, 2);
    assert.equal(p.steps, 5);
    assert.equal(p.dropped, 0);
    assert.equal(repeatedShardPlan(31, 9, 0, 2, 0, 6, true, 2).dropped, 2);
  });

  it('r = 1 is globalBatches split by splitForRank (the cached sources\' batches)', () => {
    const global = globalBatches(50, 4, 2, 15, false);
    for (const rank of [0, 1, 2]) {
      const a = repeatedShardPlan(50, 4, 2, 3, rank, 5, false, 1);
      assert.equal(a.steps, global.length);
      for (let s = 0; s < a.steps; s++) {
        assert.deepEqual([...a.batch(s).ids], [...splitForRank(global[s]!, 3, rank)]);
        assert.equal(a.batch(s).globalSize, global[s]!.length);
        assert.ok(a.batch(s).repeats.every((v) => v === 0));
      }
    }
  });

  it('rejects bad repeats, ranks and steps', () => {
    assert.throws(() => repeatedShardPlan(10, 0, 0, 1, 0, 2, false, 0), /repeats=0/);
    assert.throws(() => repeatedShardPlan(10, 0, 0, 2, 2, 2, false, 2), /rank=2/);
    assert.throws(() => repeatedShardPlan(10, 0, 0, 1, 0, 2, false, 2).batch(10), /step=10/);
  });
});
