// One micro-batch forward/backward and one evaluation chunk, for any Task: the model's forward, the task's named
// sums, and ONE packed device→host readback each (gradients, sums and diagnostics concatenated on the device).
import * as tf from '@tensorflow/tfjs';
import type { Model } from '../models/model.js';
import type { Task, TaskBatch } from '../tasks/task.js';
import type { ReplicaState } from './state.js';
import { powerUpdates } from '../models/power.js';

/**
 * Layout of the flat Float32Array a micro-batch fills and the ranks sum:
 *   [gradients (state.totalSize, state.order) | loss | denominator | samples | units | step metrics… |
 *    entropy·samples per site and head… ] then, not reduced, [largest token norm per site…].
 */
export class StepLayout {
  readonly grads: number;
  readonly loss: number;
  readonly denominator: number;
  readonly samples: number;
  readonly units: number;
  /** Offset of each step metric, by name. */
  readonly metrics: ReadonlyMap<string, number>;
  /** Offset of each attention site's heads (entropy × samples). */
  readonly entropy: number[];
  /** Floats that are all-reduced. */
  readonly reduced: number;
  /** Offset of the per-site largest token norms (after `reduced`). */
  readonly maxTokenNorm: number;
  readonly total: number;

  constructor(totalSize: number, stepMetrics: readonly string[], model: Pick<Model, 'attentionSites'>) {
    let o = totalSize;
    this.grads = totalSize;
    this.loss = o++;
    this.denominator = o++;
    this.samples = o++;
    this.units = o++;
    this.metrics = new Map(stepMetrics.map((m) => [m, o++]));
    this.entropy = model.attentionSites.map((s) => {
      const at = o;
      o += s.heads;
      return at;
    });
    this.reduced = o;
    this.maxTokenNorm = o;
    this.total = o + model.attentionSites.length;
  }
}

export interface MicroOptions {
  labelSmoothing: number;
  temperature: number;
  dropout: number;
  attnDropout: number;
  /** Seed of this micro-batch's dropout masks, from (seed, rank, step, micro-batch). */
  seed: number;
  /** σReparam power-iteration steps in this forward (first micro-batch of a step), 0 after. */
  powerIterations: number;
}

/**
 * Forward + backward of one micro-batch; stores the model's buffer updates (σReparam u/v) in `state` and writes the
 * packed values into `out` (`add`: adds them to it instead, for accumulation; the token norms take the max). A rank
 * with no samples this step contributes zeros and still takes part in the all-reduce.
 */
export async function forwardBackward<B extends TaskBatch>(
  task: Task<B>, state: ReplicaState, batch: B, layout: StepLayout, o: MicroOptions, out: Float32Array, add: boolean,
): Promise<void> {
  if (batch.samples === 0) {
    // σReparam's u/v still advance, so that every replica keeps bitwise-equal buffers.
    const keys: string[] = [];
    const fresh = tf.tidy(() => {
      const { updates } = powerUpdates(task.model.linears, state.params, state.buffers, o.powerIterations);
      keys.push(...updates.keys());
      return [...updates.values()];
    });
    keys.forEach((k, i) => state.setBuffer(k, fresh[i]));
    if (!add) out.fill(0);
    return;
  }
  const { inputs, targets } = task.tensors(batch);
  const names = state.order;
  const vars = names.map((n) => state.params.get(n)!);
  const kept: tf.Tensor[] = [];
  let updates = new Map<string, tf.Tensor>();
  const packed = tf.tidy(() => {
    const { value, grads } = tf.valueAndGrads((...ps: tf.Tensor[]) => {
      const params = new Map(names.map((n, i) => [n, ps[i]]));
      const r = task.model.forward(params, state.buffers, inputs, {
        training: true, temperature: o.temperature, dropout: o.dropout, attnDropout: o.attnDropout, seed: o.seed,
        powerIterations: o.powerIterations,
      });
      const s = task.loss(r.outputs, targets, { labelSmoothing: o.labelSmoothing });
      const scalars = [s.denominator, tf.scalar(batch.samples), tf.scalar(batch.units), ...task.stepMetrics.map((m) => s.metrics[m])];
      const entropy = r.entropy.map((e) => tf.mul(e, batch.samples)); // per-sample means → sums over samples
      kept.push(tf.keep(tf.concat([tf.stack(scalars), ...entropy])), tf.keep(tf.stack(r.maxTokenNorm)));
      updates = new Map([...r.bufferUpdates].map(([k, t]) => [k, tf.keep(t)]));
      return s.loss;
    })(vars);
    return tf.concat([...grads.map((g) => g.reshape([-1])), value.reshape([1]), kept[0], kept[1]]);
  });
  tf.dispose([...Object.values(inputs), ...Object.values(targets), ...kept]);
  for (const [k, t] of updates) state.setBuffer(k, t);
  const values = (await packed.data()) as Float32Array; // the micro-batch's one readback
  packed.dispose();
  if (!add) {
    out.set(values);
    return;
  }
  for (let j = 0; j < layout.reduced; j++) out[j] += values[j];
  for (let j = layout.reduced; j < layout.total; j++) out[j] = Math.max(out[j], values[j]);
}

/** Evaluation sums of a batch (σ frozen: no power step; no dropout), in chunks of task.evalChunk; one readback per chunk. */
export async function evaluateSums<B extends TaskBatch>(task: Task<B>, state: ReplicaState, batch: B, temperature: number, out: Float32Array, offset = 0, set = 'val'): Promise<void> {
  if (task.evaluateBatch) {
    if (batch.samples === 0) return;
    const sums = await task.evaluateBatch(batch, { model: task.model, params: state.params, buffers: state.buffers, temperature }, set);
    task.evalSums.forEach((name, i) => { out[offset + i] += sums[name] ?? 0; });
    return;
  }
  const evaluate = task.evaluate;
  if (!evaluate) throw new Error(`task ${task.name} has neither evaluate nor evaluateBatch`);
  for (const chunk of task.split(batch, task.evalChunk)) {
    if (chunk.samples === 0) continue;
    const { inputs, targets } = task.tensors(chunk);
    const packed = tf.tidy(() => {
      const { outputs } = task.model.forward(state.params, state.buffers, inputs, { training: false, temperature, dropout: 0, attnDropout: 0, seed: 0 });
      const sums = evaluate.call(task, outputs, targets);
      return tf.stack(task.evalSums.map((n) => sums[n]));
    });
    tf.dispose([...Object.values(inputs), ...Object.values(targets)]);
    const v = (await packed.data()) as Float32Array;
    packed.dispose();
    for (let i = 0; i < v.length; i++) out[offset + i] += v[i];
  }
}

/** Splits a flat gradient into named tensors, each × `scale`, with ONE upload: scaled on the host, split on the device. */
export function unflattenGrads(state: ReplicaState, flat: Float32Array, scale: number, scratch?: Float32Array): Map<string, tf.Tensor> {
  const n = state.totalSize;
  const host = scratch && scratch.length >= n ? scratch.subarray(0, n) : new Float32Array(n);
  for (let j = 0; j < n; j++) host[j] = flat[j] * scale;
  const parts = tf.tidy(() => {
    const all = tf.tensor1d(host);
    return tf.split(all, state.sizes).map((p, i) => p.reshape(state.shapes.get(state.order[i])!));
  });
  return new Map(state.order.map((name, i) => [name, parts[i]]));
}
