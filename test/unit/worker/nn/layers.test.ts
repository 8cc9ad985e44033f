// Residual arrangements of the Transformer block (pre, post, none, DeepNorm) against hand-assembled references,
// and DeepNorm's α/β constants and init scaling.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../../worker/backend.js';
import { SpecBuilder } from '../../../../worker/nn/params.js';
import { Rng } from '../../../../worker/rng.js';
import { declareBlock, applyBlock, applyLayerNorm, deepNormConstants, gelu } from '../../../../worker/nn/layers.js';
import { applyAttention } from '../../../../worker/nn/attention.js';
import { applyLinear } from '../../../../worker/nn/linear.js';

const DIM = 8, HEADS = 2, MLP = 16, DEPTH = 6;

function block(norm: 'pre' | 'post' | 'none' | 'deepnorm') {
  const b = new SpecBuilder();
  const ref = declareBlock(b, 0, { dim: DIM, heads: HEADS, mlpDim: MLP, qkv: 'joint', norm, depth: DEPTH, dropPath: 0, linear: { reparam: 'none', gammaInit: 'one', initStd: 0.3 } }, new Rng(4));
  const rng = new Rng(8);
  const params = new Map(b.params.map((p) => [p.name, tf.tensor(p.kind === 'norm' ? p.init.map((v) => v + 0.1 * rng.normal32()) : p.init, p.shape)]));
  return { ref, params, specs: b.params, buffers: new Map<string, tf.Tensor>() };
}

test('block output equals the hand-assembled residual arrangement for each normalisation', async () => {
  await initBackend('cpu');
  const rng = new Rng(3);
  const x = tf.tensor3d(Float32Array.from({ length: 2 * 5 * DIM }, () => rng.normal32()), [2, 5, DIM]);
  for (const norm of ['pre', 'post', 'none', 'deepnorm'] as const) {
    const { ref, params, buffers } = block(norm);
    const opts = { temperature: 1, training: false, dropout: 0, attnDropout: 0, seed: 0 };
    const got = tf.tidy(() => applyBlock(ref, params, buffers, x, opts).x.arraySync());
    const want = tf.tidy(() => {
      const attn = (t: tf.Tensor3D) => applyAttention(ref.attn, params, buffers, { x: t, temperature: 1 }).y;
      const mlp = (t: tf.Tensor) => applyLinear(ref.mlp.fc2, params, buffers, gelu(applyLinear(ref.mlp.fc1, params, buffers, t)));
      const ln1 = (t: tf.Tensor) => applyLayerNorm(ref.ln1!, params, t);
      const ln2 = (t: tf.Tensor) => applyLayerNorm(ref.ln2!, params, t);
      const a = deepNormConstants(DEPTH).alpha;
      let h: tf.Tensor3D;
      switch (norm) {
        case 'pre': h = tf.add(x, attn(ln1(x) as tf.Tensor3D)); return tf.add(h, mlp(ln2(h))).arraySync();
        case 'none': h = tf.add(x, attn(x)); return tf.add(h, mlp(h)).arraySync();
        case 'post': h = ln1(tf.add(x, attn(x))) as tf.Tensor3D; return ln2(tf.add(h, mlp(h))).arraySync();
        case 'deepnorm': h = ln1(tf.add(tf.mul(x, a), attn(x))) as tf.Tensor3D; return ln2(tf.add(tf.mul(h, a), mlp(h))).arraySync();
      }
    });
    const g = (got as number[][][]).flat(2), w = (want as number[][][]).flat(2);
    assert.ok(g.every((v, i) => Math.abs(v - w[i]) < 1e-5), `${norm}: block output differs`);
  }
  x.dispose();
});

test('DeepNorm: α = (2N)^¼, β = (8N)^−¼; V, projection and MLP weights start β times smaller than Q and K', () => {
  const { alpha, beta } = deepNormConstants(DEPTH);
  assert.ok(Math.abs(alpha - Math.pow(12, 0.25)) < 1e-12 && Math.abs(beta - Math.pow(48, -0.25)) < 1e-12);
  const { specs } = block('deepnorm');
  const std = (name: string) => {
    const w = specs.find((p) => p.name === name)!.init;
    return Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
  };
  const qk = (std('blocks.0.attn.q.weight') + std('blocks.0.attn.k.weight')) / 2;
  for (const n of ['blocks.0.attn.v.weight', 'blocks.0.attn.proj.weight', 'blocks.0.mlp.fc1.weight', 'blocks.0.mlp.fc2.weight']) {
    const ratio = std(n) / qk;
    assert.ok(Math.abs(ratio - beta) < 0.25 * beta, `${n}: std ratio ${ratio} vs β ${beta}`);
  }
});
