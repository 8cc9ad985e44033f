// The fused kernels' formulas, forward and backward, over `Ops<T>` (ops.ts). Each forward issues the kernels of the
// unfused composition in nn/ in the same order with the same operands, and each backward issues those that tfjs's
// autodiff (with our patched gradients, gradients.ts) runs for that composition, minus the float32→float32 Casts and
// same-shape Reshapes, which move no value. So a fused kernel gives the unfused path's bits, forward and backward
// (tests check this bitwise), and the backward run as ops is the exact gradient for Hessian-vector products.
import type { Ops } from './ops.js';

// ---- σReparam power step (nn/linear.ts powerStep; no gradient) ----------------------------------------------------

/** x / max(‖x‖₂, 1e-12), as tf.norm computes ‖x‖: √Σ pow(|x|, 2). x [n]. */
function l2normalize<T>(o: Ops<T>, x: T): T {
  return o.div(x, o.maximum(o.reshape(o.sqrt(o.sum(o.pow(o.abs(x), 2))), []), 1e-12));
}

/** v = normalize(uᵀW), u' = normalize(W v), `iterations` times; W [in, out], u [in] → [u' [in], v [out]]. */
export function powerStepFormula<T>(o: Ops<T>, w: T, u: T, iterations: number): [T, T] {
  let uu = u;
  let vv = u;
  for (let i = 0; i < iterations; i++) {
    vv = l2normalize(o, o.reshape(o.matMul(o.reshape(uu, [1, -1]), w), [-1]));
    uu = l2normalize(o, o.reshape(o.matMul(w, o.reshape(vv, [-1, 1])), [-1]));
  }
  return [uu, vv];
}

// ---- linear: y = x Ŵ + b, Ŵ = (γ/σ)·W with σ = Σ (uᵀW) ⊙ v, or Ŵ = W ------------------------------------------------

export interface LinearInputs<T> {
  x: T; // [..., in]
  w: T; // [in, out]
  b?: T; // [out]
  gamma?: T; // [] (σReparam)
  u?: T; // [in]
  v?: T; // [out]
}

/** σ and the scale s = γ/σ (σReparam), as nn/linear.ts spectralSigma and effectiveWeight compute them. */
function sigmaScale<T>(o: Ops<T>, w: T, gamma: T, u: T, v: T): { sigma: T; s: T } {
  const sigma = o.sum(o.mul(o.reshape(o.matMul(o.reshape(u, [1, -1]), w), [-1]), v));
  return { sigma, s: o.div(gamma, sigma) };
}

/** [N, out] → y [..., out]. */
export function linearForward<T>(o: Ops<T>, p: LinearInputs<T>): T {
  const [inF, outF] = o.shape(p.w);
  const weff = p.gamma !== undefined ? o.mul(p.w, sigmaScale(o, p.w, p.gamma, p.u!, p.v!).s) : p.w;
  let y = o.matMul(o.reshape(p.x, [-1, inF]), weff);
  if (p.b !== undefined) y = o.add(y, p.b);
  return o.reshape(y, [...o.shape(p.x).slice(0, -1), outF]);
}

/**
 * Gradients [dx, dW, dγ | undefined, db | undefined] of linearForward for the output gradient dy [..., out]:
 *   dx = dy Ŵᵀ;  dŴ = xᵀ dy;  db = Σ_rows dy;  dW = dŴ·s + uᵀ(dσ·v) with c = Σ dŴ ⊙ W, dγ = c/σ, dσ = −cγ/σ².
 */
export function linearBackward<T>(o: Ops<T>, dy: T, p: LinearInputs<T>, bias: boolean): [T, T, T | undefined, T | undefined] {
  const [inF, outF] = o.shape(p.w);
  const x2 = o.reshape(p.x, [-1, inF]);
  const dy2 = o.reshape(dy, [-1, outF]);
  const db = bias ? o.reshape(o.sum(dy2, [0]), [outF]) : undefined;
  if (p.gamma === undefined) {
    const dx = o.reshape(o.matMul(dy2, p.w, false, true), o.shape(p.x));
    return [dx, o.matMul(x2, dy2, true, false), undefined, db];
  }
  const { sigma, s } = sigmaScale(o, p.w, p.gamma, p.u!, p.v!);
  const weff = o.mul(p.w, s);
  const dx = o.reshape(o.matMul(dy2, weff, false, true), o.shape(p.x));
  const dWeff = o.matMul(x2, dy2, true, false); // [in, out]
  const dWdirect = o.mul(dWeff, s);
  const ds = o.reshape(o.sum(o.mul(dWeff, p.w), [0, 1]), []);
  const dGamma = o.div(ds, sigma);
  const dSigma = o.neg(o.div(o.mul(ds, p.gamma), o.square(sigma)));
  // Sum's gradient broadcasts dσ through a ones tensor: x·1 is exact, so broadcasting in the product is the same.
  const duw = o.mul(o.reshape(dSigma, [1]), p.v!); // [out]
  const dWsigma = o.matMul(o.reshape(p.u!, [1, -1]), o.reshape(duw, [1, outF]), true, false); // [in, out]
  return [dx, o.add(dWdirect, dWsigma), dGamma, db];
}

// ---- GELU, tanh approximation (nn/layers.ts gelu) -----------------------------------------------------------------

// ½x(1 + tanh(z)) = x·σ(2z): the same function, computed by the backend's sigmoid (XNNPACK's vectorised kernel on
// wasm: 1.8 ms for 1.6 M values, against 24.7 ms for its scalar tanh).
const GELU_2C = 2 * Math.sqrt(2 / Math.PI);
const GELU_A = 0.044715;

/** 2c(x + a x³), x³ as x²·x. */
function geluInner<T>(o: Ops<T>, x: T): T {
  return o.mul(o.add(x, o.mul(o.mul(o.square(x), x), GELU_A)), GELU_2C);
}

/** x·σ(2c(x + a x³)) → [y, s = σ(·)] (s: kept for the backward, as the patched Sigmoid gradient recomputes it). */
export function geluForward<T>(o: Ops<T>, x: T): [T, T] {
  const s = o.sigmoid(geluInner(o, x));
  return [o.mul(x, s), s];
}

/**
 * dx = dy·s + 2c·dy·x·s(1 − s)·(1 + 3a x²), as autodiff sums its four terms (x·s; x inside the sum; x³ = x²·x reaches
 * x twice: through the product and through the square). `s` = σ(·) from the forward, or recomputed (the same bits)
 * when absent.
 */
export function geluBackward<T>(o: Ops<T>, dy: T, x: T, s?: T): T {
  const ss = s ?? o.sigmoid(geluInner(o, x));
  const dFromProduct = o.mul(dy, ss); // x·s: the factor x
  const dS = o.mul(dy, x);
  const dInner = o.mul(dS, o.mul(ss, o.sub(1, ss))); // the Sigmoid gradient (kernels/gradients.ts)
  const dSum = o.mul(dInner, GELU_2C); // d(x + a x³)
  const dCube = o.mul(dSum, GELU_A);
  const dFromCube = o.mul(dCube, o.square(x)); // x²·x: the factor x
  const dFromSquare = o.mul(o.mul(dCube, x), o.mul(x, 2)); // x²·x: the factor x², through the square
  return o.add(o.add(o.add(dFromProduct, dSum), dFromCube), dFromSquare);
}

// ---- LayerNorm over the last axis (nn/layers.ts applyLayerNorm) ----------------------------------------------------

/** → [y, xc = x − μ, ve = var + ε] (xc, ve: kept for the backward, as autodiff keeps them). */
export function layerNormForward<T>(o: Ops<T>, x: T, scale: T, shift: T, eps: number): [T, T, T] {
  const xc = o.sub(x, o.mean(x, -1, true));
  const ve = o.add(o.mean(o.square(xc), -1, true), eps);
  const y = o.mul(xc, o.rsqrt(ve));
  return [o.add(o.mul(y, scale), shift), xc, ve];
}

/**
 * [dx, dscale, dshift] of layerNormForward, term by term as autodiff computes them (r = ve^−½):
 *   dŷ = d·scale;  dxc = dŷ·r + (−½ Σ dŷ·xc · ve^−1.5 / D)·2xc;  dx = dxc − Σ dxc / D.
 * Autodiff adds the two terms of dx into x's gradient one at a time, after whatever else x feeds (a residual):
 * here they are summed first, the one difference in rounding from the unfused path. `kept`: [xc, ve] from the
 * forward, or recomputed from x (the same bits) when absent.
 */
export function layerNormBackward<T>(o: Ops<T>, d: T, x: T, scale: T, eps: number, kept?: [T, T]): [T, T, T] {
  const shape = o.shape(x);
  const last = shape.length - 1;
  const lead = shape.slice(0, -1).map((_, i) => i);
  const D = shape[last];
  const keep = [...shape.slice(0, -1), 1];
  const [xc, ve] = kept ?? (() => {
    const c = o.sub(x, o.mean(x, -1, true));
    return [c, o.add(o.mean(o.square(c), -1, true), eps)] as [T, T];
  })();
  const r = o.rsqrt(ve);
  const y = o.mul(xc, r);
  const dShift = o.reshape(o.sum(d, lead), [D]);
  const dy = o.mul(d, scale);
  const dScale = o.reshape(o.sum(o.mul(d, y), lead), [D]);
  const dxc1 = o.mul(dy, r);
  const dr = o.reshape(o.sum(o.mul(dy, xc), [last]), keep);
  const dve = o.neg(o.div(dr, o.mul(o.pow(ve, 1.5), 2)));
  // Mean's gradient broadcasts through a ones tensor before dividing by D: the same values broadcast here.
  const dsq = o.div(dve, D);
  const dxc = o.add(dxc1, o.mul(dsq, o.mul(xc, 2)));
  const dMean = o.reshape(o.neg(o.sum(dxc, [last])), keep);
  return [o.add(dxc, o.div(dMean, D)), dScale, dShift];
}

// ---- AdamW, one parameter tensor (optim/adamw.ts; off the tape) ----------------------------------------------------

export interface AdamWAttrs {
  beta1: number;
  beta2: number;
  eps: number;
  /** The parameter's learning rate (group scale included) and weight decay. */
  lr: number;
  weightDecay: number;
  /** Bias corrections 1 − β₁ᵗ, 1 − β₂ᵗ. */
  bc1: number;
  bc2: number;
}

/** → [p', m', v']:  m' = β₁m + (1−β₁)g;  v' = β₂v + (1−β₂)g²;  p' = p(1 − lr·wd) − (m'/(√v'/√bc2 + ε))·lr/bc1. */
export function adamwFormula<T>(o: Ops<T>, p: T, g: T, m: T, v: T, a: AdamWAttrs): [T, T, T] {
  const m1 = o.add(o.mul(m, a.beta1), o.mul(g, 1 - a.beta1));
  const v1 = o.add(o.mul(v, a.beta2), o.mul(o.square(g), 1 - a.beta2));
  const decayed = a.weightDecay > 0 ? o.mul(p, 1 - a.lr * a.weightDecay) : p;
  const denom = o.add(o.div(o.sqrt(v1), Math.sqrt(a.bc2)), a.eps);
  return [o.sub(decayed, o.mul(o.div(m1, denom), a.lr / a.bc1)), m1, v1];
}

// ---- largest token norm (a diagnostic: no gradient) ---------------------------------------------------------------

/** max_t ‖x_t‖ over the last axis as √(max Σ x²); x [..., d] → []. */
export function maxRowNormFormula<T>(o: Ops<T>, x: T): T {
  return o.sqrt(o.max(o.sum(o.square(x), -1)));
}

// ---- attention core (nn/attention.ts applyAttention, without dropout) ---------------------------------------------

export interface AttentionAttrs {
  heads: number;
  /** 1/(√dh·τ), applied to q. */
  scale: number;
}

export interface AttentionInputs<T> {
  /** Joint projection [B, Tq, 3·dim] (self attention), or q [B, Tq, dim], k and v [B, Tk, dim]. */
  qkv?: T;
  q?: T;
  k?: T;
  v?: T;
  /** Additive masks, added to the logits in this order (0 allowed, −1e9 masked): causal [1,1,Tq,Tk], keys [B,1,1,Tk]. */
  mask1?: T;
  mask2?: T;
  /** 1 for a real query [B, Tq]: the entropy is averaged over real queries only. */
  queryMask?: T;
}

/** [B, T, dim] → [B, h, T, dh] */
function splitHeads<T>(o: Ops<T>, t: T, b: number, len: number, h: number): T {
  const dh = o.shape(t)[o.shape(t).length - 1] / h;
  return o.transpose(o.reshape(t, [b, len, h, dh]), [0, 2, 1, 3]);
}

interface Projections<T> { q: T; k: T; v: T; b: number; tq: number; tk: number; dim: number }

function projections<T>(o: Ops<T>, p: AttentionInputs<T>): Projections<T> {
  if (p.qkv !== undefined) {
    const [b, t, d3] = o.shape(p.qkv);
    const [q, k, v] = o.split(o.reshape(p.qkv, [b * t, d3]), 3, 1);
    return { q, k, v, b, tq: t, tk: t, dim: d3 / 3 };
  }
  const [b, tq, dim] = o.shape(p.q!);
  return { q: p.q!, k: p.k!, v: p.v!, b, tq, tk: o.shape(p.k!)[1], dim };
}

/** The heads [B, h, T, dh], q scaled. */
function heads<T>(o: Ops<T>, pr: Projections<T>, a: AttentionAttrs): { qh: T; kh: T; vh: T } {
  const h = a.heads;
  return {
    qh: o.mul(splitHeads(o, pr.q, pr.b, pr.tq, h), a.scale),
    kh: splitHeads(o, pr.k, pr.b, pr.tk, h),
    vh: splitHeads(o, pr.v, pr.b, pr.tk, h),
  };
}

/** Scaled logits q kᵀ [B, h, Tq, Tk] with the masks added. */
function scores<T>(o: Ops<T>, qh: T, kh: T, p: AttentionInputs<T>): T {
  let logits = o.matMul(qh, kh, false, true);
  if (p.mask1 !== undefined) logits = o.add(logits, p.mask1);
  if (p.mask2 !== undefined) logits = o.add(logits, p.mask2);
  return logits;
}

/**
 * → [y [B, Tq, dim], entropy per head [h] (mean over real queries and the batch, nats), logits, probabilities]
 * (the last two [B, h, Tq, Tk]: kept for the backward, as autodiff keeps them).
 */
export function attentionForward<T>(o: Ops<T>, p: AttentionInputs<T>, a: AttentionAttrs): [T, T, T, T] {
  const pr = projections(o, p);
  const { qh, kh, vh } = heads(o, pr, a);
  const logits = scores(o, qh, kh, p);
  const logp = o.logSoftmax(logits);
  const probs = o.exp(logp);
  const rowEnt = o.neg(o.sum(o.mul(probs, logp), -1)); // [B, h, Tq]
  const entropy = p.queryMask !== undefined
    ? o.div(o.sum(o.mul(rowEnt, o.reshape(p.queryMask, [pr.b, 1, pr.tq])), [0, 2]), o.maximum(o.sum(p.queryMask), 1))
    : o.mean(rowEnt, [0, 2]);
  const y = o.reshape(o.transpose(o.matMul(probs, vh), [0, 2, 1, 3]), [pr.b, pr.tq, pr.dim]);
  return [y, entropy, logits, probs];
}

/**
 * Gradients of y (the entropy is a diagnostic: no gradient flows from it) → [dqkv] or [dq, dk, dv]:
 *   dV = Pᵀ dO;  dP = dO Vᵀ;  dlogp = dP ⊙ P;  dS = dlogp − softmax(S)·Σ_row dlogp;  dQ = (dS K)·scale;  dK = dSᵀ Q̃
 * `kept`: [logits S, probabilities P] from the forward, or recomputed from the inputs (the same bits) when absent.
 */
export function attentionBackward<T>(o: Ops<T>, dy: T, p: AttentionInputs<T>, a: AttentionAttrs, kept?: [T, T]): T[] {
  const pr = projections(o, p);
  const { qh, kh, vh } = heads(o, pr, a);
  const [logits, probs] = kept ?? (() => {
    const s = scores(o, qh, kh, p);
    return [s, o.exp(o.logSoftmax(s))] as [T, T];
  })();
  const dO = o.transpose(o.reshape(dy, [pr.b, pr.tq, a.heads, pr.dim / a.heads]), [0, 2, 1, 3]);
  const dP = o.matMul(dO, vh, false, true);
  const dVh = o.matMul(probs, dO, true, false);
  const dLogp = o.mul(dP, probs); // the Exp gradient's exp(logp), recomputed: the same bits as probs
  const dLogits = o.sub(dLogp, o.mul(o.sum(dLogp, -1, true), o.softmax(logits)));
  const dQh = o.matMul(dLogits, kh, false, false);
  const dKh = o.matMul(dLogits, qh, true, false);
  const merge = (t: T, len: number): T => o.reshape(o.transpose(t, [0, 2, 1, 3]), [pr.b * len, pr.dim]);
  const dv = merge(dVh, pr.tk);
  const dk = merge(dKh, pr.tk);
  const dq = merge(o.mul(dQh, a.scale), pr.tq);
  if (p.qkv !== undefined) return [o.reshape(o.concat([dq, dk, dv], 1), o.shape(p.qkv))];
  return [o.reshape(dq, o.shape(p.q!)), o.reshape(dk, o.shape(p.k!)), o.reshape(dv, o.shape(p.v!))];
}
