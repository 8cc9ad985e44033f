// Procedural "shapes" dataset written as a real on-disk ImageFolder (<root>/{train,val}/<class>/<id>.png):
// the demo's data, learnable by a tiny ViT but not from mean colour, deterministic from a seed, built once.

import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { SigmaError } from '../../shared/errors.js';
import { Rng, deriveSeed } from '../rng.js';

/** Bump when the rendering changes, so existing datasets are regenerated rather than silently reused. */
export const GENERATOR_VERSION = 1;
export const GENERATOR_NAME = 'sigmatrain-shapes';
export const MANIFEST_FILE = 'manifest.json';

/** Class patterns, in generation order; `classes: k` uses the first k. Directory names are these strings. */
export const SHAPE_CLASSES = [
  'circle', // filled disk
  'square', // square outline
  'triangle', // filled, apex up
  'plus', // + cross
  'hstripes', // horizontal stripes over the whole image
  'vstripes', // vertical stripes over the whole image
  'diagonal', // one long thick line at ±45°
  'ring', // circle outline
  'checkerboard', // whole-image checkerboard
  'xcross', // X cross
] as const;
export type ShapeClass = (typeof SHAPE_CLASSES)[number];

export interface ShapesOptions {
  root: string;
  /** Image side in pixels (square images), 8..256. */
  size: number;
  /** Number of classes, 1..10 (the first `classes` of SHAPE_CLASSES). */
  classes: number;
  trainPerClass: number;
  valPerClass: number;
  seed: number;
  format?: 'png' | 'jpeg';
}

/** What manifest.json holds; equality of this object (plus every file present) means "already generated". */
export interface ShapesManifest {
  generator: typeof GENERATOR_NAME;
  version: number;
  size: number;
  classes: number;
  classNames: string[];
  trainPerClass: number;
  valPerClass: number;
  seed: number;
  format: 'png' | 'jpeg';
}

const SUPERSAMPLE = 4; // 4×4 sub-pixel samples per pixel: anti-aliased edges, so thin strokes survive at 16 px
const NOISE_STD = 6; // per-channel Gaussian pixel noise, in 0..255 units
const ENCODE_CONCURRENCY = 8;

function checkOptions(o: ShapesOptions): void {
  const int = (name: string, v: number, lo: number, hi: number): void => {
    if (!Number.isInteger(v) || v < lo || v > hi) {
      throw new SigmaError('SGT_DATA_INVALID', `generateShapes: ${name}=${v} must be an integer in [${lo}, ${hi}]`);
    }
  };
  int('size', o.size, 8, 256);
  int('classes', o.classes, 1, SHAPE_CLASSES.length);
  int('trainPerClass', o.trainPerClass, 1, 1_000_000);
  int('valPerClass', o.valPerClass, 0, 1_000_000);
  if (!Number.isSafeInteger(o.seed)) {
    throw new SigmaError('SGT_DATA_INVALID', `generateShapes: seed=${o.seed} must be a safe integer`);
  }
  if (o.format !== undefined && o.format !== 'png' && o.format !== 'jpeg') {
    throw new SigmaError('SGT_DATA_INVALID', `generateShapes: format=${String(o.format)} must be 'png' or 'jpeg'`);
  }
}

export function shapesManifest(o: ShapesOptions): ShapesManifest {
  return {
    generator: GENERATOR_NAME,
    version: GENERATOR_VERSION,
    size: o.size,
    classes: o.classes,
    classNames: SHAPE_CLASSES.slice(0, o.classes),
    trainPerClass: o.trainPerClass,
    valPerClass: o.valPerClass,
    seed: o.seed,
    format: o.format ?? 'png',
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Rendering: a coverage function per class, evaluated at sub-pixel points, blends a random foreground colour over
// a random background colour; then Gaussian noise. Colours are independent of the class, so the mean colour of an
// image carries almost no label information: the model has to see the shape.

type Inside = (x: number, y: number) => boolean; // pixel coordinates, (0,0) = top-left corner of the image

function shapeCoverage(cls: ShapeClass, S: number, rng: Rng): Inside {
  const k = S / 16; // all lengths are chosen for 16 px and scale with the image
  const r = rng.uniform(4.5, 6.5) * k; // half-extent of bounded shapes
  const margin = r + 0.5 * k;
  const cx = rng.uniform(margin, S - margin);
  const cy = rng.uniform(margin, S - margin);
  const t = rng.uniform(1.5, 2.2) * k; // stroke width
  const h = t / 2;
  switch (cls) {
    case 'circle':
      return (x, y) => (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
    case 'ring': {
      const mid = r - h;
      return (x, y) => Math.abs(Math.hypot(x - cx, y - cy) - mid) <= h;
    }
    case 'square':
      return (x, y) => {
        const m = Math.max(Math.abs(x - cx), Math.abs(y - cy));
        return m <= r && m >= r - t;
      };
    case 'triangle':
      // Apex up (one orientation: at 16 px a second one costs the model more data than it teaches).
      return (x, y) => {
        const dy = y - cy; // in [-r, r], apex at -r
        if (dy > r || dy < -r) return false;
        return Math.abs(x - cx) <= (dy + r) / 2; // half-width grows linearly from 0 at the apex to r at the base
      };
    case 'plus':
      return (x, y) => {
        const dx = Math.abs(x - cx);
        const dy = Math.abs(y - cy);
        return (dx <= h && dy <= r) || (dy <= h && dx <= r);
      };
    case 'xcross':
      return (x, y) => {
        const dx = x - cx;
        const dy = y - cy;
        if (Math.max(Math.abs(dx), Math.abs(dy)) > r) return false;
        return Math.abs(dx - dy) * Math.SQRT1_2 <= h || Math.abs(dx + dy) * Math.SQRT1_2 <= h;
      };
    case 'diagonal': {
      const s = rng.u32() & 1 ? 1 : -1; // "\" or "/"; unbounded, so it crosses the whole image
      return (x, y) => Math.abs(x - cx - s * (y - cy)) * Math.SQRT1_2 <= h;
    }
    case 'hstripes':
    case 'vstripes': {
      const period = rng.uniform(3.5, 6) * k;
      const phase = rng.uniform(0, period);
      const horizontal = cls === 'hstripes';
      return (x, y) => {
        const u = (horizontal ? y : x) + phase;
        return u - Math.floor(u / period) * period < period / 2;
      };
    }
    case 'checkerboard': {
      const cell = rng.uniform(2, 3.5) * k;
      const px = rng.uniform(0, 2 * cell);
      const py = rng.uniform(0, 2 * cell);
      return (x, y) => ((Math.floor((x + px) / cell) + Math.floor((y + py) / cell)) & 1) === 0;
    }
  }
}

function randomColour(rng: Rng): [number, number, number] {
  return [rng.int(256), rng.int(256), rng.int(256)];
}

const luma = (c: [number, number, number]): number => 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];

/** A foreground/background pair with enough contrast to see the shape (rejection sampling). */
function colourPair(rng: Rng): [[number, number, number], [number, number, number]] {
  for (;;) {
    const fg = randomColour(rng);
    const bg = randomColour(rng);
    const dist = Math.hypot(fg[0] - bg[0], fg[1] - bg[1], fg[2] - bg[2]);
    if (dist >= 120 && Math.abs(luma(fg) - luma(bg)) >= 40) return [fg, bg];
  }
}

/**
 * Render one image of class `cls` as packed RGB uint8, shape [size, size, 3] (row-major, HWC).
 * Pure function of (cls, size, seed).
 */
export function renderShape(cls: ShapeClass, size: number, seed: number): Uint8Array {
  const rng = new Rng(seed);
  const [fg, bg] = colourPair(rng);
  const inside = shapeCoverage(cls, size, rng);
  const out = new Uint8Array(size * size * 3);
  const n = SUPERSAMPLE;
  for (let py = 0; py < size; py++) {
    for (let px = 0; px < size; px++) {
      let hits = 0;
      for (let sy = 0; sy < n; sy++) {
        for (let sx = 0; sx < n; sx++) {
          if (inside(px + (sx + 0.5) / n, py + (sy + 0.5) / n)) hits++;
        }
      }
      const a = hits / (n * n);
      const o = (py * size + px) * 3;
      for (let c = 0; c < 3; c++) {
        const v = a * fg[c] + (1 - a) * bg[c] + NOISE_STD * rng.normal();
        out[o + c] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// On-disk layout, idempotence and atomic replacement.

const SPLITS = ['train', 'val'] as const;

/** File name of sample i (0-based, per split) — ids are global across the split's classes. */
function fileName(id: number, format: 'png' | 'jpeg'): string {
  return `${String(id).padStart(6, '0')}.${format === 'png' ? 'png' : 'jpg'}`;
}

/** Expected files: split → class → file names. Ids run class-major: class c holds ids [c*per, (c+1)*per). */
function expectedLayout(m: ShapesManifest): Map<string, Map<string, string[]>> {
  const layout = new Map<string, Map<string, string[]>>();
  for (const split of SPLITS) {
    const per = split === 'train' ? m.trainPerClass : m.valPerClass;
    const byClass = new Map<string, string[]>();
    m.classNames.forEach((name, c) => {
      byClass.set(
        name,
        Array.from({ length: per }, (_, i) => fileName(c * per + i, m.format)),
      );
    });
    layout.set(split, byClass);
  }
  return layout;
}

async function readManifest(root: string): Promise<unknown | undefined> {
  try {
    return JSON.parse(await fs.readFile(path.join(root, MANIFEST_FILE), 'utf8')) as unknown;
  } catch {
    return undefined;
  }
}

async function pathExists(p: string): Promise<boolean> {
  try {
    await fs.stat(p);
    return true;
  } catch {
    return false;
  }
}

/** True iff `root` holds exactly this manifest and every expected image file. */
async function isComplete(root: string, want: ShapesManifest): Promise<boolean> {
  const have = await readManifest(root);
  if (JSON.stringify(have) !== JSON.stringify(want)) return false;
  for (const [split, byClass] of expectedLayout(want)) {
    for (const [cls, files] of byClass) {
      let present: Set<string>;
      try {
        present = new Set(await fs.readdir(path.join(root, split, cls)));
      } catch {
        return false;
      }
      for (const f of files) if (!present.has(f)) return false;
    }
  }
  return true;
}

async function encode(rgb: Uint8Array, size: number, format: 'png' | 'jpeg'): Promise<Buffer> {
  const img = sharp(rgb, { raw: { width: size, height: size, channels: 3 } });
  return format === 'png'
    ? img.png({ compressionLevel: 6 }).toBuffer()
    : img.jpeg({ quality: 92, chromaSubsampling: '4:4:4' }).toBuffer();
}

/** Render and write every image of the dataset under `dir` (which must exist and be empty). */
async function writeDataset(dir: string, m: ShapesManifest): Promise<void> {
  const jobs: { file: string; cls: ShapeClass; seed: number }[] = [];
  for (const [split, byClass] of expectedLayout(m)) {
    const splitIdx = split === 'train' ? 0 : 1;
    for (const [cls, files] of byClass) {
      const c = m.classNames.indexOf(cls);
      await fs.mkdir(path.join(dir, split, cls), { recursive: true });
      files.forEach((f, i) => {
        // Each image has its own stream: independent of generation order and of the other counts.
        jobs.push({ file: path.join(dir, split, cls, f), cls: cls as ShapeClass, seed: deriveSeed(m.seed, splitIdx, c, i) });
      });
    }
  }
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const job = jobs[next++]!;
      const bytes = await encode(renderShape(job.cls, m.size, job.seed), m.size, m.format);
      await fs.writeFile(job.file, bytes);
    }
  };
  await Promise.all(Array.from({ length: ENCODE_CONCURRENCY }, worker));
  await fs.writeFile(path.join(dir, MANIFEST_FILE), JSON.stringify(m, null, 2) + '\n');
}

function siblingName(root: string, tag: string): string {
  return `${root}.${tag}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/**
 * Ensure `root` holds the shapes dataset for these options. If manifest and files already match, nothing is
 * written (created=false). Otherwise the dataset is generated into a sibling temp dir and renamed into place, so a
 * reader never sees a half-written dataset under `root` (during the replacement of a stale dataset, `root` is
 * briefly absent). Several processes may call this at once: the first to finish installs its copy, the others
 * find it complete and return created=false. An existing `root` that is neither empty nor a shapes dataset is never
 * touched (SGT_DATA_INVALID).
 */
export async function generateShapes(opts: ShapesOptions): Promise<{ root: string; created: boolean }> {
  checkOptions(opts);
  const root = path.resolve(opts.root);
  const want = shapesManifest(opts);
  if (await isComplete(root, want)) return { root, created: false };

  await fs.mkdir(path.dirname(root), { recursive: true });
  const tmp = siblingName(root, 'tmp');
  await fs.mkdir(tmp);
  try {
    await writeDataset(tmp, want);
    try {
      await fs.rename(tmp, root); // succeeds iff root is absent or an empty directory
      return { root, created: true };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST' && code !== 'ENOTEMPTY' && code !== 'ENOTDIR') throw e;
    }
    // root exists and is not empty: a concurrent generator may have just installed the same dataset.
    if (await isComplete(root, want)) return { root, created: false };
    await assertReplaceable(root);
    const old = siblingName(root, 'old');
    await fs.rename(root, old);
    await fs.rename(tmp, root);
    await fs.rm(old, { recursive: true, force: true });
    return { root, created: true };
  } finally {
    if (await pathExists(tmp)) await fs.rm(tmp, { recursive: true, force: true });
  }
}

/** Refuse to replace a directory we did not generate (a mistyped --data.root must not delete someone's files). */
async function assertReplaceable(root: string): Promise<void> {
  const st = await fs.stat(root);
  if (!st.isDirectory()) {
    throw new SigmaError('SGT_DATA_INVALID', `${root} exists and is not a directory; choose another dataset root or remove it`);
  }
  const m = await readManifest(root);
  const ours = typeof m === 'object' && m !== null && (m as { generator?: unknown }).generator === GENERATOR_NAME;
  if (!ours && (await fs.readdir(root)).length > 0) {
    throw new SigmaError(
      'SGT_DATA_INVALID',
      `${root} is not empty and has no ${MANIFEST_FILE} from ${GENERATOR_NAME}; refusing to overwrite it. ` +
        'Point the synthetic dataset root at an empty or new directory.',
    );
  }
}
