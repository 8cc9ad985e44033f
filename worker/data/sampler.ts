// Epoch shuffling and sharding across data-parallel ranks: a permutation from (seed, epoch), cut into global
// batches, each split contiguously over ranks, so every sample is seen exactly once per epoch across the ring.
//
// Why global batches first, then ranks: the global batch of step s depends only on (n, seed, epoch, globalBatch),
// never on worldSize. After an elastic re-shard (new generation, different world size, same global batch) the
// remaining steps train on exactly the same samples; only who computes which rows changes. Every rank also gets
// the same number of steps (ring all-reduce needs that); in a partial last batch some ranks hold fewer samples,
// possibly none, and still join the all-reduce (gradients as sums plus a sample-count denominator).

import { SigmaError } from '../../shared/errors.js';
import { Rng, deriveSeed } from '../rng.js';

function checkInt(name: string, v: number, lo: number): void {
  if (!Number.isSafeInteger(v) || v < lo) {
    throw new SigmaError('SGT_DATA_INVALID', `sampler: ${name}=${v} must be an integer ≥ ${lo}`);
  }
}

/**
 * The epoch's order: a uniformly random permutation of 0..n-1 (Fisher–Yates), a pure function of (n, seed, epoch).
 * Different epochs give independent permutations.
 */
export function permutation(n: number, seed: number, epoch: number): Int32Array {
  checkInt('n', n, 0);
  checkInt('seed', seed, Number.MIN_SAFE_INTEGER);
  checkInt('epoch', epoch, 0);
  const perm = new Int32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  const rng = new Rng(deriveSeed(seed, epoch, 0x5a3d)); // 0x5a3d: a tag separating this stream from other uses
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = perm[i]!;
    perm[i] = perm[j]!;
    perm[j] = t;
  }
  return perm;
}

/**
 * The epoch as global batches: consecutive slices of permutation(n, seed, epoch) of length globalBatch. With
 * dropLast the final partial slice (n mod globalBatch samples, different ones each epoch) is left out; without it
 * the last batch is shorter. Each batch is a view into one shared permutation array.
 */
export function globalBatches(n: number, seed: number, epoch: number, globalBatch: number, dropLast = false): Int32Array[] {
  checkInt('globalBatch', globalBatch, 1);
  const perm = permutation(n, seed, epoch);
  const steps = stepsPerEpoch(n, globalBatch, dropLast);
  const out: Int32Array[] = [];
  for (let s = 0; s < steps; s++) out.push(perm.subarray(s * globalBatch, Math.min(n, (s + 1) * globalBatch)));
  return out;
}

/** Steps in an epoch: floor(n / globalBatch) with dropLast, else ceil. */
export function stepsPerEpoch(n: number, globalBatch: number, dropLast: boolean): number {
  checkInt('n', n, 0);
  checkInt('globalBatch', globalBatch, 1);
  return dropLast ? Math.floor(n / globalBatch) : Math.ceil(n / globalBatch);
}

/**
 * Rank `rank`'s contiguous part of one global batch of m ids: sizes differ by at most one, the first (m mod
 * worldSize) ranks taking the extra sample. For a full batch of worldSize·b ids every rank gets exactly b. A view,
 * not a copy; possibly empty.
 */
export function splitForRank(globalBatchIds: Int32Array, worldSize: number, rank: number): Int32Array {
  checkInt('worldSize', worldSize, 1);
  if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize) {
    throw new SigmaError('SGT_DATA_INVALID', `sampler: rank=${rank} must be an integer in [0, ${worldSize})`);
  }
  const m = globalBatchIds.length;
  const base = Math.floor(m / worldSize);
  const extra = m % worldSize;
  const start = rank * base + Math.min(rank, extra);
  const len = base + (rank < extra ? 1 : 0);
  return globalBatchIds.subarray(start, start + len);
}

