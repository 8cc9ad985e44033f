// Spectral-norm helpers in float64 on the host: the top singular pair of a weight matrix (init of u, tests, bounds).
import { axpy, dot, orthogonalise, tridiagonalEigenvalues } from '../diagnostics/lanczos.js';

/** Lanczos vectors per cycle: enough that a random ViT-B/L matrix converges in one or two cycles. */
const CYCLE = 64;
/** Convergence is checked every this many products (a small tridiagonal eigenproblem each time). */
const CHECK_EVERY = 8;
/** Relative residual below which float64 rounding, not the method, decides. */
const ATTAINABLE = 1e-13;

/**
 * Top right-singular vector u and value σ of W ([rows][cols] row-major), by Lanczos on WᵀW with full
 * reorthogonalisation, explicitly restarted from the Ritz vector every CYCLE products, until the residual
 * ‖WᵀW u − σ²u‖ ≤ tol·σ² (or `maxProducts` products WᵀW·x). Random init matrices have their top singular values
 * close together (the Marchenko–Pastur edge), where plain power iteration needs ~1000 products for 1e-9 on σ
 * (15 s for one 3072×768 ViT-B MLP matrix); Lanczos converges in tens of products.
 */
export function topSingular(
  w: Float32Array | Float64Array,
  rows: number,
  cols: number,
  start?: ArrayLike<number>,
  maxProducts = 1000,
  tol = 1e-12,
): { u: Float64Array; sigma: number; products: number } {
  let x = new Float64Array(cols);
  if (start) for (let i = 0; i < cols; i++) x[i] = start[i];
  else for (let i = 0; i < cols; i++) x[i] = Math.sin(1.7 * i + 0.3) + 1.1; // deterministic, not orthogonal to anything special
  if (normalize(x) === 0) x.fill(1 / Math.sqrt(cols));
  const wx = new Float64Array(rows);
  /** out = Wᵀ(W q) */
  const gram = (q: Float64Array): Float64Array => {
    for (let r = 0; r < rows; r++) {
      let s = 0;
      const o = r * cols;
      for (let c = 0; c < cols; c++) s += w[o + c] * q[c];
      wx[r] = s;
    }
    const out = new Float64Array(cols);
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      const a = wx[r];
      if (a !== 0) for (let c = 0; c < cols; c++) out[c] += w[o + c] * a;
    }
    return out;
  };
  const goal = Math.max(tol, ATTAINABLE);
  let products = 0;
  for (let done = false; !done;) {
    const basis: Float64Array[] = [x];
    const alpha: number[] = [];
    const beta: number[] = [];
    const steps = Math.min(CYCLE, cols);
    let ritz: { theta: number; y: Float64Array } = { theta: 0, y: new Float64Array(1) };
    for (let j = 0; j < steps; j++) {
      const q = basis[j];
      const aq = gram(q);
      products += 1;
      const before = Math.sqrt(dot(aq, aq));
      const a = dot(q, aq);
      alpha.push(a);
      axpy(aq, a, q);
      if (j > 0) axpy(aq, beta[j - 1], basis[j - 1]);
      const b = orthogonalise(aq, basis, before);
      // The Krylov space is invariant (b ≈ 0) or spans everything: its top Ritz pair is exact.
      const exhausted = b <= 1e-14 * Math.max(Math.abs(a), before) || basis.length === cols;
      const last = exhausted || j === steps - 1 || products >= maxProducts;
      if (last || (j + 1) % CHECK_EVERY === 0) {
        const theta = tridiagonalEigenvalues(alpha, beta)[0];
        ritz = { theta, y: topEigenvectorTridiagonal(alpha, beta, theta) };
        const residual = exhausted ? 0 : Math.abs(b * ritz.y[j]); // ‖WᵀW x − θx‖ of the Ritz pair
        done = residual <= goal * Math.abs(theta) || products >= maxProducts;
        if (done || last) break;
      }
      beta.push(b);
      for (let i = 0; i < cols; i++) aq[i] /= b;
      basis.push(aq);
    }
    const next = new Float64Array(cols);
    ritz.y.forEach((c, j) => axpy(next, -c, basis[j])); // next = Σ y_j q_j
    normalize(next);
    x = next;
  }
  if (start && dot(x, Float64Array.from(start)) < 0) for (let i = 0; i < cols; i++) x[i] = -x[i]; // the sign of the start, as power iteration keeps it
  // σ = ‖W u‖ from the final vector (its Rayleigh quotient), not from θ of an older basis.
  let s = 0;
  for (let r = 0; r < rows; r++) {
    let acc = 0;
    const o = r * cols;
    for (let c = 0; c < cols; c++) acc += w[o + c] * x[c];
    s += acc * acc;
  }
  return { u: x, sigma: Math.sqrt(s), products };
}

/**
 * Unit eigenvector for the largest eigenvalue θ of the symmetric tridiagonal T (diagonal d, off-diagonal e), by
 * inverse iteration with the shift μ just above θ: T − μI is then negative definite, so the tridiagonal solve
 * without pivoting is stable, and each iteration shrinks the other components by (μ−θ)/gap.
 */
export function topEigenvectorTridiagonal(d: readonly number[], e: readonly number[], theta: number): Float64Array {
  const n = d.length;
  const scale = Math.max(...d.map(Math.abs), ...e.map(Math.abs)) || 1; // T = 0: any unit vector
  const mu = theta + 1e-10 * scale;
  let y = new Float64Array(n).fill(1 / Math.sqrt(n));
  const cp = new Float64Array(n);
  for (let it = 0; it < 3; it++) {
    // Thomas algorithm on (T − μI) z = y.
    const z = new Float64Array(n);
    let denom = d[0] - mu;
    cp[0] = n > 1 ? e[0] / denom : 0;
    z[0] = y[0] / denom;
    for (let i = 1; i < n; i++) {
      denom = d[i] - mu - e[i - 1] * cp[i - 1];
      cp[i] = i < n - 1 ? e[i] / denom : 0;
      z[i] = (y[i] - e[i - 1] * z[i - 1]) / denom;
    }
    for (let i = n - 2; i >= 0; i--) z[i] -= cp[i] * z[i + 1];
    normalize(z);
    y = z;
  }
  return y;
}

/** Normalises in place; returns the norm it divided by. */
export function normalize(x: Float64Array | Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  const n = Math.sqrt(s);
  if (n > 0) for (let i = 0; i < x.length; i++) x[i] /= n;
  return n;
}
