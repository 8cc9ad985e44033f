// worker/diagnostics/sharpness.ts: top Hessian eigenvalues of a σReparam ViT's mean loss against a dense Hessian from
// finite differences of the gradient (Jacobi), the same value from a batch split across simulated ranks, no leaks.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as tf from '@tensorflow/tfjs';

import { loadConfig } from '../../../../shared/config/index.js';
import { initBackend } from '../../../../worker/backend.js';
import { gradient } from '../../../../worker/diagnostics/hvp.js';
import { sharpness, type SumReduce } from '../../../../worker/diagnostics/sharpness.js';
import { ClassifyTask, crossEntropySum, type ClassifyBatch as SharpnessBatch } from '../../../../worker/tasks/classify.js';
import { buildModel } from '../../../../worker/models/index.js';
import { sincos2d, type VitModel, type VitOptions } from '../../../../worker/models/vit.js';
import { declareBlock, applyBlock } from '../../../../worker/nn/layers.js';
import { declareLinear, applyLinear, type LinearRef } from '../../../../worker/nn/linear.js';
import { SpecBuilder, type TensorMap } from '../../../../worker/nn/params.js';
import { Rng } from '../../../../worker/rng.js';
import { ReplicaState } from '../../../../worker/train/state.js';
import { jacobiEigenvalues } from './jacobi.js';

/**
 * A ViT small enough for a dense Hessian that Jacobi decomposes in about a second (245 parameters; `test/4` has ≈4400):
 * 8×8×1 images, patch 4 (4 tokens), dim 4, 2 heads, MLP 8, one block without LayerNorm, mean pooling, 3 classes, σReparam on every linear — built from
 * the same nn/ layers as worker/models/vit.ts.
 */
function microVit(seed: number): VitModel {
  const options: VitOptions = {
    variant: 'micro/4', imageSize: 8, patchSize: 4, channels: 1, numClasses: 3, reparam: 'sigma', gammaInit: 'one',
    qkv: 'joint', norm: 'none', initStd: 0.3, posEmb: 'sincos', pool: 'gap', dropPath: 0, seed,
  };
  const [dim, heads, mlpDim, patch, grid, patchDim] = [4, 2, 8, 4, 2, 16];
  const rng = new Rng(seed);
  const b = new SpecBuilder();
  const lin = { reparam: 'sigma' as const, gammaInit: 'one' as const, initStd: options.initStd };
  const embed = declareLinear(b, 'patch_embed', { ...lin, inFeatures: patchDim, outFeatures: dim }, rng);
  const blk = declareBlock(b, 0, { dim, heads, mlpDim, qkv: 'joint', norm: 'none', depth: 1, dropPath: 0, linear: lin }, rng);
  const head = declareLinear(b, 'head', { ...lin, inFeatures: dim, outFeatures: 3 }, rng);
  const pos = sincos2d(grid, dim).subarray(dim); // no cls position
  const linears: LinearRef[] = [embed, blk.attn.joint!, blk.attn.proj, blk.mlp.fc1, blk.mlp.fc2, head];
  return {
    options, arch: { dim, depth: 1, heads, mlpDim, patch, tokens: grid * grid, patchDim },
    params: b.params, buffers: b.buffers, linears, blocks: [blk],
    family: 'vit', attentionSites: [], architecture: () => ({}),
    forward(params: TensorMap, buffers: TensorMap, inputs: Record<string, tf.Tensor>, f) {
      const images = inputs.images as tf.Tensor4D;
      const B = images.shape[0];
      const patches = tf.transpose(images.reshape([B * grid, patch, grid, patch]), [0, 2, 1, 3]).reshape([B, grid * grid, patchDim]);
      let x = tf.add(applyLinear(embed, params, buffers, patches), tf.tensor3d(pos, [1, grid * grid, dim])) as tf.Tensor3D;
      const r = applyBlock(blk, params, buffers, x, { ...f, seed: f.seed });
      x = r.x;
      const logits = applyLinear(head, params, buffers, tf.mean(x, 1)) as tf.Tensor2D;
      return { outputs: { logits }, entropy: [r.entropy], maxTokenNorm: [r.maxTokenNorm], bufferUpdates: new Map() };
    },
  };
}

function tinyVit(): VitModel {
  const config = loadConfig({
    env: {},
    overrides: { model: { vit: { variant: 'test/4', imageSize: 8 }, reparam: 'sigma', norm: 'none' }, data: { shapes: { numClasses: 3 } } },
  });
  return buildModel(config) as VitModel;
}

/** Random images [n, s, s, c] and labels 0..2. */
function randomBatch(n: number, s: number, c: number, seed: number): SharpnessBatch {
  const rng = new Rng(seed);
  return {
    x: Float32Array.from({ length: n * s * s * c }, () => rng.normal32()),
    y: Int32Array.from({ length: n }, (_, i) => (i * 7 + seed) % 3),
    samples: n, units: n, skipped: [],
  };
}

/** The classification task around a prebuilt model (8×8 images with `channels` channels, 3 classes). */
function taskOf(model: VitModel, channels = 3): ClassifyTask {
  const config = loadConfig({ env: {}, overrides: { model: { vit: { variant: 'test/4', imageSize: 8 } }, data: { shapes: { numClasses: 3 } } } });
  return new ClassifyTask(config, model, channels);
}

const local: SumReduce = async () => {};

/** An in-memory all-reduce for `ranks` concurrent callers: sums the round's vectors and hands every rank the same sum. */
function sharedReducer(ranks: number): SumReduce {
  let round: { flat: Float32Array; done: () => void }[] = [];
  return (flat) => new Promise<void>((resolve) => {
    round.push({ flat, done: resolve });
    if (round.length < ranks) return;
    const sum = new Float32Array(flat.length);
    for (const r of round) for (let i = 0; i < sum.length; i++) sum[i] += r.flat[i];
    for (const r of round) { r.flat.set(sum); r.done(); }
    round = [];
  });
}

const OPTS = { k: 2, iterations: 20, seed: 5, temperature: 0.7, labelSmoothing: 0.1 };

test('micro ViT: top-2 eigenvalues match a dense finite-difference Hessian (Jacobi) to 1e-3', async (t) => {
  await initBackend('cpu');
  const model = microVit(3);
  const state = new ReplicaState(model.params, model.buffers);
  const batch = randomBatch(6, 8, 1, 1);
  const dim = state.totalSize;
  t.diagnostic(`${dim} parameters`);
  assert.ok(dim < 400, `${dim} parameters: too many for a dense Hessian`);

  const t0 = performance.now();
  const r = await sharpness(taskOf(model, 1), state, batch, { ...OPTS, iterations: 40 }, local);
  t.diagnostic(`sharpness ${r.eigenvalues.map((e) => e.toPrecision(6)).join(', ')} in ${r.seconds.toFixed(2)} s`);
  assert.ok(r.seconds > 0 && r.seconds <= (performance.now() - t0) / 1000 + 1e-3);

  // Dense H of the mean loss, column j = (∇L(θ + h e_j) − ∇L(θ − h e_j)) / 2h; the same forward (no dropout, fixed u, v).
  const theta = new Float32Array(dim);
  let off = 0;
  for (let i = 0; i < state.order.length; i++) {
    theta.set(state.params.get(state.order[i])!.dataSync(), off);
    off += state.sizes[i];
  }
  const x = tf.tensor4d(batch.x, [batch.samples, 8, 8, 1]);
  const y = tf.tensor1d(batch.y, 'int32');
  const meanLoss = (ps: tf.Tensor[]): tf.Scalar => {
    const params = new Map(state.order.map((n, i) => [n, ps[i]]));
    const logits = model.forward(params, state.buffers, { images: x }, { training: false, temperature: OPTS.temperature, dropout: 0, attnDropout: 0, seed: 0 }).outputs.logits as tf.Tensor2D;
    return tf.div(crossEntropySum(logits, y, OPTS.labelSmoothing), batch.samples);
  };
  const gradAt = (p: Float32Array): Float64Array => {
    const out = new Float64Array(dim);
    tf.tidy(() => {
      let o = 0;
      const ps = state.order.map((n, i) => { const s = p.slice(o, o + state.sizes[i]); o += state.sizes[i]; return tf.tensor(s, state.shapes.get(n)!); });
      let q = 0;
      for (const g of gradient(meanLoss, ps)) { out.set(g.dataSync(), q); q += g.size; }
    });
    return out;
  };
  const h = 1e-3;
  const H = new Float64Array(dim * dim);
  const p = theta.slice();
  for (let j = 0; j < dim; j++) {
    p[j] = theta[j] + h;
    const up = p[j];
    const gp = gradAt(p);
    p[j] = theta[j] - h;
    const down = p[j];
    const gm = gradAt(p);
    p[j] = theta[j];
    for (let i = 0; i < dim; i++) H[i * dim + j] = (gp[i] - gm[i]) / (up - down); // actual float32 step
  }
  tf.dispose([x, y]);
  let asym = 0, size = 0;
  for (let i = 0; i < dim; i++) for (let j = 0; j < dim; j++) { asym = Math.max(asym, Math.abs(H[i * dim + j] - H[j * dim + i])); size = Math.max(size, Math.abs(H[i * dim + j])); }
  const t1 = performance.now();
  const dense = jacobiEigenvalues(H, dim);
  t.diagnostic(`Jacobi ${((performance.now() - t1) / 1000).toFixed(1)} s`);
  t.diagnostic(`dense: ${dense.slice(0, 3).map((e) => e.toPrecision(6)).join(', ')} … ${dense[dim - 1].toPrecision(4)}; FD asymmetry ${asym.toExponential(1)} of max ${size.toPrecision(3)}; ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  t.diagnostic(`relative differences ${[0, 1].map((i) => (Math.abs(r.eigenvalues[i] - dense[i]) / Math.abs(dense[0])).toExponential(1)).join(', ')}`);
  for (let i = 0; i < 2; i++) {
    const rel = Math.abs(r.eigenvalues[i] - dense[i]) / Math.abs(dense[0]);
    assert.ok(rel <= 1e-3, `eigenvalue ${i}: Lanczos ${r.eigenvalues[i]} vs dense ${dense[i]} (rel ${rel.toExponential(2)})`);
  }
  state.dispose();
});

test('test/4 ViT: the batch split across two concurrent ranks (3 + 5 samples) gives the one-rank eigenvalues on both', async () => {
  await initBackend('cpu');
  const model = tinyVit();
  const batch = randomBatch(8, 8, 3, 2);
  const part = (lo: number, hi: number): SharpnessBatch => ({ x: batch.x.slice(lo * 192, hi * 192), y: batch.y.slice(lo, hi), samples: hi - lo, units: hi - lo, skipped: [] });
  const one = new ReplicaState(model.params, model.buffers);
  const whole = await sharpness(taskOf(model), one, batch, OPTS, local);
  const [a, b] = [new ReplicaState(model.params, model.buffers), new ReplicaState(model.params, model.buffers)];
  const reduce = sharedReducer(2);
  const [ra, rb] = await Promise.all([sharpness(taskOf(model), a, part(0, 3), OPTS, reduce), sharpness(taskOf(model), b, part(3, 8), OPTS, reduce)]);
  assert.deepEqual(ra.eigenvalues, rb.eigenvalues, 'ranks disagree');
  whole.eigenvalues.forEach((e, i) => assert.ok(Math.abs(ra.eigenvalues[i] - e) <= 1e-4 * Math.abs(whole.eigenvalues[0]),
    `eigenvalue ${i}: two ranks ${ra.eigenvalues[i]}, one rank ${e}`));
  for (const s of [one, a, b]) s.dispose();
});

test('a rank without samples takes part with zeros and n = 0; an empty global batch is an error', async () => {
  await initBackend('cpu');
  const model = tinyVit();
  const batch = randomBatch(4, 8, 3, 3);
  const empty: SharpnessBatch = { x: new Float32Array(0), y: new Int32Array(0), samples: 0, units: 0, skipped: [] };
  const s = new ReplicaState(model.params, model.buffers);
  const whole = await sharpness(taskOf(model), s, batch, OPTS, local);
  const reduce = sharedReducer(2);
  const [ra, rb] = await Promise.all([sharpness(taskOf(model), s, batch, OPTS, reduce), sharpness(taskOf(model), s, empty, OPTS, reduce)]);
  assert.deepEqual(ra.eigenvalues, whole.eigenvalues);
  assert.deepEqual(rb.eigenvalues, whole.eigenvalues);
  await assert.rejects(sharpness(taskOf(model), s, empty, OPTS, local), /global diagnostic batch has a denominator of 0/);
  s.dispose();
});

for (const backend of ['cpu', 'wasm'] as const) {
  test(`${backend}: repeated sharpness calls keep tf.memory().numTensors constant; micro-batches change nothing`, async () => {
    await initBackend(backend);
    const model = tinyVit();
    const state = new ReplicaState(model.params, model.buffers);
    const batch = randomBatch(6, 8, 3, 4);
    const opts = { ...OPTS, iterations: 8 };
    const before = tf.memory().numTensors;
    const r1 = await sharpness(taskOf(model), state, batch, opts, local);
    const r2 = await sharpness(taskOf(model), state, batch, { ...opts, microBatch: 4 }, local);
    await assert.rejects(sharpness(taskOf(model), state, batch, opts, async () => { throw new Error('ring down'); }), /ring down/);
    assert.equal(tf.memory().numTensors, before);
    r1.eigenvalues.forEach((e, i) => assert.ok(Math.abs(r2.eigenvalues[i] - e) <= 1e-4 * Math.abs(r1.eigenvalues[0]), `${r2.eigenvalues[i]} vs ${e}`));
    state.dispose();
  });
}
