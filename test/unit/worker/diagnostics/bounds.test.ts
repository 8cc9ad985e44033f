// The per-head Theorem 3.1 bounds of a real ViT replica lie below the entropies its forward measures;
// σ/γ statistics match the parameters.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../../worker/backend.js';
import { loadConfig } from '../../../../shared/config/index.js';
import { buildModel } from '../../../../worker/models/index.js';
import { ReplicaState } from '../../../../worker/train/state.js';
import type { VitModel } from '../../../../worker/models/vit.js';
import { entropyBounds, spectralStats } from '../../../../worker/diagnostics/bounds.js';
import { Rng } from '../../../../worker/rng.js';
import { topSingular } from '../../../../worker/nn/spectral.js';

test('bounds ≤ measured per-head entropy at small and large weight scales, joint and separate Q/K/V', async () => {
  await initBackend('cpu');
  for (const [std, qkv] of [[0.02, 'joint'], [0.5, 'joint'], [1.5, 'separate']] as const) {
    const config = loadConfig({ env: {}, overrides: { model: { vit: { variant: 'test/4', imageSize: 8 }, reparam: 'sigma', gammaInit: 'spectral', initStd: std, qkv, norm: 'none' }, data: { shapes: { numClasses: 3 } } } });
    const model = buildModel(config);
    const state = new ReplicaState(model.params, model.buffers);
    const rng = new Rng(9);
    const x = tf.tensor4d(Float32Array.from({ length: 4 * 8 * 8 * 3 }, () => rng.normal32()), [4, 8, 8, 3]);
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
  const config = loadConfig({ env: {}, overrides: { model: { vit: { variant: 'test/4', imageSize: 8 }, gammaInit: 'spectral' }, data: { shapes: { numClasses: 3 } } } });
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

/** Softmax entropy (nats) of one row of logits, in float64. */
function rowEntropy(logits: number[]): number {
  const m = Math.max(...logits);
  const e = logits.map((z) => Math.exp(z - m));
  const s = e.reduce((a, b) => a + b, 0);
  return -e.reduce((a, v) => a + (v / s) * Math.log(v / s), 0);
}

test('Theorem 3.1 closed form: the bound equals the entropy of its extremal row (one logit +σ, T−1 at −σ)', async () => {
  const { entropyLowerBound } = await import('../../../../worker/nn/entropy_bound.js');
  for (const T of [2, 5, 17, 197]) {
    for (const sigma of [0, 0.1, 1, 3, 10]) {
      const extremal = rowEntropy([sigma, ...new Array<number>(T - 1).fill(-sigma)]);
      const b = entropyLowerBound(sigma, T);
      assert.ok(Math.abs(b - extremal) <= 1e-12 * Math.max(1, extremal), `T ${T} σ ${sigma}: bound ${b} vs extremal row ${extremal}`);
    }
    assert.ok(Math.abs(entropyLowerBound(0, T) - Math.log(T)) < 1e-12, 'σ = 0: uniform attention, log T');
  }
});

test('entropyBounds on a construction with known ‖W_Q,h W_K,hᵀ‖₂, token norm r and temperature τ (scale errors fail)', async () => {
  await initBackend('cpu');
  const { entropyLowerBound } = await import('../../../../worker/nn/entropy_bound.js');
  for (const qkv of ['joint', 'separate'] as const) {
    const config = loadConfig({ env: {}, overrides: { model: { vit: { variant: 'test/4', imageSize: 8 }, reparam: 'none', qkv, norm: 'none' }, data: { shapes: { numClasses: 3 } } } });
    const model = buildModel(config) as VitModel;
    const state = new ReplicaState(model.params, model.buffers);
    const { dim, heads, tokens } = model.arch;
    const dh = dim / heads;
    // W_q = diag(q), W_k = diag(k) (weights are [in, out]): W_Q,h W_K,hᵀ is diag(q_i k_i) on head h's coordinates, so
    // ‖W_Q,h W_K,hᵀ‖₂ = max over i in head h of |q_i k_i| — a different value per layer and head.
    const q = (l: number, i: number) => 0.5 + 0.25 * i + l;
    const k = (l: number, i: number) => (i % 2 ? -1 : 1) * (1.2 - 0.1 * l); // top two |q_i k_i| of a head ≥ 6 % apart: power iteration converges
    for (const [l, b] of model.blocks.entries()) {
      const wq = new Float32Array(dim * dim);
      const wk = new Float32Array(dim * dim);
      for (let i = 0; i < dim; i++) {
        wq[i * dim + i] = q(l, i);
        wk[i * dim + i] = k(l, i);
      }
      if (b.attn.joint) {
        const w = new Float32Array(dim * 3 * dim); // [dim, 3·dim]: Q | K | V columns
        for (let i = 0; i < dim; i++) {
          w[i * 3 * dim + i] = wq[i * dim + i];
          w[i * 3 * dim + dim + i] = wk[i * dim + i];
        }
        state.restore(new Map([[b.attn.joint.weight, w]]));
      } else {
        state.restore(new Map([[b.attn.q!.weight, wq], [b.attn.k!.weight, wk]]));
      }
    }
    const r = [0.8, 0.6]; // σ ≈ 1.5–2.3: the bound is far from both log T and 0, so a factor of 2 shows
    const tau = 0.5;
    const bounds = (await entropyBounds(model, state, r, tau)).map((b) => b.heads);
    for (const [l] of model.blocks.entries()) {
      for (let h = 0; h < heads; h++) {
        let norm = 0;
        for (let i = h * dh; i < (h + 1) * dh; i++) norm = Math.max(norm, Math.abs(q(l, i) * k(l, i)));
        const sigma = (norm * r[l] * r[l]) / (Math.sqrt(dh) * tau); // logits are q·k/(√dh τ), |x| ≤ r
        const expected = entropyLowerBound(sigma, tokens);
        assert.ok(Math.abs(bounds[l][h] - expected) <= 1e-5 * expected + 1e-7,
          `${qkv} layer ${l} head ${h}: bound ${bounds[l][h]} vs closed form ${expected} (σ = ${sigma})`);
        // A factor of 2 anywhere in σ (r instead of r², √dh missing, τ ignored) moves the bound by far more.
        assert.ok(Math.abs(entropyLowerBound(2 * sigma, tokens) - expected) > 1e-2 && Math.abs(entropyLowerBound(sigma / 2, tokens) - expected) > 1e-2);
      }
    }
    state.dispose();
  }
});
