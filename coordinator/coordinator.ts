// The coordinator: admits workers (ROUTER), forms generations (ranks, ring peers, state source), keeps the ledger
// of completed steps, detects lost workers, re-forms the ring, and reports progress. Never imports tfjs.
import { metricsText } from '../shared/summary.js';
import { taskInfo } from '../shared/tasks.js';
import { byKind } from '../shared/sites.js';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunResult } from '../shared/summary.js';
import { Router } from 'zeromq';
import type { Config } from '../shared/config/index.js';
import { configHash } from '../shared/config/index.js';
import { SigmaError, type ErrorCode } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { encode, decode, type Message, type MessageOf, type Outgoing } from '../shared/protocol/index.js';
import { Ledger } from './ledger.js';
import { Progress } from './progress.js';
import type { Terminal } from './terminal.js';
import { RunLog } from './runlog.js';
import { CollapseDetector } from './guard.js';
import { createRegistry, serveMetrics, CoordinatorMetrics } from '../shared/metrics/index.js';

export interface CoordinatorOptions {
  /** tcp://*:PORT or tcp://HOST:PORT to bind. */
  bind: string;
  runDir: string;
  /** Workers to wait for before the first generation (then at least dist.minWorkers after joinWaitMs). */
  expectWorkers: number;
  resume: 'auto' | 'never';
  /**
   * After a completed job: `exit` (default), or `serve` — keep /metrics and the control port up until SIGTERM, telling
   * every worker that (re)joins that the job is complete (see `serveFinished`).
   */
  afterFinish?: 'exit' | 'serve';
  /** A person's terminal: the progress bar, with the log lines above it (`run` on a TTY); none: progress is logged. */
  terminal?: Terminal;
}

interface Member {
  workerId: string;
  routingId: Buffer;
  ringEndpoint: string;
  lastSeen: number;
  /** Steps this worker holds and from which generation (null: fresh process). */
  held: { generation: number; step: number } | null;
  /** Rank in the current generation, if in it. */
  rank: number | undefined;
  stopped: boolean;
  done: boolean;
}

export interface JobSummary extends RunResult {
  totalSteps: number;
  generations: number;
  workerFailures: number;
}

interface Persisted {
  generation: number;
  totalSteps: number;
  configHash: string;
  done: boolean;
  temperatureOverride: { value: number; fromStep: number } | null;
  lrScale: number;
  rollbacks: number;
}

type Phase = 'gathering' | 'running' | 'reforming' | 'stopping' | 'done';

export class Coordinator {
  private readonly router = new Router({ mandatory: false, sendHighWaterMark: 10000 });
  private readonly members = new Map<string, Member>();
  private readonly ledger: Ledger;
  private readonly progress: Progress;
  private readonly runLog: RunLog;
  private readonly hash: string;
  private generation = 0;
  private worldSize = 0;
  private phase: Phase = 'gathering';
  private totalSteps = 0;
  private firstSeen = 0;
  private reformDeadline = 0;
  private timer: NodeJS.Timeout | undefined;
  private finish!: (s: JobSummary) => void;
  private fail!: (e: Error) => void;
  private readonly started = performance.now();
  private samples = 0;
  private lastLoss = NaN;
  /** The last evaluation, by the task's metric names. */
  private val: { metrics: Record<string, number>; ema: Record<string, number> | null } = { metrics: {}, ema: null };
  private minEntropy = Infinity;
  private failures = 0;
  private lastReported = -1;
  private stopRequested = false;
  private readonly statePath: string;
  private hasProgress = false;
  /** The run dir holds a finished job (a restarted coordinator of a completed run exits at once). */
  private alreadyDone = false;
  /** Every step ran (not a SIGTERM stop): a restart of this run has nothing left to do. */
  private completed = false;
  private temperatureOverride: { value: number; fromStep: number } | null = null;
  private lrScale = 1;
  private rollbacks = 0;
  /** Set by the guard: the next generation starts from the checkpoint of this step. */
  private rollbackTo: number | null = null;
  private readonly detector: CollapseDetector;
  /** The latest Theorem 3.1 bounds from diagnostics (the guard's margin criterion). */
  private lastBounds: number[][] | null = null;
  readonly registry = createRegistry({ role: 'coordinator', defaultMetrics: true });
  private readonly metrics = new CoordinatorMetrics(this.registry);
  private metricsServer: { url: string; close(): Promise<void> } | undefined;
  /** Set while `serveFinished` runs: SIGTERM ends it. */
  private endServing: (() => void) | undefined;

  constructor(
    private readonly config: Readonly<Config>,
    private readonly opts: CoordinatorOptions,
    private readonly log: Logger,
  ) {
    mkdirSync(opts.runDir, { recursive: true });
    this.hash = configHash(config);
    this.statePath = join(opts.runDir, 'coordinator.json');
    const persisted = this.readPersisted();
    if (persisted) {
      if (opts.resume !== 'auto') {
        throw new SigmaError('SGT_CLI_USAGE', `run dir ${opts.runDir} already holds a job (generation ${persisted.generation}): pass --resume auto to continue it, or choose another --run-dir`);
      }
      if (persisted.configHash !== this.hash) {
        log.warn({ was: persisted.configHash, now: this.hash }, 'resuming with a different config; the checkpoint\'s architecture is checked by rank 0');
      }
      this.alreadyDone = persisted.done;
      this.generation = persisted.generation;
      this.totalSteps = persisted.totalSteps;
      this.temperatureOverride = persisted.temperatureOverride ?? null;
      this.lrScale = persisted.lrScale ?? 1;
      this.rollbacks = persisted.rollbacks ?? 0;
      this.hasProgress = true;
    }
    this.ledger = new Ledger(join(opts.runDir, 'ledger.jsonl'));
    this.runLog = new RunLog(opts.runDir);
    this.progress = new Progress(log, config.train.logEverySteps, opts.terminal, taskInfo(config.task).headline);
    this.detector = new CollapseDetector(config.guard);
  }

  private readPersisted(): Persisted | undefined {
    if (!existsSync(this.statePath)) return undefined;
    return JSON.parse(readFileSync(this.statePath, 'utf8')) as Persisted;
  }

  private persist(): void {
    const tmp = `${this.statePath}.tmp`;
    writeFileSync(tmp, JSON.stringify({
      generation: this.generation, totalSteps: this.totalSteps, configHash: this.hash, done: this.completed,
      temperatureOverride: this.temperatureOverride, lrScale: this.lrScale, rollbacks: this.rollbacks,
    } satisfies Persisted));
    renameSync(tmp, this.statePath);
  }

  /** Serves this coordinator's /metrics and logs where. */
  async serveMetrics(host: string, port: number): Promise<string> {
    this.metricsServer = await serveMetrics(this.registry, { host, port });
    this.log.info({ metrics: this.metricsServer.url }, `metrics at ${this.metricsServer.url}`);
    return this.metricsServer.url;
  }

  /** Binds and runs until the job completes (or is stopped); resolves with the summary. */
  async run(): Promise<JobSummary> {
    if (this.alreadyDone) {
      this.log.info({ runDir: this.opts.runDir }, `the job in ${this.opts.runDir} is already complete (${this.ledger.next} steps); nothing to resume`);
      return {
        steps: this.ledger.next, totalSteps: this.totalSteps, generations: this.generation, workerFailures: 0, seconds: 0, samplesPerSecond: 0,
        finalLoss: this.ledger.entries().at(-1)?.loss ?? NaN, task: this.config.task, headline: taskInfo(this.config.task).headline, eval: {}, emaEval: null, minEntropy: NaN, stoppedEarly: false,
      };
    }
    await this.router.bind(this.opts.bind);
    this.log.info({ bind: this.opts.bind, runDir: this.opts.runDir, expect: this.opts.expectWorkers }, `coordinator listening on ${this.opts.bind}; run dir ${this.opts.runDir}`);
    const done = new Promise<JobSummary>((resolve, reject) => {
      this.finish = resolve;
      this.fail = reject;
    });
    void this.receive();
    this.timer = setInterval(() => this.tick(), this.config.dist.heartbeatMs);
    try {
      return await done;
    } finally {
      clearInterval(this.timer);
      this.progress.stop();
      await new Promise((r) => setTimeout(r, 200)); // let the last stop messages leave
      this.router.close();
      if (this.opts.afterFinish !== 'serve') await this.metricsServer?.close();
    }
  }

  /**
   * The job is complete: keep serving /metrics (its final values) and the control port until `requestStop`
   * (SIGTERM), answering every worker that joins or still beats with "job complete" so that it exits 0. Under a
   * Kubernetes Deployment a coordinator that exits is restarted (and, resuming a finished run, exits again: a crash
   * loop); one that serves stays Running until the job is deleted, and its last metrics stay scrapeable.
   */
  async serveFinished(): Promise<void> {
    const router = new Router({ mandatory: false, linger: 0 });
    await router.bind(this.opts.bind);
    const ended = new Promise<void>((resolve) => {
      this.endServing = resolve;
    });
    if (this.stopRequested) this.endServing!(); // SIGTERM came while the job was wrapping up
    this.log.info({ bind: this.opts.bind, runDir: this.opts.runDir },
      `the job is complete; serving metrics and telling workers that join so, until SIGTERM`);
    const answer = async (): Promise<void> => {
      for await (const [routingId, ...frames] of router) {
        const frame = frames[frames.length - 1];
        const d = frame ? decode(frame) : { ok: false as const, error: 'empty message', id: null };
        if (!d.ok) {
          await router.send([routingId, encode({ type: 'error', code: 'SGT_PROTOCOL', message: d.error, inReplyTo: d.id, fatal: false })]);
        } else if (d.msg.type === 'worker.hello' || d.msg.type === 'worker.heartbeat') {
          this.log.info({ workerId: d.msg.workerId }, `${d.msg.workerId} joined a complete job: told to exit`);
          await router.send([routingId, encode({ type: 'coord.stop', reason: 'job complete', checkpoint: false, atStep: null })]);
        } else if (d.msg.type === 'ctl.set-temperature') {
          await router.send([routingId, encode({ type: 'error', code: 'SGT_CLI_USAGE', message: `the job in ${this.opts.runDir} is complete`, inReplyTo: d.msg.id, fatal: false })]);
        }
      }
    };
    const loop = answer().catch(() => undefined); // ends when the router closes
    try {
      await ended;
    } finally {
      this.endServing = undefined;
      router.close();
      await loop;
      await this.metricsServer?.close();
    }
  }

  /** SIGTERM/SIGINT: every rank stops at the same step boundary; rank 0 writes a final checkpoint. */
  requestStop(reason: string): void {
    if (this.endServing) {
      this.log.info({ reason }, 'stopped serving the complete job');
      this.endServing();
      return;
    }
    if (this.stopRequested) return;
    this.stopRequested = true;
    if (this.alreadyDone || this.phase === 'done') return; // nothing runs; serveFinished, if it comes, ends at once
    if (this.phase === 'running' || this.phase === 'reforming') {
      const atStep = this.lastReported + 3;
      this.progress.note(`stopping: ${reason}; every rank stops before step ${atStep}, rank 0 writes a final checkpoint`);
      this.phase = 'stopping';
      for (const m of this.active()) this.sendTo(m, { type: 'coord.stop', reason, checkpoint: true, atStep });
    } else {
      this.complete(true);
    }
  }

  private sendTo(m: Member, msg: Outgoing): void {
    this.router.send([m.routingId, encode(msg)]).catch((e: unknown) => this.log.warn({ err: (e as Error).message, to: m.workerId }, 'send failed'));
  }

  private async receive(): Promise<void> {
    try {
      for await (const [routingId, ...frames] of this.router) {
        const frame = frames[frames.length - 1];
        const d = frame ? decode(frame) : { ok: false as const, error: 'empty message', id: null };
        if (!d.ok) {
          this.log.warn({ from: routingId.toString(), error: d.error }, 'bad control message');
          this.router.send([routingId, encode({ type: 'error', code: 'SGT_PROTOCOL', message: d.error, inReplyTo: d.id, fatal: false })]).catch(() => undefined);
          continue;
        }
        try {
          this.handle(routingId, d.msg);
        } catch (e) {
          this.fail(e as Error);
          return;
        }
      }
    } catch (e) {
      if (this.phase !== 'done') this.fail(e as Error);
    }
  }

  private handle(routingId: Buffer, m: Message): void {
    const now = Date.now();
    const member = 'workerId' in m ? this.members.get(m.workerId) : undefined;
    if (member) member.lastSeen = now;
    switch (m.type) {
      case 'worker.hello':
        return this.onHello(routingId, m);
      case 'worker.heartbeat':
        if (!member) return this.adopt(routingId, m);
        return;
      case 'worker.alive':
        return; // lastSeen is updated above; it never admits anyone
      case 'worker.report':
        return this.onReport(m);
      case 'worker.eval': {
        this.val = { metrics: m.metrics, ema: m.ema };
        this.runLog.evaluation({ step: m.step, epoch: m.epoch, time: Date.now(), metrics: m.metrics, n: m.n, ema: m.ema ?? undefined });
        this.progress.evaluated(m.metrics);
        this.progress.note(`epoch ${m.epoch}: ${metricsText(m.metrics, m.ema)} (${m.n} examples)`, { epoch: m.epoch, metrics: m.metrics, ema: m.ema, step: m.step });
        return;
      }
      case 'worker.checkpointed':
        this.metrics.checkpoint(m.seconds);
        this.log.info({ step: m.step, path: m.path, seconds: m.seconds }, `checkpoint written: step ${m.step}, ${m.path} (${m.seconds.toFixed(1)} s)`);
        this.runLog.event({ kind: 'checkpoint', step: m.step, message: m.path, seconds: m.seconds });
        return;
      case 'worker.stopped':
        if (!member) return;
        member.stopped = true;
        member.held = { generation: m.generation, step: m.held };
        if (m.generation !== this.generation) return;
        if (m.fatal) {
          // The worker's own code (SGT_REPLICA_MISMATCH, SGT_NONFINITE_LOSS) is the job's.
          const code = /^(SGT_[A-Z_]+):/.exec(m.reason)?.[1];
          const known: ErrorCode[] = ['SGT_REPLICA_MISMATCH', 'SGT_NONFINITE_LOSS', 'SGT_CHECKPOINT_INVALID'];
          this.stopFailed(new SigmaError(known.includes(code as ErrorCode) ? (code as ErrorCode) : 'SGT_COMM', `worker ${m.workerId} stopped the job: ${m.reason}`), m.workerId);
          return;
        }
        if (this.phase === 'running') {
          this.workerFailed(`${m.workerId} left generation ${m.generation}: ${m.reason}`);
        } else if (this.stopComplete()) {
          this.complete(true);
        } else this.maybeFormAfterReform();
        return;
      case 'worker.done':
        if (!member) return;
        member.done = true;
        member.held = { generation: m.generation, step: m.held };
        if (this.active().every((x) => x.done)) this.complete(false);
        return;
      case 'worker.diagnostics':
        this.lastBounds = m.entropyBound.length ? byKind(m.entropyBound, 'self') : this.lastBounds;
        this.runLog.diagnostics({
          step: m.step, time: Date.now(), sharpness: m.sharpness ?? undefined, stabilityThreshold: m.stabilityThreshold ?? undefined,
          entropyBound: m.entropyBound, spectral: m.spectral.map((x) => ({ name: x.name, sigma: x.sigma, gamma: x.gamma ?? undefined })),
        });
        return;
      case 'ctl.set-temperature':
        return this.setTemperature(routingId, m.value);
      case 'error':
        this.log.warn({ code: m.code, message: m.message }, 'worker reported a protocol error');
        return;
      default:
        this.router.send([routingId, encode({ type: 'error', code: 'SGT_PROTOCOL', message: `unexpected ${m.type} at the coordinator`, inReplyTo: m.id, fatal: false })]).catch(() => undefined);
    }
  }

  private onHello(routingId: Buffer, m: MessageOf<'worker.hello'>): void {
    if (m.configHash !== this.hash) {
      this.log.warn({ workerId: m.workerId, theirs: m.configHash, ours: this.hash }, 'refused a worker with another config');
      this.router.send([routingId, encode({
        type: 'error', code: 'SGT_CONFIG_MISMATCH', fatal: true, inReplyTo: m.id,
        message: `config hash ${m.configHash} differs from the coordinator's ${this.hash}: start every worker with the coordinator's config file and overrides`,
      })]).catch(() => undefined);
      return;
    }
    if (this.totalSteps > 0 && m.totalSteps !== this.totalSteps && !this.hasProgress) {
      this.log.warn({ workerId: m.workerId, theirs: m.totalSteps, ours: this.totalSteps }, 'worker computes another step count (different dataset?)');
    }
    if (this.totalSteps === 0) this.totalSteps = m.totalSteps;
    const known = this.members.get(m.workerId);
    const member: Member = {
      workerId: m.workerId, routingId, ringEndpoint: m.ringEndpoint, lastSeen: Date.now(), held: m.held ? { generation: m.held.generation, step: m.held.step } : null,
      rank: undefined, stopped: false, done: false,
    };
    this.members.set(m.workerId, member);
    if (this.firstSeen === 0) this.firstSeen = Date.now();
    this.log.info({ workerId: m.workerId, ring: m.ringEndpoint, members: this.members.size }, `worker ${m.workerId} joined (${this.members.size} connected)`);
    if (known?.rank !== undefined && (this.phase === 'running' || this.phase === 'reforming')) {
      // The same worker id again: the process restarted; its old incarnation is gone.
      this.workerFailed(`${m.workerId} restarted`);
      return;
    }
    if (this.phase === 'running') this.reform(`${m.workerId} joined`, this.lastReported + 3);
    else if (this.phase === 'gathering') this.maybeStart();
  }

  /** A heartbeat from a worker we do not know: this coordinator restarted while the job ran. */
  private adopt(routingId: Buffer, m: MessageOf<'worker.heartbeat'>): void {
    const active = m.state !== 'idle';
    if (active && m.generation > this.generation) {
      // The job moved on to a generation this coordinator never persisted: ranks seen so far are stale.
      this.generation = m.generation;
      for (const x of this.members.values()) x.rank = undefined;
    }
    // An idle worker (its generation was aborted, or it is fresh) holds state but no rank: a new generation forms.
    const inGeneration = active && m.rank >= 0 && m.generation === this.generation;
    const member: Member = {
      workerId: m.workerId, routingId, ringEndpoint: m.ringEndpoint, lastSeen: Date.now(), held: m.step > 0 ? { generation: m.generation, step: m.step } : null,
      rank: inGeneration ? m.rank : undefined, stopped: !active, done: false,
    };
    this.members.set(m.workerId, member);
    if (this.firstSeen === 0) this.firstSeen = Date.now();
    this.log.info({ workerId: m.workerId, generation: m.generation, rank: m.rank, step: m.step, state: m.state }, `re-attached worker ${m.workerId} (rank ${m.rank} of generation ${m.generation}, ${m.state})`);
    const inGen = [...this.members.values()].filter((x) => x.rank !== undefined);
    if (this.phase === 'gathering' && inGeneration && inGen.length === m.worldSize) {
      this.worldSize = m.worldSize;
      this.phase = 'running';
      this.lastReported = Math.max(this.lastReported, ...inGen.map((x) => (x.held?.step ?? 0) - 1));
      this.progress.note(`resumed tracking generation ${this.generation} with ${this.worldSize} workers at step ${this.lastReported + 1}`);
    }
  }

  /** `sigmatrain ctl set-temperature`: every rank switches at the same future step boundary. */
  private setTemperature(routingId: Buffer, value: number): void {
    const fromStep = this.phase === 'running' ? this.lastReported + 3 : Math.max(0, this.lastReported + 1);
    this.temperatureOverride = { value, fromStep };
    this.persist();
    for (const m of this.active()) this.sendTo(m, { type: 'coord.set-temperature', generation: this.generation, value, fromStep });
    this.runLog.event({ kind: 'temperature', step: fromStep, message: `temperature set to ${value} from step ${fromStep}`, value });
    this.progress.note(`attention temperature → ${value} from step ${fromStep}`, { value, fromStep });
    this.router.send([routingId, encode({ type: 'ctl.ok', message: `temperature ${value} from step ${fromStep}`, fromStep })]).catch(() => undefined);
  }

  /** The entropy-collapse guard: metric and log event, then the configured action. */
  private guard(step: number, entropy: number[][]): void {
    if (!this.config.guard.enabled) return;
    for (const a of this.detector.observe(step, entropy, this.lastBounds)) {
      const message = `entropy collapse in layer ${a.layer} at step ${step}: ${a.entropy.toFixed(3)} nats vs running max ${a.runningMax.toFixed(3)}` +
        (a.bound !== null ? ` (bound ${a.bound.toFixed(3)})` : '');
      this.log.warn({ event: 'entropy_collapse', ...a }, message);
      this.runLog.event({ kind: 'collapse', step, message, layer: a.layer });
      this.metrics.recordCollapse(a.layer, true); // before a rollback resets the detector's verdicts
      if (this.config.guard.action === 'stop') this.requestStop(message);
      else if (this.config.guard.action === 'rollback') this.rollback(message, Math.max(0, step - this.config.guard.window + 1));
    }
  }


  /** Generation that restarted from a rollback checkpoint: its first report says which step it restarted at. */
  private rollbackGeneration: number | null = null;

  private rollback(reason: string, onset: number): void {
    if (this.phase !== 'running') return;
    if (this.rollbacks >= this.config.guard.maxRollbacks) {
      this.requestStop(`${reason}; ${this.rollbacks} rollbacks already: stopping`);
      return;
    }
    this.rollbacks += 1;
    this.lrScale *= this.config.guard.lrFactor;
    // Rank 0 restarts from its latest checkpoint at or before the step where the entropy started to fall.
    this.rollbackTo = onset;
    this.detector.reset();
    for (const m of this.members.values()) m.held = null;
    this.runLog.event({ kind: 'rollback', step: onset, message: `${reason}: rolling back to the last checkpoint at or before step ${onset}, lr × ${this.lrScale}`, lrScale: this.lrScale });
    this.reform(`rollback to the last checkpoint at or before step ${onset} (lr × ${this.lrScale.toPrecision(3)})`, this.lastReported + 3);
  }

  private onReport(m: MessageOf<'worker.report'>): void {
    if (m.generation === this.generation && m.step > this.lastReported) this.lastReported = m.step;
    if (m.generation === this.rollbackGeneration) {
      // The first report after a rollback: steps from here on run again, so they leave the ledger.
      this.ledger.truncate(m.step);
      this.rollbackGeneration = null;
      this.rollbackTo = null;
      this.runLog.event({ kind: 'rollback', step: m.step, message: `restarted from the checkpoint of step ${m.step}`, lrScale: this.lrScale });
    }
    let fresh: boolean;
    try {
      fresh = this.ledger.record({
        step: m.step, epoch: m.epoch, generation: m.generation, worldSize: this.worldSize, samples: m.samples, loss: m.loss, rank: m.rank,
        digest: m.digest, prevDigest: m.prevDigest,
      });
    } catch (e) {
      if (e instanceof SigmaError && e.code === 'SGT_STEP_DIGEST') return this.stopFailed(e, m.workerId);
      throw e;
    }
    if (!fresh) {
      const n = this.ledger.applications(m.step);
      if (n > 1 && m.rank === 0) this.log.warn({ step: m.step, generation: m.generation, applications: n }, `step ${m.step} applied again in generation ${m.generation} (${n} generations; same state digest)`);
      return;
    }
    this.samples += m.samples;
    this.lastLoss = m.loss;
    const perLayer = m.entropy.map((s) => s.heads.reduce((a, b) => a + b, 0) / Math.max(1, s.heads.length));
    const minEnt = Math.min(...m.entropy.flatMap((s) => s.heads));
    this.minEntropy = Math.min(this.minEntropy, minEnt);
    const sps = this.samples / ((performance.now() - this.started) / 1000);
    this.runLog.step({
      step: m.step, epoch: m.epoch, generation: m.generation, worldSize: this.worldSize, time: Date.now(), loss: m.loss, metrics: m.metrics,
      lr: m.lr, gradNorm: m.gradNorm, temperature: m.temperature, samples: m.samples, units: m.units, unit: m.unit, samplesPerSecond: sps,
      entropy: m.entropy, digest: m.digest, seconds: m.seconds,
    });
    this.guard(m.step, byKind(m.entropy, 'self'));
    this.detector.collapsing().forEach((c, l) => this.metrics.recordCollapse(l, c)); // gauge, and onsets counted
    this.metrics.stepDone();
    this.progress.update({
      step: m.step + 1, total: this.totalSteps, epoch: m.epoch, loss: m.loss, metrics: m.metrics,
      samplesPerSecond: sps, minEntropy: minEnt, entropyPerLayer: perLayer,
      worldSize: this.worldSize, generation: m.generation,
    });
  }

  /** The job cannot go on: every worker stops at once without a checkpoint, and the coordinator fails with `error`. */
  private stopFailed(error: SigmaError, workerId: string): void {
    this.progress.note(`job failed: ${error.message}`, { workerId, code: error.code });
    this.fail(error);
    this.phase = 'done';
    for (const x of this.members.values()) this.sendTo(x, { type: 'coord.stop', reason: error.message, checkpoint: false, atStep: null });
  }

  /** A member of the running generation failed (left, restarted or went silent): count it and re-form at once. */
  private workerFailed(reason: string): void {
    this.failures += 1;
    this.metrics.workerFailed();
    this.reform(reason, null);
  }

  /** Stopping, and every member of the generation has stopped or finished. */
  private stopComplete(): boolean {
    return this.phase === 'stopping' && this.active().every((x) => x.stopped || x.done);
  }

  private active(): Member[] {
    return [...this.members.values()].filter((m) => m.rank !== undefined);
  }

  private maybeStart(): void {
    const n = this.members.size;
    const waited = Date.now() - this.firstSeen;
    if (n >= this.opts.expectWorkers || (n >= this.config.dist.minWorkers && waited >= this.config.dist.joinWaitMs)) this.form();
  }

  /** Ends the current generation: survivors stop at `atStep` (or at once) and report what they hold. */
  private reform(reason: string, atStep: number | null): void {
    if (this.phase === 'done' || this.phase === 'stopping') return;
    this.runLog.event({ kind: atStep === null ? 'failure' : 'generation', step: this.lastReported + 1, message: reason });
    this.progress.note(`re-forming: ${reason}`, { generation: this.generation, reason, atStep });
    this.phase = 'reforming';
    this.reformDeadline = Date.now() + this.config.dist.allreduceTimeoutMs + 2 * this.config.dist.heartbeatTimeoutMs;
    for (const m of this.active()) if (!m.stopped) this.sendTo(m, { type: 'coord.abort', generation: this.generation, atStep, reason });
    this.maybeFormAfterReform();
  }

  private maybeFormAfterReform(): void {
    if (this.phase !== 'reforming') return;
    if (this.active().every((m) => m.stopped) || Date.now() > this.reformDeadline) this.form();
  }

  private form(): void {
    const alive = [...this.members.values()].sort((a, b) => a.workerId.localeCompare(b.workerId));
    const max = this.config.dist.maxWorkers > 0 ? this.config.dist.maxWorkers : Infinity;
    const chosen = alive.slice(0, Math.min(max, alive.length));
    if (chosen.length < this.config.dist.minWorkers) {
      this.phase = 'gathering';
      this.progress.note(`waiting for workers: ${chosen.length} of at least ${this.config.dist.minWorkers}`);
      return;
    }
    if (chosen.length > this.config.train.globalBatch) {
      this.fail(new SigmaError('SGT_CONFIG_INVALID', `train.globalBatch ${this.config.train.globalBatch} is smaller than the ${chosen.length} workers: every worker needs at least one sample per step; raise train.globalBatch or use at most ${this.config.train.globalBatch} workers (dist.maxWorkers)`));
      return;
    }
    this.generation += 1;
    this.worldSize = chosen.length;
    // The most advanced consistent state: a worker's held steps were all applied everywhere it was.
    let source = -1;
    let resumeStep = 0;
    chosen.forEach((m, r) => {
      if (this.rollbackTo === null && m.held && m.held.step > resumeStep) {
        resumeStep = m.held.step;
        source = r;
      }
    });
    if (this.rollbackTo !== null) resumeStep = this.rollbackTo;
    for (const m of this.members.values()) {
      m.rank = undefined;
      m.stopped = false;
      m.done = false;
    }
    const peers = chosen.map((m) => m.ringEndpoint);
    const resume = this.opts.resume === 'auto' || this.hasProgress;
    chosen.forEach((m, rank) => {
      m.rank = rank;
      this.sendTo(m, {
        type: 'coord.start', generation: this.generation, rank, worldSize: chosen.length, peers, source, resumeStep,
        totalSteps: this.totalSteps, runDir: this.opts.runDir, resume, temperatureOverride: this.temperatureOverride,
        lrScale: this.lrScale, rollbackTo: this.rollbackTo,
      });
    });
    this.hasProgress = true;
    // rollbackTo stays set until this generation reports a step (onReport): if it fails before that, the next
    // generation rolls back again instead of resuming from a replica the rollback discarded.
    if (this.rollbackTo !== null) this.rollbackGeneration = this.generation;
    this.lastReported = resumeStep - 1;
    this.phase = 'running';
    this.persist();
    this.metrics.setWorld(chosen.length, this.generation);
    this.runLog.event({ kind: 'generation', step: resumeStep, message: `generation ${this.generation} with ${chosen.length} workers`, generation: this.generation, worldSize: chosen.length });
    this.progress.note(
      `generation ${this.generation}: ${chosen.length} workers [${chosen.map((m) => m.workerId).join(', ')}], from ${source >= 0 ? `rank ${source} at step ${resumeStep}` : 'the latest checkpoint or a fresh init'}`,
      { generation: this.generation, worldSize: chosen.length, source, resumeStep },
    );
  }

  private tick(): void {
    const now = Date.now();
    for (const m of [...this.members.values()]) {
      this.sendTo(m, { type: 'coord.heartbeat', generation: this.generation });
      if (now - m.lastSeen > this.config.dist.heartbeatTimeoutMs) {
        this.members.delete(m.workerId);
        this.progress.note(`lost worker ${m.workerId}: silent for ${now - m.lastSeen} ms`, { workerId: m.workerId });
        if (m.rank !== undefined && (this.phase === 'running' || this.phase === 'reforming')) {
          this.workerFailed(`${m.workerId} lost`);
        } else if (m.rank !== undefined && this.stopComplete()) {
          this.complete(true);
        }
      }
    }
    if (this.phase === 'reforming') this.maybeFormAfterReform();
    if (this.phase === 'gathering' && this.members.size > 0) this.maybeStart();
  }

  private complete(stoppedEarly: boolean): void {
    if (this.phase === 'done') return;
    this.phase = 'done';
    this.completed = !stoppedEarly;
    this.persist();
    for (const m of this.members.values()) this.sendTo(m, { type: 'coord.stop', reason: 'job complete', checkpoint: false, atStep: null });
    const seconds = (performance.now() - this.started) / 1000;
    this.finish({
      steps: this.ledger.next, totalSteps: this.totalSteps, generations: this.generation, workerFailures: this.failures, seconds,
      samplesPerSecond: this.samples / seconds, finalLoss: this.lastLoss, task: this.config.task, headline: taskInfo(this.config.task).headline,
      eval: this.val.metrics, emaEval: this.val.ema,
      minEntropy: this.minEntropy, stoppedEarly,
    });
  }

  /** The run dir's job had already completed when this coordinator started. */
  get finishedBefore(): boolean {
    return this.alreadyDone;
  }

  get runDir(): string {
    return this.opts.runDir;
  }
}
