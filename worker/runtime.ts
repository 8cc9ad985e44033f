// A worker process: the control plane (coordinator client, liveness) and the generation lifecycle (ring, state sync,
// abort, stop) around the one training loop (train/loop.ts), whose hooks send reports, evaluations and diagnostics.
import { Dealer } from 'zeromq';
import { SigmaError } from '../shared/errors.js';
import type { Config } from '../shared/config/index.js';
import { configHash } from '../shared/config/index.js';
import type { Logger } from '../shared/log.js';
import { encode, decode, type MessageOf, type Outgoing } from '../shared/protocol/index.js';
import { taskInfo } from '../shared/tasks.js';
import { initBackend } from './backend.js';
import { createTask, type Task, type TaskBatch, type TaskData } from './tasks/index.js';
import { Ring } from './comm/ring.js';
import { RingCollective, type Collective } from './comm/collective.js';
import { Liveness } from './comm/liveness.js';
import { Trainer } from './train/trainer.js';
import { stateLayout, packState, unpackState, toNamed, fromNamed, type StateLayout } from './train/snapshot.js';
import { plannedSteps } from './train/plan.js';
import { siteEntropies } from './train/local.js';
import { runLoop } from './train/loop.js';
import { saveCheckpoint, loadLatestCheckpoint, loadCheckpointAtOrBefore, checkpointDir } from './train/checkpointing.js';
import { temperatureAt, type TemperatureOverride } from './train/temperature.js';
import { CheckpointWriter } from '../shared/checkpoint/store.js';
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
  private task!: Task<TaskBatch>;
  private trainer!: Trainer;
  private layout!: StateLayout;
  private data!: TaskData<TaskBatch>;
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
    this.task = createTask(this.config);
    this.data = await this.task.open();
    const perEpoch = this.data.stepsPerEpoch;
    this.trainer = new Trainer(this.config, this.task, { rank: 0, totalSteps: plannedSteps(this.config, perEpoch), stepsPerEpoch: perEpoch, lrScale: 1 });
    this.layout = stateLayout(this.trainer);
    this.log.info({ task: this.task.name, family: this.task.model.family, params: this.trainer.state.totalSize }, `task ${this.task.name}: ${this.data.description}`);
    if (this.opts.metricsPort !== undefined) {
      this.metricsServer = await serveMetrics(this.registry, { host: this.config.metrics.host, port: this.opts.metricsPort });
      this.log.info({ metrics: this.metricsServer.url }, `metrics at ${this.metricsServer.url}`);
    }
    for (const s of this.data.initiallySkipped) this.log.warn({ path: s.path, reason: s.reason }, `skipped ${s.path}: ${s.reason}`);
    this.metrics.recordSkipped(this.data.initiallySkipped.length);
    this.dealer.connect(this.opts.coordinator);
    this.log.info({ backend, coordinator: this.opts.coordinator, ring: this.opts.ringEndpoint, cudaVisibleDevices: process.env.CUDA_VISIBLE_DEVICES ?? null }, `worker ${this.opts.workerId} ready on ${backend}; connecting to ${this.opts.coordinator}`);
    this.send({
      type: 'worker.hello', workerId: this.opts.workerId, configHash: configHash(this.config), host: process.env.HOSTNAME ?? '',
      pid: process.pid, ringEndpoint: this.opts.ringEndpoint, totalSteps: this.trainer.context.totalSteps, held: null,
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
    this.trainer.begin({ rank: start.rank, totalSteps: start.totalSteps, stepsPerEpoch: this.data.stepsPerEpoch, lrScale: start.lrScale });
    this.temperatureOverride = start.temperatureOverride;
    setRank(this.registry, 'worker', start.rank);
    this.metrics.setPerHead(this.config.metrics.perHead === 'all' || (this.config.metrics.perHead === 'rank0' && start.rank === 0));
    const log = this.log.child({ generation: start.generation, rank: start.rank });
    const ring = new Ring({
      rank: start.rank, worldSize: start.worldSize, listen: this.opts.ringListen, next: start.peers[(start.rank + 1) % start.worldSize],
      prev: start.peers[(start.rank + start.worldSize - 1) % start.worldSize], dataPlane: this.config.dist.dataPlane,
      generation: start.generation, chunkBytes: this.config.dist.chunkBytes, timeoutMs: this.config.dist.allreduceTimeoutMs,
      logger: log,
    });
    this.ring = ring;
    try {
      await ring.open();
      const collective = new RingCollective(ring);
      await this.syncState(start, collective, log);
      const local = Math.ceil(this.config.train.globalBatch / start.worldSize);
      const micro = this.config.train.microBatch;
      const accumulation = micro > 0 ? Math.ceil(local / micro) : 1;
      // train.globalBatch splits over ranks only for tasks batched by samples; token and frame tasks plan their own
      // budgets per worker (the task's description says how).
      const unit = taskInfo(this.task.name).unit;
      const batch = unit === 'samples'
        ? `batch ${this.config.train.globalBatch} = ${start.worldSize} × ≤${local}` + (accumulation > 1 ? ` (${accumulation} micro-batches of ≤${micro})` : '')
        : `batches by ${unit}, as planned by the task`;
      log.info({ step: this.trainer.step, worldSize: start.worldSize, unit, ...(unit === 'samples' ? { perWorkerBatch: local, accumulation } : {}) },
        `generation ${start.generation}: rank ${start.rank}/${start.worldSize} from step ${this.trainer.step}; ${batch}`);
      await this.trainLoop(start, collective, log);
    } catch (e) {
      const reason = e instanceof Stopping ? e.message : `${(e as Error).message}`;
      if (!(e instanceof Stopping)) log.warn({ err: reason, step: this.trainer.step }, 'generation failed; waiting for the coordinator to re-form');
      const code = (e as { code?: string }).code;
      const fatal = code === 'SGT_NONFINITE_LOSS' || code === 'SGT_REPLICA_MISMATCH' || code === 'SGT_STATE_LAYOUT' || code === 'SGT_CHECKPOINT_INVALID';
      this.send({ type: 'worker.stopped', workerId: this.opts.workerId, generation: start.generation, held: this.trainer.step, reason, fatal });
      if (fatal) throw e;
    } finally {
      await ring.close().catch(() => undefined);
      this.ring = undefined;
    }
  }

  /** Every rank takes the source's state: the most advanced survivor, or rank 0's checkpoint / fresh init. */
  private async syncState(start: Start, collective: Collective, log: Logger): Promise<void> {
    let source = start.source;
    if (source < 0) {
      source = 0;
      // A checkpoint still being written in the background must be on disk before choosing one to load.
      if (start.rank === 0) await this.writer?.flush();
      if (start.rank === 0 && start.rollbackTo !== null) {
        const path = await loadCheckpointAtOrBefore(this.trainer, start.runDir, start.rollbackTo);
        log.warn({ step: this.trainer.step, path, lrScale: start.lrScale }, `rolled back to checkpoint ${path}`);
      } else if (start.rank === 0 && start.resume) {
        const restored = await loadLatestCheckpoint(this.trainer, start.runDir);
        if (restored) log.info({ step: this.trainer.step, path: restored }, `resumed from checkpoint ${restored}`);
      }
    }
    if (start.worldSize === 1) return;
    const buf = start.rank === source ? packState(await toNamed(this.trainer), this.layout) : new Float32Array(this.layout.total);
    await collective.broadcast(buf, source);
    if (start.rank !== source) fromNamed(this.trainer, unpackState(buf, this.layout, this.trainer.ema !== undefined));
  }

  private async trainLoop(start: Start, collective: Collective, log: Logger): Promise<void> {
    const perEpoch = this.data.stepsPerEpoch;
    await runLoop({
      config: this.config, trainer: this.trainer, data: this.data, collective, totalSteps: start.totalSteps, log, metrics: this.metrics,
      temperature: (step) => temperatureAt(this.config.model, step, perEpoch, this.temperatureOverride),
    }, {
      beforeStep: async (step) => {
        if (this.stop && (this.stop.atStep === null || step >= this.stop.atStep)) {
          if (this.stop.checkpoint && start.rank === 0) await this.checkpoint(start, log, true);
          throw new Stopping(`stopped before step ${step}`);
        }
        if (this.abort && this.abort.generation === start.generation && (this.abort.atStep === null || step >= this.abort.atStep)) {
          throw new Stopping(`aborted before step ${step}`);
        }
        return false;
      },
      onStep: (r, info) => {
        this.send({
          type: 'worker.report', workerId: this.opts.workerId, generation: start.generation, rank: start.rank, step: r.step, epoch: info.epoch,
          units: r.units, unit: this.task.unit, samples: r.samples, loss: r.loss, metrics: r.metrics, lr: r.lr, gradNorm: r.gradNorm,
          temperature: info.temperature, entropy: r.entropy, digest: r.digest, prevDigest: r.prevDigest,
          seconds: { data: info.dataSeconds, ...r.seconds },
        });
        if (log.isLevelEnabled('debug')) log.debug({ step: r.step + 1, entropy: siteEntropies(r.entropy) }, 'step');
      },
      onEval: (v, epoch, step) => {
        if (start.rank !== 0) return;
        this.send({ type: 'worker.eval', workerId: this.opts.workerId, generation: start.generation, step, epoch, metrics: v.metrics, ema: v.ema, n: v.n });
      },
      onDiagnostics: (d) => {
        if (start.rank !== 0) return;
        this.send({
          type: 'worker.diagnostics', workerId: this.opts.workerId, generation: start.generation, step: d.step,
          sharpness: d.sharpness, stabilityThreshold: d.stabilityThreshold, entropyBound: d.entropyBound, spectral: d.spectral,
        });
      },
      checkpoint: (final) => this.checkpoint(start, log, final),
    });
    this.finished = true;
    // Wait for the coordinator's stop so that peers finish their last collectives before anyone closes; repeat
    // `done` in case the coordinator restarted and missed it.
    for (let i = 0; !this.stop; i++) {
      if (i % 20 === 0) this.send({ type: 'worker.done', workerId: this.opts.workerId, generation: start.generation, held: this.trainer.step });
      await new Promise((r) => setTimeout(r, 50));
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
