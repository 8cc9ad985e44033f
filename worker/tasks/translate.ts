// Translation (WMT-style): a σReparam encoder-decoder on a joint-BPE token cache, batched by token budget (fairseq
// --max-tokens), trained with label-smoothed cross-entropy summed over target tokens, evaluated by beam search and
// sacreBLEU-compatible BLEU/chrF statistics against the raw reference text.
import { createHash } from 'node:crypto';
import { hostname, tmpdir } from 'node:os';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { Config } from '../../shared/config/index.js';
import { SigmaError } from '../../shared/errors.js';
import { bleuFromStats, bleuStats, bleuStatsFromRecord, bleuStatsToRecord, chrfFromStats, chrfStats, chrfStatsFromRecord, chrfStatsKeys, chrfStatsToRecord } from '../../shared/scoring/index.js';
import { planAllBatches, pairSizes } from '../data/budget.js';
import { openCacheSplit, type CachedSplit } from '../data/wmt/cache.js';
import { readPairs } from '../data/wmt/formats.js';
import { prepareWmt, type PreparedWmt } from '../data/wmt/vocab_cli.js';
import type { Vocab } from '../data/wmt/vocab.js';
import { beamSearch, greedySearch, type Hypothesis } from '../decode/beam.js';
import { logSoftmax } from '../kernels/ops.js';
import { buildModel } from '../models/index.js';
import type { Model } from '../models/model.js';
import type { Seq2SeqModel } from '../models/seq2seq.js';
import type { BatchTensors, EvalMetric, EvalModel, EvalSet, LossOptions, LossSums, Skipped, Task, TaskBatch, TaskData } from './task.js';

/** Special ids of the joint vocabulary (worker/data/wmt/vocab.ts). */
export const BOS = 0;
export const PAD = 1;
export const EOS = 2;

export interface TranslateBatch extends TaskBatch {
  /** [samples, S] source ids + </s>, PAD after. */
  src: Int32Array;
  /** [samples, T] <s> + target ids (teacher forcing input), PAD after. */
  tgtIn: Int32Array;
  /** [samples, T] target ids + </s> (what is predicted), PAD after. */
  tgtOut: Int32Array;
  srcLengths: Int32Array;
  tgtLengths: Int32Array;
  S: number;
  T: number;
  /** Pair indices in their split (evaluation: which reference each row is scored against). */
  ids: Int32Array;
}

/** Pads token sequences into a batch: source gets </s>, the target is shifted (<s> in, </s> out); `cap` cuts longer ones. */
export function makeBatch(srcs: Int32Array[], tgts: Int32Array[], ids: Int32Array, cap = Infinity): TranslateBatch {
  const n = srcs.length;
  const srcLengths = new Int32Array(n);
  const tgtLengths = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    srcLengths[i] = Math.min(srcs[i]!.length + 1, cap);
    tgtLengths[i] = Math.min(tgts[i]!.length + 1, cap);
  }
  const S = Math.max(1, ...srcLengths);
  const T = Math.max(1, ...tgtLengths);
  const src = new Int32Array(n * S).fill(PAD);
  const tgtIn = new Int32Array(n * T).fill(PAD);
  const tgtOut = new Int32Array(n * T).fill(PAD);
  let units = 0;
  for (let i = 0; i < n; i++) {
    const s = srcs[i]!;
    const t = tgts[i]!;
    const ls = srcLengths[i]!;
    const lt = tgtLengths[i]!;
    src.set(s.subarray(0, ls - 1), i * S);
    src[i * S + ls - 1] = EOS;
    tgtIn[i * T] = BOS;
    tgtIn.set(t.subarray(0, lt - 1), i * T + 1);
    tgtOut.set(t.subarray(0, lt - 1), i * T);
    tgtOut[i * T + lt - 1] = EOS;
    units += lt;
  }
  return { src, tgtIn, tgtOut, srcLengths, tgtLengths, S, T, ids, samples: n, units, skipped: [] };
}

/** Rows [a, b) of a batch (micro-batches), keeping its padded widths. */
export function sliceBatch(b: TranslateBatch, a: number, e: number): TranslateBatch {
  const tgtLengths = b.tgtLengths.subarray(a, e);
  return {
    src: b.src.subarray(a * b.S, e * b.S), tgtIn: b.tgtIn.subarray(a * b.T, e * b.T), tgtOut: b.tgtOut.subarray(a * b.T, e * b.T),
    srcLengths: b.srcLengths.subarray(a, e), tgtLengths, S: b.S, T: b.T, ids: b.ids.subarray(a, e),
    samples: e - a, units: tgtLengths.reduce((x, y) => x + y, 0), skipped: [],
  };
}

/**
 * fairseq's label_smoothed_nll_loss per token: (1 − ε − ε_i)·nll + ε_i·Σ_v −log p_v with ε_i = ε / (V − 1),
 * summed over non-pad target positions. logits [B, T, V], target [B, T] int32, mask [B, T] (1 = real token).
 * Returns the smoothed sum, the plain nll sum and the correct-argmax count, all over real tokens.
 */
export function smoothedNllSums(logits: tf.Tensor3D, target: tf.Tensor2D, mask: tf.Tensor2D, epsilon: number): { loss: tf.Scalar; nll: tf.Scalar; hits: tf.Scalar } {
  const V = logits.shape[2];
  const logp = logSoftmax(logits); // [B, T, V], second-order safe
  const nll = tf.neg(tf.sum(tf.mul(tf.oneHot(target, V), logp), -1)); // [B, T]
  let per: tf.Tensor = nll;
  if (epsilon > 0) {
    const epsI = epsilon / (V - 1);
    const smooth = tf.neg(tf.sum(logp, -1)); // [B, T]
    per = tf.add(tf.mul(nll, 1 - epsilon - epsI), tf.mul(smooth, epsI));
  }
  const hits = tf.cast(tf.equal(tf.argMax(logits, -1), target), 'float32');
  return {
    loss: tf.sum(tf.mul(per, mask)) as tf.Scalar,
    nll: tf.sum(tf.mul(nll, mask)) as tf.Scalar,
    hits: tf.sum(tf.mul(hits, mask)) as tf.Scalar,
  };
}

/**
 * This rank's items of one step when the step's global batches (planned for `planned` ranks) run on `worldSize`
 * ranks: the union sorted by size, dealt into contiguous runs (similar lengths together, counts differ by ≤ 1).
 */
export function resplit(batches: readonly Int32Array[], sizes: Int32Array, worldSize: number, rank: number): Int32Array {
  const all = Int32Array.from(batches.flatMap((b) => Array.from(b))).sort((a, b) => sizes[a]! - sizes[b]! || a - b);
  const per = Math.floor(all.length / worldSize);
  const extra = all.length % worldSize;
  const start = rank * per + Math.min(rank, extra);
  return all.slice(start, start + per + (rank < extra ? 1 : 0));
}

/** Serialises prepareWmt across processes sharing `dir`: mkdir is atomic; a lock whose process died (same host) is taken over. */
export async function withPrepareLock<T>(dir: string, fn: () => Promise<T>, log: (m: string) => void, timeoutMs = 3_600_000): Promise<T> {
  await mkdir(dir, { recursive: true });
  const lock = join(dir, 'prepare.lock');
  const t0 = Date.now();
  let announced = false;
  for (;;) {
    try {
      await mkdir(lock);
      await writeFile(join(lock, 'owner.json'), JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() }));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = await readFile(join(lock, 'owner.json'), 'utf8').then((s) => JSON.parse(s) as { pid: number; host: string }).catch(() => null);
      if (owner && owner.host === hostname() && !alive(owner.pid)) {
        log(`taking over ${lock}: its process ${owner.pid} is gone`);
        await rm(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() - t0 > timeoutMs) {
        throw new SigmaError('SGT_DATA_INVALID', `waited ${Math.round(timeoutMs / 1000)} s for ${lock} (held by ${owner ? `pid ${owner.pid} on ${owner.host}` : 'an unknown process'}); remove it if no process is preparing this corpus`);
      }
      if (!announced) log(`waiting for another process preparing the corpus (${lock})`);
      announced = true;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** An evaluation set: its cached tokens and its raw references (from the SGM/XML, never re-detokenised subwords). */
interface EvalSplit {
  name: string;
  cache: CachedSplit;
  refs: string[];
  /** The sentence ids evaluated (the first evalSentences of a periodic set, else all). */
  ids: Int32Array;
}

/** The options prepareWmt (and `sigmatrain vocab`) get from a config. */
export function wmtOptions(config: Readonly<Config>, log: (m: string) => void) {
  const w = config.data.wmt;
  const corpora = w.corpora.split(',').map((s) => s.trim()).filter((s) => s !== '');
  return {
    root: config.data.root, src: w.src, tgt: w.tgt, valid: [w.valid], test: [w.test], vocabSize: w.vocabSize, clean: { ...w.clean },
    maxSentences: w.vocabSentences, hardLimit: w.hardVocabLimit, log, ...(corpora.length ? { trainCorpora: corpora } : {}), ...(w.workDir ? { workDir: w.workDir } : {}),
    ...(w.translator ? { translator: w.translator } : {}),
  };
}

/** Where the prepare lock lives: next to the vocabulary (workDir, else <root>/.sigmatrain, else the temp directory). */
async function lockDir(config: Readonly<Config>): Promise<string> {
  const dir = config.data.wmt.workDir || join(config.data.root, '.sigmatrain');
  try {
    await mkdir(dir, { recursive: true });
    return dir;
  } catch {
    return join(tmpdir(), `sigmatrain-wmt-lock-${createHash('sha256').update(resolve(config.data.root)).digest('hex').slice(0, 12)}`);
  }
}

class TranslateData implements TaskData<TranslateBatch> {
  readonly stepsPerEpoch: number;
  readonly evalSets: readonly EvalSet[];
  private epochOf = -1;
  private plan: Int32Array[] = [];

  constructor(
    private readonly config: Readonly<Config>,
    private readonly train: CachedSplit,
    /** Training pairs that fit maxPositions (indices into the train split) and their sizes. */
    private readonly keep: Int32Array,
    private readonly sizes: Int32Array,
    readonly initiallySkipped: Skipped[],
    private readonly sets: Map<string, EvalSplit>,
  ) {
    this.evalSets = [{ name: config.data.wmt.valid, when: 'periodic' }, { name: config.data.wmt.test, when: 'final' }];
    // Greedy cuts of the size-sorted order depend on the sizes only, so every epoch has the same count.
    this.stepsPerEpoch = this.epochPlan(0).length / config.data.wmt.plannedWorkers;
  }

  get description(): string {
    const s = [...this.sets.values()].map((e) => `${e.name} ${e.refs.length}`).join(', ');
    return `${this.keep.length} training pairs in ${this.stepsPerEpoch} steps of ≤${this.config.train.maxTokens} tokens × ${this.config.data.wmt.plannedWorkers} workers; eval ${s}`;
  }

  private epochPlan(epoch: number): Int32Array[] {
    if (epoch !== this.epochOf) {
      this.plan = planAllBatches({ sizes: this.sizes, budget: this.config.train.maxTokens, seed: this.config.seed, epoch, worldSize: this.config.data.wmt.plannedWorkers });
      this.epochOf = epoch;
    }
    return this.plan;
  }

  async trainBatch(step: number, worldSize: number, rank: number): Promise<TranslateBatch> {
    const W0 = this.config.data.wmt.plannedWorkers;
    const plan = this.epochPlan(Math.floor(step / this.stepsPerEpoch));
    const k = step % this.stepsPerEpoch;
    const mine = worldSize === W0 ? plan[k * W0 + rank]! : resplit(plan.slice(k * W0, (k + 1) * W0), this.sizes, worldSize, rank);
    const pairs = Int32Array.from(mine, (i) => this.keep[i]!);
    return this.load(this.train, pairs);
  }

  private async load(split: CachedSplit, ids: Int32Array, cap = Infinity): Promise<TranslateBatch> {
    const [srcs, tgts] = await Promise.all([split.src.getMany(ids), split.tgt.getMany(ids)]);
    return makeBatch(srcs, tgts, ids, cap);
  }

  async *valBatches(worldSize: number, rank: number, set?: string): AsyncIterable<TranslateBatch> {
    const e = this.sets.get(set ?? this.config.data.wmt.valid);
    if (!e) throw new Error(`translate: no evaluation set "${set}" (have ${[...this.sets.keys()].join(', ')})`);
    // Sorted by source length, dealt round-robin: ranks get similar work, chunks little padding.
    const order = Array.from(e.ids).sort((a, b) => e.cache.src.lengths[a]! - e.cache.src.lengths[b]! || a - b).filter((_, i) => i % worldSize === rank);
    const chunk = 64;
    for (let i = 0; i < order.length; i += chunk) {
      yield this.load(e.cache, Int32Array.from(order.slice(i, i + chunk)), this.config.model.seq2seq.maxPositions);
    }
  }

  async diagnosticBatch(n: number, worldSize: number, rank: number): Promise<TranslateBatch> {
    const ids = Int32Array.from({ length: Math.min(n, this.keep.length) }, (_, i) => this.keep[i]!).filter((_, i) => i % worldSize === rank);
    return this.load(this.train, ids);
  }

  reference(set: string, id: number): string {
    return this.sets.get(set)!.refs[id]!;
  }

  async close(): Promise<void> {
    await Promise.all([this.train.src.close(), this.train.tgt.close(), ...[...this.sets.values()].flatMap((e) => [e.cache.src.close(), e.cache.tgt.close()])]);
  }
}

/** Opens a prepared corpus's splits and raw references. */
async function openData(config: Readonly<Config>, p: PreparedWmt): Promise<TranslateData> {
  const w = config.data.wmt;
  const maxPos = config.model.seq2seq.maxPositions;
  const train = await openCacheSplit(p.cacheDir, 'train', p.vocab.hash);
  const all = pairSizes(train.src.lengths, train.tgt.lengths, 'max', 1);
  const keepList: number[] = [];
  const skipped: Skipped[] = [];
  for (let i = 0; i < all.length; i++) {
    if (all[i]! <= maxPos) keepList.push(i);
    else skipped.push({ path: `train pair ${i}`, reason: `${all[i]} subword tokens with </s> exceed model.seq2seq.maxPositions ${maxPos}` });
  }
  const keep = Int32Array.from(keepList);
  const sizes = Int32Array.from(keepList, (i) => all[i]!);
  const sets = new Map<string, EvalSplit>();
  for (const [kind, list] of [['valid', p.corpus.valid], ['test', p.corpus.test]] as const) {
    for (const s of list) {
      const cache = await openCacheSplit(p.cacheDir, `${kind}-${s.name}`, p.vocab.hash);
      const refs: string[] = [];
      for await (const pair of readPairs(s.source)) refs.push(pair.tgt);
      if (refs.length !== cache.pairs) {
        throw new SigmaError('SGT_DATA_INVALID', `${kind} set ${s.name}: ${refs.length} references read but ${cache.pairs} cached pairs; delete ${p.cacheDir} to rebuild the cache`);
      }
      const limit = kind === 'valid' && w.evalSentences > 0 ? Math.min(w.evalSentences, refs.length) : refs.length;
      sets.set(s.name, { name: s.name, cache, refs, ids: Int32Array.from({ length: limit }, (_, i) => i) });
    }
  }
  return new TranslateData(config, train, keep, sizes, skipped, sets);
}

const BLEU_KEYS = Object.keys(bleuStatsToRecord({ sysLen: 0, refLen: 0, counts: [0, 0, 0, 0], totals: [0, 0, 0, 0] }));
const CHRF_KEYS = chrfStatsKeys();

export class TranslateTask implements Task<TranslateBatch> {
  readonly name = 'translate' as const;
  readonly unit = 'tokens' as const;
  readonly stepMetrics = ['nll', 'accuracy'] as const;
  readonly evalSums: readonly string[] = ['n', 'nll', 'tokens', ...BLEU_KEYS, ...CHRF_KEYS];
  readonly evalMetrics: readonly EvalMetric[] = [{ name: 'valid_loss', sum: 'nll', per: 'tokens' }];
  readonly evalChunk = 64;
  private built?: Model;
  private data?: TranslateData;
  /** The raw reference of sentence `id` of set `set` (from the data after open; tests may set their own). */
  referenceOf: (set: string, id: number) => string = (set, id) => this.data!.reference(set, id);
  /** The vocabulary this run uses (after open). */
  vocab?: Vocab;

  constructor(private readonly config: Readonly<Config>, private readonly log: (m: string) => void = () => {}) {
    const w = config.data.wmt;
    if (config.data.kind !== 'wmt') throw new SigmaError('SGT_CONFIG_INVALID', `task translate reads data.kind wmt, not ${config.data.kind}: set data.kind: wmt`);
    if (w.valid === w.test) throw new SigmaError('SGT_CONFIG_INVALID', `data.wmt.valid and data.wmt.test are both "${w.valid}": score the test set on data the run did not select on`);
  }

  get model(): Model {
    if (!this.built) throw new Error('translate: the model is built from the vocabulary in open(); call open() first');
    return this.built;
  }

  /** Learns or reuses the vocabulary and token cache (one process at a time per corpus), opens them, builds the model. */
  async open(): Promise<TaskData<TranslateBatch>> {
    const p = await withPrepareLock(await lockDir(this.config), () => prepareWmt({ ...wmtOptions(this.config, this.log), threads: 1 }), this.log);
    this.useVocab(p.vocab);
    this.data = await openData(this.config, p);
    return this.data;
  }

  /** Builds the model for a vocabulary (also used by `sigmatrain translate`, which needs no training data). */
  useVocab(vocab: Vocab): void {
    this.vocab = vocab;
    const m = buildModel(this.config, { vocab: vocab.size, padId: PAD });
    // The vocabulary is part of what the weights mean: a checkpoint records its hash and resuming with another is refused.
    const arch = m.architecture();
    this.built = { ...m, architecture: () => ({ ...arch, vocabHash: vocab.hash }) } as Model;
  }

  split(b: TranslateBatch, maxSamples: number): TranslateBatch[] {
    if (maxSamples <= 0 || b.samples <= maxSamples) return [b];
    const out: TranslateBatch[] = [];
    for (let i = 0; i < b.samples; i += maxSamples) out.push(sliceBatch(b, i, Math.min(b.samples, i + maxSamples)));
    return out;
  }

  tensors(b: TranslateBatch): BatchTensors {
    const n = b.samples;
    const mask = new Float32Array(n * b.T);
    for (let i = 0; i < n; i++) mask.fill(1, i * b.T, i * b.T + b.tgtLengths[i]!);
    return {
      inputs: {
        src: tf.tensor2d(b.src, [n, b.S], 'int32'), tgtIn: tf.tensor2d(b.tgtIn, [n, b.T], 'int32'),
        srcLengths: tf.tensor1d(b.srcLengths, 'int32'), tgtLengths: tf.tensor1d(b.tgtLengths, 'int32'),
      },
      targets: { tokens: tf.tensor2d(b.tgtOut, [n, b.T], 'int32'), mask: tf.tensor2d(mask, [n, b.T]) },
    };
  }

  /** Label-smoothed CE summed over real target tokens; denominator: real target tokens (</s> included). */
  loss(outputs: Record<string, tf.Tensor>, targets: Record<string, tf.Tensor>, o: LossOptions): LossSums {
    const mask = targets.mask as tf.Tensor2D;
    const s = smoothedNllSums(outputs.logits as tf.Tensor3D, targets.tokens as tf.Tensor2D, mask, o.labelSmoothing);
    return { loss: s.loss, denominator: tf.sum(mask) as tf.Scalar, metrics: { nll: s.nll, accuracy: s.hits } };
  }

  /** Teacher-forced nll (valid_loss), then beam search, detokenised text and BLEU/chrF statistics against the raw references. */
  async evaluateBatch(b: TranslateBatch, m: EvalModel, set: string): Promise<Record<string, number>> {
    const vocab = this.vocab!;
    const { inputs, targets } = this.tensors(b);
    const packed = tf.tidy(() => {
      const { outputs } = m.model.forward(m.params, m.buffers, inputs, { training: false, temperature: m.temperature, dropout: 0, attnDropout: 0, seed: 0 });
      const s = smoothedNllSums(outputs.logits as tf.Tensor3D, targets.tokens as tf.Tensor2D, targets.mask as tf.Tensor2D, 0);
      return tf.stack([s.nll, tf.sum(targets.mask)]);
    });
    const [nll, tokens] = Array.from(await packed.data());
    packed.dispose();
    const hyps = await this.translateIds(m, inputs.src as tf.Tensor2D, b.srcLengths);
    tf.dispose([...Object.values(inputs), ...Object.values(targets)]);
    const texts = await Promise.all(hyps.map((h) => vocab.decode(h)));
    const refs = Array.from(b.ids, (id) => this.referenceOf(set, id));
    return {
      n: b.samples, nll: nll!, tokens: tokens!,
      ...bleuStatsToRecord(bleuStats(texts, [refs], { tokenize: '13a' })),
      ...chrfStatsToRecord(chrfStats(texts, [refs])),
    };
  }

  /** Best hypothesis ids per row of src [n, S] (PAD after each length), by beam search (decode.beam = 1: greedy). */
  async translateIds(m: EvalModel, src: tf.Tensor2D, srcLengths: Int32Array): Promise<number[][]> {
    const d = this.config.decode;
    const model = m.model as unknown as Seq2SeqModel;
    const srcMask = tf.tidy(() => tf.cast(tf.less(tf.range(0, src.shape[1], 1, 'int32').reshape([1, -1]), tf.tensor1d(srcLengths, 'int32').reshape([-1, 1])), 'float32') as tf.Tensor2D);
    const { decoder, cache } = model.incremental(m.params, m.buffers, src, srcMask, m.temperature);
    srcMask.dispose();
    const common = {
      bos: BOS, eos: EOS, banned: [PAD, BOS], sourceLengths: srcLengths, maxLenA: d.maxLenA, maxLenB: d.maxLenB,
      maxLenCap: this.config.model.seq2seq.maxPositions - 1,
    };
    if (d.beam === 1) return (await greedySearch(decoder, cache, common)).map((h: Hypothesis) => h.tokens);
    const r = await beamSearch(decoder, cache, { ...common, beam: d.beam, lengthPenalty: d.lenpen, nBest: 1 });
    return r.map((hs) => hs[0]?.tokens ?? []);
  }

  /** valid_bleu/valid_chrf/valid_loss/valid_ppl for the validation set; bleu/chrf/test_loss for the test set. */
  metricsOf(sums: Readonly<Record<string, number>>, set: string): Record<string, number> {
    const prefix = set === this.config.data.wmt.valid ? 'valid_' : '';
    const loss = sums.nll! / sums.tokens!;
    return {
      [`${prefix}bleu`]: bleuFromStats(bleuStatsFromRecord(sums)).score,
      [`${prefix}chrf`]: chrfFromStats(chrfStatsFromRecord(sums)),
      [prefix ? 'valid_loss' : 'test_loss']: loss,
      [prefix ? 'valid_ppl' : 'test_ppl']: Math.exp(loss),
    };
  }
}
