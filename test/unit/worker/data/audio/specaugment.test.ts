// Tests for SpecAugment: mask counts and width bounds (F, T, p), exactly the masked cells are zero and the rest
// untouched, determinism from the seed, and the distribution of widths over many draws; the frequency warp (VTLP)
// against its closed form on features linear in mel.

import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import {
  SPEC_AUGMENT_RECIPE, checkSpecAugment, drawWarp, specAugment, specAugmentSeed, warpFrequency, type MelAxis, type SpecAugmentOptions,
} from '../../../../../worker/data/audio/specaugment.js';
import { melAxisOf } from '../../../../../worker/data/audio/features.js';
import { Rng } from '../../../../../worker/rng.js';

const feats = (frames: number, bins = 80, seed = 1) => {
  const r = new Rng(seed);
  // Values never 0, so a 0 can only come from a mask.
  return { data: Float32Array.from({ length: frames * bins }, () => 1 + r.float()), frames, bins };
};

describe('specAugment', () => {
  it('applies the recipe: 2 frequency and 10 time masks within F, T and p·frames; zeros exactly the masked cells', () => {
    for (const frames of [30, 200, 1000]) {
      const f = feats(frames);
      const before = Float32Array.from(f.data);
      const masks = specAugment(f, SPEC_AUGMENT_RECIPE, specAugmentSeed(7, 0, frames));
      assert.equal(masks.filter((m) => m.axis === 'freq').length, 2);
      assert.equal(masks.filter((m) => m.axis === 'time').length, 10);
      const tMax = Math.min(50, Math.floor(0.1 * frames));
      const masked = new Uint8Array(frames * 80);
      for (const m of masks) {
        assert.ok(m.width >= 0 && m.start >= 0);
        if (m.axis === 'freq') {
          assert.ok(m.width <= 30 && m.start + m.width <= 80, JSON.stringify(m));
          for (let t = 0; t < frames; t++) for (let b = m.start; b < m.start + m.width; b++) masked[t * 80 + b] = 1;
        } else {
          assert.ok(m.width <= tMax && m.start + m.width <= frames, `${JSON.stringify(m)} (limit ${tMax})`);
          for (let t = m.start; t < m.start + m.width; t++) for (let b = 0; b < 80; b++) masked[t * 80 + b] = 1;
        }
      }
      for (let i = 0; i < masked.length; i++) assert.equal(f.data[i], masked[i] ? 0 : before[i], `cell ${i}`);
    }
  });

  it('is a function of the seed: same seed same masks, other utterance or epoch other masks', () => {
    const a = specAugment(feats(300), SPEC_AUGMENT_RECIPE, specAugmentSeed(1, 2, 3));
    const b = specAugment(feats(300, 80, 99), SPEC_AUGMENT_RECIPE, specAugmentSeed(1, 2, 3));
    assert.deepEqual(a, b);
    assert.notDeepEqual(specAugment(feats(300), SPEC_AUGMENT_RECIPE, specAugmentSeed(1, 2, 4)), a);
    assert.notDeepEqual(specAugment(feats(300), SPEC_AUGMENT_RECIPE, specAugmentSeed(1, 3, 3)), a);
  });

  it('widths are uniform over [0, F] (mean F/2; both ends reached) and starts keep masks inside', () => {
    const o: SpecAugmentOptions = { freqMasks: 1, freqWidth: 10, timeMasks: 1, timeWidth: 20, maxTimeFraction: 1 };
    const fw: number[] = [], tw: number[] = [];
    for (let s = 0; s < 4000; s++) {
      const m = specAugment(feats(40, 16, 0), o, s);
      fw.push(m[0]!.width);
      tw.push(m[1]!.width);
    }
    const mean = (v: number[]): number => v.reduce((a, b) => a + b, 0) / v.length;
    assert.ok(Math.abs(mean(fw) - 5) < 0.25, `freq width mean ${mean(fw)}`);
    assert.ok(Math.abs(mean(tw) - 10) < 0.5, `time width mean ${mean(tw)}`);
    assert.equal(Math.min(...fw), 0);
    assert.equal(Math.max(...fw), 10);
    assert.equal(Math.max(...tw), 20);
  });

  it('a short utterance gets no time mask wider than p·frames (0 frames when p·frames < 1)', () => {
    const f = feats(9);
    const before = Float32Array.from(f.data);
    const masks = specAugment(f, { ...SPEC_AUGMENT_RECIPE, freqMasks: 0 }, 5);
    assert.ok(masks.every((m) => m.width === 0));
    assert.deepEqual(f.data, before);
  });

  it('rejects bad options naming the key', () => {
    assert.throws(() => checkSpecAugment({ ...SPEC_AUGMENT_RECIPE, timeMasks: -1 }), /timeMasks=-1/);
    assert.throws(() => checkSpecAugment({ ...SPEC_AUGMENT_RECIPE, maxTimeFraction: 2 }), /maxTimeFraction=2/);
    assert.throws(() => checkSpecAugment({ ...SPEC_AUGMENT_RECIPE, freqWarp: 0.5 }), /freqWarp=0\.5 \(data\.librispeech\.specAugment\.freqWarp\)/);
    assert.throws(() => checkSpecAugment({ ...SPEC_AUGMENT_RECIPE, freqWarp: -0.1 }), /freqWarp=-0\.1/);
    checkSpecAugment(SPEC_AUGMENT_RECIPE);
    checkSpecAugment({ ...SPEC_AUGMENT_RECIPE, freqWarp: 0.1 });
  });
});

describe('frequency warp (VTLP)', () => {
  // Bin b of `bins` centred at toHz(lo + (b + 1)(hi − lo)/(bins + 1)): features whose value is the mel of each bin's
  // centre are linear in b, so linear interpolation is exact and the warped bin b must hold mel(f_b / α) (clamped to the
  // first and last centre): a closed form independent of the code's index arithmetic.
  const melFeatures = (axis: MelAxis, bins: number, frames: number) => {
    const lo = axis.toMel(axis.lowHz), hi = axis.toMel(axis.highHz);
    const centre = (b: number) => lo + ((b + 1) * (hi - lo)) / (bins + 1);
    const data = new Float32Array(frames * bins);
    for (let t = 0; t < frames; t++) for (let b = 0; b < bins; b++) data[t * bins + b] = centre(b) / 100 + t;
    return { f: { data, frames, bins }, centre, lo, hi };
  };
  for (const [name, axis] of [
    ['logmel slaney', melAxisOf({ kind: 'logmel' })], ['logmel htk', melAxisOf({ kind: 'logmel', melScale: 'htk' })], ['kaldi-fbank', melAxisOf({ kind: 'kaldi-fbank' })],
  ] as const) {
    it(`${name}: warped bin b holds the value at frequency f_b / α (clamped at the band edges), every frame alike`, () => {
      for (const alpha of [0.9, 0.97, 1.05, 1.1]) {
        const bins = 80, frames = 3;
        const { f, centre } = melFeatures(axis, bins, frames);
        warpFrequency(f, alpha, axis);
        for (let b = 0; b < bins; b++) {
          const want = Math.min(centre(bins - 1), Math.max(centre(0), axis.toMel(axis.toHz(centre(b)) / alpha))) / 100;
          for (let t = 0; t < frames; t++) {
            const got = f.data[t * bins + b]! - t;
            assert.ok(Math.abs(got - want) <= 1e-5 * Math.abs(want) + 2e-5, `α ${alpha} bin ${b} frame ${t}: ${got} vs ${want}`);
          }
        }
      }
    });
  }

  it('α = 1 leaves the features untouched; α > 1 moves a spectral peak up, α < 1 down', () => {
    const axis = melAxisOf({ kind: 'logmel' });
    const bins = 80;
    const peak = (alpha: number) => {
      const data = Float32Array.from({ length: bins }, (_, b) => Math.exp(-((b - 40) ** 2) / 8));
      const f = { data, frames: 1, bins };
      warpFrequency(f, alpha, axis);
      return { f, at: data.indexOf(Math.max(...data)) };
    };
    const same = peak(1);
    assert.deepEqual(same.f.data, Float32Array.from({ length: bins }, (_, b) => Math.exp(-((b - 40) ** 2) / 8)));
    assert.ok(peak(1.1).at > 40, `α 1.1: peak at ${peak(1.1).at}`);
    assert.ok(peak(0.9).at < 40, `α 0.9: peak at ${peak(0.9).at}`);
  });

  it('α is uniform in [1 − w, 1 + w] per utterance seed, and drawing it leaves the masks as they are without a warp', () => {
    const a = Array.from({ length: 4000 }, (_, s) => drawWarp(specAugmentSeed(3, 0, s), 0.1));
    assert.ok(a.every((x) => x >= 0.9 && x <= 1.1));
    const mean = a.reduce((x, y) => x + y, 0) / a.length;
    assert.ok(Math.abs(mean - 1) < 0.003, `mean α ${mean}`);
    assert.ok(Math.min(...a) < 0.905 && Math.max(...a) > 1.095);
    const axis = melAxisOf({ kind: 'logmel' });
    const seed = specAugmentSeed(1, 2, 3);
    const plain = feats(300);
    const warped = feats(300);
    const m0 = specAugment(plain, SPEC_AUGMENT_RECIPE, seed);
    const m1 = specAugment(warped, { ...SPEC_AUGMENT_RECIPE, freqWarp: 0.1 }, seed, axis);
    assert.deepEqual(m1, m0);
    assert.notDeepEqual(warped.data, plain.data);
    assert.throws(() => specAugment(feats(30), { ...SPEC_AUGMENT_RECIPE, freqWarp: 0.1 }, seed), /mel axis/);
  });
});
