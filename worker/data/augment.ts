// One sample through the ViT recipe: encoded bytes → sharp decode + crop + resize → flip → RandAugment →
// normalise → random erasing, written into a row of a batch. A pure function of (bytes, transform, seed).

import sharp from 'sharp';
import { SigmaError } from '../../shared/errors.js';
import { checkRandAugment, parseRandAugment, randAugment, type RandAugmentConfig } from './randaugment.js';
import { Rng, deriveSeed } from '../rng.js';
import {
  DEFAULT_ERASING,
  IMAGENET_MEAN,
  IMAGENET_STD,
  centreCropBox,
  evalResizeFor,
  flipHorizontal,
  normaliseInto,
  randomErase,
  randomResizedCropBox,
  resizeShorterSide,
  type CropBox,
  type ErasingConfig,
  type Rgb,
} from './transforms.js';

export type Interpolation = 'bicubic' | 'bilinear';
/** sharp's failOn: 'warning' (its default) also rejects truncated JPEGs, which libjpeg only warns about. */
export type FailOn = 'none' | 'truncated' | 'error' | 'warning';

type Triple = readonly [number, number, number];

/** Training transform (DeiT): RandomResizedCrop → flip → RandAugment → normalise → random erasing. */
export interface TrainTransform {
  kind: 'train';
  /** Output side in pixels. */
  size: number;
  /** RandomResizedCrop area fraction range. */
  scale: readonly [number, number];
  /** RandomResizedCrop aspect-ratio range (w/h). */
  ratio: readonly [number, number];
  interpolation: Interpolation;
  /** Horizontal-flip probability. */
  hflip: number;
  /** null: no RandAugment. */
  randAugment: RandAugmentConfig | null;
  mean: Triple;
  std: Triple;
  /** null: no random erasing. */
  erasing: ErasingConfig | null;
}

/** Eval transform: resize the shorter side to floor(size / cropPct), centre crop size×size, normalise. */
export interface EvalTransform {
  kind: 'eval';
  size: number;
  /** Crop fraction (timm crop_pct; 224/256 = 0.875). */
  cropPct: number;
  interpolation: Interpolation;
  mean: Triple;
  std: Triple;
}

export type SampleTransform = TrainTransform | EvalTransform;

/** The RandAugment spec DeiT trains with. */
export const DEIT_RAND_AUGMENT = 'rand-m9-mstd0.5-inc1';

/** The DeiT training transform at `size`, with overrides. `randAugment` may be given as a timm string. */
export function trainTransform(
  over: Partial<Omit<TrainTransform, 'kind' | 'randAugment'>> & { randAugment?: RandAugmentConfig | string | null } = {},
): TrainTransform {
  const mean = over.mean ?? IMAGENET_MEAN;
  const fill = mean.map((m) => Math.min(255, Math.round(255 * m))) as unknown as Triple; // timm img_mean
  const ra = over.randAugment === undefined ? DEIT_RAND_AUGMENT : over.randAugment;
  const t: TrainTransform = {
    kind: 'train',
    size: 224,
    scale: [0.08, 1],
    ratio: [3 / 4, 4 / 3],
    interpolation: 'bicubic',
    hflip: 0.5,
    std: IMAGENET_STD,
    erasing: { ...DEFAULT_ERASING },
    ...over,
    mean,
    randAugment: typeof ra === 'string' ? parseRandAugment(ra, { fill }) : ra,
  };
  checkTransform(t);
  return t;
}

/** The standard eval transform: 256 → centre 224 at the defaults. */
export function evalTransform(over: Partial<Omit<EvalTransform, 'kind'>> = {}): EvalTransform {
  const t: EvalTransform = { kind: 'eval', size: 224, cropPct: 0.875, interpolation: 'bicubic', mean: IMAGENET_MEAN, std: IMAGENET_STD, ...over };
  checkTransform(t);
  return t;
}

/** Throws SGT_DATA_INVALID naming the first bad field. */
export function checkTransform(t: SampleTransform): void {
  const bad = (k: string, v: unknown, want: string): never => {
    throw new SigmaError('SGT_DATA_INVALID', `${t.kind} transform: ${k}=${JSON.stringify(v)} must be ${want}`);
  };
  if (!Number.isInteger(t.size) || t.size < 1 || t.size > 4096) bad('size', t.size, 'an integer in [1, 4096]');
  if (t.interpolation !== 'bicubic' && t.interpolation !== 'bilinear') bad('interpolation', t.interpolation, "'bicubic' or 'bilinear'");
  for (let c = 0; c < 3; c++) {
    if (!Number.isFinite(t.mean[c])) bad(`mean[${c}]`, t.mean[c], 'finite');
    if (!(t.std[c]! > 0) || !Number.isFinite(t.std[c])) bad(`std[${c}]`, t.std[c], 'finite and > 0');
  }
  if (t.kind === 'eval') {
    if (!(t.cropPct > 0 && t.cropPct <= 1)) bad('cropPct', t.cropPct, 'in (0, 1]');
    return;
  }
  if (!(t.scale[0] > 0 && t.scale[0] <= t.scale[1])) bad('scale', t.scale, '0 < lo ≤ hi');
  if (!(t.ratio[0] > 0 && t.ratio[0] <= t.ratio[1])) bad('ratio', t.ratio, '0 < lo ≤ hi');
  if (!(t.hflip >= 0 && t.hflip <= 1)) bad('hflip', t.hflip, 'in [0, 1]');
  if (t.randAugment) checkRandAugment(t.randAugment);
  if (t.erasing) {
    const e = t.erasing;
    if (!(e.p >= 0 && e.p <= 1)) bad('erasing.p', e.p, 'in [0, 1]');
    if (!(e.minArea > 0 && e.minArea <= e.maxArea && e.maxArea < 1)) bad('erasing area', [e.minArea, e.maxArea], '0 < min ≤ max < 1');
    if (!(e.minAspect > 0)) bad('erasing.minAspect', e.minAspect, '> 0');
  }
}

const SAMPLE_TAG = 0x41d6; // separates the per-sample augmentation streams from other deriveSeed users

/**
 * The augmentation stream of one sample occurrence: a pure function of (seed, epoch, sample id, repeat), so a
 * sample is augmented identically whichever rank, thread or batch position decodes it, and differently in every
 * epoch and for each repeated-augmentation copy.
 */
export function sampleSeed(seed: number, epoch: number, id: number, repeat = 0): number {
  return deriveSeed(seed, epoch, id, repeat, SAMPLE_TAG);
}

const kernelOf = (i: Interpolation): 'cubic' | 'linear' => (i === 'bicubic' ? 'cubic' : 'linear');

/** Raw RGB from a sharp pipeline, converted to 3-channel sRGB (grey replicated, alpha dropped, CMYK converted). */
async function toRgb(pipe: sharp.Sharp, want: number): Promise<Rgb> {
  const { data, info } = await pipe.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || info.width !== want || info.height !== want || data.length !== want * want * 3) {
    throw new Error(`decoder returned ${info.width}x${info.height}x${info.channels} (${data.length} bytes), expected ${want}x${want}x3`);
  }
  return { width: want, height: want, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

/** What decodeSample did, for tests and debugging. */
export interface SampleTrace {
  source: { width: number; height: number };
  /** Crop in source pixels (train), or in resized pixels (eval, after resizing to `resized`). */
  crop: CropBox;
  resized?: { width: number; height: number };
  flipped?: boolean;
  erased?: CropBox | null;
}

/**
 * True when the bytes end the way a complete file of their format ends: JPEG with the EOI marker FF D9 (which
 * cannot occur inside entropy-coded data), PNG with its IEND chunk. libvips decodes on demand, so a crop that stops
 * above the missing rows of a truncated file would otherwise decode without a warning; for any other ending
 * (truncated, trailing bytes, other formats) we decode the whole image first so truncation is always caught.
 */
export function endsComplete(b: Uint8Array): boolean {
  const n = b.length;
  if (n >= 4 && b[0] === 0xff && b[1] === 0xd8) return b[n - 2] === 0xff && b[n - 1] === 0xd9;
  if (n >= 20 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) {
    return b[n - 8] === 0x49 && b[n - 7] === 0x45 && b[n - 6] === 0x4e && b[n - 5] === 0x44; // "IEND" + CRC
  }
  return false;
}

/** A sharp pipeline over the image that will fail on a truncated file wherever the crop lies. */
async function source(encoded: Buffer, failOn: FailOn): Promise<sharp.Sharp> {
  if (endsComplete(encoded)) return sharp(encoded, { failOn });
  const { data, info } = await sharp(encoded, { failOn }).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels as 1 | 2 | 3 | 4 } });
}

/**
 * Decode `encoded` and write the transformed, normalised image ([size, size, 3] NHWC, size² · 3 floats) into dst at
 * element offset `off`. The train transform draws from Rng(seed) in order: crop box, flip coin, RandAugment,
 * erasing; the eval transform ignores seed. Throws on an undecodable image (callers turn that into a skip).
 */
export async function decodeSample(
  encoded: Buffer,
  t: SampleTransform,
  seed: number,
  dst: Float32Array,
  off: number,
  failOn: FailOn = 'warning',
): Promise<SampleTrace> {
  const meta = await sharp(encoded).metadata();
  const W = meta.width;
  const H = meta.height;
  if (!W || !H) throw new Error(`image has no dimensions (format ${meta.format ?? 'unknown'})`);
  const kernel = kernelOf(t.interpolation);
  if (t.kind === 'eval') {
    const resized = resizeShorterSide(W, H, evalResizeFor(t.size, t.cropPct));
    const crop = centreCropBox(resized.width, resized.height, t.size);
    const img = await source(encoded, failOn);
    const rgb = await toRgb(img.resize(resized.width, resized.height, { fit: 'fill', kernel }).extract(crop), t.size);
    normaliseInto(rgb, dst, off, t.mean, t.std);
    return { source: { width: W, height: H }, crop, resized };
  }
  const rng = new Rng(seed);
  const crop = randomResizedCropBox(W, H, rng, t.scale, t.ratio);
  const img = await source(encoded, failOn);
  let rgb = await toRgb(img.extract(crop).resize(t.size, t.size, { fit: 'fill', kernel }), t.size);
  // Coin drawn even when hflip is 0 or 1, so the later draws do not shift with the setting.
  const flipped = rng.float() < t.hflip;
  if (flipped) flipHorizontal(rgb);
  if (t.randAugment) rgb = randAugment(rgb, t.randAugment, rng);
  normaliseInto(rgb, dst, off, t.mean, t.std);
  const erased = t.erasing ? randomErase(dst, off, t.size, t.size, rng, t.erasing) : null;
  return { source: { width: W, height: H }, crop, flipped, erased };
}
