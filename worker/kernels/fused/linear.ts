// Linear layers as fused ops with hand-written gradients (tf.customGrad, see common.ts): plain y = xW + b, and the
// σReparam linear y = (γ/σ)·xW + b with σ = uᵀWv taken inside the op (u, v: the power step's buffers, constants).
import * as tf from '@tensorflow/tfjs';

import { fusedOp } from './common.js';

/**
 * y = x W (+ b); x [N, in], W [in, out], b [out] → [N, out].
 *   dx = dy Wᵀ;  dW = xᵀ dy;  db = Σ_rows dy
 */
export function linear(x: tf.Tensor2D, w: tf.Tensor2D, b?: tf.Tensor): tf.Tensor2D {
  if (b === undefined) {
    return fusedOp<tf.Tensor2D>((xx, ww) => tf.matMul(xx as tf.Tensor2D, ww as tf.Tensor2D),
      (dy, [xx, ww]) => [tf.matMul(dy, ww!, false, true), tf.matMul(xx!, dy, true, false)])(x, w);
  }
  return fusedOp<tf.Tensor2D>((xx, ww, bb) => tf.add(tf.matMul(xx as tf.Tensor2D, ww as tf.Tensor2D), bb),
    (dy, [xx, ww]) => [tf.matMul(dy, ww!, false, true), tf.matMul(xx!, dy, true, false), tf.sum(dy, 0)],
    [true, true, false])(x, w, b);
}

/** σ = uᵀ W v as [1, 1]; u [1, in], v [out, 1]. */
function sigmaOf(w: tf.Tensor, u: tf.Tensor, v: tf.Tensor): tf.Tensor {
  return tf.matMul(tf.matMul(u, w), v);
}

/**
 * σReparam linear: y = s·(x W) + b with s = γ/σ, σ = uᵀ W v; x [N, in], W [in, out], γ [] , b [out], u [in], v [out].
 * The scale goes on whichever of W ([in, out]) and xW ([N, out]) is smaller: the same product, less arithmetic.
 * Gradient, with G = xᵀ dy and c = Σ G ⊙ W:
 *   ∂L/∂s = Σ dy ⊙ xW = Σ G ⊙ W = c;   ∂s/∂W = −(s/σ) u vᵀ;   ∂s/∂γ = 1/σ
 *   dx = s·dy Wᵀ;  dW = s·G − (c·s/σ)·u vᵀ;  dγ = c/σ;  db = Σ_rows dy
 */
export function sigmaLinear(x: tf.Tensor2D, w: tf.Tensor2D, gamma: tf.Tensor, u: tf.Tensor, v: tf.Tensor, b?: tf.Tensor): tf.Tensor2D {
  const [n, inF] = x.shape;
  const outF = w.shape[1];
  const scaleWeight = inF <= n;
  // u as [1, in] and v as [out, 1]: σ is then two matmuls.
  const [u2, v2] = [tf.reshape(u, [1, inF]), tf.reshape(v, [outF, 1])];
  const forward = (xx: tf.Tensor, ww: tf.Tensor, g: tf.Tensor): tf.Tensor => {
    const s = tf.div(g, sigmaOf(ww, u2, v2)); // [1, 1]
    return scaleWeight ? tf.matMul(xx, tf.mul(ww, s)) : tf.mul(tf.matMul(xx, ww), s);
  };
  // u2, v2 here are the op's kept copies: the caller's may be disposed by the time the backward runs.
  const backward = (dy: tf.Tensor, xx: tf.Tensor, ww: tf.Tensor, g: tf.Tensor, u2: tf.Tensor, v2: tf.Tensor): tf.Tensor[] => {
    const sigma = sigmaOf(ww, u2, v2);
    const s = tf.div(g, sigma);
    const gW = tf.matMul(xx, dy, true, false); // [in, out]
    const c = tf.sum(tf.mul(gW, ww)); // []
    const dx = scaleWeight ? tf.matMul(dy, tf.mul(ww, s), false, true) : tf.mul(tf.matMul(dy, ww, false, true), s);
    const dW = tf.sub(tf.mul(gW, s), tf.mul(tf.matMul(u2, tf.reshape(v2, [1, outF]), true, false), tf.div(tf.mul(c, s), sigma)));
    const dGamma = tf.reshape(tf.div(c, sigma), g.shape);
    return [dx, dW, dGamma];
  };
  if (b === undefined) {
    return fusedOp<tf.Tensor2D>((xx, ww, g) => forward(xx, ww, g) as tf.Tensor2D,
      (dy, [xx, ww, g], [uu, vv]) => backward(dy, xx!, ww!, g!, uu, vv), undefined, [u2, v2])(x, w, gamma);
  }
  return fusedOp<tf.Tensor2D>((xx, ww, g, bb) => tf.add(forward(xx, ww, g), bb) as tf.Tensor2D,
    (dy, [xx, ww, g], [uu, vv]) => [...backward(dy, xx!, ww!, g!, uu, vv), tf.sum(dy, 0)], [true, true, true, false], [u2, v2])(x, w, gamma, b);
}
