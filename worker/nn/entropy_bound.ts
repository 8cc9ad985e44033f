// Theorem 3.1 of Zhai et al. (2023): a tight lower bound on attention entropy from the logits' spectral scale.

/**
 * Lower bound on the entropy of one attention row over T keys when every logit lies within ±σ of 0
 * (σ = ‖W_Q W_Kᵀ‖₂ × logit scale × (max token norm)²):
 *   Ent ≥ log(1 + (T−1)e^{−2σ}) + 2σ(T−1)e^{−2σ} / (1 + (T−1)e^{−2σ}).
 * Attained by one logit at +σ and T−1 at −σ.
 */
export function entropyLowerBound(sigma: number, T: number): number {
  if (T <= 1) return 0;
  const a = (T - 1) * Math.exp(-2 * sigma);
  return Math.log1p(a) + (2 * sigma * a) / (1 + a);
}

/**
 * ‖A Bᵀ‖₂ for A, B of shape [d, k] (row-major): the spectral norm of a rank-≤k d×d product, by power iteration
 * through the factors (never forms the d×d matrix). Used with A = W_Q,h, B = W_K,h.
 */
export function productSpectralNorm(a: Float32Array | Float64Array, b: Float32Array | Float64Array, d: number, k: number, iters = 200): number {
  // M = A Bᵀ; MᵀM x = B (Aᵀ A) (Bᵀ x)
  let x = new Float64Array(d);
  for (let i = 0; i < d; i++) x[i] = 1 + 0.37 * Math.sin(i + 1);
  let lambda = 0;
  const t1 = new Float64Array(k);
  const t2 = new Float64Array(d);
  const t3 = new Float64Array(k);
  for (let it = 0; it < iters; it++) {
    t1.fill(0); // Bᵀ x
    for (let i = 0; i < d; i++) for (let j = 0; j < k; j++) t1[j] += b[i * k + j] * x[i];
    for (let i = 0; i < d; i++) { // A t1
      let s = 0;
      for (let j = 0; j < k; j++) s += a[i * k + j] * t1[j];
      t2[i] = s;
    }
    t3.fill(0); // Aᵀ t2
    for (let i = 0; i < d; i++) for (let j = 0; j < k; j++) t3[j] += a[i * k + j] * t2[i];
    const next = new Float64Array(d); // B t3
    for (let i = 0; i < d; i++) {
      let s = 0;
      for (let j = 0; j < k; j++) s += b[i * k + j] * t3[j];
      next[i] = s;
    }
    let n = 0;
    for (let i = 0; i < d; i++) n += next[i] * next[i];
    n = Math.sqrt(n);
    if (n === 0) return 0;
    for (let i = 0; i < d; i++) next[i] /= n;
    const converged = Math.abs(n - lambda) <= 1e-12 * n;
    lambda = n;
    x = next;
    if (converged) break;
  }
  return Math.sqrt(lambda);
}
