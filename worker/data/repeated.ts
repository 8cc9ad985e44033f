// Repeated augmentation (Hoffer et al. 2020; DeiT's RASampler) as a sampler: each epoch visits every sample
// `repeats` times, the copies adjacent in the order so they land in the same global batch, each copy augmented
// with its own seed (sampleSeed(seed, epoch, id, repeat)).
//
// Accounting: the epoch is the sequence of (id, repeat) pairs, r·n long, cut into global batches and split over
// ranks exactly like sampler.ts (contiguous, sizes differing by ≤ 1). Across all ranks every (id, repeat) pair
// occurs exactly once per epoch, so every unique id occurs exactly r times (fewer only in a dropLast remainder).
// With r = 1 it is globalBatches split by splitForRank (what the cached sources do). Differences from DeiT's RASampler, on purpose:
//  - DeiT keeps an epoch at n samples (so only n/r unique images per epoch); here an epoch is r·n samples, i.e.
//    r× the steps. To match DeiT's compute for E epochs, train E/r epochs here.
//  - DeiT strides positions over ranks, putting the copies on different GPUs; here copies mostly share a rank.
//    Without BatchNorm (ViT) the all-reduced gradient of a global batch does not depend on that placement.

import { SigmaError } from '../../shared/errors.js';
import { permutation, splitForRank, stepsPerEpoch } from './sampler.js';

export interface RepeatedStep {
  step: number;
  /** This rank's sample ids for the step (may be empty in a partial last batch). */
  ids: Int32Array;
  /** repeats[k] is the copy number (0..r−1) of ids[k]; feeds the augmentation seed. */
  repeats: Uint8Array;
  /** Occurrences in the whole global batch (the loss denominator before skips). */
  globalSize: number;
}

export interface RepeatedPlan extends Iterable<RepeatedStep> {
  readonly n: number;
  readonly repeats: number;
  readonly epoch: number;
  readonly worldSize: number;
  readonly rank: number;
  readonly globalBatch: number;
  /** Same for every rank: floor or ceil of r·n / globalBatch. */
  readonly steps: number;
  /** Occurrences nobody sees this epoch (r·n mod globalBatch with dropLast, else 0). */
  readonly dropped: number;
  batch(step: number): RepeatedStep;
  iterate(fromStep?: number): IterableIterator<RepeatedStep>;
}

/**
 * Rank `rank`'s plan for `epoch`: the order is permutation(n, seed, epoch) with each id repeated r times in a row
 * ([a, a, b, b, …] for r = 2); global batches of batchPerRank·worldSize consecutive occurrences; each split with
 * splitForRank. The global batch of a step depends only on (n, seed, epoch, globalBatch, r), not on worldSize.
 */
export function repeatedShardPlan(
  n: number,
  seed: number,
  epoch: number,
  worldSize: number,
  rank: number,
  batchPerRank: number,
  dropLast: boolean,
  repeats: number,
  /** false: index order instead of permutation(n, seed, epoch) (evaluation); needs repeats = 1 to mean anything. */
  shuffle = true,
): RepeatedPlan {
  if (!Number.isInteger(repeats) || repeats < 1 || repeats > 255) {
    throw new SigmaError('SGT_DATA_INVALID', `sampler: repeats=${repeats} must be an integer in [1, 255]`);
  }
  if (!Number.isSafeInteger(batchPerRank) || batchPerRank < 1) {
    throw new SigmaError('SGT_DATA_INVALID', `sampler: batchPerRank=${batchPerRank} must be an integer ≥ 1`);
  }
  const perm = shuffle ? permutation(n, seed, epoch) : Int32Array.from({ length: n }, (_, i) => i);
  const total = n * repeats;
  const seqIds = new Int32Array(total);
  const seqRep = new Uint8Array(total);
  for (let p = 0; p < total; p++) {
    seqIds[p] = perm[Math.floor(p / repeats)]!;
    seqRep[p] = p % repeats;
  }
  splitForRank(new Int32Array(0), worldSize, rank); // validates worldSize and rank
  const globalBatch = batchPerRank * worldSize;
  const steps = stepsPerEpoch(total, globalBatch, dropLast);
  const batch = (step: number): RepeatedStep => {
    if (!Number.isInteger(step) || step < 0 || step >= steps) {
      throw new SigmaError('SGT_DATA_INVALID', `sampler: step=${step} is outside this epoch's [0, ${steps})`);
    }
    const start = step * globalBatch;
    const end = Math.min(total, start + globalBatch);
    // Positions, split like ids: the rank's slice of [start, end).
    const positions = splitForRank(Int32Array.from({ length: end - start }, (_, k) => start + k), worldSize, rank);
    const ids = new Int32Array(positions.length);
    const reps = new Uint8Array(positions.length);
    positions.forEach((p, k) => {
      ids[k] = seqIds[p]!;
      reps[k] = seqRep[p]!;
    });
    return { step, ids, repeats: reps, globalSize: end - start };
  };
  function* iterate(fromStep = 0): IterableIterator<RepeatedStep> {
    for (let s = fromStep; s < steps; s++) yield batch(s);
  }
  return {
    n,
    repeats,
    epoch,
    worldSize,
    rank,
    globalBatch,
    steps,
    dropped: dropLast ? total - steps * globalBatch : 0,
    batch,
    iterate,
    [Symbol.iterator]: () => iterate(0),
  };
}
