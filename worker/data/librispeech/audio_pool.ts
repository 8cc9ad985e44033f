// AudioPool: worker threads that read, decode (FLAC), compute features and apply SpecAugment per utterance, so the
// training thread only assembles padded batches. Each thread keeps its own FlacReader (its decoder is not re-entrant);
// results are the same bits as loadUtterance on the calling thread (the same code runs in the thread).

import { SigmaError } from '../../../shared/errors.js';
import { FlacReader } from '../audio/flac.js';
import { ThreadPool } from '../thread_pool.js';
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

/**
 * N threads fed from one FIFO of chunks (ThreadPool; a batch is cut into ≤ `chunk` utterances per message so every
 * thread gets a share). Feature arrays come back transferred, not copied. A thread that dies is replaced and the
 * utterances of its chunk come back as skipped (unreadable_flac, with the reason), so a crash costs those utterances,
 * not the run.
 */
export class AudioPool implements AudioLoader {
  readonly threads: number;
  private readonly chunk: number;
  private readonly pool: ThreadPool<AudioRunMessage, AudioDoneMessage, LoadedUtterance[]>;

  constructor(opts: { threads: number; chunk?: number }) {
    if (!Number.isInteger(opts.threads) || opts.threads < 1 || opts.threads > 256) {
      throw new SigmaError('SGT_CONFIG_INVALID', `AudioPool: threads=${opts.threads} must be an integer in [1, 256] (data.librispeech.featureThreads; 0 loads on the training thread)`);
    }
    this.threads = opts.threads;
    this.chunk = opts.chunk ?? 8;
    this.pool = new ThreadPool({
      script: new URL('./audio_worker.js', import.meta.url),
      threads: this.threads,
      doneType: 'audio.done',
      resultOf: (m) => m.results,
      onLost: (msg, why) => msg.jobs.map((j) => ({ ok: false, reason: 'unreadable_flac', message: `${j.path}: feature thread failed: ${why}` })),
      name: ['AudioPool', 'load'],
    });
  }

  load(jobs: readonly AudioJob[], o: UtteranceOptions): Promise<LoadedUtterance[]> {
    if (this.pool.closed) return Promise.reject(new SigmaError('SGT_DATA_INVALID', 'AudioPool.load after close()'));
    const results: LoadedUtterance[] = new Array(jobs.length);
    const per = Math.max(1, Math.min(this.chunk, Math.ceil(jobs.length / this.threads)));
    const parts: Promise<void>[] = [];
    for (let start = 0; start < jobs.length; start += per) {
      const part = jobs.slice(start, start + per);
      parts.push(
        this.pool
          .submit((id) => ({ type: 'audio.run', id, jobs: part, options: o }))
          .then((rs) => rs.forEach((r, k) => (results[start + k] = r))),
      );
    }
    return Promise.all(parts).then(() => results);
  }

  /** Stop every thread; loads still pending reject. Idempotent. */
  close(): Promise<void> {
    return this.pool.close();
  }
}
