// Sharpness: the top-k Hessian eigenvalues of a task's training loss (sum over the GLOBAL batch divided by its global
// denominator) at the current parameters, by Lanczos on Hessian-vector products summed across ranks like gradients.
import * as tf from '@tensorflow/tfjs';

import type { ReplicaState } from '../train/state.js';
import type { Task, TaskBatch } from '../tasks/task.js';
import { unflattenGrads } from '../train/step.js';
import { hessianVectorProduct } from './hvp.js';
import { lanczosTopK } from './lanczos.js';

export interface SharpnessOptions {
  k: number;
  /** Lanczos steps, each one all-reduced H·v (≈ 3 forward passes of the local batch). */
  iterations: number;
  /** Lanczos start vector seed: identical on every rank. */
  seed: number;
  temperature: number;
  labelSmoothing: number;
  /**
   * Examples per double-backprop pass (bounds memory; the sum over chunks is the same). Default: the whole local batch.
   * wasm's heap is 32-bit: the bench model (2.7M params, 64 tokens) aborts at 32 samples per pass; 4 runs.
   */
  microBatch?: number;
}

/** Sums `flat` element-wise across ranks, in place, identically on every rank; identity for one process. */
export type SumReduce = (flat: Float32Array) => Promise<void>;

export interface SharpnessResult {
  /** Top-k eigenvalues of ∇²(mean loss), descending. */
  eigenvalues: number[];
  /** Wall time of the whole computation, all-reduces included. */
  seconds: number;
}

/**
 * Every rank computes H_local·v of the SUM of its local losses (σReparam's u, v held fixed: no power step;
 * training = false: no dropout), appends its denominator, and all-reduces [H_local·v (totalSize) | denominator (1)];
 * dividing by the global denominator gives H·v of the global mean loss. Every rank runs the same Lanczos (same seed,
 * bitwise-equal reduced products), so all return the same eigenvalues. Leaves tf.memory().numTensors as it found it;
 * no tfjs scope is held across an await, so several calls may interleave (simulated ranks in one process).
 */
export async function sharpness<B extends TaskBatch>(
  task: Task<B>, state: ReplicaState, batch: B, opts: SharpnessOptions, reduce: SumReduce,
): Promise<SharpnessResult> {
  const t0 = performance.now();
  const dim = state.totalSize;
  const names = state.order;
  const vars = names.map((n) => state.params.get(n)!);
  const chunks = task.split(batch, Math.max(1, opts.microBatch ?? batch.samples)).filter((c) => c.samples > 0).map((c) => task.tensors(c));
  try {
    const forward = { training: false, temperature: opts.temperature, dropout: 0, attnDropout: 0, seed: 0 };
    // The local denominator: the task's own, from one forward per chunk (read back once).
    let denominator = 0;
    if (chunks.length > 0) {
      const d = tf.tidy(() => tf.addN(chunks.map((ch) => {
        const { outputs } = task.model.forward(state.params, state.buffers, ch.inputs, forward);
        return task.loss(outputs, ch.targets, { labelSmoothing: opts.labelSmoothing }).denominator;
      })));
      denominator = (await d.data())[0];
      d.dispose();
    }

    /** [H_local·v | denominator_local], H of the sum of local losses; one packed readback. */
    const localProduct = async (v: Float64Array | Float32Array): Promise<Float32Array> => {
      const out = new Float32Array(dim + 1);
      out[dim] = denominator;
      if (chunks.length === 0) return out; // nothing here: contributes zeros
      const vec = [...unflattenGrads(state, Float32Array.from(v), 1).values()]; // state.order, like vars
      let packed: tf.Tensor;
      try {
        packed = tf.tidy(() => {
          let sum: tf.Tensor[] | undefined;
          for (const ch of chunks) {
            const loss = (ps: tf.Tensor[]): tf.Scalar => {
              const params = new Map(names.map((n, i) => [n, ps[i]]));
              const { outputs } = task.model.forward(params, state.buffers, ch.inputs, forward);
              return task.loss(outputs, ch.targets, { labelSmoothing: opts.labelSmoothing }).loss;
            };
            const hv = hessianVectorProduct(loss, vars, vec); // one tensor per param, shapes as params
            sum = sum ? sum.map((s, i) => tf.add(s, hv[i])) : hv;
          }
          return tf.concat(sum!.map((t) => t.reshape([-1])));
        });
      } finally {
        tf.dispose(vec);
      }
      out.set((await packed.data()) as Float32Array);
      packed.dispose();
      return out;
    };

    const globalProduct = async (v: Float64Array | Float32Array): Promise<Float32Array> => {
      const flat = await localProduct(v);
      await reduce(flat);
      const n = flat[dim];
      if (!(n > 0)) throw new RangeError(`sharpness: the global diagnostic batch has a denominator of ${n} (after the all-reduce)`);
      const hv = flat.subarray(0, dim);
      for (let i = 0; i < dim; i++) hv[i] /= n;
      return hv;
    };

    const r = await lanczosTopK(globalProduct, dim, { k: opts.k, iterations: opts.iterations, seed: opts.seed });
    return { eigenvalues: r.eigenvalues, seconds: (performance.now() - t0) / 1000 };
  } finally {
    for (const ch of chunks) tf.dispose([...Object.values(ch.inputs), ...Object.values(ch.targets)]);
  }
}
