// A toy sequence task that proves the seams: reverse a random token sequence (lengths vary, token 0 pads) with the
// encoder family. Batches are counted in tokens; loss and accuracy are sums over real target tokens. Data comes from
// the seed alone (train and validation sets drawn once), batched by a BatchPlanner (data/batching.ts; by count here).
import * as tf from '@tensorflow/tfjs';
import type { Config } from '../../shared/config/index.js';
import { SigmaError } from '../../shared/errors.js';
import { Rng, deriveSeed } from '../rng.js';
import { splitForRank } from '../data/sampler.js';
import { countPlanner, type BatchPlanner } from '../data/batching.js';
import { buildModel } from '../models/index.js';
import type { Model } from '../models/model.js';
import { logSoftmax } from '../kernels/ops.js';
import type { BatchTensors, EvalMetric, LossSums, Task, TaskBatch, TaskData } from './task.js';


export interface ReverseBatch extends TaskBatch {
  /** [samples, maxLength] tokens, PAD after each sequence's length. */
  tokens: Int32Array;
  /** [samples, maxLength] the reversed sequence, PAD after the length. */
  targets: Int32Array;
  lengths: Int32Array;
}

interface Sequences {
  tokens: Int32Array;
  lengths: Int32Array;
  n: number;
}

/** `n` sequences of lengths in [minLength, maxLength], tokens uniform in 1..vocab-1, from (seed, split). */
export function drawSequences(n: number, vocab: number, minLength: number, maxLength: number, seed: number, split: number): Sequences {
  const rng = new Rng(deriveSeed(seed, split, 0x7e7e));
  const tokens = new Int32Array(n * maxLength);
  const lengths = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const len = minLength + rng.int(maxLength - minLength + 1);
    lengths[i] = len;
    for (let t = 0; t < len; t++) tokens[i * maxLength + t] = 1 + rng.int(vocab - 1);
  }
  return { tokens, lengths, n };
}

function gather(s: Sequences, ids: Int32Array, L: number): ReverseBatch {
  const n = ids.length;
  const tokens = new Int32Array(n * L);
  const targets = new Int32Array(n * L);
  const lengths = new Int32Array(n);
  let units = 0;
  for (let i = 0; i < n; i++) {
    const id = ids[i];
    const len = s.lengths[id];
    lengths[i] = len;
    units += len;
    for (let t = 0; t < len; t++) {
      tokens[i * L + t] = s.tokens[id * L + t];
      targets[i * L + t] = s.tokens[id * L + len - 1 - t];
    }
  }
  return { tokens, targets, lengths, samples: n, units, skipped: [] };
}

class ReverseData implements TaskData<ReverseBatch> {
  readonly stepsPerEpoch: number;
  readonly initiallySkipped = [];
  private planKey = '';
  private plan: Int32Array[] = [];
  constructor(
    private readonly train: Sequences, private readonly val: Sequences, private readonly L: number, private readonly config: Readonly<Config>,
    private readonly planner: BatchPlanner,
  ) {
    // Every rank gets the same number of batches; a count plan's length does not depend on the world size.
    this.stepsPerEpoch = planner({ sizes: train.lengths, seed: config.seed, epoch: 0, rank: 0, worldSize: 1 }).length;
  }
  get description(): string {
    return `${this.train.n} train and ${this.val.n} val sequences of ≤${this.L} tokens`;
  }
  async trainBatch(step: number, worldSize: number, rank: number): Promise<ReverseBatch> {
    const epoch = Math.floor(step / this.stepsPerEpoch);
    const key = `${epoch}/${worldSize}/${rank}`;
    if (key !== this.planKey) {
      this.plan = this.planner({ sizes: this.train.lengths, seed: this.config.seed, epoch, rank, worldSize });
      this.planKey = key;
    }
    return gather(this.train, this.plan[step % this.stepsPerEpoch], this.L);
  }
  async *valBatches(worldSize: number, rank: number): AsyncIterable<ReverseBatch> {
    yield gather(this.val, splitForRank(Int32Array.from({ length: this.val.n }, (_, i) => i), worldSize, rank), this.L);
  }
  async diagnosticBatch(n: number, worldSize: number, rank: number): Promise<ReverseBatch> {
    return gather(this.train, splitForRank(Int32Array.from({ length: Math.min(n, this.train.n) }, (_, i) => i), worldSize, rank), this.L);
  }
  async close(): Promise<void> {}
}

export class ReverseTask implements Task<ReverseBatch> {
  readonly name = 'reverse' as const;
  readonly unit = 'tokens' as const;
  readonly model: Model;
  readonly stepMetrics = ['accuracy'] as const;
  readonly evalSums = ['correct', 'exact', 'loss', 'tokens', 'n'] as const;
  readonly evalMetrics: readonly EvalMetric[] = [
    { name: 'val_token_acc', sum: 'correct', per: 'tokens' },
    { name: 'val_seq_acc', sum: 'exact', per: 'n' },
    { name: 'val_loss', sum: 'loss', per: 'tokens' },
  ];
  readonly evalChunk = 256;
  private readonly L: number;
  private readonly vocab: number;

  constructor(private readonly config: Readonly<Config>) {
    const r = config.data.reverse;
    if (r.minLength > r.maxLength) throw new SigmaError('SGT_CONFIG_INVALID', `data.reverse.minLength ${r.minLength} exceeds data.reverse.maxLength ${r.maxLength}`);
    if (r.vocab < 2) throw new SigmaError('SGT_CONFIG_INVALID', `data.reverse.vocab ${r.vocab} leaves no real token (0 is padding): use ≥ 2`);
    this.L = r.maxLength;
    this.vocab = r.vocab;
    this.model = buildModel(config, { vocab: r.vocab, maxLength: r.maxLength });
  }

  async open(): Promise<ReverseData> {
    const r = this.config.data.reverse;
    return new ReverseData(
      drawSequences(r.trainSize, r.vocab, r.minLength, r.maxLength, this.config.seed, 0),
      drawSequences(r.valSize, r.vocab, r.minLength, r.maxLength, this.config.seed, 1),
      this.L, this.config, countPlanner(this.config.train.globalBatch),
    );
  }

  split(b: ReverseBatch, maxSamples: number): ReverseBatch[] {
    if (maxSamples <= 0 || b.samples <= maxSamples) return [b];
    const out: ReverseBatch[] = [];
    const L = this.L;
    for (let i = 0; i < b.samples; i += maxSamples) {
      const n = Math.min(maxSamples, b.samples - i);
      const lengths = b.lengths.subarray(i, i + n);
      out.push({
        tokens: b.tokens.subarray(i * L, (i + n) * L), targets: b.targets.subarray(i * L, (i + n) * L), lengths,
        samples: n, units: lengths.reduce((a, x) => a + x, 0), skipped: [],
      });
    }
    return out;
  }

  tensors(b: ReverseBatch): BatchTensors {
    const L = this.L;
    const n = b.samples;
    const mask = new Float32Array(n * L);
    for (let i = 0; i < n; i++) mask.fill(1, i * L, i * L + b.lengths[i]);
    const m = tf.tensor2d(mask, [n, L]);
    return {
      inputs: { tokens: tf.tensor2d(b.tokens.subarray(0, n * L), [n, L], 'int32'), mask: m },
      targets: { tokens: tf.tensor2d(b.targets.subarray(0, n * L), [n, L], 'int32'), mask: m.clone() },
    };
  }

  /** Σ over real target tokens of −log p(target); accuracy: correct real tokens; denominator: real tokens. */
  loss(outputs: Record<string, tf.Tensor>, targets: Record<string, tf.Tensor>): LossSums {
    const { nll, hits, mask } = this.perToken(outputs, targets);
    return { loss: tf.sum(tf.mul(nll, mask)) as tf.Scalar, denominator: tf.sum(mask) as tf.Scalar, metrics: { accuracy: tf.sum(tf.mul(hits, mask)) as tf.Scalar } };
  }

  evaluate(outputs: Record<string, tf.Tensor>, targets: Record<string, tf.Tensor>): Record<string, tf.Scalar> {
    const { nll, hits, mask } = this.perToken(outputs, targets);
    const wrong = tf.sum(tf.mul(tf.sub(1, hits), mask), 1); // [B] wrong real tokens per sequence
    return {
      correct: tf.sum(tf.mul(hits, mask)) as tf.Scalar,
      exact: tf.sum(tf.cast(tf.equal(wrong, 0), 'float32')) as tf.Scalar,
      loss: tf.sum(tf.mul(nll, mask)) as tf.Scalar,
      tokens: tf.sum(mask) as tf.Scalar,
      n: tf.scalar(mask.shape[0]),
    };
  }

  /** [B, T] negative log-likelihood and 0/1 hits of each position, and the real-token mask. */
  private perToken(outputs: Record<string, tf.Tensor>, targets: Record<string, tf.Tensor>) {
    const logits = outputs.logits as tf.Tensor3D; // [B, T, V]
    const y = targets.tokens as tf.Tensor2D;
    const logp = logSoftmax(logits);
    const nll = tf.neg(tf.sum(tf.mul(tf.oneHot(y, this.vocab), logp), -1)); // [B, T]
    const hits = tf.cast(tf.equal(tf.argMax(logits, -1), y), 'float32');
    return { nll, hits, mask: targets.mask };
  }
}
