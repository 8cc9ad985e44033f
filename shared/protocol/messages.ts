// Control-plane messages between coordinator (ROUTER) and workers (DEALER): one zod schema per type, versioned.
import { z } from 'zod';

export const PROTOCOL_VERSION = 3;
/** Largest control message accepted (bytes); state and gradients travel on the ring, never here. */
export const MAX_MESSAGE_BYTES = 1 << 20;

const id = z.number().int().nonnegative();
const step = z.number().int().nonnegative();
const generation = z.number().int().nonnegative();
const finite = z.number().finite();

const envelope = { v: z.literal(PROTOCOL_VERSION), id };

/** A task's named values (e.g. {accuracy: 0.5} or {val_top1: 0.97}); names are the task's, never the runtime's. */
const metricRecord = z.record(z.string().min(1).max(64), z.number()).refine((r) => Object.keys(r).length <= 64, 'at most 64 metrics');
/** One attention site's per-head values: entropy or its Theorem 3.1 bound, nats. */
const siteHeads = z.object({ attn: z.enum(['self', 'causal', 'cross']), layer: z.number().int().nonnegative(), heads: z.array(finite).max(1024) });

/** Worker → coordinator. */
export const Hello = z.object({
  ...envelope,
  type: z.literal('worker.hello'),
  workerId: z.string().min(1).max(200),
  configHash: z.string().min(1).max(64),
  host: z.string().max(255),
  pid: z.number().int(),
  /** Endpoint where this worker's ring PULL binds (tcp://host:port or ipc://path). */
  ringEndpoint: z.string().min(1).max(500),
  /** Optimizer steps of the whole job as this worker computes them from config and dataset (all must agree). */
  totalSteps: step,
  /** What the worker holds now: null for a fresh process. */
  held: z.object({ generation, step, rank: z.number().int() }).nullable(),
});

export const Heartbeat = z.object({
  ...envelope,
  type: z.literal('worker.heartbeat'),
  workerId: z.string().min(1),
  generation,
  rank: z.number().int(),
  step,
  ringEndpoint: z.string().min(1).max(500),
  worldSize: z.number().int().positive(),
  /** training: inside a generation; idle: waiting for coord.start (fresh, or its generation ended); done: finished. */
  state: z.enum(['training', 'idle', 'done']),
});

/**
 * Worker → coordinator, from the worker's liveness thread (its own socket): the process is alive, its training thread
 * has been inside one synchronous computation for busyMs. Keeps a member from being declared lost during a step longer
 * than the heartbeat timeout; never admits or re-attaches anyone (that takes a hello or a heartbeat).
 */
export const Alive = z.object({
  ...envelope,
  type: z.literal('worker.alive'),
  workerId: z.string().min(1).max(200),
  busyMs: z.number().int().nonnegative(),
});

export const Report = z.object({
  ...envelope,
  type: z.literal('worker.report'),
  workerId: z.string().min(1),
  generation,
  rank: z.number().int().nonnegative(),
  /** Optimizer step just completed (0-based); the replica now holds step + 1 steps. */
  step,
  epoch: z.number().int().nonnegative(),
  /** Batch units of this step over all ranks, in the task's unit. */
  units: z.number().int().nonnegative(),
  unit: z.string().min(1).max(32),
  /** Examples of this step over all ranks. */
  samples: z.number().int().nonnegative(),
  /** May be non-finite (NaN, ±Infinity): the coordinator reports that. */
  loss: z.union([z.number(), z.nan()]),
  /** The task's per-step values, each already divided by its denominator. */
  metrics: metricRecord,
  lr: finite,
  gradNorm: z.union([z.number(), z.nan()]),
  temperature: finite,
  entropy: z.array(siteHeads).max(4096),
  /** Chained digest of the steps this replica has applied (worker/train/digest.ts). */
  digest: z.string().min(1).max(64),
  /** The digest the step started from (the previous step's digest on this replica's chain). */
  prevDigest: z.string().min(1).max(64),
  seconds: z.object({ data: finite, forward_backward: finite, allreduce: finite, optimizer: finite }),
});

export const Eval = z.object({
  ...envelope,
  type: z.literal('worker.eval'),
  workerId: z.string().min(1),
  generation,
  step,
  epoch: z.number().int().nonnegative(),
  /** The task's evaluation metrics, e.g. {val_top1, val_top5, val_loss}. */
  metrics: metricRecord,
  /** The same on the EMA weights (optim.emaDecay > 0). */
  ema: metricRecord.nullable(),
  /** Examples evaluated. */
  n: z.number().int().nonnegative(),
});

export const Stopped = z.object({
  ...envelope,
  type: z.literal('worker.stopped'),
  workerId: z.string().min(1),
  generation,
  /** Steps this replica has applied (the next step it would run). */
  held: step,
  reason: z.string().max(2000),
  /** The job cannot go on (non-finite loss, diverged replicas): the coordinator stops it. */
  fatal: z.boolean(),
});

export const Checkpointed = z.object({
  ...envelope,
  type: z.literal('worker.checkpointed'),
  workerId: z.string().min(1),
  step,
  path: z.string().max(4096),
  seconds: finite,
});

export const Done = z.object({
  ...envelope,
  type: z.literal('worker.done'),
  workerId: z.string().min(1),
  generation,
  held: step,
});

export const Diagnostics = z.object({
  ...envelope,
  type: z.literal('worker.diagnostics'),
  workerId: z.string().min(1),
  generation,
  step,
  sharpness: z.array(finite).max(64).nullable(),
  stabilityThreshold: finite.nullable(),
  entropyBound: z.array(siteHeads).max(4096),
  spectral: z.array(z.object({ name: z.string().max(200), sigma: finite, gamma: finite.nullable() })).max(10000),
});

/** ctl client → coordinator (sigmatrain ctl …). */
export const CtlSetTemperature = z.object({ ...envelope, type: z.literal('ctl.set-temperature'), value: finite.positive() });
/** coordinator → ctl client. */
export const CtlOk = z.object({ ...envelope, type: z.literal('ctl.ok'), message: z.string().max(2000), fromStep: step.nullable() });

/** Coordinator → worker. */
export const Start = z.object({
  ...envelope,
  type: z.literal('coord.start'),
  generation,
  rank: z.number().int().nonnegative(),
  worldSize: z.number().int().positive(),
  /** Ring endpoints by rank. */
  peers: z.array(z.string().min(1)).min(1),
  /** Rank whose state every rank takes (-1: rank 0 loads the latest checkpoint, or initialises, then broadcasts). */
  source: z.number().int().min(-1),
  /** Steps the source holds (what the generation resumes from). */
  resumeStep: step,
  totalSteps: step,
  runDir: z.string().max(4096),
  /** May rank 0 load the latest checkpoint of runDir (resume), or must the run dir hold none? */
  resume: z.boolean(),
  /** A live temperature set with `sigmatrain ctl set-temperature`, applied from fromStep on (overrides the schedule). */
  temperatureOverride: z.object({ value: finite.positive(), fromStep: step }).nullable(),
  /** Learning-rate multiplier from the entropy-collapse guard's rollbacks (1 without). */
  lrScale: finite.positive(),
  /** Rollback: rank 0 loads its latest checkpoint at or before this step (source is then -1). */
  rollbackTo: step.nullable(),
});

export const SetTemperature = z.object({ ...envelope, type: z.literal('coord.set-temperature'), generation, value: finite.positive(), fromStep: step });

export const Abort = z.object({
  ...envelope,
  type: z.literal('coord.abort'),
  generation,
  /** Stop before running this step (null: at once, leaving any in-flight all-reduce). */
  atStep: step.nullable(),
  reason: z.string().max(2000),
});

export const Stop = z.object({
  ...envelope,
  type: z.literal('coord.stop'),
  reason: z.string().max(2000),
  /** Write a final checkpoint before exiting (rank 0). */
  checkpoint: z.boolean(),
  /** Stop before running this step, so every rank stops at the same boundary (null: at the next one). */
  atStep: step.nullable(),
});

export const CoordHeartbeat = z.object({ ...envelope, type: z.literal('coord.heartbeat'), generation });

/** Either direction: a refusal or a problem with a received message. */
export const ErrorMsg = z.object({
  ...envelope,
  type: z.literal('error'),
  code: z.string().max(64),
  message: z.string().max(4000),
  /** Request id of the message this answers, when known. */
  inReplyTo: id.nullable(),
  fatal: z.boolean(),
});

export const Message = z.discriminatedUnion('type', [
  Hello, Heartbeat, Alive, Report, Eval, Stopped, Checkpointed, Done, Diagnostics, Start, Abort, Stop, CoordHeartbeat,
  SetTemperature, CtlSetTemperature, CtlOk, ErrorMsg,
]);

export type Message = z.infer<typeof Message>;
export type MessageType = Message['type'];
export type MessageOf<T extends MessageType> = Extract<Message, { type: T }>;
/** A message as the sender builds it: the codec adds the version and the request id. */
export type Outgoing<T extends MessageType = MessageType> = T extends MessageType ? Omit<MessageOf<T>, 'v' | 'id'> : never;
