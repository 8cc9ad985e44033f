// The translation task's pieces: batches (</s> on the source, <s>-shifted target, PAD after), the label-smoothed loss
// against a hand computation (fairseq's formula, padding excluded), the step's pairs re-split over another world size
// exactly once, and the budget plan the task uses covering every pair exactly once per epoch within the token budget.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../../worker/backend.js';
import { makeBatch, resplit, smoothedNllSums, BOS, PAD, EOS } from '../../../../worker/tasks/translate.js';
import { planBatches, pairSizes, paddedSize } from '../../../../worker/data/budget.js';

const close = (a: number, b: number, rtol = 1e-5, atol = 1e-6) => Math.abs(a - b) <= rtol * Math.abs(b) + atol;

test('makeBatch: source + </s>, target in = <s> + target, target out = target + </s>, PAD after; units = target tokens', () => {
  const b = makeBatch([Int32Array.from([5, 6, 7]), Int32Array.from([8])], [Int32Array.from([9]), Int32Array.from([10, 11])], Int32Array.from([3, 4]));
  assert.equal(b.S, 4);
  assert.equal(b.T, 3);
  assert.deepEqual(Array.from(b.src), [5, 6, 7, EOS, 8, EOS, PAD, PAD]);
  assert.deepEqual(Array.from(b.tgtIn), [BOS, 9, PAD, BOS, 10, 11]);
  assert.deepEqual(Array.from(b.tgtOut), [9, EOS, PAD, 10, 11, EOS]);
  assert.deepEqual(Array.from(b.tgtLengths), [2, 3]);
  assert.equal(b.units, 5);
  // A cap (evaluation: the model's maxPositions) cuts a long sentence and keeps its </s>.
  const c = makeBatch([Int32Array.from([5, 6, 7, 8, 9])], [Int32Array.from([1])], Int32Array.from([0]), 3);
  assert.deepEqual(Array.from(c.src), [5, 6, EOS]);
});

test('smoothedNllSums: fairseq label smoothing summed over non-pad tokens equals a hand computation', async () => {
  await initBackend('cpu');
  const V = 4;
  const logits = [[[1, 2, 0.5, -1], [0, 0, 3, 1]], [[2, -2, 1, 0], [0.3, 0.2, 0.1, 0]]]; // [B=2, T=2, V=4]
  const target = [[2, 1], [0, 3]];
  const mask = [[1, 1], [1, 0]]; // the last position is padding: whatever it holds must not count
  const eps = 0.1;
  let loss = 0;
  let nll = 0;
  let hits = 0;
  for (let b = 0; b < 2; b++) for (let t = 0; t < 2; t++) {
    if (!mask[b][t]) continue;
    const z = logits[b][t];
    const lse = Math.log(z.reduce((a, x) => a + Math.exp(x), 0));
    const logp = z.map((x) => x - lse);
    const n = -logp[target[b][t]];
    const smooth = -logp.reduce((a, x) => a + x, 0);
    const epsI = eps / (V - 1);
    loss += (1 - eps - epsI) * n + epsI * smooth;
    nll += n;
    hits += z.indexOf(Math.max(...z)) === target[b][t] ? 1 : 0;
  }
  const before = tf.memory().numTensors;
  const s = tf.tidy(() => {
    const r = smoothedNllSums(tf.tensor3d(logits), tf.tensor2d(target, undefined, 'int32'), tf.tensor2d(mask), eps);
    return tf.stack([r.loss, r.nll, r.hits]);
  });
  const [gl, gn, gh] = Array.from(await s.data());
  s.dispose();
  assert.equal(tf.memory().numTensors, before);
  assert.ok(close(gl, loss), `loss ${gl} vs ${loss}`);
  assert.ok(close(gn, nll), `nll ${gn} vs ${nll}`);
  assert.equal(gh, hits);
  assert.ok(Math.abs(loss - nll) > 1e-3, 'the smoothing must change the sum (else the test proves nothing)');
});

test('task batching: every pair exactly once per epoch over the ranks, each batch within the token budget, same step count per rank', () => {
  const n = 300;
  const src = Int32Array.from({ length: n }, (_, i) => 3 + ((i * 7) % 20));
  const tgt = Int32Array.from({ length: n }, (_, i) => 2 + ((i * 11) % 25));
  const sizes = pairSizes(src, tgt, 'max', 1);
  const budget = 128;
  for (const W of [1, 2, 3]) {
    const seen = new Int32Array(n);
    const per = Array.from({ length: W }, (_, rank) => planBatches({ sizes, budget, seed: 1, epoch: 2, rank, worldSize: W }));
    for (const p of per) {
      assert.equal(p.length, per[0].length);
      for (const b of p) {
        assert.ok(paddedSize(sizes, b) <= budget);
        for (const i of b) seen[i]++;
      }
    }
    assert.ok(seen.every((c) => c === 1), `world size ${W}: every pair once`);
  }
});

test('resplit: a step planned for 2 ranks run on 3 (or 1) ranks gives each pair of the step to exactly one rank, counts within 1', () => {
  const sizes = Int32Array.from({ length: 20 }, (_, i) => (i * 5) % 13);
  const step = [Int32Array.from([0, 3, 5, 7, 9]), Int32Array.from([1, 2, 11, 19])];
  for (const W of [1, 3, 4]) {
    const parts = Array.from({ length: W }, (_, r) => resplit(step, sizes, W, r));
    const all = parts.flatMap((p) => Array.from(p)).sort((a, b) => a - b);
    assert.deepEqual(all, [0, 1, 2, 3, 5, 7, 9, 11, 19]);
    const counts = parts.map((p) => p.length);
    assert.ok(Math.max(...counts) - Math.min(...counts) <= 1);
  }
});

test('evaluateBatch on a tiny model: n, target tokens, BLEU statistics against its own output are all matches, no leaked tensors', async () => {
  await initBackend('cpu');
  const { loadConfig } = await import('../../../../shared/config/index.js');
  const { TranslateTask } = await import('../../../../worker/tasks/translate.js');
  const config = loadConfig({ env: {}, overrides: { task: 'translate', model: { family: 'seq2seq', seq2seq: { variant: 'test', maxPositions: 32 } }, data: { kind: 'wmt', wmt: { valid: 'a', test: 'b' } }, decode: { beam: 2, maxLenA: 0, maxLenB: 6 } } });
  const words = ['<s>', '<pad>', '</s>', '<unk>', 'ein', 'zwei', 'drei', 'Haus', 'Vogel', 'rot', 'blau', '.'];
  const decode = async (ids: ArrayLike<number>) => Array.from(ids).filter((i) => i > 3).map((i) => words[i]).join(' ');
  const vocab = { path: 'mem', hash: 'h', size: words.length, bos: 0, pad: 1, eos: 2, unk: 3, encode: async () => new Int32Array(), encodeBatch: async () => [], decode };
  const task = new TranslateTask(config);
  task.useVocab(vocab);
  const params = new Map(task.model.params.map((s) => [s.name, tf.tensor(s.init, s.shape)]));
  const buffers = new Map(task.model.buffers.map((s) => [s.name, tf.tensor(s.init, s.shape)]));
  const b = makeBatch([Int32Array.from([4, 7]), Int32Array.from([5, 8, 9, 11])], [Int32Array.from([4, 7, 11]), Int32Array.from([6])], Int32Array.from([0, 1]));
  const m = { model: task.model, params, buffers, temperature: 1 };
  // References = the model's own beam output: every hypothesis n-gram matches.
  const own = await task.translateIds(m, tf.tensor2d(b.src, [2, b.S], 'int32'), b.srcLengths);
  const texts = await Promise.all(own.map(decode));
  task.referenceOf = (_set, id) => texts[id]!;
  const before = tf.memory().numTensors;
  const r = await task.evaluateBatch(b, m, 'a');
  assert.equal(tf.memory().numTensors, before, 'evaluateBatch disposes what it makes');
  assert.equal(r.n, 2);
  assert.equal(r.tokens, 4 + 2);
  assert.ok(r.nll! > 0 && Number.isFinite(r.nll));
  for (let k = 1; k <= 4; k++) assert.equal(r[`bleu_counts_${k}`], r[`bleu_totals_${k}`]);
  assert.equal(r.bleu_sys_len, r.bleu_ref_len);
  const metrics = task.metricsOf(r, 'a');
  assert.deepEqual(Object.keys(metrics).sort(), ['valid_bleu', 'valid_chrf', 'valid_loss', 'valid_ppl']);
  assert.deepEqual(Object.keys(task.metricsOf(r, 'b')).sort(), ['bleu', 'chrf', 'test_loss', 'test_ppl']);
  tf.dispose([...params.values(), ...buffers.values()]);
});
