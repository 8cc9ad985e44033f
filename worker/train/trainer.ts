// The replica's training step: forward/backward, one all-reduce of gradients plus metric sums, clip, AdamW.
import type { Config } from '../../shared/config/index.js';
import { SigmaError } from '../../shared/errors.js';
import type { Model } from '../models/index.js';
import { createOptimizer } from '../optim/factory.js';
import type { Optimizer } from '../optim/optimizer.js';
import { composeSchedule, type Schedule } from '../optim/schedule.js';
import { clipByGlobalNorm } from '../optim/clip.js';
import { Ema } from '../optim/ema.js';
import { mixSeed } from '../nn/rng.js';
import { ReplicaState } from './state.js';
import { forwardBackward, flattenGrads, unflattenGrads, type Batch } from './step.js';

/** Sums a flat Float32Array across replicas in place (a ring all-reduce; identity for one process). */
export type Reducer = (flat: Float32Array) => Promise<void>;

export interface StepReport {
  step: number;
  /** Global samples in this step. */
  samples: number;
  loss: number;
  accuracy: number;
  lr: number;
  gradNorm: number;
  /** Per layer, per head mean attention entropy over the global batch (nats). */
  entropy: Float32Array[];
  /** Per layer: this replica's largest token norm entering attention. */
  maxTokenNorm: number[];
  seconds: { forward_backward: number; allreduce: number; optimizer: number };
}

export class Trainer {
  readonly state: ReplicaState;
  readonly optimizer: Optimizer;
  /** Exponential moving average of the weights (optim.emaDecay > 0). */
  readonly ema: Ema | undefined;
  step = 0;
  /** Steps per epoch, for milestones given in epochs. */
  stepsPerEpoch = 1;
  private schedule: { key: string; fn: Schedule } | undefined;
  /** Learning-rate multiplier (the entropy-collapse guard lowers it at each rollback). */
  lrScale = 1;
  /** Gradient (state.totalSize floats) then metric sums: [lossSum, correct, n, entropy·n per layer and head]. */
  private readonly flat: Float32Array;
  private readonly layers: number;
  private readonly heads: number;

  constructor(
    readonly config: Readonly<Config>,
    readonly model: Model,
    public rank = 0,
    public totalSteps = 1,
  ) {
    this.state = new ReplicaState(model.params, model.buffers);
    const kinds = new Map(model.params.map((p) => [p.name, p.kind]));
    const o = config.optim;
    this.optimizer = createOptimizer(
      {
        name: o.name, momentum: o.name === 'sgd' || o.name === 'lars' ? o.momentum : undefined, nesterov: o.nesterov,
        beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weightDecay, decayKinds: ['weight'],
        trustCoefficient: o.trustCoefficient, initialAccumulator: o.initialAccumulator, gammaLrScale: o.gammaLrScale,
        lars: { excludeKinds: [...o.excludeFromAdaptation] }, lamb: { excludeKinds: [...o.excludeFromAdaptation] },
      },
      (n) => kinds.get(n)!,
    );
    this.ema = o.emaDecay > 0 ? new Ema(o.emaDecay, this.state.params) : undefined;
    this.layers = model.blocks.length;
    this.heads = model.arch.heads;
    this.flat = new Float32Array(this.state.totalSize + 3 + this.layers * this.heads);
  }

  /** The scheduled learning rate of a step (rebuilt when the step count or epoch length changes). */
  lr(step = this.step): number {
    const key = `${this.totalSteps}/${this.stepsPerEpoch}`;
    if (this.schedule?.key !== key) {
      const o = this.config.optim;
      const main =
        o.schedule === 'cosine' ? { kind: 'cosine' as const, floor: o.lr * o.minLrRatio, totalSteps: this.totalSteps }
        : o.schedule === 'step' ? { kind: 'step' as const, milestones: [...o.milestones], factor: o.factor, unit: o.milestoneUnit, stepsPerEpoch: this.stepsPerEpoch }
        : o.schedule === 'inverse-sqrt' ? { kind: 'inverse-sqrt' as const, timescale: o.timescale }
        : { kind: 'constant' as const };
      this.schedule = { key, fn: composeSchedule({ lr: o.lr, warmup: o.warmupSteps > 0 ? { steps: o.warmupSteps, init: o.warmupInit } : undefined, main }) };
    }
    return this.lrScale * this.schedule.fn(step);
  }

  /** One optimizer step on this replica's part of the global batch; every replica calls it with the same step. */
  async trainStep(batch: Batch, reduce: Reducer, temperature = this.config.model.temperature): Promise<StepReport> {
    const t0 = performance.now();
    // The power step advances u/v in the forward; keep the old ones so a step that fails in the all-reduce
    // leaves the replica exactly as it was (the step is then redone, never applied twice).
    const before = new Map([...this.state.buffers].map(([k, t]) => [k, t.clone()]));
    try {
      return await this.applyStep(batch, reduce, temperature, t0);
    } catch (err) {
      for (const [k, t] of before) this.state.setBuffer(k, t);
      before.clear();
      throw err;
    } finally {
      for (const t of before.values()) t.dispose();
    }
  }

  /**
   * Forward/backward of the local batch in micro-batches of train.microBatch (gradient accumulation: the flat sum
   * over micro-batches equals the whole batch's); σReparam's power step runs once, before the first.
   */
  private accumulate(batch: Batch, temperature: number): { maxTokenNorm: number[] } {
    const m = this.config.model;
    const micro = this.config.train.microBatch > 0 ? this.config.train.microBatch : Math.max(1, batch.n);
    const flat = this.flat;
    flat.fill(0);
    const per = batch.n > 0 ? batch.x.length / batch.n : 0;
    const split = batch.n > micro;
    let maxTokenNorm: number[] = [];
    for (let i = 0, k = 0; i < Math.max(batch.n, 1); i += micro, k++) {
      const n = Math.min(micro, batch.n - i);
      const classes = this.model.options.numClasses;
      const part: Batch = !split ? batch : {
        x: batch.x.subarray(i * per, (i + n) * per), y: batch.y.subarray(i, i + n), n,
        soft: batch.soft?.subarray(i * classes, (i + n) * classes),
      };
      const r = forwardBackward(this.model, this.state, part, {
        labelSmoothing: this.config.train.labelSmoothing,
        temperature,
        dropout: m.dropout,
        attnDropout: m.attnDropout,
        seed: mixSeed(this.config.seed, this.rank, this.step, k) & 0x7fffffff,
        powerIterations: k === 0 ? m.powerIterations : 0,
      });
      // The first micro-batch's gradients are copied in, later ones added in place (no full-size scratch array).
      flattenGrads(this.state, r.grads, flat, k > 0);
      for (const g of r.grads.values()) g.dispose();
      let o = this.state.totalSize;
      flat[o++] += r.lossSum;
      flat[o++] += r.correct;
      flat[o++] += r.n;
      for (let l = 0; l < this.layers; l++) for (let h = 0; h < this.heads; h++) flat[o++] += r.entropy[l][h] * r.n;
      maxTokenNorm = r.maxTokenNorm.map((v, l) => Math.max(v, maxTokenNorm[l] ?? 0));
    }
    return { maxTokenNorm };
  }

  private async applyStep(batch: Batch, reduce: Reducer, temperature: number, t0: number): Promise<StepReport> {
    const r = this.accumulate(batch, temperature);
    const flat = this.flat;
    let o: number;
    const t1 = performance.now();
    await reduce(flat);
    const t2 = performance.now();
    o = this.state.totalSize;
    const lossSum = flat[o++];
    const correct = flat[o++];
    const n = flat[o++];
    const entropy = Array.from({ length: this.layers }, () => new Float32Array(this.heads));
    for (let l = 0; l < this.layers; l++) for (let h = 0; h < this.heads; h++) entropy[l][h] = flat[o++] / n;
    if (!Number.isFinite(lossSum)) {
      throw new SigmaError('SGT_NONFINITE_LOSS', `loss became ${lossSum} at step ${this.step}: lower optim.lr, enable optim.clipGradNorm, or resume from the last checkpoint`);
    }
    // Gradient of the mean loss over the global batch: divide the summed gradient once by the global sample count.
    const { norm: gradNorm, factor } = clipByGlobalNorm(flat.subarray(0, this.state.totalSize), this.config.optim.clipGradNorm, { divisor: n, apply: false });
    const grads = unflattenGrads(this.state, flat, factor / n);
    const lr = this.lr();
    this.optimizer.step(this.state.params, grads, lr);
    for (const g of grads.values()) g.dispose();
    this.ema?.update(this.state.params);
    const t3 = performance.now();
    const report: StepReport = {
      step: this.step,
      samples: n,
      loss: lossSum / n,
      accuracy: correct / n,
      lr,
      gradNorm,
      entropy,
      maxTokenNorm: r.maxTokenNorm,
      seconds: { forward_backward: (t1 - t0) / 1000, allreduce: (t2 - t1) / 1000, optimizer: (t3 - t2) / 1000 },
    };
    this.step += 1;
    return report;
  }

  dispose(): void {
    this.ema?.dispose();
    this.optimizer.dispose();
    this.state.dispose();
  }
}

/** The reducer of a single process. */
export const localReducer: Reducer = async () => {};

