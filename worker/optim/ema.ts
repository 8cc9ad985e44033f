// Exponential moving average of the weights (Polyak averaging) kept as tensors, with a swap-in for evaluating on
// the averaged weights and state that checkpoints like an optimizer's (slot "e").
import * as tf from '@tensorflow/tfjs';
import { readNamed } from '../train/readback.js';

import { SigmaError } from '../../shared/errors.js';
import { parseSlotKey, slotKey, type OptimizerState } from './optimizer.js';

export class Ema {
  private shadow = new Map<string, tf.Tensor>();
  private backup: Map<string, tf.Tensor> | undefined;
  private n = 0;

  /** decay ∈ [0, 1): e ← decay·e + (1 − decay)·p. The average starts as a copy of `params`. */
  constructor(readonly decay: number, params: ReadonlyMap<string, tf.Tensor>) {
    if (!(decay >= 0 && decay < 1)) throw new SigmaError('SGT_CONFIG_INVALID', `EMA decay ${decay} is not in [0, 1)`);
    for (const [n, p] of params) this.shadow.set(n, tf.clone(p));
  }

  /** One averaging step from the current parameters (call after each optimizer step). */
  update(params: ReadonlyMap<string, tf.Tensor>): void {
    if (this.backup) throw new Error('Ema.update while the EMA weights are swapped in: call swapOut first');
    const d = this.decay;
    for (const [n, e] of this.shadow) {
      const p = params.get(n);
      if (!p) throw new Error(`Ema.update: no parameter ${n}`);
      const next = tf.tidy(() => tf.add(tf.mul(e, d), tf.mul(p, 1 - d)));
      e.dispose();
      this.shadow.set(n, next);
    }
    this.n += 1;
  }

  /** Puts the averaged weights into `params`, keeping the live ones aside until swapOut. */
  swapIn(params: ReadonlyMap<string, tf.Variable>): void {
    if (this.backup) throw new Error('Ema.swapIn twice: call swapOut first');
    const backup = new Map<string, tf.Tensor>();
    for (const n of this.shadow.keys()) {
      const p = params.get(n);
      if (!p) {
        for (const t of backup.values()) t.dispose();
        throw new Error(`Ema.swapIn: no parameter ${n}`);
      }
      backup.set(n, tf.clone(p));
    }
    for (const [n, e] of this.shadow) params.get(n)!.assign(e);
    this.backup = backup;
  }

  /** Restores the live weights that swapIn set aside. */
  swapOut(params: ReadonlyMap<string, tf.Variable>): void {
    if (!this.backup) throw new Error('Ema.swapOut without swapIn');
    for (const [n, t] of this.backup) {
      params.get(n)!.assign(t);
      t.dispose();
    }
    this.backup = undefined;
  }

  /** Runs fn (e.g. an evaluation) with the averaged weights in `params`; the live ones are back afterwards. */
  async apply<T>(params: ReadonlyMap<string, tf.Variable>, fn: () => T | Promise<T>): Promise<T> {
    this.swapIn(params);
    try {
      return await fn();
    } finally {
      this.swapOut(params);
    }
  }

  /** { step: updates, slots: "e/<param>" → copy of the average }. */
  async getState(): Promise<OptimizerState> {
    const named = new Map<string, tf.Tensor>();
    for (const [n, t] of this.shadow) named.set(slotKey('e', n), t);
    const step = this.n;
    return { step, slots: await readNamed(named) };
  }

  /** Replaces the average; every parameter it tracks must be present, with its shape. */
  setState(s: OptimizerState, shapes: ReadonlyMap<string, number[]>): void {
    const next = new Map<string, tf.Tensor>();
    try {
      for (const [key, arr] of s.slots) {
        const { slot, param } = parseSlotKey(key);
        const shape = shapes.get(param);
        const size = shape?.reduce((a, b) => a * b, 1);
        if (slot !== 'e' || !this.shadow.has(param) || !shape || arr.length !== size) {
          throw new SigmaError('SGT_CHECKPOINT_INVALID',
            `EMA state ${key} (${arr.length} values) does not match an averaged parameter "e/<name>" of shape [${shape ?? '?'}]`);
        }
        next.set(param, tf.tensor(arr.slice(), shape, 'float32'));
      }
      for (const n of this.shadow.keys()) if (!next.has(n)) throw new SigmaError('SGT_CHECKPOINT_INVALID', `EMA state lacks e/${n}`);
    } catch (err) {
      for (const t of next.values()) t.dispose();
      throw err;
    }
    for (const t of this.shadow.values()) t.dispose();
    this.shadow = next;
    this.n = s.step;
  }

  dispose(): void {
    for (const t of this.shadow.values()) t.dispose();
    this.shadow.clear();
    for (const t of this.backup?.values() ?? []) t.dispose();
    this.backup = undefined;
  }
}
