// The contract every optimizer keeps (step / getState / setState / dispose), parameter groups, and the base class
// that owns the per-parameter slot tensors so each optimizer only writes its update rule.
import * as tf from '@tensorflow/tfjs';
import { readNamed } from '../train/readback.js';

import { SigmaError } from '../../shared/errors.js';

export type OptimizerName = 'sgd' | 'adamw' | 'lars' | 'lamb' | 'adagrad';

export interface OptimizerState {
  /** Steps taken (AdamW/LAMB's bias-correction t). */
  step: number;
  /** Named slot arrays, key `${slot}/${param}` with a one-letter slot, e.g. "m/blocks.0.attn.qkv.weight". */
  slots: Map<string, Float32Array>;
}

/** What one parameter gets: its parameter group's settings. */
export interface ParamGroup {
  /** Learning-rate multiplier (e.g. σReparam's γ). */
  lrScale: number;
  /** Weight-decay coefficient (0: none); decoupled or L2 as each optimizer documents. */
  weightDecay: number;
  /** LARS/LAMB: no layer-wise trust ratio (ratio 1). Other optimizers ignore it. */
  excludeFromAdaptation: boolean;
}

/** Parameter name → its group. Called once per parameter per step; keep it cheap (cache). */
export type GroupFn = (name: string) => ParamGroup;

export interface Optimizer {
  readonly name: OptimizerName;
  /** One-letter slot names kept per parameter, in getState's order (e.g. ['m', 'v']); absent slot = zeros. */
  readonly slotNames: readonly string[];
  /** Updates every parameter in `params` in place from `grads` (same names) at learning rate `lr`. */
  step(params: ReadonlyMap<string, tf.Variable>, grads: ReadonlyMap<string, tf.Tensor>, lr: number): void;
  /** A copy of the state (arrays are the caller's). */
  getState(): Promise<OptimizerState>;
  /** Replaces the state; `shapes` maps parameter names to shapes. Arrays are copied. */
  setState(s: OptimizerState, shapes: ReadonlyMap<string, number[]>): void;
  dispose(): void;
}

export function slotKey(slot: string, param: string): string {
  return `${slot}/${param}`;
}

/** Splits "m/blocks.0.w" into { slot: 'm', param: 'blocks.0.w' } (parameter names may contain '/'). */
export function parseSlotKey(key: string): { slot: string; param: string } {
  const i = key.indexOf('/');
  if (i <= 0) throw new SigmaError('SGT_CHECKPOINT_INVALID', `optimizer state key ${JSON.stringify(key)} is not "<slot>/<parameter>"`);
  return { slot: key.slice(0, i), param: key.slice(i + 1) };
}

/** Euclidean norm of a whole tensor as a scalar tensor (inside tidy). */
export function l2(x: tf.Tensor): tf.Tensor {
  return tf.sqrt(tf.sum(tf.square(x)));
}

/**
 * Layer-wise trust ratio `num / den` where both norms are positive, else 1 (a zero weight or zero update keeps the
 * plain step, as in You et al. and timm). Scalars in, scalar out; call inside tidy.
 */
export function trustRatio(wNorm: tf.Tensor, otherNorm: tf.Tensor, num: tf.Tensor, den: tf.Tensor): tf.Tensor {
  const ok = tf.logicalAnd(tf.greater(wNorm, 0), tf.greater(otherNorm, 0));
  return tf.where(ok, tf.div(num, den), tf.onesLike(num));
}

/**
 * Holds the slot tensors by (slot, parameter name) and the step counter, runs each parameter's update in a tidy,
 * and saves / restores state. Subclasses implement `update`.
 */
export abstract class SlotOptimizer implements Optimizer {
  abstract readonly name: OptimizerName;
  protected t = 0;
  /** slot → parameter → tensor. */
  private slots = new Map<string, Map<string, tf.Tensor>>();

  constructor(
    readonly slotNames: readonly string[],
    protected readonly groups: GroupFn,
    /** Name in error messages ("AdamW: no gradient for …"). */
    private readonly label: string,
  ) {
    for (const s of slotNames) this.slots.set(s, new Map());
  }

  /**
   * One parameter's update, inside tf.tidy. `prev` holds the slots in slotNames order (zeros before the first step);
   * `lr` already includes the group's lrScale. Returns the new parameter value and the new slots (same order).
   */
  protected abstract update(
    p: tf.Tensor, g: tf.Tensor, prev: tf.Tensor[], lr: number, group: ParamGroup,
  ): { next: tf.Tensor; slots: tf.Tensor[] };

  step(params: ReadonlyMap<string, tf.Variable>, grads: ReadonlyMap<string, tf.Tensor>, lr: number): void {
    // Check every gradient and group first: a refused step changes nothing.
    const plan = [...params].map(([name, p]) => {
      const g = grads.get(name);
      if (!g) throw new Error(`${this.label}: no gradient for ${name}`);
      return { name, p, g, group: this.groups(name) };
    });
    this.t += 1;
    for (const { name, p, g, group } of plan) {
      const plr = lr * group.lrScale;
      const [next, ...slots] = tf.tidy(() => {
        const prev = this.slotNames.map((s) => this.slots.get(s)!.get(name) ?? tf.zerosLike(p));
        const r = this.update(p, g, prev, plr, group);
        return [r.next, ...r.slots];
      });
      this.slotNames.forEach((s, i) => {
        const map = this.slots.get(s)!;
        const old = map.get(name);
        if (old !== slots[i]) old?.dispose();
        map.set(name, slots[i]);
      });
      p.assign(next);
      next.dispose();
    }
  }

  /** Copies of every slot ("<slot>/<param>"), read back in one packed transfer. */
  async getState(): Promise<OptimizerState> {
    const named = new Map<string, tf.Tensor>();
    for (const [s, map] of this.slots) for (const [n, t] of map) named.set(slotKey(s, n), t);
    const step = this.t;
    return { step, slots: await readNamed(named) };
  }

  setState(s: OptimizerState, shapes: ReadonlyMap<string, number[]>): void {
    if (!Number.isInteger(s.step) || s.step < 0) {
      throw new SigmaError('SGT_CHECKPOINT_INVALID', `${this.label} state step ${s.step} is not a non-negative integer`);
    }
    // Build the whole new state first: a bad entry leaves the optimizer as it was.
    const next = new Map<string, Map<string, tf.Tensor>>(this.slotNames.map((n) => [n, new Map()]));
    try {
      for (const [key, arr] of s.slots) {
        const { slot, param } = parseSlotKey(key);
        const map = next.get(slot);
        if (!map) {
          throw new SigmaError('SGT_CHECKPOINT_INVALID',
            `${this.label} state has slot "${slot}" (${key}), but ${this.label} keeps [${this.slotNames.join(', ')}]: ` +
            `the checkpoint was written by another optimizer; use the same optim.name or a fresh run`);
        }
        const shape = shapes.get(param);
        if (!shape) throw new SigmaError('SGT_CHECKPOINT_INVALID', `optimizer state names unknown parameter ${param}`);
        const size = shape.reduce((a, b) => a * b, 1);
        if (arr.length !== size) {
          throw new SigmaError('SGT_CHECKPOINT_INVALID', `optimizer state ${key} has ${arr.length} values, parameter shape [${shape}] needs ${size}`);
        }
        map.set(param, tf.tensor(arr.slice(), shape, 'float32'));
      }
    } catch (err) {
      for (const map of next.values()) for (const t of map.values()) t.dispose();
      throw err;
    }
    this.dispose();
    this.slots = next;
    this.t = s.step;
  }

  dispose(): void {
    for (const map of this.slots.values()) {
      for (const t of map.values()) t.dispose();
      map.clear();
    }
  }
}
