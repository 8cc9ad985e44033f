// AudioPool: worker threads that read, decode (FLAC), compute features and apply SpecAugment per utterance, so the
// training thread only assembles padded batches. Each thread keeps its own FlacReader (its decoder is not re-entrant);
// results are the same bits as loadUtterance on the calling thread (the same code runs in the thread).

import { Worker } from 'node:worker_threads';
import { SigmaError } from '../../../shared/errors.js';
import { FlacReader } from '../audio/flac.js';
import { loadUtterance, type LoadedUtterance, type UtteranceOptions } from './utterance.js';

/** One utterance to load: the file, the index's sample count and the SpecAugment seed. */
export interface AudioJob {
  path: string;
  samples: number;
  seed: number;
}

/** Anything that turns jobs into loaded utterances in job order: the pool, or InlineAudioLoader on this thread. */
export interface AudioLoader {
  load(jobs: readonly AudioJob[], o: UtteranceOptions): Promise<LoadedUtterance[]>;
  close(): Promise<void>;
}

/** Main → thread and back; the type names are the protocol. */
export interface AudioRunMessage { type: 'audio.run'; id: number; jobs: AudioJob[]; options: UtteranceOptions }
export interface AudioDoneMessage { type: 'audio.done'; id: number; results: LoadedUtterance[] }

/** Loads jobs one after another with one FlacReader (what a pool thread does with its share). */
export async function loadJobs(reader: FlacReader, jobs: readonly AudioJob[], o: UtteranceOptions): Promise<LoadedUtterance[]> {
  const out: LoadedUtterance[] = [];
  for (const j of jobs) out.push(await loadUtterance(reader, j.path, j.samples, o, j.seed));
  return out;
}

/** The calling thread's loader (featureThreads 0): one batch at a time, since the FlacReader is not re-entrant. */
export class InlineAudioLoader implements AudioLoader {
  private readonly reader = new FlacReader();
  private last: Promise<unknown> = Promise.resolve();

  load(jobs: readonly AudioJob[], o: UtteranceOptions): Promise<LoadedUtterance[]> {
    const p = this.last.then(() => loadJobs(this.reader, jobs, o));
    this.last = p.catch(() => undefined);
    return p;
  }

  async close(): Promise<void> {
    await this.last.catch(() => undefined);
    this.reader.close();
  }
}

interface Pending {
  id: number;
  msg: AudioRunMessage;
  settle: (r: LoadedUtterance[]) => void;
  fail: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  task: Pending | null;
}

/**
 * N threads fed from one FIFO of chunks (a batch is cut into ≤ `chunk` utterances per message so every thread gets a
 * share). Feature arrays come back transferred, not copied. A thread that dies is replaced and the utterances of its
 * chunk come back as skipped (unreadable_flac, with the reason), so a crash costs those utterances, not the run.
 */
export class AudioPool implements AudioLoader {
  readonly threads: number;
  private readonly chunk: number;
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 1;
  private closed = false;

  constructor(opts: { threads: number; chunk?: number }) {
    if (!Number.isInteger(opts.threads) || opts.threads < 1 || opts.threads > 256) {
      throw new SigmaError('SGT_CONFIG_INVALID', `AudioPool: threads=${opts.threads} must be an integer in [1, 256] (data.librispeech.featureThreads; 0 loads on the training thread)`);
    }
    this.threads = opts.threads;
    this.chunk = opts.chunk ?? 8;
    for (let i = 0; i < this.threads; i++) this.slots.push(this.spawn());
  }

  private spawn(): Slot {
    const worker = new Worker(new URL('./audio_worker.js', import.meta.url));
    const slot: Slot = { worker, task: null };
    worker.unref();
    worker.on('message', (m: AudioDoneMessage) => {
      const task = slot.task;
      if (m.type !== 'audio.done' || !task || task.id !== m.id) return; // stale or foreign: ignore
      slot.task = null;
      worker.unref();
      task.settle(m.results);
      this.pump();
    });
    const lost = (why: string): void => {
      const i = this.slots.indexOf(slot);
      if (i < 0) return;
      const task = slot.task;
      slot.task = null;
      if (this.closed) return;
      this.slots[i] = this.spawn();
      if (task) task.settle(task.msg.jobs.map((j) => ({ ok: false, reason: 'unreadable_flac', message: `${j.path}: feature thread failed: ${why}` })));
      this.pump();
    };
    worker.on('error', (e) => lost(e.message));
    worker.on('exit', (code) => lost(`thread exited with code ${code}`));
    return slot;
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (slot.task) continue;
      const task = this.queue.shift()!;
      slot.task = task;
      slot.worker.ref(); // pending work keeps the process alive; an idle pool does not
      slot.worker.postMessage(task.msg);
    }
  }

  load(jobs: readonly AudioJob[], o: UtteranceOptions): Promise<LoadedUtterance[]> {
    if (this.closed) return Promise.reject(new SigmaError('SGT_DATA_INVALID', 'AudioPool.load after close()'));
    const results: LoadedUtterance[] = new Array(jobs.length);
    const per = Math.max(1, Math.min(this.chunk, Math.ceil(jobs.length / this.threads)));
    const parts: Promise<void>[] = [];
    for (let start = 0; start < jobs.length; start += per) {
      const part = jobs.slice(start, start + per);
      parts.push(new Promise<void>((resolve, reject) => {
        const id = this.nextId++;
        this.queue.push({
          id,
          msg: { type: 'audio.run', id, jobs: part, options: o },
          settle: (rs) => {
            rs.forEach((r, k) => (results[start + k] = r));
            resolve();
          },
          fail: reject,
        });
      }));
    }
    this.pump();
    return Promise.all(parts).then(() => results);
  }

  /** Stop every thread; loads still pending reject. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const pending = [...this.queue, ...this.slots.flatMap((s) => (s.task ? [s.task] : []))];
    this.queue.length = 0;
    for (const t of pending) t.fail(new SigmaError('SGT_DATA_INVALID', 'AudioPool closed while a load was pending'));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
