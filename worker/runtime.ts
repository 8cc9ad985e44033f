// A worker process: connects to the coordinator, joins generations, syncs state over the ring, trains its shard,
// reports every step, checkpoints (rank 0), and survives peers and the coordinator going away.
import { createHash } from 'node:crypto';
import { Dealer } from 'zeromq';
import { SigmaError } from '../shared/errors.js';
import type { Config } from '../shared/config/index.js';
import { configHash } from '../shared/config/index.js';
import type { Logger } from '../shared/log.js';
import { encode, decode, type MessageOf, type Outgoing } from '../shared/protocol/index.js';
import { initBackend } from './backend.js';
import { openDataSource, type DataSource } from './data/source.js';
import { buildModel } from './models/index.js';
import { Ring } from './comm/ring.js';
import { Liveness } from './comm/liveness.js';
import { Trainer, type StepReport } from './train/trainer.js';
import { stateLayout, packState, unpackState, type StateLayout } from './train/snapshot.js';
import { validationSums, fromSums } from './train/validation.js';
import { plannedSteps, validationEpoch } from './train/plan.js';
import { layerEntropies } from './train/local.js';
import { saveCheckpoint, loadLatestCheckpoint, loadCheckpointAtOrBefore, checkpointDir } from './train/checkpointing.js';
import { temperatureAt, type TemperatureOverride } from './train/temperature.js';
import { entropyBounds, spectralStats } from './diagnostics/bounds.js';
import { sharpness } from './diagnostics/sharpness.js';
import { stabilityThreshold } from './diagnostics/thresholds.js';
import { CheckpointWriter } from '../shared/checkpoint/store.js';
import { injectFault } from './faults.js';
import { createRegistry, setRank, serveMetrics, WorkerMetrics } from '../shared/metrics/index.js';

export interface WorkerOptions {
  workerId: string;
  /** tcp://HOST:PORT of the coordinator's ROUTER. */
  coordinator: string;
  /** Where peers reach this worker's ring PULL (ipc://… or tcp://host:port). */
  ringEndpoint: string;
  /** What the PULL binds (tcp://0.0.0.0:port for tcp; the same ipc:// path otherwise). */
  ringListen: string;
  /** Port of this process's /metrics (0: ephemeral); undefined: metrics.enabled is false. */
  metricsPort?: number;
}

type Start = MessageOf<'coord.start'>;

class Stopping extends Error {}

export class Worker {
  private readonly dealer: Dealer;
  private trainer!: Trainer;
  private layout!: StateLayout;
  private data!: DataSource;
  private ring: Ring | undefined;
  private generation = -1;
  private rank = -1;
  private worldSize = 0;
  /** Set by coord.abort: stop before running step `atStep` (or at once when null) of `generation`. */
  private abort: { generation: number; atStep: number | null } | undefined;
  private stop: { checkpoint: boolean; atStep: number | null } | undefined;
  private pendingStart: Start | undefined;
  private wake: (() => void) | undefined;
  private sendChain: Promise<void> = Promise.resolve();
  private lastCoordinatorSeen = Date.now();
  private heartbeat: NodeJS.Timeout | undefined;
  private liveness: Liveness | undefined;
  private finished = false;
  private temperatureOverride: TemperatureOverride | null = null;
  private readonly registry = createRegistry({ role: 'worker', rank: 0, defaultMetrics: true });
  private readonly metrics: WorkerMetrics;
  private metricsServer: { url: string; close(): Promise<void> } | undefined;
  /** Rank 0 writes checkpoints in the background so a slow disk never stalls the ring. */
  private writer: CheckpointWriter | undefined;

  constructor(
    private readonly config: Readonly<Config>,
    private readonly opts: WorkerOptions,
    private readonly log: Logger,
  ) {
    this.metrics = new WorkerMetrics(this.registry, { perHead: config.metrics.perHead !== 'none' });
    this.dealer = new Dealer({
      routingId: opts.workerId,
      sendHighWaterMark: 10000,
      reconnectInterval: 100,
      reconnectMaxInterval: 1000,
      linger: 1000,
    });
  }

  /** Sends in order (one pending send per socket); never throws into the training loop. */
  private send(msg: Outgoing): void {
    const frame = encode(msg);
    this.sendChain = this.sendChain.then(
      () => this.dealer.send(frame),
    ).catch((e: unknown) => this.log.warn({ err: (e as Error).message, type: msg.type }, 'control message not sent'));
  }

  async run(): Promise<number> {
    const backend = await initBackend(this.config.backend, (msg, fields) => this.log.info(fields ?? {}, msg));
    this.data = await openDataSource(this.config);
    const model = buildModel(this.config);
    this.trainer = new Trainer(this.config, model, 0, plannedSteps(this.config, this.data.stepsPerEpoch));
    this.trainer.stepsPerEpoch = this.data.stepsPerEpoch;
    this.layout = stateLayout(this.trainer);
    if (this.opts.metricsPort !== undefined) {
      this.metricsServer = await serveMetrics(this.registry, { host: this.config.metrics.host, port: this.opts.metricsPort });
      this.log.info({ metrics: this.metricsServer.url }, `metrics at ${this.metricsServer.url}`);
    }
    for (const s of this.data.initiallySkipped) this.log.warn({ path: s.path, reason: s.reason }, `skipped unreadable image ${s.path}`);
    this.metrics.recordSkipped(this.data.initiallySkipped.length);
    this.dealer.connect(this.opts.coordinator);
    this.log.info({ backend, coordinator: this.opts.coordinator, ring: this.opts.ringEndpoint, cudaVisibleDevices: process.env.CUDA_VISIBLE_DEVICES ?? null }, `worker ${this.opts.workerId} ready on ${backend}; connecting to ${this.opts.coordinator}`);
    this.send({
      type: 'worker.hello', workerId: this.opts.workerId, configHash: configHash(this.config), host: process.env.HOSTNAME ?? '',
      pid: process.pid, ringEndpoint: this.opts.ringEndpoint, totalSteps: this.trainer.totalSteps, held: null,
    });
    this.heartbeat = setInterval(() => this.beat(), this.config.dist.heartbeatMs);
    this.liveness = new Liveness({
      coordinator: this.opts.coordinator, workerId: this.opts.workerId,
      intervalMs: this.config.dist.heartbeatMs, busyTimeoutMs: this.config.dist.busyTimeoutMs,
    });
    void this.receive();
    try {
      for (;;) {
        const start = await this.nextStart();
        if (!start) break;
        await this.runGeneration(start);
        if (this.finished || this.stop) break;
      }
    } finally {
      clearInterval(this.heartbeat);
      await this.liveness?.stop();
      await this.sendChain;
      await this.ring?.close().catch(() => undefined);
      this.dealer.close();
      await this.metricsServer?.close();
      this.trainer.dispose();
      await this.data.close();
    }
    return 0;
  }

  private beat(): void {
    this.liveness?.touch();
    const launcher = Number(process.env.SGT_LAUNCHER_PID);
    if (launcher > 0 && process.ppid !== launcher) {
      this.log.error({ launcher }, 'launcher process is gone; exiting');
      process.exit(1);
    }
    this.send({
      type: 'worker.heartbeat', workerId: this.opts.workerId, generation: Math.max(0, this.generation), rank: this.rank,
      step: this.trainer.step, ringEndpoint: this.opts.ringEndpoint, worldSize: Math.max(1, this.worldSize),
      state: this.finished ? 'done' : this.ring ? 'training' : 'idle',
    });
    const silent = Date.now() - this.lastCoordinatorSeen;
    if (silent > this.config.dist.heartbeatTimeoutMs * 3 && silent < this.config.dist.heartbeatTimeoutMs * 3 + this.config.dist.heartbeatMs) {
      this.log.warn({ silentMs: silent }, 'coordinator silent; training goes on and reports are queued until it is back');
    }
  }

  private async receive(): Promise<void> {
    for await (const frames of this.dealer) {
      const d = decode(frames[frames.length - 1]);
      if (!d.ok) {
        this.log.warn({ error: d.error }, 'bad control message from the coordinator');
        this.send({ type: 'error', code: 'SGT_PROTOCOL', message: d.error, inReplyTo: d.id, fatal: false });
        continue;
      }
      this.lastCoordinatorSeen = Date.now();
      const m = d.msg;
      switch (m.type) {
        case 'coord.start':
          this.pendingStart = m;
          break;
        case 'coord.abort':
          if (m.generation >= this.generation) {
            this.abort = { generation: m.generation, atStep: m.atStep };
            this.log.info({ generation: m.generation, atStep: m.atStep, reason: m.reason }, 'abort requested');
            if (m.atStep === null) void this.ring?.close();
          }
          break;
        case 'coord.stop':
          this.stop = { checkpoint: m.checkpoint, atStep: m.atStep };
          this.log.info({ reason: m.reason }, 'stop requested');
          break;
        case 'coord.heartbeat':
          break;
        case 'coord.set-temperature':
          this.temperatureOverride = { value: m.value, fromStep: m.fromStep };
          this.log.info({ value: m.value, fromStep: m.fromStep }, `attention temperature → ${m.value} from step ${m.fromStep}`);
          break;
        case 'error':
          this.log.error({ code: m.code, message: m.message }, `coordinator: ${m.message}`);
          if (m.fatal) {
            process.exitCode = 3;
            this.stop = { checkpoint: false, atStep: null };
          }
          break;
        default:
          this.send({ type: 'error', code: 'SGT_PROTOCOL', message: `unexpected ${m.type} at a worker`, inReplyTo: m.id, fatal: false });
      }
      this.wake?.();
    }
  }

  /** Waits for coord.start (or stop). */
  private async nextStart(): Promise<Start | undefined> {
    for (;;) {
      if (this.stop) return undefined;
      if (this.pendingStart) {
        const s = this.pendingStart;
        this.pendingStart = undefined;
        return s;
      }
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, 200);
      });
    }
  }

  private async runGeneration(start: Start): Promise<void> {
    this.generation = start.generation;
    this.rank = start.rank;
    this.worldSize = start.worldSize;
    this.abort = undefined;
    this.trainer.rank = start.rank;
    this.trainer.totalSteps = start.totalSteps;
    this.trainer.lrScale = start.lrScale;
    this.temperatureOverride = start.temperatureOverride;
    setRank(this.registry, 'worker', start.rank);
    this.metrics.setPerHead(this.config.metrics.perHead === 'all' || (this.config.metrics.perHead === 'rank0' && start.rank === 0));
    const log = this.log.child({ generation: start.generation, rank: start.rank });
    const ring = new Ring({
      rank: start.rank, worldSize: start.worldSize, listen: this.opts.ringListen, next: start.peers[(start.rank + 1) % start.worldSize],
      generation: start.generation, chunkBytes: this.config.dist.chunkBytes, timeoutMs: this.config.dist.allreduceTimeoutMs,
      logger: log,
    });
    this.ring = ring;
    try {
      await ring.open();
      await this.syncState(start, ring, log);
      const local = Math.ceil(this.config.train.globalBatch / start.worldSize);
      const micro = this.config.train.microBatch;
      const accumulation = micro > 0 ? Math.ceil(local / micro) : 1;
      log.info({ step: this.trainer.step, worldSize: start.worldSize, perWorkerBatch: local, accumulation },
        `generation ${start.generation}: rank ${start.rank}/${start.worldSize} from step ${this.trainer.step}; batch ${this.config.train.globalBatch} = ${start.worldSize} × ≤${local}` +
        (accumulation > 1 ? ` (${accumulation} micro-batches of ≤${micro})` : ''));
      await this.trainLoop(start, ring, log);
    } catch (e) {
      const reason = e instanceof Stopping ? e.message : `${(e as Error).message}`;
      if (!(e instanceof Stopping)) log.warn({ err: reason, step: this.trainer.step }, 'generation failed; waiting for the coordinator to re-form');
      const code = (e as { code?: string }).code;
      const fatal = code === 'SGT_NONFINITE_LOSS' || code === 'SGT_REPLICA_MISMATCH' || code === 'SGT_CHECKPOINT_INVALID';
      this.send({ type: 'worker.stopped', workerId: this.opts.workerId, generation: start.generation, held: this.trainer.step, reason, fatal });
      if (fatal) throw e;
    } finally {
      await ring.close().catch(() => undefined);
      this.ring = undefined;
    }
  }

  /** Every rank takes the source's state: the most advanced survivor, or rank 0's checkpoint / fresh init. */
  private async syncState(start: Start, ring: Ring, log: Logger): Promise<void> {
    let source = start.source;
    if (source < 0) {
      source = 0;
      // A checkpoint still being written in the background must be on disk before choosing one to load.
      if (start.rank === 0) await this.writer?.flush();
      if (start.rank === 0 && start.rollbackTo !== null) {
        const path = await loadCheckpointAtOrBefore(this.trainer, start.runDir, this.config, start.rollbackTo);
        log.warn({ step: this.trainer.step, path, lrScale: start.lrScale }, `rolled back to checkpoint ${path}`);
      } else if (start.rank === 0 && start.resume) {
        const restored = await loadLatestCheckpoint(this.trainer, start.runDir, this.config);
        if (restored) log.info({ step: this.trainer.step, path: restored }, `resumed from checkpoint ${restored}`);
      }
    }
    if (start.worldSize === 1) return;
    const buf = new Float32Array(this.layout.total);
    if (start.rank === source) packState(this.trainer, this.layout, buf);
    await ring.broadcast(buf, source);
    if (start.rank !== source) unpackState(this.trainer, this.layout, buf);
  }

  private async trainLoop(start: Start, ring: Ring, log: Logger): Promise<void> {
    const perEpoch = this.data.stepsPerEpoch;
    const reduce = (flat: Float32Array) => ring.allReduceSum(flat);
    while (this.trainer.step < start.totalSteps) {
      const step = this.trainer.step;
      if (this.stop && (this.stop.atStep === null || step >= this.stop.atStep)) {
        if (this.stop.checkpoint && start.rank === 0) await this.checkpoint(start, log, true);
        throw new Stopping(`stopped before step ${step}`);
      }
      if (this.abort && this.abort.generation === start.generation && (this.abort.atStep === null || step >= this.abort.atStep)) {
        throw new Stopping(`aborted before step ${step}`);
      }
      const epoch = Math.floor(step / perEpoch);
      const t0 = performance.now();
      const batch = await this.data.trainBatch(step, start.worldSize, start.rank);
      for (const s of batch.skipped) this.log.warn({ path: s.path, reason: s.reason, step }, `skipped unreadable image ${s.path}`);
      const t1 = performance.now();
      const temperature = temperatureAt(this.config.model, step, perEpoch, this.temperatureOverride);
      const sentBefore = ring.stats.bytesSent;
      const r = await this.trainer.trainStep(batch, reduce, temperature);
      const entropy = r.entropy.map((h) => Array.from(h));
      this.metrics.recordStep({
        loss: r.loss, lr: r.lr, gradNorm: r.gradNorm, temperature, samples: batch.n, tokens: batch.n * this.trainer.model.arch.tokens,
        entropy,
        phases: { data: (t1 - t0) / 1000, ...r.seconds },
        allreduceBytes: ring.stats.bytesSent - sentBefore, allreduceSeconds: r.seconds.allreduce,
      });
      if (batch.skipped.length) this.metrics.recordSkipped(batch.skipped.length);
      this.send({
        type: 'worker.report', workerId: this.opts.workerId, generation: start.generation, rank: start.rank, step: r.step, epoch,
        samples: r.samples, loss: r.loss, accuracy: r.accuracy, lr: r.lr, gradNorm: r.gradNorm, temperature,
        entropy,
        seconds: { data: (t1 - t0) / 1000, ...r.seconds },
      });
      const done = this.trainer.step;
      const e = validationEpoch(this.config, done, perEpoch, start.totalSteps);
      if (e !== null) await this.evaluate(start, ring, e);
      const ckptEvery = this.config.checkpoint.everySteps;
      if (start.rank === 0 && ((ckptEvery > 0 && done % ckptEvery === 0) || done === start.totalSteps)) {
        await this.checkpoint(start, log, done === start.totalSteps);
      }
      const diagEvery = this.config.diagnostics.everySteps;
      if (diagEvery > 0 && done % diagEvery === 0) await this.diagnose(start, ring, r, temperature);
      const every = this.config.dist.consistencyEverySteps;
      if ((every > 0 && done % every === 0) || done === start.totalSteps) await this.checkConsistency(start, ring, log);
      if (log.isLevelEnabled('debug')) log.debug({ step: done, entropy: layerEntropies(r.entropy) }, 'step');
    }
    this.finished = true;
    // Wait for the coordinator's stop so that peers finish their last collectives before anyone closes; repeat
    // `done` in case the coordinator restarted and missed it.
    for (let i = 0; !this.stop; i++) {
      if (i % 20 === 0) this.send({ type: 'worker.done', workerId: this.opts.workerId, generation: start.generation, held: this.trainer.step });
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * Every diagnostics.everySteps: Hessian sharpness of the global-batch loss on a fixed diagnostic batch (Lanczos on
   * all-reduced HVPs; every rank takes part), the Theorem 3.1 bounds from the global largest token norm, and σ/γ.
   */
  private async diagnose(start: Start, ring: Ring, r: StepReport, temperature: number): Promise<void> {
    const t0 = performance.now();
    const d = this.config.diagnostics;
    const batch = await this.data.diagnosticBatch(d.batch, start.worldSize, start.rank);
    const s = await sharpness(this.trainer.model, this.trainer.state, batch, {
      k: d.sharpnessTopK, iterations: d.lanczosIterations, seed: this.config.seed, temperature, labelSmoothing: this.config.train.labelSmoothing,
    }, (flat) => ring.allReduceSum(flat));
    // Largest token norm per layer over all ranks: each rank fills its own slots, one sum gathers them.
    const layers = r.maxTokenNorm.length;
    const slots = new Float32Array(start.worldSize * layers);
    slots.set(r.maxTokenNorm, start.rank * layers);
    await ring.allReduceSum(slots);
    const maxNorm = Array.from({ length: layers }, (_, l) => Math.max(...Array.from({ length: start.worldSize }, (_, k) => slots[k * layers + l])));
    const bounds = entropyBounds(this.trainer.model, this.trainer.state, maxNorm, temperature);
    const spectral = spectralStats(this.trainer.model, this.trainer.state);
    const o = this.config.optim;
    const threshold = stabilityThreshold({ optimizer: o.name, lr: r.lr, beta1: o.beta1 });
    this.metrics.recordSharpness(s.eigenvalues, threshold);
    this.metrics.recordBounds(bounds);
    this.metrics.recordSpectral(spectral.map((x) => ({ name: x.name, sigma: x.sigma, gamma: x.gamma ?? undefined })));
    const seconds = (performance.now() - t0) / 1000;
    this.metrics.recordPhase('diagnostics', seconds);
    if (start.rank === 0) {
      this.send({
        type: 'worker.diagnostics', workerId: this.opts.workerId, generation: start.generation, step: this.trainer.step,
        sharpness: s.eigenvalues, stabilityThreshold: threshold, entropyBound: bounds, spectral,
      });
    }
  }

  /** SHA-256 of every parameter and buffer, as this replica holds them. */
  stateHash(): string {
    const h = createHash('sha256');
    for (const [name, arr] of this.trainer.state.snapshot()) {
      h.update(name);
      h.update(new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength));
    }
    return h.digest('hex');
  }

  /**
   * All replicas must hold bitwise-identical parameters and u/v vectors. Each rank puts the first 64 bits of its
   * state hash, as four 16-bit integers (exact in float32), into its own slot; one all-reduce gathers them all.
   */
  private async checkConsistency(start: Start, ring: Ring, log: Logger): Promise<void> {
    if (injectFault(this.trainer.state, start.rank, this.trainer.step)) log.warn({ step: this.trainer.step }, 'SGT_FAULT_PERTURB: perturbed this replica (test-only fault injection)');
    const hash = this.stateHash();
    const slots = new Float32Array(start.worldSize * 4);
    for (let i = 0; i < 4; i++) slots[start.rank * 4 + i] = parseInt(hash.slice(i * 4, i * 4 + 4), 16);
    await ring.allReduceSum(slots);
    const key = (r: number) => Array.from(slots.subarray(r * 4, r * 4 + 4)).join(',');
    const differ = Array.from({ length: start.worldSize }, (_, r) => r).filter((r) => key(r) !== key(0));
    log.debug({ step: this.trainer.step, stateHash: hash, consistent: differ.length === 0 }, `replica state hash ${hash.slice(0, 16)} at step ${this.trainer.step}`);
    if (differ.length > 0) {
      throw new SigmaError('SGT_REPLICA_MISMATCH', `replicas diverged at step ${this.trainer.step}: ranks ${differ.join(', ')} hold other parameters or u vectors than rank 0 (generation ${start.generation}); this is a bug — report it with the run's logs`);
    }
  }

  /**
   * Distributed validation on raw (and EMA) weights: each rank takes a contiguous slice; sums plus the denominator
   * are all-reduced once.
   */
  private async evaluate(start: Start, ring: Ring, epoch: number): Promise<void> {
    const tau = temperatureAt(this.config.model, this.trainer.step, this.data.stepsPerEpoch, this.temperatureOverride);
    const sums = await validationSums(this.trainer, this.data, start.worldSize, start.rank, tau);
    await ring.allReduceSum(sums);
    const v = fromSums(sums, this.trainer.ema !== undefined);
    if (start.rank === 0) {
      this.send({
        type: 'worker.eval', workerId: this.opts.workerId, generation: start.generation, step: this.trainer.step, epoch,
        valTop1: v.top1, valTop5: v.top5, valLoss: v.loss,
        ema: v.ema ? { valTop1: v.ema.top1, valTop5: v.ema.top5, valLoss: v.ema.loss } : null, n: v.n,
      });
    }
  }

  /** Queues a checkpoint (copied synchronously, written in the background); `final` waits until it is durable. */
  private async checkpoint(start: Start, log: Logger, final = false): Promise<void> {
    this.writer ??= new CheckpointWriter(checkpointDir(start.runDir), {
      keep: this.config.checkpoint.keep,
      onWritten: (i) => {
        log.debug({ step: i.step, path: i.path, seconds: i.seconds }, 'checkpoint written'); // the coordinator logs it once
        this.send({ type: 'worker.checkpointed', workerId: this.opts.workerId, step: i.step, path: i.path, seconds: i.seconds });
      },
    });
    await saveCheckpoint(this.trainer, start.runDir, this.config, { generation: start.generation }, this.writer);
    if (final) await this.writer.flush();
  }

  /** SIGTERM without a coordinator's stop: stop at the next step boundary; rank 0 writes a final checkpoint. */
  terminate(): void {
    this.stop ??= { checkpoint: true, atStep: null };
    this.wake?.();
  }
}
