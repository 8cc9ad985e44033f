// The coordinator: the ZeroMQ ROUTER that workers talk to. It decodes their messages, feeds them to the membership
// machine (ranks, generations, re-forms, rollbacks, stops) and to telemetry (ledger, run log, progress, metrics,
// guard), sends what the machine returns, and persists the job state. Never imports tfjs.
import { Router } from 'zeromq';
import type { Config } from '../shared/config/index.js';
import { configHash } from '../shared/config/index.js';
import { SigmaError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { encode, decode, type Message, type Outgoing } from '../shared/protocol/index.js';
import { mkdirSync } from 'node:fs';
import { readJobState, writeJobState } from './jobstate.js';
import { Membership, type MembershipEvent, type Outcome } from './membership.js';
import { Telemetry, type JobSummary } from './telemetry.js';
import type { Terminal } from './terminal.js';

export type { JobSummary } from './telemetry.js';

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

export class Coordinator {
  private readonly router = new Router({ mandatory: false, sendHighWaterMark: 10000 });
  private readonly membership: Membership<Buffer>;
  private readonly telemetry: Telemetry;
  private timer: NodeJS.Timeout | undefined;
  private finish!: (s: JobSummary) => void;
  private fail!: (e: Error) => void;
  /** Set while `serveFinished` runs: SIGTERM ends it. */
  private endServing: (() => void) | undefined;
  private stopRequested = false;

  constructor(
    private readonly config: Readonly<Config>,
    private readonly opts: CoordinatorOptions,
    private readonly log: Logger,
  ) {
    mkdirSync(opts.runDir, { recursive: true });
    const hash = configHash(config);
    const persisted = readJobState(opts.runDir);
    if (persisted) {
      if (opts.resume !== 'auto') {
        throw new SigmaError('SGT_CLI_USAGE', `run dir ${opts.runDir} already holds a job (generation ${persisted.generation}): pass --resume auto to continue it, or choose another --run-dir`);
      }
      if (persisted.configHash !== hash) {
        log.warn({ was: persisted.configHash, now: hash }, 'resuming with a different config; the checkpoint\'s architecture is checked by rank 0');
      }
    }
    const { dist, train, guard } = config;
    this.membership = new Membership<Buffer>({
      expectWorkers: opts.expectWorkers, minWorkers: dist.minWorkers, maxWorkers: dist.maxWorkers, joinWaitMs: dist.joinWaitMs,
      heartbeatTimeoutMs: dist.heartbeatTimeoutMs, allreduceTimeoutMs: dist.allreduceTimeoutMs, globalBatch: train.globalBatch,
      maxRollbacks: guard.maxRollbacks, lrFactor: guard.lrFactor, resume: opts.resume, runDir: opts.runDir, configHash: hash,
    }, persisted);
    this.telemetry = new Telemetry(config, opts.runDir, log, opts.terminal);
  }

  get registry() {
    return this.telemetry.registry;
  }

  /** Serves this coordinator's /metrics and logs where. */
  async serveMetrics(host: string, port: number): Promise<string> {
    return this.telemetry.serveMetrics(host, port);
  }

  /** Binds and runs until the job completes (or is stopped); resolves with the summary. */
  async run(): Promise<JobSummary> {
    if (this.membership.finishedBefore) {
      const ledger = this.telemetry.ledger;
      this.log.info({ runDir: this.opts.runDir }, `the job in ${this.opts.runDir} is already complete (${ledger.next} steps); nothing to resume`);
      return {
        ...this.telemetry.summary({ totalSteps: this.membership.steps, generations: this.membership.generation, workerFailures: 0, stoppedEarly: false }),
        seconds: 0, samplesPerSecond: 0, finalLoss: ledger.entries().at(-1)?.loss ?? NaN, minEntropy: NaN,
      };
    }
    await this.router.bind(this.opts.bind);
    this.log.info({ bind: this.opts.bind, runDir: this.opts.runDir, expect: this.opts.expectWorkers }, `coordinator listening on ${this.opts.bind}; run dir ${this.opts.runDir}`);
    const done = new Promise<JobSummary>((resolve, reject) => {
      this.finish = resolve;
      this.fail = reject;
    });
    void this.receive();
    this.timer = setInterval(() => this.dispatch({ kind: 'tick', now: Date.now() }), this.config.dist.heartbeatMs);
    try {
      return await done;
    } finally {
      clearInterval(this.timer);
      this.telemetry.stop();
      await new Promise((r) => setTimeout(r, 200)); // let the last stop messages leave
      this.router.close();
      if (this.opts.afterFinish !== 'serve') await this.telemetry.closeMetrics();
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
      await this.telemetry.closeMetrics();
    }
  }

  /** SIGTERM/SIGINT: every rank stops at the same step boundary; rank 0 writes a final checkpoint. */
  requestStop(reason: string): void {
    if (this.endServing) {
      this.log.info({ reason }, 'stopped serving the complete job');
      this.endServing();
      return;
    }
    this.stopRequested = true;
    this.dispatch({ kind: 'stop', now: Date.now(), reason });
  }

  /** Feeds one event to the membership machine, sends what it returns and applies its effects, in order. */
  private dispatch(e: MembershipEvent<Buffer>): void {
    this.apply(this.membership.handle(e));
  }

  private apply(out: Outcome<Buffer>): void {
    for (const s of out.send) this.sendTo(s.to, s.msg);
    for (const e of out.effects) {
      if (e.kind === 'persist') writeJobState(this.opts.runDir, e.state);
      else if (e.kind === 'fail') this.fail(e.error);
      else if (e.kind === 'complete') {
        const m = this.membership;
        this.finish(this.telemetry.summary({ totalSteps: m.steps, generations: m.generation, workerFailures: m.workerFailures, stoppedEarly: e.stoppedEarly }));
      } else this.telemetry.apply(e);
    }
  }

  private sendTo(routingId: Buffer, msg: Outgoing): void {
    this.router.send([routingId, encode(msg)]).catch((e: unknown) => this.log.warn({ err: (e as Error).message, to: routingId.toString() }, 'send failed'));
  }

  private async receive(): Promise<void> {
    try {
      for await (const [routingId, ...frames] of this.router) {
        const frame = frames[frames.length - 1];
        const d = frame ? decode(frame) : { ok: false as const, error: 'empty message', id: null };
        if (!d.ok) {
          this.log.warn({ from: routingId.toString(), error: d.error }, 'bad control message');
          this.sendTo(routingId, { type: 'error', code: 'SGT_PROTOCOL', message: d.error, inReplyTo: d.id, fatal: false });
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
      if (this.membership.phase !== 'done') this.fail(e as Error);
    }
  }

  private handle(routingId: Buffer, m: Message): void {
    const now = Date.now();
    switch (m.type) {
      case 'worker.hello':
        return this.dispatch({ kind: 'hello', now, from: routingId, msg: m });
      case 'worker.heartbeat':
        return this.dispatch({ kind: 'heartbeat', now, from: routingId, msg: m });
      case 'worker.alive':
        return this.dispatch({ kind: 'seen', now, workerId: m.workerId }); // it never admits anyone
      case 'worker.report': {
        this.dispatch({ kind: 'report', now, workerId: m.workerId, generation: m.generation, step: m.step });
        const refused = this.telemetry.report(m, { worldSize: this.membership.worldSize, totalSteps: this.membership.steps }, (a) =>
          this.dispatch(a.kind === 'stop' ? { kind: 'stop', now, reason: a.reason } : { kind: 'rollback', now, reason: a.reason, onset: a.onset }));
        if (refused) this.dispatch({ kind: 'fail', now, error: refused, workerId: m.workerId });
        return;
      }
      case 'worker.eval':
        this.dispatch({ kind: 'seen', now, workerId: m.workerId });
        return this.telemetry.evaluation(m);
      case 'worker.checkpointed':
        this.dispatch({ kind: 'seen', now, workerId: m.workerId });
        return this.telemetry.checkpointed(m);
      case 'worker.diagnostics':
        this.dispatch({ kind: 'seen', now, workerId: m.workerId });
        return this.telemetry.diagnostics(m);
      case 'worker.stopped':
        return this.dispatch({ kind: 'stopped', now, msg: m });
      case 'worker.done':
        return this.dispatch({ kind: 'done', now, msg: m });
      case 'ctl.set-temperature':
        return this.dispatch({ kind: 'set-temperature', now, from: routingId, value: m.value });
      case 'error':
        this.log.warn({ code: m.code, message: m.message }, 'worker reported a protocol error');
        return;
      default:
        this.sendTo(routingId, { type: 'error', code: 'SGT_PROTOCOL', message: `unexpected ${m.type} at the coordinator`, inReplyTo: m.id, fatal: false });
    }
  }

  /** The run dir's job had already completed when this coordinator started. */
  get finishedBefore(): boolean {
    return this.membership.finishedBefore;
  }

  get runDir(): string {
    return this.opts.runDir;
  }
}
