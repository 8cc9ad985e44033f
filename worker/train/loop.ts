// The one training loop, for one process (`sigmatrain train`: a LocalCollective) or many (`worker`: the ring):
// data → step → report → evaluation → checkpoint → diagnostics → consistency check, with hooks for what differs
// (stop checks, where reports and evaluations go, how checkpoints are written). All side effects of training live
// here and in the hooks; the step itself (trainer.ts, step.ts) does no I/O.
import { createHash } from 'node:crypto';
import type { Config } from '../../shared/config/index.js';
import { SigmaError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { WorkerMetrics } from '../../shared/metrics/index.js';
import type { Collective } from '../comm/collective.js';
import type { AttnKind } from '../models/model.js';
import type { TaskBatch, TaskData } from '../tasks/task.js';
import { entropyBounds, spectralStats, type SiteBound } from '../diagnostics/bounds.js';
import { sharpness } from '../diagnostics/sharpness.js';
import { stabilityThreshold } from '../diagnostics/thresholds.js';
import type { StepReport, Trainer } from './trainer.js';
import { validate, type Validation } from './validation.js';
import { validationEpoch } from './plan.js';
import { injectFault } from '../faults.js';

export interface StepInfo {
  epoch: number;
  temperature: number;
  /** Seconds spent waiting for the batch. */
  dataSeconds: number;
  /** Items of this rank's batch the data left out (already logged and counted in the metrics). */
  skipped: number;
}

export interface DiagnosticsResult {
  step: number;
  sharpness: number[];
  stabilityThreshold: number;
  entropyBound: SiteBound[];
  spectral: { name: string; sigma: number; gamma: number | null }[];
  seconds: number;
}

/** What differs between `train` and `worker`. Every hook runs on every rank unless noted. */
export interface LoopHooks {
  /** Before step `step`: true leaves the loop there (a stop); may throw to abort the generation. */
  beforeStep(step: number): Promise<boolean>;
  /** After every step with its global report. */
  onStep(r: StepReport, info: StepInfo): void;
  /** After an evaluation (all-reduced: the same on every rank). */
  onEval(v: Validation, epoch: number, step: number): void;
  /** After diagnostics (the same on every rank). */
  onDiagnostics?(d: DiagnosticsResult): void;
  /** Rank 0 only: write a checkpoint of the trainer now (`final`: the last step; wait until durable). */
  checkpoint(final: boolean): Promise<void>;
}

export interface LoopContext<B extends TaskBatch> {
  config: Readonly<Config>;
  trainer: Trainer<B>;
  data: TaskData<B>;
  collective: Collective;
  totalSteps: number;
  /** τ at a step (schedule and any live override). */
  temperature(step: number): number;
  log: Logger;
  metrics: WorkerMetrics;
}

/** Per-site entropy grouped by attention kind as [layer][head] (the metrics' view). */
export function entropyByKind(sites: readonly { attn: AttnKind; layer: number; heads: number[] }[]): Map<AttnKind, number[][]> {
  const out = new Map<AttnKind, number[][]>();
  for (const s of sites) {
    const m = out.get(s.attn) ?? [];
    m[s.layer] = s.heads;
    out.set(s.attn, m);
  }
  for (const [k, m] of out) out.set(k, Array.from(m, (r) => r ?? []));
  return out;
}

/** Runs steps from trainer.step to totalSteps. Returns true when every step ran, false when a hook stopped it. */
export async function runLoop<B extends TaskBatch>(ctx: LoopContext<B>, hooks: LoopHooks): Promise<boolean> {
  const { config, trainer, data, collective, log, metrics } = ctx;
  const perEpoch = data.stepsPerEpoch;
  while (trainer.step < ctx.totalSteps) {
    // A one-process step never waits on I/O: yield so /metrics, signals and background writes get their turn.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const step = trainer.step;
    if (await hooks.beforeStep(step)) return false;
    const epoch = Math.floor(step / perEpoch);
    const t0 = performance.now();
    const batch = await data.trainBatch(step, collective.worldSize, collective.rank);
    for (const s of batch.skipped) log.warn({ path: s.path, reason: s.reason, step }, `skipped unreadable item ${s.path}`);
    if (batch.skipped.length) metrics.recordSkipped(batch.skipped.length);
    const dataSeconds = (performance.now() - t0) / 1000;
    const temperature = ctx.temperature(step);
    const sentBefore = collective.bytesSent;
    const r = await trainer.trainStep(batch, collective, temperature);
    const byKind = entropyByKind(r.entropy);
    metrics.recordStep({
      loss: r.loss, lr: r.lr, gradNorm: r.gradNorm, temperature, samples: batch.samples,
      tokens: trainer.task.unit === 'tokens' ? batch.units : 0,
      entropy: byKind.get('self') ?? [], phases: { data: dataSeconds, ...r.seconds },
      allreduceBytes: collective.bytesSent - sentBefore, allreduceSeconds: r.seconds.allreduce,
    });
    for (const [kind, m] of byKind) if (kind !== 'self') metrics.recordEntropy(m, kind);
    hooks.onStep(r, { epoch, temperature, dataSeconds, skipped: batch.skipped.length });
    const done = trainer.step;
    const e = validationEpoch(config, done, perEpoch, ctx.totalSteps);
    // The last step's validation (validationEpoch always has one there) also runs the final sets (e.g. the test set).
    if (e !== null) hooks.onEval(await validate(trainer, data, collective, ctx.temperature(done), { periodic: true, final: done === ctx.totalSteps }), e, done);
    const ckptEvery = config.checkpoint.everySteps;
    if (collective.rank === 0 && ((ckptEvery > 0 && done % ckptEvery === 0) || done === ctx.totalSteps)) await hooks.checkpoint(done === ctx.totalSteps);
    const diagEvery = config.diagnostics.everySteps;
    if (diagEvery > 0 && done % diagEvery === 0) {
      const d = await diagnose(ctx, r, temperature);
      metrics.recordSharpness(d.sharpness, d.stabilityThreshold);
      for (const [kind, m] of entropyByKind(d.entropyBound)) metrics.recordBounds(m, kind);
      metrics.recordSpectral(d.spectral.map((x) => ({ name: x.name, sigma: x.sigma, gamma: x.gamma ?? undefined })));
      metrics.recordPhase('diagnostics', d.seconds);
      hooks.onDiagnostics?.(d);
    }
    const every = config.dist.consistencyEverySteps;
    if (collective.worldSize > 1 && ((every > 0 && done % every === 0) || done === ctx.totalSteps)) await checkConsistency(trainer, collective, log);
  }
  return true;
}

/**
 * Hessian sharpness of the global-batch loss on a fixed diagnostic batch (Lanczos on all-reduced HVPs; every rank
 * takes part), the Theorem 3.1 bounds from the global largest token norm per site, and σ/γ.
 */
async function diagnose<B extends TaskBatch>(ctx: LoopContext<B>, r: StepReport, temperature: number): Promise<DiagnosticsResult> {
  const { config, trainer, collective } = ctx;
  const t0 = performance.now();
  const d = config.diagnostics;
  const batch = await ctx.data.diagnosticBatch(d.batch, collective.worldSize, collective.rank);
  const s = await sharpness(trainer.task, trainer.state, batch, {
    k: d.sharpnessTopK, iterations: d.lanczosIterations, seed: config.seed, temperature, labelSmoothing: config.train.labelSmoothing,
  }, (flat) => collective.allReduceSum(flat));
  // Largest token norm per site over all ranks: each rank fills its own slots, one sum gathers them.
  const sites = r.maxTokenNorm.length;
  const slots = new Float32Array(collective.worldSize * sites);
  slots.set(r.maxTokenNorm, collective.rank * sites);
  await collective.allReduceSum(slots);
  const maxNorm = Array.from({ length: sites }, (_, l) => Math.max(...Array.from({ length: collective.worldSize }, (_, k) => slots[k * sites + l])));
  const entropyBound = await entropyBounds(trainer.model, trainer.state, maxNorm, temperature);
  const spectral = await spectralStats(trainer.model, trainer.state);
  const o = config.optim;
  const threshold = stabilityThreshold({ optimizer: o.name, lr: r.lr, beta1: o.beta1 });
  return { step: trainer.step, sharpness: s.eigenvalues, stabilityThreshold: threshold, entropyBound, spectral, seconds: (performance.now() - t0) / 1000 };
}

/** SHA-256 of every parameter and buffer, as this replica holds them. */
export async function stateHash(trainer: Trainer): Promise<string> {
  const h = createHash('sha256');
  for (const [name, arr] of await trainer.state.snapshot()) {
    h.update(name);
    h.update(new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength));
  }
  return h.digest('hex');
}

/**
 * All replicas must hold bitwise-identical parameters and u/v vectors. Each rank puts the first 64 bits of its
 * state hash, as four 16-bit integers (exact in float32), into its own slot; one all-reduce gathers them all.
 */
async function checkConsistency(trainer: Trainer, collective: Collective, log: Logger): Promise<void> {
  if (await injectFault(trainer.state, collective.rank, trainer.step)) log.warn({ step: trainer.step }, 'SGT_FAULT_PERTURB: perturbed this replica (test-only fault injection)');
  const hash = await stateHash(trainer);
  const n = collective.worldSize;
  const slots = new Float32Array(n * 4);
  for (let i = 0; i < 4; i++) slots[collective.rank * 4 + i] = parseInt(hash.slice(i * 4, i * 4 + 4), 16);
  await collective.allReduceSum(slots);
  const key = (r: number) => Array.from(slots.subarray(r * 4, r * 4 + 4)).join(',');
  const differ = Array.from({ length: n }, (_, r) => r).filter((r) => key(r) !== key(0));
  log.debug({ step: trainer.step, stateHash: hash, consistent: differ.length === 0 }, `replica state hash ${hash.slice(0, 16)} at step ${trainer.step}`);
  if (differ.length > 0) {
    throw new SigmaError('SGT_REPLICA_MISMATCH', `replicas diverged at step ${trainer.step}: ranks ${differ.join(', ')} hold other parameters or u vectors than rank 0; this is a bug — report it with the run's logs`);
  }
}
