// LayerNorm over the last axis as one fused op with a hand-written gradient (tf.customGrad, see common.ts).
import * as tf from '@tensorflow/tfjs';

import { fusedOp } from './common.js';

/** x̂ = (x − mean) / √(var + eps) along the last axis, and 1/√(var + eps); x [..., D] → [..., D], [..., 1]. */
function normalize(x: tf.Tensor, eps: number): { xhat: tf.Tensor; rstd: tf.Tensor } {
  const xc = tf.sub(x, tf.mean(x, -1, true));
  const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(xc), -1, true), eps));
  return { xhat: tf.mul(xc, rstd), rstd };
}

/**
 * y = x̂·scale + shift; x [..., D], scale [D], shift [D]. Gradient (N rows, x̂ recomputed from x):
 *   dshift = Σ_rows dy;  dscale = Σ_rows dy·x̂;  g = dy·scale;  dx = rstd·(g − mean(g) − x̂·mean(g·x̂))
 */
export function layerNorm(x: tf.Tensor, scale: tf.Tensor, shift: tf.Tensor, eps: number): tf.Tensor {
  const d = x.shape[x.rank - 1];
  const op = fusedOp(
    (xx, s, b) => tf.add(tf.mul(normalize(xx, eps).xhat, s), b),
    (dy, [xx, s]) => {
      const { xhat, rstd } = normalize(xx!, eps);
      const dy2 = tf.reshape(dy, [-1, d]);
      const dshift = tf.sum(dy2, 0);
      const dscale = tf.sum(tf.mul(dy2, tf.reshape(xhat, [-1, d])), 0);
      const g = tf.mul(dy, s!);
      const dx = tf.mul(rstd, tf.sub(tf.sub(g, tf.mean(g, -1, true)), tf.mul(xhat, tf.mean(tf.mul(g, xhat), -1, true))));
      return [dx, dscale, dshift];
    },
    [true, true, false],
  );
  return op(x, scale, shift);
}
