// What the coordinator records about the job, behind one object: the sample ledger, the run log (steps, evaluations,
// diagnostics, events), the progress a person sees, the Prometheus metrics and the entropy-collapse guard. The
// membership machine's effects and the workers' reports come in here; the job summary comes out.
import { join } from 'node:path';
import type { Config } from '../shared/config/index.js';
import { SigmaError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { createRegistry, serveMetrics, CoordinatorMetrics } from '../shared/metrics/index.js';
import type { MessageOf } from '../shared/protocol/index.js';
import { byKind } from '../shared/sites.js';
import { metricsText, type RunResult } from '../shared/summary.js';
import { taskInfo } from '../shared/tasks.js';
import { CollapseDetector } from './guard.js';
import { Ledger } from './ledger.js';
import type { Effect } from './membership.js';
import { Progress } from './progress.js';
import { RunLog } from './runlog.js';
import type { Terminal } from './terminal.js';

export interface JobSummary extends RunResult {
  totalSteps: number;
  generations: number;
  workerFailures: number;
}

/** The guard's verdict on a step: what the membership machine is asked to do. */
export type GuardAction = { kind: 'stop'; reason: string } | { kind: 'rollback'; reason: string; onset: number };

export class Telemetry {
  readonly ledger: Ledger;
  readonly registry = createRegistry({ role: 'coordinator', defaultMetrics: true });
  private readonly metrics = new CoordinatorMetrics(this.registry);
  private readonly runLog: RunLog;
  private readonly progress: Progress;
  private readonly detector: CollapseDetector;
  private metricsServer: { url: string; close(): Promise<void> } | undefined;
  private readonly started = performance.now();
  private samples = 0;
  private lastLoss = NaN;
  /** The last evaluation, by the task's metric names. */
  private val: { metrics: Record<string, number>; ema: Record<string, number> | null } = { metrics: {}, ema: null };
  private minEntropy = Infinity;
  /** The latest Theorem 3.1 bounds from diagnostics (the guard's margin criterion). */
  private lastBounds: number[][] | null = null;

  constructor(private readonly config: Readonly<Config>, runDir: string, private readonly log: Logger, terminal?: Terminal) {
    this.ledger = new Ledger(join(runDir, 'ledger.jsonl'));
    this.runLog = new RunLog(runDir);
    this.progress = new Progress(log, config.train.logEverySteps, terminal, taskInfo(config.task).headline);
    this.detector = new CollapseDetector(config.guard);
  }

  /** Serves /metrics and logs where. */
  async serveMetrics(host: string, port: number): Promise<string> {
    this.metricsServer = await serveMetrics(this.registry, { host, port });
    this.log.info({ metrics: this.metricsServer.url }, `metrics at ${this.metricsServer.url}`);
    return this.metricsServer.url;
  }

  async closeMetrics(): Promise<void> {
    await this.metricsServer?.close();
  }

  /** Applies one of the membership machine's effects (persist, complete and fail are the coordinator's). */
  apply(e: Effect): void {
    switch (e.kind) {
      case 'note':
        return this.progress.note(e.text, e.fields);
      case 'log':
        if (e.level === 'warn') this.log.warn(e.fields, e.text);
        else this.log.info(e.fields, e.text);
        return;
      case 'event':
        return this.runLog.event(e.event);
      case 'generation':
        return this.metrics.setWorld(e.worldSize, e.generation);
      case 'worker-failed':
        return this.metrics.workerFailed();
      case 'guard-reset':
        return this.detector.reset();
      case 'rolled-back':
        // Steps from here on run again, so they leave the ledger.
        return this.ledger.truncate(e.step);
      default:
    }
  }

  /**
   * One rank's step report: the ledger (once per step), the run log, the guard, metrics and progress. A guard alarm
   * calls `act` at once (before the collapse gauges are read, as a rollback resets them). Returns the ledger's
   * refusal (a digest that proves a step applied twice or lost), which fails the job.
   */
  report(m: MessageOf<'worker.report'>, job: { worldSize: number; totalSteps: number }, act: (a: GuardAction) => void): SigmaError | undefined {
    let fresh: boolean;
    try {
      fresh = this.ledger.record({
        step: m.step, epoch: m.epoch, generation: m.generation, worldSize: job.worldSize, samples: m.samples, loss: m.loss, rank: m.rank,
        digest: m.digest, prevDigest: m.prevDigest,
      });
    } catch (e) {
      if (e instanceof SigmaError && e.code === 'SGT_STEP_DIGEST') return e;
      throw e;
    }
    if (!fresh) {
      const n = this.ledger.applications(m.step);
      if (n > 1 && m.rank === 0) this.log.warn({ step: m.step, generation: m.generation, applications: n }, `step ${m.step} applied again in generation ${m.generation} (${n} generations; same state digest)`);
      return undefined;
    }
    this.samples += m.samples;
    this.lastLoss = m.loss;
    const perLayer = m.entropy.map((s) => s.heads.reduce((a, b) => a + b, 0) / Math.max(1, s.heads.length));
    const minEnt = Math.min(...m.entropy.flatMap((s) => s.heads));
    this.minEntropy = Math.min(this.minEntropy, minEnt);
    const sps = this.samples / ((performance.now() - this.started) / 1000);
    this.runLog.step({
      step: m.step, epoch: m.epoch, generation: m.generation, worldSize: job.worldSize, time: Date.now(), loss: m.loss, metrics: m.metrics,
      lr: m.lr, gradNorm: m.gradNorm, temperature: m.temperature, samples: m.samples, units: m.units, unit: m.unit, samplesPerSecond: sps,
      entropy: m.entropy, digest: m.digest, seconds: m.seconds,
    });
    this.guard(m.step, byKind(m.entropy, 'self'), act);
    this.detector.collapsing().forEach((c, l) => this.metrics.recordCollapse(l, c)); // gauge, and onsets counted
    this.metrics.stepDone();
    this.progress.update({
      step: m.step + 1, total: job.totalSteps, epoch: m.epoch, loss: m.loss, metrics: m.metrics,
      samplesPerSecond: sps, minEntropy: minEnt, entropyPerLayer: perLayer,
      worldSize: job.worldSize, generation: m.generation,
    });
    return undefined;
  }

  /** The entropy-collapse guard: metric and log event, then the configured action. */
  private guard(step: number, entropy: number[][], act: (a: GuardAction) => void): void {
    if (!this.config.guard.enabled) return;
    for (const a of this.detector.observe(step, entropy, this.lastBounds)) {
      const message = `entropy collapse in layer ${a.layer} at step ${step}: ${a.entropy.toFixed(3)} nats vs running max ${a.runningMax.toFixed(3)}` +
        (a.bound !== null ? ` (bound ${a.bound.toFixed(3)})` : '');
      this.log.warn({ event: 'entropy_collapse', ...a }, message);
      this.runLog.event({ kind: 'collapse', step, message, layer: a.layer });
      this.metrics.recordCollapse(a.layer, true); // before a rollback resets the detector's verdicts
      if (this.config.guard.action === 'stop') act({ kind: 'stop', reason: message });
      else if (this.config.guard.action === 'rollback') act({ kind: 'rollback', reason: message, onset: Math.max(0, step - this.config.guard.window + 1) });
    }
  }

  evaluation(m: MessageOf<'worker.eval'>): void {
    this.val = { metrics: m.metrics, ema: m.ema };
    this.runLog.evaluation({ step: m.step, epoch: m.epoch, time: Date.now(), metrics: m.metrics, n: m.n, ema: m.ema ?? undefined });
    this.progress.evaluated(m.metrics);
    this.progress.note(`epoch ${m.epoch}: ${metricsText(m.metrics, m.ema)} (${m.n} examples)`, { epoch: m.epoch, metrics: m.metrics, ema: m.ema, step: m.step });
  }

  checkpointed(m: MessageOf<'worker.checkpointed'>): void {
    this.metrics.checkpoint(m.seconds);
    this.log.info({ step: m.step, path: m.path, seconds: m.seconds }, `checkpoint written: step ${m.step}, ${m.path} (${m.seconds.toFixed(1)} s)`);
    this.runLog.event({ kind: 'checkpoint', step: m.step, message: m.path, seconds: m.seconds });
  }

  diagnostics(m: MessageOf<'worker.diagnostics'>): void {
    this.lastBounds = m.entropyBound.length ? byKind(m.entropyBound, 'self') : this.lastBounds;
    this.runLog.diagnostics({
      step: m.step, time: Date.now(), sharpness: m.sharpness ?? undefined, stabilityThreshold: m.stabilityThreshold ?? undefined,
      entropyBound: m.entropyBound, spectral: m.spectral.map((x) => ({ name: x.name, sigma: x.sigma, gamma: x.gamma ?? undefined })),
    });
  }

  /** A line for a person (on the terminal above the bar, or the log). */
  note(text: string, fields?: Record<string, unknown>): void {
    this.progress.note(text, fields);
  }

  /** The progress bar ends (the job is over). */
  stop(): void {
    this.progress.stop();
  }

  /** The job's summary from what was recorded; `job` is the membership machine's part. */
  summary(job: { totalSteps: number; generations: number; workerFailures: number; stoppedEarly: boolean }): JobSummary {
    const seconds = (performance.now() - this.started) / 1000;
    return {
      steps: this.ledger.next, totalSteps: job.totalSteps, generations: job.generations, workerFailures: job.workerFailures, seconds,
      samplesPerSecond: this.samples / seconds, finalLoss: this.lastLoss, task: this.config.task, headline: taskInfo(this.config.task).headline,
      eval: this.val.metrics, emaEval: this.val.ema, minEntropy: this.minEntropy, stoppedEarly: job.stoppedEarly,
    };
  }
}
