// Spectral-norm helpers in float64 on the host: the exact top singular pair of small matrices (init of u, tests, bounds).

/** Top right-singular vector and value of W given as [rows][cols] row-major, by power iteration on WᵀW until converged. */
export function topSingular(
  w: Float32Array | Float64Array,
  rows: number,
  cols: number,
  start?: ArrayLike<number>,
  maxIter = 1000,
  tol = 1e-12,
): { u: Float64Array; sigma: number } {
  let u = new Float64Array(cols);
  if (start) for (let i = 0; i < cols; i++) u[i] = start[i];
  else for (let i = 0; i < cols; i++) u[i] = Math.sin(1.7 * i + 0.3) + 1.1; // deterministic, not orthogonal to anything special
  normalize(u);
  const wu = new Float64Array(rows);
  let sigma = 0;
  for (let it = 0; it < maxIter; it++) {
    // wu = W u  (rows)
    for (let r = 0; r < rows; r++) {
      let s = 0;
      const o = r * cols;
      for (let c = 0; c < cols; c++) s += w[o + c] * u[c];
      wu[r] = s;
    }
    // next = Wᵀ (W u)
    const next = new Float64Array(cols);
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      const a = wu[r];
      for (let c = 0; c < cols; c++) next[c] += w[o + c] * a;
    }
    const lambda = normalize(next); // ‖WᵀW u‖ → σ²
    let diff = 0;
    for (let c = 0; c < cols; c++) diff = Math.max(diff, Math.abs(next[c] - u[c]));
    u = next;
    const newSigma = Math.sqrt(lambda);
    if (diff < tol || Math.abs(newSigma - sigma) <= tol * newSigma) {
      sigma = newSigma;
      break;
    }
    sigma = newSigma;
  }
  return { u, sigma };
}

/** Normalises in place; returns the norm it divided by. */
export function normalize(x: Float64Array | Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  const n = Math.sqrt(s);
  if (n > 0) for (let i = 0; i < x.length; i++) x[i] /= n;
  return n;
}
