// GELU (tanh approximation) as one fused op with a hand-written gradient (tf.customGrad, see common.ts).
import * as tf from '@tensorflow/tfjs';

import { fusedOp } from './common.js';

const C2 = 2 * Math.sqrt(2 / Math.PI);
const A = 0.044715;

/**
 * y = ½x(1 + tanh(c·x(1 + a·x²))) = x·σ(2c·x(1 + a·x²)), c = √(2/π), a = 0.044715 (the sigmoid form, as nn/layers.ts
 * computes it: the backend's sigmoid is vectorised where its tanh is not). With s = σ(·):
 *   dy/dx = s + x·s(1 − s)·2c(1 + 3a·x²)
 */
export function gelu(x: tf.Tensor): tf.Tensor {
  const op = fusedOp(
    (xx) => tf.mul(xx, tf.sigmoid(tf.mul(xx, tf.add(tf.mul(tf.square(xx), A * C2), C2)))),
    (dy, [xx]) => {
      const x2 = tf.square(xx!);
      const s = tf.sigmoid(tf.mul(xx!, tf.add(tf.mul(x2, A * C2), C2)));
      const d = tf.add(s, tf.mul(tf.mul(tf.mul(xx!, s), tf.sub(1, s)), tf.add(tf.mul(x2, 3 * A * C2), C2)));
      return [tf.mul(dy, d)];
    },
  );
  return op(x);
}
