// The toy reverse task: generated data is what it claims (targets reversed, lengths in range, units = real tokens,
// each item once per epoch over ranks), its sums are right on a hand-made case, and a step leaks no tensors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../../worker/backend.js';
import { loadConfig } from '../../../../shared/config/index.js';
import { ReverseTask, drawSequences } from '../../../../worker/tasks/reverse.js';
import { Trainer } from '../../../../worker/train/trainer.js';
import { LocalCollective } from '../../../../worker/comm/collective.js';
import { evalMetricsOf } from '../../../../worker/tasks/task.js';

const config = loadConfig({
  env: {},
  overrides: {
    task: 'reverse', model: { family: 'encoder', encoder: { dim: 16, depth: 1, heads: 2, mlpDim: 32 } },
    data: { reverse: { vocab: 6, minLength: 2, maxLength: 5, trainSize: 40, valSize: 8 } }, train: { globalBatch: 8 },
  },
});

test('sequences: lengths in range, tokens 1..vocab-1, PAD (0) after the length', () => {
  const s = drawSequences(200, 6, 2, 5, 7, 0);
  for (let i = 0; i < s.n; i++) {
    const len = s.lengths[i];
    assert.ok(len >= 2 && len <= 5);
    for (let t = 0; t < 5; t++) {
      const v = s.tokens[i * 5 + t];
      assert.ok(t < len ? v >= 1 && v <= 5 : v === 0, `seq ${i} pos ${t}: ${v}`);
    }
  }
  assert.deepEqual(drawSequences(200, 6, 2, 5, 7, 0).tokens, s.tokens, 'a pure function of the seed');
  assert.notDeepEqual(drawSequences(200, 6, 2, 5, 7, 1).tokens, s.tokens, 'validation is another draw');
});

test('batches: targets are the reversed inputs, units count real tokens, every item once per epoch across 3 ranks', async () => {
  const task = new ReverseTask(config);
  const data = await task.open();
  const seen: string[] = [];
  for (let step = 0; step < data.stepsPerEpoch; step++) {
    for (let rank = 0; rank < 3; rank++) {
      const b = await data.trainBatch(step, 3, rank);
      let units = 0;
      for (let i = 0; i < b.samples; i++) {
        const len = b.lengths[i];
        units += len;
        const x = Array.from(b.tokens.subarray(i * 5, i * 5 + len));
        const y = Array.from(b.targets.subarray(i * 5, i * 5 + len));
        assert.deepEqual(y, [...x].reverse());
        seen.push(x.join(','));
      }
      assert.equal(b.units, units);
    }
  }
  assert.equal(seen.length, 40, 'each of the 40 training sequences once');
});

test('sums on a hand-made case: correct tokens, exact sequences, denominator = real tokens', async () => {
  await initBackend('cpu');
  const task = new ReverseTask(config);
  // Two sequences, lengths 2 and 3 (maxLength 5), vocab 6: logits pick token 1 everywhere.
  const targets = { tokens: tf.tensor2d([[1, 1, 0, 0, 0], [1, 2, 1, 0, 0]], [2, 5], 'int32'), mask: tf.tensor2d([[1, 1, 0, 0, 0], [1, 1, 1, 0, 0]]) };
  const logits = tf.oneHot(tf.fill([2, 5], 1, 'int32'), 6).mul(10);
  const sums = task.evaluate({ logits }, targets);
  const v = Object.fromEntries(await Promise.all(Object.entries(sums).map(async ([k, t]) => [k, (await t.data())[0]] as const)));
  assert.equal(v.correct, 4);
  assert.equal(v.exact, 1);
  assert.equal(v.tokens, 5);
  assert.equal(v.n, 2);
  // −log softmax of a 10-logit winner among 6: log(1 + 5e−10) per hit, log(e^10 + 5)−0 per miss.
  const hit = Math.log(1 + 5 * Math.exp(-10));
  const miss = Math.log(Math.exp(10) + 5);
  assert.ok(Math.abs(v.loss - (4 * hit + miss)) <= 1e-4 * (4 * hit + miss) + 1e-5, `${v.loss}`);
  const m = evalMetricsOf(task, task.evalSums.map((k) => v[k]));
  assert.deepEqual(Object.keys(m), ['val_token_acc', 'val_seq_acc', 'val_loss']);
  assert.equal(m.val_token_acc, 0.8);
  assert.equal(m.val_seq_acc, 0.5);
  tf.dispose([...Object.values(targets), logits, ...Object.values(sums)]);
});

test('training steps leak no tensors; the report is in tokens with a per-site entropy', async () => {
  await initBackend('cpu');
  const task = new ReverseTask(config);
  const data = await task.open();
  const trainer = new Trainer(config, task, { totalSteps: 5, stepsPerEpoch: data.stepsPerEpoch });
  const counts: number[] = [];
  for (let s = 0; s < 5; s++) {
    const b = await data.trainBatch(s, 1, 0);
    const r = await trainer.trainStep(b, new LocalCollective());
    assert.equal(r.units, b.units);
    assert.equal(r.samples, b.samples);
    assert.deepEqual(r.entropy.map((e) => [e.attn, e.layer, e.heads.length]), [['self', 0, 2]]);
    assert.ok(r.metrics.accuracy >= 0 && r.metrics.accuracy <= 1);
    counts.push(tf.memory().numTensors);
  }
  assert.equal(new Set(counts.slice(1)).size, 1, `tensor counts ${counts.join(',')}`);
  trainer.dispose();
});
