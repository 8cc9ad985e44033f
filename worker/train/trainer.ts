// The replica's training step for any Task: micro-batch forward/backward with one packed readback each, one
// all-reduce of gradients plus named sums over the Collective, divide once by the global denominator, clip, optimizer.
import type { Config } from '../../shared/config/index.js';
import { SigmaError } from '../../shared/errors.js';
import type { AttnKind } from '../models/model.js';
import type { Task, TaskBatch } from '../tasks/task.js';
import type { Collective } from '../comm/collective.js';
import { createOptimizer } from '../optim/factory.js';
import type { Optimizer } from '../optim/optimizer.js';
import { composeSchedule, type Schedule } from '../optim/schedule.js';
import { PlateauSchedule } from '../optim/plateau.js';
import { taskInfo } from '../../shared/tasks.js';
import { clipByGlobalNorm } from '../optim/clip.js';
import { Ema } from '../optim/ema.js';
import { mixSeed } from '../rng.js';
import { ReplicaState } from './state.js';
import { StepLayout, forwardBackward, unflattenGrads } from './step.js';
import { DIGEST_ZERO, nextDigest } from './digest.js';

/** What the trainer needs of its peers for a step. */
export type Reduce = Pick<Collective, 'allReduceSum'>;

/** Fixed for one generation: who this replica is and the schedule it follows (never mutated on the Trainer). */
export interface GenerationContext {
  readonly rank: number;
  /** Optimizer steps of the whole job (cosine schedules end there). */
  readonly totalSteps: number;
  /** For milestones given in epochs. */
  readonly stepsPerEpoch: number;
  /** Learning-rate multiplier (the entropy-collapse guard lowers it at each rollback). */
  readonly lrScale: number;
}

export interface SiteEntropy {
  attn: AttnKind;
  layer: number;
  /** Mean attention entropy per head over the global batch, nats. */
  heads: number[];
}

export interface StepReport {
  step: number;
  /** Global examples and batch units of this step. */
  samples: number;
  units: number;
  /** Loss sum / global denominator (may be non-finite only if the step threw first). */
  loss: number;
  /** The task's step metrics, each sum / global denominator. */
  metrics: Record<string, number>;
  lr: number;
  gradNorm: number;
  entropy: SiteEntropy[];
  /** Per attention site: this replica's largest token norm entering attention. */
  maxTokenNorm: number[];
  /** The chained digest after this step (digest.ts). */
  digest: string;
  /** The digest this step started from: the link that ties the step to the applied steps before it. */
  prevDigest: string;
  seconds: { forward_backward: number; allreduce: number; optimizer: number };
}

export class Trainer<B extends TaskBatch = TaskBatch> {
  readonly state: ReplicaState;
  readonly optimizer: Optimizer;
  /** Exponential moving average of the weights (optim.emaDecay > 0). */
  readonly ema: Ema | undefined;
  /** Optimizer steps applied. */
  step = 0;
  /** Chained digest of the applied steps. */
  digest = DIGEST_ZERO;
  private ctx: GenerationContext;
  private schedule: { ctx: GenerationContext; fn: Schedule } | undefined;
  /** optim.schedule plateau: the lr multiplier driven by the task's headline evaluation metric (checkpointed). */
  readonly plateau: PlateauSchedule | undefined;
  readonly layout: StepLayout;
  /** The packed step buffer (StepLayout) and a scratch for the scaled gradient upload. */
  private readonly flat: Float32Array;
  private readonly scratch: Float32Array;

  constructor(
    readonly config: Readonly<Config>,
    readonly task: Task<B>,
    context: Partial<GenerationContext> = {},
  ) {
    const model = task.model;
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
    this.plateau = o.schedule === 'plateau'
      ? new PlateauSchedule({ lr: o.lr, factor: o.plateau.factor, patience: o.plateau.patience, threshold: o.plateau.threshold, mode: taskInfo(task.name).higherIsBetter ? 'max' : 'min' })
      : undefined;
    this.ctx = Object.freeze({ rank: 0, totalSteps: 1, stepsPerEpoch: 1, lrScale: 1, ...context });
    this.layout = new StepLayout(this.state.totalSize, task.stepMetrics, model);
    this.flat = new Float32Array(this.layout.total);
    this.scratch = new Float32Array(this.state.totalSize);
  }

  get model() {
    return this.task.model;
  }

  get context(): GenerationContext {
    return this.ctx;
  }

  /** A new generation: rank, schedule and lr scale for the steps that follow. */
  begin(context: GenerationContext): void {
    this.ctx = Object.freeze({ ...context });
  }

  /** The scheduled learning rate of a step. */
  lr(step = this.step): number {
    const c = this.ctx;
    if (this.schedule?.ctx.totalSteps !== c.totalSteps || this.schedule.ctx.stepsPerEpoch !== c.stepsPerEpoch) {
      const o = this.config.optim;
      const main =
        o.schedule === 'cosine' ? { kind: 'cosine' as const, floor: o.lr * o.minLrRatio, totalSteps: c.totalSteps }
        : o.schedule === 'step' ? { kind: 'step' as const, milestones: [...o.milestones], factor: o.factor, unit: o.milestoneUnit, stepsPerEpoch: c.stepsPerEpoch }
        : o.schedule === 'inverse-sqrt' ? { kind: 'inverse-sqrt' as const, timescale: o.timescale }
        : { kind: 'constant' as const };
      this.schedule = { ctx: c, fn: composeSchedule({ lr: o.lr, warmup: o.warmupSteps > 0 ? { steps: o.warmupSteps, init: o.warmupInit } : undefined, main }) };
    }
    return c.lrScale * this.schedule.fn(step) * (this.plateau?.scale ?? 1);
  }

  /**
   * After an evaluation (the same all-reduced metrics on every rank): feeds the task's headline metric to the plateau
   * schedule, when there is one. Returns what it did, for the log; null without a plateau schedule.
   */
  observeEvaluation(metrics: Readonly<Record<string, number>>): { metric: string; value: number; lr: number; reduced: boolean } | null {
    if (!this.plateau) return null;
    const metric = taskInfo(this.task.name).headline;
    const r = this.plateau.observe(metrics[metric]!);
    return { metric, value: metrics[metric]!, lr: r.lr, reduced: r.reduced };
  }

  /** One optimizer step on this replica's part of the global batch; every replica calls it with the same step. */
  async trainStep(batch: B, collective: Reduce, temperature = this.config.model.temperature): Promise<StepReport> {
    const t0 = performance.now();
    // The power step advances u/v in the forward; keep the old ones so a step that fails in the all-reduce
    // leaves the replica exactly as it was (the step is then redone, never applied twice).
    const before = new Map([...this.state.buffers].map(([k, t]) => [k, t.clone()]));
    try {
      return await this.applyStep(batch, collective, temperature, t0);
    } catch (err) {
      for (const [k, t] of before) this.state.setBuffer(k, t);
      before.clear();
      throw err;
    } finally {
      for (const t of before.values()) t.dispose();
    }
  }

  /**
   * Forward/backward of the local batch in micro-batches of train.microBatch examples (gradient accumulation: the
   * sums over micro-batches equal the whole batch's); σReparam's power step runs in the first forward only.
   */
  private async accumulate(batch: B, temperature: number): Promise<void> {
    const m = this.config.model;
    const parts = this.task.split(batch, this.config.train.microBatch);
    for (let k = 0; k < parts.length; k++) {
      await forwardBackward(this.task, this.state, parts[k], this.layout, {
        labelSmoothing: this.config.train.labelSmoothing,
        temperature,
        dropout: m.dropout,
        attnDropout: m.attnDropout,
        seed: mixSeed(this.config.seed, this.ctx.rank, this.step, k) & 0x7fffffff,
        powerIterations: k === 0 ? m.powerIterations : 0,
      }, this.flat, k > 0);
    }
  }

  private async applyStep(batch: B, collective: Reduce, temperature: number, t0: number): Promise<StepReport> {
    await this.accumulate(batch, temperature);
    const L = this.layout;
    const flat = this.flat;
    const maxTokenNorm = Array.from(flat.subarray(L.maxTokenNorm, L.total));
    const reduced = flat.subarray(0, L.reduced);
    const t1 = performance.now();
    await collective.allReduceSum(reduced);
    const t2 = performance.now();
    const lossSum = flat[L.loss];
    const denominator = flat[L.denominator];
    const samples = flat[L.samples];
    if (!Number.isFinite(lossSum)) {
      throw new SigmaError('SGT_NONFINITE_LOSS', `loss became ${lossSum} at step ${this.step}: lower optim.lr, enable optim.clipGradNorm, or resume from the last checkpoint`);
    }
    const metrics = Object.fromEntries([...L.metrics].map(([name, at]) => [name, flat[at] / denominator]));
    const entropy = this.model.attentionSites.map((s, i) => ({
      attn: s.kind, layer: s.layer, heads: Array.from(flat.subarray(L.entropy[i], L.entropy[i] + s.heads), (v) => v / samples),
    }));
    // Gradient of the mean loss over the global batch: divide the summed gradient once by the global denominator.
    const { norm: gradNorm, factor } = clipByGlobalNorm(flat.subarray(0, L.grads), this.config.optim.clipGradNorm, { divisor: denominator, apply: false });
    const grads = unflattenGrads(this.state, flat, factor / denominator, this.scratch);
    const lr = this.lr();
    this.optimizer.step(this.state.params, grads, lr);
    for (const g of grads.values()) g.dispose();
    this.ema?.update(this.state.params);
    const prevDigest = this.digest;
    this.digest = nextDigest(prevDigest, this.step, reduced);
    const t3 = performance.now();
    const report: StepReport = {
      step: this.step, samples, units: flat[L.units], loss: lossSum / denominator, metrics, lr, gradNorm, entropy, maxTokenNorm,
      digest: this.digest, prevDigest,
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
