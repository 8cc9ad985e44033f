// Multi-head attention with per-head attention entropy, a global temperature τ and causal / key-padding masks.
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../rng.js';
import { declareLinear, applyLinear, type LinearOptions, type LinearRef } from './linear.js';
import type { SpecBuilder, TensorMap } from './params.js';
import { logSoftmax } from '../kernels/ops.js';
import * as fused from '../kernels/fused/index.js';
import { attentionKernelName, fusedKernelsActive } from '../kernels/composite/index.js';

export type AttnType = 'self' | 'cross' | 'causal';

export interface AttentionRef {
  name: string;
  dim: number;
  heads: number;
  /** joint: one [dim, 3·dim] linear for Q,K,V (one σ); separate: q, k, v linears (a σ each). Cross attention is always separate q / kv. */
  qkv: 'joint' | 'separate';
  joint?: LinearRef;
  q?: LinearRef;
  k?: LinearRef;
  v?: LinearRef;
  proj: LinearRef;
}

export function declareAttention(
  b: SpecBuilder,
  name: string,
  dim: number,
  heads: number,
  qkv: 'joint' | 'separate',
  lin: Omit<LinearOptions, 'inFeatures' | 'outFeatures'>,
  rng: Rng,
  valueGain = 1,
): AttentionRef {
  if (dim % heads !== 0) throw new Error(`attention ${name}: dim ${dim} is not divisible by heads ${heads}`);
  const ref: AttentionRef = { name, dim, heads, qkv, proj: undefined as unknown as LinearRef };
  const mk = (suffix: string, out: number, gain = 1) =>
    declareLinear(b, `${name}.${suffix}`, { ...lin, inFeatures: dim, outFeatures: out, initGain: (lin.initGain ?? 1) * gain }, rng);
  if (qkv === 'joint') ref.joint = mk('qkv', 3 * dim);
  else {
    ref.q = mk('q', dim);
    ref.k = mk('k', dim);
    ref.v = mk('v', dim, valueGain);
  }
  ref.proj = mk('proj', dim, valueGain);
  return ref;
}

export interface AttentionInputs {
  /** Queries' source [B, Tq, dim]. */
  x: tf.Tensor3D;
  /** Keys/values' source for cross attention [B, Tk, dim]; defaults to x. */
  context?: tf.Tensor3D;
  causal?: boolean;
  /** 1 for a real key, 0 for padding: [B, Tk]. */
  keyMask?: tf.Tensor2D;
  /** 1 for a real query, 0 for padding: [B, Tq]; defaults to keyMask for self attention. */
  queryMask?: tf.Tensor2D;
  temperature: number;
  attnDropout?: { rate: number; seed: number };
}

export interface AttentionOutput {
  y: tf.Tensor3D;
  /** Mean attention entropy per head [heads] in nats: over valid queries and the batch, over valid keys only. */
  entropy: tf.Tensor1D;
}

function splitHeads(t: tf.Tensor, b: number, len: number, heads: number, dh: number): tf.Tensor4D {
  return tf.transpose(t.reshape([b, len, heads, dh]), [0, 2, 1, 3]) as tf.Tensor4D; // [B, h, T, dh]
}

/**
 * The additive masks (0 allowed, −1e9 masked), each shaped to broadcast over [B, h, Tq, Tk], in the order every path
 * adds them: causal [1, 1, Tq, Tk], then keys [B, 1, 1, Tk]; none: [].
 */
function additiveMasks(inp: AttentionInputs, B: number, Tq: number, Tk: number): tf.Tensor[] {
  const NEG = -1e9;
  const masks: tf.Tensor[] = [];
  if (inp.causal) masks.push(tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([Tq, Tk]), -1, 0)), NEG).reshape([1, 1, Tq, Tk]));
  if (inp.keyMask) masks.push(tf.mul(tf.sub(1, inp.keyMask), NEG).reshape([B, 1, 1, Tk]));
  return masks;
}

/** The queries that count in the entropy: the query mask, else (self-attention) the key mask. */
const queryMaskOf = (inp: AttentionInputs): tf.Tensor | undefined => inp.queryMask ?? (inp.context ? undefined : inp.keyMask);

/** Mean of the row entropies [B, h, Tq] per head over valid queries and the batch → [h]. */
function headEntropy(rowEnt: tf.Tensor, inp: AttentionInputs, B: number, Tq: number): tf.Tensor1D {
  const qMask = queryMaskOf(inp);
  if (!qMask) return tf.mean(rowEnt, [0, 2]) as tf.Tensor1D;
  return tf.div(tf.sum(tf.mul(rowEnt, qMask.reshape([B, 1, Tq])), [0, 2]), tf.maximum(tf.sum(qMask), 1)) as tf.Tensor1D;
}

export function applyAttention(ref: AttentionRef, params: TensorMap, buffers: TensorMap, inp: AttentionInputs): AttentionOutput {
  const dropping = inp.attnDropout !== undefined && inp.attnDropout.rate > 0;
  if (fused.fusedOpsEnabled() && !dropping) return fusedAttention(ref, params, buffers, inp);
  if (fusedKernelsActive() && !dropping) return kernelAttention(ref, params, buffers, inp);
  const { x } = inp;
  const ctx = inp.context ?? x;
  const [B, Tq] = x.shape;
  const Tk = ctx.shape[1];
  const h = ref.heads;
  const dh = ref.dim / h;
  let q: tf.Tensor, k: tf.Tensor, v: tf.Tensor;
  if (ref.joint && !inp.context) {
    const qkv = applyLinear(ref.joint, params, buffers, x).reshape([B * Tq, 3 * ref.dim]); // [B·T, 3·dim]
    // One split, not three slices: its gradient is one concat instead of three zero-padded copies and two adds.
    [q, k, v] = tf.split(qkv, 3, 1);
  } else {
    if (!ref.q || !ref.k || !ref.v) throw new Error(`attention ${ref.name}: cross attention needs separate q/k/v projections`);
    q = applyLinear(ref.q, params, buffers, x);
    k = applyLinear(ref.k, params, buffers, ctx);
    v = applyLinear(ref.v, params, buffers, ctx);
  }
  // Logit scale 1/√dh and temperature folded into q: logits = q kᵀ / (√dh · τ).
  const qh = tf.mul(splitHeads(q, B, Tq, h, dh), 1 / (Math.sqrt(dh) * inp.temperature)); // [B, h, Tq, dh]
  const kh = splitHeads(k, B, Tk, h, dh); // [B, h, Tk, dh]
  const vh = splitHeads(v, B, Tk, h, dh); // [B, h, Tk, dh]
  let logits: tf.Tensor = tf.matMul(qh, kh, false, true); // [B, h, Tq, Tk]
  for (const mask of additiveMasks(inp, B, Tq, Tk)) logits = tf.add(logits, mask);
  // The project's logSoftmax: its gradient is right at second order (tf.logSoftmax's custom gradient is not).
  const logp = logSoftmax(logits); // [B, h, Tq, Tk]
  const p = tf.exp(logp);
  // Row entropy −Σ_j p log p: masked keys have p = 0 and finite log p, so they contribute exactly 0.
  const rowEnt = tf.neg(tf.sum(tf.mul(p, logp), -1)); // [B, h, Tq]
  const entropy = headEntropy(rowEnt, inp, B, Tq);
  const probs = inp.attnDropout && inp.attnDropout.rate > 0 ? tf.dropout(p, inp.attnDropout.rate, undefined, inp.attnDropout.seed) : p;
  const out = tf.transpose(tf.matMul(probs, vh), [0, 2, 1, 3]).reshape([B, Tq, ref.dim]); // [B, Tq, dim]
  const y = applyLinear(ref.proj, params, buffers, out) as tf.Tensor3D;
  return { y, entropy };
}

/**
 * The same attention with the core (heads split, scores, mask, scale, softmax, entropy, × V, heads merged) as one
 * fused op, kernels/fused/attention.ts. Attention dropout needs the probabilities outside it: the unfused path.
 */
function fusedAttention(ref: AttentionRef, params: TensorMap, buffers: TensorMap, inp: AttentionInputs): AttentionOutput {
  const { x } = inp;
  const ctx = inp.context ?? x;
  const [B, Tq] = x.shape;
  const Tk = ctx.shape[1];
  const opts = {
    heads: ref.heads, scale: 1 / (Math.sqrt(ref.dim / ref.heads) * inp.temperature),
    mask: additiveMasks(inp, B, Tq, Tk).reduce<tf.Tensor | undefined>((sum, m) => (sum ? tf.add(sum, m) : m), undefined),
    reduceEntropy: (rows: tf.Tensor) => headEntropy(rows, inp, B, Tq),
  };
  let core: fused.AttentionCoreOutput;
  if (ref.joint && !inp.context) {
    const qkv = applyLinear(ref.joint, params, buffers, x); // [B, T, 3·dim]
    core = fused.attentionCore({ qkv, batch: B, tokens: Tq }, opts, logSoftmax);
  } else {
    if (!ref.q || !ref.k || !ref.v) throw new Error(`attention ${ref.name}: cross attention needs separate q/k/v projections`);
    const q = applyLinear(ref.q, params, buffers, x) as tf.Tensor3D;
    const k = applyLinear(ref.k, params, buffers, ctx) as tf.Tensor3D;
    const v = applyLinear(ref.v, params, buffers, ctx) as tf.Tensor3D;
    core = fused.attentionCore({ q, k, v }, opts, logSoftmax);
  }
  const y = applyLinear(ref.proj, params, buffers, core.y) as tf.Tensor3D;
  return { y, entropy: core.entropy as tf.Tensor1D };
}

/**
 * The same attention with the core (heads split, scores, masks, scale, log-softmax, entropy, × V, heads merged) as
 * one registered kernel with the unfused path's bits (kernels/composite). Attention dropout: the unfused path.
 */
function kernelAttention(ref: AttentionRef, params: TensorMap, buffers: TensorMap, inp: AttentionInputs): AttentionOutput {
  const { x } = inp;
  const ctx = inp.context ?? x;
  const [B, Tq] = x.shape;
  const Tk = ctx.shape[1];
  const joint = ref.joint !== undefined && !inp.context;
  const inputs: tf.NamedTensorMap = {};
  if (joint) inputs['qkv'] = applyLinear(ref.joint!, params, buffers, x);
  else {
    if (!ref.q || !ref.k || !ref.v) throw new Error(`attention ${ref.name}: cross attention needs separate q/k/v projections`);
    Object.assign(inputs, { q: applyLinear(ref.q, params, buffers, x), k: applyLinear(ref.k, params, buffers, ctx), v: applyLinear(ref.v, params, buffers, ctx) });
  }
  // The additive masks as the unfused path adds them, one after the other (same values, same order).
  const masks = additiveMasks(inp, B, Tq, Tk);
  masks.forEach((m, i) => { inputs[`mask${i + 1}`] = m; });
  const qMask = queryMaskOf(inp);
  if (qMask) inputs['queryMask'] = qMask;
  const [out, entropy, ...kept] = tf.engine().runKernel(attentionKernelName(joint, masks.length), inputs,
    { heads: ref.heads, scale: 1 / (Math.sqrt(ref.dim / ref.heads) * inp.temperature) }) as tf.Tensor[];
  tf.dispose(kept); // logits and probabilities: the gradient keeps its own references
  const y = applyLinear(ref.proj, params, buffers, out) as tf.Tensor3D;
  return { y, entropy: entropy as tf.Tensor1D };
}
