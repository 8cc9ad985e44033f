// Per-head Theorem 3.1 entropy lower bounds per attention site and per-linear σ(W)/γ of the current replica,
// computed on the host from the parameters (every N steps; never on the step's hot path). One packed readback each.
import * as tf from '@tensorflow/tfjs';
import type { AttnKind, Model } from '../models/model.js';
import { effectiveWeight, spectralSigma, type LinearRef } from '../nn/linear.js';
import { entropyLowerBound, productSpectralNorm } from '../nn/entropy_bound.js';
import type { ReplicaState } from '../train/state.js';
import { readNamed } from '../train/readback.js';

/** σ = vᵀWu from the stored power-iteration vectors, and γ, for every σReparam / stats linear. */
export async function spectralStats(model: Pick<Model, 'linears'>, state: ReplicaState): Promise<{ name: string; sigma: number; gamma: number | null }[]> {
  const sites = model.linears.filter((l) => l.reparam !== 'none');
  const named = new Map<string, tf.Tensor>();
  tf.tidy(() => {
    for (const l of sites) {
      named.set(`sigma:${l.name}`, tf.keep(spectralSigma(state.params.get(l.weight)!, state.buffers.get(l.u!)!, state.buffers.get(l.v!)!)));
      if (l.gamma) named.set(`gamma:${l.name}`, state.params.get(l.gamma)!);
    }
  });
  try {
    const v = await readNamed(named);
    return sites.map((l) => ({ name: l.name, sigma: v.get(`sigma:${l.name}`)![0], gamma: l.gamma ? v.get(`gamma:${l.name}`)![0] : null }));
  } finally {
    for (const [k, t] of named) if (k.startsWith('sigma:')) t.dispose();
  }
}

/** Columns [c0, c0 + k) of a row-major [rows, cols] matrix, row-major [rows, k]. */
function columns(w: Float32Array, rows: number, cols: number, c0: number, k: number): Float64Array {
  const out = new Float64Array(rows * k);
  for (let r = 0; r < rows; r++) for (let c = 0; c < k; c++) out[r * k + c] = w[r * cols + c0 + c];
  return out;
}

export interface SiteBound {
  attn: AttnKind;
  layer: number;
  /** Theorem 3.1 lower bound per head, nats. */
  heads: number[];
}

/**
 * Theorem 3.1 lower bound per site and head: σ_h = ‖W_Q,h W_K,hᵀ‖₂ · (1/(√dh·τ)) · r², r the largest token norm
 * that entered the site's attention in the last step, T its key length. (Q/K biases are outside the theorem's
 * setting and are ignored.) Sites without Q/K metadata or a static key length have no bound and are left out.
 */
export async function entropyBounds(model: Pick<Model, 'attentionSites'>, state: ReplicaState, maxTokenNorm: number[], temperature: number): Promise<SiteBound[]> {
  const sites = model.attentionSites.map((s, i) => ({ s, i })).filter(({ s }) => s.qk && s.tokens);
  const linears = new Map<string, LinearRef>();
  for (const { s } of sites) for (const l of [s.qk!.q, s.qk!.k]) linears.set(l.name, l);
  const named = new Map<string, tf.Tensor>();
  for (const [name, l] of linears) named.set(name, tf.tidy(() => effectiveWeight(l, state.params, state.buffers).clone()));
  let w: Map<string, Float32Array>;
  try {
    w = await readNamed(named);
  } finally {
    tf.dispose([...named.values()]);
  }
  return sites.map(({ s, i }) => {
    const qk = s.qk!;
    const r = maxTokenNorm[i] ?? 1;
    const scale = (r * r) / (Math.sqrt(qk.headDim) * temperature);
    const wq = w.get(qk.q.name)!;
    const wk = w.get(qk.k.name)!;
    const heads = Array.from({ length: s.heads }, (_, h) => {
      const sigma = productSpectralNorm(
        columns(wq, qk.dim, qk.q.outFeatures, qk.qOffset + h * qk.headDim, qk.headDim),
        columns(wk, qk.dim, qk.k.outFeatures, qk.kOffset + h * qk.headDim, qk.headDim), qk.dim, qk.headDim) * scale;
      return entropyLowerBound(sigma, s.tokens!);
    });
    return { attn: s.kind, layer: s.layer, heads };
  });
}
