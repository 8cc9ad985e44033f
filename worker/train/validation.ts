// Validation of a replica over this rank's slice of the val set, for any Task: the task's named sums on the raw
// weights and, with an EMA, on the EMA weights — summed over the Collective once, then divided into named metrics.
import type { Collective } from '../comm/collective.js';
import { DEFAULT_EVAL_SETS, setMetricsOf, type TaskBatch, type TaskData } from '../tasks/task.js';
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

/** Which evaluation sets to run: the periodic ones (every validation) and/or the final ones (after the last step). */
export interface ValidateWhich {
  periodic: boolean;
  final: boolean;
}

export async function validate<B extends TaskBatch>(
  trainer: Trainer<B>, data: TaskData<B>, collective: Collective, temperature: number,
  which: ValidateWhich = { periodic: true, final: false },
): Promise<Validation> {
  const task = trainer.task;
  const k = task.evalSums.length;
  const sets = (data.evalSets ?? DEFAULT_EVAL_SETS).filter((s) => (s.when === 'periodic' ? which.periodic : which.final));
  // Per set [raw sums (k) | EMA sums (k)]: one all-reduce for all of them.
  const sums = new Float32Array(2 * k * sets.length);
  for (const [i, set] of sets.entries()) {
    for await (const b of data.valBatches(collective.worldSize, collective.rank, set.name)) {
      await evaluateSums(task, trainer.state, b, temperature, sums, 2 * k * i, set.name);
      if (trainer.ema) await trainer.ema.apply(trainer.state.params, () => evaluateSums(task, trainer.state, b, temperature, sums, 2 * k * i + k, set.name));
    }
  }
  await collective.allReduceSum(sums);
  const n = task.evalSums.indexOf('n');
  return {
    metrics: Object.assign({}, ...sets.map((s, i) => setMetricsOf(task, sums, 2 * k * i, s.name))),
    ema: trainer.ema ? Object.assign({}, ...sets.map((s, i) => setMetricsOf(task, sums, 2 * k * i + k, s.name))) : null,
    n: sets.reduce((acc, _, i) => acc + sums[2 * k * i + n], 0),
  };
}
