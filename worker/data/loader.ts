// Loader: one rank's stream of decoded, augmented (and for training, mixed) batches across epochs, prefetching the
// next K batches on a DecodePool while the caller trains. Every batch is a pure function of (index, options, cursor).

import { SigmaError } from '../../shared/errors.js';
import type { Batch, SampleIndex, Skipped } from './imagefolder.js';
import { checkTransform, sampleSeed, type FailOn, type SampleTransform } from './augment.js';
import { checkMixConfig, mixBatch, type MixConfig, type MixInfo } from './mix.js';
import { DecodePool, decodeInline, rowLength, type DecodedRows } from './pool.js';
import { repeatedShardPlan, type RepeatedPlan, type RepeatedStep } from './repeated.js';
import { Rng, deriveSeed } from '../rng.js';

export interface LoaderOptions {
  /** Train (random) or eval (deterministic) per-sample transform; decides the defaults below. */
  transform: SampleTransform;
  /** Run seed: drives the epoch order, every augmentation and the batch mixing. */
  seed: number;
  /** Sample occurrences per rank per step. */
  batchPerRank: number;
  worldSize?: number;
  rank?: number;
  /** Start cursor (resume): the first batch is (epoch, step). Defaults 0, 0. */
  epoch?: number;
  step?: number;
  /** Stop before this epoch. Default: unbounded for shuffled loaders, epoch + 1 otherwise. */
  epochs?: number;
  /** Shuffle per epoch (default: transform.kind === 'train'); otherwise index order. */
  shuffle?: boolean;
  /** Leave out the partial last global batch (default: shuffle). */
  dropLast?: boolean;
  /** Repeated augmentation: occurrences of each sample per epoch (default 1; see repeated.ts for the accounting). */
  repeats?: number;
  /** Batch mixing (mixup / cutmix) into soft labels; train transform only. Default none. */
  mix?: MixConfig | null;
  /** Classes for the soft labels (default index.classes.length). */
  numClasses?: number;
  /** Decode threads to start when no `pool` is given; 0 decodes on the calling thread. Default 0. */
  threads?: number;
  /** A pool to share (e.g. between the train and val loaders); the loader does not close it. */
  pool?: DecodePool;
  /** Batches decoded ahead of the one being consumed (default 2). */
  prefetch?: number;
  failOn?: FailOn;
}

/** A batch with its place in the run. Rows (x, y, ids) follow the plan order, skipped samples left out. */
export interface LoaderBatch extends Batch {
  epoch: number;
  step: number;
  /** Steps in this epoch (every rank has the same number). */
  steps: number;
  /** Occurrences planned for the whole global batch, before skips (the loss denominator is Σ_ranks n). */
  globalSize: number;
  /** [n] repeated-augmentation copy number of each row. */
  repeats: Uint8Array;
  /** [n, numClasses] soft targets when mixing is on (rows sum to 1), else absent. */
  soft?: Float32Array;
  mix?: MixInfo;
  /** Output side: x is [n, size, size, 3]. */
  size: number;
}

export interface Cursor {
  epoch: number;
  step: number;
}

const MIX_TAG = 0x6d78; // separates the batch-mixing stream from other deriveSeed users

/** Pack the rows that decoded to the front, keeping order; views into x (no copy). */
function compact(index: SampleIndex, plan: RepeatedStep, got: DecodedRows, row: number): Batch & { repeats: Uint8Array } {
  const m = plan.ids.length;
  const skipped: Skipped[] = [];
  const ids = new Int32Array(m);
  const y = new Int32Array(m);
  const repeats = new Uint8Array(m);
  let n = 0;
  for (let k = 0; k < m; k++) {
    const id = plan.ids[k]!;
    const reason = got.reasons[k];
    if (reason !== null && reason !== undefined) {
      skipped.push({ id, path: index.paths[id]!, reason });
      continue;
    }
    if (n !== k) got.x.copyWithin(n * row, k * row, (k + 1) * row);
    ids[n] = id;
    y[n] = index.labels[id]!;
    repeats[n] = plan.repeats[k]!;
    n++;
  }
  return { x: got.x.subarray(0, n * row), y: y.subarray(0, n), ids: ids.subarray(0, n), repeats: repeats.subarray(0, n), n, skipped };
}

/**
 * One rank's batches from (epoch, step) on. next() resolves batches in plan order (null after the last epoch);
 * up to `prefetch` later batches are already decoding. A file that cannot be read or decoded is left out of its
 * batch and listed in `skipped` (id, path, reason) for the caller to log; `skippedTotal` counts them.
 */
export class Loader implements AsyncIterable<LoaderBatch> {
  readonly opts: Readonly<Required<Omit<LoaderOptions, 'pool' | 'mix'>>> & { mix: MixConfig | null };
  /** Samples skipped so far in batches handed out by next(). */
  skippedTotal = 0;
  private readonly pool: DecodePool | null;
  private readonly ownsPool: boolean;
  private readonly pending: Promise<LoaderBatch>[] = [];
  private scheduled: Cursor; // the next batch to start decoding
  private consumed: Cursor; // the batch after the last one handed out
  private plans = new Map<number, RepeatedPlan>();
  private closed = false;

  constructor(
    readonly index: SampleIndex,
    options: LoaderOptions,
  ) {
    checkTransform(options.transform);
    const shuffle = options.shuffle ?? options.transform.kind === 'train';
    const epoch = options.epoch ?? 0;
    const o = {
      transform: options.transform,
      seed: options.seed,
      batchPerRank: options.batchPerRank,
      worldSize: options.worldSize ?? 1,
      rank: options.rank ?? 0,
      epoch,
      step: options.step ?? 0,
      epochs: options.epochs ?? (shuffle ? Infinity : epoch + 1),
      shuffle,
      dropLast: options.dropLast ?? shuffle,
      repeats: options.repeats ?? 1,
      mix: options.mix ?? null,
      numClasses: options.numClasses ?? index.classes.length,
      threads: options.threads ?? 0,
      prefetch: options.prefetch ?? 2,
      failOn: options.failOn ?? 'warning',
    };
    const int = (k: string, v: number, lo: number): void => {
      if (!Number.isSafeInteger(v) || v < lo) throw new SigmaError('SGT_DATA_INVALID', `loader: ${k}=${v} must be an integer ≥ ${lo}`);
    };
    int('seed', o.seed, Number.MIN_SAFE_INTEGER);
    int('batchPerRank', o.batchPerRank, 1);
    int('epoch', o.epoch, 0);
    int('step', o.step, 0);
    if (o.epochs !== Infinity) int('epochs', o.epochs, 0);
    int('threads', o.threads, 0);
    int('prefetch', o.prefetch, 0);
    int('numClasses', o.numClasses, 1);
    if (o.repeats !== 1 && !shuffle) throw new SigmaError('SGT_DATA_INVALID', `loader: repeats=${o.repeats} needs a shuffled (train) loader`);
    if (o.mix) {
      if (o.transform.kind !== 'train') throw new SigmaError('SGT_DATA_INVALID', 'loader: mix (mixup/cutmix) needs the train transform');
      checkMixConfig(o.mix);
    }
    this.opts = Object.freeze(o);
    this.pool = options.pool ?? (o.threads > 0 ? new DecodePool({ threads: o.threads, failOn: o.failOn }) : null);
    this.ownsPool = !options.pool && this.pool !== null;
    const first = this.plan(o.epoch);
    if (first.steps === 0) {
      // Every epoch has the same (zero) number of steps: iterating would never produce a batch.
      throw new SigmaError(
        'SGT_DATA_INVALID',
        `loader: ${index.paths.length} samples × ${o.repeats} repeats make no ${o.dropLast ? 'full ' : ''}global batch of ` +
          `${first.globalBatch} (batchPerRank ${o.batchPerRank} × worldSize ${o.worldSize}); lower the batch or set dropLast false`,
      );
    }
    if (o.step > first.steps) {
      throw new SigmaError('SGT_DATA_INVALID', `loader: step=${o.step} is past the end of epoch ${o.epoch} (${first.steps} steps)`);
    }
    this.scheduled = this.normalise({ epoch: o.epoch, step: o.step });
    this.consumed = { ...this.scheduled };
  }

  /** The plan of an epoch (cached: the current one and the next). */
  plan(epoch: number): RepeatedPlan {
    let p = this.plans.get(epoch);
    if (!p) {
      const o = this.opts;
      // Unshuffled (eval): index order, global batches of consecutive ids.
      p = repeatedShardPlan(this.index.paths.length, o.seed, epoch, o.worldSize, o.rank, o.batchPerRank, o.dropLast, o.repeats, o.shuffle);
      for (const e of this.plans.keys()) if (e < epoch - 1) this.plans.delete(e);
      this.plans.set(epoch, p);
    }
    return p;
  }

  /** Where a checkpoint should resume: the batch after the last one next() returned. */
  get cursor(): Cursor {
    return { ...this.consumed };
  }

  /** Move past ends of epochs (and over epochs with no steps). */
  private normalise(c: Cursor): Cursor {
    let { epoch, step } = c;
    while (epoch < this.opts.epochs && step >= this.plan(epoch).steps) {
      epoch++;
      step = 0;
    }
    return { epoch, step };
  }

  /** Start decoding batches until `limit` are pending. */
  private fill(limit: number): void {
    while (!this.closed && this.pending.length < limit && this.scheduled.epoch < this.opts.epochs) {
      const c = this.scheduled;
      const p = this.build(c.epoch, c.step);
      p.catch(() => undefined); // a prefetched batch may fail after close(); next() still reports it
      this.pending.push(p);
      this.scheduled = this.normalise({ epoch: c.epoch, step: c.step + 1 });
    }
  }

  /** Decode, compact and mix the batch at (epoch, step). */
  private async build(epoch: number, step: number): Promise<LoaderBatch> {
    const o = this.opts;
    const plan = this.plan(epoch);
    const ps = plan.batch(step);
    const paths = Array.from(ps.ids, (id) => this.index.paths[id]!);
    const seeds = Array.from(ps.ids, (id, k) => sampleSeed(o.seed, epoch, id, ps.repeats[k]!));
    const got = this.pool ? await this.pool.decode(paths, seeds, o.transform) : await decodeInline(paths, seeds, o.transform, { failOn: o.failOn });
    const size = o.transform.size;
    const b = compact(this.index, ps, got, rowLength(o.transform));
    const out: LoaderBatch = { ...b, epoch, step, steps: plan.steps, globalSize: ps.globalSize, size };
    if (o.mix) {
      // One stream per (epoch, step, rank): mixing pairs rows within this rank's batch, as timm does per GPU.
      const rng = new Rng(deriveSeed(o.seed, epoch, step, o.rank, MIX_TAG));
      const { soft, info } = mixBatch(out.x, out.y, out.n, size, size, o.numClasses, o.mix, rng);
      out.soft = soft;
      out.mix = info;
    }
    return out;
  }

  /** The next batch in plan order, or null after the last epoch. */
  async next(): Promise<LoaderBatch | null> {
    if (this.closed) throw new SigmaError('SGT_DATA_INVALID', 'Loader.next() after close()');
    this.fill(Math.max(1, this.opts.prefetch));
    const p = this.pending.shift();
    if (!p) return null;
    this.fill(this.opts.prefetch); // decode the next `prefetch` batches while the caller uses this one
    const b = await p;
    this.skippedTotal += b.skipped.length;
    this.consumed = this.normalise({ epoch: b.epoch, step: b.step + 1 });
    return b;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<LoaderBatch> {
    for (;;) {
      const b = await this.next();
      if (!b) return;
      yield b;
    }
  }

  /** Stop prefetching; closes the pool if this loader started it. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.pending.length = 0;
    if (this.ownsPool) await this.pool!.close();
  }
}
