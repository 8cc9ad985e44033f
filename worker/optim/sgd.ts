// SGD with heavy-ball or Nesterov momentum (PyTorch's torch.optim.SGD rule, dampening 0) and L2 weight decay.
import * as tf from '@tensorflow/tfjs';

import { SlotOptimizer, type GroupFn, type ParamGroup } from './optimizer.js';

export interface SgdOptions {
  /** μ ≥ 0; 0 keeps no momentum buffer (slotNames = []). */
  momentum: number;
  /** Nesterov momentum (needs μ > 0). */
  nesterov: boolean;
  groups: GroupFn;
}

export class Sgd extends SlotOptimizer {
  readonly name = 'sgd' as const;
  private readonly momentum: number;
  private readonly nesterov: boolean;

  constructor(o: SgdOptions) {
    if (o.nesterov && !(o.momentum > 0)) throw new Error(`SGD: Nesterov needs momentum > 0 (got ${o.momentum})`);
    super(o.momentum > 0 ? ['m'] : [], o.groups, 'SGD');
    this.momentum = o.momentum;
    this.nesterov = o.nesterov;
  }

  /**
   * d ← g + wd·p;  b ← μb + d (b₀ = 0, so b₁ = d as in PyTorch);  d ← d + μb (Nesterov) or b;  p ← p − lr·d.
   */
  protected update(p: tf.Tensor, g: tf.Tensor, prev: tf.Tensor[], plr: number, group: ParamGroup) {
    const wd = group.weightDecay;
    const d = wd > 0 ? tf.add(g, tf.mul(p, wd)) : g;
    if (this.momentum === 0) return { next: tf.sub(p, tf.mul(d, plr)), slots: [] };
    const buf = tf.add(tf.mul(prev[0], this.momentum), d);
    const dir = this.nesterov ? tf.add(d, tf.mul(buf, this.momentum)) : buf;
    return { next: tf.sub(p, tf.mul(dir, plr)), slots: [buf] };
  }
}
