// GELU (tanh approximation) as one fused op with a hand-written gradient (tf.customGrad, see common.ts).
import * as tf from '@tensorflow/tfjs';

import { fusedOp } from './common.js';

const C = Math.sqrt(2 / Math.PI);
const A = 0.044715;

/**
 * y = ½x(1 + tanh(c·x(1 + a·x²))), c = √(2/π), a = 0.044715. With t = tanh(·):
 *   dy/dx = ½(1 + t) + ½x(1 − t²)·c(1 + 3a·x²)
 */
export function gelu(x: tf.Tensor): tf.Tensor {
  const op = fusedOp(
    (xx) => {
      const t = tf.tanh(tf.mul(xx, tf.add(tf.mul(tf.square(xx), A * C), C)));
      return tf.mul(tf.mul(xx, 0.5), tf.add(t, 1));
    },
    (dy, [xx]) => {
      const x2 = tf.square(xx!);
      const t = tf.tanh(tf.mul(xx!, tf.add(tf.mul(x2, A * C), C)));
      const half = tf.mul(xx!, 0.5);
      // ½(1 + t) + ½x·(1 − t²)·(c + 3ac·x²)
      const d = tf.add(tf.mul(tf.add(t, 1), 0.5), tf.mul(tf.mul(half, tf.sub(1, tf.square(t))), tf.add(tf.mul(x2, 3 * A * C), C)));
      return [tf.mul(dy, d)];
    },
  );
  return op(x);
}
