// Validation of a replica over this rank's slice of the val set, for any Task: the task's named sums on the raw
// weights and, with an EMA, on the EMA weights — summed over the Collective once, then divided into named metrics.
import type { Collective } from '../comm/collective.js';
import { evalMetricsOf, type TaskBatch, type TaskData } from '../tasks/task.js';
import { evaluateSums } from './step.js';
import type { Trainer } from './trainer.js';

export interface Validation {
  /** The task's metrics, e.g. {val_top1, val_top5, val_loss}. */
  metrics: Record<string, number>;
  /** The same on the EMA weights (optim.emaDecay > 0), else null. */
  ema: Record<string, number> | null;
  /** Examples evaluated over all ranks. */
  n: number;
}

export async function validate<B extends TaskBatch>(trainer: Trainer<B>, data: TaskData<B>, collective: Collective, temperature: number): Promise<Validation> {
  const task = trainer.task;
  const k = task.evalSums.length;
  // [raw sums (k) | EMA sums (k)]: one all-reduce.
  const sums = new Float32Array(2 * k);
  for await (const b of data.valBatches(collective.worldSize, collective.rank)) {
    await evaluateSums(task, trainer.state, b, temperature, sums, 0);
    if (trainer.ema) await trainer.ema.apply(trainer.state.params, () => evaluateSums(task, trainer.state, b, temperature, sums, k));
  }
  await collective.allReduceSum(sums);
  return {
    metrics: evalMetricsOf(task, sums, 0),
    ema: trainer.ema ? evalMetricsOf(task, sums, k) : null,
    n: sums[task.evalSums.indexOf('n')],
  };
}
