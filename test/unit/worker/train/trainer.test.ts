// The replica step on a tiny ViT: no tensor leaks over 20 steps, the loss falls, 1 vs 2 half-batch gradients agree,
// and the step digest chains identically on replicas that apply the same reduced steps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { loadConfig } from '../../../../shared/config/index.js';
import { buildModel } from '../../../../worker/models/index.js';
import { ClassifyTask } from '../../../../worker/tasks/classify.js';
import { Trainer } from '../../../../worker/train/trainer.js';
import { LocalCollective } from '../../../../worker/comm/collective.js';
import { Rng } from '../../../../worker/rng.js';
import { forEachBackend } from '../../../helpers/backends.js';

function tinyConfig(extra: Record<string, unknown> = {}) {
  return loadConfig({
    env: {},
    overrides: {
      model: { vit: { variant: 'test/4', imageSize: 8, dropPath: 0.1, ...(extra.vit as object) }, reparam: 'sigma', norm: 'none', dropout: 0.1, ...(extra.model as object) },
      data: { shapes: { numClasses: 3 } },
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
      for (let ch = 0; ch < 3; ch++) x[(i * size * size + p) * 3 + ch] = (q === y[i] ? 1 : -0.5) + 0.3 * rng.normal32();
    }
  }
  return { x, y, samples: n, units: n, skipped: [] };
}

forEachBackend((backend) => {
  test(`[${backend}] tf.memory().numTensors is constant over 20 training steps; the loss falls`, async () => {
    const config = tinyConfig();
    const trainer = new Trainer(config, new ClassifyTask(config), { totalSteps: 20 });
    const batch = fixedBatch(8, 8, 1);
    const counts: number[] = [];
    const losses: number[] = [];
    for (let s = 0; s < 20; s++) {
      const r = await trainer.trainStep(batch, new LocalCollective());
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
  const config = tinyConfig({ model: { dropout: 0 }, vit: { dropPath: 0 } });
  const batch = fixedBatch(8, 8, 2);
  const half = (lo: number, hi: number) => ({ x: batch.x.slice(lo * 192, hi * 192), y: batch.y.slice(lo, hi), samples: hi - lo, units: hi - lo, skipped: [] });
  const captured: Float32Array[] = [];
  const capture = { allReduceSum: async (flat: Float32Array) => { captured.push(flat.slice()); } };
  const whole = new Trainer(config, new ClassifyTask(config));
  await whole.trainStep(batch, capture);
  const a = new Trainer(config, new ClassifyTask(config));
  const b = new Trainer(config, new ClassifyTask(config), { rank: 1 });
  await a.trainStep(half(0, 3), capture);
  await b.trainStep(half(3, 8), capture);
  const [g, ga, gb] = captured;
  const grads = whole.state.totalSize;
  let num = 0, den = 0;
  for (let i = 0; i < grads; i++) {
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
  const capture = { allReduceSum: async (flat: Float32Array) => { captured.push(flat.slice()); } };
  for (const micro of [0, 3]) {
    const config = loadConfig({ env: {}, overrides: { model: { vit: { variant: 'test/4', imageSize: 8 } }, data: { shapes: { numClasses: 3 } }, train: { globalBatch: 8, microBatch: micro } } });
    const t = new Trainer(config, new ClassifyTask(config));
    await t.trainStep(batch, capture);
    t.dispose();
  }
  const [whole, accumulated] = captured;
  assert.equal(whole.length, accumulated.length);
  let num = 0, den = 0;
  for (let i = 0; i < whole.length; i++) {
    num += (accumulated[i] - whole[i]) ** 2;
    den += whole[i] ** 2;
  }
  assert.ok(Math.sqrt(num / den) < 1e-5, `relative difference ${Math.sqrt(num / den)}`);
});

test('model.vit.patchInitGain scales the patch embedding\'s init alone (ViT-L reference: 0.125)', () => {
  const plain = buildModel(tinyConfig());
  const scaled = buildModel(tinyConfig({ vit: { patchInitGain: 0.125 } }));
  const byName = (m: { params: { name: string; init: Float32Array }[] }) => new Map(m.params.map((p) => [p.name, p.init]));
  const a = byName(plain);
  const b = byName(scaled);
  const w = a.get('patch_embed.weight')!;
  assert.ok(w.some((x) => x !== 0));
  assert.deepEqual(b.get('patch_embed.weight'), w.map((x) => x * 0.125), 'exactly 0.125× the same draws');
  for (const [name, init] of a) if (name !== 'patch_embed.weight') assert.deepEqual(b.get(name), init, name);
  // σReparam's u depends on the direction of W only: unchanged by the scale.
  const u = (m: { buffers: { name: string; init: Float32Array }[] }) => m.buffers.find((x) => x.name === 'patch_embed.u')!.init;
  assert.ok(u(scaled).every((x, i) => Math.abs(x - u(plain)[i]) < 1e-6));
  assert.throws(() => tinyConfig({ vit: { patchInitGain: 0 } }), /model\.vit\.patchInitGain/);
});

test('the step digest chains (previous, step, reduced buffer): equal on replicas fed the same sums, and differs with the data', async () => {
  await tf.setBackend('cpu');
  const config = tinyConfig({ model: { dropout: 0 }, vit: { dropPath: 0 } });
  // Two "ranks" whose reduced buffers are the same sum (one sums both halves in its reduce, like the ring).
  const batch = fixedBatch(8, 8, 5);
  const [a, b, c] = [0, 1, 2].map((rank) => new Trainer(config, new ClassifyTask(config), { rank }));
  const digests: string[][] = [[], [], []];
  for (let s = 0; s < 3; s++) {
    digests[0].push((await a.trainStep(batch, new LocalCollective())).digest);
    digests[1].push((await b.trainStep(batch, new LocalCollective())).digest);
    digests[2].push((await c.trainStep(fixedBatch(8, 8, 6 + s), new LocalCollective())).digest);
  }
  assert.deepEqual(digests[0], digests[1], 'same reduced buffers, same chain');
  assert.equal(new Set(digests[0]).size, 3, 'every step moves the chain');
  assert.ok(digests[0].every((d, i) => d !== digests[2][i] && /^[0-9a-f]{16}$/.test(d)), 'other data, other chain');
  for (const t of [a, b, c]) t.dispose();
});
