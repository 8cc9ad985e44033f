// WikiText-103 for the language model: the distributed files (wiki.{train,valid,test}.tokens or .raw), a
// word-level vocabulary as fairseq/Transformer-XL build it (or any subword encoder), a binary token cache read
// lazily, contiguous training blocks sharded over ranks, and the paper's sliding-window evaluation plan.
//
// The token stream: every line of the file, split on whitespace (or given to the subword encoder), followed by
// <eos> — empty lines too, as fairseq-preprocess with --sample-break-mode none and Transformer-XL do. The model
// predicts every token of the stream; the token before the first one is taken to be <eos> (the previous line's
// end), as fairseq's TokenBlockDataset does, so a split of N tokens has exactly N scored predictions.

import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SigmaError } from '../../shared/errors.js';
import { globalBatches, splitForRank } from './sampler.js';

export type WikiSplit = 'train' | 'valid' | 'test';

/** `tokens`: wikitext-103/wiki.*.tokens (with <unk>, @-@ …); `raw`: wikitext-103-raw/wiki.*.raw. */
export type WikiVariant = 'tokens' | 'raw';

/** Path of one split's file in a directory laid out as distributed (the unzipped wikitext-103[-raw]/ folder). */
export function wikitextFile(root: string, split: WikiSplit, variant: WikiVariant = 'tokens'): string {
  return path.join(root, `wiki.${split}.${variant}`);
}

export const EOS = '<eos>';
export const UNK = '<unk>';

const fail = (message: string): never => {
  throw new SigmaError('SGT_DATA_INVALID', message);
};

// ---------------------------------------------------------------------------------------------------------------
// Streaming lines

export interface Line { text: string; lineNo: number }

/** Lines firstLineNo, firstLineNo + 1, … of a file, in the order read. */
export interface LineBatch { lines: string[]; firstLineNo: number }

/**
 * The file's lines (without "\n"; a final line without newline counts too), decoded as strict UTF-8, streamed in
 * chunks of `chunkBytes` (4 MiB) and handed out a chunk's worth at a time (one decode and one split per chunk,
 * not per line: ~10× faster on WikiText-103's 1.8 M lines). A missing or empty file and undecodable bytes are
 * errors naming the path (and line and byte offset).
 */
export async function* readLineBatches(file: string, chunkBytes = 4 << 20): AsyncGenerator<LineBatch> {
  let st;
  try {
    st = await fs.stat(file);
  } catch (err) {
    fail(`wikitext: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)}); ` +
      'point data.root at the unzipped wikitext-103 folder holding wiki.{train,valid,test}.tokens');
  }
  if (!st!.isFile()) fail(`wikitext: ${file} is not a regular file`);
  if (st!.size === 0) fail(`wikitext: ${file} is empty (0 bytes); re-download or re-extract it`);
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let carry: Buffer = Buffer.alloc(0);
  let carryOffset = 0; // byte offset of carry[0] in the file
  let lineNo = 0; // lines handed out so far
  // bytes = whole lines starting at file offset `at`, the first being line lineNo + 1.
  const decode = (bytes: Buffer, at: number): string[] => {
    try {
      return decoder.decode(bytes).split('\n');
    } catch {
      return fail(badUtf8(file, bytes, at, lineNo));
    }
  };
  for await (const chunk of createReadStream(file, { highWaterMark: chunkBytes }) as AsyncIterable<Buffer>) {
    const buf = carry.length ? Buffer.concat([carry, chunk]) : chunk;
    const nl = buf.lastIndexOf(10);
    if (nl < 0) {
      carry = Buffer.from(buf);
      continue;
    }
    const lines = decode(buf.subarray(0, nl), carryOffset);
    yield { lines, firstLineNo: lineNo + 1 };
    lineNo += lines.length;
    carryOffset += nl + 1;
    carry = Buffer.from(buf.subarray(nl + 1));
  }
  if (carry.length) yield { lines: decode(carry, carryOffset), firstLineNo: lineNo + 1 };
}

/** The error for undecodable bytes: the line and the file offset of the first bad byte in `bytes` (read at `at`). */
function badUtf8(file: string, bytes: Buffer, at: number, linesBefore: number): string {
  // The longest prefix that decodes in streaming mode ends at the bad byte, or inside a multi-byte sequence that
  // the bad byte cut short: then report where that sequence starts.
  let lo = 0;
  let hi = bytes.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    try { new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, mid), { stream: true }); lo = mid; } catch { hi = mid - 1; }
  }
  let bad = lo;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, lo));
  } catch {
    while (bad > 0 && (bytes[bad - 1]! & 0xc0) === 0x80) bad--;
    if (bad > 0) bad--;
  }
  let line = linesBefore + 1;
  for (let i = bytes.indexOf(10); i >= 0 && i < bad; i = bytes.indexOf(10, i + 1)) line++;
  return `wikitext: ${file} line ${line} is not valid UTF-8 (byte offset ${at + bad}); the file is corrupt`;
}

/** readLineBatches one line at a time (for small files: vocabularies, tests). */
export async function* readLines(file: string, chunkBytes = 4 << 20): AsyncGenerator<Line> {
  for await (const { lines, firstLineNo } of readLineBatches(file, chunkBytes)) {
    for (let i = 0; i < lines.length; i++) yield { text: lines[i]!, lineNo: firstLineNo + i };
  }
}

const WS = /\s+/;
/** Whitespace tokens of a line (fairseq's tokenize_line: strip, split on runs of whitespace). */
export function words(line: string): string[] {
  const t = line.trim();
  return t === '' ? [] : t.split(WS);
}

// ---------------------------------------------------------------------------------------------------------------
// Word-level vocabulary

export interface WordVocab {
  kind: 'word';
  /** Id order: <eos> = 0, <unk> = 1, then by count descending, ties by code-point order of the token. */
  tokens: string[];
  counts: number[];
  index: Map<string, number>;
  /** sha256 of the vocabulary file's bytes (what writeVocab writes); names the vocabulary in caches and runs. */
  hash: string;
}

/** A subword vocabulary: any encoder (e.g. a HuggingFace BPE) giving ids for one line, plus its <eos> id. */
export interface SubwordVocab {
  kind: 'subword';
  encode: (text: string) => Int32Array;
  eosId: number;
  size: number;
  /** Identifies the tokenizer (e.g. sha256 of its JSON); stored in the cache header. */
  hash: string;
}

export type LmVocab = WordVocab | SubwordVocab;

function vocabText(tokens: string[], counts: number[]): string {
  return tokens.map((t, i) => `${t} ${counts[i]}\n`).join('');
}

function makeWordVocab(tokens: string[], counts: number[]): WordVocab {
  const index = new Map<string, number>();
  tokens.forEach((t, i) => index.set(t, i));
  const hash = createHash('sha256').update(vocabText(tokens, counts)).digest('hex');
  return { kind: 'word', tokens, counts, index, hash };
}

const byCodePoint = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Count every whitespace token of the training file plus one <eos> per line (streamed), and order them. Words
 * seen fewer than `minCount` times are left out (they read as <unk>; their occurrences are added to <unk>'s count).
 * WikiText-103 train with minCount 1 gives 267 735 entries (its 267 734 words and <eos>; <unk> is one of its words).
 */
export async function buildWordVocab(trainFile: string, opts: { minCount?: number } = {}): Promise<WordVocab> {
  const minCount = opts.minCount ?? 1;
  if (!Number.isSafeInteger(minCount) || minCount < 1) fail(`wikitext: minCount=${minCount} must be an integer ≥ 1`);
  const counts = new Map<string, number>();
  let lines = 0;
  for await (const batch of readLineBatches(trainFile)) {
    lines += batch.lines.length;
    for (const text of batch.lines) for (const w of words(text)) counts.set(w, (counts.get(w) ?? 0) + 1);
  }
  let unk = counts.get(UNK) ?? 0;
  counts.delete(UNK);
  if (counts.has(EOS)) fail(`wikitext: ${trainFile} contains the literal token ${EOS}, which is reserved for line ends`);
  const kept: [string, number][] = [];
  for (const [w, c] of counts) {
    if (c >= minCount) kept.push([w, c]);
    else unk += c;
  }
  kept.sort((a, b) => b[1] - a[1] || byCodePoint(a[0], b[0]));
  return makeWordVocab([EOS, UNK, ...kept.map((k) => k[0])], [lines, unk, ...kept.map((k) => k[1])]);
}

/**
 * The vocabulary stored at `vocabFile` if there is one, else built from `trainFile` and written there (what a run
 * records as the vocabulary it used; its `hash` goes into the token caches). `built` says which happened.
 */
export async function loadOrBuildWordVocab(
  trainFile: string, vocabFile: string, opts: { minCount?: number } = {},
): Promise<{ vocab: WordVocab; built: boolean }> {
  try {
    await fs.access(vocabFile);
  } catch {
    const vocab = await buildWordVocab(trainFile, opts);
    await writeVocab(vocabFile, vocab);
    return { vocab, built: true };
  }
  return { vocab: await readVocab(vocabFile), built: false };
}

/** fairseq dict.txt style, "token count" per line in id order (specials included, at ids 0 and 1). */
export async function writeVocab(file: string, vocab: WordVocab): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  await fs.writeFile(tmp, vocabText(vocab.tokens, vocab.counts), 'utf8');
  await fs.rename(tmp, file);
}

export async function readVocab(file: string): Promise<WordVocab> {
  const tokens: string[] = [];
  const counts: number[] = [];
  for await (const { text, lineNo } of readLines(file)) {
    const m = /^(\S+) (\d+)$/.exec(text);
    if (!m) fail(`wikitext: vocabulary ${file} line ${lineNo} is not "token count": ${JSON.stringify(text.slice(0, 80))}`);
    tokens.push(m![1]!);
    counts.push(Number(m![2]));
  }
  if (tokens[0] !== EOS || tokens[1] !== UNK) fail(`wikitext: vocabulary ${file} must start with ${EOS} and ${UNK} (ids 0, 1)`);
  const vocab = makeWordVocab(tokens, counts);
  if (vocab.index.size !== tokens.length) fail(`wikitext: vocabulary ${file} lists a token twice`);
  return vocab;
}

// ---------------------------------------------------------------------------------------------------------------
// Binary token cache: "SGTTOK1\n", uint32 LE header length (4096), the JSON header padded with spaces to that
// length, then the ids as Int32 LE (data at byte 4108, so any token is one positioned read away).

const MAGIC = Buffer.from('SGTTOK1\n', 'latin1');

export interface TokenCacheHeader {
  version: 1;
  source: { path: string; size: number; mtimeMs: number };
  vocabHash: string;
  vocabKind: 'word' | 'subword';
  tokens: number;
  lines: number;
  /** Word-level only: tokens of the file not in the vocabulary, stored as <unk> (0 on WikiText-103 itself). */
  oov: number;
  dataOffset: number;
}

/** A cache file's token stream, read on demand (nothing but the header is held in memory). */
export class TokenStream {
  private constructor(private readonly fh: fs.FileHandle, readonly header: TokenCacheHeader, readonly file: string) {}

  static async open(file: string): Promise<TokenStream> {
    const fh = await fs.open(file, 'r');
    try {
      const head = Buffer.alloc(12);
      await fh.read(head, 0, 12, 0);
      if (!head.subarray(0, 8).equals(MAGIC)) fail(`wikitext: ${file} is not a token cache (bad magic); delete it to rebuild`);
      const len = head.readUInt32LE(8);
      const json = Buffer.alloc(len);
      await fh.read(json, 0, len, 12);
      let header: TokenCacheHeader;
      try {
        header = JSON.parse(json.toString('utf8')) as TokenCacheHeader;
      } catch {
        return fail(`wikitext: token cache ${file} has an unreadable header; delete it to rebuild`);
      }
      const { size } = await fh.stat();
      if (header.version !== 1 || size !== header.dataOffset + 4 * header.tokens) {
        fail(`wikitext: token cache ${file} is truncated or of another version (${size} bytes); delete it to rebuild`);
      }
      return new TokenStream(fh, header, file);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  get length(): number {
    return this.header.tokens;
  }

  /** Ids [start, end), 0 ≤ start ≤ end ≤ length. */
  async read(start: number, end: number): Promise<Int32Array> {
    if (!(Number.isSafeInteger(start) && Number.isSafeInteger(end) && start >= 0 && start <= end && end <= this.length)) {
      fail(`wikitext: read [${start}, ${end}) outside the ${this.length} tokens of ${this.file}`);
    }
    const out = new Int32Array(end - start);
    const bytes = Buffer.from(out.buffer);
    let got = 0;
    while (got < bytes.length) {
      const { bytesRead } = await this.fh.read(bytes, got, bytes.length - got, this.header.dataOffset + 4 * start + got);
      if (bytesRead === 0) fail(`wikitext: token cache ${this.file} ended early`);
      got += bytesRead;
    }
    return out;
  }

  /**
   * Model input and target for the target positions [start, end): target = ids[start, end), input = the same
   * shifted right by one, with <eos> before position 0. Shapes [end − start] each.
   */
  async inputTarget(start: number, end: number, eosId: number): Promise<{ input: Int32Array; target: Int32Array }> {
    if (end === start) return { input: new Int32Array(0), target: new Int32Array(0) };
    const from = Math.max(0, start - 1);
    const ids = await this.read(from, end);
    const target = ids.subarray(start - from);
    const input = new Int32Array(end - start);
    input.set(ids.subarray(0, end - start - (start === 0 ? 1 : 0)), start === 0 ? 1 : 0);
    if (start === 0 && input.length > 0) input[0] = eosId;
    return { input, target };
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

async function sourceStamp(file: string): Promise<TokenCacheHeader['source']> {
  const st = await fs.stat(file).catch(() => fail(`wikitext: cannot read ${file}; is data.root the wikitext-103 folder?`));
  return { path: path.resolve(file), size: st.size, mtimeMs: st.mtimeMs };
}

/**
 * Encode `source` with `vocab` into the cache file `cacheFile` (streamed both ways; written to a temporary name,
 * then renamed, so a crash never leaves a half cache under the real name). Writes `chunkTokens` ids at a time.
 */
export async function buildTokenCache(
  source: string, cacheFile: string, vocab: LmVocab, opts: { chunkTokens?: number } = {},
): Promise<TokenCacheHeader> {
  if (os.endianness() !== 'LE') fail('wikitext: the token cache is little-endian; this machine is big-endian');
  const stamp = await sourceStamp(source);
  await fs.mkdir(path.dirname(cacheFile), { recursive: true });
  const tmp = `${cacheFile}.tmp-${process.pid}`;
  const fh = await fs.open(tmp, 'w');
  const CHUNK = opts.chunkTokens ?? 1 << 20; // tokens per write
  const buf = new Int32Array(CHUNK);
  let fill = 0;
  let tokens = 0;
  let lines = 0;
  let oov = 0;
  // Reserve room for the header: written last, once the counts are known, at its fixed maximal size.
  const HEADER_ROOM = 4096;
  const dataOffset = 12 + HEADER_ROOM;
  let pos = dataOffset;
  // push() is synchronous (an await per token would cost seconds on WikiText-103's 103 M tokens); full chunks
  // are queued and written after the line.
  const full: Buffer[] = [];
  const push = (id: number): void => {
    buf[fill++] = id;
    if (fill === CHUNK) {
      full.push(Buffer.from(buf.buffer.slice(0)));
      fill = 0;
    }
  };
  const write = async (bytes: Buffer): Promise<void> => {
    await fh.write(bytes, 0, bytes.length, pos);
    pos += bytes.length;
    tokens += bytes.length / 4;
  };
  const flush = async (): Promise<void> => {
    for (const b of full.splice(0)) await write(b);
    if (fill > 0) await write(Buffer.from(buf.buffer, 0, 4 * fill));
    fill = 0;
  };
  try {
    const eosId = vocab.kind === 'word' ? 0 : vocab.eosId;
    const unkId = 1;
    for await (const batch of readLineBatches(source)) {
      for (let li = 0; li < batch.lines.length; li++) {
        const text = batch.lines[li]!;
        const lineNo = batch.firstLineNo + li;
        lines++;
        if (vocab.kind === 'word') {
          for (const w of words(text)) {
            const id = vocab.index.get(w);
            if (id === undefined || id === eosId) oov++;
            push(id === undefined || id === eosId ? unkId : id);
          }
        } else {
          const ids = vocab.encode(text);
          for (let i = 0; i < ids.length; i++) {
            const id = ids[i]!;
            if (!Number.isInteger(id) || id < 0 || id >= vocab.size) {
              fail(`wikitext: the subword encoder gave id ${id} (vocabulary size ${vocab.size}) for ${source} line ${lineNo}`);
            }
            push(id);
          }
        }
        push(eosId);
      }
      for (const b of full.splice(0)) await write(b);
    }
    await flush();
    const header: TokenCacheHeader = {
      version: 1, source: stamp, vocabHash: vocab.hash, vocabKind: vocab.kind, tokens, lines, oov, dataOffset,
    };
    const json = Buffer.from(JSON.stringify(header), 'utf8');
    if (json.length > HEADER_ROOM) fail(`wikitext: cache header for ${source} is too long (path over ~3.5 kB?)`);
    const head = Buffer.alloc(12 + HEADER_ROOM, 0x20); // JSON padded with spaces
    MAGIC.copy(head, 0);
    head.writeUInt32LE(HEADER_ROOM, 8);
    json.copy(head, 12);
    await fh.write(head, 0, head.length, 0);
    await fh.close();
    await fs.rename(tmp, cacheFile);
    return header;
  } catch (err) {
    await fh.close().catch(() => undefined);
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/**
 * The cached token stream of `source` under `vocab`: reused when the cache names the same source (path, size,
 * mtime) and vocabulary hash, rebuilt otherwise. `built` says which happened (for the caller's log).
 */
export async function ensureTokenCache(source: string, cacheFile: string, vocab: LmVocab): Promise<{ stream: TokenStream; built: boolean }> {
  const stamp = await sourceStamp(source);
  try {
    const stream = await TokenStream.open(cacheFile);
    const h = stream.header;
    if (h.vocabHash === vocab.hash && h.source.path === stamp.path && h.source.size === stamp.size && h.source.mtimeMs === stamp.mtimeMs) {
      return { stream, built: false };
    }
    await stream.close();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && !(err instanceof SigmaError)) throw err;
  }
  await buildTokenCache(source, cacheFile, vocab);
  return { stream: await TokenStream.open(cacheFile), built: true };
}

// ---------------------------------------------------------------------------------------------------------------
// Training blocks

export interface BlockPlanOptions {
  numTokens: number;
  blockSize: number;
  seed: number;
  epoch: number;
  worldSize: number;
  rank: number;
  /** Blocks per rank per batch (the per-worker batch size in blocks). */
  blocksPerBatch: number;
}

export interface BlockPlan {
  /** Per batch, the target start positions of this rank's blocks (each block = targets [s, s + blockSize)). */
  batches: Int32Array[];
  blocks: number;
  /** Tokens after the last full block (numTokens mod blockSize): not trained on, reported so nothing is silent. */
  droppedTail: number;
}

/**
 * The epoch's blocks for one rank. The stream is cut into floor(N / blockSize) contiguous blocks; their order is a
 * permutation from (seed, epoch), cut into global batches of worldSize·blocksPerBatch and split over ranks
 * (sampler.ts): every block exactly once per epoch across ranks, every rank the same number of batches (in the
 * last, partial batch some ranks hold fewer blocks, possibly none), and the global batches do not depend on the
 * world size for a fixed global batch.
 */
export function planTrainBlocks(o: BlockPlanOptions): BlockPlan {
  for (const [k, v, lo] of [['numTokens', o.numTokens, 0], ['blockSize', o.blockSize, 1], ['worldSize', o.worldSize, 1], ['blocksPerBatch', o.blocksPerBatch, 1]] as const) {
    if (!Number.isSafeInteger(v) || v < lo) fail(`wikitext: ${k}=${v} must be an integer ≥ ${lo}`);
  }
  const blocks = Math.floor(o.numTokens / o.blockSize);
  const batches = globalBatches(blocks, o.seed, o.epoch, o.worldSize * o.blocksPerBatch).map((g) => {
    const mine = splitForRank(g, o.worldSize, o.rank);
    return Int32Array.from(mine, (b) => b * o.blockSize);
  });
  return { batches, blocks, droppedTail: o.numTokens - blocks * o.blockSize };
}

// ---------------------------------------------------------------------------------------------------------------
// Evaluation windows

/** Target positions [start, end) go through the model; the predictions at [scoreFrom, end) are scored. */
export interface EvalWindow { start: number; scoreFrom: number; end: number }

/**
 * The paper's evaluation: windows of `windowSize` (512) tokens advancing by `stride` (256), scoring only the last
 * `stride` tokens of each, except the first window, which scores all of its tokens. The last window is moved back
 * to end at N with full context (it scores only what earlier windows left). Every position 0..N−1 is scored by
 * exactly one window; for N ≤ windowSize there is one window.
 */
export function evalWindows(numTokens: number, windowSize = 512, stride = 256): EvalWindow[] {
  if (!Number.isSafeInteger(numTokens) || numTokens < 0) fail(`wikitext: numTokens=${numTokens} must be an integer ≥ 0`);
  if (!Number.isSafeInteger(windowSize) || windowSize < 1) fail(`wikitext: windowSize=${windowSize} must be an integer ≥ 1`);
  if (!Number.isSafeInteger(stride) || stride < 1 || stride > windowSize) {
    fail(`wikitext: stride=${stride} must be an integer in [1, windowSize=${windowSize}]`);
  }
  if (numTokens === 0) return [];
  const out: EvalWindow[] = [{ start: 0, scoreFrom: 0, end: Math.min(windowSize, numTokens) }];
  let scored = out[0]!.end;
  while (scored < numTokens) {
    const end = Math.min(scored + stride, numTokens);
    out.push({ start: Math.max(0, end - windowSize), scoreFrom: scored, end });
    scored = end;
  }
  return out;
}

/** Where a window's scored predictions sit in its own [end − start] outputs: [from, to). */
export function scoredRange(w: EvalWindow): { from: number; to: number } {
  return { from: w.scoreFrom - w.start, to: w.end - w.start };
}

/**
 * Rank `rank`'s contiguous share of the windows (counts differ by at most one; Σ over ranks = the whole plan).
 * Each rank sums (nll, tokens) over its scored positions; one all-reduce of the two sums at the end gives the
 * perplexity, so ranks need not run the same number of forward passes.
 */
export function evalShare(windows: EvalWindow[], worldSize: number, rank: number): EvalWindow[] {
  if (!Number.isSafeInteger(worldSize) || worldSize < 1) fail(`wikitext: worldSize=${worldSize} must be an integer ≥ 1`);
  if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize) fail(`wikitext: rank=${rank} must be in [0, ${worldSize})`);
  const base = Math.floor(windows.length / worldSize);
  const extra = windows.length % worldSize;
  const start = rank * base + Math.min(rank, extra);
  return windows.slice(start, start + base + (rank < extra ? 1 : 0));
}

/** Summed negative log-likelihood (nats) and the number of tokens it covers: the quantities ranks all-reduce. */
export interface NllSums { nll: number; tokens: number }

/** exp(Σ NLL / N), from sums already reduced across ranks. */
export function perplexity(s: NllSums): number {
  if (!(s.tokens > 0)) fail(`wikitext: perplexity over ${s.tokens} tokens is undefined; the evaluation scored nothing`);
  if (!Number.isFinite(s.nll)) fail(`wikitext: summed NLL is ${s.nll}; the evaluation produced a non-finite loss`);
  return Math.exp(s.nll / s.tokens);
}
