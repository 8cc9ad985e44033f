// Tests for SpecAugment: mask counts and width bounds (F, T, p), exactly the masked cells are zero and the rest
// untouched, determinism from the seed, and the distribution of widths over many draws.

import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { SPEC_AUGMENT_RECIPE, checkSpecAugment, specAugment, specAugmentSeed, type SpecAugmentOptions } from '../../../../../worker/data/audio/specaugment.js';
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
    checkSpecAugment(SPEC_AUGMENT_RECIPE);
  });
});
