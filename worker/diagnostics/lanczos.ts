// Top eigenvalues of a symmetric operator known only through matrix-vector products (the Hessian through H·v):
// Lanczos with full reorthogonalisation in float64, then the eigenvalues of the small tridiagonal matrix.
import { Rng } from '../rng.js';

/** y = A·v for a symmetric A of size dim × dim; v has length dim and must not be kept or modified. */
export type MatVec = (v: Float64Array | Float32Array) => Promise<Float32Array | Float64Array>;

export interface LanczosOptions {
  /** How many of the largest (algebraic) eigenvalues to return. */
  k: number;
  /** Lanczos steps = products A·v (capped at dim). 20–40 resolve the top few of a Hessian. */
  iterations: number;
  /** Seed of the random start vector: the same seed gives the same result on every rank. */
  seed: number;
  /**
   * How the Krylov basis (iterations vectors of length dim) is stored. float64: 8·dim·iterations bytes;
   * float32 halves that (the vectors are rounded once, then used as rounded everywhere, so the recurrence stays
   * consistent; eigenvalues lose ~1e-7 relative). auto: float64 while the basis fits in 512 MiB.
   */
  basis?: 'float64' | 'float32' | 'auto';
}

export interface LanczosResult {
  /** The largest min(k, iterations) Ritz values, descending (largest algebraic first). */
  eigenvalues: number[];
  /** Lanczos steps taken: the size of the tridiagonal matrix (fewer than asked when the space is exhausted). */
  iterations: number;
}

const AUTO_FLOAT64_BYTES = 512 * 2 ** 20;

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** w ← w − c·q */
export function axpy(w: Float64Array, c: number, q: ArrayLike<number>): void {
  for (let i = 0; i < w.length; i++) w[i] -= c * q[i];
}

/**
 * Classical Gram–Schmidt of w against every basis vector, repeated once when w lost most of its norm since
 * `reference` (its norm before any projection was removed) — "twice is enough" (Kahan/Parlett). Returns ‖w‖ after.
 */
export function orthogonalise(w: Float64Array, basis: ArrayLike<number>[], reference = Math.sqrt(dot(w, w))): number {
  let before = reference;
  for (let pass = 0; pass < 2; pass++) {
    const coef = basis.map((q) => dot(q, w)); // all coefficients first: CGS, one sweep over memory per vector
    basis.forEach((q, i) => axpy(w, coef[i], q));
    const after = Math.sqrt(dot(w, w));
    if (after > 0.5 * before) return after;
    before = after;
  }
  return before;
}

/**
 * Lanczos: from a random unit q₀, q_{j+1} β_j = A q_j − α_j q_j − β_{j−1} q_{j−1}, every new vector reorthogonalised
 * against the whole basis, so T = tridiag(β, α, β) = QᵀAQ holds to rounding and no spurious copies of converged
 * eigenvalues appear. On breakdown (β_j ≈ 0: the Krylov space is invariant under A) the run continues from a fresh
 * random vector orthogonal to the basis with β_j = 0 — T becomes block diagonal — which is how repeated
 * eigenvalues are found; it stops when the basis spans the whole space or `iterations` steps are done.
 */
export async function lanczosTopK(hvp: MatVec, dim: number, opts: LanczosOptions): Promise<LanczosResult> {
  if (!Number.isInteger(dim) || dim < 1) throw new RangeError(`lanczosTopK: dim must be a positive integer, got ${dim}`);
  if (!Number.isInteger(opts.k) || opts.k < 1) throw new RangeError(`lanczosTopK: k must be a positive integer, got ${opts.k}`);
  if (!Number.isInteger(opts.iterations) || opts.iterations < 1) {
    throw new RangeError(`lanczosTopK: iterations must be a positive integer, got ${opts.iterations}`);
  }
  const steps = Math.min(opts.iterations, dim);
  const mode = opts.basis ?? 'auto';
  const f64 = mode === 'float64' || (mode === 'auto' && 8 * dim * steps <= AUTO_FLOAT64_BYTES);
  const store = (w: Float64Array, scale: number): Float64Array | Float32Array => {
    const q = f64 ? new Float64Array(dim) : new Float32Array(dim);
    for (let i = 0; i < dim; i++) q[i] = w[i] * scale;
    return q;
  };
  const rng = new Rng(opts.seed);
  const basis: (Float64Array | Float32Array)[] = [];
  const alpha: number[] = [];
  const beta: number[] = []; // beta[j] couples q_j and q_{j+1}
  // β below this fraction of ‖A‖ means breakdown; a float32 basis is only orthogonal to ~1e-7.
  const breakdown = f64 ? 1e-10 : 1e-6;
  let anorm = 0; // running estimate of ‖A‖ (max row sum of T), the scale of the breakdown test

  /** A random unit vector orthogonal to the basis, or undefined when the basis already spans everything. */
  const freshStart = (): Float64Array | Float32Array | undefined => {
    const w = new Float64Array(dim);
    for (let i = 0; i < dim; i++) w[i] = rng.normal32();
    const n0 = Math.sqrt(dot(w, w));
    const n1 = orthogonalise(w, basis);
    return n1 > 1e-8 * n0 ? store(w, 1 / n1) : undefined;
  };

  let q = freshStart()!;
  for (let j = 0; j < steps; j++) {
    basis.push(q);
    const aq = await hvp(q);
    if (aq.length !== dim) throw new RangeError(`lanczosTopK: the product has length ${aq.length}, expected ${dim}`);
    const w = Float64Array.from(aq);
    for (let i = 0; i < dim; i++) {
      if (!Number.isFinite(w[i])) throw new RangeError(`lanczosTopK: the product has a non-finite entry ${w[i]} at ${i} (step ${j})`);
    }
    const a = dot(q, w);
    alpha.push(a);
    if (j === steps - 1) break; // the last β and q are not needed
    const aqNorm = Math.sqrt(dot(w, w));
    axpy(w, a, q);
    if (j > 0) axpy(w, beta[j - 1], basis[j - 1]);
    const b = orthogonalise(w, basis, aqNorm);
    anorm = Math.max(anorm, Math.abs(a) + b + (j > 0 ? beta[j - 1] : 0));
    if (b > breakdown * anorm) {
      beta.push(b);
      q = store(w, 1 / b);
    } else {
      const next = freshStart(); // invariant subspace: restart orthogonally (T splits into blocks)
      if (!next) break;
      beta.push(0);
      q = next;
    }
  }
  const m = alpha.length;
  const eig = tridiagonalEigenvalues(alpha, beta.slice(0, m - 1));
  return { eigenvalues: eig.slice(0, Math.min(opts.k, m)), iterations: m };
}

/**
 * Eigenvalues, descending, of the symmetric tridiagonal matrix with diagonal d [n] and off-diagonal e [n−1]
 * (e[i] couples rows i and i+1), by the implicit QL algorithm with Wilkinson shifts (EISPACK tql1; the variant of
 * Numerical Recipes' tqli without vectors). Written here rather than imported: the matrix is at most ~40×40,
 * the routine is 40 lines, and the npm linear-algebra packages (ml-matrix's dense EVD and the like) would be a new
 * run-time dependency for this one call.
 */
export function tridiagonalEigenvalues(diag: readonly number[], off: readonly number[]): number[] {
  const n = diag.length;
  if (off.length !== Math.max(0, n - 1)) throw new RangeError(`tridiagonalEigenvalues: ${off.length} off-diagonal entries for ${n} rows`);
  const d = diag.slice();
  const e = [...off, 0];
  for (let l = 0; l < n; l++) {
    for (let iter = 0; ; iter++) {
      // Find the first negligible off-diagonal at or below l: the block l..m is unreduced.
      let m = l;
      for (; m < n - 1; m++) {
        if (Math.abs(e[m]) <= Number.EPSILON * (Math.abs(d[m]) + Math.abs(d[m + 1]))) break;
      }
      if (m === l) break;
      if (iter === 60) throw new Error(`tridiagonalEigenvalues: no convergence at row ${l} after 60 QL sweeps`);
      // Wilkinson shift from the leading 2×2 of the block.
      let g = (d[l + 1] - d[l]) / (2 * e[l]);
      let r = Math.hypot(g, 1);
      g = d[m] - d[l] + e[l] / (g + (g >= 0 ? r : -r));
      let s = 1;
      let c = 1;
      let p = 0;
      let i = m - 1;
      let underflow = false;
      for (; i >= l; i--) {
        // One Givens rotation chasing the bulge up from m to l.
        const f = s * e[i];
        const b = c * e[i];
        r = Math.hypot(f, g);
        e[i + 1] = r;
        if (r === 0) {
          d[i + 1] -= p;
          e[m] = 0;
          underflow = true;
          break;
        }
        s = f / r;
        c = g / r;
        g = d[i + 1] - p;
        r = (d[i] - g) * s + 2 * c * b;
        p = s * r;
        d[i + 1] = g + p;
        g = c * r - b;
      }
      if (underflow) continue;
      d[l] -= p;
      e[l] = g;
      e[m] = 0;
    }
  }
  return d.sort((a, b) => b - a);
}
