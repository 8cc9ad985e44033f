// worker/models/speech.ts: the unfold front-end against a direct loop, output shapes and lengths, padding invariance
// (padding frames never change real frames' outputs), CAPE positions, LayerDrop, σReparam power updates, and a tiny
// overfit through the CTC loss. Small shapes: the whole file runs in seconds.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import * as tf from '@tensorflow/tfjs';

import { gradient, hessianVectorProduct } from '../../../../worker/diagnostics/hvp.js';
import { ctcLoss, type CtcOptions } from '../../../../worker/nn/ctc.js';
import {
  DEFAULT_CAPE, SPEECH_VARIANTS, buildSpeech, capePositions, speechDefaults, unfold1d, type SpeechModel, type SpeechOptions,
} from '../../../../worker/models/speech.js';
import { forEachBackend } from '../../../helpers/backends.js';

const F = 80;

function tensors(model: SpeechModel): { params: Map<string, tf.Tensor>; buffers: Map<string, tf.Tensor> } {
  return {
    params: new Map(model.params.map((p) => [p.name, tf.tensor(p.init, p.shape)])),
    buffers: new Map(model.buffers.map((p) => [p.name, tf.tensor(p.init, p.shape)])),
  };
}

function randomFeatures(B: number, T: number, seed: number): Float32Array {
  let a = seed >>> 0;
  return Float32Array.from({ length: B * T * F }, () => {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    return a / 2 ** 31 - 1;
  });
}

const EVAL = { training: false, temperature: 1, dropout: 0, attnDropout: 0, seed: 1 };

forEachBackend((backend) => {
  test(`[${backend}] unfold1d equals a direct loop over centred windows`, async () => {
    for (const [K, s, T] of [[7, 3, 20], [7, 3, 21], [3, 1, 5], [4, 2, 9], [1, 1, 4], [5, 5, 12], [2, 3, 7]]) {
      const Fd = 2;
      const x = Float32Array.from({ length: 2 * T * Fd }, (_, i) => i + 1);
      const out = tf.tidy(() => unfold1d(tf.tensor3d(x, [2, T, Fd]), K, s));
      const Tp = Math.ceil(T / s);
      assert.deepEqual(out.shape, [2, Tp, K * Fd], `K=${K} s=${s} T=${T}`);
      const got = await out.data();
      out.dispose();
      const pad = Math.floor((K - 1) / 2);
      for (let b = 0; b < 2; b++) {
        for (let j = 0; j < Tp; j++) {
          for (let k = 0; k < K; k++) {
            const t = s * j - pad + k;
            for (let f = 0; f < Fd; f++) {
              const want = t >= 0 && t < T ? x[(b * T + t) * Fd + f] : 0;
              assert.equal(got[((b * Tp + j) * K + k) * Fd + f], want, `K=${K} s=${s} T=${T} b=${b} j=${j} k=${k}`);
            }
          }
        }
      }
    }
  });

  describe(`[${backend}] speech model`, () => {
    test('variants: the paper\'s shape is there; an unknown one is refused with the list', () => {
      assert.deepEqual(SPEECH_VARIANTS['paper'], { dim: 768, depth: 36, heads: 4, mlpDim: 3072 });
      assert.throws(() => buildSpeech(speechDefaults('huge')), /SGT_MODEL_VARIANT.*"huge".*paper/);
    });

    test('blankBias raises the blank logit of the initial model by exactly that much, nothing else; a non-finite one is refused', async () => {
      const plain = buildSpeech(speechDefaults('test', 3));
      const biased = buildSpeech({ ...speechDefaults('test', 3), blankBias: 3.5 });
      const [B, T] = [2, 10];
      const features = tf.tensor3d(randomFeatures(B, T, 11), [B, T, F]);
      const lengths = tf.tensor1d([10, 7], 'int32');
      const logitsOf = async (m: SpeechModel) => {
        const { params, buffers } = tensors(m);
        const logits = tf.tidy(() => m.forward(params, buffers, { features, lengths }, EVAL).outputs.logits!);
        const v = (await logits.data()) as Float32Array;
        tf.dispose([logits, ...params.values(), ...buffers.values()]);
        return v;
      };
      const before = tf.memory().numTensors;
      const a = await logitsOf(plain);
      const b = await logitsOf(biased);
      assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
      const C = plain.options.vocab;
      for (let i = 0; i < a.length; i++) {
        const want = a[i]! + (i % C === 0 ? 3.5 : 0);
        assert.ok(Math.abs(b[i]! - want) <= 1e-5 * Math.abs(want) + 1e-5, `logit ${i} (class ${i % C}): ${b[i]} vs ${want}`);
      }
      tf.dispose([features, lengths]);
      assert.throws(() => buildSpeech({ ...speechDefaults('test'), blankBias: Number.NaN }), /SGT_CONFIG_INVALID.*blankBias/);
    });

    test('shapes, output lengths ⌈T/3⌉, every linear σReparam, one attention site per layer', async () => {
      const model = buildSpeech({ ...speechDefaults('test'), qkv: 'separate' });
      const depth = SPEECH_VARIANTS['test'].depth;
      assert.equal(model.linears.length, 1 + depth * 6 + 1); // front-end, q k v proj fc1 fc2 per layer, head
      assert.ok(model.linears.every((l) => l.reparam === 'sigma' && l.gamma));
      assert.deepEqual(model.attentionSites.map((s) => [s.layer, s.kind, s.heads]), [[0, 'self', 2], [1, 'self', 2]]);
      const { params, buffers } = tensors(model);
      const before = tf.memory().numTensors;
      const r = model.forward(params, buffers, {
        features: tf.tensor3d(randomFeatures(2, 50, 1), [2, 50, F]), lengths: tf.tensor1d([50, 37], 'int32'),
      }, EVAL);
      assert.deepEqual(r.outputs['logits'].shape, [2, 17, 29]);
      assert.deepEqual(Array.from(await r.outputs['outLengths'].data()), [17, 13]);
      assert.equal(model.outputLength(37), 13);
      assert.equal(r.entropy.length, depth);
      for (const e of r.entropy) assert.ok((await e.data()).every((v) => v > 0 && v <= Math.log(17) + 1e-5));
      assert.equal(r.bufferUpdates.size, 0, 'no power step unless asked');
      tf.dispose([r.outputs['logits'], r.outputs['outLengths'], ...r.entropy, ...r.maxTokenNorm]);
      assert.ok(tf.memory().numTensors > before); // inputs were not disposed: only check nothing else lingers
      tf.dispose([...params.values(), ...buffers.values()]);
    });

    const invariance: Array<[string, Partial<SpeechOptions>]> = [
      ['σReparam, no LN, CAPE, GLU', {}],
      ['post-LN, sinusoidal, linear front-end', { norm: 'post', positions: 'sinusoidal', frontend: 'linear', reparam: 'none' }],
      ['pre-LN, separate QKV, CAPE', { norm: 'pre', qkv: 'separate' }],
    ];
    for (const [name, o] of invariance) {
      test(`padding frames do not change real frames' outputs (${name})`, async () => {
        const model = buildSpeech({ ...speechDefaults('test', 3), ...o });
        const { params, buffers } = tensors(model);
        const T = 31;
        const feats = randomFeatures(1, T, 7);
        // Alone (no padding) …
        const alone = tf.tidy(() => model.forward(params, buffers, {
          features: tf.tensor3d(feats, [1, T, F]), lengths: tf.tensor1d([T], 'int32'),
        }, EVAL).outputs['logits']);
        // … and as sample 1 of a batch padded to 47 frames with garbage, next to a longer utterance.
        const Tpad = 47;
        const batch = randomFeatures(2, Tpad, 99).map((v) => v * 50);
        batch.set(feats, Tpad * F);
        const padded = tf.tidy(() => model.forward(params, buffers, {
          features: tf.tensor3d(batch, [2, Tpad, F]), lengths: tf.tensor1d([Tpad, T], 'int32'),
        }, EVAL).outputs['logits']);
        const a = await alone.data();
        const p = await padded.data();
        const n = Math.ceil(T / 3) * 29;
        const offset = Math.ceil(Tpad / 3) * 29;
        let worst = 0;
        for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(a[i] - p[offset + i]));
        assert.ok(worst <= 2e-5, `largest difference ${worst}`);
        tf.dispose([alone, padded, ...params.values(), ...buffers.values()]);
      });
    }

    test('CAPE positions: centred seconds in evaluation; shifted, jittered, scaled within the bounds in training', async () => {
      const h = 0.03;
      const n = [40, 25, 7];
      const lens = tf.tensor1d(n, 'int32');
      const ev = await tf.tidy(() => capePositions(lens, 40, h, DEFAULT_CAPE, false, 1)).array();
      n.forEach((nb, b) => {
        for (let j = 0; j < 40; j++) assert.ok(Math.abs(ev[b][j] - (h * j - (h * (nb - 1)) / 2)) < 1e-6, `eval b=${b} j=${j}`);
      });
      const shifts: number[] = [];
      for (let seed = 0; seed < 20; seed++) {
        const tr = await tf.tidy(() => capePositions(lens, 40, h, DEFAULT_CAPE, true, seed)).array();
        n.forEach((nb, b) => {
          const p = tr[b].slice(0, nb);
          for (let j = 1; j < nb; j++) {
            const step = p[j] - p[j - 1]; // (h + ε_j − ε_{j−1})·λ ∈ [0, 2h·1.1] with local shift 1
            assert.ok(step >= -1e-6 && step <= 2 * h * 1.1 + 1e-6, `seed ${seed} b=${b}: step ${step}`);
          }
          const mid = p.reduce((a, x) => a + x, 0) / nb; // (Δ + mean ε)·λ
          assert.ok(Math.abs(mid) <= (60 + h / 2) * 1.1 + 1e-4, `seed ${seed} b=${b}: mean ${mid}`);
          shifts.push(mid);
          if (nb > 20) {
            const span = (p[nb - 1] - p[0]) / (h * (nb - 1)); // λ, up to the two end jitters
            assert.ok(span >= (1 - 1 / (nb - 1)) / 1.1 - 1e-5 && span <= (1 + 1 / (nb - 1)) * 1.1 + 1e-5, `seed ${seed}: span ${span}`);
          }
        });
      }
      assert.ok(Math.max(...shifts) - Math.min(...shifts) > 30, 'global shifts spread over ±60 s');
      lens.dispose();
    });

    test('CAPE: training positions are random per seed, evaluation is deterministic; LayerDrop skips layers', async () => {
      const model = buildSpeech({ ...speechDefaults('test', 4), layerDrop: 0.5 });
      const { params, buffers } = tensors(model);
      const inputs = { features: tf.tensor3d(randomFeatures(2, 24, 5), [2, 24, F]), lengths: tf.tensor1d([24, 20], 'int32') };
      const run = async (training: boolean, seed: number) => {
        const r = model.forward(params, buffers, inputs, { ...EVAL, training, seed });
        const out = {
          logits: await r.outputs['logits'].data(),
          skipped: (await Promise.all(r.entropy.map((e) => e.data()))).map((e) => Number.isNaN(e[0])),
        };
        tf.dispose([r.outputs['logits'], r.outputs['outLengths'], ...r.entropy, ...r.maxTokenNorm]);
        return out;
      };
      const e1 = await run(false, 1);
      const e2 = await run(false, 2);
      assert.deepEqual(e1.logits, e2.logits, 'evaluation does not depend on the seed');
      assert.deepEqual(e1.skipped, [false, false], 'no LayerDrop in evaluation');
      const t1 = await run(true, 1);
      const t1b = await run(true, 1);
      assert.deepEqual(t1.logits, t1b.logits, 'a training forward is a function of its seed');
      let differ = false;
      const seen = new Set<string>();
      for (let seed = 2; seed < 12; seed++) {
        const t = await run(true, seed);
        differ ||= t.logits.some((v, i) => Math.abs(v - t1.logits[i]) > 1e-4);
        seen.add(t.skipped.join());
        assert.ok(t.logits.every(Number.isFinite));
      }
      assert.ok(differ, 'CAPE augmentation changes the outputs with the seed');
      assert.ok(seen.size >= 3, `LayerDrop at 0.5 skips different layers with the seed (${[...seen].join(' / ')})`);
      tf.dispose([inputs.features, inputs.lengths, ...params.values(), ...buffers.values()]);
    });

    test('powerIterations > 0 returns new u and v for every σReparam linear', () => {
      const model = buildSpeech(speechDefaults('test', 5));
      const { params, buffers } = tensors(model);
      const r = model.forward(params, buffers, {
        features: tf.tensor3d(randomFeatures(1, 9, 2), [1, 9, F]), lengths: tf.tensor1d([9], 'int32'),
      }, { ...EVAL, training: true, powerIterations: 1 });
      assert.deepEqual([...r.bufferUpdates.keys()].sort(), model.buffers.map((b) => b.name).sort());
    });

    test('sharpness path: H·v of model + differentiable CTC equals finite differences of fast-path gradients', async () => {
      const model = buildSpeech({ ...speechDefaults('test', 7), positions: 'sinusoidal', norm: 'post' });
      const buffers = new Map(model.buffers.map((p) => [p.name, tf.tensor(p.init, p.shape)]));
      const features = tf.tensor3d(randomFeatures(2, 12, 3), [2, 12, F]);
      const lengths = tf.tensor1d([12, 9], 'int32');
      const targets = { targets: [3, 4, 4, 5, 0, 0], targetLengths: [3, 1], inputLengths: [4, 3] };
      const lossWith = (impl: CtcOptions['impl']) => (ps: tf.Tensor[]): tf.Scalar => {
        const params = new Map(model.params.map((p, i) => [p.name, ps[i]]));
        const r = model.forward(params, buffers, { features, lengths }, EVAL);
        return ctcLoss(r.outputs['logits'] as tf.Tensor3D, targets, { impl, reduction: 'sum' }) as tf.Scalar;
      };
      const ps = model.params.map((p) => tf.tensor(p.init, p.shape));
      let seed = 17;
      const vs = model.params.map((p) => tf.tensor(Float32Array.from(p.init, () => {
        seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
        return seed / 2 ** 31 - 1;
      }), p.shape));
      const flat = async (ts: tf.Tensor[]) => {
        const parts = await Promise.all(ts.map((t) => t.data()));
        tf.dispose(ts);
        return Float64Array.from(parts.flatMap((x) => Array.from(x)));
      };
      const hv = await flat(hessianVectorProduct(lossWith('differentiable'), ps, vs));
      // Central differences of the fast path's gradient along v, one Richardson step (error O(h⁴)).
      const gradAt = (t: number) => flat(tf.tidy(() => gradient(lossWith('fast'), ps.map((p, i) => tf.add(p, tf.mul(vs[i], t))))));
      const d = async (h: number) => { const [gp, gm] = [await gradAt(h), await gradAt(-h)]; return gp.map((x, i) => (x - gm[i]) / (2 * h)); };
      const h = 1e-2;
      const [d1, d2] = [await d(h), await d(h / 2)];
      const fd = d2.map((x, i) => (4 * x - d1[i]) / 3);
      const norm = (a: Float64Array) => Math.sqrt(a.reduce((acc, x) => acc + x * x, 0));
      const err = norm(hv.map((x, i) => x - fd[i])) / norm(fd);
      assert.ok(err <= 5e-3, `relative error ${err.toExponential(2)} (‖FD‖ ${norm(fd).toExponential(2)})`);
      tf.dispose([features, lengths, ...ps, ...vs, ...buffers.values()]);
    });

    test('a fixed batch is overfit: the CTC loss falls tenfold in 10 Adam steps', async () => {
      const model = buildSpeech({ ...speechDefaults('test', 6), norm: 'pre', positions: 'sinusoidal' });
      const vars = new Map(model.params.map((p) => [p.name, tf.variable(tf.tensor(p.init, p.shape), true)]));
      const buffers = new Map(model.buffers.map((p) => [p.name, tf.tensor(p.init, p.shape)]));
      const features = tf.tensor3d(randomFeatures(2, 30, 8), [2, 30, F]);
      const lengths = tf.tensor1d([30, 24], 'int32');
      const targets = { targets: [3, 4, 5, 6, 7, 7, 0, 0], targetLengths: [4, 2], inputLengths: [10, 8] };
      const opt = tf.train.adam(3e-3);
      const losses: number[] = [];
      const before = tf.memory().numTensors;
      for (let step = 0; step < 10; step++) {
        const cost = opt.minimize(() => {
          const r = model.forward(vars, buffers, { features, lengths }, { ...EVAL, training: true, seed: step });
          return ctcLoss(r.outputs['logits'] as tf.Tensor3D, targets) as tf.Scalar;
        }, true);
        losses.push((await cost!.data())[0]);
        cost!.dispose();
        if (step === 1) assert.equal(tf.memory().numTensors, before + 2 * vars.size, 'Adam state only: no leak per step');
      }
      assert.ok(losses[9] < 0.1 * losses[0], `loss ${losses.map((l) => l.toFixed(2)).join(' ')}`);
      opt.dispose();
      tf.dispose([features, lengths, ...vars.values(), ...buffers.values()]);
    });
  });
});
