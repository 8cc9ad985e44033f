// Progress for a person: a live bar on a TTY (step, epoch, loss, the task's headline metric, samples/s, minimum
// entropy), log lines otherwise. Metric names are the task's; nothing here knows what they mean.
import cliProgress from 'cli-progress';
import type { Logger } from '../shared/log.js';

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

export class Progress {
  private bar: cliProgress.SingleBar | undefined;
  private headlineValue = NaN;

  /** `headline`: the task's evaluation metric shown on the bar (e.g. val_top1). */
  constructor(
    private readonly log: Logger,
    private readonly logEvery: number,
    tty = Boolean(process.stderr.isTTY),
    private readonly headline = 'val_top1',
  ) {
    if (tty) {
      this.bar = new cliProgress.SingleBar(
        {
          format: `step {value}/{total} |{bar}| ep {epoch} loss {loss} {metrics} ${headline} {headline} {sps} samples/s min-entropy {ent} nats workers {world}`,
          stream: process.stderr,
          hideCursor: true,
          barsize: 24,
        },
        cliProgress.Presets.shades_classic,
      );
    }
  }

  /** The latest evaluation: the bar shows its headline metric from now on. */
  evaluated(metrics: Record<string, number>): void {
    if (this.headline in metrics) this.headlineValue = metrics[this.headline];
  }

  update(p: ProgressPoint): void {
    const metrics = Object.entries(p.metrics).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(' ');
    const fields = {
      epoch: p.epoch + 1, loss: p.loss.toFixed(4), metrics, headline: Number.isFinite(this.headlineValue) ? this.headlineValue.toFixed(3) : '—',
      sps: p.samplesPerSecond.toFixed(1), ent: p.minEntropy.toFixed(3), world: p.worldSize,
    };
    if (this.bar) {
      if (!this.bar.isActive) this.bar.start(p.total, p.step, fields);
      else this.bar.update(p.step, fields);
      return;
    }
    if (p.step % this.logEvery === 0 || p.step === p.total) {
      this.log.info(
        { step: p.step, epoch: p.epoch + 1, loss: +p.loss.toFixed(4), metrics: p.metrics, samplesPerSecond: +p.samplesPerSecond.toFixed(1), entropy: p.entropyPerLayer.map((e) => +e.toFixed(3)), worldSize: p.worldSize, generation: p.generation },
        `step ${p.step}/${p.total} epoch ${p.epoch + 1} loss ${p.loss.toFixed(4)} ${metrics} ` +
          `entropy/layer [${p.entropyPerLayer.map((e) => e.toFixed(2)).join(' ')}] ${p.samplesPerSecond.toFixed(1)} samples/s (${p.worldSize} workers)`,
      );
    }
  }

  /** Something a person should see even with the bar up. */
  note(msg: string, fields: Record<string, unknown> = {}): void {
    if (this.bar?.isActive) this.bar.stop();
    this.log.info(fields, msg);
  }

  stop(): void {
    this.bar?.stop();
  }
}
