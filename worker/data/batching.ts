// The batch-plan seam of the samplers: which items each rank takes at each step of an epoch. A planner by count
// (global batches of N items, split over ranks) lives here; a planner by budget (e.g. tokens per worker, from the
// items' sizes) plugs in with the same signature, so a task can shard by its batch unit, not only by count.
import { globalBatches, splitForRank } from './sampler.js';

export interface PlanRequest {
  /** Size of every item in the task's unit (tokens, frames; 1 for samples). */
  sizes: ArrayLike<number>;
  seed: number;
  epoch: number;
  rank: number;
  worldSize: number;
}

/**
 * The rank's batches of one epoch, each a list of item indices. Contract: over all ranks every item appears exactly
 * once per epoch, and every rank gets the same number of batches (the all-reduce needs it; a rank may get an empty
 * batch); a pure function of the request.
 */
export type BatchPlanner = (r: PlanRequest) => Int32Array[];

/** Count planner: the shuffled epoch cut into global batches of `globalBatch` items, each split contiguously over ranks. */
export function countPlanner(globalBatch: number): BatchPlanner {
  return ({ sizes, seed, epoch, rank, worldSize }) =>
    globalBatches(sizes.length, seed, epoch, globalBatch).map((ids) => splitForRank(ids, worldSize, rank));
}
