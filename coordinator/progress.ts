// Progress for a person: a live bar on a terminal (step, epoch, loss, samples/s, minimum entropy) with the log lines
// printed above it, log lines otherwise.
import type { Logger } from '../shared/log.js';
import type { Terminal } from './terminal.js';

export interface ProgressPoint {
  step: number;
  total: number;
  epoch: number;
  loss: number;
  accuracy: number;
  samplesPerSecond: number;
  minEntropy: number;
  entropyPerLayer: number[];
  worldSize: number;
  generation: number;
}

export class Progress {
  /**
   * @param terminal the bar's host on a terminal (it also prints the log lines above the bar); without one,
   *   progress goes to the log every `logEvery` steps.
   */
  constructor(
    private readonly log: Logger,
    private readonly logEvery: number,
    private readonly terminal?: Terminal,
  ) {}

  update(p: ProgressPoint): void {
    if (this.terminal) {
      this.terminal.progress(p.step, p.total, {
        epoch: p.epoch + 1, loss: p.loss.toFixed(4), acc: p.accuracy.toFixed(3), sps: p.samplesPerSecond.toFixed(1),
        ent: p.minEntropy.toFixed(3), world: p.worldSize,
      });
      return;
    }
    if (p.step % this.logEvery === 0 || p.step === p.total) {
      this.log.info(
        { step: p.step, epoch: p.epoch + 1, loss: +p.loss.toFixed(4), accuracy: +p.accuracy.toFixed(4), samplesPerSecond: +p.samplesPerSecond.toFixed(1), entropy: p.entropyPerLayer.map((e) => +e.toFixed(3)), worldSize: p.worldSize, generation: p.generation },
        `step ${p.step}/${p.total} epoch ${p.epoch + 1} loss ${p.loss.toFixed(4)} acc ${p.accuracy.toFixed(3)} ` +
          `entropy/layer [${p.entropyPerLayer.map((e) => e.toFixed(2)).join(' ')}] ${p.samplesPerSecond.toFixed(1)} samples/s (${p.worldSize} workers)`,
      );
    }
  }

  /** Something a person should see: a log line (above the bar on a terminal). */
  note(msg: string, fields: Record<string, unknown> = {}): void {
    this.log.info(fields, msg);
  }

  stop(): void {
    this.terminal?.stop();
  }
}
