// σReparam's power step inside a training forward: new u/v from the current weights with no gradient through them
// (the paper's "no gradient through u, v"), handed back as buffer updates and used for σ in the same forward.
import * as tf from '@tensorflow/tfjs';
import { powerStep, type LinearRef } from '../nn/linear.js';
import { get, type TensorMap } from '../nn/params.js';

/** Identity forward, zero gradient: what torch calls detach(). */
const detach = tf.customGrad(((x: tf.Tensor) => ({ value: tf.clone(x), gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy) })) as unknown as Parameters<typeof tf.customGrad>[0]) as (x: tf.Tensor) => tf.Tensor;

/**
 * One power-iteration update of every σReparam/stats linear (u, v ← `iterations` steps from the stored u). Returns
 * the buffers to use in this forward (updated ones over the stored ones) and the updates themselves.
 */
export function powerUpdates(
  linears: readonly LinearRef[], params: TensorMap, buffers: TensorMap, iterations: number,
): { buffers: TensorMap; updates: Map<string, tf.Tensor> } {
  const updates = new Map<string, tf.Tensor>();
  if (iterations <= 0) return { buffers, updates };
  for (const l of linears) {
    if (l.reparam === 'none') continue;
    const { u, v } = powerStep(detach(get(params, l.weight)) as tf.Tensor2D, get(buffers, l.u!) as tf.Tensor1D, iterations);
    updates.set(l.u!, u);
    updates.set(l.v!, v);
  }
  const merged = new Map(buffers);
  for (const [k, t] of updates) merged.set(k, t);
  return { buffers: merged, updates };
}
