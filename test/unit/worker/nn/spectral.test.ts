// worker/nn/spectral: the host-side top singular pair (σReparam's init of u and σ, the entropy bounds) against matrices
// built with a known SVD, W = U·diag(s)·Vᵀ with U, V products of Householder reflections, including a top gap of 1e-3
// where power iteration needs thousands of products; and the tridiagonal eigenvector it uses, against a closed form.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { topEigenvectorTridiagonal, topSingular } from '../../../../worker/nn/spectral.js';
import { Rng } from '../../../../worker/rng.js';

/** An n×n orthogonal matrix (row-major), the product of `count` Householder reflections I − 2hhᵀ. */
function orthogonal(n: number, rng: Rng, count = 3): Float64Array {
  const q = new Float64Array(n * n);
  for (let i = 0; i < n; i++) q[i * n + i] = 1;
  for (let k = 0; k < count; k++) {
    const h = Float64Array.from({ length: n }, () => rng.normal32());
    const norm = Math.hypot(...h);
    for (let i = 0; i < n; i++) h[i] /= norm;
    // q ← q (I − 2hhᵀ)
    for (let r = 0; r < n; r++) {
      let d = 0;
      for (let c = 0; c < n; c++) d += q[r * n + c] * h[c];
      for (let c = 0; c < n; c++) q[r * n + c] -= 2 * d * h[c];
    }
  }
  return q;
}

/** W [rows][cols] = U diag(s) Vᵀ; returns W and V's first column (the top right-singular vector). */
function withSvd(rows: number, cols: number, s: number[], seed: number): { w: Float64Array; v1: Float64Array } {
  const rng = new Rng(seed);
  const u = orthogonal(rows, rng);
  const v = orthogonal(cols, rng);
  const w = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      let acc = 0;
      for (let k = 0; k < s.length; k++) acc += u[r * rows + k] * s[k] * v[c * cols + k];
      w[r * cols + c] = acc;
    }
  }
  return { w, v1: Float64Array.from({ length: cols }, (_, c) => v[c * cols]) };
}

const cosine = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let d = 0;
  for (let i = 0; i < a.length; i++) d += a[i] * b[i];
  return Math.abs(d);
};

for (const [rows, cols] of [[120, 80], [80, 120], [150, 150]] as const) {
  test(`topSingular on a ${rows}×${cols} matrix with a known SVD and a 1e-3 top gap: σ to 1e-12, u to 1e-10`, () => {
    const rank = Math.min(rows, cols);
    // 2.0, 1.998, then a Marchenko–Pastur-like bulk below.
    const s = Array.from({ length: rank }, (_, k) => (k === 0 ? 2 : k === 1 ? 1.998 : 1.9 * (1 - k / rank) + 0.05));
    const { w, v1 } = withSvd(rows, cols, s, rows * 7 + cols);
    const r = topSingular(w, rows, cols, undefined, 5000, 1e-13);
    assert.ok(Math.abs(r.sigma - 2) <= 2e-12, `σ = ${r.sigma}`);
    assert.ok(1 - cosine(r.u, v1) <= 1e-10, `1 − |⟨u, v₁⟩| = ${1 - cosine(r.u, v1)}`);
    assert.ok(r.products <= 400, `${r.products} products`);
  });
}

test('topSingular keeps the sign of its start vector and handles rank one, a zero matrix and a single column', () => {
  const { w, v1 } = withSvd(30, 20, [3, 0, 0], 5);
  const plus = topSingular(w, 30, 20, v1);
  const minus = topSingular(w, 30, 20, v1.map((x) => -x));
  assert.ok(Math.abs(plus.sigma - 3) < 1e-12 && Math.abs(minus.sigma - 3) < 1e-12);
  assert.ok(plus.u.every((x, i) => Math.abs(x - v1[i]) < 1e-10), 'u = v₁');
  assert.ok(minus.u.every((x, i) => Math.abs(x + v1[i]) < 1e-10), 'u = −v₁ from −v₁');
  const zero = topSingular(new Float64Array(12), 3, 4);
  assert.equal(zero.sigma, 0);
  assert.ok(Math.abs(Math.hypot(...zero.u) - 1) < 1e-12, 'a unit u even for W = 0');
  const column = topSingular(Float64Array.from([3, -4]), 2, 1);
  assert.ok(Math.abs(column.sigma - 5) < 1e-12 && Math.abs(Math.abs(column.u[0]) - 1) < 1e-12);
});

test('topEigenvectorTridiagonal: tridiag(1, 2, 1) of size n has top eigenvector sin(jkπ/(n+1)) for k = 1', () => {
  // Eigenvalues 2 + 2cos(kπ/(n+1)), eigenvectors x_j = sin(jkπ/(n+1)), j = 1..n (closed form).
  const n = 12;
  const theta = 2 + 2 * Math.cos(Math.PI / (n + 1));
  const y = topEigenvectorTridiagonal(Array(n).fill(2), Array(n - 1).fill(1), theta);
  const exact = Float64Array.from({ length: n }, (_, j) => Math.sin(((j + 1) * Math.PI) / (n + 1)));
  const norm = Math.hypot(...exact);
  assert.ok(1 - cosine(y, exact.map((x) => x / norm)) < 1e-14, `1 − cos = ${1 - cosine(y, exact.map((x) => x / norm))}`);
});
