// One-process training (`sigmatrain train`): the one loop (loop.ts) with a LocalCollective and console hooks —
// progress lines, evaluation (raw and EMA weights), diagnostics, /metrics, checkpoints in the run dir (background
// writer, a final one on stop), resume from the latest, and a summary.
import type { Config } from '../../shared/config/index.js';
import { CheckpointWriter, listCheckpoints } from '../../shared/checkpoint/store.js';
import { createRegistry, serveMetrics, WorkerMetrics } from '../../shared/metrics/index.js';
import { SigmaError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { metricsText, type RunResult } from '../../shared/summary.js';
import { taskInfo } from '../../shared/tasks.js';
import { initBackend } from '../backend.js';
import { LocalCollective } from '../comm/collective.js';
import { createTask } from '../tasks/index.js';
import { Trainer, type StepReport } from './trainer.js';
import { checkpointDir, loadLatestCheckpoint, saveCheckpoint } from './checkpointing.js';
import { temperatureAt } from './temperature.js';
import { validate, type Validation } from './validation.js';
import { plannedSteps } from './plan.js';
import { runLoop } from './loop.js';

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

/** Mean over heads per site, formatted for a progress line. */
export function siteEntropies(entropy: readonly { heads: number[] }[]): number[] {
  return entropy.map((s) => s.heads.reduce((a, b) => a + b, 0) / Math.max(1, s.heads.length));
}

export async function trainLocal(config: Readonly<Config>, log: Logger, opts: LocalOptions): Promise<TrainSummary> {
  const backend = await initBackend(config.backend, (msg, fields) => log.info(fields ?? {}, msg));
  const t0 = performance.now();
  const task = createTask(config);
  const data = await task.open();
  let skipped = data.initiallySkipped.length;
  for (const s of data.initiallySkipped) log.warn({ path: s.path, reason: s.reason }, `skipped unreadable item ${s.path}`);
  log.info({ task: task.name, seconds: +((performance.now() - t0) / 1000).toFixed(2) }, `dataset ready: ${data.description}`);
  const perEpoch = data.stepsPerEpoch;
  const totalSteps = plannedSteps(config, perEpoch);
  const trainer = new Trainer(config, task, { rank: 0, totalSteps, stepsPerEpoch: perEpoch, lrScale: 1 });
  const existing = await listCheckpoints(checkpointDir(opts.runDir));
  if (existing.length > 0 && opts.resume !== 'auto') {
    throw new SigmaError('SGT_CLI_USAGE', `run dir ${opts.runDir} already holds checkpoints (latest step ${existing.at(-1)!.step}): pass --resume auto to continue it, or choose another --run-dir`);
  }
  const resumedPath = opts.resume === 'auto' ? await loadLatestCheckpoint(trainer, opts.runDir) : undefined;
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
  const collective = new LocalCollective();
  const temperature = (step: number) => temperatureAt(config.model, step, perEpoch);
  let val: Validation | undefined;
  let valStep = -1;
  const showEval = (v: Validation, what: string): void => {
    val = v;
    valStep = trainer.step;
    log.info({ step: trainer.step, metrics: v.metrics, ema: v.ema, n: v.n }, `${what}: ${metricsText(v.metrics, v.ema)}`);
  };
  log.info(
    { backend, task: task.name, family: task.model.family, params: trainer.state.totalSize, reparam: config.model.reparam, norm: config.model.norm, steps: totalSteps },
    `task ${task.name}, model ${task.model.family} (${trainer.state.totalSize} parameters, reparam=${config.model.reparam}, norm=${config.model.norm}) on ${backend}; ${totalSteps} steps`,
  );
  const start = performance.now();
  let samples = 0;
  let last: StepReport | undefined;
  let minEntropy = Infinity;
  let stoppedEarly = false;
  const finished = await runLoop({ config, trainer, data, collective, totalSteps, temperature, log, metrics }, {
    async beforeStep(step) {
      if (!opts.stopRequested?.()) return false;
      stoppedEarly = true;
      log.info({ step }, `stopping at step ${step}: writing a final checkpoint`);
      return true;
    },
    onStep(r, info) {
      last = r;
      samples += r.samples;
      skipped += info.skipped;
      const ent = siteEntropies(r.entropy);
      minEntropy = Math.min(minEntropy, ...r.entropy.flatMap((s) => s.heads));
      const done = r.step + 1;
      if (r.step % config.train.logEverySteps === 0 || done === totalSteps) {
        const sps = samples / ((performance.now() - start) / 1000);
        const m = Object.entries(r.metrics).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(' ');
        log.info(
          { step: done, epoch: info.epoch + 1, loss: +r.loss.toFixed(4), metrics: r.metrics, lr: r.lr, gradNorm: +r.gradNorm.toFixed(4), entropy: ent.map((e) => +e.toFixed(3)), samplesPerSecond: +sps.toFixed(1) },
          `step ${done}/${totalSteps} epoch ${info.epoch + 1} loss ${r.loss.toFixed(4)} ${m} entropy/site [${ent.map((e) => e.toFixed(2)).join(' ')}] ${sps.toFixed(1)} samples/s`,
        );
      }
    },
    onEval(v, epoch) {
      showEval(v, `epoch ${epoch}`);
    },
    async checkpoint(final) {
      await checkpoint();
      if (final) await writer.flush();
    },
  });
  await checkpoint();
  await writer.flush();
  if (valStep !== trainer.step) {
    const v = await validate(trainer, data, collective, temperature(trainer.step), { periodic: true, final: finished });
    showEval(v, `${finished ? 'ended' : 'stopped'} at step ${trainer.step}`);
  }
  const seconds = (performance.now() - start) / 1000;
  const summary: TrainSummary = {
    backend,
    task: task.name,
    headline: taskInfo(task.name).headline,
    steps: trainer.step,
    epochs: Math.ceil(trainer.step / perEpoch),
    seconds,
    samplesPerSecond: samples / seconds,
    finalLoss: last?.loss ?? NaN,
    eval: val?.metrics ?? {},
    emaEval: val?.ema ?? null,
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

