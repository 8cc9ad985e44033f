// LibriSpeech index: utterance ids, FLAC paths, durations and transcripts of any list of subsets of the tree as
// distributed (<root>/LibriSpeech/<subset>/<speaker>/<chapter>/), scanned in worker threads and cached per subset
// with what it was built from (per chapter: file names, sizes, mtimes), so a changed chapter is rescanned alone.

import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { SigmaError } from '../../../shared/errors.js';
import { SKIP_REASONS, scanChapter, type ChapterJob, type ChapterResult, type SkipReason, type SkipRecord, type UttRecord } from './scan.js';
import type { ScanReply, ScanRequest } from './index_worker.js';

export type { SkipReason, SkipRecord } from './scan.js';
export { SKIP_REASONS } from './scan.js';

/** One indexed utterance. */
export interface Utterance {
  /** `<speaker>-<chapter>-<utt>`, as in LibriSpeech. */
  id: string;
  subset: string;
  speaker: string;
  chapter: string;
  /** Absolute path of the .flac. */
  path: string;
  /** Duration in samples at 16 kHz. */
  samples: number;
  /** Upper case A–Z, apostrophe, single spaces. */
  transcript: string;
}

export interface SubsetIndex {
  name: string;
  /** Absolute subset folder. */
  dir: string;
  /** Sorted by id (code-point order). */
  utterances: Utterance[];
  skipped: SkipRecord[];
  counts: Record<SkipReason, number>;
  chapters: number;
  files: number;
  /** Chapters scanned this time (the rest came from the cache). */
  rescanned: number;
}

export interface LibriIndex {
  /** The LibriSpeech folder the subsets are in. */
  dir: string;
  subsets: SubsetIndex[];
  /** Skips by reason over every subset (for a metric). */
  counts: Record<SkipReason, number>;
  /** Wall time of the build, seconds. */
  seconds: number;
}

/** What the index logs through (a pino Logger fits). */
export interface IndexLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface LibriIndexOptions {
  /** The folder that contains LibriSpeech/, or LibriSpeech/ itself. */
  root: string;
  /** Subset folder names, standard (train-clean-100, dev-other, …) or not. */
  subsets: readonly string[];
  /** Index threads (default min(4, cores)); 0 scans on the calling thread. */
  threads?: number;
  /** Where cache files go (default ~/.cache/sigmatrain/librispeech); null: no cache. */
  cacheDir?: string | null;
  /** Utterances shorter than this many samples are skipped as 'too_short' (default 400, one 25 ms window). */
  minSamples?: number;
  logger?: IndexLogger;
}

const CACHE_VERSION = 1;
export const DEFAULT_CACHE_DIR = path.join(os.homedir(), '.cache', 'sigmatrain', 'librispeech');

const byCodePoint = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
export const zeroCounts = (): Record<SkipReason, number> => Object.fromEntries(SKIP_REASONS.map((r) => [r, 0])) as Record<SkipReason, number>;

async function isDir(p: string): Promise<boolean> {
  return fs.stat(p).then((s) => s.isDirectory(), () => false);
}

/**
 * The LibriSpeech folder under `root`: `<root>/LibriSpeech` when it holds the first subset, else `root` itself when
 * it does. Throws SGT_DATA_INVALID naming both paths tried and the subset folders that do exist.
 */
export async function resolveLibriDir(root: string, subsets: readonly string[]): Promise<string> {
  if (subsets.length === 0) throw new SigmaError('SGT_DATA_INVALID', 'no LibriSpeech subsets given; name at least one (e.g. train-clean-100)');
  const abs = path.resolve(root);
  for (const cand of [path.join(abs, 'LibriSpeech'), abs]) {
    if (await isDir(path.join(cand, subsets[0]!))) return cand;
  }
  const listing = async (d: string): Promise<string[]> =>
    fs.readdir(d, { withFileTypes: true }).then((es) => es.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort(byCodePoint), () => []);
  const inside = (await listing(path.join(abs, 'LibriSpeech'))).concat(await listing(abs)).filter((n) => n !== 'LibriSpeech');
  throw new SigmaError(
    'SGT_DATA_INVALID',
    `subset '${subsets[0]}' not found at ${path.join(abs, 'LibriSpeech', subsets[0]!)} nor ${path.join(abs, subsets[0]!)}; ` +
      `data.root must be the folder holding LibriSpeech/ (or LibriSpeech/ itself). Folders found there: ${inside.length ? inside.join(', ') : 'none'}.`,
  );
}

interface CachedChapter {
  fingerprint: string;
  files: number;
  utterances: UttRecord[];
  skipped: SkipRecord[];
}
interface CacheFile {
  version: number;
  subsetDir: string;
  /** The too_short threshold the scan used: another one invalidates the cache. */
  minSamples: number;
  builtAt: string;
  files: number;
  chapters: Record<string, CachedChapter>; // key: '<speaker>/<chapter>'
}

function cachePath(cacheDir: string, subsetDir: string, subset: string): string {
  const h = createHash('sha1').update(subsetDir).digest('hex').slice(0, 12);
  return path.join(cacheDir, `${subset.replace(/[^A-Za-z0-9._-]/g, '_')}-${h}.json`);
}

async function readCache(file: string, subsetDir: string, minSamples: number, logger?: IndexLogger): Promise<CacheFile | null> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    return null;
  }
  try {
    const c = JSON.parse(text) as CacheFile;
    if (c.version === CACHE_VERSION && c.subsetDir === subsetDir && c.chapters && typeof c.chapters === 'object') {
      if (c.minSamples === minSamples) return c;
      logger?.info({ path: file }, `LibriSpeech index cache was built with minSamples ${c.minSamples}, now ${minSamples}: rescanning`);
      return null;
    }
  } catch {
    /* fall through */
  }
  logger?.warn({ path: file }, 'LibriSpeech index cache is unreadable or from another version; rebuilding it');
  return null;
}

async function writeCache(file: string, c: CacheFile): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, JSON.stringify(c));
  await fs.rename(tmp, file);
}

/** A small pool of index threads fed from one queue of chapter jobs. */
class ScanPool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, { resolve: (r: ChapterResult) => void; reject: (e: Error) => void }>();
  private readonly idle: Worker[] = [];
  private readonly queue: { id: number; job: ChapterJob }[] = [];
  private nextId = 1;
  private broken: Error | null = null;

  constructor(threads: number) {
    for (let i = 0; i < threads; i++) {
      const w = new Worker(new URL('./index_worker.js', import.meta.url));
      w.on('message', (m: ScanReply) => {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (m.type === 'scan.done') p?.resolve(m.result);
        else p?.reject(new SigmaError('SGT_DATA_INVALID', `index thread failed: ${m.error}`));
        this.idle.push(w);
        this.pump();
      });
      const fail = (e: Error): void => {
        this.broken = e;
        for (const [, p] of this.pending) p.reject(new SigmaError('SGT_DATA_INVALID', `index thread died: ${e.message}`, { cause: e }));
        this.pending.clear();
      };
      w.on('error', fail);
      w.on('exit', (code) => code !== 0 && fail(new Error(`exit code ${code}`)));
      this.workers.push(w);
      this.idle.push(w);
    }
  }

  scan(job: ChapterJob): Promise<ChapterResult> {
    if (this.broken) return Promise.reject(this.broken);
    const id = this.nextId++;
    const p = new Promise<ChapterResult>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.queue.push({ id, job });
    this.pump();
    return p;
  }

  private pump(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const w = this.idle.pop()!;
      const { id, job } = this.queue.shift()!;
      w.postMessage({ type: 'scan', id, job } satisfies ScanRequest);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

interface ChapterDir {
  key: string;
  speaker: string;
  chapter: string;
  dir: string;
}

/** List <subset>/<speaker>/<chapter>/ folders; stray files there become 'unexpected_entry' skips. */
async function listChapters(subsetDir: string, skipped: SkipRecord[]): Promise<ChapterDir[]> {
  const out: ChapterDir[] = [];
  const list = async (d: string): Promise<import('node:fs').Dirent[]> => {
    try {
      return (await fs.readdir(d, { withFileTypes: true })).filter((e) => !e.name.startsWith('.')).sort((a, b) => byCodePoint(a.name, b.name));
    } catch (e) {
      skipped.push({ reason: 'unreadable_entry', path: d, message: `cannot list: ${(e as Error).message}` });
      return [];
    }
  };
  for (const s of await list(subsetDir)) {
    const sp = path.join(subsetDir, s.name);
    if (!s.isDirectory()) {
      skipped.push({ reason: 'unexpected_entry', path: sp, message: 'a file where speaker folders are expected' });
      continue;
    }
    for (const c of await list(sp)) {
      const cp = path.join(sp, c.name);
      if (!c.isDirectory()) {
        skipped.push({ reason: 'unexpected_entry', path: cp, message: 'a file where chapter folders are expected' });
        continue;
      }
      out.push({ key: `${s.name}/${c.name}`, speaker: s.name, chapter: c.name, dir: cp });
    }
  }
  return out;
}

/**
 * Build (or load from the cache) the index of `subsets`. Skipped utterances are logged one by one with their path
 * and counted by reason; a FLAC that is not 16 kHz mono 16-bit is an SGT_DATA_INVALID error naming the file; a
 * missing or empty subset folder is an error naming it.
 */
export async function buildLibriIndex(o: LibriIndexOptions): Promise<LibriIndex> {
  const t0 = performance.now();
  const threads = o.threads ?? Math.min(4, os.availableParallelism());
  if (!Number.isInteger(threads) || threads < 0 || threads > 256) throw new SigmaError('SGT_DATA_INVALID', `index threads=${threads} must be an integer in [0, 256]`);
  const minSamples = o.minSamples ?? 400;
  const cacheDir = o.cacheDir === undefined ? DEFAULT_CACHE_DIR : o.cacheDir;
  const dup = o.subsets.find((s, i) => o.subsets.indexOf(s) !== i);
  if (dup !== undefined) throw new SigmaError('SGT_DATA_INVALID', `subset '${dup}' is listed twice; name each subset once`);
  const libriDir = await resolveLibriDir(o.root, o.subsets);
  const pool = threads > 0 ? new ScanPool(threads) : null;
  const scan = (job: ChapterJob): Promise<ChapterResult> => (pool ? pool.scan(job) : scanChapter(job));
  const out: SubsetIndex[] = [];
  const total = zeroCounts();
  try {
    for (const name of o.subsets) {
      const dir = path.join(libriDir, name);
      if (!(await isDir(dir))) throw new SigmaError('SGT_DATA_INVALID', `subset folder ${dir} does not exist; check data.librispeech subset names`);
      const skipped: SkipRecord[] = [];
      const chapters = await listChapters(dir, skipped);
      if (chapters.length === 0) throw new SigmaError('SGT_DATA_INVALID', `subset folder ${dir} has no <speaker>/<chapter>/ folders`);
      const cfile = cacheDir === null ? null : cachePath(cacheDir, dir, name);
      const cache = cfile ? await readCache(cfile, dir, minSamples, o.logger) : null;
      const results = await Promise.all(
        chapters.map((c) => {
          const cached = cache?.chapters[c.key];
          return scan({ dir: c.dir, speaker: c.speaker, chapter: c.chapter, minSamples, ...(cached ? { cachedFingerprint: cached.fingerprint } : {}) });
        }),
      );
      const formatErrors = results.flatMap((r) => r.formatErrors);
      if (formatErrors.length > 0) {
        const f = formatErrors[0]!;
        throw new SigmaError(
          'SGT_DATA_INVALID',
          `${f.path}: ${f.message}` + (formatErrors.length > 1 ? ` (and ${formatErrors.length - 1} more file(s) in ${dir} not 16 kHz mono 16-bit)` : ''),
        );
      }
      const next: CacheFile = { version: CACHE_VERSION, subsetDir: dir, minSamples, builtAt: new Date().toISOString(), files: 0, chapters: {} };
      const utterances: Utterance[] = [];
      let rescanned = 0;
      chapters.forEach((c, i) => {
        const r = results[i]!;
        const entry: CachedChapter = r.unchanged ? cache!.chapters[c.key]! : { fingerprint: r.fingerprint, files: r.files, utterances: r.utterances, skipped: r.skipped };
        if (!r.unchanged) rescanned++;
        next.chapters[c.key] = entry;
        next.files += entry.files;
        skipped.push(...entry.skipped);
        for (const u of entry.utterances) {
          utterances.push({ id: u.id, subset: name, speaker: c.speaker, chapter: c.chapter, path: path.join(c.dir, u.file), samples: u.samples, transcript: u.transcript });
        }
      });
      utterances.sort((a, b) => byCodePoint(a.id, b.id));
      const counts = zeroCounts();
      for (const s of skipped) {
        counts[s.reason]++;
        total[s.reason]++;
        o.logger?.warn({ subset: name, reason: s.reason, path: s.path, ...(s.id ? { utterance: s.id } : {}) }, `LibriSpeech: skipped (${s.reason}): ${s.message}`);
      }
      if (utterances.length === 0) {
        throw new SigmaError('SGT_DATA_INVALID', `subset ${dir} has no usable utterance (${skipped.length} skipped; see the log for each file and why)`);
      }
      if (cfile && (rescanned > 0 || !cache || Object.keys(cache.chapters).length !== chapters.length)) {
        try {
          await writeCache(cfile, next);
        } catch (e) {
          o.logger?.warn({ path: cfile, err: (e as Error).message }, 'LibriSpeech index cache not written; the next run rescans');
        }
      }
      o.logger?.info(
        { subset: name, utterances: utterances.length, skipped: skipped.length, chapters: chapters.length, rescanned, files: next.files },
        `LibriSpeech ${name}: ${utterances.length} utterances, ${(utterances.reduce((s, u) => s + u.samples, 0) / 16000 / 3600).toFixed(2)} h`,
      );
      out.push({ name, dir, utterances, skipped, counts, chapters: chapters.length, files: next.files, rescanned });
    }
  } finally {
    await pool?.close();
  }
  return { dir: libriDir, subsets: out, counts: total, seconds: (performance.now() - t0) / 1000 };
}
