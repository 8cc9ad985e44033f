// The language-model task: its sums count only scored positions (against a hand computation of log-softmax), the
// data gives every training block once per epoch over ranks and every valid/test token exactly one scored prediction
// over ranks, evaluation through the task equals a window-by-window computation from the model's logits, two
// processes preparing the caches at once build them once, and a training step leaks no tensors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../../worker/backend.js';
import { loadConfig } from '../../../../shared/config/index.js';
import { LmTask, prepareWikitext, type LmBatch } from '../../../../worker/tasks/lm.js';
import { writeWikitextDemo } from '../../../../worker/data/wikitext_demo.js';
import { evalWindows, TokenStream } from '../../../../worker/data/wikitext.js';
import { evaluateSums } from '../../../../worker/train/step.js';
import { Trainer } from '../../../../worker/train/trainer.js';
import { LocalCollective } from '../../../../worker/comm/collective.js';

const root = await fs.mkdtemp(path.join(os.tmpdir(), 'sgt-lm-'));
await writeWikitextDemo(root, 5, { train: 20, valid: 3, test: 2 });

const config = loadConfig({
  env: {},
  overrides: {
    task: 'lm', model: { family: 'lm', lm: { variant: 'test', maxPositions: 16 }, norm: 'post' },
    data: { kind: 'wikitext', root, wikitext: { blockSize: 16, scoreLast: 8, evalBatch: 3 } }, train: { globalBatch: 6 },
  },
});

/** −log softmax(logits)[y] in float64. */
function nllOf(logits: number[], y: number): number {
  const m = Math.max(...logits);
  return Math.log(logits.reduce((a, l) => a + Math.exp(l - m), 0)) + m - logits[y]!;
}

test('sums: NLL and tokens over scored positions only (scoreFrom ≤ t < length), against a hand computation', async () => {
  await initBackend('cpu');
  const task = new LmTask(config);
  const B = 2;
  const T = 4;
  const V = 3;
  const logits = Array.from({ length: B * T * V }, (_, i) => Math.sin(1.7 * i) * 3); // [B, T, V]
  const batch: LmBatch = {
    T, samples: B, units: 0, skipped: [],
    input: new Int32Array(B * T), target: Int32Array.from([2, 0, 1, 1, 0, 2, 2, 1]),
    lengths: Int32Array.from([4, 3]), scoreFrom: Int32Array.from([1, 0]),
  };
  let nll = 0;
  let tokens = 0;
  let hits = 0;
  for (let i = 0; i < B; i++) {
    for (let t = batch.scoreFrom[i]!; t < batch.lengths[i]!; t++) {
      const row = logits.slice((i * T + t) * V, (i * T + t + 1) * V);
      const y = batch.target[i * T + t]!;
      nll += nllOf(row, y);
      tokens++;
      if (row.indexOf(Math.max(...row)) === y) hits++;
    }
  }
  const { targets, inputs } = task.tensors(batch);
  const out = { logits: tf.tensor3d(logits, [B, T, V]) };
  const s = task.evaluate(out, targets);
  const l = task.loss(out, targets);
  const v = async (t: tf.Tensor) => (await t.data())[0]!;
  assert.equal(await v(s.tokens), tokens);
  assert.equal(await v(s.n), 2);
  assert.ok(Math.abs((await v(s.nll)) - nll) <= 1e-5 * nll + 1e-6, `eval nll ${await v(s.nll)} vs ${nll}`);
  assert.ok(Math.abs((await v(l.loss)) - nll) <= 1e-5 * nll + 1e-6, `loss ${await v(l.loss)} vs ${nll}`);
  assert.equal(await v(l.denominator), tokens);
  assert.equal(await v(l.metrics.accuracy), hits);
  assert.deepEqual(task.metricsOf({ nll: 12, tokens: 4, n: 2 }, 'valid'), { valid_ppl: Math.exp(3), valid_loss: 3 });
  assert.deepEqual(task.metricsOf({ nll: 12, tokens: 4, n: 2 }, 'test'), { ppl: Math.exp(3), test_loss: 3 });
  tf.dispose([...Object.values(targets), ...Object.values(inputs), out.logits, ...Object.values(s), l.loss, l.denominator, l.metrics.accuracy]);
});

test('data: every block once per epoch over ranks (input = target shifted by one); every eval token scored once', async () => {
  const task = new LmTask(config);
  const data = await task.open();
  const train = await TokenStream.open(path.join(root, 'wikitext-103', 'sigmatrain-cache', 'train.tokens.min1.bin'));
  const all = await train.read(0, train.length);
  const blocks = Math.floor(train.length / 16);
  for (const W of [1, 3]) {
    const seen = new Set<number>();
    for (let step = 0; step < data.stepsPerEpoch; step++) {
      for (let r = 0; r < W; r++) {
        const b = await data.trainBatch(step, W, r);
        assert.equal(b.units, 16 * b.samples);
        for (let i = 0; i < b.samples; i++) {
          const tgt = b.target.subarray(i * 16, i * 16 + 16);
          let start = -1;
          for (let s = 0; s < blocks && start < 0; s++) if (all.subarray(s * 16, s * 16 + 16).every((x, k) => x === tgt[k])) start = s * 16;
          assert.ok(start >= 0, 'a block of the stream');
          seen.add(start);
          assert.equal(b.input[i * 16], start === 0 ? 0 : all[start - 1]);
          assert.deepEqual(Array.from(b.input.subarray(i * 16 + 1, i * 16 + 16)), Array.from(tgt.subarray(0, 15)));
        }
      }
    }
    assert.equal(seen.size, blocks, `world ${W}: every block once`);
  }
  await train.close();
  for (const set of ['valid', 'test'] as const) {
    const stream = await TokenStream.open(path.join(root, 'wikitext-103', 'sigmatrain-cache', `${set}.tokens.min1.bin`));
    const ids = Array.from(await stream.read(0, stream.length));
    for (const W of [1, 2, 3]) {
      const scored: number[] = [];
      for (let r = 0; r < W; r++) {
        for await (const b of data.valBatches(W, r, set)) {
          for (let i = 0; i < b.samples; i++) scored.push(...b.target.subarray(i * b.T + b.scoreFrom[i]!, i * b.T + b.lengths[i]!));
        }
      }
      assert.deepEqual(scored, ids, `${set}, world ${W}: the scored targets are the stream, each token once, in order`);
    }
    await stream.close();
  }
  await data.close();
});

test('evaluation through the task equals a window-by-window NLL from the model\'s logits', async () => {
  await initBackend('cpu');
  const task = new LmTask(config);
  const data = await task.open();
  const trainer = new Trainer(config, task, { totalSteps: 2, stepsPerEpoch: data.stepsPerEpoch });
  for (let s = 0; s < 2; s++) await trainer.trainStep(await data.trainBatch(s, 1, 0), new LocalCollective()); // weights other than the init
  const sums = new Float32Array(3);
  for (let r = 0; r < 2; r++) for await (const b of data.valBatches(2, r, 'valid')) await evaluateSums(task, trainer.state, b, 1, sums, 0, 'valid');
  // Reference: each window alone through the model, log-softmax in float64 on the host, its scored positions summed.
  const stream = await TokenStream.open(path.join(root, 'wikitext-103', 'sigmatrain-cache', 'valid.tokens.min1.bin'));
  let nll = 0;
  let tokens = 0;
  for (const w of evalWindows(stream.length, 16, 8)) {
    const { input, target } = await stream.inputTarget(w.start, w.end, 0);
    const x = tf.tensor2d(input, [1, input.length], 'int32');
    const r = task.model.forward(trainer.state.params, trainer.state.buffers, { tokens: x }, { training: false, temperature: 1, dropout: 0, attnDropout: 0, seed: 0 });
    const logits = r.outputs.logits!.arraySync() as number[][][];
    for (let t = w.scoreFrom - w.start; t < w.end - w.start; t++) {
      nll += nllOf(logits[0]![t]!, target[t]!);
      tokens++;
    }
    tf.dispose([x, ...Object.values(r.outputs), ...r.entropy, ...r.maxTokenNorm]);
  }
  await stream.close();
  assert.equal(tokens, stream.length);
  assert.equal(sums[1], tokens);
  assert.ok(Math.abs(sums[0]! - nll) <= 1e-5 * nll + 1e-4, `task ${sums[0]} vs reference ${nll}`);
  trainer.dispose();
  await data.close();
});

test('two processes preparing at once: one builds the vocabulary and caches, the other waits and reuses them', async () => {
  const fresh = await fs.mkdtemp(path.join(os.tmpdir(), 'sgt-lm-race-'));
  await writeWikitextDemo(fresh, 9, { train: 10, valid: 2, test: 2 });
  const o = { root: fresh, variant: 'tokens' as const, minCount: 1, cacheDir: '' };
  const [a, b] = await Promise.all([prepareWikitext(o), prepareWikitext(o)]);
  assert.deepEqual([a.built.length, b.built.length].sort(), [0, 4], 'vocabulary + 3 caches built exactly once');
  assert.equal(a.vocab.hash, b.vocab.hash);
  assert.equal(a.streams.train.length, b.streams.train.length);
  for (const p of [a, b]) for (const s of Object.values(p.streams)) await s.close();
  await assert.rejects(prepareWikitext({ ...o, root: path.join(fresh, 'nowhere') }), /no wiki\.train\.tokens in .*nowhere.*point data\.root/);
});

test('config errors name the key; the model exists after open(); training steps leak no tensors', async () => {
  await initBackend('cpu');
  const bad = loadConfig({ env: {}, overrides: { task: 'lm', model: { family: 'lm', lm: { maxPositions: 8 } }, data: { kind: 'wikitext', root, wikitext: { blockSize: 16, scoreLast: 8 } } } });
  assert.throws(() => new LmTask(bad), /model\.lm\.maxPositions 8 is below data\.wikitext\.blockSize 16/);
  const task = new LmTask(config);
  assert.throws(() => task.model, /open\(\)/);
  const data = await task.open();
  assert.equal(task.vocabSize, 80);
  const trainer = new Trainer(config, task, { totalSteps: 4, stepsPerEpoch: data.stepsPerEpoch });
  const counts: number[] = [];
  for (let s = 0; s < 4; s++) {
    const b = await data.trainBatch(s, 1, 0);
    const r = await trainer.trainStep(b, new LocalCollective());
    assert.equal(r.units, b.units);
    assert.deepEqual(r.entropy.map((e) => [e.attn, e.layer, e.heads.length]), [['causal', 0, 2]]);
    counts.push(tf.memory().numTensors);
  }
  assert.equal(new Set(counts.slice(1)).size, 1, `tensor counts ${counts.join(',')}`);
  trainer.dispose();
  await data.close();
});
