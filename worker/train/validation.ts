// Validation of a replica over this rank's slice of the val set: the sums that ranks all-reduce (or that one process
// divides itself), on the raw weights and, with an EMA, on the EMA weights.
import type { DataSource } from '../data/source.js';
import { evaluate } from './step.js';
import type { Trainer } from './trainer.js';

/** [correct, correct5, lossSum, n, emaCorrect, emaCorrect5, emaLossSum]: add across ranks, then divide by n. */
export async function validationSums(trainer: Trainer, data: DataSource, worldSize: number, rank: number, temperature: number): Promise<Float32Array> {
  const sums = new Float32Array(7);
  for await (const b of data.valBatches(worldSize, rank)) {
    const run = () => evaluate(trainer.model, trainer.state, b.x, b.y, b.n, 128, temperature);
    const raw = run();
    const ema = trainer.ema ? await trainer.ema.apply(trainer.state.params, run) : undefined;
    const part = [raw.correct, raw.correct5, raw.lossSum, raw.n, ema?.correct ?? 0, ema?.correct5 ?? 0, ema?.lossSum ?? 0];
    part.forEach((v, i) => (sums[i] += v));
  }
  return sums;
}

export interface Validation {
  top1: number;
  top5: number;
  loss: number;
  n: number;
  ema: { top1: number; top5: number; loss: number } | null;
}

/** Fractions from (all-reduced) sums. */
export function fromSums(sums: Float32Array, withEma: boolean): Validation {
  const n = Math.max(1, sums[3]);
  return {
    top1: sums[0] / n, top5: sums[1] / n, loss: sums[2] / n, n: sums[3],
    ema: withEma ? { top1: sums[4] / n, top5: sums[5] / n, loss: sums[6] / n } : null,
  };
}
