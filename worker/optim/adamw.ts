// AdamW (Loshchilov & Hutter) with decoupled weight decay, PyTorch's update order; moments kept by parameter name.
import * as tf from '@tensorflow/tfjs';

export interface AdamWOptions {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Parameters that get weight decay (biases, γ, norms and embeddings usually do not). */
  decays: (name: string) => boolean;
  /** Learning-rate multiplier per parameter (a parameter group's setting, e.g. for σReparam's γ); default 1. */
  lrScale?: (name: string) => number;
}

export interface OptimizerState {
  step: number;
  /** Named slot arrays, e.g. "m/blocks.0.attn.qkv.weight". */
  slots: Map<string, Float32Array>;
}

export class AdamW {
  private t = 0;
  private readonly m = new Map<string, tf.Tensor>();
  private readonly v = new Map<string, tf.Tensor>();
  constructor(private readonly o: AdamWOptions) {}

  /** p ← p·(1 − lr·wd);  m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  p ← p − lr·m̂/(√v̂ + ε). */
  step(params: ReadonlyMap<string, tf.Variable>, grads: ReadonlyMap<string, tf.Tensor>, lr: number): void {
    this.t += 1;
    const { beta1, beta2, eps } = this.o;
    const bc1 = 1 - Math.pow(beta1, this.t);
    const bc2 = 1 - Math.pow(beta2, this.t);
    for (const [name, p] of params) {
      const g = grads.get(name);
      if (!g) throw new Error(`AdamW: no gradient for ${name}`);
      const wd = this.o.decays(name) ? this.o.weightDecay : 0;
      const plr = lr * (this.o.lrScale?.(name) ?? 1);
      const [m, v, next] = tf.tidy(() => {
        const m0 = this.m.get(name) ?? tf.zerosLike(p);
        const v0 = this.v.get(name) ?? tf.zerosLike(p);
        const m1 = tf.add(tf.mul(m0, beta1), tf.mul(g, 1 - beta1));
        const v1 = tf.add(tf.mul(v0, beta2), tf.mul(tf.square(g), 1 - beta2));
        const decayed = wd > 0 ? tf.mul(p, 1 - plr * wd) : p;
        const denom = tf.add(tf.div(tf.sqrt(v1), Math.sqrt(bc2)), eps);
        const upd = tf.sub(decayed, tf.mul(tf.div(m1, denom), plr / bc1));
        return [m1, v1, upd];
      });
      this.m.get(name)?.dispose();
      this.v.get(name)?.dispose();
      this.m.set(name, m);
      this.v.set(name, v);
      p.assign(next);
      next.dispose();
    }
  }

  getState(): OptimizerState {
    const slots = new Map<string, Float32Array>();
    for (const [n, t] of this.m) slots.set(`m/${n}`, t.dataSync() as Float32Array);
    for (const [n, t] of this.v) slots.set(`v/${n}`, t.dataSync() as Float32Array);
    return { step: this.t, slots: new Map([...slots].map(([k, a]) => [k, a.slice()])) };
  }

  setState(s: OptimizerState, shapes: ReadonlyMap<string, number[]>): void {
    this.dispose();
    this.t = s.step;
    for (const [key, arr] of s.slots) {
      const [slot, ...rest] = key.split('/');
      const name = rest.join('/');
      const shape = shapes.get(name);
      if (!shape) throw new Error(`optimizer state names unknown parameter ${name}`);
      (slot === 'm' ? this.m : this.v).set(name, tf.tensor(arr, shape));
    }
  }

  dispose(): void {
    for (const t of this.m.values()) t.dispose();
    for (const t of this.v.values()) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}
