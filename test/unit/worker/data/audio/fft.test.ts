// Tests for PowerSpectrum: power-of-two (fft.js) and Bluestein (any size) paths against a direct O(n²) DFT.

import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { PowerSpectrum } from '../../../../../worker/data/audio/fft.js';
import { Rng } from '../../../../../worker/rng.js';

/** |Σ_j x_j e^{−2πijk/n}|² by definition. */
function naivePower(x: Float64Array): Float64Array {
  const n = x.length;
  const out = new Float64Array(Math.floor(n / 2) + 1);
  for (let k = 0; k < out.length; k++) {
    let re = 0, im = 0;
    for (let j = 0; j < n; j++) {
      const a = (-2 * Math.PI * ((j * k) % n)) / n;
      re += x[j]! * Math.cos(a);
      im += x[j]! * Math.sin(a);
    }
    out[k] = re * re + im * im;
  }
  return out;
}

describe('PowerSpectrum', () => {
  for (const n of [4, 16, 512, 6, 25, 400, 401]) {
    it(`matches a direct DFT for n = ${n}`, () => {
      const rng = new Rng(n);
      const x = Float64Array.from({ length: n }, () => rng.normal() * 1000);
      const ps = new PowerSpectrum(n);
      assert.equal(ps.bins, Math.floor(n / 2) + 1);
      const got = new Float64Array(ps.bins);
      ps.compute(x, got);
      const want = naivePower(x);
      const scale = Math.max(...want);
      for (let k = 0; k < want.length; k++) {
        assert.ok(Math.abs(got[k]! - want[k]!) <= 1e-9 * Math.abs(want[k]!) + 1e-10 * scale, `n=${n} bin ${k}: ${got[k]} vs ${want[k]}`);
      }
      // Two frames at once: each equals its direct DFT.
      const y = Float64Array.from({ length: n }, () => rng.normal() * 10);
      const pa = new Float64Array(ps.bins), pb = new Float64Array(ps.bins);
      ps.computePair(x, y, pa, pb);
      const wantY = naivePower(y);
      const scaleY = Math.max(...wantY);
      for (let k = 0; k < want.length; k++) {
        assert.ok(Math.abs(pa[k]! - want[k]!) <= 1e-9 * Math.abs(want[k]!) + 1e-10 * scale, `pair n=${n} a bin ${k}: ${pa[k]} vs ${want[k]}`);
        assert.ok(Math.abs(pb[k]! - wantY[k]!) <= 1e-9 * Math.abs(wantY[k]!) + 1e-9 * scaleY, `pair n=${n} b bin ${k}: ${pb[k]} vs ${wantY[k]}`);
      }
      // Reuse gives the same answer (scratch buffers are reset).
      const again = new Float64Array(ps.bins);
      ps.compute(x, again);
      assert.deepEqual(again, got);
    });
  }

  it('a pure tone lands in its bin (closed form: |X_k|² = (n/2)² for a unit cosine at bin k)', () => {
    const n = 400, k0 = 37;
    const x = Float64Array.from({ length: n }, (_, j) => Math.cos((2 * Math.PI * k0 * j) / n));
    const ps = new PowerSpectrum(n);
    const p = new Float64Array(ps.bins);
    ps.compute(x, p);
    assert.ok(Math.abs(p[k0]! - (n / 2) ** 2) < 1e-6 * (n / 2) ** 2);
    for (let k = 0; k < ps.bins; k++) if (k !== k0) assert.ok(p[k]! < 1e-12 * (n / 2) ** 2, `leak at bin ${k}: ${p[k]}`);
  });

  it('rejects sizes below 2', () => {
    assert.throws(() => new PowerSpectrum(1), /size 1/);
  });
});
