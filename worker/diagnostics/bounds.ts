// Per-head Theorem 3.1 entropy lower bounds and per-layer σ(W)/γ of the current replica, computed on the host
// from the parameters (every N steps; never on the step's hot path).
import * as tf from '@tensorflow/tfjs';
import type { VitModel } from '../models/vit.js';
import type { LinearRef } from '../nn/linear.js';
import { effectiveWeight, spectralSigma } from '../nn/linear.js';
import { entropyLowerBound, productSpectralNorm } from '../nn/entropy_bound.js';
import type { ReplicaState } from '../train/state.js';

/** σ = vᵀWu from the stored power-iteration vectors, and γ, for every σReparam / stats linear. */
export function spectralStats(model: VitModel, state: ReplicaState): { name: string; sigma: number; gamma: number | null }[] {
  return model.linears
    .filter((l) => l.reparam !== 'none')
    .map((l) => {
      const sigma = tf.tidy(() => spectralSigma(state.params.get(l.weight)!, state.buffers.get(l.u!)!, state.buffers.get(l.v!)!).dataSync()[0]);
      const gamma = l.gamma ? state.params.get(l.gamma)!.dataSync()[0] : null;
      return { name: l.name, sigma, gamma };
    });
}

/** The effective [in, out] weight of a linear as a host array: (γ/σ)·W for σReparam, W otherwise. */
function effective(l: LinearRef, state: ReplicaState): Float32Array {
  return tf.tidy(() => effectiveWeight(l, state.params, state.buffers).dataSync() as Float32Array);
}

/** Columns [c0, c0 + k) of a row-major [rows, cols] matrix, row-major [rows, k]. */
function columns(w: Float32Array, rows: number, cols: number, c0: number, k: number): Float64Array {
  const out = new Float64Array(rows * k);
  for (let r = 0; r < rows; r++) for (let c = 0; c < k; c++) out[r * k + c] = w[r * cols + c0 + c];
  return out;
}

/**
 * Theorem 3.1 lower bound per layer and head: σ_h = ‖W_Q,h W_K,hᵀ‖₂ · (1/(√dh·τ)) · r², r the largest token norm
 * that entered the layer's attention in the last step, T the number of tokens. (Q/K biases are outside the
 * theorem's setting and are ignored.)
 */
export function entropyBounds(model: VitModel, state: ReplicaState, maxTokenNorm: number[], temperature: number): number[][] {
  const { dim, heads, tokens } = model.arch;
  const dh = dim / heads;
  return model.blocks.map((b, layer) => {
    let wq: Float32Array, wk: Float32Array, cols: number, qOff: number, kOff: number;
    if (b.attn.joint) {
      const w = effective(b.attn.joint, state); // [dim, 3·dim]
      wq = wk = w;
      cols = 3 * dim;
      qOff = 0;
      kOff = dim;
    } else {
      wq = effective(b.attn.q!, state);
      wk = effective(b.attn.k!, state);
      cols = dim;
      qOff = kOff = 0;
    }
    const r = maxTokenNorm[layer] ?? 1;
    const scale = (r * r) / (Math.sqrt(dh) * temperature);
    return Array.from({ length: heads }, (_, h) => {
      const sigma = productSpectralNorm(columns(wq, dim, cols, qOff + h * dh, dh), columns(wk, dim, cols, kOff + h * dh, dh), dim, dh) * scale;
      return entropyLowerBound(sigma, tokens);
    });
  });
}
