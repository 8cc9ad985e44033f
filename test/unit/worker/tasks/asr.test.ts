// The speech recognition task without audio files: frame-budget batching (every utterance once per epoch across
// ranks, same step count on every rank, within budget), the CTC loss sums and denominator against an independent
// path, the secondOrder switch, and the evaluation sums on a model whose outputs spell known transcripts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../../worker/backend.js';
import { loadConfig } from '../../../../shared/config/index.js';
import { planAllBatches } from '../../../../worker/data/budget.js';
import { AsrTask, evalChunks, frameBudget, rankShare, toItems, trainPlan, type AsrBatch } from '../../../../worker/tasks/asr.js';
import { ctcLoss } from '../../../../worker/nn/ctc.js';
import { textToTokens } from '../../../../worker/decode/ctc.js';
import type { Model } from '../../../../worker/models/model.js';
import type { Utterance } from '../../../../worker/data/librispeech/index.js';
import { assertClose } from '../../../helpers/numeric.js';

const BINS = 8;
const config = loadConfig({
  env: {},
  overrides: {
    task: 'asr', model: { family: 'speech', speech: { variant: 'test', positions: 'sinusoidal' } },
    data: { kind: 'librispeech', librispeech: { train: ['a'], eval: ['b'], features: { kind: 'logmel', bins: BINS } } },
    train: { maxFrames: 600 },
  },
});

test('frame budget: maxSeconds × 100 frames, else maxFrames; none is a config error naming both keys', () => {
  assert.equal(frameBudget({ ...config.train, maxSeconds: 2.5 }), 250);
  assert.equal(frameBudget({ ...config.train, maxSeconds: 0, maxFrames: 600 }), 600);
  assert.throws(() => frameBudget({ ...config.train, maxSeconds: 0, maxFrames: 0 }), /train\.maxSeconds.*train\.maxFrames/);
});

test('train plan: each utterance exactly once per epoch over 1, 2 and 3 ranks, every step within budget × ranks', () => {
  const frames = Int32Array.from({ length: 97 }, (_, i) => 20 + ((i * 37) % 180));
  const budget = 400;
  for (const epoch of [0, 1]) {
    const batches = planAllBatches({ sizes: frames, budget, seed: 3, epoch, worldSize: 1 });
    assert.equal(batches.length, planAllBatches({ sizes: frames, budget, seed: 3, epoch: 0, worldSize: 1 }).length, 'the same step count every epoch');
    for (const W of [1, 2, 3]) {
      const seen = new Int32Array(frames.length);
      for (const b of batches) {
        let max = 0;
        for (const i of b) max = Math.max(max, frames[i]!);
        assert.ok(max * b.length <= budget, `padded ${max}×${b.length} within ${budget}`);
        for (let r = 0; r < W; r++) for (const i of rankShare(b, frames, W, r)) seen[i]!++;
      }
      assert.deepEqual([...seen], new Array(frames.length).fill(1), `world ${W}, epoch ${epoch}`);
    }
  }
});

test('train plan: an utterance longer than a whole step trains alone in its own step; every other step within budget', () => {
  // Two recordings over the 400-frame step budget (a 25 s LibriSpeech utterance against an 8 s × 2 step).
  const frames = Int32Array.from({ length: 41 }, (_, i) => (i === 7 ? 1000 : i === 30 ? 401 : 20 + ((i * 37) % 180)));
  for (const epoch of [0, 1]) {
    const batches = trainPlan(frames, 400, 3, epoch);
    const seen = new Int32Array(frames.length);
    for (const b of batches) {
      for (const i of b) seen[i]!++;
      if (b.includes(7) || b.includes(30)) assert.equal(b.length, 1, `a long utterance shares its step: [${[...b]}]`);
      else assert.ok(Math.max(...[...b].map((i) => frames[i]!)) * b.length <= 400);
    }
    assert.deepEqual([...seen], new Array(frames.length).fill(1), `epoch ${epoch}: every utterance exactly once`);
    // On 2 ranks the long utterance's step gives the other rank nothing to do (it contributes zeros): still once.
    const single = batches.find((b) => b.includes(7))!;
    assert.deepEqual([rankShare(single, frames, 2, 0).length, rankShare(single, frames, 2, 1).length], [1, 0]);
  }
});

test('rank share: round-robin in size order balances frames; eval chunks cover a rank\'s items once within budget', () => {
  const frames = [100, 10, 50, 90, 20, 60];
  const batch = Int32Array.from([0, 1, 2, 3, 4, 5]);
  // Size order: 1(10) 4(20) 2(50) 5(60) 3(90) 0(100) → rank 0: 1, 2, 3; rank 1: 4, 5, 0.
  assert.deepEqual([...rankShare(batch, frames, 2, 0)], [1, 2, 3]);
  assert.deepEqual([...rankShare(batch, frames, 2, 1)], [4, 5, 0]);
  const chunks = evalChunks(frames, 120, 1, 0);
  assert.deepEqual(chunks.map((c) => [...c]), [[1, 4], [2, 5], [3], [0]]); // 20·2 ≤ 120 < 50·3; 60·2 ≤ 120
  const two = [...evalChunks(frames, 1000, 2, 0), ...evalChunks(frames, 1000, 2, 1)].flatMap((c) => [...c]).sort();
  assert.deepEqual(two, [0, 1, 2, 3, 4, 5]);
});

test('items: an utterance too short for its transcript and an unmappable transcript are skipped with their reasons', () => {
  const utt = (id: string, samples: number, transcript: string): Utterance => ({ id, subset: 'a', speaker: '1', chapter: '2', path: `/x/${id}.flac`, samples, transcript });
  const skipped: { path: string; reason: string }[] = [];
  // logmel: 1 + floor(n / 160) frames; CTC frames ⌈frames / 3⌉.
  const items = toItems([utt('ok', 16000, "IT'S GO"), utt('short', 1600, 'A LONG SENTENCE'), utt('bad', 16000, 'NO 2')], 'logmel', (f) => Math.ceil(f / 3), skipped);
  assert.deepEqual(items.map((i) => [i.utt.id, i.frames, i.tokens.length]), [['ok', 101, 7]]);
  assert.deepEqual(skipped.map((s) => s.path), ['/x/short.flac', '/x/bad.flac']);
  assert.match(skipped[0]!.reason, /too short.*11 frames give 4 CTC frames/);
  assert.match(skipped[1]!.reason, /transcript.*"2"/);
});

/** A hand-made batch of n utterances with random features. */
function batchOf(refs: string[], frames: number[], seed = 1): AsrBatch {
  const n = refs.length;
  const T = Math.max(...frames);
  const toks = refs.map(textToTokens);
  const S = Math.max(...toks.map((t) => t.length));
  const features = new Float32Array(n * T * BINS);
  let x = seed;
  frames.forEach((f, i) => {
    for (let k = 0; k < f * BINS; k++) features[i * T * BINS + k] = ((x = (x * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  });
  const targets = new Int32Array(n * S);
  toks.forEach((t, i) => targets.set(t, i * S));
  return {
    features, T, bins: BINS, frames: Int32Array.from(frames), targets, S, targetLengths: Int32Array.from(toks, (t) => t.length), refs,
    samples: n, units: frames.reduce((a, b) => a + b, 0), skipped: [],
  };
}

test('loss: Σ of per-utterance CTC (fast) equals the differentiable CTC summed; denominator = utterances; no leaks', async () => {
  await initBackend('cpu');
  const task = new AsrTask(config);
  const params = new Map(task.model.params.map((p) => [p.name, tf.tensor(p.init, p.shape)]));
  const buffers = new Map(task.model.buffers.map((b) => [b.name, tf.tensor(b.init, b.shape)]));
  const b = batchOf(['go left', 'up', "it's on"], [40, 25, 33]);
  const before = tf.memory().numTensors;
  const { inputs, targets } = task.tensors(b);
  const fwd = { training: false, temperature: 1, dropout: 0, attnDropout: 0, seed: 0 };
  const [fast, slow, den] = tf.tidy(() => {
    const { outputs } = task.model.forward(params, buffers, inputs, fwd);
    const s = task.loss(outputs, targets, { labelSmoothing: 0 });
    const second = task.loss(outputs, targets, { labelSmoothing: 0, secondOrder: true });
    return [s.loss, second.loss, s.denominator];
  });
  // Independent reference: per-utterance losses from the differentiable path on one utterance at a time.
  const per: number[] = [];
  for (let i = 0; i < 3; i++) {
    const one = task.split(b, 1)[i]!;
    const t = task.tensors(one);
    const l = tf.tidy(() => {
      const { outputs } = task.model.forward(params, buffers, t.inputs, fwd);
      const logits = tf.slice(outputs.logits!, [0, 0, 0], [1, Math.ceil(one.frames[0]! / 3), 29]) as tf.Tensor3D;
      return ctcLoss(logits, { targets: one.targets, targetLengths: one.targetLengths, inputLengths: [Math.ceil(one.frames[0]! / 3)] }, { reduction: 'none', impl: 'differentiable' });
    });
    per.push((await l.data())[0]!);
    tf.dispose([l, ...Object.values(t.inputs), ...Object.values(t.targets)]);
  }
  const sum = per.reduce((a, x) => a + x, 0);
  assertClose([(await fast.data())[0]!], [sum], 1e-4, 'fast CTC sum');
  assertClose([(await slow.data())[0]!], [sum], 1e-4, 'secondOrder (differentiable) CTC sum');
  assert.equal((await den.data())[0], 3);
  tf.dispose([fast, slow, den, ...Object.values(inputs), ...Object.values(targets)]);
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([...params.values(), ...buffers.values()]);
});

test('secondOrder: a Hessian-vector product through the task loss needs it (fast CTC refuses, differentiable works)', async () => {
  await initBackend('cpu');
  const task = new AsrTask(config);
  const b = batchOf(['go'], [12]);
  const { inputs, targets } = task.tensors(b);
  // d²/dz² of the loss along the logits (the model's outputs stand in for parameters here).
  const z = tf.variable(tf.randomNormal([1, 4, 29], 0, 1, 'float32', 5) as tf.Tensor3D);
  const hv = (secondOrder: boolean) => tf.tidy(() => {
    const g = (x: tf.Tensor) => tf.grad((y: tf.Tensor) => task.loss({ logits: y }, targets, { labelSmoothing: 0, secondOrder }).loss)(x);
    return tf.grad((x: tf.Tensor) => tf.sum(tf.mul(g(x), tf.onesLike(x))))(z);
  });
  assert.throws(() => hv(false), /SGT_CTC_SECOND_ORDER|second/i);
  const h = hv(true);
  const v = await h.data();
  assert.ok(v.every(Number.isFinite) && v.some((x) => x !== 0), 'a finite, non-zero H·1');
  tf.dispose([h, z, ...Object.values(inputs), ...Object.values(targets)]);
});

/** A model whose logits spell `paths[b]` (one token per output frame, blank elsewhere), whatever its inputs. */
function spelling(paths: number[][], Tp: number): Model {
  return {
    family: 'speech', params: [], buffers: [], linears: [], attentionSites: [], architecture: () => ({}),
    forward: (_p, _b, inputs) => {
      const B = inputs.lengths!.shape[0];
      const v = new Float32Array(B * Tp * 29);
      for (let b = 0; b < B; b++) for (let t = 0; t < Tp; t++) v[(b * Tp + t) * 29 + (paths[b]![t] ?? 0)] = 5;
      return { outputs: { logits: tf.tensor3d(v, [B, Tp, 29]) }, entropy: [], maxTokenNorm: [], bufferUpdates: new Map() };
    },
  };
}

test('evaluation sums: greedy and beam transcripts scored by hand (WER, CER), metrics per set and pooled', async () => {
  await initBackend('cpu');
  const task = new AsrTask(config);
  // Refs "go right" and "up"; the model says "go left" and "up": 1 of 3 words wrong; chars: right→left.
  const b = batchOf(['go right', 'up'], [30, 30]);
  const spell = (s: string) => textToTokens(s).flatMap((t) => [t, 0]); // blanks between letters keep repeats apart
  const m = spelling([spell('go left'), spell('up')], 10 /* ⌈30 / 3⌉ */ + 6);
  const before = tf.memory().numTensors;
  const sums = await task.evaluateBatch(b, { model: m, params: new Map(), buffers: new Map(), temperature: 1 }, 'b');
  assert.equal(tf.memory().numTensors, before, 'evaluateBatch disposes what it makes');
  // The spelled path needs 14 frames but the utterance has 10: "go left" is cut to its first 10 frames = "go le".
  assert.equal(sums.n, 2);
  assert.equal(sums.wer_ref_length, 3);
  assert.equal(sums.wer_segments, 2);
  assert.equal(sums.wer_errors, 1); // right → le
  assert.equal(sums.werb_errors, 1);
  // CER over code points with the space: "go right" (8) vs "go le": r→l, i→e, delete g, h, t = 5 edits; "up" exact.
  assert.equal(sums.cer_ref_length, 10);
  assert.equal(sums.cer_errors, 5);
  const metrics = task.metricsOf(sums, 'b');
  assert.deepEqual(Object.keys(metrics), ['wer_b', 'cer_b', 'wer_beam_b', 'loss_b']);
  assertClose([metrics.wer_b!, metrics.cer_b!], [1 / 3, 0.5], 1e-12, 'rates');
  const pooled = task.pooledMetricsOf(Object.fromEntries(Object.keys(sums).map((k) => [k, sums[k]! * 2])));
  assertClose([pooled.wer!], [1 / 3], 1e-12, 'pooled WER');
});

test('character LM (data.librispeech.lm): counted from transcripts and lm.texts; a bad line or file is an error naming it; wer_lm_<set>', async () => {
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const { speechLm } = await import('../../../../worker/tasks/asr.js');
  const l = config.data.librispeech;
  assert.equal(await speechLm(l, ['go']), null, 'order 0: no LM');
  const dir = mkdtempSync(join(tmpdir(), 'sgt-asr-lm-'));
  const good = join(dir, 'lm.txt');
  writeFileSync(good, "SEVEN LEFT\r\n\nseven left\nDON'T\n");
  const withTexts = (texts: string) => ({ ...l, lm: { order: 4, weight: 0.5, bonus: 1, texts } });
  const score = (m: import('../../../../worker/decode/charlm.js').CharNgramLm, t: string) => {
    const toks = textToTokens(t);
    return toks.reduce((s, x, i) => s + m.logProb(toks.slice(0, i), x), m.logProbEnd(toks));
  };
  const plain = (await speechLm(withTexts(''), ['go up']))!;
  const more = (await speechLm(withTexts(` ${good} `), ['go up']))!;
  assert.deepEqual([more.weight, more.bonus], [0.5, 1]);
  assert.ok(score(more.model, 'seven left') > score(plain.model, 'seven left') + 5, 'the text file counts');
  const bad = join(dir, 'bad.txt');
  writeFileSync(bad, 'fine line\nline 2 has a digit\n');
  await assert.rejects(speechLm(withTexts(bad), ['go']), (e: Error) => e.message.includes(`${bad}: line 2`) && e.message.includes('"2"'));
  await assert.rejects(speechLm(withTexts(join(dir, 'missing.txt')), ['go']), /missing\.txt: cannot read/);
  const lmConfig = loadConfig({ env: {}, overrides: { ...config, data: { ...config.data, librispeech: { ...l, lm: { ...l.lm, order: 3 } } } } });
  const task = new AsrTask(lmConfig);
  assert.deepEqual(Object.keys(task.metricsOf(Object.fromEntries(task.evalSums.map((k) => [k, 1])), 'b')), ['wer_b', 'cer_b', 'wer_beam_b', 'wer_lm_b', 'loss_b']);
});
