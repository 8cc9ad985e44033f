// Language modelling on WikiText-103 (task lm): the decoder-only σReparam Transformer over contiguous blocks of the
// token stream, loss = cross-entropy summed over target tokens (denominator: tokens), and the paper's evaluation —
// windows of blockSize tokens advancing by scoreLast, only each window's last scoreLast predictions scored (the first
// window scores all), every token of valid/test exactly once — as sums of NLL and scored tokens, so perplexity =
// exp(Σ NLL / Σ tokens) after one all-reduce. valid is evaluated periodically, test once at the end.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import lockfile from 'proper-lockfile';
import type { Config } from '../../shared/config/index.js';
import { SigmaError } from '../../shared/errors.js';
import { splitForRank } from '../data/sampler.js';
import {
  EOS, ensureTokenCache, evalShare, evalWindows, loadOrBuildWordVocab, planTrainBlocks, scoredRange, wikitextFile,
  type EvalWindow, type TokenStream, type WikiSplit, type WikiVariant, type WordVocab,
} from '../data/wikitext.js';
import { buildModel } from '../models/index.js';
import type { Model } from '../models/model.js';
import { logSoftmax } from '../kernels/ops.js';
import type { BatchTensors, EvalMetric, EvalSet, LossSums, Task, TaskBatch, TaskData } from './task.js';

export interface LmBatch extends TaskBatch {
  /** Row length: every row is [T] (shorter rows padded at the end; lengths says how far each is real). */
  T: number;
  /** [samples, T] model input: the target shifted right by one (<eos> before the stream's first token). */
  input: Int32Array;
  /** [samples, T] next-token targets. */
  target: Int32Array;
  /** [samples] real positions of each row. */
  lengths: Int32Array;
  /** [samples] first scored position of each row (0 in training; an evaluation window's scoredRange.from). */
  scoreFrom: Int32Array;
}

/** The positions of a row that count: scoreFrom ≤ t < length, as a [samples, T] 0/1 mask. */
export function scoreMask(b: Pick<LmBatch, 'T' | 'samples' | 'lengths' | 'scoreFrom'>): Float32Array {
  const m = new Float32Array(b.samples * b.T);
  for (let i = 0; i < b.samples; i++) m.fill(1, i * b.T + b.scoreFrom[i]!, i * b.T + b.lengths[i]!);
  return m;
}

/** Rows [from, to) of a batch. */
function rows(b: LmBatch, from: number, to: number): LmBatch {
  const T = b.T;
  const lengths = b.lengths.subarray(from, to);
  const scoreFrom = b.scoreFrom.subarray(from, to);
  let units = 0;
  for (let i = 0; i < lengths.length; i++) units += lengths[i]! - scoreFrom[i]!;
  return {
    T, input: b.input.subarray(from * T, to * T), target: b.target.subarray(from * T, to * T), lengths, scoreFrom,
    samples: to - from, units, skipped: [],
  };
}

/** Where the split files are: <root>/wikitext-103[-raw]/ as unzipped, or root itself when it holds them. */
export async function wikitextDir(root: string, variant: WikiVariant): Promise<string> {
  const candidates = [path.join(root, variant === 'raw' ? 'wikitext-103-raw' : 'wikitext-103'), root];
  for (const dir of candidates) {
    if (await fs.stat(wikitextFile(dir, 'train', variant)).then((s) => s.isFile(), () => false)) return dir;
  }
  throw new SigmaError('SGT_DATA_INVALID', `wikitext: no wiki.train.${variant} in ${candidates.join(' or ')}: point data.root at the folder `
    + `holding the unzipped ${variant === 'raw' ? 'wikitext-103-raw' : 'wikitext-103'}/ (data.wikitext.variant: ${variant})`);
}

export interface PreparedWikitext {
  dir: string;
  vocab: WordVocab;
  streams: Record<WikiSplit, TokenStream>;
  /** What this process built (others found it ready, possibly built by a concurrent worker). */
  built: string[];
}

/**
 * The vocabulary and the three token caches, built once: the first process takes a lock on the cache folder
 * (proper-lockfile: a lock directory, refreshed while held, stale after a minute so a crashed holder does not block
 * forever) and builds what is missing; the others wait for it and then find everything in place. Files are written
 * under temporary names and renamed, so a reader never sees a partial one.
 */
export async function prepareWikitext(o: { root: string; variant: WikiVariant; minCount: number; cacheDir: string }): Promise<PreparedWikitext> {
  const dir = await wikitextDir(o.root, o.variant);
  const cacheDir = o.cacheDir || path.join(dir, 'sigmatrain-cache');
  await fs.mkdir(cacheDir, { recursive: true });
  const release = await lockfile.lock(cacheDir, {
    stale: 60_000, update: 10_000, realpath: false,
    // Every file is written under a temporary name and renamed: a lock lost while building (the holder stalled past
    // `stale`) costs a duplicate build, never a corrupt file, so it is not worth crashing for.
    onCompromised: () => undefined,
    // Building WikiText-103's caches takes minutes on one core: wait up to ~2 h in 5 s polls.
    retries: { retries: 1500, factor: 1.2, minTimeout: 200, maxTimeout: 5000 },
  });
  const built: string[] = [];
  try {
    const trainFile = wikitextFile(dir, 'train', o.variant);
    const vocabFile = path.join(cacheDir, `dict.${o.variant}.min${o.minCount}.txt`);
    const { vocab, built: vocabBuilt } = await loadOrBuildWordVocab(trainFile, vocabFile, { minCount: o.minCount });
    if (vocabBuilt) built.push(vocabFile);
    const streams = {} as Record<WikiSplit, TokenStream>;
    for (const split of ['train', 'valid', 'test'] as const) {
      const cache = path.join(cacheDir, `${split}.${o.variant}.min${o.minCount}.bin`);
      const r = await ensureTokenCache(wikitextFile(dir, split, o.variant), cache, vocab);
      streams[split] = r.stream;
      if (r.built) built.push(cache);
    }
    return { dir, vocab, streams, built };
  } finally {
    await release();
  }
}

class LmData implements TaskData<LmBatch> {
  readonly stepsPerEpoch: number;
  readonly initiallySkipped = [];
  readonly evalSets: readonly EvalSet[] = [{ name: 'valid', when: 'periodic' }, { name: 'test', when: 'final' }];
  private readonly blocks: number;
  private epochOf = -1;
  private batches: Int32Array[] = [];
  private readonly windows: Record<'valid' | 'test', EvalWindow[]>;

  constructor(private readonly p: PreparedWikitext, private readonly config: Readonly<Config>) {
    const w = config.data.wikitext;
    const n = p.streams.train.length;
    const plan = planTrainBlocks({ numTokens: n, blockSize: w.blockSize, seed: config.seed, epoch: 0, worldSize: 1, rank: 0, blocksPerBatch: config.train.globalBatch });
    if (plan.blocks === 0) {
      throw new SigmaError('SGT_DATA_INVALID', `wikitext: the training stream of ${n} tokens holds no block of data.wikitext.blockSize ${w.blockSize}: lower blockSize`);
    }
    this.blocks = plan.blocks;
    this.stepsPerEpoch = plan.batches.length;
    this.windows = {
      valid: evalWindows(p.streams.valid.length, w.blockSize, w.scoreLast),
      test: evalWindows(p.streams.test.length, w.blockSize, w.scoreLast),
    };
  }

  get description(): string {
    const w = this.config.data.wikitext;
    const s = this.p.streams;
    const tail = s.train.length - this.blocks * w.blockSize;
    return `WikiText-103 (${w.variant}) from ${this.p.dir}: vocabulary ${this.p.vocab.tokens.length}, train ${s.train.length} tokens in ${this.blocks} blocks of ${w.blockSize}`
      + ` (last ${tail} tokens not trained on), valid ${s.valid.length} and test ${s.test.length} tokens in ${this.windows.valid.length} and ${this.windows.test.length} windows`
      + ` scoring the last ${w.scoreLast}; ${this.p.built.length ? `built ${this.p.built.map((f) => path.basename(f)).join(', ')}` : 'caches reused'}`;
  }

  async trainBatch(step: number, worldSize: number, rank: number): Promise<LmBatch> {
    const epoch = Math.floor(step / this.stepsPerEpoch);
    if (epoch !== this.epochOf) {
      // The global batches (block start positions) of the epoch, the same for every world size; each rank takes its share.
      const w = this.config.data.wikitext;
      this.batches = planTrainBlocks({
        numTokens: this.p.streams.train.length, blockSize: w.blockSize, seed: this.config.seed, epoch, worldSize: 1, rank: 0, blocksPerBatch: this.config.train.globalBatch,
      }).batches;
      this.epochOf = epoch;
    }
    const starts = splitForRank(this.batches[step % this.stepsPerEpoch]!, worldSize, rank);
    return this.blocksAt(starts);
  }

  private async blocksAt(starts: ArrayLike<number>): Promise<LmBatch> {
    const T = this.config.data.wikitext.blockSize;
    const n = starts.length;
    const input = new Int32Array(n * T);
    const target = new Int32Array(n * T);
    for (let i = 0; i < n; i++) {
      const r = await this.p.streams.train.inputTarget(starts[i]!, starts[i]! + T, 0);
      input.set(r.input, i * T);
      target.set(r.target, i * T);
    }
    return { T, input, target, lengths: new Int32Array(n).fill(T), scoreFrom: new Int32Array(n), samples: n, units: n * T, skipped: [] };
  }

  /** This rank's share of the set's windows, evalBatch windows at a time. */
  async *valBatches(worldSize: number, rank: number, set = 'valid'): AsyncIterable<LmBatch> {
    if (set !== 'valid' && set !== 'test') throw new SigmaError('SGT_DATA_INVALID', `wikitext: no evaluation set "${set}" (valid, test)`);
    const stream = this.p.streams[set];
    const mine = evalShare(this.windows[set], worldSize, rank);
    const per = this.config.data.wikitext.evalBatch;
    for (let k = 0; k < mine.length; k += per) {
      const ws = mine.slice(k, k + per);
      const T = Math.max(...ws.map((w) => w.end - w.start));
      const input = new Int32Array(ws.length * T);
      const target = new Int32Array(ws.length * T);
      const lengths = new Int32Array(ws.length);
      const scoreFrom = new Int32Array(ws.length);
      let units = 0;
      for (const [i, w] of ws.entries()) {
        const r = await stream.inputTarget(w.start, w.end, 0);
        input.set(r.input, i * T);
        target.set(r.target, i * T);
        const { from, to } = scoredRange(w);
        lengths[i] = to;
        scoreFrom[i] = from;
        units += to - from;
      }
      yield { T, input, target, lengths, scoreFrom, samples: ws.length, units, skipped: [] };
    }
  }

  /** The first n blocks of the training stream, split over ranks (sharpness's fixed batch). */
  async diagnosticBatch(n: number, worldSize: number, rank: number): Promise<LmBatch> {
    const T = this.config.data.wikitext.blockSize;
    const ids = Int32Array.from({ length: Math.min(n, this.blocks) }, (_, i) => i * T);
    return this.blocksAt(splitForRank(ids, worldSize, rank));
  }

  async close(): Promise<void> {
    for (const s of Object.values(this.p.streams)) await s.close();
  }
}

export class LmTask implements Task<LmBatch> {
  readonly name = 'lm' as const;
  readonly unit = 'tokens' as const;
  readonly stepMetrics = ['accuracy'] as const;
  readonly evalSums = ['nll', 'tokens', 'n'] as const;
  readonly evalMetrics: readonly EvalMetric[] = [{ name: 'valid_loss', sum: 'nll', per: 'tokens' }];
  readonly evalChunk: number;
  private built: { model: Model; prepared: PreparedWikitext } | undefined;

  /** `model`: a prebuilt one (tests); otherwise open() builds it once the vocabulary size is known. */
  constructor(private readonly config: Readonly<Config>, private readonly prebuilt?: Model) {
    const w = config.data.wikitext;
    if (config.data.kind !== 'wikitext') throw new SigmaError('SGT_CONFIG_INVALID', `task lm reads data.kind wikitext, not ${config.data.kind}: set data.kind: wikitext`);
    if (w.scoreLast > w.blockSize) {
      throw new SigmaError('SGT_CONFIG_INVALID', `data.wikitext.scoreLast ${w.scoreLast} exceeds data.wikitext.blockSize ${w.blockSize}: a window cannot score more than it holds`);
    }
    if (config.model.lm.maxPositions < w.blockSize) {
      throw new SigmaError('SGT_CONFIG_INVALID', `model.lm.maxPositions ${config.model.lm.maxPositions} is below data.wikitext.blockSize ${w.blockSize}: raise it to at least ${w.blockSize}`);
    }
    this.evalChunk = w.evalBatch;
  }

  /** The model: its vocabulary comes from the data, so it exists once open() has prepared it. */
  get model(): Model {
    if (!this.built) throw new Error('task lm: the model is built by open() (its vocabulary comes from the data); call open() first');
    return this.built.model;
  }

  /** Vocabulary size (the uniform model's perplexity), after open(). */
  get vocabSize(): number {
    if (!this.built) throw new Error('task lm: call open() first');
    return this.built.prepared.vocab.tokens.length;
  }

  /** Prepares the data (once per process; concurrent workers share the build through a lock) and builds the model. */
  async open(): Promise<TaskData<LmBatch>> {
    if (!this.built) {
      const w = this.config.data.wikitext;
      const prepared = await prepareWikitext({ root: this.config.data.root, variant: w.variant, minCount: w.minCount, cacheDir: w.cacheDir });
      if (prepared.vocab.tokens[0] !== EOS) throw new SigmaError('SGT_DATA_INVALID', `wikitext: the vocabulary must give ${EOS} id 0`);
      const model = this.prebuilt ?? buildModel(this.config, { vocab: prepared.vocab.tokens.length, maxLength: w.blockSize });
      this.built = { model, prepared };
    }
    return new LmData(this.built.prepared, this.config);
  }

  split(b: LmBatch, maxSamples: number): LmBatch[] {
    if (maxSamples <= 0 || b.samples <= maxSamples) return [b];
    const out: LmBatch[] = [];
    for (let i = 0; i < b.samples; i += maxSamples) out.push(rows(b, i, Math.min(b.samples, i + maxSamples)));
    return out;
  }

  tensors(b: LmBatch): BatchTensors {
    const { T, samples: n } = b;
    const real = new Float32Array(n * T);
    for (let i = 0; i < n; i++) real.fill(1, i * T, i * T + b.lengths[i]!);
    return {
      inputs: { tokens: tf.tensor2d(b.input.subarray(0, n * T), [n, T], 'int32'), mask: tf.tensor2d(real, [n, T]) },
      targets: { tokens: tf.tensor2d(b.target.subarray(0, n * T), [n, T], 'int32'), score: tf.tensor2d(scoreMask(b), [n, T]) },
    };
  }

  /** Σ over scored tokens of −log p(target) (every token of a training block); accuracy: argmax hits; denominator: tokens. */
  loss(outputs: Record<string, tf.Tensor>, targets: Record<string, tf.Tensor>): LossSums {
    const { nll, hits, score } = perToken(outputs, targets);
    return { loss: tf.sum(tf.mul(nll, score)) as tf.Scalar, denominator: tf.sum(score) as tf.Scalar, metrics: { accuracy: tf.sum(tf.mul(hits, score)) as tf.Scalar } };
  }

  /**
   * Σ NLL and count over the scored positions of each window; n: windows. No gradient here, so NLL = logsumexp −
   * the target's logit, picked by a gather: no [B, T, V] one-hot or log-softmax beside the logits (2 GB each for 4
   * windows of 512 at WikiText-103's 267 735 words).
   */
  evaluate(outputs: Record<string, tf.Tensor>, targets: Record<string, tf.Tensor>): Record<string, tf.Scalar> {
    const logits = outputs.logits as tf.Tensor3D; // [B, T, V]
    const [B, T, V] = logits.shape;
    const y = (targets.tokens as tf.Tensor2D).reshape([B * T]);
    const at = tf.add(tf.mul(tf.range(0, B * T, 1, 'int32'), tf.scalar(V, 'int32')), y); // flat index of each target logit
    const picked = tf.gather(logits.reshape([B * T * V]), at).reshape([B, T]);
    const nll = tf.sub(tf.logSumExp(logits, -1), picked); // [B, T]
    const score = targets.score as tf.Tensor2D;
    return { nll: tf.sum(tf.mul(nll, score)) as tf.Scalar, tokens: tf.sum(score) as tf.Scalar, n: tf.scalar(B) };
  }

  /** valid: valid_loss (nats per token) and valid_ppl; test: test_loss and ppl — exp of the mean NLL. */
  metricsOf(sums: Readonly<Record<string, number>>, set: string): Record<string, number> {
    const loss = sums.nll! / sums.tokens!;
    return set === 'test' ? { ppl: Math.exp(loss), test_loss: loss } : { [`${set}_ppl`]: Math.exp(loss), [`${set}_loss`]: loss };
  }
}

/**
 * Per position [B, T]: −log p(target), argmax hits and the scored-position mask. The training loss goes through the
 * second-order-correct logSoftmax (Hessian-vector products differentiate it twice).
 */
function perToken(outputs: Record<string, tf.Tensor>, targets: Record<string, tf.Tensor>) {
  const logits = outputs.logits as tf.Tensor3D; // [B, T, V]
  const y = targets.tokens as tf.Tensor2D; // [B, T]
  const V = logits.shape[2];
  const nll = tf.neg(tf.sum(tf.mul(tf.oneHot(y, V), logSoftmax(logits)), -1)) as tf.Tensor2D; // [B, T]
  const hits = tf.cast(tf.equal(tf.argMax(logits, -1), y), 'float32');
  return { nll, hits, score: targets.score as tf.Tensor2D };
}
