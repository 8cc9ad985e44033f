// The numbers an experiment reports about one run, computed only from that run's own files (steps.jsonl,
// evals.jsonl, diagnostics.jsonl via the run report's loader) plus the job's exit; and their aggregation per method.
import type { RunData } from '../report/load.js';
import { summarize } from '../report/summary.js';
import type { JobResult } from './jobs.js';

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** The final loss averages the last max(FINAL_MIN, FINAL_FRACTION · steps) recorded steps. */
export const FINAL_FRACTION = 0.1;
export const FINAL_MIN = 10;
/** A run "learned" when its final val_top1 is at least this multiple of chance (1 / numClasses). */
export const LEARNED_FACTOR = 2;

/** The divergence rule, in words, for reports. */
export const DIVERGED_RULE =
  `non-finite loss at any step (a NaN/∞ in steps.jsonl, or the job stopped with SGT_NONFINITE_LOSS), or a final loss — ` +
  `the mean training loss over the last ${FINAL_FRACTION * 100}% of the recorded steps (at least ${FINAL_MIN}; only steps after warmup) — ` +
  `above the initial loss (the loss of the first recorded step, step 0: the model at initialization, the same for every run of a method)`;

export interface RunOutcome {
  name: string;
  /** Method label (e.g. "baseline pre-LN · AdamW"). */
  method: string;
  optimizer: string;
  lr: number;
  warmupSteps: number;
  /** Distinct steps in steps.jsonl. */
  steps: number;
  plannedSteps?: number;
  exitCode: number;
  timedOut: boolean;
  seconds: number;
  /** The step whose loss was non-finite (from steps.jsonl or the job's SGT_NONFINITE_LOSS), null if none. */
  nonFiniteStep: number | null;
  nonFinite: boolean;
  /** Loss of the first recorded step (step 0). */
  initialLoss?: number;
  /** Mean loss over the last 10 % of the steps (at least FINAL_MIN), after warmup. */
  finalLoss?: number;
  /** Largest mean of 10 consecutive training losses after warmup (spikes that recovered show here). */
  maxPostWarmupLoss?: number;
  diverged: boolean;
  /** Why it counts as diverged, or '' when it does not. */
  divergedReason: string;
  /** val_top1 of the last eval (a fraction), undefined when the run never evaluated. */
  valTop1?: number;
  valLoss?: number;
  /** Final val_top1 ≥ LEARNED_FACTOR × chance. */
  learned: boolean;
  /** Lowest per-head attention entropy over all recorded steps, nats. */
  minEntropy?: number;
  minEntropyStep?: number;
  /** Largest top-1 Hessian eigenvalue in diagnostics.jsonl, the stability threshold of that record and their ratio. */
  maxSharpness?: number;
  maxSharpnessStep?: number;
  thresholdAtMax?: number;
  /** Largest λ₁ / threshold over the diagnostics records. */
  maxSharpnessRatio?: number;
  diagnostics: number;
  /** Extra labels of the run (e.g. the temperature switch step). */
  tags: Record<string, string | number>;
}

export interface OutcomeInput {
  name: string;
  method: string;
  optimizer: string;
  lr: number;
  warmupSteps: number;
  numClasses: number;
  tags?: Record<string, string | number>;
}

const mean = (xs: number[]): number | undefined => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : undefined);

/** Lowest head entropy of one step record (nats), over every layer and head. */
export function stepMinEntropy(entropy: number[][]): number | undefined {
  let m: number | undefined;
  for (const heads of entropy) if (Array.isArray(heads)) for (const v of heads) if (finite(v) && (m === undefined || v < m)) m = v;
  return m;
}

/** The outcome of one run from its loaded files and the job's exit. Pure. */
export function outcome(run: RunData, job: Pick<JobResult, 'exitCode' | 'timedOut' | 'seconds' | 'nonFiniteLoss' | 'nonFiniteStep'>, input: OutcomeInput): RunOutcome {
  const s = summarize(run);
  const steps = run.steps;
  const badStep = steps.find((r) => !finite(r.loss));
  const nonFiniteStep = badStep ? badStep.step : job.nonFiniteLoss ? (job.nonFiniteStep ?? (s.lastStep ?? -1) + 1) : null;
  const nonFinite = nonFiniteStep !== null;
  const initialLoss = finite(steps[0]?.loss) ? steps[0].loss : undefined;
  const after = steps.filter((r) => r.step >= input.warmupSteps && finite(r.loss));
  // The last 10 % of the run, at least FINAL_MIN steps, but never reaching back into warmup.
  const nFinal = Math.min(after.length, Math.max(FINAL_MIN, Math.ceil(FINAL_FRACTION * steps.length)));
  const finalLoss = nFinal > 0 ? mean(after.slice(-nFinal).map((r) => r.loss)) : undefined;
  let maxPostWarmupLoss: number | undefined;
  for (let i = 0; i + 10 <= after.length; i++) {
    const m = mean(after.slice(i, i + 10).map((r) => r.loss))!;
    if (maxPostWarmupLoss === undefined || m > maxPostWarmupLoss) maxPostWarmupLoss = m;
  }
  let divergedReason = '';
  if (nonFinite) divergedReason = `non-finite loss at step ${nonFiniteStep}`;
  else if (finalLoss !== undefined && initialLoss !== undefined && finalLoss > initialLoss) {
    divergedReason = `final loss ${finalLoss.toFixed(3)} > initial ${initialLoss.toFixed(3)}`;
  }
  let maxSharpness: number | undefined;
  let maxSharpnessStep: number | undefined;
  let thresholdAtMax: number | undefined;
  let maxSharpnessRatio: number | undefined;
  for (const d of run.diagnostics) {
    const l = d.sharpness?.[0];
    if (!finite(l)) continue;
    if (maxSharpness === undefined || l > maxSharpness) {
      maxSharpness = l;
      maxSharpnessStep = d.step;
      thresholdAtMax = finite(d.stabilityThreshold) ? d.stabilityThreshold : undefined;
    }
    if (finite(d.stabilityThreshold) && d.stabilityThreshold > 0) {
      const r = l / d.stabilityThreshold;
      if (maxSharpnessRatio === undefined || r > maxSharpnessRatio) maxSharpnessRatio = r;
    }
  }
  return {
    name: input.name,
    method: input.method,
    optimizer: input.optimizer,
    lr: input.lr,
    warmupSteps: input.warmupSteps,
    steps: steps.length,
    plannedSteps: s.totalSteps,
    exitCode: job.exitCode,
    timedOut: job.timedOut,
    seconds: job.seconds,
    nonFiniteStep,
    nonFinite,
    initialLoss,
    finalLoss,
    maxPostWarmupLoss,
    diverged: divergedReason !== '',
    divergedReason,
    valTop1: s.lastValTop1,
    valLoss: s.lastValLoss,
    learned: s.lastValTop1 !== undefined && s.lastValTop1 >= LEARNED_FACTOR / input.numClasses,
    minEntropy: s.minEntropy?.nats,
    minEntropyStep: s.minEntropy?.step,
    maxSharpness,
    maxSharpnessStep,
    thresholdAtMax,
    maxSharpnessRatio,
    diagnostics: run.diagnostics.length,
    tags: input.tags ?? {},
  };
}

/** A run that neither finished nor stopped on a non-finite loss is an experiment failure, not a result. */
export function crashed(o: RunOutcome): string | undefined {
  if (o.nonFinite) return undefined;
  if (o.timedOut) return `timed out after ${o.seconds.toFixed(0)} s`;
  if (o.exitCode !== 0) return `exit code ${o.exitCode} without a non-finite loss`;
  if (o.plannedSteps !== undefined && o.steps < o.plannedSteps) return `${o.steps} of ${o.plannedSteps} steps recorded`;
  return undefined;
}

export interface MethodSummary {
  method: string;
  runs: number;
  diverged: number;
  nonFinite: number;
  /** Runs that did not diverge but ended below LEARNED_FACTOR × chance. */
  notLearned: number;
  /** val_top1 of the runs that did not diverge. */
  converged: number;
  accMean?: number;
  /** Sample standard deviation (n − 1); undefined for fewer than 2 runs. */
  accStd?: number;
  /** Lowest min entropy over the method's runs and the mean of the runs' minima. */
  minEntropy?: number;
  meanMinEntropy?: number;
  /** Largest λ₁ / threshold over the method's runs. */
  maxSharpnessRatio?: number;
  /** Runs whose λ₁ exceeded their threshold at some diagnostics step. */
  aboveThreshold: number;
}

export function sampleStd(xs: number[]): number | undefined {
  if (xs.length < 2) return undefined;
  const m = mean(xs)!;
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

/** Per-method aggregates, methods in first-seen order. */
export function summarizeMethods(outcomes: RunOutcome[]): MethodSummary[] {
  const methods = [...new Set(outcomes.map((o) => o.method))];
  return methods.map((method) => {
    const rs = outcomes.filter((o) => o.method === method);
    const conv = rs.filter((o) => !o.diverged);
    const accs = conv.map((o) => o.valTop1).filter(finite);
    const ents = rs.map((o) => o.minEntropy).filter(finite);
    const ratios = rs.map((o) => o.maxSharpnessRatio).filter(finite);
    return {
      method,
      runs: rs.length,
      diverged: rs.filter((o) => o.diverged).length,
      nonFinite: rs.filter((o) => o.nonFinite).length,
      notLearned: conv.filter((o) => !o.learned).length,
      converged: conv.length,
      accMean: mean(accs),
      accStd: sampleStd(accs),
      minEntropy: ents.length ? Math.min(...ents) : undefined,
      meanMinEntropy: mean(ents),
      maxSharpnessRatio: ratios.length ? Math.max(...ratios) : undefined,
      aboveThreshold: rs.filter((o) => finite(o.maxSharpnessRatio) && o.maxSharpnessRatio > 1).length,
    };
  });
}
