// The attention core as one fused op with a hand-written gradient (tf.customGrad, see common.ts): heads split,
// scores, additive mask, logit scale (1/√dh and the temperature), softmax, per-row entropy from the same softmax,
// probabilities × V, heads merged. The projections around it are linears (linear.ts).
import * as tf from '@tensorflow/tfjs';

import { fusedOp } from './common.js';

export interface AttentionCoreOptions {
  heads: number;
  /** Multiplies the logits: 1/(√dh·τ). */
  scale: number;
  /** Added to the scaled logits, broadcast to [B, heads, Tq, Tk]: 0 where allowed, −1e9 where masked. No gradient. */
  mask?: tf.Tensor;
  /** Reduces the row entropies [B, heads, Tq] inside the op (off the tape); default: none (rows returned). */
  reduceEntropy?: (rowEntropy: tf.Tensor) => tf.Tensor;
}

export interface AttentionCoreOutput {
  /** [B, Tq, dim] */
  y: tf.Tensor3D;
  /** −Σ_j p_ij log p_ij per row [B, heads, Tq], or what reduceEntropy made of it (a diagnostic: no gradient). */
  entropy: tf.Tensor;
}

type Heads = [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D]; // q, k, v: [B, h, T, dh]

/**
 * [B·T, 3·dim] (q | k | v along the last axis) → q, k, v [B, h, T, dh]: three slices and three 4-D transposes. On
 * wasm a 5-D transpose + unstack took 2–3× as long, and SplitV on the last axis twice as long as the slices.
 */
function splitJoint(qkv: tf.Tensor, b: number, t: number, h: number, dh: number): Heads {
  const x = tf.reshape(qkv, [b * t, 3 * h * dh]);
  const d = h * dh;
  return [0, 1, 2].map((i) => splitHeads(tf.slice(x, [0, i * d], [-1, d]), b, t, h, dh)) as Heads;
}

/** [B, T, dim] → [B, h, T, dh] */
function splitHeads(x: tf.Tensor, b: number, t: number, h: number, dh: number): tf.Tensor4D {
  return tf.transpose(tf.reshape(x, [b, t, h, dh]), [0, 2, 1, 3]) as tf.Tensor4D;
}

/** [B, h, T, dh] → [B, T, h·dh] */
function mergeHeads(x: tf.Tensor, b: number, t: number, dim: number): tf.Tensor {
  return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [b, t, dim]);
}

/** log-probabilities [B, h, Tq, Tk] of the scaled, masked scores. */
function logProbs(q: tf.Tensor, k: tf.Tensor, scale: number, mask: tf.Tensor | undefined, logSoftmax: (x: tf.Tensor) => tf.Tensor): tf.Tensor {
  let s = tf.mul(tf.matMul(q, k, false, true), scale);
  if (mask) s = tf.add(s, mask);
  return logSoftmax(s);
}

/**
 * Self attention from a joint projection (`qkv` [B·Tq, 3·dim] or [B, Tq, 3·dim]), or attention from separate q
 * [B, Tq, dim], k and v [B, Tk, dim]. Gradient, with P the probabilities recomputed from q, k and dY per head:
 *   dV = Pᵀ dY;  dP = dY Vᵀ;  dS = P ⊙ (dP − rowsum(P ⊙ dP))·scale;  dQ = dS K;  dK = dSᵀ Q
 * `logSoftmax` is the project's (a kernel with a twice-differentiable gradient).
 */
export function attentionCore(
  inputs: { qkv: tf.Tensor; batch: number; tokens: number } | { q: tf.Tensor3D; k: tf.Tensor3D; v: tf.Tensor3D },
  o: AttentionCoreOptions,
  logSoftmax: (x: tf.Tensor) => tf.Tensor,
): AttentionCoreOutput {
  const h = o.heads;
  let stash: tf.Tensor | null = null;
  const forward = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, b: number, tq: number, dim: number): tf.Tensor => {
    const logp = logProbs(q, k, o.scale, o.mask, logSoftmax);
    const p = tf.exp(logp);
    // Masked keys have p = 0 and a finite log p (−1e9 shifted), so they add exactly 0.
    const rows = tf.neg(tf.sum(tf.mul(p, logp), -1));
    stash = tf.keep(o.reduceEntropy ? o.reduceEntropy(rows) : rows);
    return mergeHeads(tf.matMul(p, v), b, tq, dim);
  };
  // The mask goes with the op as a constant: the caller's copy may be disposed by the time the backward runs.
  const constants = o.mask ? [o.mask] : [];
  /** dq, dk, dv [B, h, T, dh] from dy [B, Tq, dim]; `mask` is the op's kept copy. */
  const backward = (dy: tf.Tensor, q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, b: number, tq: number, dh: number,
    mask: tf.Tensor | undefined): Heads => {
    const p = tf.exp(logProbs(q, k, o.scale, mask, logSoftmax));
    const dyh = splitHeads(dy, b, tq, h, dh);
    const dv = tf.matMul(p, dyh, true, false);
    const dp = tf.matMul(dyh, v, false, true);
    const ds = tf.mul(tf.mul(p, tf.sub(dp, tf.sum(tf.mul(p, dp), -1, true))), o.scale);
    return [tf.matMul(ds, k) as tf.Tensor4D, tf.matMul(ds, q, true, false) as tf.Tensor4D, dv as tf.Tensor4D];
  };

  let y: tf.Tensor;
  if ('qkv' in inputs) {
    const { batch: b, tokens: t, qkv } = inputs;
    const dim = qkv.shape[qkv.rank - 1] / 3;
    const dh = dim / h;
    const op = fusedOp(
      (x) => forward(...splitJoint(x, b, t, h, dh), b, t, dim),
      (dy, [x], [mask]) => {
        const g = backward(dy, ...splitJoint(x!, b, t, h, dh), b, t, dh, mask);
        return [tf.reshape(tf.concat(g.map((gi) => mergeHeads(gi, b, t, dim)), -1), qkv.shape)];
      },
      undefined,
      constants,
    );
    y = op(qkv);
  } else {
    const [b, tq, dim] = inputs.q.shape;
    const tk = inputs.k.shape[1];
    const dh = dim / h;
    const op = fusedOp(
      (q, k, v) => forward(splitHeads(q, b, tq, h, dh), splitHeads(k, b, tk, h, dh), splitHeads(v, b, tk, h, dh), b, tq, dim),
      (dy, [q, k, v], [mask]) => {
        const g = backward(dy, splitHeads(q!, b, tq, h, dh), splitHeads(k!, b, tk, h, dh), splitHeads(v!, b, tk, h, dh), b, tq, dh, mask);
        return [mergeHeads(g[0], b, tq, dim), mergeHeads(g[1], b, tk, dim), mergeHeads(g[2], b, tk, dim)];
      },
      undefined,
      constants,
    );
    y = op(inputs.q, inputs.k, inputs.v);
  }
  // The entropy was kept out of the op's scope; hand it to the caller's scope (a clone is tracked there).
  const kept = stash as tf.Tensor | null;
  if (kept === null) throw new Error('attentionCore: the forward did not run');
  const entropy = tf.clone(kept);
  kept.dispose();
  return { y: y as tf.Tensor3D, entropy };
}
