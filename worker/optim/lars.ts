// LARS (You, Gitman & Ginsburg 2017) as in timm / the big-batch ViT recipes: SGD momentum on a gradient rescaled per
// tensor by the trust ratio η‖w‖/(‖g‖ + wd‖w‖ + ε); groups marked excludeFromAdaptation (biases, γ, norms) skip it.
import * as tf from '@tensorflow/tfjs';

import { SlotOptimizer, l2, trustRatio, type GroupFn, type ParamGroup } from './optimizer.js';

export interface LarsOptions {
  /** μ ≥ 0; 0 keeps no momentum buffer. */
  momentum: number;
  nesterov: boolean;
  /** η, the trust coefficient (timm's trust_coeff; 0.001 in You et al.). */
  trustCoefficient: number;
  /** ε in the trust ratio's denominator. */
  eps: number;
  groups: GroupFn;
}

export class Lars extends SlotOptimizer {
  readonly name = 'lars' as const;
  private readonly o: LarsOptions;

  constructor(o: LarsOptions) {
    if (o.nesterov && !(o.momentum > 0)) throw new Error(`LARS: Nesterov needs momentum > 0 (got ${o.momentum})`);
    super(o.momentum > 0 ? ['m'] : [], o.groups, 'LARS');
    this.o = o;
  }

  /**
   * d ← g + wd·w;  adapted groups: d ← d·r, r = η‖w‖/(‖g‖ + wd‖w‖ + ε) (r = 1 when ‖w‖ = 0 or ‖g‖ = 0);
   * b ← μb + d;  d ← d + μb (Nesterov) or b;  w ← w − lr·d. Weight decay is L2 (added to g), per group.
   */
  protected update(p: tf.Tensor, g: tf.Tensor, prev: tf.Tensor[], plr: number, group: ParamGroup) {
    const { momentum, nesterov, trustCoefficient, eps } = this.o;
    const wd = group.weightDecay;
    let d = wd > 0 ? tf.add(g, tf.mul(p, wd)) : g;
    if (!group.excludeFromAdaptation) {
      const wn = l2(p);
      const gn = l2(g);
      const den = tf.add(tf.add(gn, tf.mul(wn, wd)), eps);
      d = tf.mul(d, trustRatio(wn, gn, tf.mul(wn, trustCoefficient), den));
    }
    if (momentum === 0) return { next: tf.sub(p, tf.mul(d, plr)), slots: [] };
    const buf = tf.add(tf.mul(prev[0], momentum), d);
    const dir = nesterov ? tf.add(d, tf.mul(buf, momentum)) : buf;
    return { next: tf.sub(p, tf.mul(dir, plr)), slots: [buf] };
  }
}
