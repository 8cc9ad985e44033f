// LAMB (You et al. 2020): Adam moments with bias correction, decoupled weight decay inside the update, and the
// layer-wise trust ratio ‖w‖/‖u‖; groups marked excludeFromAdaptation (biases, γ, norms) take the plain update.
import * as tf from '@tensorflow/tfjs';

import { SlotOptimizer, l2, trustRatio, type GroupFn, type ParamGroup } from './optimizer.js';

export interface LambOptions {
  beta1: number;
  beta2: number;
  eps: number;
  groups: GroupFn;
}

export class Lamb extends SlotOptimizer {
  readonly name = 'lamb' as const;
  private readonly o: LambOptions;

  constructor(o: LambOptions) {
    super(['m', 'v'], o.groups, 'LAMB');
    this.o = o;
  }

  /**
   * m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  u ← (m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε) + wd·w;
   * adapted groups: u ← u·‖w‖/‖u‖ (1 when either norm is 0);  w ← w − lr·u.
   */
  protected update(p: tf.Tensor, g: tf.Tensor, [m0, v0]: tf.Tensor[], plr: number, group: ParamGroup) {
    const { beta1, beta2, eps } = this.o;
    const bc1 = 1 - Math.pow(beta1, this.t);
    const bc2 = 1 - Math.pow(beta2, this.t);
    const wd = group.weightDecay;
    const m1 = tf.add(tf.mul(m0, beta1), tf.mul(g, 1 - beta1));
    const v1 = tf.add(tf.mul(v0, beta2), tf.mul(tf.square(g), 1 - beta2));
    let u = tf.div(tf.div(m1, bc1), tf.add(tf.sqrt(tf.div(v1, bc2)), eps));
    if (wd > 0) u = tf.add(u, tf.mul(p, wd));
    if (!group.excludeFromAdaptation) {
      const wn = l2(p);
      const un = l2(u);
      u = tf.mul(u, trustRatio(wn, un, wn, un));
    }
    return { next: tf.sub(p, tf.mul(u, plr)), slots: [m1, v1] };
  }
}
