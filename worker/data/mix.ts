// Batch-level mixing of the ViT recipe (timm Mixup, mode 'batch'): mixup (α 0.8) or cutmix (α 1.0), switch
// probability 0.5, one λ per batch, sample i paired with sample n−1−i; labels become soft targets [n, classes].

import { SigmaError } from '../../shared/errors.js';
import type { Rng } from '../rng.js';
import type { CropBox } from './transforms.js';

export interface MixConfig {
  /** Beta(α, α) for mixup; 0 disables mixup. DeiT: 0.8. */
  mixupAlpha: number;
  /** Beta(α, α) for cutmix; 0 disables cutmix. DeiT: 1.0. */
  cutmixAlpha: number;
  /** With both enabled, probability of cutmix rather than mixup for a batch. DeiT: 0.5. */
  switchProb: number;
  /** Probability that a batch is mixed at all (timm mix_prob). DeiT: 1. */
  prob: number;
  /** Label smoothing ε folded into the soft targets: off = ε/K, on = 1 − ε + ε/K. DeiT: 0.1. */
  labelSmoothing: number;
  /** Recompute λ from the clipped cutmix box (timm correct_lam; DeiT: true). */
  correctLam: boolean;
}

export const DEIT_MIX: Readonly<MixConfig> = Object.freeze({
  mixupAlpha: 0.8,
  cutmixAlpha: 1.0,
  switchProb: 0.5,
  prob: 1,
  labelSmoothing: 0.1,
  correctLam: true,
});

export function checkMixConfig(c: MixConfig): void {
  const bad = (k: string, v: unknown, want: string): never => {
    throw new SigmaError('SGT_DATA_INVALID', `mix.${k}=${String(v)} must be ${want}`);
  };
  if (!(c.mixupAlpha >= 0) || !Number.isFinite(c.mixupAlpha)) bad('mixupAlpha', c.mixupAlpha, 'finite and ≥ 0');
  if (!(c.cutmixAlpha >= 0) || !Number.isFinite(c.cutmixAlpha)) bad('cutmixAlpha', c.cutmixAlpha, 'finite and ≥ 0');
  for (const k of ['switchProb', 'prob', 'labelSmoothing'] as const) {
    if (!(c[k] >= 0 && c[k] <= 1)) bad(k, c[k], 'in [0, 1]');
  }
}

/** What happened to one batch: λ is the weight of each row's own label (1 when not mixed). */
export interface MixInfo {
  mode: 'none' | 'mixup' | 'cutmix';
  lam: number;
  /** Cutmix: the pasted box in output pixels (rows [top, top+height), cols [left, left+width)). */
  box?: CropBox;
}

/** Gamma(k, 1) by Marsaglia–Tsang (k < 1 via Gamma(k+1)·U^(1/k)). */
export function sampleGamma(rng: Rng, k: number): number {
  if (k < 1) {
    const u = 1 - rng.float(); // (0, 1]
    return sampleGamma(rng, k + 1) * Math.pow(u, 1 / k);
  }
  const d = k - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = rng.normal();
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = rng.float();
    if (u < 1 - 0.0331 * x ** 4) return d * v;
    if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

/** Beta(a, b) = G_a / (G_a + G_b). */
export function sampleBeta(rng: Rng, a: number, b: number): number {
  const x = sampleGamma(rng, a);
  const y = sampleGamma(rng, b);
  return x + y > 0 ? x / (x + y) : 0.5;
}

/**
 * timm rand_bbox + cutmix_bbox_and_lam on an H×W image: cut = trunc(side·√(1−λ)), centre uniform over the image,
 * box = centre ± cut//2 clipped to the image; with correctLam λ = 1 − box area / (H·W).
 */
export function cutmixBox(height: number, width: number, lam: number, rng: Rng, correctLam = true): { box: CropBox; lam: number } {
  const r = Math.sqrt(1 - lam);
  const cutH = Math.trunc(height * r);
  const cutW = Math.trunc(width * r);
  const cy = rng.int(height);
  const cx = rng.int(width);
  const clip = (v: number, hi: number): number => Math.max(0, Math.min(hi, v));
  const yl = clip(cy - Math.floor(cutH / 2), height);
  const yh = clip(cy + Math.floor(cutH / 2), height);
  const xl = clip(cx - Math.floor(cutW / 2), width);
  const xh = clip(cx + Math.floor(cutW / 2), width);
  const box = { top: yl, left: xl, height: yh - yl, width: xh - xl };
  return { box, lam: correctLam ? 1 - (box.height * box.width) / (height * width) : lam };
}

/** One-hot targets [n, classes] with label smoothing ε: off = ε/K, on = 1 − ε + ε/K (rows sum to 1). */
export function smoothOneHot(labels: ArrayLike<number>, n: number, classes: number, smoothing: number): Float32Array {
  const off = smoothing / classes;
  const on = 1 - smoothing + off;
  const y = new Float32Array(n * classes).fill(off);
  for (let i = 0; i < n; i++) {
    const k = labels[i]!;
    if (!Number.isInteger(k) || k < 0 || k >= classes) {
      throw new SigmaError('SGT_DATA_INVALID', `label ${k} of row ${i} is outside [0, ${classes})`);
    }
    y[i * classes + k] = on;
  }
  return y;
}

/**
 * Mix the first n rows of x ([n, height, width, 3] NHWC, in place) and return the soft targets [n, classes]:
 *   draws, in order: apply-coin (skipped when prob = 1), cutmix-coin (only when both α > 0), λ ~ Beta(α, α),
 *   then for cutmix the box centre (y, x).
 *   mixup:  x_i ← λ·x_i + (1−λ)·x_{n−1−i}
 *   cutmix: x_i[box] ← x_{n−1−i}[box], λ ← 1 − |box| / (H·W)
 *   targets: λ·onehot(y_i) + (1−λ)·onehot(y_{n−1−i}), both smoothed.
 */
export function mixBatch(
  x: Float32Array,
  labels: ArrayLike<number>,
  n: number,
  height: number,
  width: number,
  classes: number,
  cfg: MixConfig,
  rng: Rng,
): { soft: Float32Array; info: MixInfo } {
  const row = height * width * 3;
  if (x.length < n * row) throw new SigmaError('SGT_DATA_INVALID', `mixBatch: x has ${x.length} values, need ${n}·${row}`);
  let lam = 1;
  let cut = false;
  const mixOn = cfg.mixupAlpha > 0 || cfg.cutmixAlpha > 0;
  if (mixOn && (cfg.prob >= 1 || rng.float() < cfg.prob)) {
    if (cfg.mixupAlpha > 0 && cfg.cutmixAlpha > 0) {
      cut = rng.float() < cfg.switchProb;
      lam = cut ? sampleBeta(rng, cfg.cutmixAlpha, cfg.cutmixAlpha) : sampleBeta(rng, cfg.mixupAlpha, cfg.mixupAlpha);
    } else if (cfg.mixupAlpha > 0) {
      lam = sampleBeta(rng, cfg.mixupAlpha, cfg.mixupAlpha);
    } else {
      cut = true;
      lam = sampleBeta(rng, cfg.cutmixAlpha, cfg.cutmixAlpha);
    }
  }
  const own = smoothOneHot(labels, n, classes, cfg.labelSmoothing);
  let info: MixInfo = { mode: 'none', lam: 1 };
  if (lam !== 1) {
    if (cut) {
      const cb = cutmixBox(height, width, lam, rng, cfg.correctLam);
      lam = cb.lam;
      info = { mode: 'cutmix', lam, box: cb.box };
      swapBoxes(x, n, width, row, cb.box);
    } else {
      info = { mode: 'mixup', lam };
      for (let i = 0, j = n - 1; i < j; i++, j--) {
        const a = i * row;
        const b = j * row;
        for (let k = 0; k < row; k++) {
          const u = x[a + k]!;
          const v = x[b + k]!;
          x[a + k] = lam * u + (1 - lam) * v;
          x[b + k] = lam * v + (1 - lam) * u;
        }
      }
    }
  }
  if (info.mode === 'none') return { soft: own, info };
  const soft = new Float32Array(n * classes);
  for (let i = 0; i < n; i++) {
    const j = n - 1 - i;
    for (let k = 0; k < classes; k++) soft[i * classes + k] = lam * own[i * classes + k]! + (1 - lam) * own[j * classes + k]!;
  }
  return { soft, info };
}

/** Exchange the box region between rows i and n−1−i (the middle row of an odd batch keeps its own pixels). */
function swapBoxes(x: Float32Array, n: number, width: number, row: number, box: CropBox): void {
  for (let i = 0, j = n - 1; i < j; i++, j--) {
    for (let yy = box.top; yy < box.top + box.height; yy++) {
      const start = (yy * width + box.left) * 3;
      const len = box.width * 3;
      for (let k = 0; k < len; k++) {
        const a = i * row + start + k;
        const b = j * row + start + k;
        const t = x[a]!;
        x[a] = x[b]!;
        x[b] = t;
      }
    }
  }
}
