// Token Transformer stacks shared by the encoder-decoder (seq2seq.ts) and the decoder-only LM (lm.ts): tied
// embeddings, sinusoidal positions, encoder and decoder layers (pre/post/none/DeepNorm), full and cached forwards.
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../rng.js';
import { SpecBuilder, get, type TensorMap } from '../nn/params.js';
import { declareLinear, applyLinear, powerStep, type LinearOptions, type LinearRef, type ReparamMode } from '../nn/linear.js';
import { declareAttention, applyAttention, type AttentionRef } from '../nn/attention.js';
import { declareLayerNorm, applyLayerNorm, gelu, type NormMode, type NormRef } from '../nn/layers.js';
import { sinusoidalPositions } from '../nn/positions.js';
import { logSoftmax } from '../kernels/ops.js';

import type { AttentionSite, AttnKind, ForwardResult, ModelForwardOptions } from './model.js';

export type { AttentionSite, AttnKind, ForwardResult, ModelForwardOptions };

/** Widths of the token Transformers: d, heads, FFN, and the depth a bare width name means. */
export interface Width { dim: number; heads: number; ffn: number; layers: number }

export const WIDTHS: Readonly<Record<string, Width>> = {
  /** Unit tests. */
  test: { dim: 16, heads: 2, ffn: 32, layers: 1 },
  /** Fast tests and the deep-MT experiment at small scale. */
  tiny: { dim: 32, heads: 2, ffn: 64, layers: 2 },
  /** The runnable demo (configs/wmt-demo.yaml, lm-demo.yaml). */
  demo: { dim: 128, heads: 4, ffn: 256, layers: 3 },
  /** A fast demo (npm test's translation run): half the demo's width, a quarter of its matmul work per token. */
  small: { dim: 64, heads: 4, ffn: 256, layers: 2 },
  /** Transformer base (Vaswani et al. 2017); also the width of the paper's deep MT models (d512, FFN 2048, 8 heads). */
  base: { dim: 512, heads: 8, ffn: 2048, layers: 6 },
  /** Transformer big. */
  big: { dim: 1024, heads: 16, ffn: 4096, layers: 6 },
};

export interface StackOptions {
  vocabSize: number;
  /** Its embedding row starts at zero (fairseq's padding_idx); masks, not this id, keep padding out of attention. */
  padId: number;
  norm: NormMode;
  reparam: ReparamMode;
  gammaInit: 'one' | 'spectral';
  /** Self-attention projections: one [d, 3d] linear (one σ) or q/k/v (a σ each, as fairseq). Cross attention is always q / k / v. */
  qkv: 'joint' | 'separate';
  /** FFN non-linearity: ReLU as Vaswani et al. and fairseq, or GELU. */
  activation: 'relu' | 'gelu';
  /** Longest sequence the position table covers (source, target or LM block). */
  maxPositions: number;
}

export interface LayerRef {
  index: number;
  self: AttentionRef;
  cross?: AttentionRef;
  fc1: LinearRef;
  fc2: LinearRef;
  lnSelf?: NormRef;
  lnCross?: NormRef;
  lnFfn?: NormRef;
  /** DeepNorm's residual scale α (1 otherwise). */
  alpha: number;
}

export interface StackRef {
  name: string;
  layers: LayerRef[];
  /** Final LayerNorm of a pre-LN stack (fairseq's normalize_before). */
  final?: NormRef;
}

/** Xavier-normal std for a [fanIn, fanOut] weight (truncated at ±2σ by declareLinear). */
function xavierStd(fanIn: number, fanOut: number): number {
  return Math.sqrt(2 / (fanIn + fanOut));
}

/** Declares the tied embedding [V, d]: N(0, d^−½) as fairseq, the padding row zero. */
export function declareEmbedding(b: SpecBuilder, o: StackOptions, dim: number, rng: Rng): string {
  const init = new Float32Array(o.vocabSize * dim);
  const std = Math.pow(dim, -0.5);
  for (let i = 0; i < init.length; i++) init[i] = rng.normal32() * std;
  if (o.padId >= 0 && o.padId < o.vocabSize) init.fill(0, o.padId * dim, (o.padId + 1) * dim);
  return b.param('embed.weight', [o.vocabSize, dim], 'embed', init);
}

/**
 * One encoder layer (self attention, FFN) or decoder layer (causal self attention, optional cross attention, FFN).
 * `beta` (DeepNorm) scales the initial V, output projections and FFN weights; Q and K keep gain 1.
 */
export function declareLayer(
  b: SpecBuilder, name: string, index: number, w: Width, o: StackOptions, withCross: boolean,
  dn: { alpha: number; beta: number }, rng: Rng, linears: LinearRef[],
): LayerRef {
  const lin: Omit<LinearOptions, 'inFeatures' | 'outFeatures'> = { reparam: o.reparam, gammaInit: o.gammaInit, initStd: xavierStd(w.dim, w.dim) };
  // DeepNorm scales V apart from Q/K, which needs separate projections.
  const qkv = o.norm === 'deepnorm' ? 'separate' : o.qkv;
  const self = declareAttention(b, `${name}.self_attn`, w.dim, w.heads, qkv, lin, rng, dn.beta);
  const cross = withCross ? declareAttention(b, `${name}.cross_attn`, w.dim, w.heads, 'separate', lin, rng, dn.beta) : undefined;
  const fc1 = declareLinear(b, `${name}.fc1`, { ...lin, inFeatures: w.dim, outFeatures: w.ffn, initStd: xavierStd(w.dim, w.ffn), initGain: dn.beta }, rng);
  const fc2 = declareLinear(b, `${name}.fc2`, { ...lin, inFeatures: w.ffn, outFeatures: w.dim, initStd: xavierStd(w.ffn, w.dim), initGain: dn.beta }, rng);
  for (const a of [self, cross]) if (a) linears.push(...[a.joint, a.q, a.k, a.v, a.proj].filter((x): x is LinearRef => !!x));
  linears.push(fc1, fc2);
  const ref: LayerRef = { index, self, cross, fc1, fc2, alpha: dn.alpha };
  if (o.norm !== 'none') {
    ref.lnSelf = declareLayerNorm(b, `${name}.self_attn_ln`, w.dim);
    if (withCross) ref.lnCross = declareLayerNorm(b, `${name}.cross_attn_ln`, w.dim);
    ref.lnFfn = declareLayerNorm(b, `${name}.ffn_ln`, w.dim);
  }
  return ref;
}

export function declareStack(
  b: SpecBuilder, name: string, depth: number, w: Width, o: StackOptions, withCross: boolean,
  dn: { alpha: number; beta: number }, rng: Rng, linears: LinearRef[],
): StackRef {
  const layers = Array.from({ length: depth }, (_, i) => declareLayer(b, `${name}.layers.${i}`, i, w, o, withCross, dn, rng, linears));
  return { name, layers, final: o.norm === 'pre' ? declareLayerNorm(b, `${name}.final_ln`, w.dim) : undefined };
}

/** Identity forward, zero gradient (tfjs has no stopGradient): the power step must not backpropagate into W. */
const detach = tf.customGrad(((x: tf.Tensor) => ({
  value: tf.clone(x),
  gradFunc: (dy: tf.Tensor | tf.Tensor[]) => tf.zerosLike(dy as tf.Tensor),
})) as unknown as Parameters<typeof tf.customGrad>[0]);

/** Token embeddings scaled by √d plus sinusoidal positions from `offset`: ids [B, T] int32 → [B, T, d]. */
export function embedTokens(embedding: tf.Tensor2D, ids: tf.Tensor2D, offset: number, maxPositions: number): tf.Tensor3D {
  const [B, T] = ids.shape;
  const d = embedding.shape[1];
  if (offset + T > maxPositions) {
    throw new Error(`sequence of ${offset + T} tokens exceeds the model's maxPositions ${maxPositions}: raise model maxPositions or cut the data`);
  }
  const e = tf.gather(embedding, ids.reshape([-1])).reshape([B, T, d]); // [B, T, d]
  const pos = tf.tensor3d(sinusoidalPositions(T, d, offset), [1, T, d]);
  return tf.add(tf.mul(e, Math.sqrt(d)), pos) as tf.Tensor3D;
}

/** Output logits through the tied embedding: h [B, T, d] → [B, T, V] = h Eᵀ. */
export function tiedLogits(embedding: tf.Tensor2D, h: tf.Tensor3D): tf.Tensor3D {
  const [B, T, d] = h.shape;
  return tf.matMul(h.reshape([B * T, d]) as tf.Tensor2D, embedding, false, true).reshape([B, T, embedding.shape[0]]);
}

/** 1 for a real token, 0 for padding, [B, T] float32: from an explicit mask, from lengths [B], or all ones. */
export function maskOf(inputs: Record<string, tf.Tensor>, maskKey: string, lengthsKey: string, B: number, T: number): tf.Tensor2D {
  const m = inputs[maskKey];
  if (m) {
    if (m.rank !== 2 || m.shape[0] !== B || m.shape[1] !== T) throw new Error(`input ${maskKey}: expected [${B}, ${T}], got [${m.shape}]`);
    return tf.cast(m, 'float32') as tf.Tensor2D;
  }
  const len = inputs[lengthsKey];
  if (len) {
    if (len.rank !== 1 || len.shape[0] !== B) throw new Error(`input ${lengthsKey}: expected [${B}], got [${len.shape}]`);
    return tf.cast(tf.less(tf.range(0, T, 1, 'int32').reshape([1, T]), tf.cast(len, 'int32').reshape([B, 1])), 'float32') as tf.Tensor2D;
  }
  return tf.ones([B, T]) as tf.Tensor2D;
}

export interface RunOptions {
  training: boolean;
  temperature: number;
  dropout: number;
  attnDropout: number;
  seed: number;
}

function dropout(x: tf.Tensor, rate: number, seed: number, training: boolean): tf.Tensor {
  return training && rate > 0 ? tf.dropout(x, rate, undefined, seed) : x;
}

/**
 * One residual sublayer: pre: x + f(LN(x)); post: LN(x + f(x)); none: x + f(x); DeepNorm: LN(α·x + f(x)).
 * `drop` applies the residual dropout to f's output.
 */
function sublayer(norm: NormMode, ln: NormRef | undefined, alpha: number, params: TensorMap, x: tf.Tensor3D,
  f: (input: tf.Tensor3D) => tf.Tensor3D, drop: (t: tf.Tensor3D) => tf.Tensor3D): tf.Tensor3D {
  const input = norm === 'pre' ? (applyLayerNorm(ln!, params, x) as tf.Tensor3D) : x;
  const branch = drop(f(input));
  switch (norm) {
    case 'pre':
    case 'none':
      return tf.add(x, branch);
    case 'post':
      return applyLayerNorm(ln!, params, tf.add(x, branch)) as tf.Tensor3D;
    case 'deepnorm':
      return applyLayerNorm(ln!, params, tf.add(tf.mul(x, alpha), branch)) as tf.Tensor3D;
  }
}

function ffn(layer: LayerRef, params: TensorMap, buffers: TensorMap, activation: 'relu' | 'gelu', x: tf.Tensor3D): tf.Tensor3D {
  const hidden = applyLinear(layer.fc1, params, buffers, x);
  return applyLinear(layer.fc2, params, buffers, activation === 'relu' ? tf.relu(hidden) : gelu(hidden)) as tf.Tensor3D;
}

/** Largest norm over the non-pad tokens of x [B, T, d] (mask [B, T]). */
function maxNorm(x: tf.Tensor3D, mask: tf.Tensor2D): tf.Scalar {
  return tf.max(tf.mul(tf.norm(x, 'euclidean', -1), mask)) as tf.Scalar;
}

export interface StackDiagnostics {
  /** Per layer: self (or causal) attention entropy per head; cross attention's in `cross`. */
  self: tf.Tensor1D[];
  cross: tf.Tensor1D[];
  selfNorm: tf.Scalar[];
  crossNorm: tf.Scalar[];
}

/**
 * A whole stack on x [B, T, d] (embedded): the encoder (keyMask = source mask) or the decoder (causal, keyMask =
 * target mask, cross attention on `memory` [B, S, d] with `memoryMask` [B, S]). Returns the output [B, T, d].
 */
export function applyStack(
  stack: StackRef, o: StackOptions, params: TensorMap, buffers: TensorMap, x: tf.Tensor3D, mask: tf.Tensor2D,
  causal: boolean, r: RunOptions, seedBase: number, memory?: tf.Tensor3D, memoryMask?: tf.Tensor2D,
): { y: tf.Tensor3D; diag: StackDiagnostics } {
  const diag: StackDiagnostics = { self: [], cross: [], selfNorm: [], crossNorm: [] };
  let h = x;
  for (const layer of stack.layers) {
    const seed = (seedBase + 8 * layer.index) & 0x7fffffff;
    const drop = (k: number) => (t: tf.Tensor3D) => dropout(t, r.dropout, seed + k, r.training) as tf.Tensor3D;
    const attnDrop = (k: number) => (r.training && r.attnDropout > 0 ? { rate: r.attnDropout, seed: seed + k } : undefined);
    h = sublayer(o.norm, layer.lnSelf, layer.alpha, params, h, (input) => {
      diag.selfNorm.push(maxNorm(input, mask));
      const a = applyAttention(layer.self, params, buffers, { x: input, causal, keyMask: mask, temperature: r.temperature, attnDropout: attnDrop(1) });
      diag.self.push(a.entropy);
      return a.y;
    }, drop(2));
    if (layer.cross) {
      if (!memory || !memoryMask) throw new Error(`${stack.name}: cross attention needs the encoder output and its mask`);
      h = sublayer(o.norm, layer.lnCross, layer.alpha, params, h, (input) => {
        diag.crossNorm.push(tf.maximum(maxNorm(input, mask), maxNorm(memory, memoryMask)) as tf.Scalar);
        const a = applyAttention(layer.cross!, params, buffers, {
          x: input, context: memory, keyMask: memoryMask, queryMask: mask, temperature: r.temperature, attnDropout: attnDrop(3),
        });
        diag.cross.push(a.entropy);
        return a.y;
      }, drop(4));
    }
    h = sublayer(o.norm, layer.lnFfn, layer.alpha, params, h, (input) => ffn(layer, params, buffers, o.activation, input), drop(5));
  }
  if (stack.final) h = applyLayerNorm(stack.final, params, h) as tf.Tensor3D;
  return { y: h, diag };
}

// ---- Incremental decoding: keys and values cached per layer, one position per step.

/** [B, T, d] → [B, h, T, dh]. */
function splitHeads(t: tf.Tensor, heads: number): tf.Tensor4D {
  const [B, T, d] = t.shape;
  return tf.transpose(t.reshape([B, T, heads, d / heads]), [0, 2, 1, 3]) as tf.Tensor4D;
}

/** Projected keys and values of a context [B, T, d] for attention `ref`, split into heads [B, h, T, dh]. */
export function keysValues(ref: AttentionRef, params: TensorMap, buffers: TensorMap, ctx: tf.Tensor3D): { k: tf.Tensor4D; v: tf.Tensor4D } {
  if (ref.joint) {
    const qkv = applyLinear(ref.joint, params, buffers, ctx); // [B, T, 3d]
    const [B, T] = ctx.shape;
    return {
      k: splitHeads(tf.slice(qkv, [0, 0, ref.dim], [B, T, ref.dim]), ref.heads),
      v: splitHeads(tf.slice(qkv, [0, 0, 2 * ref.dim], [B, T, ref.dim]), ref.heads),
    };
  }
  return { k: splitHeads(applyLinear(ref.k!, params, buffers, ctx), ref.heads), v: splitHeads(applyLinear(ref.v!, params, buffers, ctx), ref.heads) };
}

function queries(ref: AttentionRef, params: TensorMap, buffers: TensorMap, x: tf.Tensor3D): tf.Tensor4D {
  if (ref.joint) {
    const [B, T] = x.shape;
    return splitHeads(tf.slice(applyLinear(ref.joint, params, buffers, x), [0, 0, 0], [B, T, ref.dim]), ref.heads);
  }
  return splitHeads(applyLinear(ref.q!, params, buffers, x), ref.heads);
}

/**
 * Attention of queries q [B, h, Tq, dh] over cached k, v [B, h, Tk, dh] (keyMask [B, Tk] or none), then the output
 * projection: [B, Tq, d]. The same arithmetic as nn/attention's applyAttention (logits scaled through q, −1e9 masks).
 */
function attendCached(ref: AttentionRef, params: TensorMap, buffers: TensorMap, q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D,
  keyMask: tf.Tensor2D | undefined, temperature: number): tf.Tensor3D {
  const [B, h, Tq, dh] = q.shape;
  const Tk = k.shape[2];
  let logits: tf.Tensor = tf.matMul(tf.mul(q, 1 / (Math.sqrt(dh) * temperature)), k, false, true); // [B, h, Tq, Tk]
  if (keyMask) logits = tf.add(logits, tf.mul(tf.sub(1, keyMask), -1e9).reshape([B, 1, 1, Tk]));
  const p = tf.exp(logSoftmax(logits));
  const out = tf.transpose(tf.matMul(p, v), [0, 2, 1, 3]).reshape([B, Tq, h * dh]); // [B, Tq, d]
  return applyLinear(ref.proj, params, buffers, out) as tf.Tensor3D;
}

/** Per decoder layer: self-attention keys/values of the positions so far, [B, h, t, dh] (absent before step 0). */
export interface SelfCache { k?: tf.Tensor4D; v?: tf.Tensor4D }
/** Per decoder layer: cross-attention keys/values of the encoder output, [B, h, S, dh], computed once. */
export interface CrossCache { k: tf.Tensor4D; v: tf.Tensor4D }

/** Cross-attention keys/values of every decoder layer from the encoder output (once per source batch). */
export function crossCaches(stack: StackRef, params: TensorMap, buffers: TensorMap, memory: tf.Tensor3D): CrossCache[] {
  return stack.layers.map((l) => {
    if (!l.cross) throw new Error(`${stack.name}: layer ${l.index} has no cross attention`);
    return keysValues(l.cross, params, buffers, memory);
  });
}

/**
 * One decoding position through the decoder stack (evaluation mode): x [B, 1, d] embedded at the current position;
 * returns the stack output [B, 1, d] and each layer's self cache grown by this position.
 */
export function stepStack(
  stack: StackRef, o: StackOptions, params: TensorMap, buffers: TensorMap, x: tf.Tensor3D, self: SelfCache[],
  temperature: number, cross?: CrossCache[], memoryMask?: tf.Tensor2D,
): { y: tf.Tensor3D; self: SelfCache[] } {
  const next: SelfCache[] = [];
  let h = x;
  const noDrop = (t: tf.Tensor3D) => t;
  for (const layer of stack.layers) {
    const c = self[layer.index] ?? {};
    h = sublayer(o.norm, layer.lnSelf, layer.alpha, params, h, (input) => {
      const q = queries(layer.self, params, buffers, input);
      const kv = keysValues(layer.self, params, buffers, input);
      const k = c.k ? tf.concat([c.k, kv.k], 2) as tf.Tensor4D : kv.k;
      const v = c.v ? tf.concat([c.v, kv.v], 2) as tf.Tensor4D : kv.v;
      next.push({ k, v });
      return attendCached(layer.self, params, buffers, q, k, v, undefined, temperature);
    }, noDrop);
    if (layer.cross) {
      if (!cross || !memoryMask) throw new Error(`${stack.name}: cross attention needs the cross caches and the source mask`);
      const cc = cross[layer.index];
      h = sublayer(o.norm, layer.lnCross, layer.alpha, params, h, (input) =>
        attendCached(layer.cross!, params, buffers, queries(layer.cross!, params, buffers, input), cc.k, cc.v, memoryMask, temperature), noDrop);
    }
    h = sublayer(o.norm, layer.lnFfn, layer.alpha, params, h, (input) => ffn(layer, params, buffers, o.activation, input), noDrop);
  }
  if (stack.final) h = applyLayerNorm(stack.final, params, h) as tf.Tensor3D;
  return { y: h, self: next };
}

/** Sites of one stack, for the Model's attentionSites (names are the attention modules' parameter prefixes). */
export function sitesOf(stack: StackRef, kind: AttnKind, heads: number): AttentionSite[] {
  return stack.layers.map((l) => ({ name: (kind === 'cross' ? l.cross! : l.self).name, layer: l.index, kind, heads }));
}

/** Decodes "<width>", "<N>L-<M>L" or "<width>-<N>L-<M>L" (encoder-decoder) / "<width>-<M>L", "<M>L" (decoder-only). */
export function parseDepthVariant(name: string, encoderDecoder: boolean): { width: Width; widthName: string; encoder: number; decoder: number } | undefined {
  const re = encoderDecoder ? /^(?:([a-z]+)-)?(\d+)L-(\d+)L$/ : /^(?:([a-z]+)-)?(\d+)L$/;
  const m = re.exec(name);
  if (m) {
    const widthName = m[1] ?? 'base';
    const width = WIDTHS[widthName];
    if (!width) return undefined;
    const encoder = encoderDecoder ? Number(m[2]) : 0;
    const decoder = Number(encoderDecoder ? m[3] : m[2]);
    if (decoder < 1 || (encoderDecoder && encoder < 1)) return undefined;
    return { width, widthName, encoder, decoder };
  }
  const width = WIDTHS[name];
  return width ? { width, widthName: name, encoder: encoderDecoder ? width.layers : 0, decoder: width.layers } : undefined;
}

/** tf.tidy for results holding tensors in plain objects/arrays (caches): tidy keeps every tensor it finds in them. */
export function tidyObject<T>(fn: () => T): T {
  return tf.tidy(fn as unknown as () => tf.TensorContainer) as unknown as T;
}
