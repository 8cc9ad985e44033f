// Transformer encoder-decoder: variants, DeepNorm constants, positions, padding invariance, cached = full decoding,
// the training forward's power step (u/v updates, no gradient through them), diagnostics and tensor hygiene.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../../worker/backend.js';
import { decodeSeq2SeqVariant } from '../../../../worker/models/seq2seq.js';
import { deepNormEncoderDecoderConstants } from '../../../../worker/nn/layers.js';
import { sinusoidalPositions } from '../../../../worker/nn/positions.js';
import { SigmaError } from '../../../../shared/errors.js';
import { Rng } from '../../../../worker/rng.js';
import { forEachBackend } from '../../../helpers/backends.js';
import { assertClose } from '../../../helpers/numeric.js';
import { BOS, EVAL, PAD, disposeBuilt, seq2seq } from '../../../helpers/seq2seq.js';

function randomTokens(rng: Rng, n: number, vocab: number): number[] {
  return Array.from({ length: n }, () => 3 + Math.floor(rng.next() * (vocab - 3)));
}

test('variants: base, big, the paper deep settings, width-prefixed depths; unknown names are SGT_MODEL_VARIANT', () => {
  assert.deepEqual(decodeSeq2SeqVariant('base'), { dim: 512, heads: 8, ffn: 2048, layers: 6, encoderLayers: 6, decoderLayers: 6 });
  assert.deepEqual(decodeSeq2SeqVariant('big'), { dim: 1024, heads: 16, ffn: 4096, layers: 6, encoderLayers: 6, decoderLayers: 6 });
  for (const [name, n] of [['18L-18L', 18], ['50L-50L', 50], ['100L-100L', 100]] as const) {
    const v = decodeSeq2SeqVariant(name);
    assert.deepEqual([v.dim, v.ffn, v.heads, v.encoderLayers, v.decoderLayers], [512, 2048, 8, n, n], name);
  }
  const t = decodeSeq2SeqVariant('tiny-12L-3L');
  assert.deepEqual([t.dim, t.encoderLayers, t.decoderLayers], [32, 12, 3]);
  for (const bad of ['huge', '0L-6L', 'base-6L', '6L']) {
    assert.throws(() => decodeSeq2SeqVariant(bad), (e: unknown) => e instanceof SigmaError && e.code === 'SGT_MODEL_VARIANT' && e.message.includes(`"${bad}"`), bad);
  }
});

test('parameter count of a 1+1-layer model equals the closed form (tied embedding, σReparam γ per linear)', () => {
  const b = seq2seq({ variant: 'test', qkv: 'separate', norm: 'post', reparam: 'sigma' });
  const d = 16, f = 32, V = 13;
  const lin = (i: number, o: number) => i * o + o + 1; // weight, bias, γ
  const attn = 4 * lin(d, d);
  const ffn = lin(d, f) + lin(f, d);
  const expected = V * d + (attn + ffn + 2 * 2 * d) + (2 * attn + ffn + 3 * 2 * d);
  assert.equal(b.model.params.reduce((s, p) => s + p.init.length, 0), expected);
  // u [in] and v [out] per linear: 4+2 linears in the encoder, 8+2 in the decoder.
  assert.equal(b.model.linears.length, 16);
  assert.equal(b.model.buffers.length, 32);
  disposeBuilt(b);
});

test('DeepNorm encoder-decoder constants (Wang et al. 2022) and the β-scaled init of V, projections and FFN', () => {
  // 6+6: N⁴M = 7776; 7776^(1/16) = 1.7505409…; decoder (3·6)^¼ = 2.059767…, (12·6)^−¼ = 0.3432945…
  const c = deepNormEncoderDecoderConstants(6, 6);
  assert.ok(Math.abs(c.encoder.alpha - 0.81 * 1.7505409) < 1e-6, `encoder α ${c.encoder.alpha}`);
  assert.ok(Math.abs(c.encoder.beta - 0.87 / 1.7505409) < 1e-6, `encoder β ${c.encoder.beta}`);
  assert.ok(Math.abs(c.decoder.alpha - 2.0597671) < 1e-6, `decoder α ${c.decoder.alpha}`);
  assert.ok(Math.abs(c.decoder.beta - 0.3432945) < 1e-6, `decoder β ${c.decoder.beta}`);
  const b = seq2seq({ variant: 'tiny-6L-6L', norm: 'deepnorm', reparam: 'none' });
  const std = (name: string) => {
    const w = b.model.params.find((p) => p.name === name)!.init;
    return Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
  };
  for (const [stack, beta] of [['encoder', c.encoder.beta], ['decoder', c.decoder.beta]] as const) {
    const attns = stack === 'encoder' ? ['self_attn'] : ['self_attn', 'cross_attn'];
    for (const a of attns) {
      const qk = (std(`${stack}.layers.2.${a}.q.weight`) + std(`${stack}.layers.2.${a}.k.weight`)) / 2;
      for (const w of ['v', 'proj']) {
        const ratio = std(`${stack}.layers.2.${a}.${w}.weight`) / qk;
        assert.ok(Math.abs(ratio / beta - 1) < 0.15, `${stack} ${a}.${w}: std ratio ${ratio} vs β ${beta}`);
      }
    }
    // fc1 32→64 and fc2 64→32 have Xavier std √(2/96) before β; q/k have √(2/64).
    const fc = std(`${stack}.layers.2.fc1.weight`) / Math.sqrt(2 / 96);
    const base = std(`${stack}.layers.2.self_attn.q.weight`) / Math.sqrt(2 / 64);
    assert.ok(Math.abs(fc / base / beta - 1) < 0.15, `${stack} fc1 ratio ${fc / base} vs β ${beta}`);
  }
  disposeBuilt(b);
});

test('sinusoidal positions: PE[p, 2i] = sin(p·10000^(−2i/d)), PE[p, 2i+1] = cos(…), offsets continue the table', () => {
  const d = 8;
  const pe = sinusoidalPositions(5, d);
  for (const [p, i] of [[0, 0], [1, 0], [3, 1], [4, 3]]) {
    const w = Math.exp((-2 * i * Math.log(10000)) / d);
    assert.ok(Math.abs(pe[p * d + 2 * i] - Math.sin(p * w)) < 1e-6 && Math.abs(pe[p * d + 2 * i + 1] - Math.cos(p * w)) < 1e-6, `p=${p} i=${i}`);
  }
  assert.deepEqual(Array.from(sinusoidalPositions(2, d, 3)), Array.from(pe.subarray(3 * d, 5 * d)));
  assert.throws(() => sinusoidalPositions(2, 7), /even/);
});

forEachBackend((backend) => {
  test(`[${backend}] forward: logits [B, T, V], one entropy per site within [0, log #keys], no tensors left behind`, async () => {
    const b = seq2seq({ norm: 'pre' });
    const { model, params, buffers } = b;
    const before = tf.memory().numTensors;
    const src = tf.tensor2d([[3, 4, 5, 6], [7, 8, PAD, PAD]], [2, 4], 'int32');
    const tgt = tf.tensor2d([[BOS, 9, 10], [BOS, 11, PAD]], [2, 3], 'int32');
    const lens = { srcLengths: tf.tensor1d([4, 2], 'int32'), tgtLengths: tf.tensor1d([3, 2], 'int32') };
    const packed = tf.tidy(() => {
      const r = model.forward(params, buffers, { src, tgtIn: tgt, ...lens }, EVAL);
      assert.deepEqual(r.outputs['logits'].shape, [2, 3, 13]);
      assert.equal(r.entropy.length, model.attentionSites.length);
      assert.deepEqual(model.attentionSites.map((s) => s.kind), ['self', 'causal', 'cross']);
      assert.equal(r.bufferUpdates.size, 0, 'evaluation forwards leave u/v alone');
      return tf.concat([...r.entropy, tf.stack(r.maxTokenNorm)]);
    });
    const v = await packed.data();
    packed.dispose();
    // At most log 4 (self, 4 source keys), log 3 (causal), log 4 (cross); entropies are non-negative.
    const caps = [Math.log(4), Math.log(4), Math.log(3), Math.log(3), Math.log(4), Math.log(4)];
    caps.forEach((cap, i) => assert.ok(v[i] >= 0 && v[i] <= cap + 1e-5, `entropy[${i}] = ${v[i]} outside [0, ${cap}]`));
    for (let i = 6; i < 9; i++) assert.ok(v[i] > 0 && Number.isFinite(v[i]), `maxTokenNorm ${v[i]}`);
    tf.dispose([src, tgt, ...Object.values(lens)]);
    assert.equal(tf.memory().numTensors, before);
    disposeBuilt(b);
  });

  test(`[${backend}] padding does not change a sentence's logits (source and target padding, every normalisation)`, async () => {
    for (const norm of ['post', 'pre', 'deepnorm', 'none'] as const) {
      const b = seq2seq({ norm });
      const rng = new Rng(11);
      const s0 = randomTokens(rng, 3, 13), t0 = [BOS, ...randomTokens(rng, 2, 13)];
      const s1 = randomTokens(rng, 6, 13), t1 = [BOS, ...randomTokens(rng, 4, 13)];
      const alone = tf.tidy(() => b.model.forward(b.params, b.buffers, {
        src: tf.tensor2d([s0], [1, 3], 'int32'), tgtIn: tf.tensor2d([t0], [1, 3], 'int32'),
      }, EVAL).outputs['logits']);
      // Sentence 0 padded to the longer one's lengths, with junk (not PAD) token ids in the padding.
      const batched = tf.tidy(() => tf.slice(b.model.forward(b.params, b.buffers, {
        src: tf.tensor2d([[...s0, 5, 5, 5], s1], [2, 6], 'int32'),
        tgtIn: tf.tensor2d([[...t0, 7, 7], t1], [2, 5], 'int32'),
        srcLengths: tf.tensor1d([3, 6], 'int32'), tgtLengths: tf.tensor1d([3, 5], 'int32'),
      }, EVAL).outputs['logits'], [0, 0, 0], [1, 3, 13]));
      assertClose(await batched.data(), await alone.data(), 1e-5, `${norm}: padded logits`);
      tf.dispose([alone, batched]);
      disposeBuilt(b);
    }
  });

  test(`[${backend}] cached incremental decoding gives the full forward's logits (post/pre/DeepNorm/none, joint/separate qkv)`, async () => {
    const configs = [
      { norm: 'post', qkv: 'separate' }, { norm: 'pre', qkv: 'joint' }, { norm: 'deepnorm', qkv: 'separate' }, { norm: 'none', qkv: 'joint', reparam: 'stats' },
    ] as const;
    for (const c of configs) {
      const b = seq2seq({ ...c, variant: 'tiny' });
      const before = tf.memory().numTensors;
      const src = tf.tensor2d([[3, 4, 5, 6, 7], [8, 9, 10, PAD, PAD]], [2, 5], 'int32');
      const srcMask = tf.tensor2d([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]);
      const tgt = [[BOS, 11, 12, 3, 4, 5], [BOS, 6, 7, 8, 9, 10]];
      const full = tf.tidy(() => b.model.forward(b.params, b.buffers, { src, srcMask, tgtIn: tf.tensor2d(tgt, [2, 6], 'int32') }, EVAL).outputs['logits']);
      // The same with log-softmax, position by position, through the cache.
      const fullLp = tf.tidy(() => tf.logSoftmax(full));
      let { decoder, cache } = b.model.incremental(b.params, b.buffers, src, srcMask);
      const steps: tf.Tensor[] = [];
      for (let t = 0; t < 6; t++) {
        const tok = tf.tensor1d([tgt[0][t], tgt[1][t]], 'int32');
        const r = decoder.step(cache, tok);
        const keep = new Set(decoder.tensors(r.cache));
        tf.dispose([tok, ...decoder.tensors(cache).filter((x) => !keep.has(x))]);
        cache = r.cache;
        steps.push(r.logProbs.reshape([2, 1, 13]));
        r.logProbs.dispose();
      }
      const inc = tf.concat(steps, 1);
      assertClose(await inc.data(), await fullLp.data(), 2e-5, `${c.norm}/${c.qkv}: cached vs full log-probs`);
      tf.dispose([inc, ...steps, full, fullLp, src, srcMask, ...decoder.tensors(cache)]);
      assert.equal(tf.memory().numTensors, before, `${c.norm}: tensors left behind`);
      disposeBuilt(b);
    }
  });
});

test('training forward: one power step per σReparam/stats linear, u/v returned as updates, no gradient through them', async () => {
  await initBackend('cpu');
  const b = seq2seq({ variant: 'test', norm: 'post' });
  const { model, params } = b;
  // u far from converged (init puts it at W₀'s top singular vector, where the terms through u/v vanish anyway).
  const buffers = new Map(b.buffers);
  for (const l of model.linears) buffers.set(l.u!, tf.tensor1d(Array.from({ length: l.inFeatures }, (_, i) => Math.cos(1 + i * 2.3))));
  const inputs = {
    src: tf.tensor2d([[3, 4, 5], [6, 7, PAD]], [2, 3], 'int32'), srcLengths: tf.tensor1d([3, 2], 'int32'),
    tgtIn: tf.tensor2d([[BOS, 8, 9], [BOS, 10, PAD]], [2, 3], 'int32'), tgtLengths: tf.tensor1d([3, 2], 'int32'),
  };
  const train = { ...EVAL, training: true, powerIterations: 1 };
  const names = [...params.keys()];
  const vars = names.map((n) => params.get(n)!);
  const probe = Float32Array.from({ length: 2 * 3 * 13 }, (_, i) => Math.sin(i));
  // Loss L = Σ logits ⊙ probe, through the training forward (power step inside)…
  let updates = new Map<string, tf.Tensor>();
  const trainGrads = tf.tidy(() => tf.engine().gradients(() => {
    const r = model.forward(new Map(names.map((n, i) => [n, vars[i]])), buffers, inputs, train);
    updates = new Map([...r.bufferUpdates].map(([k, t]) => [k, tf.keep(t)]));
    return tf.sum(tf.mul(r.outputs['logits'], tf.tensor3d(probe, [2, 3, 13]))) as tf.Scalar;
  }, vars).grads);
  assert.equal(updates.size, 2 * model.linears.length);
  // …u' = normalize(W normalize(uᵀW)) on the host for one linear…
  const l = model.linears[3];
  const [W, u0, u1, v1] = await Promise.all([params.get(l.weight)!.data(), buffers.get(l.u!)!.data(), updates.get(l.u!)!.data(), updates.get(l.v!)!.data()]);
  const [n, m] = [l.inFeatures, l.outFeatures];
  const v = Array.from({ length: m }, (_, j) => Array.from(u0).reduce((s, ui, i) => s + ui * W[i * m + j], 0));
  const vn = Math.hypot(...v);
  const u = Array.from({ length: n }, (_, i) => v.reduce((s, vj, j) => s + W[i * m + j] * (vj / vn), 0));
  const un = Math.hypot(...u);
  assertClose(v1, v.map((x) => x / vn), 1e-5, 'v');
  assertClose(u1, u.map((x) => x / un), 1e-5, 'u');
  // …and equals an evaluation forward that reads the updated u/v as constants: same gradients.
  const merged = new Map(buffers);
  for (const [k, t] of updates) merged.set(k, t);
  const evalGrads = tf.tidy(() => tf.engine().gradients(() => {
    const r = model.forward(new Map(names.map((nm, i) => [nm, vars[i]])), merged, inputs, EVAL);
    return tf.sum(tf.mul(r.outputs['logits'], tf.tensor3d(probe, [2, 3, 13]))) as tf.Scalar;
  }, vars).grads);
  for (let i = 0; i < names.length; i++) {
    if (!evalGrads[i]) continue;
    assertClose(await trainGrads[i].data(), await evalGrads[i].data(), 1e-4, `grad ${names[i]}`);
  }
  tf.dispose([...trainGrads, ...evalGrads, ...updates.values(), ...Object.values(inputs), ...model.linears.map((x) => buffers.get(x.u!)!)]);
  disposeBuilt(b);
});

test('dropout only in training, and reproducible from the seed', async () => {
  await initBackend('cpu');
  const b = seq2seq({ variant: 'test', reparam: 'none' });
  const inputs = { src: tf.tensor2d([[3, 4, 5]], [1, 3], 'int32'), tgtIn: tf.tensor2d([[BOS, 8, 9]], [1, 3], 'int32') };
  const run = (o: typeof EVAL) => tf.tidy(() => b.model.forward(b.params, b.buffers, inputs, o).outputs['logits']);
  const drop = { ...EVAL, training: true, dropout: 0.3, attnDropout: 0.2 };
  const [e1, e2, d1, d2, d3] = [run(EVAL), run({ ...EVAL, dropout: 0.3 }), run({ ...drop, seed: 5 }), run({ ...drop, seed: 5 }), run({ ...drop, seed: 6 })];
  assert.deepEqual(await e1.data(), await e2.data(), 'evaluation ignores dropout');
  assert.deepEqual(await d1.data(), await d2.data(), 'same seed, same masks');
  assert.notDeepEqual(await d1.data(), await d3.data(), 'another seed, other masks');
  assert.notDeepEqual(await d1.data(), await e1.data());
  tf.dispose([e1, e2, d1, d2, d3, ...Object.values(inputs)]);
  disposeBuilt(b);
});
