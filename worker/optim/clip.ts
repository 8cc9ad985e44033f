// Gradient clipping by global norm on the flat all-reduced gradient (one Float32Array), accumulated in float64.

/** √Σx² over `flat`, summed in float64 in index order. */
export function globalNorm(flat: Float32Array): number {
  let sq = 0;
  for (let i = 0; i < flat.length; i++) sq += flat[i] * flat[i];
  return Math.sqrt(sq);
}

export interface ClipOptions {
  /** The gradient is flat/divisor (e.g. a sum over n samples: divisor n); norm and maxNorm refer to it. Default 1. */
  divisor?: number;
  /** Multiply `flat` by the factor in place (default true); false only reports it (fold it into a later scale). */
  apply?: boolean;
}

/**
 * norm = ‖flat‖/divisor; factor = maxNorm/norm when maxNorm > 0 and norm > maxNorm, else 1 (also for a non-finite
 * norm: the caller's finite-loss check reports that). Scales `flat` by factor in place unless apply is false.
 */
export function clipByGlobalNorm(flat: Float32Array, maxNorm: number, opts: ClipOptions = {}): { norm: number; factor: number } {
  const divisor = opts.divisor ?? 1;
  const norm = divisor === 1 ? globalNorm(flat) : globalNorm(flat) / divisor;
  const factor = maxNorm > 0 && norm > maxNorm ? maxNorm / norm : 1;
  if (factor !== 1 && (opts.apply ?? true)) for (let i = 0; i < flat.length; i++) flat[i] *= factor;
  return { norm, factor };
}
