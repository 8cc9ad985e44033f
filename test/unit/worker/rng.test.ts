// The one Rng (issue 10 item 10): its two families of draws share one stream, and their distributions match closed
// forms (uniform moments, N(0, 1), the ±2σ truncated normal's standard deviation).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng, deriveSeed, mixSeed } from '../../../worker/rng.js';

const N = 200_000;
function moments(draw: () => number): { mean: number; variance: number; min: number; max: number } {
  let s = 0;
  let s2 = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < N; i++) {
    const x = draw();
    s += x;
    s2 += x * x;
    min = Math.min(min, x);
    max = Math.max(max, x);
  }
  const mean = s / N;
  return { mean, variance: s2 / N - mean * mean, min, max };
}

test('next() is one 32-bit draw of the stream, float() two: both read the same mulberry32 state', () => {
  const [a, b] = [new Rng(7), new Rng(7)];
  for (let i = 0; i < 100; i++) assert.equal(a.next(), b.u32() / 2 ** 32);
  const [c, d] = [new Rng(9), new Rng(9)];
  for (let i = 0; i < 100; i++) {
    const hi = d.u32() >>> 5;
    const lo = d.u32() >>> 6;
    assert.equal(c.float(), (hi * 2 ** 26 + lo) / 2 ** 53);
  }
});

test('uniforms and normals have the moments of their distributions (4 standard errors)', () => {
  const r = new Rng(deriveSeed(0, 1));
  for (const u of [moments(() => r.next()), moments(() => r.float())]) {
    assert.ok(u.min >= 0 && u.max < 1);
    assert.ok(Math.abs(u.mean - 0.5) < 4 * Math.sqrt(1 / 12 / N), `mean ${u.mean}`);
    assert.ok(Math.abs(u.variance - 1 / 12) < 8e-4, `variance ${u.variance}`);
  }
  for (const z of [moments(() => r.normal()), moments(() => r.normal32())]) {
    assert.ok(Math.abs(z.mean) < 4 / Math.sqrt(N), `mean ${z.mean}`);
    assert.ok(Math.abs(z.variance - 1) < 4 * Math.sqrt(2 / N), `variance ${z.variance}`);
  }
});

test('truncNormal stays within ±2 std with the truncated normal\'s standard deviation', () => {
  const r = new Rng(mixSeed(0, 0x5eed));
  const t = moments(() => r.truncNormal(0.02));
  assert.ok(t.min >= -0.04 && t.max <= 0.04);
  // Var of N(0,1) truncated at ±a: 1 − 2aφ(a)/(2Φ(a) − 1); a = 2 → 0.773741, sd 0.879625.
  const sd = 0.02 * Math.sqrt(1 - (2 * 2 * 0.0539909665) / (2 * 0.9772498681 - 1));
  assert.ok(Math.abs(Math.sqrt(t.variance) - sd) < 0.008 * sd + 1e-6, `sd ${Math.sqrt(t.variance)} vs ${sd}`);
});

test('seeds: distinct tuples give distinct streams; deriveSeed refuses non-integers by name', () => {
  assert.notEqual(deriveSeed(1, 2), deriveSeed(2, 1));
  assert.notEqual(mixSeed(0, 1), mixSeed(1, 0));
  assert.notEqual(new Rng(mixSeed(0, 1)).next(), new Rng(mixSeed(0, 2)).next());
  assert.throws(() => deriveSeed(1.5), /1\.5 is not a safe integer/);
});
