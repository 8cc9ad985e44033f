// One-process training (`sigmatrain train`): data, model, the step loop with progress, evaluation and a summary.
import type { Config } from '../../shared/config/index.js';
import { SigmaError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { initBackend } from '../backend.js';
import { prepareData } from '../data/prepare.js';
import { globalBatches, stepsPerEpoch } from '../data/sampler.js';
import type { ImageCache } from '../data/imagefolder.js';
import { buildModel } from '../models/index.js';
import { Trainer, localReducer, type StepReport } from './trainer.js';
import { evaluate } from './step.js';

export interface TrainSummary {
  backend: string;
  steps: number;
  epochs: number;
  seconds: number;
  samplesPerSecond: number;
  finalLoss: number;
  valTop1: number;
  valLoss: number;
  minEntropy: number;
  skipped: number;
}

/** Mean over heads per layer, formatted for a progress line. */
export function layerEntropies(entropy: Float32Array[]): number[] {
  return entropy.map((h) => h.reduce((a, b) => a + b, 0) / h.length);
}

export function evaluateCache(trainer: Trainer, cache: ImageCache): { top1: number; loss: number; n: number } {
  const all = cache.gather(cache.index.ids);
  const r = evaluate(trainer.model, trainer.state, all.x, all.y, all.n, 128, trainer.config.model.temperature);
  return { top1: r.correct / Math.max(1, r.n), loss: r.lossSum / Math.max(1, r.n), n: r.n };
}

export async function trainLocal(config: Readonly<Config>, log: Logger): Promise<TrainSummary> {
  if (config.data.kind === 'imagenet') {
    throw new SigmaError('SGT_CLI_USAGE', 'data.kind imagenet streams through the distributed runtime: use `sigmatrain run --config … --workers N` (one worker is fine)');
  }
  const backend = await initBackend(config.backend, (msg, fields) => log.info(fields ?? {}, msg));
  const t0 = performance.now();
  const data = await prepareData(config);
  const skipped = data.train.skipped.length + data.val.skipped.length;
  for (const s of [...data.train.skipped, ...data.val.skipped]) log.warn({ path: s.path, reason: s.reason }, 'skipped unreadable image');
  log.info(
    { root: config.data.root, train: data.train.rows, val: data.val.rows, classes: data.classes.length, generated: data.generated, seconds: +((performance.now() - t0) / 1000).toFixed(2) },
    `dataset ready: ${data.train.rows} train / ${data.val.rows} val images, ${data.classes.length} classes`,
  );
  const model = buildModel(config);
  const n = data.train.index.ids.length;
  const perEpoch = stepsPerEpoch(n, config.train.globalBatch, false);
  const planned = config.train.epochs * perEpoch;
  const totalSteps = config.train.maxSteps > 0 ? Math.min(config.train.maxSteps, planned) : planned;
  const trainer = new Trainer(config, model, 0, totalSteps);
  trainer.stepsPerEpoch = perEpoch;
  log.info(
    { backend, params: trainer.state.totalSize, variant: config.model.variant, reparam: config.model.reparam, norm: config.model.norm, steps: totalSteps },
    `model ViT ${config.model.variant} (${trainer.state.totalSize} parameters, reparam=${config.model.reparam}, norm=${config.model.norm}) on ${backend}; ${totalSteps} steps`,
  );
  const start = performance.now();
  let samples = 0;
  let last: StepReport | undefined;
  let minEntropy = Infinity;
  let val = { top1: NaN, loss: NaN, n: 0 };
  let epoch = 0;
  outer: for (; epoch < config.train.epochs; epoch++) {
    for (const ids of globalBatches(n, config.seed, epoch, config.train.globalBatch)) {
      if (trainer.step >= totalSteps) break outer;
      const batch = data.train.gather(ids);
      const r = await trainer.trainStep(batch, localReducer);
      last = r;
      samples += r.samples;
      const ent = layerEntropies(r.entropy);
      minEntropy = Math.min(minEntropy, ...ent);
      if (r.step % config.train.logEverySteps === 0 || trainer.step === totalSteps) {
        const sps = samples / ((performance.now() - start) / 1000);
        log.info(
          { step: trainer.step, epoch: epoch + 1, loss: +r.loss.toFixed(4), accuracy: +r.accuracy.toFixed(4), lr: r.lr, gradNorm: +r.gradNorm.toFixed(4), entropy: ent.map((e) => +e.toFixed(3)), samplesPerSecond: +sps.toFixed(1) },
          `step ${trainer.step}/${totalSteps} epoch ${epoch + 1} loss ${r.loss.toFixed(4)} acc ${r.accuracy.toFixed(3)} entropy/layer [${ent.map((e) => e.toFixed(2)).join(' ')}] ${sps.toFixed(1)} samples/s`,
        );
      }
    }
    if ((epoch + 1) % config.train.evalEveryEpochs === 0 || epoch + 1 === config.train.epochs) {
      val = evaluateCache(trainer, data.val);
      log.info({ epoch: epoch + 1, valTop1: val.top1, valLoss: val.loss }, `epoch ${epoch + 1}: val_top1=${val.top1.toFixed(3)} val_loss=${val.loss.toFixed(4)}`);
    }
  }
  if (epoch < config.train.epochs) {
    val = evaluateCache(trainer, data.val);
    log.info({ valTop1: val.top1, valLoss: val.loss }, `stopped at step ${trainer.step}: val_top1=${val.top1.toFixed(3)}`);
  }
  const seconds = (performance.now() - start) / 1000;
  const summary: TrainSummary = {
    backend,
    steps: trainer.step,
    epochs: Math.min(epoch + 1, config.train.epochs),
    seconds,
    samplesPerSecond: samples / seconds,
    finalLoss: last?.loss ?? NaN,
    valTop1: val.top1,
    valLoss: val.loss,
    minEntropy,
    skipped,
  };
  trainer.dispose();
  return summary;
}
