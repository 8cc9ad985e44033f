// Beam search and greedy decoding: a hand-worked Markov example (finished hypotheses, length penalty, max length,
// per-sentence lengths), beam 1 = greedy, cached = uncached decoding, and a tiny model trained to reverse sequences.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../../worker/backend.js';
import { beamSearch, greedySearch, type IncrementalDecoder, type Hypothesis } from '../../../../worker/decode/beam.js';
import type { Seq2SeqModel } from '../../../../worker/models/seq2seq.js';
import { sparseSoftmaxCrossEntropy } from '../../../../worker/kernels/ops.js';
import { Rng } from '../../../../worker/rng.js';
import { BOS, EOS, EVAL, PAD, disposeBuilt, seq2seq, type Built } from '../../../helpers/seq2seq.js';

// ---- A first-order Markov "model" with hand-picked probabilities: next-token p depends on the last token only.
const A = 3, B = 4;
/** p(next | last) over [pad, bos, eos, A, B]. */
const TABLE: Record<number, number[]> = {
  [BOS]: [0, 0, 0.01, 0.59, 0.4],
  [A]: [0, 0, 0.25, 0.45, 0.3],
  [B]: [0, 0, 0.9, 0.05, 0.05],
};
const lg = Math.log;

/** The cache is a per-row step counter, reordered with the beams, so a bad gather shows up as a wrong count. */
function markov(): IncrementalDecoder<{ steps: tf.Tensor1D }> {
  const rows = [0, 1, 2, 3, 4].map((t) => (TABLE[t] ?? [0.2, 0.2, 0.2, 0.2, 0.2]).map((p) => (p > 0 ? Math.log(p) : -1e4)));
  return {
    vocabSize: 5,
    step: (c, tokens) => tf.tidy(() => ({ logProbs: tf.gather(tf.tensor2d(rows), tokens) as tf.Tensor2D, cache: { steps: tf.add(c.steps, 1) as tf.Tensor1D } })),
    reorder: (c, idx) => ({ steps: tf.gather(c.steps, idx) as tf.Tensor1D }),
    tensors: (c) => [c.steps],
  };
}
const markovOpts = { bos: BOS, eos: EOS, banned: [PAD, BOS], maxLenA: 0, maxLenB: 3 };

function closeTo(a: number, b: number, what: string): void {
  assert.ok(Math.abs(a - b) <= 1e-5 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);
}

test('beam 2 on the Markov example: finds B·EOS where greedy takes A·A·A, keeps both finished hypotheses, fairseq length penalty', async () => {
  await initBackend('cpu');
  const before = tf.memory().numTensors;
  // Worked by hand. Step 0 keeps A (.59), B (.4). Step 1 candidates: B→EOS .36 (finished, len 2), A→A .2655,
  // A→B .177, A→EOS .1475 (not in the top 2: dropped). Step 2: AB→EOS .1593 is best → second finished: done.
  const [hyps] = await beamSearch(markov(), { steps: tf.zeros([1]) as tf.Tensor1D }, { ...markovOpts, sourceLengths: [1], beam: 2, lengthPenalty: 1 });
  assert.deepEqual(hyps.map((h) => h.tokens), [[B], [A, B]]);
  closeTo(hyps[0].logProb, lg(0.4 * 0.9), 'B EOS log p');
  closeTo(hyps[0].score, lg(0.4 * 0.9) / 2, 'B EOS score = log p / 2¹');
  closeTo(hyps[1].logProb, lg(0.59 * 0.3 * 0.9), 'A B EOS log p');
  closeTo(hyps[1].score, lg(0.59 * 0.3 * 0.9) / 3, 'A B EOS score');
  // GNMT's penalty ((5 + len)/6)^α ranks the same two.
  const [g] = await beamSearch(markov(), { steps: tf.zeros([1]) as tf.Tensor1D }, { ...markovOpts, sourceLengths: [1], beam: 2, lengthPenalty: 0.6, lengthPenaltyKind: 'gnmt' });
  closeTo(g[0].score, lg(0.36) / Math.pow(7 / 6, 0.6), 'gnmt score');
  // Greedy: A (.59), A (.45), A (.45), then the length limit (3) ends it; its log p includes the EOS.
  const [gr] = await greedySearch(markov(), { steps: tf.zeros([1]) as tf.Tensor1D }, { ...markovOpts, sourceLengths: [1] });
  assert.deepEqual(gr.tokens, [A, A, A]);
  closeTo(gr.logProb, lg(0.59 * 0.45 * 0.45 * 0.25), 'greedy log p');
  assert.equal(tf.memory().numTensors, before, 'searches dispose their caches and temporaries');
});

test('max length a·S + b per sentence: forced EOS for every live beam; sentences leave the batch as they finish', async () => {
  await initBackend('cpu');
  // Source lengths 1 and 3 with a = 1, b = 0: sentence 0 may emit 1 token, sentence 1 up to 3.
  const opts = { ...markovOpts, maxLenA: 1, maxLenB: 0, sourceLengths: [1, 3, 1], beam: 2, lengthPenalty: 1 };
  const out = await beamSearch(markov(), { steps: tf.zeros([3]) as tf.Tensor1D }, opts);
  // Sentence 0: after step 0 the beams A, B must end: A·EOS .59·.25 = .1475, B·EOS .36.
  assert.deepEqual(out[0].map((h) => h.tokens), [[B], [A]]);
  closeTo(out[0][1].logProb, lg(0.59 * 0.25), 'forced A EOS');
  assert.deepEqual(out[2], out[0], 'identical sentences, identical results');
  // Sentence 1 behaves as alone with max length 3 (the other sentences left the batch under it).
  const [alone] = await beamSearch(markov(), { steps: tf.zeros([1]) as tf.Tensor1D }, { ...markovOpts, sourceLengths: [1], beam: 2, lengthPenalty: 1 });
  assert.deepEqual(out[1], alone);
  // nBest and the hypotheses' order.
  const [one] = await beamSearch(markov(), { steps: tf.zeros([1]) as tf.Tensor1D }, { ...markovOpts, sourceLengths: [1], beam: 2, lengthPenalty: 1, nBest: 1 });
  assert.equal(one.length, 1);
  await assert.rejects(beamSearch(markov(), { steps: tf.zeros([1]) as tf.Tensor1D }, { ...markovOpts, sourceLengths: [1], beam: 2, lengthPenalty: 1, banned: [EOS] }), /eos 2 is banned/);
});

// ---- The real model.

/** Decoding by re-running the full forward on the whole prefix each step: no key/value cache. */
function uncached(model: Seq2SeqModel, params: Map<string, tf.Tensor>, buffers: Map<string, tf.Tensor>, vocab: number) {
  type C = { src: tf.Tensor2D; srcMask: tf.Tensor2D; prefix?: tf.Tensor2D };
  const dec: IncrementalDecoder<C> = {
    vocabSize: vocab,
    step: (c, tokens) => {
      const prefix = tf.tidy(() => (c.prefix ? tf.concat([c.prefix, tokens.reshape([-1, 1])], 1) : tokens.reshape([-1, 1])) as tf.Tensor2D);
      const logProbs = tf.tidy(() => {
        const logits = model.forward(params, buffers, { src: c.src, srcMask: c.srcMask, tgtIn: prefix }, EVAL).outputs['logits'];
        const [R, T, V] = logits.shape;
        return tf.logSoftmax(tf.slice(logits, [0, T - 1, 0], [R, 1, V]).reshape([R, V])) as tf.Tensor2D;
      });
      return { logProbs, cache: { ...c, prefix } };
    },
    reorder: (c, idx) => tf.tidy(() => ({
      src: tf.gather(c.src, idx) as tf.Tensor2D, srcMask: tf.gather(c.srcMask, idx) as tf.Tensor2D,
      prefix: c.prefix && (tf.gather(c.prefix, idx) as tf.Tensor2D),
    }) as unknown as tf.TensorContainer) as unknown as C,
    tensors: (c) => [c.src, c.srcMask, ...(c.prefix ? [c.prefix] : [])],
  };
  return dec;
}

/** Sources (PAD-padded) with their lengths. */
function batchOf(rows: number[][]): { src: tf.Tensor2D; srcMask: tf.Tensor2D; lengths: number[] } {
  const S = Math.max(...rows.map((r) => r.length));
  return {
    src: tf.tensor2d(rows.map((r) => [...r, ...Array(S - r.length).fill(PAD)]), [rows.length, S], 'int32'),
    srcMask: tf.tensor2d(rows.map((r) => r.map(() => 1).concat(Array(S - r.length).fill(0))), [rows.length, S]),
    lengths: rows.map((r) => r.length),
  };
}

function sameHypotheses(a: Hypothesis[][], b: Hypothesis[][], what: string): void {
  assert.equal(a.length, b.length);
  a.forEach((hs, s) => {
    assert.deepEqual(hs.map((h) => h.tokens), b[s].map((h) => h.tokens), `${what}: sentence ${s} tokens`);
    hs.forEach((h, i) => closeTo(h.score, b[s][i].score, `${what}: sentence ${s} hypothesis ${i} score`));
  });
}

const SOURCES = [[3, 4, 5, 6, 7], [8, 9], [10, 11, 12, 3], [5]];
const searchOpts = (lengths: number[]) => ({ bos: BOS, eos: EOS, banned: [PAD, BOS], sourceLengths: lengths, maxLenA: 1, maxLenB: 2, lengthPenalty: 1 });

test('random model: beam 1 equals greedy; beam 4 with the key/value cache equals beam 4 recomputing every prefix', async () => {
  await initBackend('cpu');
  // Perturbed LayerNorm/γ/bias (0.3) so that the random model's outputs differ per sentence and position.
  for (const over of [{ norm: 'post' as const }, { norm: 'pre' as const, qkv: 'joint' as const }]) {
    const b = seq2seq({ variant: 'tiny', ...over }, 0.3);
    const before = tf.memory().numTensors;
    const run = async (kind: 'greedy' | 'beam1' | 'beam4' | 'beam4-uncached') => {
      const { src, srcMask, lengths } = batchOf(SOURCES);
      const o = searchOpts(lengths);
      let out: Hypothesis[][];
      if (kind === 'beam4-uncached') {
        out = await beamSearch(uncached(b.model, b.params, b.buffers, 13), { src, srcMask }, { ...o, beam: 4 });
      } else {
        const { decoder, cache } = b.model.incremental(b.params, b.buffers, src, srcMask);
        out = kind === 'greedy' ? (await greedySearch(decoder, cache, o)).map((h) => [h]) : await beamSearch(decoder, cache, { ...o, beam: kind === 'beam1' ? 1 : 4 });
        tf.dispose([src, srcMask]);
      }
      return out;
    };
    const greedy = await run('greedy');
    const beam1 = await run('beam1');
    assert.deepEqual(beam1.map((h) => h[0].tokens), greedy.map((h) => h[0].tokens), `${over.norm}: beam 1 vs greedy`);
    beam1.forEach((h, s) => closeTo(h[0].logProb, greedy[s][0].logProb, `${over.norm}: sentence ${s} log p`));
    const cached = await run('beam4');
    const full = await run('beam4-uncached');
    sameHypotheses(cached, full, `${over.norm}: cached vs uncached`);
    assert.ok(cached.every((h) => h.length === 4), 'four finished hypotheses per sentence');
    cached.forEach((hs, s) => hs.forEach((h) => assert.ok(h.tokens.length <= SOURCES[s].length + 2, 'max length a·S + b')));
    assert.equal(tf.memory().numTensors, before, 'no tensors left behind');
    disposeBuilt(b);
  }
});

// ---- Overfitting a tiny reversal task.

/** Sequences of 2–4 symbols out of 6 (ids 3…8), reversed. */
function reversalBatch(rng: Rng, n: number): { src: number[][]; tgtIn: number[][]; tgtOut: number[][] } {
  const src: number[][] = [], tgtIn: number[][] = [], tgtOut: number[][] = [];
  for (let i = 0; i < n; i++) {
    const s = Array.from({ length: 2 + Math.floor(rng.next() * 3) }, () => 3 + Math.floor(rng.next() * 6));
    const r = [...s].reverse();
    src.push(s);
    tgtIn.push([BOS, ...r]);
    tgtOut.push([...r, EOS]);
  }
  return { src, tgtIn, tgtOut };
}

function pad(rows: number[][], value: number): { t: number[][]; lengths: number[] } {
  const L = Math.max(...rows.map((r) => r.length));
  return { t: rows.map((r) => [...r, ...Array(L - r.length).fill(value)]), lengths: rows.map((r) => r.length) };
}

async function train(b: Built<Seq2SeqModel>, steps: number): Promise<number> {
  const names = b.model.params.map((p) => p.name);
  const vars = new Map(names.map((n) => [n, tf.variable(b.params.get(n)!, true, n)]));
  const LR = 0.02;
  const opt = tf.train.adam(LR, 0.9, 0.98);
  const rng = new Rng(5);
  let loss = NaN;
  for (let s = 0; s < steps; s++) {
    // Linear decay to 0.1× the peak rate: the last steps polish rather than bounce.
    (opt as unknown as { learningRate: number }).learningRate = LR * (1 - (0.9 * s) / steps);
    const data = reversalBatch(rng, 128);
    const src = pad(data.src, PAD), tin = pad(data.tgtIn, PAD), tout = pad(data.tgtOut, -1);
    const inputs = {
      src: tf.tensor2d(src.t, undefined, 'int32'), srcLengths: tf.tensor1d(src.lengths, 'int32'),
      tgtIn: tf.tensor2d(tin.t, undefined, 'int32'), tgtLengths: tf.tensor1d(tin.lengths, 'int32'),
    };
    const labels = tf.tensor1d(tout.t.flat(), 'int32'); // −1 on padding: a zero one-hot row, loss 0
    let updates = new Map<string, tf.Tensor>();
    const l = opt.minimize(() => {
      const r = b.model.forward(vars, b.buffers, inputs, { training: true, temperature: 1, dropout: 0, attnDropout: 0, seed: s });
      updates = new Map([...r.bufferUpdates].map(([k, t]) => [k, tf.keep(t)]));
      const logits = r.outputs['logits'] as tf.Tensor3D;
      return tf.div(tf.sum(sparseSoftmaxCrossEntropy(logits.reshape([-1, logits.shape[2]]) as tf.Tensor2D, labels)), tin.lengths.reduce((a, c) => a + c, 0)) as tf.Scalar;
    }, true)!;
    for (const [k, t] of updates) {
      b.buffers.get(k)!.dispose();
      b.buffers.set(k, t);
    }
    if (s === steps - 1) loss = (await l.data())[0];
    tf.dispose([l, labels, ...Object.values(inputs)]);
  }
  for (const n of names) {
    b.params.get(n)!.dispose();
    b.params.set(n, vars.get(n)!);
  }
  opt.dispose();
  return loss;
}

test('a tiny σReparam post-LN model trained to reverse sequences: beam search outputs the targets', async () => {
  await initBackend('wasm');
  const b = seq2seq({ variant: 'tiny-1L-1L', norm: 'post', reparam: 'sigma' }, 0);
  const t0 = performance.now();
  const loss = await train(b, 150); // ≈ 13 s of one core on wasm
  const seconds = (performance.now() - t0) / 1000;
  const tests = reversalBatch(new Rng(999), 16);
  const { src, srcMask, lengths } = batchOf(tests.src);
  const { decoder, cache } = b.model.incremental(b.params, b.buffers, src, srcMask);
  const out = await beamSearch(decoder, cache, { ...searchOpts(lengths), beam: 4 });
  tf.dispose([src, srcMask]);
  const wrong = out.map((h, i) => ({ src: tests.src[i], got: h[0].tokens })).filter((x) => JSON.stringify(x.got) !== JSON.stringify([...x.src].reverse()));
  assert.deepEqual(wrong, [], `${wrong.length}/${tests.src.length} held-out sequences not reversed (final loss ${loss.toFixed(3)}, ${seconds.toFixed(1)} s)`);
  disposeBuilt(b);
});
