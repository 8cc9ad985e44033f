// Sharpness: the top-k Hessian eigenvalues of the training loss (mean cross-entropy over the GLOBAL batch) at the
// current parameters, by Lanczos on Hessian-vector products that are summed across ranks like gradients.
import * as tf from '@tensorflow/tfjs';

import type { VitModel } from '../models/vit.js';
import type { ReplicaState } from '../train/state.js';
import { crossEntropySum, flattenGrads, unflattenGrads } from '../train/step.js';
import { hessianVectorProduct } from './hvp.js';
import { lanczosTopK } from './lanczos.js';

export interface SharpnessBatch {
  /** This rank's diagnostic images, NHWC [n, size, size, channels]. */
  x: Float32Array;
  y: Int32Array;
  /** Local samples (may be 0 on a rank with none). */
  n: number;
}

export interface SharpnessOptions {
  k: number;
  /** Lanczos steps, each one all-reduced H·v (≈ 3 forward passes of the local batch). */
  iterations: number;
  /** Lanczos start vector seed: identical on every rank. */
  seed: number;
  temperature: number;
  labelSmoothing: number;
  /**
   * Samples per double-backprop pass (bounds memory; the sum over chunks is the same). Default: the whole local batch.
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
 * Every rank computes H_local·v of the SUM of its local per-sample losses (σReparam's u, v held fixed: no power
 * step; training = false: no dropout), appends its n, and all-reduces [H_local·v (totalSize) | n (1)]; dividing by
 * the global n gives H·v of the global mean loss. Every rank runs the same Lanczos (same seed, bitwise-equal
 * reduced products), so all return the same eigenvalues. Leaves tf.memory().numTensors as it found it; no tfjs
 * scope is held across an await, so several calls may interleave (simulated ranks in one process).
 */
export async function sharpness(
  model: VitModel, state: ReplicaState, batch: SharpnessBatch, opts: SharpnessOptions, reduce: SumReduce,
): Promise<SharpnessResult> {
  const t0 = performance.now();
  const s = model.options.imageSize;
  const c = model.options.channels ?? 3;
  const per = s * s * c;
  if (batch.x.length < batch.n * per || batch.y.length < batch.n) {
    throw new RangeError(`sharpness: batch of n=${batch.n} needs ${batch.n * per} image values and ${batch.n} labels, got ${batch.x.length} and ${batch.y.length}`);
  }
  const dim = state.totalSize;
  const names = state.order;
  const vars = names.map((n) => state.params.get(n)!);
  const micro = Math.max(1, Math.min(opts.microBatch ?? batch.n, batch.n));
  const chunks: { x: tf.Tensor4D; y: tf.Tensor1D }[] = [];
  try {
    for (let i = 0; i < batch.n; i += micro) {
      const m = Math.min(micro, batch.n - i);
      chunks.push({
        x: tf.tensor4d(batch.x.slice(i * per, (i + m) * per), [m, s, s, c]),
        y: tf.tensor1d(batch.y.slice(i, i + m), 'int32'),
      });
    }
    const forward = { training: false, temperature: opts.temperature, dropout: 0, attnDropout: 0, seed: 0 };

    /** [H_local·v | n_local], H of the sum of local losses; synchronous, no tensor survives. */
    const localProduct = (v: Float64Array | Float32Array): Float32Array => {
      const out = new Float32Array(dim + 1);
      out[dim] = batch.n;
      if (chunks.length === 0) return out; // no samples here: contributes zeros (and n = 0)
      const vec = [...unflattenGrads(state, Float32Array.from(v), 1).values()]; // state.order, like vars
      try {
        for (const ch of chunks) {
          const loss = (ps: tf.Tensor[]): tf.Scalar => {
            const params = new Map(names.map((n, i) => [n, ps[i]]));
            const { logits } = model.forward(params, state.buffers, ch.x, forward);
            return crossEntropySum(logits, ch.y, opts.labelSmoothing);
          };
          const hv = hessianVectorProduct(loss, vars, vec); // one tensor per param, shapes as params
          flattenGrads(state, new Map(names.map((n, i) => [n, hv[i]])), out, true);
          tf.dispose(hv);
        }
      } finally {
        tf.dispose(vec);
      }
      return out;
    };

    const globalProduct = async (v: Float64Array | Float32Array): Promise<Float32Array> => {
      const flat = localProduct(v);
      await reduce(flat);
      const n = flat[dim];
      if (!(n > 0)) throw new RangeError(`sharpness: the global diagnostic batch has n=${n} samples (after the all-reduce)`);
      const hv = flat.subarray(0, dim);
      for (let i = 0; i < dim; i++) hv[i] /= n;
      return hv;
    };

    const r = await lanczosTopK(globalProduct, dim, { k: opts.k, iterations: opts.iterations, seed: opts.seed });
    return { eigenvalues: r.eigenvalues, seconds: (performance.now() - t0) / 1000 };
  } finally {
    for (const ch of chunks) tf.dispose([ch.x, ch.y]);
  }
}
