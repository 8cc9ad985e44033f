// The job's step count and when it validates, from config and the data source's steps per epoch: one rule for the
// distributed worker and the one-process trainer.
import type { Config } from '../../shared/config/index.js';

/** epochs × steps per epoch, capped by train.maxSteps when set. */
export function plannedSteps(config: Readonly<Config>, stepsPerEpoch: number): number {
  const planned = stepsPerEpoch * config.train.epochs;
  return config.train.maxSteps > 0 ? Math.min(planned, config.train.maxSteps) : planned;
}

/** The epoch to validate after `done` steps (every train.evalEveryEpochs epochs, and at the last step), else null. */
export function validationEpoch(config: Readonly<Config>, done: number, stepsPerEpoch: number, totalSteps: number): number | null {
  if (done % stepsPerEpoch !== 0 && done !== totalSteps) return null;
  const e = Math.ceil(done / stepsPerEpoch);
  return e % config.train.evalEveryEpochs === 0 || done === totalSteps ? e : null;
}
