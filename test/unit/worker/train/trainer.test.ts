// The replica step on a tiny ViT: no tensor leaks over 20 steps, the loss falls, and 1 vs 2 half-batch gradients agree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { loadConfig } from '../../../../shared/config/index.js';
import { buildModel } from '../../../../worker/models/index.js';
import { Trainer, localReducer } from '../../../../worker/train/trainer.js';
import { Rng } from '../../../../worker/nn/rng.js';
import { forEachBackend } from '../../../helpers/backends.js';

function tinyConfig(extra: Record<string, unknown> = {}) {
  return loadConfig({
    env: {},
    overrides: {
      model: { variant: 'test/4', imageSize: 8, reparam: 'sigma', norm: 'none', dropout: 0.1, dropPath: 0.1, ...(extra.model as object) },
      data: { numClasses: 3 },
      train: { globalBatch: 8 },
      optim: { lr: 0.01, clipGradNorm: 1 },
    },
  });
}

function fixedBatch(n: number, size: number, seed: number) {
  const rng = new Rng(seed);
  const y = Int32Array.from({ length: n }, (_, i) => i % 3);
  // Class k brightens quadrant k: learnable in a few steps.
  const x = new Float32Array(n * size * size * 3);
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < size * size; p++) {
      const r = Math.floor(p / size), c = p % size;
      const q = (r < size / 2 ? 0 : 2) + (c < size / 2 ? 0 : 1);
      for (let ch = 0; ch < 3; ch++) x[(i * size * size + p) * 3 + ch] = (q === y[i] ? 1 : -0.5) + 0.3 * rng.normal();
    }
  }
  return { x, y, n };
}

forEachBackend((backend) => {
  test(`[${backend}] tf.memory().numTensors is constant over 20 training steps; the loss falls`, async () => {
    const config = tinyConfig();
    const trainer = new Trainer(config, buildModel(config), 0, 20);
    const batch = fixedBatch(8, 8, 1);
    const counts: number[] = [];
    const losses: number[] = [];
    for (let s = 0; s < 20; s++) {
      const r = await trainer.trainStep(batch, localReducer);
      losses.push(r.loss);
      counts.push(tf.memory().numTensors);
    }
    assert.deepEqual(new Set(counts.slice(1)).size, 1, `tensor counts ${counts.join(',')}`);
    assert.ok(losses[19] < losses[0] * 0.7, `loss did not fall: ${losses[0]} → ${losses[19]}`);
    trainer.dispose();
  });
});

test('gradients of a batch split across two replicas, summed, equal the one-replica gradient', async () => {
  await tf.setBackend('cpu');
  const config = tinyConfig({ model: { dropout: 0, dropPath: 0 } });
  const batch = fixedBatch(8, 8, 2);
  const half = (lo: number, hi: number) => ({ x: batch.x.slice(lo * 192, hi * 192), y: batch.y.slice(lo, hi), n: hi - lo });
  const captured: Float32Array[] = [];
  const capture = async (flat: Float32Array) => { captured.push(flat.slice()); };
  const whole = new Trainer(config, buildModel(config));
  await whole.trainStep(batch, capture);
  const a = new Trainer(config, buildModel(config));
  const b = new Trainer(config, buildModel(config), 1);
  await a.trainStep(half(0, 3), capture);
  await b.trainStep(half(3, 8), capture);
  const [g, ga, gb] = captured;
  let num = 0, den = 0;
  for (let i = 0; i < g.length; i++) {
    num += (ga[i] + gb[i] - g[i]) ** 2;
    den += g[i] ** 2;
  }
  assert.ok(Math.sqrt(num / den) < 1e-5, `relative difference ${Math.sqrt(num / den)}`);
  for (const t of [whole, a, b]) t.dispose();
});

test('gradient accumulation: micro-batches of 3 give the whole batch\'s summed gradient', async () => {
  await tf.setBackend('cpu');
  const batch = fixedBatch(8, 8, 4);
  const captured: Float32Array[] = [];
  const capture = async (flat: Float32Array) => { captured.push(flat.slice()); };
  for (const micro of [0, 3]) {
    const config = loadConfig({ env: {}, overrides: { model: { variant: 'test/4', imageSize: 8 }, data: { numClasses: 3 }, train: { globalBatch: 8, microBatch: micro } } });
    const t = new Trainer(config, buildModel(config));
    await t.trainStep(batch, capture);
    t.dispose();
  }
  const [whole, accumulated] = captured;
  let num = 0, den = 0;
  for (let i = 0; i < whole.length; i++) {
    num += (accumulated[i] - whole[i]) ** 2;
    den += whole[i] ** 2;
  }
  assert.ok(Math.sqrt(num / den) < 1e-5, `relative difference ${Math.sqrt(num / den)}`);
});

test('model.patchInitGain scales the patch embedding\'s init alone (ViT-L reference: 0.125)', () => {
  const plain = buildModel(tinyConfig());
  const scaled = buildModel(tinyConfig({ model: { patchInitGain: 0.125 } }));
  const byName = (m: typeof plain) => new Map(m.params.map((p) => [p.name, p.init]));
  const a = byName(plain);
  const b = byName(scaled);
  const w = a.get('patch_embed.weight')!;
  assert.ok(w.some((x) => x !== 0));
  assert.deepEqual(b.get('patch_embed.weight'), w.map((x) => x * 0.125), 'exactly 0.125× the same draws');
  for (const [name, init] of a) if (name !== 'patch_embed.weight') assert.deepEqual(b.get(name), init, name);
  // σReparam's u depends on the direction of W only: unchanged by the scale.
  const u = (m: typeof plain) => m.buffers.find((x) => x.name === 'patch_embed.u')!.init;
  assert.ok(u(scaled).every((x, i) => Math.abs(x - u(plain)[i]) < 1e-6));
  assert.throws(() => tinyConfig({ model: { patchInitGain: 0 } }), /model\.patchInitGain/);
});
