// Budget batching (fairseq --max-tokens) for any sized items: text pairs in tokens, utterances in frames.
// Plans one epoch's batches for every rank from (seed, epoch) alone, so all ranks agree without talking.
//
// The rule, in order:
//  1. Order items by size, ties in a seeded random order (a seeded permutation, then a stable counting sort by size:
//     fairseq's shuffle-then-sort). Similar sizes share batches, so little padding.
//  2. Cut that order greedily into batches whose padded size max(size) × count ≤ budget and count ≤ maxItems.
//     An item larger than the budget alone is an error by default (fairseq refuses such inputs too), or, with
//     oversize: 'own-batch', a batch of its own.
//  3. Shuffle the batch order from (seed, epoch).
//  4. Make the count a multiple of worldSize by splitting batches in two (the one with the most items, earliest on
//     ties), so every rank runs the same number of optimizer steps and no item is dropped or repeated. A split batch
//     is still within budget. Fewer items than ranks is an error, and so is the corner where every batch is one
//     item and their count does not divide (raise the budget).
//  5. Rank r takes batches r, r + W, r + 2W, … (round-robin), so every item is in exactly one rank's plan.

import { SigmaError } from '../../shared/errors.js';
import { deriveSeed, Rng } from '../rng.js';

export interface BudgetPlanOptions {
  /** Per-item size (tokens or frames; for a pair the caller picks max(src, tgt) or src + tgt). */
  sizes: Int32Array;
  /** Padded size limit of one batch on one worker: max(size) × count ≤ budget (fairseq's --max-tokens). */
  budget: number;
  /** Optional cap on items per batch (fairseq's --batch-size with --max-tokens). 0 or absent = none. */
  maxItems?: number;
  seed: number;
  epoch: number;
  rank: number;
  worldSize: number;
  /** Items larger than the budget: 'error' (default) or a batch of their own. */
  oversize?: 'error' | 'own-batch';
}

/** Every batch of the epoch, in step order before round-robin assignment (all ranks compute the same list). */
export function planAllBatches(o: Omit<BudgetPlanOptions, 'rank'>): Int32Array[] {
  const { sizes, budget, worldSize } = o;
  const maxItems = o.maxItems && o.maxItems > 0 ? o.maxItems : Infinity;
  if (!Number.isInteger(budget) || budget <= 0) throw new SigmaError('SGT_BATCH_BUDGET', `budget must be a positive integer, got ${budget}`);
  if (!Number.isInteger(worldSize) || worldSize < 1) throw new SigmaError('SGT_BATCH_BUDGET', `worldSize must be ≥ 1, got ${worldSize}`);
  const n = sizes.length;
  if (n < worldSize) {
    throw new SigmaError('SGT_BATCH_BUDGET', `${n} items cannot give each of ${worldSize} ranks a batch; use fewer workers or more data`);
  }

  // 1. Seeded permutation (Fisher–Yates), then stable counting sort by size.
  const rng = new Rng(deriveSeed(o.seed, o.epoch, 0x6275646));
  const perm = new Int32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = perm[i]!;
    perm[i] = perm[j]!;
    perm[j] = t;
  }
  let maxSize = 0;
  for (let i = 0; i < n; i++) {
    const s = sizes[i]!;
    if (!(s >= 0)) throw new SigmaError('SGT_BATCH_BUDGET', `item ${i} has size ${s}; sizes must be ≥ 0`);
    if (s > maxSize) maxSize = s;
  }
  const start = new Int32Array(maxSize + 2);
  for (let i = 0; i < n; i++) start[sizes[i]! + 1]!++;
  for (let s = 1; s < start.length; s++) start[s]! += start[s - 1]!;
  const order = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    const i = perm[k]!;
    order[start[sizes[i]!]!++] = i;
  }

  // 2. Greedy cut. Sizes ascend, so the batch's max is the size of the item being added.
  const batches: Int32Array[] = [];
  let b0 = 0;
  for (let k = 0; k < n; ) {
    const s = Math.max(1, sizes[order[k]!]!);
    if (s > budget) {
      if (o.oversize !== 'own-batch') {
        throw new SigmaError(
          'SGT_BATCH_BUDGET',
          `item ${order[k]} has size ${sizes[order[k]!]} > budget ${budget}: raise the budget (train.maxTokens), filter long items, ` +
            `or let oversize items have their own batch`,
        );
      }
      if (k > b0) batches.push(order.slice(b0, k));
      batches.push(order.slice(k, k + 1));
      b0 = ++k;
      continue;
    }
    const count = k - b0 + 1;
    if (s * count > budget || count > maxItems) {
      batches.push(order.slice(b0, k));
      b0 = k;
    } else k++;
  }
  if (b0 < n) batches.push(order.slice(b0, n));

  // 3. Shuffle batch order.
  const brng = new Rng(deriveSeed(o.seed, o.epoch, 0x6261746));
  for (let i = batches.length - 1; i > 0; i--) {
    const j = brng.int(i + 1);
    const t = batches[i]!;
    batches[i] = batches[j]!;
    batches[j] = t;
  }

  // 4. Split until the count divides evenly among ranks (n ≥ worldSize guarantees a splittable batch exists).
  while (batches.length % worldSize !== 0) {
    let best = 0;
    for (let i = 1; i < batches.length; i++) if (batches[i]!.length > batches[best]!.length) best = i;
    const b = batches[best]!;
    if (b.length < 2) {
      throw new SigmaError(
        'SGT_BATCH_BUDGET',
        `${batches.length} single-item batches cannot be shared equally by ${worldSize} ranks (every item fills the budget ` +
          `${budget} alone); raise the budget or change the number of workers`,
      );
    }
    const h = b.length >> 1;
    batches.splice(best, 1, b.slice(0, h), b.slice(h));
  }
  return batches;
}

/** This rank's batches for the epoch: item indices per batch, the same count on every rank. */
export function planBatches(o: BudgetPlanOptions): Int32Array[] {
  if (!Number.isInteger(o.rank) || o.rank < 0 || o.rank >= o.worldSize) {
    throw new SigmaError('SGT_BATCH_BUDGET', `rank ${o.rank} is outside [0, ${o.worldSize})`);
  }
  const all = planAllBatches(o);
  const mine: Int32Array[] = [];
  for (let i = o.rank; i < all.length; i += o.worldSize) mine.push(all[i]!);
  return mine;
}

/** Padded size of a batch (max size × count): what the budget bounds. */
export function paddedSize(sizes: Int32Array, batch: Int32Array): number {
  let m = 0;
  for (const i of batch) m = Math.max(m, sizes[i]!);
  return m * batch.length;
}

/**
 * Item sizes of pairs from their two sides' lengths: 'max' (fairseq's default: a batch's src and tgt tensors each
 * stay within budget) or 'sum'; `extra` tokens are added to each side first (e.g. 1 for </s>).
 */
export function pairSizes(src: Int32Array, tgt: Int32Array, mode: 'max' | 'sum', extra = 0): Int32Array {
  if (src.length !== tgt.length) throw new RangeError(`pairSizes: ${src.length} source lengths vs ${tgt.length} target lengths`);
  const out = new Int32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const a = src[i]! + extra;
    const b = tgt[i]! + extra;
    out[i] = mode === 'max' ? Math.max(a, b) : a + b;
  }
  return out;
}
