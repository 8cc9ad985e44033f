// Tests for batch mixing: Beta sampling moments, mixup pixel/label mixing, cutmix box area = (1 − λ)·H·W with the
// box pixels taken from the partner, soft labels summing to 1, label smoothing, and the mixup/cutmix switch.

import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { DEIT_MIX, cutmixBox, mixBatch, sampleBeta, smoothOneHot, type MixConfig } from '../../../../worker/data/mix.js';
import { Rng } from '../../../../worker/rng.js';

const H = 6, W = 5, ROW = H * W * 3, K = 4;
/** n rows, row i filled with the value i + 1 (so a mixed pixel reveals its sources). */
const batch = (n: number): Float32Array => Float32Array.from({ length: n * ROW }, (_, k) => Math.floor(k / ROW) + 1);
const MIXUP: MixConfig = { ...DEIT_MIX, cutmixAlpha: 0, labelSmoothing: 0 };
const CUTMIX: MixConfig = { ...DEIT_MIX, mixupAlpha: 0, labelSmoothing: 0 };

function rowSums(soft: Float32Array, n: number): number[] {
  return Array.from({ length: n }, (_, i) => soft.subarray(i * K, (i + 1) * K).reduce((a, b) => a + b, 0));
}

describe('sampleBeta', () => {
  it('has the moments of Beta(α, α) for α = 0.8 and 1', () => {
    for (const a of [0.8, 1]) {
      const rng = new Rng(11);
      const xs = Array.from({ length: 20000 }, () => sampleBeta(rng, a, a));
      const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
      const v = xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length;
      const want = (a * a) / ((2 * a) ** 2 * (2 * a + 1));
      assert.ok(Math.abs(mean - 0.5) < 0.01, `mean ${mean}`);
      assert.ok(Math.abs(v - want) < 0.005, `var ${v} vs ${want}`);
      assert.ok(xs.every((x) => x >= 0 && x <= 1));
    }
  });
});

describe('mixBatch', () => {
  const labels = Int32Array.from([0, 1, 2, 3, 1]);

  it('mixup: x_i = λ·x_i + (1−λ)·x_{n−1−i}; soft = λ·e_{y_i} + (1−λ)·e_{y_{n−1−i}}, rows summing to 1', () => {
    const x = batch(5);
    const { soft, info } = mixBatch(x, labels, 5, H, W, K, MIXUP, new Rng(4));
    assert.equal(info.mode, 'mixup');
    const lam = info.lam;
    assert.ok(lam > 0 && lam < 1);
    for (let i = 0; i < 5; i++) {
      const j = 4 - i;
      const want = lam * (i + 1) + (1 - lam) * (j + 1);
      for (const k of [0, 7, ROW - 1]) assert.ok(Math.abs(x[i * ROW + k]! - want) < 1e-5, `row ${i}`);
      for (let c = 0; c < K; c++) {
        const e = (lam * (labels[i] === c ? 1 : 0)) + (1 - lam) * (labels[j] === c ? 1 : 0);
        assert.ok(Math.abs(soft[i * K + c]! - e) < 1e-6);
      }
    }
    for (const s of rowSums(soft, 5)) assert.ok(Math.abs(s - 1) < 1e-6);
  });

  it('cutmix: the box holds the partner, the rest is untouched, and λ = 1 − box area / (H·W)', () => {
    let seen = 0;
    for (let s = 0; s < 30; s++) {
      const x = batch(4);
      const { soft, info } = mixBatch(x, labels, 4, H, W, K, CUTMIX, new Rng(s));
      if (info.mode === 'none') continue; // λ was exactly 1 (not expected)
      assert.equal(info.mode, 'cutmix');
      const box = info.box!;
      assert.ok(Math.abs(info.lam - (1 - (box.height * box.width) / (H * W))) < 1e-12, `seed ${s}`);
      for (let i = 0; i < 4; i++) {
        let fromPartner = 0;
        for (let y = 0; y < H; y++) {
          for (let xx = 0; xx < W; xx++) {
            const v = x[i * ROW + (y * W + xx) * 3]!;
            const inBox = y >= box.top && y < box.top + box.height && xx >= box.left && xx < box.left + box.width;
            assert.equal(v, inBox ? 4 - i : i + 1);
            if (inBox) fromPartner++;
          }
        }
        assert.ok(Math.abs(fromPartner / (H * W) - (1 - info.lam)) < 1e-12);
      }
      for (const sum of rowSums(soft, 4)) assert.ok(Math.abs(sum - 1) < 1e-6);
      seen++;
    }
    assert.ok(seen >= 25);
  });

  it('odd batch: the middle row pairs with itself (pixels unchanged, its own label)', () => {
    const x = batch(5);
    const { soft } = mixBatch(x, labels, 5, H, W, K, MIXUP, new Rng(8));
    assert.ok(Math.abs(x[2 * ROW]! - 3) < 1e-6);
    assert.deepEqual([...soft.subarray(2 * K, 3 * K)].map((v) => Math.round(v * 1e6) / 1e6), [0, 0, 1, 0]);
  });

  it('label smoothing: off = ε/K, on = 1 − ε + ε/K; mixed rows still sum to 1', () => {
    assert.deepEqual([...smoothOneHot([2], 1, 4, 0.1)].map((v) => Math.round(v * 1e6) / 1e6), [0.025, 0.025, 0.925, 0.025]);
    const { soft } = mixBatch(batch(5), labels, 5, H, W, K, DEIT_MIX, new Rng(2));
    for (const s of rowSums(soft, 5)) assert.ok(Math.abs(s - 1) < 1e-6);
    assert.ok(soft.every((v) => v >= 0.025 - 1e-7));
  });

  it('switches between mixup and cutmix with probability 0.5; prob 0 never mixes', () => {
    let cut = 0;
    for (let s = 0; s < 400; s++) if (mixBatch(batch(2), labels, 2, H, W, K, DEIT_MIX, new Rng(s)).info.mode === 'cutmix') cut++;
    assert.ok(cut > 150 && cut < 250, `${cut} / 400`);
    const x = batch(2);
    const r = mixBatch(x, labels, 2, H, W, K, { ...DEIT_MIX, prob: 0, labelSmoothing: 0 }, new Rng(1));
    assert.equal(r.info.mode, 'none');
    assert.deepEqual(x, batch(2));
    assert.deepEqual([...r.soft], [1, 0, 0, 0, 0, 1, 0, 0]);
  });

  it('cutmixBox: cut = trunc(side·√(1−λ)), centred at a uniform pixel, clipped (timm rand_bbox)', () => {
    const rng = new Rng(21);
    const cy = rng.int(10);
    const cx = rng.int(10);
    const { box, lam } = cutmixBox(10, 10, 0.75, new Rng(21));
    const lo = (c: number): number => Math.max(0, c - 2);
    const hi = (c: number): number => Math.min(10, c + 2);
    assert.deepEqual(box, { top: lo(cy), left: lo(cx), height: hi(cy) - lo(cy), width: hi(cx) - lo(cx) });
    assert.equal(lam, 1 - (box.height * box.width) / 100);
    assert.equal(cutmixBox(10, 10, 0.75, new Rng(21), false).lam, 0.75);
  });

  it('rejects labels outside [0, classes)', () => {
    assert.throws(() => mixBatch(batch(1), [4], 1, H, W, K, MIXUP, new Rng(1)), /label 4/);
  });
});
