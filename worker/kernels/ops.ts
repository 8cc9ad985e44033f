// Loss ops that are safe for Hessian-vector products. tf.logSoftmax and tf.losses.softmaxCrossEntropy are
// customGrad ops in tfjs 4.22 whose gradient reads a saved output, so their second-order terms are silently lost
// (and there is no registry entry to patch). These run the LogSoftmax kernel (kernel_patches.ts) instead.
import * as tf from '@tensorflow/tfjs';

/** log softmax along the last axis. logits [..., C] -> [..., C]. */
export function logSoftmax(logits: tf.Tensor): tf.Tensor {
  if (tf.getKernel(tf.LogSoftmax, tf.getBackend()) !== undefined) {
    return tf.engine().runKernel(tf.LogSoftmax, { logits }, { axis: logits.rank - 1 });
  }
  // initBackend() not called: the same function from differentiable ops (slower backward).
  return tf.tidy(() => tf.sub(logits, tf.logSumExp(logits, -1, true)));
}

/**
 * Softmax cross-entropy with integer labels, per example: logits [N, C], labels [N] int32 -> loss [N].
 * Labels outside [0, C) give a zero one-hot row, hence loss 0 (mask padding that way).
 */
export function sparseSoftmaxCrossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const oneHot = tf.oneHot(tf.cast(labels, 'int32'), logits.shape[1]);
    return tf.neg(tf.sum(tf.mul(oneHot, logSoftmax(logits)), -1)) as tf.Tensor1D;
  });
}
