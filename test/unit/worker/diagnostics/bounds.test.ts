// The per-head Theorem 3.1 bounds of a real ViT replica lie below the entropies its forward measures;
// σ/γ statistics match the parameters.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../../worker/backend.js';
import { loadConfig } from '../../../../shared/config/index.js';
import { buildModel } from '../../../../worker/models/index.js';
import { ReplicaState } from '../../../../worker/train/state.js';
import { entropyBounds, spectralStats } from '../../../../worker/diagnostics/bounds.js';
import { Rng } from '../../../../worker/nn/rng.js';
import { topSingular } from '../../../../worker/nn/spectral.js';

test('bounds ≤ measured per-head entropy at small and large weight scales, joint and separate Q/K/V', async () => {
  await initBackend('cpu');
  for (const [std, qkv] of [[0.02, 'joint'], [0.5, 'joint'], [1.5, 'separate']] as const) {
    const config = loadConfig({ env: {}, overrides: { model: { variant: 'test/4', imageSize: 8, reparam: 'sigma', gammaInit: 'spectral', initStd: std, qkv, norm: 'none' }, data: { numClasses: 3 } } });
    const model = buildModel(config);
    const state = new ReplicaState(model.params, model.buffers);
    const rng = new Rng(9);
    const x = tf.tensor4d(Float32Array.from({ length: 4 * 8 * 8 * 3 }, () => rng.normal()), [4, 8, 8, 3]);
    const { entropy, norms } = tf.tidy(() => {
      const r = model.forward(state.params, state.buffers, { images: x }, { training: false, temperature: 1, dropout: 0, attnDropout: 0, seed: 0 });
      return { entropy: r.entropy.map((e) => Array.from(e.dataSync())), norms: r.maxTokenNorm.map((n) => n.dataSync()[0]) };
    });
    const bounds = (await entropyBounds(model, state, norms, 1)).map((b) => b.heads);
    for (let l = 0; l < entropy.length; l++) {
      for (let h = 0; h < entropy[l].length; h++) {
        assert.ok(bounds[l][h] <= entropy[l][h] + 1e-5, `std ${std} layer ${l} head ${h}: bound ${bounds[l][h]} > entropy ${entropy[l][h]}`);
        assert.ok(bounds[l][h] >= 0);
      }
    }
    if (std === 0.02) assert.ok(bounds.flat().every((b) => b > 0.5), 'small weights: the bound stays near log T');
    x.dispose();
    state.dispose();
  }
});

test('spectralStats: σ from the power-iteration vectors, γ as stored', async () => {
  await initBackend('cpu');
  const config = loadConfig({ env: {}, overrides: { model: { variant: 'test/4', imageSize: 8, gammaInit: 'spectral' }, data: { numClasses: 3 } } });
  const model = buildModel(config);
  const state = new ReplicaState(model.params, model.buffers);
  const stats = (await spectralStats(model, state));
  assert.equal(stats.length, model.linears.length);
  for (const s of stats) {
    const l = model.linears.find((x) => x.name === s.name)!;
    const w = state.params.get(l.weight)!.dataSync() as Float32Array; // [in, out]
    // u starts as W₀'s top right-singular vector, so σ = the top singular value, and γ = σ(W₀) (spectral init).
    const { sigma } = topSingular(w, l.inFeatures, l.outFeatures);
    assert.ok(Math.abs(s.sigma - sigma) < 1e-4 * sigma, `${s.name}: ${s.sigma} vs ${sigma}`);
    assert.ok(s.gamma !== null && Math.abs(s.gamma - sigma) < 1e-4 * sigma);
  }
  state.dispose();
});
