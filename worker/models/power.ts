// σReparam's power step inside a training forward: new u/v from the current weights with no gradient through them
// (the paper's "no gradient through u, v"), handed back as buffer updates and used for σ in the same forward.
import * as tf from '@tensorflow/tfjs';
import { powerStep, type LinearRef } from '../nn/linear.js';
import { get, type TensorMap } from '../nn/params.js';

/**
 * `f()` computed with the gradient tape off, as an op with no inputs (torch's `no_grad`): its kernels are not
 * recorded and the backward never reaches it. Recording the power step on the tape (with a zero-gradient detach at
 * the weight) cost its whole backward every step — outer products, norm gradients and a zero weight gradient per
 * σReparam linear: 7276 → 4800-odd kernels per step on the bench model, and ~30 % of its step time on wasm.
 */
function noGrad(f: () => tf.Tensor): tf.Tensor {
  // A kernel runs with the tape off (tfjs engine: kernelDepth > 0); customGrad runs its forward as one.
  const op = tf.customGrad(((_save: tf.GradSaveFunc) => ({ value: f(), gradFunc: () => [] })) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (op as unknown as () => tf.Tensor)();
}

/**
 * One power-iteration update of every σReparam/stats linear (u, v ← `iterations` steps from the stored u). Returns
 * the buffers to use in this forward (updated ones over the stored ones) and the updates themselves.
 */
export function powerUpdates(
  linears: readonly LinearRef[], params: TensorMap, buffers: TensorMap, iterations: number,
): { buffers: TensorMap; updates: Map<string, tf.Tensor> } {
  const updates = new Map<string, tf.Tensor>();
  const sites = linears.filter((l) => l.reparam !== 'none');
  if (iterations <= 0 || sites.length === 0) return { buffers, updates };
  // Every site's [u' | v'] in one vector computed off the tape, then split: the values of powerStep, bitwise.
  const packed = noGrad(() => tf.concat(sites.flatMap((l) => {
    const { u, v } = powerStep(get(params, l.weight) as tf.Tensor2D, get(buffers, l.u!) as tf.Tensor1D, iterations);
    return [u, v];
  })));
  const parts = tf.split(packed, sites.flatMap((l) => [l.inFeatures, l.outFeatures]));
  packed.dispose();
  sites.forEach((l, i) => {
    updates.set(l.u!, parts[2 * i]);
    updates.set(l.v!, parts[2 * i + 1]);
  });
  const merged = new Map(buffers);
  for (const [k, t] of updates) merged.set(k, t);
  return { buffers: merged, updates };
}
