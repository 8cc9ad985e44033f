// One-process training (`sigmatrain train`): the data source, model and step loop of a worker without a coordinator
// or ring — progress, evaluation (raw and EMA weights), /metrics, checkpoints in the run dir (background writer, a
// final one on stop), resume from the latest, and a summary.
import type { Config } from '../../shared/config/index.js';
import { CheckpointWriter, listCheckpoints } from '../../shared/checkpoint/store.js';
import { createRegistry, serveMetrics, WorkerMetrics } from '../../shared/metrics/index.js';
import { SigmaError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { RunResult } from '../../shared/summary.js';
import { initBackend } from '../backend.js';
import { openDataSource } from '../data/source.js';
import { buildModel } from '../models/index.js';
import { Trainer, localReducer, type StepReport } from './trainer.js';
import { checkpointDir, loadLatestCheckpoint, saveCheckpoint } from './checkpointing.js';
import { temperatureAt } from './temperature.js';
import { fromSums, validationSums, type Validation } from './validation.js';
import { plannedSteps, validationEpoch } from './plan.js';

export interface TrainSummary extends RunResult {
  backend: string;
  epochs: number;
  skipped: number;
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

export async function trainLocal(config: Readonly<Config>, log: Logger, opts: LocalOptions): Promise<TrainSummary> {
  const backend = await initBackend(config.backend, (msg, fields) => log.info(fields ?? {}, msg));
  const t0 = performance.now();
  const data = await openDataSource(config);
  let skipped = data.initiallySkipped.length;
  for (const s of data.initiallySkipped) log.warn({ path: s.path, reason: s.reason }, `skipped unreadable image ${s.path}`);
  log.info(
    { root: config.data.root, train: data.trainSize, classes: data.classes.length, seconds: +((performance.now() - t0) / 1000).toFixed(2) },
    `dataset ready: ${data.trainSize} train images, ${data.classes.length} classes`,
  );
  const model = buildModel(config);
  const perEpoch = data.stepsPerEpoch;
  const totalSteps = plannedSteps(config, perEpoch);
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
  metrics.recordSkipped(skipped);
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
  let val: Validation | undefined;
  let valStep = -1;
  const validate = async (what: string): Promise<void> => {
    const tau = temperatureAt(config.model, trainer.step, perEpoch);
    val = fromSums(await validationSums(trainer, data, 1, 0, tau), trainer.ema !== undefined);
    valStep = trainer.step;
    const ema = val.ema ? ` ema_val_top1=${val.ema.top1.toFixed(3)}` : '';
    log.info({ step: trainer.step, valTop1: val.top1, valTop5: val.top5, valLoss: val.loss, ema: val.ema, n: val.n },
      `${what}: val_top1=${val.top1.toFixed(3)} val_top5=${val.top5.toFixed(3)} val_loss=${val.loss.toFixed(4)}${ema}`);
  };
  log.info(
    { backend, params: trainer.state.totalSize, variant: config.model.variant, reparam: config.model.reparam, norm: config.model.norm, steps: totalSteps },
    `model ViT ${config.model.variant} (${trainer.state.totalSize} parameters, reparam=${config.model.reparam}, norm=${config.model.norm}) on ${backend}; ${totalSteps} steps`,
  );
  const start = performance.now();
  let samples = 0;
  let last: StepReport | undefined;
  let minEntropy = Infinity;
  let stoppedEarly = false;
  while (trainer.step < totalSteps) {
    // A local step never waits on I/O, so without this the loop would starve the event loop: no /metrics
    // answers, no signal handlers, no background checkpoint writes until the run ends.
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (opts.stopRequested?.()) {
      stoppedEarly = true;
      log.info({ step: trainer.step }, `stopping at step ${trainer.step}: writing a final checkpoint`);
      break;
    }
    const step = trainer.step;
    const epoch = Math.floor(step / perEpoch);
    const tData = performance.now();
    const batch = await data.trainBatch(step, 1, 0);
    for (const s of batch.skipped) log.warn({ path: s.path, reason: s.reason, step }, `skipped unreadable image ${s.path}`);
    skipped += batch.skipped.length;
    metrics.recordSkipped(batch.skipped.length);
    const dataSeconds = (performance.now() - tData) / 1000;
    const temperature = temperatureAt(config.model, step, perEpoch);
    const r = await trainer.trainStep(batch, localReducer, temperature);
    last = r;
    samples += r.samples;
    const ent = layerEntropies(r.entropy);
    minEntropy = Math.min(minEntropy, ...ent);
    metrics.recordStep({
      loss: r.loss, lr: r.lr, gradNorm: r.gradNorm, temperature, samples: batch.n,
      tokens: batch.n * trainer.model.arch.tokens, entropy: r.entropy.map((h) => Array.from(h)),
      phases: { data: dataSeconds, ...r.seconds }, allreduceBytes: 0, allreduceSeconds: 0,
    });
    const done = trainer.step;
    if (r.step % config.train.logEverySteps === 0 || done === totalSteps) {
      const sps = samples / ((performance.now() - start) / 1000);
      log.info(
        { step: done, epoch: epoch + 1, loss: +r.loss.toFixed(4), accuracy: +r.accuracy.toFixed(4), lr: r.lr, gradNorm: +r.gradNorm.toFixed(4), entropy: ent.map((e) => +e.toFixed(3)), samplesPerSecond: +sps.toFixed(1) },
        `step ${done}/${totalSteps} epoch ${epoch + 1} loss ${r.loss.toFixed(4)} acc ${r.accuracy.toFixed(3)} entropy/layer [${ent.map((e) => e.toFixed(2)).join(' ')}] ${sps.toFixed(1)} samples/s`,
      );
    }
    if (config.checkpoint.everySteps > 0 && done % config.checkpoint.everySteps === 0 && done < totalSteps) await checkpoint();
    const e = validationEpoch(config, done, perEpoch, totalSteps);
    if (e !== null) await validate(`epoch ${e}`);
  }
  await checkpoint();
  await writer.flush();
  if (valStep !== trainer.step) await validate(`${stoppedEarly ? 'stopped' : 'ended'} at step ${trainer.step}`);
  const seconds = (performance.now() - start) / 1000;
  const summary: TrainSummary = {
    backend,
    steps: trainer.step,
    epochs: Math.ceil(trainer.step / perEpoch),
    seconds,
    samplesPerSecond: samples / seconds,
    finalLoss: last?.loss ?? NaN,
    valTop1: val?.top1 ?? NaN,
    valTop5: val?.top5 ?? NaN,
    valLoss: val?.loss ?? NaN,
    emaValTop1: val?.ema?.top1 ?? null,
    minEntropy,
    skipped,
    stoppedEarly,
    resumedFrom,
  };
  await server?.close();
  await data.close();
  trainer.dispose();
  return summary;
}
