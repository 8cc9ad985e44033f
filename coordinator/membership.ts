// The coordinator's membership and generation state machine, pure: an event (a worker's message, a timer tick, a
// stop or rollback request) goes in with its time, the new state stays here, and what to send to whom plus what the
// caller must do (persist, log, count, finish) comes out. No sockets, no timers, no clock: the router and telemetry
// live in coordinator.ts and apply the outcome.
import { SigmaError, type ErrorCode } from '../shared/errors.js';
import type { MessageOf, Outgoing } from '../shared/protocol/index.js';
import type { JobState } from './jobstate.js';

/** What the machine needs from the config (dist.*, train.globalBatch, guard.*). */
export interface MembershipOptions {
  /** Workers to wait for before the first generation (then at least minWorkers after joinWaitMs). */
  expectWorkers: number;
  minWorkers: number;
  /** 0: no limit. */
  maxWorkers: number;
  joinWaitMs: number;
  heartbeatTimeoutMs: number;
  allreduceTimeoutMs: number;
  globalBatch: number;
  maxRollbacks: number;
  lrFactor: number;
  resume: 'auto' | 'never';
  runDir: string;
  configHash: string;
}

export type Phase = 'gathering' | 'running' | 'reforming' | 'stopping' | 'done';

/**
 * Events, each with its time `now` (ms). `from` is the sender's route (the ROUTER's routing id; any value in tests):
 * the machine stores it with the member and addresses sends to it, never looks inside.
 */
export type MembershipEvent<R> =
  | { kind: 'hello'; now: number; from: R; msg: MessageOf<'worker.hello'> }
  | { kind: 'heartbeat'; now: number; from: R; msg: MessageOf<'worker.heartbeat'> }
  /** Any other message of a worker (alive, eval, checkpointed, diagnostics): it is alive. */
  | { kind: 'seen'; now: number; workerId: string }
  | { kind: 'report'; now: number; workerId: string; generation: number; step: number }
  | { kind: 'stopped'; now: number; msg: MessageOf<'worker.stopped'> }
  | { kind: 'done'; now: number; msg: MessageOf<'worker.done'> }
  /** The heartbeat timer: beats to every member, silent ones are lost, pending generations form. */
  | { kind: 'tick'; now: number }
  /** SIGTERM/SIGINT or the guard's stop: every rank stops at one step boundary, rank 0 checkpoints. */
  | { kind: 'stop'; now: number; reason: string }
  /** The guard's rollback: the next generation restarts from the checkpoint at or before `onset`, lr scaled down. */
  | { kind: 'rollback'; now: number; reason: string; onset: number }
  | { kind: 'set-temperature'; now: number; from: R; value: number }
  /** The job cannot go on (e.g. a step digest mismatch in the ledger). */
  | { kind: 'fail'; now: number; error: SigmaError; workerId: string };

/** What the caller does besides sending. */
export type Effect =
  | { kind: 'persist'; state: JobState }
  /** A line for a person (progress on a terminal, or the log). */
  | { kind: 'note'; text: string; fields?: Record<string, unknown> }
  | { kind: 'log'; level: 'info' | 'warn'; text: string; fields: Record<string, unknown> }
  /** events.jsonl */
  | { kind: 'event'; event: { kind: 'generation' | 'failure' | 'temperature' | 'rollback'; step: number; message: string; [k: string]: unknown } }
  | { kind: 'generation'; generation: number; worldSize: number }
  | { kind: 'worker-failed' }
  /** The guard's history restarts (a rollback). */
  | { kind: 'guard-reset' }
  /** The first step after a rollback: steps from `step` on run again, so they leave the ledger. */
  | { kind: 'rolled-back'; step: number }
  /** The job ended (stoppedEarly: a stop request, not every step). */
  | { kind: 'complete'; stoppedEarly: boolean }
  | { kind: 'fail'; error: SigmaError };

export interface Outcome<R> {
  send: { to: R; msg: Outgoing }[];
  effects: Effect[];
}

interface Member<R> {
  workerId: string;
  route: R;
  ringEndpoint: string;
  lastSeen: number;
  /** Steps this worker holds and from which generation (null: fresh process). */
  held: { generation: number; step: number } | null;
  /** Rank in the current generation, if in it. */
  rank: number | undefined;
  stopped: boolean;
  done: boolean;
}

/** Worker codes that are the job's own failure when a worker stops fatally with them. */
const FATAL_CODES: ErrorCode[] = ['SGT_REPLICA_MISMATCH', 'SGT_NONFINITE_LOSS', 'SGT_CHECKPOINT_INVALID'];

export class Membership<R> {
  private readonly members = new Map<string, Member<R>>();
  private generationNo = 0;
  private world = 0;
  private phaseNow: Phase = 'gathering';
  private totalSteps = 0;
  /** When the first worker joined (null: none yet); joinWaitMs counts from here. */
  private firstSeen: number | null = null;
  private reformDeadline = 0;
  private lastReported = -1;
  private stopRequested = false;
  private hasProgress = false;
  /** The run dir held a finished job when this machine was built from it. */
  readonly finishedBefore: boolean;
  private completed = false;
  private temperatureOverride: { value: number; fromStep: number } | null = null;
  private lrScaleNow = 1;
  private rollbacks = 0;
  private failures = 0;
  /** Set by a rollback: the next generation starts from the checkpoint at or before this step. */
  private rollbackTo: number | null = null;
  /** Generation that restarted from a rollback checkpoint: its first report says which step it restarted at. */
  private rollbackGeneration: number | null = null;
  private out: Outcome<R> = { send: [], effects: [] };
  /** Why the job is over, told to whoever joins after it ended. */
  private endReason = 'job complete';

  constructor(private readonly o: Readonly<MembershipOptions>, persisted?: JobState) {
    if (persisted) {
      this.finishedBefore = persisted.done;
      this.generationNo = persisted.generation;
      this.totalSteps = persisted.totalSteps;
      this.temperatureOverride = persisted.temperatureOverride;
      this.lrScaleNow = persisted.lrScale;
      this.rollbacks = persisted.rollbacks;
      this.hasProgress = true;
    } else this.finishedBefore = false;
  }

  get phase(): Phase {
    return this.phaseNow;
  }
  get generation(): number {
    return this.generationNo;
  }
  get worldSize(): number {
    return this.world;
  }
  get steps(): number {
    return this.totalSteps;
  }
  get workerFailures(): number {
    return this.failures;
  }
  get lrScale(): number {
    return this.lrScaleNow;
  }
  /** Worker ids by rank in the current generation. */
  ranks(): string[] {
    return this.active().sort((a, b) => a.rank! - b.rank!).map((m) => m.workerId);
  }
  has(workerId: string): boolean {
    return this.members.has(workerId);
  }

  /** Applies one event; returns what to send and do, in order. */
  handle(e: MembershipEvent<R>): Outcome<R> {
    this.out = { send: [], effects: [] };
    const workerId = e.kind === 'hello' || e.kind === 'heartbeat' || e.kind === 'stopped' || e.kind === 'done' ? e.msg.workerId
      : e.kind === 'seen' || e.kind === 'report' ? e.workerId : undefined;
    const member = workerId !== undefined ? this.members.get(workerId) : undefined;
    if (member) member.lastSeen = e.now;
    if ((e.kind === 'hello' || (e.kind === 'heartbeat' && !member)) && (this.phaseNow === 'done' || this.finishedBefore)) {
      // The job is over: whoever joins (or still beats) is told so and exits.
      this.send(e.from, { type: 'coord.stop', reason: this.endReason, checkpoint: false, atStep: null });
      return this.out;
    }
    switch (e.kind) {
      case 'hello':
        this.onHello(e.now, e.from, e.msg);
        break;
      case 'heartbeat':
        if (!member) this.adopt(e.now, e.from, e.msg);
        break;
      case 'seen':
        break;
      case 'report':
        this.onReport(e.generation, e.step);
        break;
      case 'stopped':
        if (member) this.onStopped(e.now, member, e.msg);
        break;
      case 'done':
        if (!member) break;
        member.done = true;
        member.held = { generation: e.msg.generation, step: e.msg.held };
        if (this.active().every((x) => x.done)) this.complete(false);
        break;
      case 'tick':
        this.tick(e.now);
        break;
      case 'stop':
        this.requestStop(e.reason);
        break;
      case 'rollback':
        this.rollback(e.now, e.reason, e.onset);
        break;
      case 'set-temperature':
        this.setTemperature(e.from, e.value);
        break;
      case 'fail':
        this.stopFailed(e.error, e.workerId);
        break;
    }
    return this.out;
  }

  private send(to: R, msg: Outgoing): void {
    this.out.send.push({ to, msg });
  }
  private effect(x: Effect): void {
    this.out.effects.push(x);
  }
  private note(text: string, fields?: Record<string, unknown>): void {
    this.effect(fields ? { kind: 'note', text, fields } : { kind: 'note', text });
  }

  /** The state a restarted coordinator reloads. */
  jobState(): JobState {
    return {
      generation: this.generationNo, totalSteps: this.totalSteps, configHash: this.o.configHash, done: this.completed,
      temperatureOverride: this.temperatureOverride, lrScale: this.lrScaleNow, rollbacks: this.rollbacks,
    };
  }
  private persist(): void {
    this.effect({ kind: 'persist', state: this.jobState() });
  }

  private onHello(now: number, from: R, m: MessageOf<'worker.hello'>): void {
    if (m.configHash !== this.o.configHash) {
      this.effect({ kind: 'log', level: 'warn', text: 'refused a worker with another config', fields: { workerId: m.workerId, theirs: m.configHash, ours: this.o.configHash } });
      this.send(from, {
        type: 'error', code: 'SGT_CONFIG_MISMATCH', fatal: true, inReplyTo: m.id,
        message: `config hash ${m.configHash} differs from the coordinator's ${this.o.configHash}: start every worker with the coordinator's config file and overrides`,
      });
      return;
    }
    if (this.totalSteps > 0 && m.totalSteps !== this.totalSteps && !this.hasProgress) {
      this.effect({ kind: 'log', level: 'warn', text: 'worker computes another step count (different dataset?)', fields: { workerId: m.workerId, theirs: m.totalSteps, ours: this.totalSteps } });
    }
    if (this.totalSteps === 0) this.totalSteps = m.totalSteps;
    const known = this.members.get(m.workerId);
    this.members.set(m.workerId, {
      workerId: m.workerId, route: from, ringEndpoint: m.ringEndpoint, lastSeen: now, held: m.held ? { generation: m.held.generation, step: m.held.step } : null,
      rank: undefined, stopped: false, done: false,
    });
    this.firstSeen ??= now;
    this.effect({ kind: 'log', level: 'info', text: `worker ${m.workerId} joined (${this.members.size} connected)`, fields: { workerId: m.workerId, ring: m.ringEndpoint, members: this.members.size } });
    if (known?.rank !== undefined && (this.phaseNow === 'running' || this.phaseNow === 'reforming')) {
      // The same worker id again: the process restarted; its old incarnation is gone.
      this.workerFailed(now, `${m.workerId} restarted`);
      return;
    }
    if (this.phaseNow === 'running') this.reform(now, `${m.workerId} joined`, this.lastReported + 3);
    else if (this.phaseNow === 'gathering') this.maybeStart(now);
  }

  /** A heartbeat from a worker we do not know: this coordinator restarted while the job ran. */
  private adopt(now: number, from: R, m: MessageOf<'worker.heartbeat'>): void {
    const active = m.state !== 'idle';
    if (active && m.generation > this.generationNo) {
      // The job moved on to a generation this coordinator never persisted: ranks seen so far are stale.
      this.generationNo = m.generation;
      for (const x of this.members.values()) x.rank = undefined;
    }
    // An idle worker (its generation was aborted, or it is fresh) holds state but no rank: a new generation forms.
    const inGeneration = active && m.rank >= 0 && m.generation === this.generationNo;
    this.members.set(m.workerId, {
      workerId: m.workerId, route: from, ringEndpoint: m.ringEndpoint, lastSeen: now, held: m.step > 0 ? { generation: m.generation, step: m.step } : null,
      rank: inGeneration ? m.rank : undefined, stopped: !active, done: false,
    });
    this.firstSeen ??= now;
    this.effect({
      kind: 'log', level: 'info', text: `re-attached worker ${m.workerId} (rank ${m.rank} of generation ${m.generation}, ${m.state})`,
      fields: { workerId: m.workerId, generation: m.generation, rank: m.rank, step: m.step, state: m.state },
    });
    const inGen = this.active();
    if (this.phaseNow === 'gathering' && inGeneration && inGen.length === m.worldSize) {
      this.world = m.worldSize;
      this.phaseNow = 'running';
      this.lastReported = Math.max(this.lastReported, ...inGen.map((x) => (x.held?.step ?? 0) - 1));
      this.note(`resumed tracking generation ${this.generationNo} with ${this.world} workers at step ${this.lastReported + 1}`);
    }
  }

  private onReport(generation: number, step: number): void {
    if (generation === this.generationNo && step > this.lastReported) this.lastReported = step;
    if (generation === this.rollbackGeneration) {
      // The first report after a rollback: the generation restarted at `step`.
      this.rollbackGeneration = null;
      this.rollbackTo = null;
      this.effect({ kind: 'rolled-back', step });
      this.effect({ kind: 'event', event: { kind: 'rollback', step, message: `restarted from the checkpoint of step ${step}`, lrScale: this.lrScaleNow } });
    }
  }

  private onStopped(now: number, member: Member<R>, m: MessageOf<'worker.stopped'>): void {
    member.stopped = true;
    member.held = { generation: m.generation, step: m.held };
    if (m.generation !== this.generationNo) return;
    if (m.fatal) {
      // The worker's own code (SGT_REPLICA_MISMATCH, SGT_NONFINITE_LOSS) is the job's.
      const code = /^(SGT_[A-Z_]+):/.exec(m.reason)?.[1];
      this.stopFailed(new SigmaError(FATAL_CODES.includes(code as ErrorCode) ? (code as ErrorCode) : 'SGT_COMM', `worker ${m.workerId} stopped the job: ${m.reason}`), m.workerId);
      return;
    }
    if (this.phaseNow === 'running') this.workerFailed(now, `${m.workerId} left generation ${m.generation}: ${m.reason}`);
    else if (this.stopComplete()) this.complete(true);
    else this.maybeFormAfterReform(now);
  }

  /** `sigmatrain ctl set-temperature`: every rank switches at the same future step boundary. */
  private setTemperature(from: R, value: number): void {
    const fromStep = this.phaseNow === 'running' ? this.lastReported + 3 : Math.max(0, this.lastReported + 1);
    this.temperatureOverride = { value, fromStep };
    this.persist();
    for (const m of this.active()) this.send(m.route, { type: 'coord.set-temperature', generation: this.generationNo, value, fromStep });
    this.effect({ kind: 'event', event: { kind: 'temperature', step: fromStep, message: `temperature set to ${value} from step ${fromStep}`, value } });
    this.note(`attention temperature → ${value} from step ${fromStep}`, { value, fromStep });
    this.send(from, { type: 'ctl.ok', message: `temperature ${value} from step ${fromStep}`, fromStep });
  }

  private requestStop(reason: string): void {
    if (this.stopRequested) return;
    this.stopRequested = true;
    if (this.finishedBefore || this.phaseNow === 'done') return;
    if (this.phaseNow === 'running' || this.phaseNow === 'reforming') {
      const atStep = this.lastReported + 3;
      this.note(`stopping: ${reason}; every rank stops before step ${atStep}, rank 0 writes a final checkpoint`);
      this.phaseNow = 'stopping';
      for (const m of this.active()) this.send(m.route, { type: 'coord.stop', reason, checkpoint: true, atStep });
    } else {
      this.complete(true);
    }
  }

  private rollback(now: number, reason: string, onset: number): void {
    if (this.phaseNow !== 'running') return;
    if (this.rollbacks >= this.o.maxRollbacks) {
      this.requestStop(`${reason}; ${this.rollbacks} rollbacks already: stopping`);
      return;
    }
    this.rollbacks += 1;
    this.lrScaleNow *= this.o.lrFactor;
    // Rank 0 restarts from its latest checkpoint at or before the step where the entropy started to fall.
    this.rollbackTo = onset;
    this.effect({ kind: 'guard-reset' });
    for (const m of this.members.values()) m.held = null;
    this.effect({ kind: 'event', event: { kind: 'rollback', step: onset, message: `${reason}: rolling back to the last checkpoint at or before step ${onset}, lr × ${this.lrScaleNow}`, lrScale: this.lrScaleNow } });
    this.reform(now, `rollback to the last checkpoint at or before step ${onset} (lr × ${this.lrScaleNow.toPrecision(3)})`, this.lastReported + 3);
  }

  /** The job cannot go on: every worker stops at once without a checkpoint, and the coordinator fails with `error`. */
  private stopFailed(error: SigmaError, workerId: string): void {
    this.note(`job failed: ${error.message}`, { workerId, code: error.code });
    this.effect({ kind: 'fail', error });
    this.phaseNow = 'done';
    this.endReason = error.message;
    for (const x of this.members.values()) this.send(x.route, { type: 'coord.stop', reason: error.message, checkpoint: false, atStep: null });
  }

  /** A member of the running generation failed (left, restarted or went silent): count it and re-form at once. */
  private workerFailed(now: number, reason: string): void {
    this.failures += 1;
    this.effect({ kind: 'worker-failed' });
    this.reform(now, reason, null);
  }

  /** Stopping, and every member of the generation has stopped or finished. */
  private stopComplete(): boolean {
    return this.phaseNow === 'stopping' && this.active().every((x) => x.stopped || x.done);
  }

  private active(): Member<R>[] {
    return [...this.members.values()].filter((m) => m.rank !== undefined);
  }

  private maybeStart(now: number): void {
    const n = this.members.size;
    const waited = now - (this.firstSeen ?? now);
    if (n >= this.o.expectWorkers || (n >= this.o.minWorkers && waited >= this.o.joinWaitMs)) this.form();
  }

  /** Ends the current generation: survivors stop at `atStep` (or at once) and report what they hold. */
  private reform(now: number, reason: string, atStep: number | null): void {
    if (this.phaseNow === 'done' || this.phaseNow === 'stopping') return;
    this.effect({ kind: 'event', event: { kind: atStep === null ? 'failure' : 'generation', step: this.lastReported + 1, message: reason } });
    this.note(`re-forming: ${reason}`, { generation: this.generationNo, reason, atStep });
    this.phaseNow = 'reforming';
    this.reformDeadline = now + this.o.allreduceTimeoutMs + 2 * this.o.heartbeatTimeoutMs;
    for (const m of this.active()) if (!m.stopped) this.send(m.route, { type: 'coord.abort', generation: this.generationNo, atStep, reason });
    this.maybeFormAfterReform(now);
  }

  private maybeFormAfterReform(now: number): void {
    if (this.phaseNow !== 'reforming') return;
    if (this.active().every((m) => m.stopped) || now > this.reformDeadline) this.form();
  }

  private form(): void {
    const alive = [...this.members.values()].sort((a, b) => a.workerId.localeCompare(b.workerId));
    const max = this.o.maxWorkers > 0 ? this.o.maxWorkers : Infinity;
    const chosen = alive.slice(0, Math.min(max, alive.length));
    if (chosen.length < this.o.minWorkers) {
      this.phaseNow = 'gathering';
      this.note(`waiting for workers: ${chosen.length} of at least ${this.o.minWorkers}`);
      return;
    }
    if (chosen.length > this.o.globalBatch) {
      const error = new SigmaError('SGT_CONFIG_INVALID', `train.globalBatch ${this.o.globalBatch} is smaller than the ${chosen.length} workers: every worker needs at least one sample per step; raise train.globalBatch or use at most ${this.o.globalBatch} workers (dist.maxWorkers)`);
      this.phaseNow = 'done';
      this.endReason = error.message;
      this.effect({ kind: 'fail', error });
      return;
    }
    this.generationNo += 1;
    this.world = chosen.length;
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
    const resume = this.o.resume === 'auto' || this.hasProgress;
    chosen.forEach((m, rank) => {
      m.rank = rank;
      this.send(m.route, {
        type: 'coord.start', generation: this.generationNo, rank, worldSize: chosen.length, peers, source, resumeStep,
        totalSteps: this.totalSteps, runDir: this.o.runDir, resume, temperatureOverride: this.temperatureOverride,
        lrScale: this.lrScaleNow, rollbackTo: this.rollbackTo,
      });
    });
    this.hasProgress = true;
    // rollbackTo stays set until this generation reports a step (onReport): if it fails before that, the next
    // generation rolls back again instead of resuming from a replica the rollback discarded.
    if (this.rollbackTo !== null) this.rollbackGeneration = this.generationNo;
    this.lastReported = resumeStep - 1;
    this.phaseNow = 'running';
    this.persist();
    this.effect({ kind: 'generation', generation: this.generationNo, worldSize: chosen.length });
    this.effect({ kind: 'event', event: { kind: 'generation', step: resumeStep, message: `generation ${this.generationNo} with ${chosen.length} workers`, generation: this.generationNo, worldSize: chosen.length } });
    this.note(
      `generation ${this.generationNo}: ${chosen.length} workers [${chosen.map((m) => m.workerId).join(', ')}], from ${source >= 0 ? `rank ${source} at step ${resumeStep}` : 'the latest checkpoint or a fresh init'}`,
      { generation: this.generationNo, worldSize: chosen.length, source, resumeStep },
    );
  }

  private tick(now: number): void {
    for (const m of [...this.members.values()]) {
      this.send(m.route, { type: 'coord.heartbeat', generation: this.generationNo });
      if (now - m.lastSeen > this.o.heartbeatTimeoutMs) {
        this.members.delete(m.workerId);
        this.note(`lost worker ${m.workerId}: silent for ${now - m.lastSeen} ms`, { workerId: m.workerId });
        if (m.rank !== undefined && (this.phaseNow === 'running' || this.phaseNow === 'reforming')) {
          this.workerFailed(now, `${m.workerId} lost`);
        } else if (m.rank !== undefined && this.stopComplete()) {
          this.complete(true);
        }
      }
    }
    if (this.phaseNow === 'reforming') this.maybeFormAfterReform(now);
    if (this.phaseNow === 'gathering' && this.members.size > 0) this.maybeStart(now);
  }

  private complete(stoppedEarly: boolean): void {
    if (this.phaseNow === 'done') return;
    this.phaseNow = 'done';
    this.completed = !stoppedEarly;
    this.persist();
    for (const m of this.members.values()) this.send(m.route, { type: 'coord.stop', reason: 'job complete', checkpoint: false, atStep: null });
    this.effect({ kind: 'complete', stoppedEarly });
  }
}
