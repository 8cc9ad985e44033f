// Metrics of one worker process: what the training loop reports after each step and every K steps.
// Every method is synchronous and O(layers × heads) at most; per-head series are built at scrape time, not per step.
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { counterOf, gaugeOf, histogramOf } from './registry.js';
import { STEP_PHASES, WORKER_METRICS as M, type AttnType, type StepPhase } from './names.js';

export interface WorkerMetricsOptions {
  /** Export per-(layer, head) entropy and bound series. Rank 0 only by default: 1k series per process at 32×32. */
  perHead: boolean;
}

export interface StepRecord {
  loss: number;
  lr: number;
  gradNorm: number;
  temperature: number;
  /** Samples and tokens of this step on this worker (not the global batch). */
  samples: number;
  tokens: number;
  /** Mean attention entropy in nats, [layer][head]. */
  entropy: readonly (readonly number[])[];
  /** Attention type of `entropy`; default 'self'. Other types of the same step: recordEntropy(). */
  attn?: AttnType;
  /** Seconds per phase; absent phases are not observed. */
  phases: Partial<Record<StepPhase, number>>;
  /** Gradient bytes this worker all-reduced this step, and how long the all-reduce took (0, 0 with one worker). */
  allreduceBytes: number;
  allreduceSeconds: number;
}

export interface SpectralRecord {
  /** Parameter path, e.g. "blocks.3.attn.qkv". */
  name: string;
  sigma: number;
  gamma?: number;
}

type Matrix = readonly (readonly number[])[];

export class WorkerMetrics {
  private perHead: boolean;
  // Latest [layer][head] matrices per attention type; copied on record, turned into series by collect().
  private readonly entropyLatest = new Map<AttnType, number[][]>();
  private readonly boundLatest = new Map<AttnType, number[][]>();

  private readonly entropy: Gauge<'layer' | 'head' | 'attn'>;
  private readonly entropyMin: Gauge<'attn'>;
  private readonly entropyBound: Gauge<'layer' | 'head' | 'attn'>;
  private readonly spectralNorm: Gauge<'param'>;
  private readonly reparamGamma: Gauge<'param'>;
  private readonly sharpness: Gauge<'k'>;
  private readonly threshold: Gauge;
  private readonly loss: Gauge;
  private readonly lr: Gauge;
  private readonly gradNorm: Gauge;
  private readonly temperature: Gauge;
  private readonly samples: Counter;
  private readonly tokens: Counter;
  private readonly steps: Counter;
  private readonly phase: Histogram<'phase'>;
  private readonly allreduceBytes: Counter;
  private readonly allreduceSeconds: Histogram;
  private readonly skipped: Counter;

  constructor(registry: Registry, opts: WorkerMetricsOptions) {
    this.perHead = opts.perHead;
    this.entropy = gaugeOf(registry, M.attentionEntropy, () => this.fillPerHead(this.entropy, this.entropyLatest));
    this.entropyMin = gaugeOf(registry, M.attentionEntropyMin);
    this.entropyBound = gaugeOf(registry, M.attentionEntropyBound, () => this.fillPerHead(this.entropyBound, this.boundLatest));
    this.spectralNorm = gaugeOf(registry, M.spectralNorm);
    this.reparamGamma = gaugeOf(registry, M.reparamGamma);
    this.sharpness = gaugeOf(registry, M.hessianSharpness);
    this.threshold = gaugeOf(registry, M.stabilityThreshold);
    this.loss = gaugeOf(registry, M.loss);
    this.lr = gaugeOf(registry, M.learningRate);
    this.gradNorm = gaugeOf(registry, M.gradNorm);
    this.temperature = gaugeOf(registry, M.attentionTemperature);
    this.samples = counterOf(registry, M.samples);
    this.tokens = counterOf(registry, M.tokens);
    this.steps = counterOf(registry, M.steps);
    this.phase = histogramOf(registry, M.stepPhaseDuration);
    this.allreduceBytes = counterOf(registry, M.allreduceBytes);
    this.allreduceSeconds = histogramOf(registry, M.allreduceDuration);
    this.skipped = counterOf(registry, M.dataSkipped);
  }

  /** A phase timed on its own (e.g. diagnostics every N steps), outside recordStep. */
  recordPhase(phase: StepPhase, seconds: number): void {
    if (validDuration(seconds)) this.phase.observe({ phase }, seconds);
  }

  /** One finished step: gauges set, counters advanced (steps_total by 1), durations observed. */
  recordStep(s: StepRecord): void {
    this.loss.set(s.loss);
    this.lr.set(s.lr);
    this.gradNorm.set(s.gradNorm);
    this.temperature.set(s.temperature);
    add(this.samples, s.samples);
    add(this.tokens, s.tokens);
    this.steps.inc();
    for (const p of STEP_PHASES) {
      const seconds = s.phases[p];
      if (seconds !== undefined && validDuration(seconds)) this.phase.observe({ phase: p }, seconds);
    }
    // A step without an all-reduce (one worker) is not an all-reduce of 0 s: keep it out of the histogram.
    if (s.allreduceBytes > 0) {
      add(this.allreduceBytes, s.allreduceBytes);
      if (validDuration(s.allreduceSeconds)) this.allreduceSeconds.observe(s.allreduceSeconds);
    }
    this.recordEntropy(s.entropy, s.attn ?? 'self');
  }

  /**
   * Entropy of one attention type, [layer][head] in nats: sets the per-type minimum (NaN if any entry is NaN,
   * untouched if empty) and, with perHead, the per-head series. recordStep calls it for its own `attn`.
   */
  recordEntropy(entropy: Matrix, attn: AttnType = 'self'): void {
    let min = Infinity;
    for (const row of entropy) for (const v of row) min = Math.min(min, v);
    if (min !== Infinity) this.entropyMin.set({ attn }, min);
    if (this.perHead) this.entropyLatest.set(attn, copy(entropy));
  }

  /** Theorem 3.1 lower bounds, [layer][head] in nats (per-head series: exported only with perHead). */
  recordBounds(bound: Matrix, attn: AttnType = 'self'): void {
    if (this.perHead) this.boundLatest.set(attn, copy(bound));
  }

  recordSpectral(params: readonly SpectralRecord[]): void {
    for (const p of params) {
      this.spectralNorm.set({ param: p.name }, p.sigma);
      if (p.gamma !== undefined) this.reparamGamma.set({ param: p.name }, p.gamma);
    }
  }

  /** Top-k Hessian eigenvalues (largest first; k labels "1".."k", replacing the previous set) and the threshold. */
  recordSharpness(eigenvalues: readonly number[], threshold: number): void {
    this.sharpness.reset();
    eigenvalues.forEach((v, i) => this.sharpness.set({ k: String(i + 1) }, v));
    this.threshold.set(threshold);
  }

  /** Unreadable samples the loader skipped. */
  recordSkipped(n: number): void {
    add(this.skipped, n);
  }

  /** Turns per-head series on or off (a worker whose rank changes at a new generation); off drops them. */
  setPerHead(perHead: boolean): void {
    this.perHead = perHead;
    if (!perHead) {
      this.entropyLatest.clear();
      this.boundLatest.clear();
      this.entropy.reset();
      this.entropyBound.reset();
    }
  }

  private fillPerHead(gauge: Gauge<'layer' | 'head' | 'attn'>, latest: Map<AttnType, number[][]>): void {
    gauge.reset();
    for (const [attn, m] of latest) {
      m.forEach((row, layer) => row.forEach((v, head) => gauge.set({ layer: String(layer), head: String(head), attn }, v)));
    }
  }
}

function copy(m: Matrix): number[][] {
  return m.map((row) => row.slice());
}

// A counter cannot go down or become NaN, and a bad report must not stop training: such increments are dropped.
function add(counter: Counter, n: number): void {
  if (Number.isFinite(n) && n > 0) counter.inc(n);
}

function validDuration(seconds: number): boolean {
  return Number.isFinite(seconds) && seconds >= 0;
}
