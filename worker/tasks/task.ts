// The Task seam: what a kind of job means — its model, its data, its batch unit, how a batch becomes tensors and
// micro-batches, its loss and metrics as named sums over a denominator it chooses, and its evaluation as named sums.
// The loop, the Collective and the coordinator only add, divide and report what a task names.
import type * as tf from '@tensorflow/tfjs';
import type { Model } from '../models/model.js';
import type { TensorMap } from '../nn/params.js';
import type { TaskName, BatchUnit } from '../../shared/tasks.js';

export type { TaskName, BatchUnit };

/** An item the data left out (unreadable file, over-long sequence): logged and counted, never silently dropped. */
export interface Skipped {
  path: string;
  reason: string;
}

/** This rank's part of one step (or one evaluation chunk), as host arrays. */
export interface TaskBatch {
  /** Examples (images, sentence pairs, utterances). */
  samples: number;
  /** Batch units in the task's unit (samples, tokens, frames). */
  units: number;
  skipped: Skipped[];
}

/** A task's data for one process: every rank gets the same number of batches per epoch (the all-reduce needs it). */
export interface TaskData<B extends TaskBatch> {
  readonly stepsPerEpoch: number;
  /** Items left out while preparing (cached sources find them all up front). */
  readonly initiallySkipped: Skipped[];
  /** One line for the log: what was loaded. */
  readonly description: string;
  /** This rank's batch of global step `step` (calls come in increasing step order within a generation). */
  trainBatch(step: number, worldSize: number, rank: number): Promise<B>;
  /** The evaluation sets (default DEFAULT_EVAL_SETS: one periodic set named 'val'). */
  readonly evalSets?: readonly EvalSet[];
  /** This rank's slices of evaluation set `set` (a name from evalSets; 'val' when the data has one set), in chunks. */
  valBatches(worldSize: number, rank: number, set?: string): AsyncIterable<B>;
  /** A fixed batch of `n` examples split over ranks (sharpness's diagnostic batch). */
  diagnosticBatch(n: number, worldSize: number, rank: number): Promise<B>;
  close(): Promise<void>;
}

/** A named evaluation set: 'periodic' sets are evaluated at every validation, 'final' ones once after the last step. */
export interface EvalSet {
  name: string;
  when: 'periodic' | 'final';
}

export const DEFAULT_EVAL_SETS: readonly EvalSet[] = [{ name: 'val', when: 'periodic' }];

/** The model in evaluation mode on the weights being evaluated (raw, or the EMA's): what a host-side evaluation runs. */
export interface EvalModel {
  readonly model: Model;
  readonly params: TensorMap;
  readonly buffers: TensorMap;
  readonly temperature: number;
}

/** Device tensors of a batch: what the model reads and what the loss compares against. */
export interface BatchTensors {
  inputs: Record<string, tf.Tensor>;
  targets: Record<string, tf.Tensor>;
}

/** flax-style training sums of one micro-batch: the runtime all-reduces them and divides once by the global denominator. */
export interface LossSums {
  /** Σ of per-unit losses (the gradient is taken of this sum). */
  loss: tf.Scalar;
  /** What loss and metrics are divided by (samples; non-pad target tokens; frames). */
  denominator: tf.Scalar;
  /** Named sums, in the order of Task.stepMetrics. */
  metrics: Record<string, tf.Scalar>;
}

/** An evaluation metric: sum `sum` divided by sum `per`, both named in Task.evalSums. */
export interface EvalMetric {
  name: string;
  sum: string;
  per: string;
}

export interface LossOptions {
  labelSmoothing: number;
}

export interface Task<B extends TaskBatch = TaskBatch> {
  readonly name: TaskName;
  readonly unit: BatchUnit;
  readonly model: Model;
  /** Step metric names (each a sum over the denominator), e.g. ['accuracy']. */
  readonly stepMetrics: readonly string[];
  /** Names of the evaluation sums, in packing order; 'n' (examples) must be one. */
  readonly evalSums: readonly string[];
  /** Evaluation metrics from the sums, e.g. val_top1 = top1 / n. */
  readonly evalMetrics: readonly EvalMetric[];
  /** Examples per evaluation forward. */
  readonly evalChunk: number;
  open(): Promise<TaskData<B>>;
  /** Micro-batches of at most `maxSamples` examples each (gradient accumulation); [batch] when it fits. */
  split(batch: B, maxSamples: number): B[];
  /** Uploads a (non-empty) batch; the caller disposes the tensors. */
  tensors(batch: B): BatchTensors;
  /** Training sums from the model's outputs; runs inside the gradient tape. */
  loss(outputs: Record<string, tf.Tensor>, targets: Record<string, tf.Tensor>, options: LossOptions): LossSums;
  /** Evaluation sums of one chunk (outputs of an evaluation forward), keyed as in evalSums. */
  evaluate?(outputs: Record<string, tf.Tensor>, targets: Record<string, tf.Tensor>): Record<string, tf.Scalar>;
  /**
   * Host-side evaluation of one batch of set `set` — decoding and scoring (beam search and BLEU statistics, CTC
   * decoding and edit distances) — as sums keyed as in evalSums. Used instead of `evaluate` when present; reads back
   * with `await data()` and disposes what it makes.
   */
  evaluateBatch?(batch: B, m: EvalModel, set: string): Promise<Record<string, number>>;
  /**
   * Metrics of set `set` from its all-reduced sums (default: the evalMetrics ratios under their own names). Names must
   * differ between sets, e.g. `wer_${set}`.
   */
  metricsOf?(sums: Readonly<Record<string, number>>, set: string): Record<string, number>;
}

/** Divides all-reduced evaluation sums into the task's metrics (0/0 is NaN: no data). */
export function evalMetricsOf(task: Pick<Task, 'evalSums' | 'evalMetrics'>, sums: ArrayLike<number>, offset = 0): Record<string, number> {
  const at = (name: string): number => sums[offset + task.evalSums.indexOf(name)];
  return Object.fromEntries(task.evalMetrics.map((m) => [m.name, at(m.sum) / at(m.per)]));
}

/** The metrics of one evaluation set from its packed sums: the task's metricsOf, else the evalMetrics ratios. */
export function setMetricsOf(task: Pick<Task, 'evalSums' | 'evalMetrics' | 'metricsOf'>, sums: ArrayLike<number>, offset: number, set: string): Record<string, number> {
  if (!task.metricsOf) return evalMetricsOf(task, sums, offset);
  return task.metricsOf(Object.fromEntries(task.evalSums.map((name, i) => [name, sums[offset + i]])), set);
}
