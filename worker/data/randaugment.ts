// RandAugment (Cubuk et al. 2020) with timm's "rand-mM-nN-mstdS-incI" semantics, on packed uint8 RGB: each of n
// ops is drawn uniformly (with replacement), applied with probability p, at a magnitude ~ N(M, S) clipped to [0, 10].
//
// Ops follow PIL (ImageOps / ImageEnhance / Image.transform) as timm calls them. The geometric ones (rotate,
// shear, translate) are an inverse-mapped bilinear warp written here rather than sharp's rotate/affine: those
// enlarge the canvas (libvips' output area is not exposed), so matching PIL's same-size output would cost a second
// sharp pipeline per op, more than a 224² warp in JS.

import { SigmaError } from '../../shared/errors.js';
import type { Rng } from '../rng.js';
import type { Rgb } from './transforms.js';

/**
 * The default op list: the RandAugment paper's 14 transformations. timm's list differs (Invert and SolarizeAdd
 * instead of Identity); both extra ops are available by name for `ops`.
 */
export const RAND_AUGMENT_OPS = [
  'Identity',
  'AutoContrast',
  'Equalize',
  'Rotate',
  'Solarize',
  'Color',
  'Posterize',
  'Contrast',
  'Brightness',
  'Sharpness',
  'ShearX',
  'ShearY',
  'TranslateXRel',
  'TranslateYRel',
] as const;

export const EXTRA_OPS = ['Invert', 'SolarizeAdd'] as const;
export type OpName = (typeof RAND_AUGMENT_OPS)[number] | (typeof EXTRA_OPS)[number];
const ALL_OPS: ReadonlySet<string> = new Set<string>([...RAND_AUGMENT_OPS, ...EXTRA_OPS]);

export interface RandAugmentConfig {
  /** Ops per image (timm num_layers, "n"). */
  n: number;
  /** Magnitude M on timm's 0..10 scale ("m"). */
  magnitude: number;
  /** Per-op magnitude noise: N(M, std); Infinity means U(0, M) ("mstd"). */
  magnitudeStd: number;
  /** Upper clip of the sampled magnitude ("mmax"). */
  magnitudeMax: number;
  /** timm's "inc1": magnitude-increasing variants of solarize, posterize and the enhance ops. */
  increasing: boolean;
  /** Probability that each drawn op is applied (timm: 0.5). */
  prob: number;
  ops: readonly OpName[];
  /** Fill colour of pixels a geometric op moves in from outside (timm: round(255·mean) = 124, 116, 104). */
  fill: readonly [number, number, number];
  /** TranslateRel at magnitude 10, as a fraction of the side (timm: 0.45). */
  translatePct: number;
}

const LEVEL_DENOM = 10;

/**
 * Parse timm's RandAugment string, e.g. "rand-m9-mstd0.5-inc1" (DeiT) or "rand-m9-mstd0.5": sections m (magnitude),
 * n (ops per image, default 2), mstd, mmax (default 10), inc (0/1), p (op probability, default 0.5). Unknown
 * sections are an SGT_DATA_INVALID error naming them.
 */
export function parseRandAugment(spec: string, base: Partial<RandAugmentConfig> = {}): RandAugmentConfig {
  const parts = spec.split('-');
  if (parts[0] !== 'rand') {
    throw new SigmaError('SGT_DATA_INVALID', `RandAugment spec "${spec}" must start with "rand-" (e.g. "rand-m9-mstd0.5-inc1")`);
  }
  const cfg: RandAugmentConfig = {
    n: 2,
    magnitude: 10,
    magnitudeStd: 0,
    magnitudeMax: LEVEL_DENOM,
    increasing: false,
    prob: 0.5,
    ops: RAND_AUGMENT_OPS,
    fill: [124, 116, 104],
    translatePct: 0.45,
    ...base,
  };
  for (const part of parts.slice(1)) {
    const m = /^([a-z]+)(inf|[0-9]*\.?[0-9]+)$/.exec(part);
    const key = m?.[1];
    const val = m ? (m[2] === 'inf' ? Infinity : Number(m[2])) : NaN;
    if (!m || Number.isNaN(val)) {
      throw new SigmaError('SGT_DATA_INVALID', `RandAugment spec "${spec}": cannot read section "${part}"`);
    }
    if (key === 'm') cfg.magnitude = val;
    else if (key === 'n') cfg.n = val;
    else if (key === 'mstd') cfg.magnitudeStd = val;
    else if (key === 'mmax') cfg.magnitudeMax = val;
    else if (key === 'inc') cfg.increasing = val !== 0;
    else if (key === 'p') cfg.prob = val;
    else {
      throw new SigmaError(
        'SGT_DATA_INVALID',
        `RandAugment spec "${spec}": unknown section "${part}" (known: m, n, mstd, mmax, inc, p)`,
      );
    }
  }
  checkRandAugment(cfg, spec);
  return cfg;
}

export function checkRandAugment(cfg: RandAugmentConfig, what = 'randAugment'): void {
  const bad = (msg: string): never => {
    throw new SigmaError('SGT_DATA_INVALID', `${what}: ${msg}`);
  };
  if (!Number.isInteger(cfg.n) || cfg.n < 0 || cfg.n > 16) bad(`n=${cfg.n} must be an integer in [0, 16]`);
  if (!(cfg.magnitude >= 0) || !Number.isFinite(cfg.magnitude)) bad(`magnitude=${cfg.magnitude} must be finite and ≥ 0`);
  if (!(cfg.magnitudeStd >= 0)) bad(`magnitudeStd=${cfg.magnitudeStd} must be ≥ 0 (or Infinity)`);
  if (!(cfg.magnitudeMax > 0) || !Number.isFinite(cfg.magnitudeMax)) bad(`magnitudeMax=${cfg.magnitudeMax} must be finite and > 0`);
  if (!(cfg.prob >= 0 && cfg.prob <= 1)) bad(`prob=${cfg.prob} must be in [0, 1]`);
  if (cfg.ops.length === 0) bad('ops is empty');
  for (const op of cfg.ops) if (!ALL_OPS.has(op)) bad(`unknown op "${op}" (known: ${[...ALL_OPS].join(', ')})`);
}

// ---------------------------------------------------------------------------------------------------------------
// Magnitude → argument (timm's level_to_arg functions). Draws from rng only for the random sign.

const negate = (v: number, rng: Rng): number => (rng.float() > 0.5 ? -v : v);

/** The op's argument at `level` (0..10). Geometric and (increasing) enhance ops draw a random sign from rng. */
export function opArgument(op: OpName, level: number, cfg: RandAugmentConfig, rng: Rng): number {
  const frac = level / LEVEL_DENOM;
  switch (op) {
    case 'Identity':
    case 'AutoContrast':
    case 'Equalize':
    case 'Invert':
      return 0;
    case 'Rotate':
      return negate(frac * 30, rng); // degrees, counter-clockwise
    case 'ShearX':
    case 'ShearY':
      return negate(frac * 0.3, rng);
    case 'TranslateXRel':
    case 'TranslateYRel':
      return negate(frac * cfg.translatePct, rng);
    case 'Solarize': {
      const t = Math.trunc(frac * 256);
      return cfg.increasing ? 256 - t : t; // threshold
    }
    case 'SolarizeAdd':
      return Math.trunc(frac * 110);
    case 'Posterize': {
      const b = Math.trunc(frac * 4);
      return cfg.increasing ? 4 - b : b; // bits kept
    }
    case 'Color':
    case 'Contrast':
    case 'Brightness':
    case 'Sharpness':
      return cfg.increasing ? 1 + negate(frac * 0.9, rng) : frac * 1.8 + 0.1; // enhance factor
  }
}

/**
 * Apply RandAugment to img with the stream rng. Draw order (timm): n op indices, then per op: apply-coin (skipped
 * when prob = 1), magnitude, sign. Returns the result (img itself is not modified).
 */
export function randAugment(img: Rgb, cfg: RandAugmentConfig, rng: Rng): Rgb {
  const chosen: OpName[] = [];
  for (let k = 0; k < cfg.n; k++) chosen.push(cfg.ops[rng.int(cfg.ops.length)]!);
  let out = img;
  for (const op of chosen) {
    if (cfg.prob < 1 && rng.float() > cfg.prob) continue;
    let m = cfg.magnitude;
    if (cfg.magnitudeStd > 0) {
      m = cfg.magnitudeStd === Infinity ? rng.uniform(0, m) : m + cfg.magnitudeStd * rng.normal();
    }
    m = Math.max(0, Math.min(m, cfg.magnitudeMax));
    out = applyOp(out, op, opArgument(op, m, cfg, rng), cfg.fill);
  }
  return out;
}

/** One op with an explicit argument (see opArgument). Returns a new image; the input is not modified. */
export function applyOp(img: Rgb, op: OpName, arg: number, fill: readonly [number, number, number] = [124, 116, 104]): Rgb {
  switch (op) {
    case 'Identity':
      return img;
    case 'AutoContrast':
      return autoContrast(img);
    case 'Equalize':
      return equalize(img);
    case 'Invert':
      return mapLut(img, lutOf((v) => 255 - v));
    case 'Solarize':
      return solarize(img, arg);
    case 'SolarizeAdd':
      return solarizeAdd(img, arg);
    case 'Posterize':
      return posterize(img, arg);
    case 'Color':
      return blend(grayscaleRgb(img), img, arg);
    case 'Contrast':
      return contrast(img, arg);
    case 'Brightness':
      return blend({ ...img, data: new Uint8Array(img.data.length) }, img, arg);
    case 'Sharpness':
      return blend(smooth(img), img, arg);
    case 'Rotate':
      return rotate(img, arg, fill);
    case 'ShearX':
      return affine(img, [1, arg, 0, 0, 1, 0], fill);
    case 'ShearY':
      return affine(img, [1, 0, 0, arg, 1, 0], fill);
    case 'TranslateXRel':
      return affine(img, [1, 0, arg * img.width, 0, 1, 0], fill);
    case 'TranslateYRel':
      return affine(img, [1, 0, 0, 0, 1, arg * img.height], fill);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Point ops (PIL ImageOps), per channel.

function lutOf(f: (v: number) => number): Uint8Array {
  const lut = new Uint8Array(256);
  for (let v = 0; v < 256; v++) lut[v] = f(v);
  return lut;
}

/** Apply one LUT to every channel, or luts[c] to channel c. */
function mapLut(img: Rgb, lut: Uint8Array | readonly Uint8Array[]): Rgb {
  const src = img.data;
  const out = new Uint8Array(src.length);
  if (lut instanceof Uint8Array) {
    for (let i = 0; i < src.length; i++) out[i] = lut[src[i]!]!;
  } else {
    const [l0, l1, l2] = lut as [Uint8Array, Uint8Array, Uint8Array];
    for (let i = 0; i < src.length; i += 3) {
      out[i] = l0[src[i]!]!;
      out[i + 1] = l1[src[i + 1]!]!;
      out[i + 2] = l2[src[i + 2]!]!;
    }
  }
  return { width: img.width, height: img.height, data: out };
}

/** PIL ImageOps.solarize: v < threshold ? v : 255 − v. */
export function solarize(img: Rgb, threshold: number): Rgb {
  return mapLut(img, lutOf((v) => (v < threshold ? v : 255 - v)));
}

/** timm solarize_add: v < 128 ? min(255, v + add) : v. */
export function solarizeAdd(img: Rgb, add: number): Rgb {
  return mapLut(img, lutOf((v) => (v < 128 ? Math.min(255, v + add) : v)));
}

/** PIL ImageOps.posterize keeping `bits` high bits (timm: bits ≥ 8 is the identity; 0 gives black). */
export function posterize(img: Rgb, bits: number): Rgb {
  if (bits >= 8) return img;
  const mask = ~((1 << (8 - Math.max(0, bits))) - 1) & 0xff;
  return mapLut(img, lutOf((v) => v & mask));
}

function histograms(img: Rgb): [Uint32Array, Uint32Array, Uint32Array] {
  const h: [Uint32Array, Uint32Array, Uint32Array] = [new Uint32Array(256), new Uint32Array(256), new Uint32Array(256)];
  const d = img.data;
  for (let i = 0; i < d.length; i += 3) {
    h[0][d[i]!]!++;
    h[1][d[i + 1]!]!++;
    h[2][d[i + 2]!]!++;
  }
  return h;
}

/** PIL ImageOps.autocontrast (cutoff 0): per channel, [min, max] → [0, 255] with lut = trunc(v·scale + offset). */
export function autoContrast(img: Rgb): Rgb {
  const luts = histograms(img).map((h) => {
    let lo = 0;
    while (lo < 256 && h[lo] === 0) lo++;
    let hi = 255;
    while (hi >= 0 && h[hi] === 0) hi--;
    if (hi <= lo) return lutOf((v) => v);
    const scale = 255 / (hi - lo);
    const offset = -lo * scale;
    return lutOf((v) => Math.max(0, Math.min(255, Math.trunc(v * scale + offset))));
  });
  return mapLut(img, luts);
}

/**
 * PIL ImageOps.equalize per channel: step = (N − count of the last non-empty bin) // 256; lut[i] = (step//2 +
 * Σ_{j<i} h[j]) // step; identity when at most one bin is used or step is 0.
 */
export function equalize(img: Rgb): Rgb {
  const luts = histograms(img).map((h) => {
    let used = 0;
    let total = 0;
    let last = 0;
    for (let v = 0; v < 256; v++) {
      if (h[v]! > 0) {
        used++;
        last = h[v]!;
      }
      total += h[v]!;
    }
    const step = Math.floor((total - last) / 256);
    if (used <= 1 || step === 0) return lutOf((v) => v);
    const lut = new Uint8Array(256);
    let n = Math.floor(step / 2);
    for (let v = 0; v < 256; v++) {
      lut[v] = Math.min(255, Math.floor(n / step));
      n += h[v]!;
    }
    return lut;
  });
  return mapLut(img, luts);
}

// ---------------------------------------------------------------------------------------------------------------
// Enhance ops (PIL ImageEnhance): Image.blend(degenerate, img, factor), i.e. d + f·(v − d), clipped, truncated.

/** PIL's RGB → L: (19595 R + 38470 G + 7471 B + 2^15) >> 16. */
const luma = (r: number, g: number, b: number): number => (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;

function blend(degenerate: Rgb, img: Rgb, factor: number): Rgb {
  const a = degenerate.data;
  const b = img.data;
  const out = new Uint8Array(b.length);
  for (let i = 0; i < b.length; i++) {
    const t = a[i]! + factor * (b[i]! - a[i]!);
    out[i] = t <= 0 ? 0 : t >= 255 ? 255 : Math.trunc(t);
  }
  return { width: img.width, height: img.height, data: out };
}

function grayscaleRgb(img: Rgb): Rgb {
  const d = img.data;
  const out = new Uint8Array(d.length);
  for (let i = 0; i < d.length; i += 3) out[i] = out[i + 1] = out[i + 2] = luma(d[i]!, d[i + 1]!, d[i + 2]!);
  return { width: img.width, height: img.height, data: out };
}

/** ImageEnhance.Contrast: blend with a grey image at the rounded mean luma. */
function contrast(img: Rgb, factor: number): Rgb {
  const d = img.data;
  let sum = 0;
  for (let i = 0; i < d.length; i += 3) sum += luma(d[i]!, d[i + 1]!, d[i + 2]!);
  const mean = Math.trunc(sum / (d.length / 3) + 0.5);
  return blend({ ...img, data: new Uint8Array(d.length).fill(mean) }, img, factor);
}

/** PIL ImageFilter.SMOOTH (3×3 [1 1 1; 1 5 1; 1 1 1] / 13, rounded); the one-pixel border is copied unchanged. */
function smooth(img: Rgb): Rgb {
  const { width: w, height: h, data: d } = img;
  const out = new Uint8Array(d);
  for (let y = 1; y < h - 1; y++) {
    for (let x = 1; x < w - 1; x++) {
      for (let c = 0; c < 3; c++) {
        const o = (y * w + x) * 3 + c;
        const up = o - w * 3;
        const dn = o + w * 3;
        const s = d[up - 3]! + d[up]! + d[up + 3]! + d[o - 3]! + 5 * d[o]! + d[o + 3]! + d[dn - 3]! + d[dn]! + d[dn + 3]!;
        out[o] = Math.min(255, Math.floor(s / 13 + 0.5));
      }
    }
  }
  return { width: w, height: h, data: out };
}

// ---------------------------------------------------------------------------------------------------------------
// Geometric ops: PIL Image.transform(AFFINE) — output pixel centre (x+½, y+½) samples the input at
// (a·x + b·y + c, d·x + e·y + f), bilinear between input pixel centres; points outside the input get `fill`.

/** Inverse map [a, b, c, d, e, f] (output → input), as PIL's AFFINE data. */
export function affine(img: Rgb, m: readonly [number, number, number, number, number, number], fill: readonly [number, number, number]): Rgb {
  const { width: w, height: h, data: src } = img;
  const out = new Uint8Array(src.length);
  const [a, b, c, d, e, f] = m;
  for (let y = 0; y < h; y++) {
    const yo = y + 0.5;
    for (let x = 0; x < w; x++) {
      const xo = x + 0.5;
      let xin = a * xo + b * yo + c;
      let yin = d * xo + e * yo + f;
      const o = (y * w + x) * 3;
      if (xin < 0 || xin >= w || yin < 0 || yin >= h) {
        out[o] = fill[0];
        out[o + 1] = fill[1];
        out[o + 2] = fill[2];
        continue;
      }
      xin -= 0.5;
      yin -= 0.5;
      const x0 = Math.floor(xin);
      const y0 = Math.floor(yin);
      const dx = xin - x0;
      const dy = yin - y0;
      const xa = (x0 < 0 ? 0 : x0) * 3;
      const xb = (x0 + 1 >= w ? w - 1 : x0 + 1) * 3;
      const ra = (y0 < 0 ? 0 : y0) * w * 3;
      const rb = (y0 + 1 >= h ? (y0 < 0 ? 0 : y0) : y0 + 1) * w * 3; // past the last row PIL reuses the same row
      for (let ch = 0; ch < 3; ch++) {
        const v1 = src[ra + xa + ch]! + dx * (src[ra + xb + ch]! - src[ra + xa + ch]!);
        const v2 = src[rb + xa + ch]! + dx * (src[rb + xb + ch]! - src[rb + xa + ch]!);
        const v = v1 + dy * (v2 - v1);
        out[o + ch] = v <= 0 ? 0 : v >= 255 ? 255 : Math.trunc(v + 0.5);
      }
    }
  }
  return { width: w, height: h, data: out };
}

/** PIL Image.rotate(degrees) about the image centre (w/2, h/2), counter-clockwise, same size, matrix rounded to 15 places. */
export function rotate(img: Rgb, degrees: number, fill: readonly [number, number, number]): Rgb {
  const rad = -((((degrees % 360) + 360) % 360) * Math.PI) / 180;
  const r15 = (v: number): number => Math.round(v * 1e15) / 1e15;
  const a = r15(Math.cos(rad)), b = r15(Math.sin(rad)), d = r15(-Math.sin(rad)), e = r15(Math.cos(rad));
  const cx = img.width / 2;
  const cy = img.height / 2;
  const c = a * -cx + b * -cy + cx;
  const f = d * -cx + e * -cy + cy;
  return affine(img, [a, b, c, d, e, f], fill);
}
