// Speech recognition (LibriSpeech layout): the σReparam CTC acoustic model over log-mel frames, batched by audio
// length (budget.ts), CTC loss summed over utterances, and evaluation by greedy and prefix-beam decoding scored as
// word and character edit sums per evaluation subset (wer_<subset>, cer_<subset>, wer_beam_<subset>, pooled wer), and
// with data.librispeech.lm a prefix beam search fused with a character LM of the training transcripts (wer_lm_<subset>).
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import * as tf from '@tensorflow/tfjs';
import type { Config } from '../../shared/config/index.js';
import { SigmaError } from '../../shared/errors.js';
import { cerStats, editStatsToRecord, errorRate, werStats } from '../../shared/scoring/edit.js';
import { featureFrames, type FeatureOptions } from '../data/audio/features.js';
import { specAugmentSeed, type SpecAugmentOptions } from '../data/audio/specaugment.js';
import { planAllBatches } from '../data/budget.js';
import { buildLibriIndex, DEFAULT_CACHE_DIR, type Utterance } from '../data/librispeech/index.js';
import { AudioPool, InlineAudioLoader, type AudioLoader } from '../data/librispeech/audio_pool.js';
import { CharNgramCounter } from '../decode/charlm.js';
import { decodeBatch, LETTER_TOKENS, textToTokens, tokensToText, type LmFusion } from '../decode/ctc.js';
import { buildModel } from '../models/index.js';
import type { SpeechModel } from '../models/speech.js';
import { ctcLoss, minimumFrames, type CtcTargets } from '../nn/ctc.js';
import type { BatchTensors, EvalMetric, EvalModel, EvalSet, LossOptions, LossSums, Skipped, Task, TaskBatch, TaskData } from './task.js';

export interface AsrBatch extends TaskBatch {
  /** [samples, T, bins] normalised features, zero after each utterance's frames (T = the longest). */
  features: Float32Array;
  T: number;
  bins: number;
  /** [samples] feature frames of each utterance. */
  frames: Int32Array;
  /** [samples, S] letter tokens (textToTokens), 0 after each target's length (S = the longest). */
  targets: Int32Array;
  S: number;
  targetLengths: Int32Array;
  /** Reference transcripts, lower case (what WER and CER compare against). */
  refs: string[];
}

/** An utterance ready for planning: its index entry, feature frames and target tokens. */
export interface AsrItem {
  utt: Utterance;
  frames: number;
  tokens: number[];
}

/** The frame budget per worker per step: train.maxSeconds × 100 frames/s when set, else train.maxFrames. */
export function frameBudget(train: Readonly<Config['train']>): number {
  const b = train.maxSeconds > 0 ? Math.floor(train.maxSeconds * 100) : train.maxFrames;
  if (!(b > 0)) throw new SigmaError('SGT_CONFIG_INVALID', `task asr needs train.maxSeconds > 0 or train.maxFrames > 0 (audio per worker per step), got ${train.maxSeconds} s / ${train.maxFrames} frames`);
  return b;
}

/**
 * Index utterances → items; an utterance whose target cannot fit its CTC output length (too few frames after the
 * front-end stride) is skipped with the reason, since its loss would be infinite.
 */
export function toItems(utts: readonly Utterance[], kind: FeatureOptions['kind'], outputLength: (frames: number) => number, skipped: Skipped[]): AsrItem[] {
  const out: AsrItem[] = [];
  for (const utt of utts) {
    const frames = featureFrames(utt.samples, kind);
    let tokens: number[];
    try {
      tokens = textToTokens(utt.transcript);
    } catch (e) {
      skipped.push({ path: utt.path, reason: `transcript: ${(e as Error).message}` });
      continue;
    }
    const need = minimumFrames(tokens);
    if (outputLength(frames) < need) {
      skipped.push({ path: utt.path, reason: `too short for its transcript: ${frames} frames give ${outputLength(frames)} CTC frames, the ${tokens.length}-token target needs ${need}` });
      continue;
    }
    out.push({ utt, frames, tokens });
  }
  return out;
}

/**
 * This rank's items of a global batch: round-robin over the batch in size order (rank r takes positions r, r + W, …),
 * so each rank gets a similar share of the frames. Items are indices into the epoch's item list.
 */
export function rankShare(batch: Int32Array, frames: ArrayLike<number>, worldSize: number, rank: number): Int32Array {
  const sorted = Array.from(batch).sort((a, b) => frames[a]! - frames[b]! || a - b);
  return Int32Array.from(sorted.filter((_, k) => k % worldSize === rank));
}

/**
 * The epoch's global batches of training utterances (budget.ts, `stepBudget` frames over all workers). An utterance
 * longer than a whole step's budget trains alone, in a step of its own (as ESPnet's batch_bins does): refusing it
 * would make a whole corpus untrainable for one long recording, and dropping it would lose it silently.
 */
export function trainPlan(frames: Int32Array, stepBudget: number, seed: number, epoch: number): Int32Array[] {
  return planAllBatches({ sizes: frames, budget: stepBudget, seed, epoch, worldSize: 1, oversize: 'own-batch' });
}

/** The evaluation chunks of one rank: items k ≡ rank (mod W) in size order, cut greedily so max(frames) × count ≤ budget. */
export function evalChunks(frames: ArrayLike<number>, budget: number, worldSize: number, rank: number): Int32Array[] {
  const order = Array.from({ length: frames.length }, (_, i) => i).sort((a, b) => frames[a]! - frames[b]! || a - b).filter((_, k) => k % worldSize === rank);
  const out: Int32Array[] = [];
  let cur: number[] = [];
  for (const i of order) {
    if (cur.length > 0 && frames[i]! * (cur.length + 1) > budget) {
      out.push(Int32Array.from(cur));
      cur = [];
    }
    cur.push(i);
  }
  if (cur.length > 0) out.push(Int32Array.from(cur));
  return out;
}

/** Batches of utterances: decode + features + SpecAugment in the feature threads (AudioPool) or inline, then padding. */
class UtteranceLoader {
  constructor(private readonly audio: AudioLoader, private readonly features: FeatureOptions, private readonly spec: SpecAugmentOptions | null, private readonly seed: number) {}

  /** Loads items `ids` of `items` into one padded batch; failures are left out and named in `skipped`. */
  async batch(items: readonly AsrItem[], ids: ArrayLike<number>, augment: boolean, epoch: number): Promise<AsrBatch> {
    const bins = this.features.bins ?? 80;
    const jobs = Array.from(ids, (id) => ({ path: items[id]!.utt.path, samples: items[id]!.utt.samples, seed: specAugmentSeed(this.seed, epoch, id) }));
    const results = await this.audio.load(jobs, { features: this.features, specAugment: augment ? this.spec : null });
    const loaded: { item: AsrItem; data: Float32Array; frames: number }[] = [];
    const skipped: Skipped[] = [];
    results.forEach((r, k) => {
      const item = items[ids[k]!]!;
      if (!r.ok) skipped.push({ path: item.utt.path, reason: `${r.reason}: ${r.message}` });
      else loaded.push({ item, data: r.features.data, frames: r.features.frames });
    });
    const n = loaded.length;
    const T = loaded.reduce((m, l) => Math.max(m, l.frames), 0);
    const S = loaded.reduce((m, l) => Math.max(m, l.item.tokens.length), 0);
    const features = new Float32Array(n * T * bins);
    const frames = new Int32Array(n);
    const targets = new Int32Array(n * S);
    const targetLengths = new Int32Array(n);
    loaded.forEach((l, i) => {
      features.set(l.data.subarray(0, l.frames * bins), i * T * bins);
      frames[i] = l.frames;
      targets.set(l.item.tokens, i * S);
      targetLengths[i] = l.item.tokens.length;
    });
    return {
      features, T, bins, frames, targets, S, targetLengths, refs: loaded.map((l) => l.item.utt.transcript.toLowerCase()),
      samples: n, units: frames.reduce((a, x) => a + x, 0), skipped,
    };
  }
}

interface EvalSubset {
  name: string;
  items: AsrItem[];
  frames: Int32Array;
}

/** The transcripts the LM counts: every training utterance's that maps to letter tokens (toItems skips the others). */
export function lmTranscripts(utts: readonly Utterance[]): string[] {
  return utts.map((u) => u.transcript).filter((t) => {
    try {
      textToTokens(t);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * The character LM of data.librispeech.lm (null when lm.order is 0): counted from `transcripts` (the training
 * subsets') and every line of the lm.texts files, streamed. A line that is not a transcript is an error naming its file
 * and line.
 */
export async function speechLm(l: Readonly<Config['data']['librispeech']>, transcripts: Iterable<string>): Promise<LmFusion | null> {
  if (l.lm.order === 0) return null;
  const c = new CharNgramCounter(l.lm.order);
  for (const t of transcripts) c.add(t);
  for (const file of l.lm.texts.split(',').map((f) => f.trim()).filter((f) => f !== '')) {
    let line = 0;
    try {
      for await (const text of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
        line++;
        if (text.trim() !== '') c.add(text.trim());
      }
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code ? `cannot read it (${(e as Error).message})` : `line ${line}: ${(e as Error).message}`;
      throw new SigmaError('SGT_DATA_INVALID', `data.librispeech.lm.texts: ${file}: ${why}`);
    }
  }
  return { model: c.build(), weight: l.lm.weight, bonus: l.lm.bonus };
}

class AsrData implements TaskData<AsrBatch> {
  readonly stepsPerEpoch: number;
  readonly evalSets: readonly EvalSet[];
  private readonly trainFrames: Int32Array;
  private plan: { epoch: number; batches: Int32Array[] } | null = null;
  private prefetched: { key: string; batch: Promise<AsrBatch> } | null = null;

  constructor(
    private readonly train: AsrItem[],
    private readonly evals: EvalSubset[],
    readonly initiallySkipped: Skipped[],
    private readonly loader: UtteranceLoader,
    private readonly audio: AudioLoader,
    private readonly budget: number,
    private readonly budgetWorkers: number,
    private readonly seed: number,
    /** What else the description says (the LM). */
    private readonly extra = '',
  ) {
    this.trainFrames = Int32Array.from(train, (it) => it.frames);
    // The batch count does not depend on the epoch: sizes are sorted before the greedy cut (ties only reorder).
    this.stepsPerEpoch = this.batchesOf(0).length;
    this.evalSets = evals.map((e) => ({ name: e.name, when: 'periodic' as const }));
  }

  get description(): string {
    const h = (items: AsrItem[]) => (items.reduce((s, it) => s + it.utt.samples, 0) / 16000 / 3600).toFixed(2);
    const step = this.budget * this.budgetWorkers;
    const long = this.trainFrames.filter((f) => f > step).length;
    return `${this.train.length} training utterances (${h(this.train)} h), ${this.stepsPerEpoch} steps per epoch of ≤${this.budgetWorkers} × ${this.budget} frames; ` +
      (long > 0 ? `${long} utterances longer than a step's ${step} frames train alone, one step each (raise train.maxSeconds to batch them); ` : '') +
      `eval ${this.evals.map((e) => `${e.name} ${e.items.length} (${h(e.items)} h)`).join(', ')}${this.extra}`;
  }

  /** The epoch's global batches: the budget × budgetWorkers per step, so a step is the same for any number of workers. */
  private batchesOf(epoch: number): Int32Array[] {
    if (this.plan?.epoch !== epoch) {
      this.plan = { epoch, batches: trainPlan(this.trainFrames, this.budget * this.budgetWorkers, this.seed, epoch) };
    }
    return this.plan.batches;
  }

  private load(step: number, worldSize: number, rank: number): Promise<AsrBatch> {
    const epoch = Math.floor(step / this.stepsPerEpoch);
    const ids = rankShare(this.batchesOf(epoch)[step % this.stepsPerEpoch]!, this.trainFrames, worldSize, rank);
    return this.loader.batch(this.train, ids, true, epoch);
  }

  async trainBatch(step: number, worldSize: number, rank: number): Promise<AsrBatch> {
    const key = `${step}/${worldSize}/${rank}`;
    const p = this.prefetched?.key === key ? this.prefetched.batch : this.load(step, worldSize, rank);
    // Decode the next step's utterances while this one trains (the file reads and FLAC decoding overlap).
    const next = this.load(step + 1, worldSize, rank);
    next.catch(() => undefined);
    this.prefetched = { key: `${step + 1}/${worldSize}/${rank}`, batch: next };
    return p;
  }

  async *valBatches(worldSize: number, rank: number, set?: string): AsyncIterable<AsrBatch> {
    const e = this.evals.find((s) => s.name === set) ?? (set === undefined || set === 'val' ? this.evals[0] : undefined);
    if (!e) throw new SigmaError('SGT_DATA_INVALID', `asr: no evaluation subset "${set}" (data.librispeech.eval is ${this.evals.map((s) => s.name).join(',')})`);
    for (const ids of evalChunks(e.frames, this.budget, worldSize, rank)) yield await this.loader.batch(e.items, ids, false, 0);
  }

  async diagnosticBatch(n: number, worldSize: number, rank: number): Promise<AsrBatch> {
    const ids = Int32Array.from({ length: Math.min(n, this.train.length) }, (_, i) => i).filter((i) => i % worldSize === rank);
    return this.loader.batch(this.train, ids, false, 0);
  }

  async close(): Promise<void> {
    await this.prefetched?.batch.catch(() => undefined);
    this.prefetched = null;
    await this.audio.close();
  }
}

export class AsrTask implements Task<AsrBatch> {
  readonly name = 'asr' as const;
  readonly unit = 'frames' as const;
  readonly model: SpeechModel;
  readonly stepMetrics = [] as const;
  readonly evalSums: readonly string[] = [
    'n', 'loss', 'frames',
    ...Object.keys(editStatsToRecord(werStats([], []), 'wer')),
    ...Object.keys(editStatsToRecord(cerStats([], []), 'cer')),
    ...Object.keys(editStatsToRecord(werStats([], []), 'werb')),
    ...Object.keys(editStatsToRecord(werStats([], []), 'werl')),
  ];
  readonly evalMetrics: readonly EvalMetric[] = [{ name: 'loss', sum: 'loss', per: 'n' }];
  readonly evalChunk = 64;
  private readonly host = new WeakMap<tf.Tensor, CtcTargets>();
  private readonly features: FeatureOptions;
  /** The fused character LM (data.librispeech.lm), made by open(); null without one. */
  private lm: LmFusion | null = null;

  constructor(private readonly config: Readonly<Config>, model?: SpeechModel) {
    const l = config.data.librispeech;
    if (config.data.kind !== 'librispeech') {
      throw new SigmaError('SGT_CONFIG_INVALID', `task asr reads data.kind librispeech, not ${config.data.kind}: set data.kind: librispeech`);
    }
    this.features = { kind: l.features.kind, bins: l.features.bins };
    this.model = model ?? (buildModel(config, { vocab: LETTER_TOKENS.length, features: l.features.bins }) as SpeechModel);
    frameBudget(config.train);
  }

  async open(): Promise<AsrData> {
    const c = this.config;
    const l = c.data.librispeech;
    const clash = l.eval.find((s) => l.train.includes(s));
    if (clash) throw new SigmaError('SGT_CONFIG_INVALID', `data.librispeech: subset "${clash}" is in both train and eval; evaluate on held-out subsets`);
    const index = await buildLibriIndex({
      root: c.data.root, subsets: [...l.train, ...l.eval], threads: l.indexThreads, cacheDir: l.cacheDir === '' ? DEFAULT_CACHE_DIR : l.cacheDir,
    });
    const skipped: Skipped[] = index.subsets.flatMap((s) => s.skipped.map((r) => ({ path: r.path, reason: `${r.reason}: ${r.message}` })));
    const out = (f: number) => this.model.outputLength(f);
    const of = (name: string) => index.subsets.find((s) => s.name === name)!.utterances;
    const train = toItems(l.train.flatMap(of), l.features.kind, out, skipped);
    if (train.length === 0) throw new SigmaError('SGT_DATA_INVALID', `data.librispeech.train ${l.train.join(',')}: no usable utterance (see the skipped items in the log)`);
    const evals = l.eval.map((name) => {
      const items = toItems(of(name), l.features.kind, out, skipped);
      return { name, items, frames: Int32Array.from(items, (it) => it.frames) };
    });
    const lmTexts = lmTranscripts(l.train.flatMap(of));
    this.lm = await speechLm(l, lmTexts);
    const lmNote = this.lm ? `; character ${l.lm.order}-gram LM of the ${lmTexts.length} training transcripts${l.lm.texts ? ` and ${l.lm.texts}` : ''} for wer_lm_<subset> (weight ${l.lm.weight}, bonus ${l.lm.bonus})` : '';
    const s = l.specAugment;
    const spec = s.enabled ? { freqMasks: s.freqMasks, freqWidth: s.freqWidth, timeMasks: s.timeMasks, timeWidth: s.timeWidth, maxTimeFraction: s.maxTimeFraction, freqWarp: s.freqWarp } : null;
    const audio: AudioLoader = l.featureThreads > 0 ? new AudioPool({ threads: l.featureThreads }) : new InlineAudioLoader();
    return new AsrData(train, evals, skipped, new UtteranceLoader(audio, this.features, spec, c.seed), audio, frameBudget(c.train), c.train.budgetWorkers, c.seed, lmNote);
  }

  split(b: AsrBatch, maxSamples: number): AsrBatch[] {
    if (maxSamples <= 0 || b.samples <= maxSamples) return [b];
    const out: AsrBatch[] = [];
    for (let i = 0; i < b.samples; i += maxSamples) {
      const n = Math.min(maxSamples, b.samples - i);
      const frames = b.frames.subarray(i, i + n);
      out.push({
        ...b, features: b.features.subarray(i * b.T * b.bins, (i + n) * b.T * b.bins), frames,
        targets: b.targets.subarray(i * b.S, (i + n) * b.S), targetLengths: b.targetLengths.subarray(i, i + n), refs: b.refs.slice(i, i + n),
        samples: n, units: frames.reduce((a, x) => a + x, 0), skipped: [],
      });
    }
    return out;
  }

  tensors(b: AsrBatch): BatchTensors {
    const n = b.samples;
    const tokens = tf.tensor2d(b.targets.subarray(0, n * b.S), [n, b.S], 'int32');
    // The CTC loss runs on the host arrays (fast path) or needs them for its masks (differentiable path): kept beside the
    // target tensor instead of read back from it.
    this.host.set(tokens, {
      targets: b.targets.subarray(0, n * b.S), targetLengths: b.targetLengths.subarray(0, n),
      inputLengths: Int32Array.from(b.frames.subarray(0, n), (f) => this.model.outputLength(f)),
    });
    return {
      inputs: { features: tf.tensor3d(b.features.subarray(0, n * b.T * b.bins), [n, b.T, b.bins]), lengths: tf.tensor1d(b.frames.subarray(0, n), 'int32') },
      targets: { tokens },
    };
  }

  /**
   * Σ over utterances of the CTC negative log-likelihood; denominator: utterances. Per utterance, not per frame or
   * per token: wav2letter's CTC criterion (the paper's setup) sums each utterance's loss and averages over the batch,
   * so long utterances weigh more, as in the recipe whose learning rates the configs copy. `secondOrder` (the
   * sharpness HVPs) takes the differentiable CTC, whose gradient can itself be differentiated.
   */
  loss(outputs: Record<string, tf.Tensor>, targets: Record<string, tf.Tensor>, o: LossOptions): LossSums {
    const logits = outputs.logits as tf.Tensor3D;
    const host = this.host.get(targets.tokens!);
    if (!host) throw new Error('asr: loss targets were not made by AsrTask.tensors');
    const loss = ctcLoss(logits, host, { reduction: 'sum', impl: o.secondOrder ? 'differentiable' : 'fast' }) as tf.Scalar;
    return { loss, denominator: tf.scalar(logits.shape[0]), metrics: {} };
  }

  /** Greedy and prefix-beam transcripts of one batch, scored against the references; one readback of logits + loss. */
  async evaluateBatch(batch: AsrBatch, m: EvalModel, _set: string): Promise<Record<string, number>> {
    const sums: Record<string, number> = Object.fromEntries(this.evalSums.map((k) => [k, 0]));
    for (const chunk of this.split(batch, this.evalChunk)) {
      if (chunk.samples === 0) continue;
      const { inputs, targets } = this.tensors(chunk);
      const host = this.host.get(targets.tokens!)!;
      const packed = tf.tidy(() => {
        const { outputs } = m.model.forward(m.params, m.buffers, inputs, { training: false, temperature: m.temperature, dropout: 0, attnDropout: 0, seed: 0 });
        const logits = outputs.logits as tf.Tensor3D;
        const loss = ctcLoss(logits, host, { reduction: 'sum', zeroInfinity: true });
        return tf.concat([logits.reshape([-1]), loss.reshape([1])]);
      });
      tf.dispose([...Object.values(inputs), ...Object.values(targets)]);
      const v = (await packed.data()) as Float32Array;
      const shape = packed.shape;
      packed.dispose();
      const n = chunk.samples;
      const C = LETTER_TOKENS.length;
      const Tp = (shape[0]! - 1) / (n * C);
      const scores = v.subarray(0, n * Tp * C);
      const lengths = host.inputLengths;
      const greedy = decodeBatch(scores, [n, Tp, C], lengths, { method: 'greedy' }).map(tokensToText);
      const beam = decodeBatch(scores, [n, Tp, C], lengths, { method: 'beam', beamWidth: this.config.data.librispeech.beamWidth }).map(tokensToText);
      const add = (r: Record<string, number>) => { for (const [k, x] of Object.entries(r)) sums[k]! += x; };
      add(editStatsToRecord(werStats(chunk.refs, greedy), 'wer'));
      add(editStatsToRecord(cerStats(chunk.refs, greedy), 'cer'));
      add(editStatsToRecord(werStats(chunk.refs, beam), 'werb'));
      if (this.lm) {
        const fused = decodeBatch(scores, [n, Tp, C], lengths, { method: 'beam', beamWidth: this.config.data.librispeech.beamWidth, lm: this.lm }).map(tokensToText);
        add(editStatsToRecord(werStats(chunk.refs, fused), 'werl'));
      }
      sums.n! += n;
      sums.loss! += v[v.length - 1]!;
      sums.frames! += chunk.units;
    }
    return sums;
  }

  /** wer_<set> (greedy), cer_<set>, wer_beam_<set>, wer_lm_<set> (beam with the LM, when there is one), loss_<set> (CTC per utterance). */
  metricsOf(s: Readonly<Record<string, number>>, set: string): Record<string, number> {
    return {
      [`wer_${set}`]: errorRate({ errors: s.wer_errors!, refLength: s.wer_ref_length! }),
      [`cer_${set}`]: errorRate({ errors: s.cer_errors!, refLength: s.cer_ref_length! }),
      [`wer_beam_${set}`]: errorRate({ errors: s.werb_errors!, refLength: s.werb_ref_length! }),
      ...(this.config.data.librispeech.lm.order > 0 ? { [`wer_lm_${set}`]: errorRate({ errors: s.werl_errors!, refLength: s.werl_ref_length! }) } : {}),
      [`loss_${set}`]: s.loss! / s.n!,
    };
  }

  /** The headline: greedy WER pooled over every periodic evaluation subset (word errors / reference words). */
  pooledMetricsOf(s: Readonly<Record<string, number>>): Record<string, number> {
    return { wer: errorRate({ errors: s.wer_errors!, refLength: s.wer_ref_length! }) };
  }
}
