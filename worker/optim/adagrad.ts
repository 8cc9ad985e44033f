// Adagrad (Duchi et al.; PyTorch's torch.optim.Adagrad without lr_decay): per-coordinate steps scaled by the root of
// the summed squared gradients, with an initial accumulator value and L2 weight decay.
import * as tf from '@tensorflow/tfjs';

import { SlotOptimizer, type GroupFn, type ParamGroup } from './optimizer.js';

export interface AdagradOptions {
  /** PyTorch's initial_accumulator_value (≥ 0). */
  initialAccumulator: number;
  eps: number;
  groups: GroupFn;
}

export class Adagrad extends SlotOptimizer {
  readonly name = 'adagrad' as const;
  private readonly o: AdagradOptions;

  constructor(o: AdagradOptions) {
    super(['s'], o.groups, 'Adagrad');
    this.o = o;
  }

  /**
   * d ← g + wd·w;  s ← s + d²;  w ← w − lr·d/(√(s + s₀) + ε).
   * Slot "s" holds Σd² WITHOUT the initial value s₀ (PyTorch's state_sum = s + s₀), so that an absent slot and a
   * zero slot mean the same, as for every optimizer here.
   */
  protected update(p: tf.Tensor, g: tf.Tensor, [s0]: tf.Tensor[], plr: number, group: ParamGroup) {
    const { initialAccumulator, eps } = this.o;
    const wd = group.weightDecay;
    const d = wd > 0 ? tf.add(g, tf.mul(p, wd)) : g;
    const s1 = tf.add(s0, tf.square(d));
    const acc = initialAccumulator > 0 ? tf.add(s1, initialAccumulator) : s1;
    const next = tf.sub(p, tf.mul(tf.div(d, tf.add(tf.sqrt(acc), eps)), plr));
    return { next, slots: [s1] };
  }
}
