// Softmax cross-entropy with label smoothing as one fused op with a hand-written gradient (tf.customGrad,
// see common.ts).
import * as tf from '@tensorflow/tfjs';

import { fusedOp } from './common.js';

/**
 * Σ_i CE(logits_i, t_i) with t = (1−ε)·onehot(y) + ε/K; logits [N, K], labels [N] int32 → []. Gradient:
 *   dlogits = dy·(softmax(logits)·Σ_k t_k − t)
 * `logSoftmax` is the project's (a kernel with a twice-differentiable gradient).
 */
export function softmaxCrossEntropySum(
  logits: tf.Tensor2D, labels: tf.Tensor1D, smoothing: number, logSoftmax: (x: tf.Tensor) => tf.Tensor,
): tf.Scalar {
  const k = logits.shape[1];
  if (!(smoothing >= 0 && smoothing < 1)) throw new Error(`label smoothing must be in [0, 1), got ${smoothing}`);
  const onehot = tf.oneHot(tf.cast(labels, 'int32'), k);
  const target = smoothing > 0 ? tf.add(tf.mul(onehot, 1 - smoothing), smoothing / k) : onehot;
  const mass = tf.sum(target, -1, true); // [N, 1]: 1 per labelled row
  return fusedOp<tf.Scalar>(
    (z) => tf.neg(tf.sum(tf.mul(target, logSoftmax(z)))) as tf.Scalar,
    (dy, [z], [t, m]) => [tf.mul(tf.sub(tf.mul(tf.exp(logSoftmax(z!)), m), t), dy)],
    undefined,
    [target, mass],
  )(logits);
}
