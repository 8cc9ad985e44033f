// Gradients and Hessian-vector products (H·v by double backprop) of a scalar loss of a list of parameters.
// Correct second order needs the gradient patches installed by initBackend (worker/backend.ts).
import * as tf from '@tensorflow/tfjs';

export type LossFn = (params: tf.Tensor[]) => tf.Scalar;

/** ∂loss/∂params, one tensor per param; zeros where the loss does not depend on a param. */
function gradsOf(f: () => tf.Scalar, params: tf.Tensor[]): tf.Tensor[] {
  // engine().gradients, not tf.grads: tf.grads throws when some param has no path to the loss.
  const { grads } = tf.engine().gradients(f, params, undefined, true);
  return params.map((p, i) => grads[i] ?? tf.zerosLike(p));
}

function checkParams(params: tf.Tensor[]): void {
  if (params.length === 0) throw new Error('gradient: params is empty');
  for (const p of params) {
    if (p.dtype !== 'float32') throw new Error(`gradient: params must be float32, got ${p.dtype} ${p.shape}`);
  }
}

/** Gradient of `loss` at `params` (tidy: only the returned tensors survive). */
export function gradient(loss: LossFn, params: tf.Tensor[]): tf.Tensor[] {
  checkParams(params);
  return tf.tidy(() => gradsOf(() => loss(params), params));
}

/**
 * H·v where H = ∂²loss/∂params², computed as ∂/∂params ⟨∂loss/∂params, v⟩ (Pearlmutter).
 * `vec[i]` has the shape of `params[i]`. Cost ≈ 2–3 backward passes; nothing but the returned tensors survives.
 */
export function hessianVectorProduct(loss: LossFn, params: tf.Tensor[], vec: tf.Tensor[]): tf.Tensor[] {
  checkParams(params);
  if (vec.length !== params.length) {
    throw new Error(`hessianVectorProduct: ${vec.length} vectors for ${params.length} params`);
  }
  params.forEach((p, i) => {
    if (!tf.util.arraysEqual(p.shape, vec[i].shape)) {
      throw new Error(`hessianVectorProduct: vec[${i}] has shape ${vec[i].shape}, param has ${p.shape}`);
    }
  });
  return tf.tidy(() => {
    const gradDotV = (): tf.Scalar => {
      const g = gradsOf(() => loss(params), params);
      return tf.addN(g.map((gi, i) => tf.sum(tf.mul(gi, vec[i])))) as tf.Scalar;
    };
    return gradsOf(gradDotV, params);
  });
}
