// σReparam linear layer (Zhai et al. 2023): Ŵ = (γ / σ(W)) · W with σ by power iteration, or a plain linear.
// Layout: W is [in, out] (y = x W + b), the transpose of PyTorch's [out, in]; u is [in] (right singular), v is [out].
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../rng.js';
import { normalize, topSingular } from './spectral.js';
import { SpecBuilder, get, filled, type TensorMap } from './params.js';
import * as fused from '../kernels/fused/index.js';
import { FUSED_KERNELS, fusedKernelsActive, linearKernelName } from '../kernels/composite/index.js';

export type ReparamMode = 'sigma' | 'stats' | 'none';

export interface LinearOptions {
  inFeatures: number;
  outFeatures: number;
  bias?: boolean;
  reparam: ReparamMode;
  gammaInit: 'one' | 'spectral';
  initStd: number;
  /** Extra factor on the initial weights (DeepNorm's β). */
  initGain?: number;
  /** Weights of zero (e.g. a classifier head initialised to zero); σReparam then starts u from a fixed vector. */
  zeroInit?: boolean;
}

/** Names of one linear layer's tensors. */
export interface LinearRef {
  name: string;
  weight: string;
  bias?: string;
  gamma?: string;
  u?: string;
  v?: string;
  inFeatures: number;
  outFeatures: number;
  reparam: ReparamMode;
}

/** Declares a linear layer's parameters and buffers; u starts as W₀'s top right-singular vector. */
export function declareLinear(b: SpecBuilder, name: string, o: LinearOptions, rng: Rng): LinearRef {
  const { inFeatures: n, outFeatures: m } = o;
  const w = new Float32Array(n * m);
  const gain = o.initGain ?? 1;
  if (!o.zeroInit) for (let i = 0; i < w.length; i++) w[i] = rng.truncNormal(o.initStd) * gain;
  const ref: LinearRef = { name, weight: b.param(`${name}.weight`, [n, m], 'weight', w), inFeatures: n, outFeatures: m, reparam: o.reparam };
  if (o.bias !== false) ref.bias = b.param(`${name}.bias`, [m], 'bias', new Float32Array(m));
  if (o.reparam !== 'none') {
    // W is stored [in, out]; the PyTorch-layout matrix is its transpose [out, in], whose right singular vector lives in R^in.
    const wt = transpose(w, n, m); // [out][in] row-major
    const start = new Float64Array(n);
    for (let i = 0; i < n; i++) start[i] = rng.normal32();
    // Residual ‖WᵀWu − σ²u‖ ≤ 1e-10·σ²: u within ~1e-10/gap of the exact vector, ample for a start the training
    // power step refines.
    const { u, sigma } = topSingular(wt, m, n, start, 1000, 1e-10);
    // v = normalize(W_pt u) = normalize(uᵀ W)
    const v = new Float64Array(m);
    for (let j = 0; j < m; j++) {
      let acc = 0;
      for (let i = 0; i < n; i++) acc += u[i] * w[i * m + j];
      v[j] = acc;
    }
    normalize(v);
    ref.u = b.buffer(`${name}.u`, [n], Float32Array.from(u));
    ref.v = b.buffer(`${name}.v`, [m], Float32Array.from(v));
    if (o.reparam === 'sigma') {
      const g = o.gammaInit === 'spectral' && sigma > 0 ? sigma : 1;
      ref.gamma = b.param(`${name}.gamma`, [], 'gamma', filled(1, g));
    }
  }
  return ref;
}

function transpose(w: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(w.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = w[i * cols + j];
  return t;
}

function l2normalize(x: tf.Tensor1D): tf.Tensor1D {
  // eps as in torch.nn.functional.normalize
  return tf.div(x, tf.maximum(tf.norm(x), 1e-12));
}

/**
 * One or more power-iteration steps from the stored u (no gradient: run outside the gradient tape):
 *   v = normalize(W_pt u);  u' = normalize(W_ptᵀ v)   with W_pt = Wᵀ in our layout.
 * Returns the new (u', v); the caller stores them as the layer's buffers. (A formulation with rows and x·xᵀ
 * normalisation takes ~13 kernels instead of ~20, but rounds differently and moves every run's trajectory: the demo's
 * val_top1 went from 0.964 to 0.985. Kept as it was until a change of numerics is decided on its own.)
 */
export function powerStep(w: tf.Tensor2D, u: tf.Tensor1D, iterations: number): { u: tf.Tensor1D; v: tf.Tensor1D } {
  if (fusedKernelsActive() && iterations > 0) {
    // One kernel, the same kernels inside (kernels/composite/formulas.ts powerStepFormula).
    const [uu, vv] = tf.engine().runKernel(FUSED_KERNELS.powerStep, { w, u }, { iterations }) as tf.Tensor[];
    return { u: uu as tf.Tensor1D, v: vv as tf.Tensor1D };
  }
  return tf.tidy(() => {
    let uu = u;
    let vv: tf.Tensor1D = u; // replaced in the first iteration
    for (let i = 0; i < iterations; i++) {
      vv = l2normalize(tf.matMul(uu.reshape([1, -1]), w).reshape([-1]) as tf.Tensor1D); // W_pt u = uᵀ W  → [out]
      uu = l2normalize(tf.matMul(w, vv.reshape([-1, 1])).reshape([-1]) as tf.Tensor1D); // W_ptᵀ v = W v → [in]
    }
    return { u: uu, v: vv };
  });
}

/** σ = vᵀ W_pt u = Σ_j v_j (uᵀ W)_j ; differentiable in W (u, v are constants). */
export function spectralSigma(w: tf.Tensor, u: tf.Tensor, v: tf.Tensor): tf.Scalar {
  return tf.sum(tf.mul(tf.matMul(u.reshape([1, -1]), w as tf.Tensor2D).reshape([-1]), v));
}

/** The effective weight: (γ/σ)·W for σReparam, W otherwise. */
export function effectiveWeight(ref: LinearRef, params: TensorMap, buffers: TensorMap): tf.Tensor2D {
  const w = get(params, ref.weight) as tf.Tensor2D;
  if (ref.reparam !== 'sigma') return w;
  const sigma = spectralSigma(w, get(buffers, ref.u!), get(buffers, ref.v!));
  return tf.mul(w, tf.div(get(params, ref.gamma!), sigma)) as tf.Tensor2D;
}

/**
 * y = x Ŵ + b for x of shape [..., in] → [..., out]. With the fused ops on, one op (σReparam: the γ/σ scale and σ
 * itself inside it, kernels/fused/linear.ts).
 */
export function applyLinear(ref: LinearRef, params: TensorMap, buffers: TensorMap, x: tf.Tensor): tf.Tensor {
  if (fused.fusedOpsEnabled()) {
    const x2 = x.reshape([-1, ref.inFeatures]) as tf.Tensor2D;
    const w = get(params, ref.weight) as tf.Tensor2D;
    const b = ref.bias ? get(params, ref.bias) : undefined;
    const y = ref.reparam === 'sigma'
      ? fused.sigmaLinear(x2, w, get(params, ref.gamma!), get(buffers, ref.u!), get(buffers, ref.v!), b)
      : fused.linear(x2, w, b);
    return x.rank === 2 ? y : y.reshape([...x.shape.slice(0, -1), ref.outFeatures]);
  }
  if (fusedKernelsActive()) {
    // One kernel forward, one backward, with the bits of the composition below (kernels/composite).
    const sigma = ref.reparam === 'sigma';
    const inputs: tf.NamedTensorMap = { x, w: get(params, ref.weight) };
    if (sigma) Object.assign(inputs, { gamma: get(params, ref.gamma!), u: get(buffers, ref.u!), v: get(buffers, ref.v!) });
    if (ref.bias) inputs['b'] = get(params, ref.bias);
    return tf.engine().runKernel(linearKernelName(sigma, ref.bias !== undefined), inputs, {}) as tf.Tensor;
  }
  const w = effectiveWeight(ref, params, buffers);
  const lead = x.shape.slice(0, -1);
  let y: tf.Tensor = tf.matMul(x.reshape([-1, ref.inFeatures]) as tf.Tensor2D, w);
  if (ref.bias) y = tf.add(y, get(params, ref.bias));
  return y.reshape([...lead, ref.outFeatures]);
}
