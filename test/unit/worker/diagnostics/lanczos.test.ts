// worker/diagnostics/lanczos.ts on quadratics with known Hessians: diagonal spectra (negative and near-degenerate
// eigenvalues, exact repeats that force restarts) and random symmetric matrices checked against dense Jacobi.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { lanczosTopK, tridiagonalEigenvalues, type MatVec } from '../../../../worker/diagnostics/lanczos.js';
import { Rng } from '../../../../worker/rng.js';
import { jacobiEigenvalues } from './jacobi.js';

function diagOperator(d: number[]): MatVec {
  return async (v) => Float64Array.from(v, (x, i) => d[i] * x);
}

function denseOperator(a: Float64Array, n: number): { op: MatVec; calls: () => number } {
  let calls = 0;
  return {
    op: async (v) => {
      calls++;
      const y = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let j = 0; j < n; j++) s += a[i * n + j] * v[j];
        y[i] = s;
      }
      return y;
    },
    calls: () => calls,
  };
}

/** (G + Gᵀ)/√(2n) (semicircle on [−2, 2]) plus Σ s_i u_i u_iᵀ with random unit u_i: separated top eigenvalues. */
function spikedMatrix(n: number, spikes: number[], seed: number): Float64Array {
  const rng = new Rng(seed);
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      const g = rng.normal32() / Math.sqrt(n);
      a[i * n + j] += g;
      a[j * n + i] += g;
    }
  }
  for (const s of spikes) {
    const u = Float64Array.from({ length: n }, () => rng.normal32());
    const nu = Math.hypot(...u);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) a[i * n + j] += (s * u[i] * u[j]) / (nu * nu);
  }
  return a;
}

function assertRelClose(got: number[], want: number[], rel: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: ${got.length} eigenvalues, expected ${want.length}`);
  const scale = Math.max(...want.map(Math.abs));
  got.forEach((g, i) => assert.ok(Math.abs(g - want[i]) <= rel * scale,
    `${what}: eigenvalue ${i} is ${g}, expected ${want[i]} (|diff| ${Math.abs(g - want[i]).toExponential(2)})`));
}

test('diagonal spectrum, dim 400: near-degenerate top pair, a negative eigenvalue of largest magnitude, 40 steps', async () => {
  const rng = new Rng(3);
  // Bulk uniform on [−5, 2]; top 10, 9.99 (gap 1e-3 relative), 9.9, 7; bottom −20 must not be reported (algebraic order).
  const d = [10, 9.99, 9.9, 7, -20, ...Array.from({ length: 395 }, () => -5 + 7 * rng.next())];
  for (let i = d.length - 1; i > 0; i--) { // scatter the top ones among the coordinates
    const j = Math.floor(rng.next() * (i + 1));
    [d[i], d[j]] = [d[j], d[i]];
  }
  const r = await lanczosTopK(diagOperator(d), d.length, { k: 4, iterations: 40, seed: 1 });
  assert.equal(r.iterations, 40);
  assertRelClose(r.eigenvalues, [10, 9.99, 9.9, 7], 1e-6, 'diagonal');
});

test('diagonal spectrum with every eigenvalue negative: the least negative come first', async () => {
  const d = Array.from({ length: 60 }, (_, i) => -1 - i * 0.25);
  const r = await lanczosTopK(diagOperator(d), d.length, { k: 3, iterations: 40, seed: 5 });
  assertRelClose(r.eigenvalues, [-1, -1.25, -1.5], 1e-6, 'negative');
});

test('random symmetric matrix (n = 120, three spikes), 40 steps: top 3 agree with Jacobi to 1e-6 relative', async () => {
  const n = 120;
  const a = spikedMatrix(n, [6, 5, 4.5], 11);
  const want = jacobiEigenvalues(a, n).slice(0, 3);
  const { op, calls } = denseOperator(a, n);
  const r = await lanczosTopK(op, n, { k: 3, iterations: 40, seed: 2 });
  assert.equal(calls(), 40, 'one product per step');
  assertRelClose(r.eigenvalues, want, 1e-6, 'spiked');
});

test('random symmetric matrix, Krylov space = whole space (iterations ≥ dim): every eigenvalue, capped at dim steps', async () => {
  const n = 30;
  const a = spikedMatrix(n, [], 21);
  const want = jacobiEigenvalues(a, n);
  const r = await lanczosTopK(denseOperator(a, n).op, n, { k: 100, iterations: 50, seed: 9 });
  assert.equal(r.iterations, n);
  assertRelClose(r.eigenvalues, want, 1e-9, 'full');
});

test('a float32 Krylov basis loses only ~1e-7', async () => {
  const n = 120;
  const a = spikedMatrix(n, [6, 5, 4.5], 11);
  const want = jacobiEigenvalues(a, n).slice(0, 3);
  const r = await lanczosTopK(denseOperator(a, n).op, n, { k: 3, iterations: 40, seed: 2, basis: 'float32' });
  assertRelClose(r.eigenvalues, want, 1e-5, 'float32 basis');
});

test('breakdown: exactly repeated eigenvalues (3 distinct values) restart the Krylov space and show multiplicities', async () => {
  const d = [2, -1, 4, 2, -1, -1, 4, 2, -1, -1, -1, -1];
  const r = await lanczosTopK(diagOperator(d), d.length, { k: 6, iterations: 40, seed: 4 });
  assert.equal(r.iterations, 12);
  assertRelClose(r.eigenvalues, [4, 4, 2, 2, 2, -1], 1e-9, 'repeated');
  const zero = await lanczosTopK(async (v) => new Float64Array(v.length), 8, { k: 2, iterations: 5, seed: 1 });
  assert.deepEqual(zero, { eigenvalues: [0, 0], iterations: 5 });
});

test('deterministic from the seed; another seed agrees to tolerance', async () => {
  const n = 120;
  const a = spikedMatrix(n, [6, 5, 4.5], 11);
  const op = denseOperator(a, n).op;
  const r1 = await lanczosTopK(op, n, { k: 2, iterations: 25, seed: 7 });
  const r2 = await lanczosTopK(op, n, { k: 2, iterations: 25, seed: 7 });
  const r3 = await lanczosTopK(op, n, { k: 2, iterations: 25, seed: 8 });
  assert.deepEqual(r1, r2);
  assertRelClose(r3.eigenvalues, r1.eigenvalues, 1e-6, 'seed 8 vs 7');
});

test('tridiagonalEigenvalues (implicit QL) agrees with Jacobi, also when the matrix splits into blocks', () => {
  const rng = new Rng(17);
  for (const n of [1, 2, 5, 25]) {
    const d = Array.from({ length: n }, () => rng.normal32() * 3);
    const e = Array.from({ length: n - 1 }, (_, i) => (i % 7 === 3 ? 0 : rng.normal32()));
    const dense = new Float64Array(n * n);
    for (let i = 0; i < n; i++) dense[i * n + i] = d[i];
    e.forEach((x, i) => { dense[i * n + i + 1] = x; dense[(i + 1) * n + i] = x; });
    assertRelClose(tridiagonalEigenvalues(d, e), jacobiEigenvalues(dense, n), 1e-12, `tridiagonal n=${n}`);
  }
});

test('bad arguments and non-finite products are rejected', async () => {
  const op = diagOperator([1, 2, 3]);
  await assert.rejects(lanczosTopK(op, 3, { k: 0, iterations: 3, seed: 1 }), /k must be/);
  await assert.rejects(lanczosTopK(op, 3, { k: 1, iterations: 0, seed: 1 }), /iterations must be/);
  await assert.rejects(lanczosTopK(async () => new Float64Array(2), 3, { k: 1, iterations: 3, seed: 1 }), /length 2, expected 3/);
  await assert.rejects(lanczosTopK(async (v) => Float64Array.from(v, () => NaN), 3, { k: 1, iterations: 3, seed: 1 }), /non-finite/);
});
