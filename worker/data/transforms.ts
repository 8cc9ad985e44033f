// Per-image transforms of the ViT recipe on decoded RGB: torchvision's RandomResizedCrop box and eval
// resize/centre-crop geometry, horizontal flip, normalisation and timm's random erasing, on plain typed arrays.

import type { Rng } from '../rng.js';

/** A decoded image: packed RGB uint8, row-major HWC, data.length === width·height·3. */
export interface Rgb {
  data: Uint8Array;
  width: number;
  height: number;
}

/** A crop rectangle in pixels of the source image (torchvision's (i, j, h, w) = (top, left, height, width)). */
export interface CropBox {
  top: number;
  left: number;
  height: number;
  width: number;
}

/** ImageNet channel statistics on the 0..1 scale (torchvision / timm defaults). */
export const IMAGENET_MEAN: readonly [number, number, number] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: readonly [number, number, number] = [0.229, 0.224, 0.225];

/** Python 3's round(): halves go to the even neighbour (round(2.5) = 2, round(3.5) = 4). */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * torchvision RandomResizedCrop.get_params on a width×height image: up to 10 tries of an area fraction
 * U(scale) and a log-uniform aspect ratio in `ratio`, w = round(√(area·r)), h = round(√(area/r)), accepted when
 * 0 < w ≤ width and 0 < h ≤ height, then a uniform position. After 10 failures: the centre crop of the largest
 * box whose aspect ratio is clamped into `ratio` (the whole image when its ratio is already inside).
 * Random draws, in order per try: area fraction, log-ratio, then (on success) top, left.
 */
export function randomResizedCropBox(
  width: number,
  height: number,
  rng: Rng,
  scale: readonly [number, number] = [0.08, 1],
  ratio: readonly [number, number] = [3 / 4, 4 / 3],
): CropBox {
  const area = width * height;
  const logLo = Math.log(ratio[0]);
  const logHi = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logLo, logHi));
    const w = roundHalfEven(Math.sqrt(targetArea * aspect));
    const h = roundHalfEven(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = rng.int(height - h + 1);
      const left = rng.int(width - w + 1);
      return { top, left, height: h, width: w };
    }
  }
  const inRatio = width / height;
  let w: number;
  let h: number;
  const rMin = Math.min(ratio[0], ratio[1]);
  const rMax = Math.max(ratio[0], ratio[1]);
  if (inRatio < rMin) {
    w = width;
    h = roundHalfEven(w / rMin);
  } else if (inRatio > rMax) {
    h = height;
    w = roundHalfEven(h * rMax);
  } else {
    w = width;
    h = height;
  }
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
}

/**
 * torchvision Resize(shorter) for an int size: the shorter side becomes `shorter`, the longer one
 * trunc(shorter · long / short), aspect kept.
 */
export function resizeShorterSide(width: number, height: number, shorter: number): { width: number; height: number } {
  if (width <= height) return { width: shorter, height: Math.trunc((shorter * height) / width) };
  return { width: Math.trunc((shorter * width) / height), height: shorter };
}

/** torchvision CenterCrop(size) box: top = round((H − size)/2), left = round((W − size)/2), Python rounding. */
export function centreCropBox(width: number, height: number, size: number): CropBox {
  return {
    top: roundHalfEven((height - size) / 2),
    left: roundHalfEven((width - size) / 2),
    height: size,
    width: size,
  };
}

/** The eval resize target for a crop of `size` with crop fraction `cropPct` (timm: floor(224 / 0.875) = 256). */
export function evalResizeFor(size: number, cropPct: number): number {
  return Math.floor(size / cropPct + 1e-9); // 1e-9: 224/0.875 is 255.99999999999997 in floating point
}

/** Mirror left–right in place. */
export function flipHorizontal(img: Rgb): void {
  const { data, width, height } = img;
  for (let y = 0; y < height; y++) {
    let a = y * width * 3;
    let b = a + (width - 1) * 3;
    while (a < b) {
      for (let c = 0; c < 3; c++) {
        const t = data[a + c]!;
        data[a + c] = data[b + c]!;
        data[b + c] = t;
      }
      a += 3;
      b -= 3;
    }
  }
}

/** dst[off + i] = (v/255 − mean[c]) / std[c] for the packed RGB pixels v of img (HWC, channel c = i mod 3). */
export function normaliseInto(
  img: Rgb,
  dst: Float32Array,
  off: number,
  mean: readonly [number, number, number],
  std: readonly [number, number, number],
): void {
  const rgb = img.data;
  const s0 = 1 / (255 * std[0]), s1 = 1 / (255 * std[1]), s2 = 1 / (255 * std[2]);
  const b0 = mean[0] / std[0], b1 = mean[1] / std[1], b2 = mean[2] / std[2];
  for (let i = 0; i < rgb.length; i += 3) {
    dst[off + i] = rgb[i]! * s0 - b0;
    dst[off + i + 1] = rgb[i + 1]! * s1 - b1;
    dst[off + i + 2] = rgb[i + 2]! * s2 - b2;
  }
}

/** timm RandomErasing settings (DeiT: p 0.25, mode 'pixel', one region of 2%..1/3 of the area, aspect 0.3..1/0.3). */
export interface ErasingConfig {
  p: number;
  minArea: number;
  maxArea: number;
  minAspect: number;
  /** Defaults to 1 / minAspect. */
  maxAspect?: number;
}

export const DEFAULT_ERASING: Readonly<ErasingConfig> = Object.freeze({ p: 0.25, minArea: 0.02, maxArea: 1 / 3, minAspect: 0.3 });

/**
 * timm RandomErasing (mode 'pixel', count 1) on one normalised image [h, w, 3] at dst[off..]: with probability p,
 * up to 10 tries of area U(minArea, maxArea)·h·w and log-uniform aspect; the first box with w' < w and h' < h is
 * filled with N(0, 1) noise per pixel and channel (noise in normalised units). Returns the box, or null.
 */
export function randomErase(dst: Float32Array, off: number, height: number, width: number, rng: Rng, cfg: ErasingConfig): CropBox | null {
  if (rng.float() > cfg.p) return null;
  const area = height * width;
  const logLo = Math.log(cfg.minAspect);
  const logHi = Math.log(cfg.maxAspect ?? 1 / cfg.minAspect);
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = rng.uniform(cfg.minArea, cfg.maxArea) * area;
    const aspect = Math.exp(rng.uniform(logLo, logHi));
    const h = roundHalfEven(Math.sqrt(target * aspect));
    const w = roundHalfEven(Math.sqrt(target / aspect));
    if (w < width && h < height) {
      const top = rng.int(height - h + 1); // random.randint(0, H − h), inclusive
      const left = rng.int(width - w + 1);
      for (let y = top; y < top + h; y++) {
        let o = off + (y * width + left) * 3;
        for (let k = 0; k < w * 3; k++) dst[o++] = rng.normal();
      }
      return { top, left, height: h, width: w };
    }
  }
  return null;
}
