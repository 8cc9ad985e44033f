// One training step as pure-ish functions of (model, state, batch, step): power iteration, forward/backward, update.
import * as tf from '@tensorflow/tfjs';
import type { VitModel } from '../models/vit.js';
import { powerStep } from '../nn/linear.js';
import type { ReplicaState } from './state.js';
import { logSoftmax } from '../kernels/ops.js';

export interface Batch {
  /** Images NHWC, normalised: [n, size, size, 3]. */
  x: Float32Array;
  y: Int32Array;
  n: number;
  /** [n, classes] soft targets (mixup/cutmix); when present they replace y (and label smoothing) in the loss. */
  soft?: Float32Array;
}

export interface StepOptions {
  labelSmoothing: number;
  temperature: number;
  dropout: number;
  attnDropout: number;
  /** Seed of this step's dropout masks, from (seed, rank, step). */
  seed: number;
  /** Power-iteration steps before this forward (0: keep u/v, e.g. for the 2nd+ micro-batch of a step). */
  powerIterations: number;
}

export interface StepResult {
  /** Gradients of the SUM of per-sample losses, by parameter name (caller disposes). */
  grads: Map<string, tf.Tensor>;
  lossSum: number;
  correct: number;
  n: number;
  /** Per layer: entropy per head (nats). */
  entropy: Float32Array[];
  maxTokenNorm: number[];
}

/** σReparam's power iteration for every reparametrised linear (u, v ← one step from stored u); no gradient. */
export function powerIterate(model: VitModel, state: ReplicaState, iterations: number): void {
  for (const l of model.linears) {
    if (l.reparam === 'none') continue;
    const w = state.params.get(l.weight)! as unknown as tf.Tensor2D;
    const { u, v } = powerStep(w, state.buffers.get(l.u!) as tf.Tensor1D, iterations);
    state.setBuffer(l.u!, u);
    state.setBuffer(l.v!, v);
  }
}

/** Σ_i CE(logits_i, smooth(y_i)) with label smoothing ε: target = (1−ε)·onehot + ε/K. */
export function crossEntropySum(logits: tf.Tensor2D, labels: tf.Tensor1D, smoothing: number): tf.Scalar {
  const k = logits.shape[1];
  const logp = logSoftmax(logits); // second-order-correct (Hessian-vector products go through this loss)
  const onehot = tf.oneHot(labels, k);
  const target = smoothing > 0 ? tf.add(tf.mul(onehot, 1 - smoothing), smoothing / k) : onehot;
  return tf.neg(tf.sum(tf.mul(target, logp))) as tf.Scalar;
}

export function imagesTensor(model: VitModel, b: Batch): tf.Tensor4D {
  const s = model.options.imageSize;
  return tf.tensor4d(b.x.subarray(0, b.n * s * s * (model.options.channels ?? 3)), [b.n, s, s, model.options.channels ?? 3]);
}

/** Training forward + backward on a local batch; runs the power step first, as the training forward does. */
export function forwardBackward(model: VitModel, state: ReplicaState, batch: Batch, o: StepOptions): StepResult {
  if (model.options.reparam !== 'none' && o.powerIterations > 0) powerIterate(model, state, o.powerIterations);
  if (batch.n === 0) {
    // A rank with no samples this step (uneven last batch) still takes part in the all-reduce with zeros.
    const grads = new Map(state.order.map((n) => [n, tf.zeros(state.shapes.get(n)!)]));
    const heads = model.arch.heads;
    return { grads, lossSum: 0, correct: 0, n: 0, entropy: model.blocks.map(() => new Float32Array(heads)), maxTokenNorm: model.blocks.map(() => 0) };
  }
  const kept: tf.Tensor[] = [];
  let correct = 0;
  const x = imagesTensor(model, batch);
  const y = tf.tensor1d(batch.y.subarray(0, batch.n), 'int32');
  const k = model.options.numClasses;
  const soft = batch.soft ? tf.tensor2d(batch.soft.subarray(0, batch.n * k), [batch.n, k]) : undefined;
  const names = state.order;
  const vars = names.map((n) => state.params.get(n)!);
  const { value, grads } = tf.tidy(() =>
    tf.valueAndGrads((...ps: tf.Tensor[]) => {
      const params = new Map(names.map((n, i) => [n, ps[i]]));
      const { logits, diag } = model.forward(params, state.buffers, x, {
        training: true, temperature: o.temperature, dropout: o.dropout, attnDropout: o.attnDropout, seed: o.seed,
      });
      const hits = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), y), 'int32'));
      kept.push(tf.keep(hits), ...diag.entropy.map((t) => tf.keep(t)), ...diag.maxTokenNorm.map((t) => tf.keep(t)));
      return soft ? tf.neg(tf.sum(tf.mul(soft, logSoftmax(logits)))) as tf.Scalar : crossEntropySum(logits, y, o.labelSmoothing);
    })(vars),
  );
  x.dispose();
  y.dispose();
  soft?.dispose();
  const layers = model.blocks.length;
  correct = kept[0].dataSync()[0];
  const entropy = kept.slice(1, 1 + layers).map((t) => (t.dataSync() as Float32Array).slice());
  const maxTokenNorm = kept.slice(1 + layers).map((t) => t.dataSync()[0]);
  const lossSum = value.dataSync()[0];
  for (const t of kept) t.dispose();
  value.dispose();
  return { grads: new Map(names.map((n, i) => [n, grads[i]])), lossSum, correct, n: batch.n, entropy, maxTokenNorm };
}

/** Copies gradients into one flat Float32Array in state.order (the all-reduce payload), or adds them to it. */
export function flattenGrads(state: ReplicaState, grads: ReadonlyMap<string, tf.Tensor>, out: Float32Array, add = false): Float32Array {
  let off = 0;
  for (let i = 0; i < state.order.length; i++) {
    const d = grads.get(state.order[i])!.dataSync() as Float32Array;
    if (add) for (let j = 0; j < d.length; j++) out[off + j] += d[j];
    else out.set(d, off);
    off += state.sizes[i];
  }
  return out;
}

/** Splits a flat gradient back into named tensors, each multiplied by `scale` (1/global samples, times clip factor). */
export function unflattenGrads(state: ReplicaState, flat: Float32Array, scale: number): Map<string, tf.Tensor> {
  const out = new Map<string, tf.Tensor>();
  let off = 0;
  for (let i = 0; i < state.order.length; i++) {
    const n = state.order[i];
    const size = state.sizes[i];
    const view = new Float32Array(size);
    for (let j = 0; j < size; j++) view[j] = flat[off + j] * scale;
    out.set(n, tf.tensor(view, state.shapes.get(n)!));
    off += size;
  }
  return out;
}

export interface EvalResult {
  /** Top-1 and top-5 hits (top-5 counts all samples when there are ≤ 5 classes). */
  correct: number;
  correct5: number;
  lossSum: number;
  n: number;
}

/** Evaluation forward (σ frozen: no power step; no dropout), in chunks of `batch`. */
export function evaluate(model: VitModel, state: ReplicaState, x: Float32Array, y: Int32Array, n: number, batch: number, temperature = 1): EvalResult {
  const s = model.options.imageSize;
  const c = model.options.channels ?? 3;
  let correct = 0;
  let correct5 = 0;
  let lossSum = 0;
  for (let i = 0; i < n; i += batch) {
    const m = Math.min(batch, n - i);
    const [hits, hits5, loss] = tf.tidy(() => {
      const xs = tf.tensor4d(x.subarray(i * s * s * c, (i + m) * s * s * c), [m, s, s, c]);
      const ys = tf.tensor1d(y.subarray(i, i + m), 'int32');
      const { logits } = model.forward(state.params, state.buffers, xs, { training: false, temperature, dropout: 0, attnDropout: 0, seed: 0 });
      const k = Math.min(5, logits.shape[1]);
      const top = tf.topk(logits, k).indices; // [m, k]
      const in5 = tf.any(tf.equal(top, ys.reshape([-1, 1])), 1);
      return [tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), ys), 'int32')), tf.sum(tf.cast(in5, 'int32')), crossEntropySum(logits, ys, 0)];
    });
    correct += hits.dataSync()[0];
    correct5 += hits5.dataSync()[0];
    lossSum += loss.dataSync()[0];
    hits.dispose();
    hits5.dispose();
    loss.dispose();
  }
  return { correct, correct5, lossSum, n };
}
