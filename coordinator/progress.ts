// Progress for a person: a live bar on a terminal (step, epoch, loss, the task's step metrics and headline evaluation
// metric, samples/s, minimum entropy) with the log lines printed above it, log lines otherwise. Metric names are the
// task's; nothing here knows what they mean.
import type { Logger } from '../shared/log.js';
import type { Terminal } from './terminal.js';

export interface ProgressPoint {
  step: number;
  total: number;
  epoch: number;
  loss: number;
  /** The task's per-step metrics (e.g. accuracy). */
  metrics: Record<string, number>;
  samplesPerSecond: number;
  minEntropy: number;
  entropyPerLayer: number[];
  worldSize: number;
  generation: number;
}

const metricsText = (p: ProgressPoint): string => Object.entries(p.metrics).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(' ');

export class Progress {
  private headlineValue = NaN;
  /** The point the bar shows, redrawn when an evaluation arrives between steps (the final one comes after the last). */
  private last: ProgressPoint | undefined;

  /**
   * @param terminal the bar's host on a terminal (it also prints the log lines above the bar); without one,
   *   progress goes to the log every `logEvery` steps.
   * @param headline the task's evaluation metric shown on the bar (e.g. val_top1).
   */
  constructor(
    private readonly log: Logger,
    private readonly logEvery: number,
    private readonly terminal?: Terminal,
    private readonly headline = 'val_top1',
  ) {}

  /** The latest evaluation: the bar shows its headline metric from now on. */
  evaluated(metrics: Record<string, number>): void {
    if (!(this.headline in metrics)) return;
    this.headlineValue = metrics[this.headline];
    if (this.terminal && this.last) this.draw(this.terminal, this.last);
  }

  update(p: ProgressPoint): void {
    this.last = p;
    if (this.terminal) {
      this.draw(this.terminal, p);
      return;
    }
    const metrics = metricsText(p);
    if (p.step % this.logEvery === 0 || p.step === p.total) {
      this.log.info(
        { step: p.step, epoch: p.epoch + 1, loss: +p.loss.toFixed(4), metrics: p.metrics, samplesPerSecond: +p.samplesPerSecond.toFixed(1), entropy: p.entropyPerLayer.map((e) => +e.toFixed(3)), worldSize: p.worldSize, generation: p.generation },
        `step ${p.step}/${p.total} epoch ${p.epoch + 1} loss ${p.loss.toFixed(4)} ${metrics} ` +
          `entropy/layer [${p.entropyPerLayer.map((e) => e.toFixed(2)).join(' ')}] ${p.samplesPerSecond.toFixed(1)} samples/s (${p.worldSize} workers)`,
      );
    }
  }

  private draw(terminal: Terminal, p: ProgressPoint): void {
    const metrics = metricsText(p);
    const headline = Number.isFinite(this.headlineValue) ? this.headlineValue.toFixed(3) : '—';
    terminal.progress(p.step, p.total, {
      epoch: p.epoch + 1, loss: p.loss.toFixed(4), metrics: `${metrics} ${this.headline} ${headline}`.trim(),
      sps: p.samplesPerSecond.toFixed(1), ent: p.minEntropy.toFixed(3), world: p.worldSize,
    });
  }

  /** Something a person should see: a log line (above the bar on a terminal). */
  note(msg: string, fields: Record<string, unknown> = {}): void {
    this.log.info(fields, msg);
  }

  stop(): void {
    this.terminal?.stop();
  }
}
