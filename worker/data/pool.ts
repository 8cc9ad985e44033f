// DecodePool: worker_threads that read, decode and augment samples straight into a SharedArrayBuffer batch, so the
// training thread only waits on messages. Each sample writes its own row, so row order never depends on timing.

import { promises as fs } from 'node:fs';
import { SigmaError } from '../../shared/errors.js';
import { decodeSample, type FailOn, type SampleTransform } from './augment.js';
import { ThreadPool } from './thread_pool.js';

/** One decode request: sample k is paths[k], augmented with seeds[k], written to row rows[k] of the batch. */
export interface DecodeJob {
  paths: string[];
  seeds: number[];
  rows: number[];
}

/** The outcome of decoding m samples: x [m, size, size, 3]; reasons[k] is null when row k decoded, else why not. */
export interface DecodedRows {
  x: Float32Array;
  reasons: (string | null)[];
}

/** Floats per row (size² · 3). */
export const rowLength = (t: SampleTransform): number => t.size * t.size * 3;

/**
 * Decode a job into dst (rows of rowLength(t) floats), `concurrency` samples in flight. Never throws for a bad
 * file: the reason ("read failed: …" / "decode failed: …") comes back in its slot, and its row is left as it was.
 */
export async function decodeRows(job: DecodeJob, t: SampleTransform, dst: Float32Array, failOn: FailOn, concurrency = 2): Promise<(string | null)[]> {
  const row = rowLength(t);
  const reasons: (string | null)[] = new Array(job.paths.length).fill(null);
  let next = 0;
  const run = async (): Promise<void> => {
    while (next < job.paths.length) {
      const k = next++;
      let bytes: Buffer;
      try {
        bytes = await fs.readFile(job.paths[k]!);
      } catch (e) {
        reasons[k] = `read failed: ${(e as Error).message}`;
        continue;
      }
      try {
        await decodeSample(bytes, t, job.seeds[k]!, dst, job.rows[k]! * row, failOn);
      } catch (e) {
        reasons[k] = `decode failed: ${(e as Error).message}`;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, job.paths.length)) }, run));
  return reasons;
}

/** The same contract as DecodePool.decode, on the calling thread (threads = 0; tests compare the two). */
export async function decodeInline(
  paths: string[],
  seeds: ArrayLike<number>,
  t: SampleTransform,
  opts: { failOn?: FailOn; concurrency?: number } = {},
): Promise<DecodedRows> {
  const x = new Float32Array(paths.length * rowLength(t));
  const job = { paths, seeds: Array.from(seeds), rows: paths.map((_, k) => k) };
  const reasons = await decodeRows(job, t, x, opts.failOn ?? 'warning', opts.concurrency ?? 4);
  return { x, reasons };
}

export interface DecodePoolOptions {
  /** Worker threads (≥ 1). */
  threads: number;
  /** sharp's failOn for every image (default 'warning': truncated JPEGs are skipped, not grey-filled). */
  failOn?: FailOn;
  /** Samples in flight per thread (file read and libvips decode overlap the JS augmentations). Default 2. */
  concurrencyPerThread?: number;
  /** Most samples per message to a thread; smaller balances better, larger costs fewer messages. Default 8. */
  chunk?: number;
}

/** Main → worker and back; the type names are the protocol. */
export interface DecodeRunMessage {
  type: 'decode.run';
  id: number;
  job: DecodeJob;
  transform: SampleTransform;
  buffer: SharedArrayBuffer;
  failOn: FailOn;
  concurrency: number;
}
export interface DecodeDoneMessage {
  type: 'decode.done';
  id: number;
  reasons: (string | null)[];
}

/**
 * N decode threads fed from one FIFO of chunks (ThreadPool). A batch is one SharedArrayBuffer; each chunk writes its
 * own rows. A thread that dies (uncaught error, exit) is replaced; the samples of its chunk come back as skipped with
 * the reason, so a crash costs those samples, not the run.
 */
export class DecodePool {
  readonly threads: number;
  private readonly failOn: FailOn;
  private readonly concurrency: number;
  private readonly chunk: number;
  private readonly pool: ThreadPool<DecodeRunMessage, DecodeDoneMessage, (string | null)[]>;

  constructor(opts: DecodePoolOptions) {
    const int = (k: string, v: number, lo: number, hi: number): void => {
      if (!Number.isInteger(v) || v < lo || v > hi) {
        throw new SigmaError('SGT_DATA_INVALID', `DecodePool: ${k}=${v} must be an integer in [${lo}, ${hi}]`);
      }
    };
    int('threads', opts.threads, 1, 256);
    this.threads = opts.threads;
    this.failOn = opts.failOn ?? 'warning';
    this.concurrency = opts.concurrencyPerThread ?? 2;
    this.chunk = opts.chunk ?? 8;
    int('concurrencyPerThread', this.concurrency, 1, 64);
    int('chunk', this.chunk, 1, 4096);
    this.pool = new ThreadPool({
      script: new URL('./decode_worker.js', import.meta.url),
      threads: this.threads,
      doneType: 'decode.done',
      resultOf: (m) => m.reasons,
      onLost: (msg, why) => msg.job.paths.map(() => `decode worker failed: ${why}`),
      name: ['DecodePool', 'decode'],
    });
  }

  /**
   * Decode paths[k] with augmentation seed seeds[k] into row k of a new batch x ([m, size, size, 3], backed by a
   * SharedArrayBuffer). Resolves when every row is done; failed rows are named in `reasons`.
   */
  decode(paths: string[], seeds: ArrayLike<number>, t: SampleTransform): Promise<DecodedRows> {
    if (this.pool.closed) return Promise.reject(new SigmaError('SGT_DATA_INVALID', 'DecodePool.decode after close()'));
    const m = paths.length;
    const buffer = new SharedArrayBuffer(m * rowLength(t) * 4);
    const x = new Float32Array(buffer);
    const reasons: (string | null)[] = new Array(m).fill(null);
    if (m === 0) return Promise.resolve({ x, reasons });
    // Chunks small enough to spread one batch over every thread.
    const per = Math.max(1, Math.min(this.chunk, Math.ceil(m / this.threads)));
    const parts: Promise<void>[] = [];
    for (let start = 0; start < m; start += per) {
      const rows = Array.from({ length: Math.min(per, m - start) }, (_, k) => start + k);
      const job: DecodeJob = { paths: rows.map((r) => paths[r]!), seeds: rows.map((r) => seeds[r]!), rows };
      parts.push(
        this.pool
          .submit((id) => ({ type: 'decode.run', id, job, transform: t, buffer, failOn: this.failOn, concurrency: this.concurrency }))
          .then((rs) => rs.forEach((r, k) => (reasons[rows[k]!] = r))),
      );
    }
    return Promise.all(parts).then(() => ({ x, reasons }));
  }

  /** Stop every thread; decodes still pending reject. Idempotent. */
  close(): Promise<void> {
    return this.pool.close();
  }
}
