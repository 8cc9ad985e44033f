// Stability thresholds of the paper's §Sharpness: on a quadratic, an optimizer diverges along a Hessian eigenvector
// whose eigenvalue exceeds its threshold, so sharpness is read against it (Cohen et al. 2021, 2022).

export type OptimizerName = 'sgd' | 'gd' | 'momentum' | 'adamw' | 'lars' | 'lamb' | 'adagrad';

export interface ThresholdInput {
  optimizer: OptimizerName;
  /** Learning rate η now (the scheduled value, not the peak). */
  lr: number;
  /** Heavy-ball momentum β (sgd: default 0; momentum and lars: default 0.9). */
  momentum?: number;
  /** Adam β₁ (adamw, lamb: default 0.9). */
  beta1?: number;
}

function checkRate(name: string, x: number): void {
  if (!(x >= 0 && x < 1)) throw new RangeError(`stabilityThreshold: ${name} must be in [0, 1), got ${x}`);
}

/**
 * The largest stable curvature λ for the optimizer at learning rate η:
 *   gd, sgd (β = 0):          2/η
 *   momentum, sgd with β:     (2 + 2β)/η                      (heavy ball on a quadratic)
 *   adamw (frozen P):         (2 + 2β₁)/((1 − β₁)η)           = 38/η for β₁ = 0.9
 * Approximations: LARS is treated as momentum SGD (its layer-wise trust ratio rescales η per layer; the formula uses
 * the global η); LAMB as AdamW (trust ratio ignored likewise); Adagrad as GD (its growing preconditioner is
 * ignored). For the adaptive ones the threshold strictly bounds the *preconditioned* sharpness λ₁(P⁻¹H), not the
 * λ₁(H) that sharpness.ts measures: read the comparison as indicative.
 */
export function stabilityThreshold(o: ThresholdInput): number {
  if (!(Number.isFinite(o.lr) && o.lr > 0)) throw new RangeError(`stabilityThreshold: lr must be a positive number, got ${o.lr}`);
  switch (o.optimizer) {
    case 'gd':
    case 'adagrad':
      return 2 / o.lr;
    case 'sgd':
    case 'momentum':
    case 'lars': {
      const beta = o.momentum ?? (o.optimizer === 'sgd' ? 0 : 0.9);
      checkRate('momentum', beta);
      return (2 + 2 * beta) / o.lr;
    }
    case 'adamw':
    case 'lamb': {
      const b1 = o.beta1 ?? 0.9;
      checkRate('beta1', b1);
      return (2 + 2 * b1) / ((1 - b1) * o.lr);
    }
    default:
      throw new RangeError(`stabilityThreshold: unknown optimizer ${String((o as { optimizer: unknown }).optimizer)}`);
  }
}
