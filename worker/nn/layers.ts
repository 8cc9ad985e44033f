// Normalisation, MLP and the Transformer block with its residual arrangement: pre, post, none or DeepNorm.
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../rng.js';
import { declareLinear, applyLinear, type LinearOptions, type LinearRef } from './linear.js';
import { declareAttention, applyAttention, type AttentionRef } from './attention.js';
import { SpecBuilder, filled, get, type TensorMap } from './params.js';
import * as fused from '../kernels/fused/index.js';
import { FUSED_KERNELS, fusedKernelsActive } from '../kernels/composite/index.js';
import { geluForward } from '../kernels/composite/formulas.js';
import { tapeOps } from '../kernels/composite/ops.js';

export type NormMode = 'pre' | 'post' | 'none' | 'deepnorm';

export interface NormRef {
  scale: string;
  shift: string;
  dim: number;
}

export function declareLayerNorm(b: SpecBuilder, name: string, dim: number): NormRef {
  return {
    scale: b.param(`${name}.scale`, [dim], 'norm', filled(dim, 1)),
    shift: b.param(`${name}.shift`, [dim], 'norm', filled(dim, 0)),
    dim,
  };
}

/** LayerNorm over the last axis, eps 1e-6 (ViT's choice). One fused op when the fused ops are on. */
export function applyLayerNorm(ref: NormRef, params: TensorMap, x: tf.Tensor): tf.Tensor {
  if (fused.fusedOpsEnabled()) return fused.layerNorm(x, get(params, ref.scale), get(params, ref.shift), 1e-6);
  if (fusedKernelsActive()) {
    return first(tf.engine().runKernel(FUSED_KERNELS.layerNorm, { x, scale: get(params, ref.scale), shift: get(params, ref.shift) }, { eps: 1e-6 }) as tf.Tensor[]);
  }
  const mean = tf.mean(x, -1, true);
  const xc = tf.sub(x, mean);
  const variance = tf.mean(tf.square(xc), -1, true);
  const y = tf.mul(xc, tf.rsqrt(tf.add(variance, 1e-6)));
  return tf.add(tf.mul(y, get(params, ref.scale)), get(params, ref.shift));
}

/**
 * GELU, tanh approximation ½x(1 + tanh(c(x + a x³))), computed as x·σ(2c(x + a x³)) (the same function: the
 * backend's sigmoid is vectorised where tanh is not, 14× faster on wasm), x³ as x²·x. Twice differentiable with the
 * patched Sigmoid gradient. The formula is kernels/composite/formulas.ts's: as tfjs ops here, one fused kernel when on.
 */
export function gelu(x: tf.Tensor): tf.Tensor {
  if (fused.fusedOpsEnabled()) return fused.gelu(x);
  if (fusedKernelsActive()) return first(tf.engine().runKernel(FUSED_KERNELS.gelu, { x }, {}) as tf.Tensor[]);
  return geluForward(tapeOps, x)[0];
}

/** A fused kernel's first output; the others are intermediates its gradient keeps (its own references): freed here. */
function first(outs: tf.Tensor[]): tf.Tensor {
  tf.dispose(outs.slice(1));
  return outs[0];
}

export interface MlpRef {
  fc1: LinearRef;
  fc2: LinearRef;
}

export interface BlockRef {
  index: number;
  norm: NormMode;
  attn: AttentionRef;
  mlp: MlpRef;
  ln1?: NormRef;
  ln2?: NormRef;
  /** DeepNorm residual scale α (1 otherwise). */
  alpha: number;
  /** Stochastic-depth rate of this block. */
  dropPath: number;
}

export interface BlockOptions {
  dim: number;
  heads: number;
  mlpDim: number;
  qkv: 'joint' | 'separate';
  norm: NormMode;
  depth: number;
  dropPath: number;
  linear: Omit<LinearOptions, 'inFeatures' | 'outFeatures'>;
}

/** DeepNorm (Wang et al. 2022), encoder-only: α = (2N)^¼ on the residual, β = (8N)^−¼ on v, proj and MLP weights. */
export function deepNormConstants(depth: number): { alpha: number; beta: number } {
  return { alpha: Math.pow(2 * depth, 0.25), beta: Math.pow(8 * depth, -0.25) };
}

/**
 * DeepNorm for an encoder-decoder with N encoder and M decoder layers (Wang et al. 2022, Table 1):
 * encoder α = 0.81·(N⁴M)^{1/16}, β = 0.87·(N⁴M)^{−1/16}; decoder α = (3M)^¼, β = (12M)^−¼.
 * β scales the initial V, output-projection and MLP weights of every attention (cross attention included).
 */
export function deepNormEncoderDecoderConstants(
  encoderLayers: number,
  decoderLayers: number,
): { encoder: { alpha: number; beta: number }; decoder: { alpha: number; beta: number } } {
  const n4m = Math.pow(encoderLayers, 4) * decoderLayers;
  return {
    encoder: { alpha: 0.81 * Math.pow(n4m, 1 / 16), beta: 0.87 * Math.pow(n4m, -1 / 16) },
    decoder: { alpha: Math.pow(3 * decoderLayers, 0.25), beta: Math.pow(12 * decoderLayers, -0.25) },
  };
}

export function declareBlock(b: SpecBuilder, index: number, o: BlockOptions, rng: Rng): BlockRef {
  const name = `blocks.${index}`;
  const dn = o.norm === 'deepnorm' ? deepNormConstants(o.depth) : { alpha: 1, beta: 1 };
  // DeepNorm scales V separately from Q/K, which needs separate projections.
  const qkv = o.norm === 'deepnorm' ? 'separate' : o.qkv;
  const attn = declareAttention(b, `${name}.attn`, o.dim, o.heads, qkv, o.linear, rng, dn.beta);
  const lin = (suffix: string, i: number, out: number) =>
    declareLinear(b, `${name}.mlp.${suffix}`, { ...o.linear, inFeatures: i, outFeatures: out, initGain: dn.beta }, rng);
  const mlp = { fc1: lin('fc1', o.dim, o.mlpDim), fc2: lin('fc2', o.mlpDim, o.dim) };
  const ref: BlockRef = { index, norm: o.norm, attn, mlp, alpha: dn.alpha, dropPath: o.dropPath };
  if (o.norm !== 'none') {
    ref.ln1 = declareLayerNorm(b, `${name}.ln1`, o.dim);
    ref.ln2 = declareLayerNorm(b, `${name}.ln2`, o.dim);
  }
  return ref;
}

export interface BlockRunOptions {
  temperature: number;
  training: boolean;
  dropout: number;
  attnDropout: number;
  /** Seed for this block's random masks (derived from seed, rank, step, block). */
  seed: number;
  keyMask?: tf.Tensor2D;
  causal?: boolean;
}

export interface BlockOutput {
  x: tf.Tensor3D;
  entropy: tf.Tensor1D;
  /** Largest token norm entering attention (Theorem 3.1 needs it). */
  maxTokenNorm: tf.Scalar;
}

function dropout(x: tf.Tensor, rate: number, seed: number, training: boolean): tf.Tensor {
  return training && rate > 0 ? tf.dropout(x, rate, undefined, seed) : x;
}

/** Drops a whole residual branch per sample with probability p, rescaling survivors by 1/(1−p). */
function dropPath(x: tf.Tensor3D, p: number, seed: number, training: boolean): tf.Tensor3D {
  if (!training || p <= 0) return x;
  const keep = 1 - p;
  const mask = tf.floor(tf.add(tf.randomUniform([x.shape[0], 1, 1], 0, 1, 'float32', seed), keep));
  return tf.mul(x, tf.div(mask, keep)) as tf.Tensor3D;
}

export function applyBlock(ref: BlockRef, params: TensorMap, buffers: TensorMap, x: tf.Tensor3D, o: BlockRunOptions): BlockOutput {
  const attnIn = (ref.norm === 'pre' ? applyLayerNorm(ref.ln1!, params, x) : x) as tf.Tensor3D;
  // max_t ‖x_t‖ as √(max_t Σ x²): tf.norm's |x|^2 is an Abs and a Pow (powf per element, slow on wasm) per layer.
  const sqNorm = (t: tf.Tensor): tf.Tensor => tf.sqrt(tf.max(tf.sum(tf.square(t), -1)));
  const maxTokenNorm = (fused.fusedOpsEnabled()
    ? fused.untaped(sqNorm, attnIn) // a diagnostic: off the tape
    : fusedKernelsActive() ? tf.engine().runKernel(FUSED_KERNELS.maxRowNorm, { x: attnIn }, {}) as tf.Tensor : sqNorm(attnIn)) as tf.Scalar;
  const a = applyAttention(ref.attn, params, buffers, {
    x: attnIn,
    keyMask: o.keyMask,
    causal: o.causal,
    temperature: o.temperature,
    attnDropout: o.training && o.attnDropout > 0 ? { rate: o.attnDropout, seed: o.seed + 1 } : undefined,
  });
  const branch1 = dropPath(dropout(a.y, o.dropout, o.seed + 2, o.training) as tf.Tensor3D, ref.dropPath, o.seed + 3, o.training);
  let h = residual(ref, params, x, branch1, ref.ln1);
  const mlpIn = ref.norm === 'pre' ? applyLayerNorm(ref.ln2!, params, h) : h;
  const m = applyLinear(ref.mlp.fc2, params, buffers, gelu(applyLinear(ref.mlp.fc1, params, buffers, mlpIn)));
  const branch2 = dropPath(dropout(m, o.dropout, o.seed + 4, o.training) as tf.Tensor3D, ref.dropPath, o.seed + 5, o.training);
  h = residual(ref, params, h, branch2, ref.ln2);
  return { x: h, entropy: a.entropy, maxTokenNorm };
}

function residual(ref: BlockRef, params: TensorMap, x: tf.Tensor3D, branch: tf.Tensor3D, ln: NormRef | undefined): tf.Tensor3D {
  switch (ref.norm) {
    case 'pre':
    case 'none':
      return tf.add(x, branch);
    case 'post':
      return applyLayerNorm(ln!, params, tf.add(x, branch)) as tf.Tensor3D;
    case 'deepnorm':
      return applyLayerNorm(ln!, params, tf.add(tf.mul(x, ref.alpha), branch)) as tf.Tensor3D;
  }
}
