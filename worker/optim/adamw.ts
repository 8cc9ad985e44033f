// AdamW (Loshchilov & Hutter) with decoupled weight decay, PyTorch's update order; moments kept by parameter name.
import * as tf from '@tensorflow/tfjs';

import { SlotOptimizer, type GroupFn, type ParamGroup } from './optimizer.js';
import { FUSED_KERNELS, fusedKernelsActive } from '../kernels/composite/index.js';

export type { OptimizerState } from './optimizer.js';

/** Configured by parameter groups (learning-rate scale and weight decay per group; excludeFromAdaptation is ignored). */
export interface AdamWGroupOptions {
  beta1: number;
  beta2: number;
  eps: number;
  groups: GroupFn;
}

export class AdamW extends SlotOptimizer {
  readonly name = 'adamw' as const;
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly eps: number;

  constructor(o: AdamWGroupOptions) {
    super(['m', 'v'], o.groups, 'AdamW');
    this.beta1 = o.beta1;
    this.beta2 = o.beta2;
    this.eps = o.eps;
  }

  /** p ← p·(1 − lr·wd);  m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  p ← p − lr·m̂/(√v̂ + ε). */
  protected update(p: tf.Tensor, g: tf.Tensor, [m0, v0]: tf.Tensor[], plr: number, group: ParamGroup) {
    const { beta1, beta2, eps } = this;
    const bc1 = 1 - Math.pow(beta1, this.t);
    const bc2 = 1 - Math.pow(beta2, this.t);
    const wd = group.weightDecay;
    if (fusedKernelsActive()) {
      // One kernel per tensor, the kernels below inside it (kernels/composite/formulas.ts adamwFormula): same bits.
      const [next, m1, v1] = tf.engine().runKernel(FUSED_KERNELS.adamw, { p, g, m: m0, v: v0 },
        { beta1, beta2, eps, lr: plr, weightDecay: wd, bc1, bc2 }) as tf.Tensor[];
      return { next, slots: [m1, v1] };
    }
    const m1 = tf.add(tf.mul(m0, beta1), tf.mul(g, 1 - beta1));
    const v1 = tf.add(tf.mul(v0, beta2), tf.mul(tf.square(g), 1 - beta2));
    const decayed = wd > 0 ? tf.mul(p, 1 - plr * wd) : p;
    const denom = tf.add(tf.div(tf.sqrt(v1), Math.sqrt(bc2)), eps);
    const next = tf.sub(decayed, tf.mul(tf.div(m1, denom), plr / bc1));
    return { next, slots: [m1, v1] };
  }
}
