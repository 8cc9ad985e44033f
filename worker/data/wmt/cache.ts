// Binary token cache: each split's pairs cleaned, encoded once (in worker threads, by line ranges, streaming) and
// stored as one token file plus one offsets file per side, read back lazily by offset; a JSON header records the
// vocabulary hash, the source files' sizes and mtimes and the cleaning options, so a stale cache is rebuilt.
//
// Layout of <dir>:
//   header.json                  written last: its presence means the cache is complete
//   <split>.src.bin / .tgt.bin   token ids, little-endian uint16 (vocab ≤ 65536) or int32, concatenated
//   <split>.src.idx / .tgt.idx   uint64 offsets in tokens, count + 1 entries (pair i = [idx[i], idx[i+1]))

import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { once } from 'node:events';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { SigmaError } from '../../../shared/errors.js';
import { addCounts, cleanVerdict, emptyCounts, type CleanCounts, type CleanOptions } from './clean.js';
import { readAligned, readPairs, readTsv, sourceFiles, type CorpusSource, type Pair } from './formats.js';
import { indexLineStarts, type LineRange } from './lines.js';
import { loadVocab, type Vocab } from './vocab.js';

export const CACHE_FORMAT = 'sigmatrain-wmt-cache/1';

export interface CacheSplit {
  name: string;
  sources: CorpusSource[];
  clean: CleanOptions;
}

export interface CacheBuildOptions {
  dir: string;
  /** vocab.json (or its directory). */
  vocab: string;
  splits: CacheSplit[];
  /** Worker threads for encoding (0 = on this thread). Default: min(4, cores). */
  threads?: number;
  /** Lines per work unit of a large file. */
  linesPerPart?: number;
  log?: (msg: string) => void;
}

export interface CacheHeader {
  format: string;
  vocabHash: string;
  vocabSize: number;
  dtype: 'uint16' | 'int32';
  sources: { path: string; size: number; mtimeMs: number }[];
  splits: Record<string, { clean: CleanOptions; sources: string[]; pairs: number; srcTokens: number; tgtTokens: number; counts: CleanCounts }>;
  build: { seconds: number; linesRead: number; threads: number };
}

/** One unit of work: a line range of one source (or a whole small source), encoded into part files. */
export interface PartJob {
  source: CorpusSource;
  /** For aligned text: byte ranges of both files; for TSV: of the file. Absent: the whole source. */
  ranges?: { src: LineRange; tgt: LineRange };
  clean: CleanOptions;
  vocabPath: string;
  dtype: 'uint16' | 'int32';
  /** Output prefix: writes <out>.src.bin/.src.len/.tgt.bin/.tgt.len. */
  out: string;
}

export interface PartResult {
  counts: CleanCounts;
  pairs: number;
}

const ENCODE_BATCH = 2000;

function partPairs(job: PartJob, counts: CleanCounts): AsyncGenerator<Pair> {
  const s = job.source;
  if (job.ranges && s.kind === 'aligned') return readAligned(s.srcFile, s.tgtFile, job.ranges);
  if (job.ranges && s.kind === 'tsv') return readTsv(s.file, s.srcColumn, counts, job.ranges.src);
  return readPairs(s, counts);
}

class IdWriter {
  private bin;
  private len;
  constructor(
    prefix: string,
    private dtype: 'uint16' | 'int32',
  ) {
    this.bin = createWriteStream(prefix + '.bin');
    this.len = createWriteStream(prefix + '.len');
  }
  async write(seqs: Int32Array[]): Promise<void> {
    let total = 0;
    for (const s of seqs) total += s.length;
    const data = this.dtype === 'uint16' ? new Uint16Array(total) : new Int32Array(total);
    let o = 0;
    for (const s of seqs) {
      data.set(s, o);
      o += s.length;
    }
    const lens = Int32Array.from(seqs, (s) => s.length);
    const ok1 = this.bin.write(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    const ok2 = this.len.write(Buffer.from(lens.buffer));
    if (!ok1) await once(this.bin, 'drain');
    if (!ok2) await once(this.len, 'drain');
  }
  async close(): Promise<void> {
    this.bin.end();
    this.len.end();
    await Promise.all([once(this.bin, 'finish'), once(this.len, 'finish')]);
  }
}

/** Reads, cleans and encodes one part; holds at most ENCODE_BATCH pairs of text at a time. */
export async function encodePart(job: PartJob, vocab?: Vocab): Promise<PartResult> {
  const v = vocab ?? (await loadVocab(job.vocabPath));
  const counts = emptyCounts();
  const ws = new IdWriter(job.out + '.src', job.dtype);
  const wt = new IdWriter(job.out + '.tgt', job.dtype);
  let src: string[] = [];
  let tgt: string[] = [];
  const flush = async () => {
    if (src.length === 0) return;
    const [a, b] = await Promise.all([v.encodeBatch(src), v.encodeBatch(tgt)]);
    await Promise.all([ws.write(a), wt.write(b)]);
    src = [];
    tgt = [];
  };
  try {
    for await (const p of partPairs(job, counts)) {
      counts.read++;
      const why = cleanVerdict(p.src, p.tgt, job.clean);
      if (why) {
        counts[why]++;
        continue;
      }
      counts.kept++;
      src.push(p.src);
      tgt.push(p.tgt);
      if (src.length >= ENCODE_BATCH) await flush();
    }
    await flush();
  } finally {
    await Promise.all([ws.close(), wt.close()]);
  }
  return { counts, pairs: counts.kept };
}

async function sourceStats(sources: CorpusSource[]): Promise<CacheHeader['sources']> {
  const out: CacheHeader['sources'] = [];
  for (const s of sources) {
    for (const f of sourceFiles(s)) {
      const st = await stat(f);
      out.push({ path: f, size: st.size, mtimeMs: st.mtimeMs });
    }
  }
  return out;
}

/** Why an existing cache cannot be used (null: it can). */
async function staleReason(dir: string, vocabHash: string, o: CacheBuildOptions): Promise<string | null> {
  let h: CacheHeader;
  try {
    h = JSON.parse(await readFile(join(dir, 'header.json'), 'utf8')) as CacheHeader;
  } catch {
    return 'no complete cache';
  }
  if (h.format !== CACHE_FORMAT) return `format ${h.format} ≠ ${CACHE_FORMAT}`;
  if (h.vocabHash !== vocabHash) return `vocabulary changed (${h.vocabHash.slice(0, 12)} → ${vocabHash.slice(0, 12)})`;
  const now = await sourceStats(o.splits.flatMap((s) => s.sources));
  if (JSON.stringify(now) !== JSON.stringify(h.sources)) return 'source files changed (paths, sizes or mtimes)';
  for (const s of o.splits) {
    const hs = h.splits[s.name];
    if (!hs) return `split ${s.name} missing`;
    if (JSON.stringify(hs.clean) !== JSON.stringify(s.clean)) return `cleaning options of ${s.name} changed`;
  }
  return null;
}

/** Work units of a split: large aligned/TSV files cut at line starts, small dev/test formats whole. */
async function planParts(split: CacheSplit, linesPerPart: number, tmp: string, vocabPath: string, dtype: PartJob['dtype']): Promise<PartJob[]> {
  const jobs: PartJob[] = [];
  for (const [si, source] of split.sources.entries()) {
    const base = { source, clean: split.clean, vocabPath, dtype };
    const out = (k: number) => join(tmp, `${split.name}.${si}.${k}`);
    if (source.kind === 'aligned') {
      const [a, b] = await Promise.all([indexLineStarts(source.srcFile, linesPerPart), indexLineStarts(source.tgtFile, linesPerPart)]);
      if (a.size === 0 || b.size === 0) {
        throw new SigmaError('SGT_CORPUS_EMPTY', `${a.size === 0 ? source.srcFile : source.tgtFile} is empty (0 bytes)`);
      }
      if (a.lines !== b.lines) {
        throw new SigmaError(
          'SGT_CORPUS_MISMATCH',
          `aligned corpus sides differ in line count: ${source.srcFile} has ${a.lines} lines, ${source.tgtFile} has ${b.lines}`,
        );
      }
      for (let k = 0; k < a.starts.length; k++) {
        jobs.push({ ...base, out: out(k), ranges: { src: { start: a.starts[k]!, end: a.starts[k + 1] ?? a.size }, tgt: { start: b.starts[k]!, end: b.starts[k + 1] ?? b.size } } });
      }
    } else if (source.kind === 'tsv') {
      const a = await indexLineStarts(source.file, linesPerPart);
      if (a.size === 0) throw new SigmaError('SGT_CORPUS_EMPTY', `${source.file} is empty (0 bytes)`);
      for (let k = 0; k < a.starts.length; k++) {
        const r = { start: a.starts[k]!, end: a.starts[k + 1] ?? a.size };
        jobs.push({ ...base, out: out(k), ranges: { src: r, tgt: r } });
      }
    } else jobs.push({ ...base, out: out(0) });
  }
  return jobs;
}

async function runJobs(jobs: PartJob[], threads: number): Promise<PartResult[]> {
  const results: PartResult[] = new Array(jobs.length);
  if (threads === 0) {
    const v = jobs.length ? await loadVocab(jobs[0]!.vocabPath) : undefined;
    for (const [i, j] of jobs.entries()) results[i] = await encodePart(j, v);
    return results;
  }
  let next = 0;
  const runner = () =>
    new Promise<void>((resolve, reject) => {
      const w = new Worker(new URL('./cache_worker.js', import.meta.url));
      let current = -1;
      const feed = () => {
        if (next >= jobs.length) {
          void w.terminate().then(() => resolve());
          return;
        }
        current = next++;
        w.postMessage(jobs[current]);
      };
      w.on('message', (m: { ok: true; result: PartResult } | { ok: false; code?: string; message: string }) => {
        if (m.ok) {
          results[current] = m.result;
          feed();
        } else {
          void w.terminate();
          next = jobs.length; // stop the other runners after their current job
          reject(m.code ? new SigmaError(m.code as never, m.message.replace(/^SGT_[A-Z_]+: /, '')) : new Error(m.message));
        }
      });
      w.on('error', reject);
      feed();
    });
  await Promise.all(Array.from({ length: Math.min(threads, jobs.length) }, runner));
  return results;
}

/** Appends src to dst (streams, so no part is held in memory). */
async function appendFile(dst: NodeJS.WritableStream, src: string): Promise<void> {
  for await (const chunk of createReadStream(src, { highWaterMark: 1 << 20 })) {
    if (!dst.write(chunk as Buffer)) await once(dst as NodeJS.EventEmitter, 'drain');
  }
}

/**
 * Builds the cache for every split (or keeps the existing one when it is up to date) and returns its header.
 * Cleaning counts per split are in header.splits[name].counts (log them: nothing is dropped silently).
 */
export async function buildCache(o: CacheBuildOptions): Promise<CacheHeader> {
  const log = o.log ?? (() => {});
  const vocab = await loadVocab(o.vocab);
  const why = await staleReason(o.dir, vocab.hash, o);
  if (why === null) {
    log(`token cache ${o.dir} is up to date`);
    return JSON.parse(await readFile(join(o.dir, 'header.json'), 'utf8')) as CacheHeader;
  }
  log(`building token cache ${o.dir}: ${why}`);
  const t0 = performance.now();
  await mkdir(o.dir, { recursive: true });
  await rm(join(o.dir, 'header.json'), { force: true });
  const tmp = join(o.dir, 'parts');
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  const dtype: CacheHeader['dtype'] = vocab.size <= 65536 ? 'uint16' : 'int32';
  const threads = o.threads ?? Math.min(4, availableParallelism());
  const splits: CacheHeader['splits'] = {};
  let linesRead = 0;
  for (const split of o.splits) {
    const jobs = await planParts(split, o.linesPerPart ?? 50000, tmp, vocab.path, dtype);
    const results = await runJobs(jobs, threads);
    const counts = emptyCounts();
    for (const r of results) addCounts(counts, r.counts);
    linesRead += counts.read;
    const entry = { clean: split.clean, sources: split.sources.map((s) => sourceFiles(s).join('+')), pairs: counts.kept, srcTokens: 0, tgtTokens: 0, counts };
    for (const side of ['src', 'tgt'] as const) {
      const binPath = join(o.dir, `${split.name}.${side}.bin`);
      const bin = createWriteStream(binPath + '.tmp');
      const idx = new BigUint64Array(counts.kept + 1);
      let k = 0;
      let total = 0n;
      for (const j of jobs) {
        const lens = new Int32Array(new Uint8Array(await readFile(`${j.out}.${side}.len`)).buffer);
        for (const l of lens) {
          total += BigInt(l);
          idx[++k] = total;
        }
        await appendFile(bin, `${j.out}.${side}.bin`);
      }
      bin.end();
      await once(bin, 'finish');
      await rename(binPath + '.tmp', binPath);
      await writeFile(join(o.dir, `${split.name}.${side}.idx`), Buffer.from(idx.buffer));
      entry[side === 'src' ? 'srcTokens' : 'tgtTokens'] = Number(total);
    }
    splits[split.name] = entry;
  }
  await rm(tmp, { recursive: true, force: true });
  const seconds = (performance.now() - t0) / 1000;
  const header: CacheHeader = {
    format: CACHE_FORMAT,
    vocabHash: vocab.hash,
    vocabSize: vocab.size,
    dtype,
    sources: await sourceStats(o.splits.flatMap((s) => s.sources)),
    splits,
    build: { seconds, linesRead, threads },
  };
  await writeFile(join(o.dir, 'header.json.tmp'), JSON.stringify(header, null, 1));
  await rename(join(o.dir, 'header.json.tmp'), join(o.dir, 'header.json'));
  log(`token cache built: ${linesRead} lines in ${seconds.toFixed(1)} s (${Math.round(linesRead / seconds)} lines/s, ${threads} threads)`);
  return header;
}

/** One side of a split: token sequences read by offset on demand; only the offsets are in memory. */
export class TokenArray {
  private constructor(
    private fh: FileHandle,
    private offsets: BigUint64Array,
    private dtype: CacheHeader['dtype'],
    readonly count: number,
    readonly lengths: Int32Array,
  ) {}

  static async open(prefix: string, dtype: CacheHeader['dtype']): Promise<TokenArray> {
    const raw = await readFile(prefix + '.idx');
    const offsets = new BigUint64Array(raw.buffer, raw.byteOffset, raw.byteLength / 8);
    const count = offsets.length - 1;
    const lengths = new Int32Array(count);
    for (let i = 0; i < count; i++) lengths[i] = Number(offsets[i + 1]! - offsets[i]!);
    return new TokenArray(await open(prefix + '.bin', 'r'), offsets, dtype, count, lengths);
  }

  /** Token ids of item i. */
  async get(i: number): Promise<Int32Array> {
    if (!(i >= 0 && i < this.count)) throw new RangeError(`item ${i} outside [0, ${this.count})`);
    const w = this.dtype === 'uint16' ? 2 : 4;
    const n = this.lengths[i]!;
    const buf = Buffer.alloc(n * w);
    if (n > 0) await this.fh.read(buf, 0, n * w, Number(this.offsets[i]!) * w);
    return this.dtype === 'uint16' ? Int32Array.from(new Uint16Array(buf.buffer, buf.byteOffset, n)) : new Int32Array(buf.buffer, buf.byteOffset, n).slice();
  }

  /** Token ids of several items (a batch). */
  getMany(items: ArrayLike<number>): Promise<Int32Array[]> {
    return Promise.all(Array.from(items, (i) => this.get(i)));
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

export interface CachedSplit {
  pairs: number;
  src: TokenArray;
  tgt: TokenArray;
}

/** Opens a split of a built cache; refuses a cache built with another vocabulary. */
export async function openCacheSplit(dir: string, name: string, vocabHash?: string): Promise<CachedSplit> {
  let h: CacheHeader;
  try {
    h = JSON.parse(await readFile(join(dir, 'header.json'), 'utf8')) as CacheHeader;
  } catch (e) {
    throw new SigmaError('SGT_DATA_INVALID', `no complete token cache in ${dir} (header.json missing); build it first`, { cause: e });
  }
  if (vocabHash && h.vocabHash !== vocabHash) {
    throw new SigmaError('SGT_VOCAB', `token cache ${dir} was built with vocabulary ${h.vocabHash}, not ${vocabHash}; rebuild it`);
  }
  if (!h.splits[name]) throw new SigmaError('SGT_DATA_INVALID', `token cache ${dir} has no split "${name}" (has ${Object.keys(h.splits).join(', ')})`);
  const [src, tgt] = await Promise.all([TokenArray.open(join(dir, `${name}.src`), h.dtype), TokenArray.open(join(dir, `${name}.tgt`), h.dtype)]);
  return { pairs: src.count, src, tgt };
}
