// One-process training (`sigmatrain train`): data, model, the step loop with progress, evaluation and a summary;
// /metrics, checkpoints in the run dir (background writer, a final one on stop), resume from the latest.
import type { Config } from '../../shared/config/index.js';
import { CheckpointWriter, listCheckpoints } from '../../shared/checkpoint/store.js';
import { createRegistry, serveMetrics, WorkerMetrics } from '../../shared/metrics/index.js';
import { SigmaError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { initBackend } from '../backend.js';
import { prepareData } from '../data/prepare.js';
import { globalBatches, stepsPerEpoch } from '../data/sampler.js';
import type { ImageCache } from '../data/imagefolder.js';
import { buildModel } from '../models/index.js';
import { Trainer, localReducer, type StepReport } from './trainer.js';
import { evaluate } from './step.js';
import { checkpointDir, loadLatestCheckpoint, saveCheckpoint } from './checkpointing.js';
import { temperatureAt } from './temperature.js';

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
  /** Stopped by a signal before the last step (a final checkpoint holds where). */
  stoppedEarly: boolean;
  /** Step the run resumed from (0: a fresh start). */
  resumedFrom: number;
}

export interface LocalOptions {
  /** Checkpoints go to <runDir>/checkpoints. */
  runDir: string;
  /** auto: continue from the newest checkpoint in runDir; never: refuse a runDir that holds one. */
  resume: 'auto' | 'never';
  /** Polled at every step boundary: true stops the run there with a final checkpoint (SIGTERM/SIGINT). */
  stopRequested?: () => boolean;
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

export async function trainLocal(config: Readonly<Config>, log: Logger, opts: LocalOptions): Promise<TrainSummary> {
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
  const existing = await listCheckpoints(checkpointDir(opts.runDir));
  if (existing.length > 0 && opts.resume !== 'auto') {
    throw new SigmaError('SGT_CLI_USAGE', `run dir ${opts.runDir} already holds checkpoints (latest step ${existing.at(-1)!.step}): pass --resume auto to continue it, or choose another --run-dir`);
  }
  const resumedPath = opts.resume === 'auto' ? await loadLatestCheckpoint(trainer, opts.runDir, config) : undefined;
  const resumedFrom = trainer.step;
  if (resumedPath) log.info({ path: resumedPath, step: resumedFrom }, `resumed from ${resumedPath} (step ${resumedFrom}/${totalSteps})`);
  const registry = createRegistry({ role: 'worker', rank: 0, defaultMetrics: true });
  const metrics = new WorkerMetrics(registry, { perHead: config.metrics.perHead !== 'none' });
  const server = config.metrics.enabled ? await serveMetrics(registry, { host: config.metrics.host, port: config.metrics.port }) : undefined;
  if (server) log.info({ metrics: server.url }, `metrics at ${server.url}`);
  const writer = new CheckpointWriter(checkpointDir(opts.runDir), {
    keep: config.checkpoint.keep,
    onWritten: (i) => log.info({ step: i.step, path: i.path, seconds: i.seconds }, 'checkpoint written'),
  });
  let checkpointed = resumedPath ? resumedFrom : -1;
  const checkpoint = async (): Promise<void> => {
    if (trainer.step === checkpointed) return;
    checkpointed = trainer.step;
    await saveCheckpoint(trainer, opts.runDir, config, {}, writer);
  };
  log.info(
    { backend, params: trainer.state.totalSize, variant: config.model.variant, reparam: config.model.reparam, norm: config.model.norm, steps: totalSteps },
    `model ViT ${config.model.variant} (${trainer.state.totalSize} parameters, reparam=${config.model.reparam}, norm=${config.model.norm}) on ${backend}; ${totalSteps} steps`,
  );
  const start = performance.now();
  let samples = 0;
  let last: StepReport | undefined;
  let minEntropy = Infinity;
  let val = { top1: NaN, loss: NaN, n: 0 };
  let epoch = Math.floor(trainer.step / perEpoch);
  let stoppedEarly = false;
  outer: for (; epoch < config.train.epochs; epoch++) {
    const batches = globalBatches(n, config.seed, epoch, config.train.globalBatch);
    for (let b = trainer.step - epoch * perEpoch; b < batches.length; b++) {
      if (trainer.step >= totalSteps) break outer;
      // A local step never waits on I/O, so without this the loop would starve the event loop: no /metrics
      // answers, no signal handlers, no background checkpoint writes until the run ends.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (opts.stopRequested?.()) {
        stoppedEarly = true;
        log.info({ step: trainer.step }, `stopping at step ${trainer.step}: writing a final checkpoint`);
        break outer;
      }
      const t0 = performance.now();
      const batch = data.train.gather(batches[b]);
      const t1 = performance.now();
      const temperature = temperatureAt(config.model, trainer.step, perEpoch);
      const r = await trainer.trainStep(batch, localReducer, temperature);
      last = r;
      samples += r.samples;
      const ent = layerEntropies(r.entropy);
      minEntropy = Math.min(minEntropy, ...ent);
      metrics.recordStep({
        loss: r.loss, lr: r.lr, gradNorm: r.gradNorm, temperature, samples: batch.n,
        tokens: batch.n * trainer.model.arch.tokens, entropy: r.entropy.map((h) => Array.from(h)),
        phases: { data: (t1 - t0) / 1000, ...r.seconds }, allreduceBytes: 0, allreduceSeconds: 0,
      });
      if (config.checkpoint.everySteps > 0 && trainer.step % config.checkpoint.everySteps === 0 && trainer.step < totalSteps) await checkpoint();
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
  await checkpoint();
  await writer.flush();
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
    stoppedEarly,
    resumedFrom,
  };
  await server?.close();
  trainer.dispose();
  return summary;
}
