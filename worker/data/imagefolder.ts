// ImageFolder reader (<root>/<split>/<class>/<image>): index a split, decode batches with sharp into normalised
// NHWC Float32Arrays, skipping (and reporting) unreadable files; ImageCache decodes a small split once.

import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { SigmaError } from '../../shared/errors.js';

/** Extensions read as images (lower-cased). Other files (manifest.json, .DS_Store, ...) are ignored. */
export const IMAGE_EXTENSIONS: ReadonlySet<string> = new Set(['.png', '.jpg', '.jpeg', '.webp', '.bmp', '.tif', '.tiff', '.gif']);

/**
 * The samples of one split. Sample id i (0..n-1) is paths[i] with label labels[i]; ids follow (class, file name)
 * order, so an index is a pure function of the directory listing. All arrays have length n.
 */
export interface SampleIndex {
  ids: Int32Array;
  paths: string[];
  labels: Int32Array;
  /** File sizes in bytes, for later size-aware batching. */
  bytes: Float64Array;
  /** Sorted class directory names; label k is classes[k]. */
  classes: string[];
}

/** Code-point order (not locale order), so every machine builds the same labels. */
const byCodePoint = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * List `<root>/<split>`: every non-hidden subdirectory is a class (sorted), every image file inside it (sorted,
 * non-recursive) a sample. Throws SGT_DATA_INVALID naming the path when the split is missing, has no class
 * directories, or has no images at all. An empty class directory still counts as a class (keeps labels aligned
 * between splits).
 */
export async function indexImageFolder(root: string, split: 'train' | 'val'): Promise<SampleIndex> {
  const dir = path.resolve(root, split);
  let entries;
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    throw new SigmaError(
      'SGT_DATA_INVALID',
      `cannot read the ${split} split at ${dir} (${code}); expected an ImageFolder <root>/${split}/<class>/<image>. ` +
        'Check data.root, or generate the synthetic dataset.',
      { cause: e },
    );
  }
  const classes = entries
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort(byCodePoint);
  if (classes.length === 0) {
    throw new SigmaError(
      'SGT_DATA_INVALID',
      `${dir} has no class directories; expected <root>/${split}/<class>/<image>.`,
    );
  }
  const paths: string[] = [];
  const labelList: number[] = [];
  for (let k = 0; k < classes.length; k++) {
    const classDir = path.join(dir, classes[k]!);
    const files = (await fs.readdir(classDir, { withFileTypes: true }))
      .filter((e) => e.isFile() && !e.name.startsWith('.') && IMAGE_EXTENSIONS.has(path.extname(e.name).toLowerCase()))
      .map((e) => e.name)
      .sort(byCodePoint);
    for (const f of files) {
      paths.push(path.join(classDir, f));
      labelList.push(k);
    }
  }
  const n = paths.length;
  if (n === 0) {
    throw new SigmaError(
      'SGT_DATA_INVALID',
      `${dir} has ${classes.length} class directories but no image files (${[...IMAGE_EXTENSIONS].join(' ')}).`,
    );
  }
  const bytes = new Float64Array(n);
  await forEachConcurrent(n, 16, async (i) => {
    bytes[i] = (await fs.stat(paths[i]!)).size;
  });
  const ids = new Int32Array(n);
  for (let i = 0; i < n; i++) ids[i] = i;
  return { ids, paths, labels: Int32Array.from(labelList), bytes, classes };
}

/** Throws SGT_DATA_INVALID unless both splits have the same class list (else label k means different things). */
export function assertSameClasses(train: SampleIndex, val: SampleIndex): void {
  if (train.classes.join('\n') !== val.classes.join('\n')) {
    throw new SigmaError(
      'SGT_DATA_INVALID',
      `train and val class directories differ: train=[${train.classes.join(', ')}] val=[${val.classes.join(', ')}]; ` +
        'both splits need the same class directories.',
    );
  }
}

/** Decoding: every image becomes size×size RGB, then x = (v/255 − mean[c]) / std[c] (mean/std on the 0..1 scale). */
export interface DecodeOptions {
  size: number;
  mean: [number, number, number];
  std: [number, number, number];
}

export interface Skipped {
  id: number;
  path: string;
  reason: string;
}

export interface Batch {
  /** [n, size, size, 3] NHWC, normalised. */
  x: Float32Array;
  /** [n] labels. */
  y: Int32Array;
  /** Samples actually loaded (requested minus skipped). */
  n: number;
  /** [n] the ids that were loaded, in request order (rows of x). */
  ids: Int32Array;
  skipped: Skipped[];
}

function checkDecodeOptions(o: DecodeOptions): void {
  if (!Number.isInteger(o.size) || o.size < 1 || o.size > 4096) {
    throw new SigmaError('SGT_DATA_INVALID', `image size=${o.size} must be an integer in [1, 4096]`);
  }
  for (let c = 0; c < 3; c++) {
    if (!Number.isFinite(o.mean[c])) throw new SigmaError('SGT_DATA_INVALID', `normalisation mean[${c}]=${o.mean[c]} is not finite`);
    if (!(o.std[c]! > 0) || !Number.isFinite(o.std[c])) {
      throw new SigmaError('SGT_DATA_INVALID', `normalisation std[${c}]=${o.std[c]} must be finite and > 0`);
    }
  }
}

/**
 * Decode one encoded image to packed RGB uint8 [size, size, 3]. Alpha is dropped (not composited), greyscale is
 * replicated to 3 channels, other sizes are resized with fit 'fill' (aspect not kept). Throws on a bad image.
 */
export async function decodeRgb(encoded: Buffer, size: number): Promise<Uint8Array> {
  let { data, info } = await sharp(encoded).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  if (info.width !== size || info.height !== size) {
    ({ data, info } = await sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels } })
      .resize(size, size, { fit: 'fill' })
      .raw()
      .toBuffer({ resolveWithObject: true }));
  }
  const px = size * size;
  const ch = info.channels;
  if (data.length !== px * ch) {
    throw new Error(`decoder returned ${data.length} bytes for ${size}x${size}x${ch} (unsupported bit depth?)`);
  }
  if (ch === 3) return new Uint8Array(data.buffer, data.byteOffset, data.length);
  const out = new Uint8Array(px * 3);
  for (let i = 0; i < px; i++) {
    if (ch >= 3) {
      out[3 * i] = data[ch * i]!;
      out[3 * i + 1] = data[ch * i + 1]!;
      out[3 * i + 2] = data[ch * i + 2]!;
    } else {
      out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = data[ch * i]!; // grey (+ alpha when ch === 2)
    }
  }
  return out;
}

/** Write rgb (uint8 [size,size,3]) normalised into dst at element offset `off`. */
function normaliseInto(rgb: Uint8Array, dst: Float32Array, off: number, o: DecodeOptions): void {
  const s0 = 1 / (255 * o.std[0]), s1 = 1 / (255 * o.std[1]), s2 = 1 / (255 * o.std[2]);
  const b0 = o.mean[0] / o.std[0], b1 = o.mean[1] / o.std[1], b2 = o.mean[2] / o.std[2];
  for (let i = 0; i < rgb.length; i += 3) {
    dst[off + i] = rgb[i]! * s0 - b0;
    dst[off + i + 1] = rgb[i + 1]! * s1 - b1;
    dst[off + i + 2] = rgb[i + 2]! * s2 - b2;
  }
}

async function forEachConcurrent(n: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const run = async (): Promise<void> => {
    while (next < n) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, run));
}

const DECODE_CONCURRENCY = 8; // in-flight files; sharp decodes on libuv's threadpool (4 threads by default)

/** Read and decode one sample; a failure becomes a reason string, never an exception. */
async function loadOne(p: string, size: number): Promise<Uint8Array | string> {
  let encoded: Buffer;
  try {
    encoded = await fs.readFile(p);
  } catch (e) {
    return `read failed: ${(e as Error).message}`;
  }
  try {
    return await decodeRgb(encoded, size);
  } catch (e) {
    return `decode failed: ${(e as Error).message}`;
  }
}

function checkId(index: SampleIndex, id: number): void {
  if (!Number.isInteger(id) || id < 0 || id >= index.paths.length) {
    throw new SigmaError('SGT_DATA_INVALID', `sample id ${id} is out of range [0, ${index.paths.length}) for this index`);
  }
}

/** A batch of the first n of m requested rows (the rest were skipped), without copying when nothing was. */
function trimmed(x: Float32Array, y: Int32Array, ids: Int32Array, n: number, m: number, row: number, skipped: Skipped[]): Batch {
  return n === m ? { x, y, n, ids, skipped } : { x: x.slice(0, n * row), y: y.slice(0, n), n, ids: ids.slice(0, n), skipped };
}

/**
 * Decode the samples `ids` into one batch, rows in request order. A file that cannot be read or decoded is left
 * out and listed in `skipped` with its path and reason; only an id outside the index throws.
 */
export async function loadBatch(index: SampleIndex, ids: ArrayLike<number>, opts: DecodeOptions): Promise<Batch> {
  checkDecodeOptions(opts);
  const m = ids.length;
  for (let j = 0; j < m; j++) checkId(index, ids[j]!);
  const row = opts.size * opts.size * 3;
  const x = new Float32Array(m * row);
  const ok = new Uint8Array(m);
  const reasons: (string | undefined)[] = new Array(m);
  await forEachConcurrent(m, DECODE_CONCURRENCY, async (j) => {
    const got = await loadOne(index.paths[ids[j]!]!, opts.size);
    if (typeof got === 'string') reasons[j] = got;
    else {
      normaliseInto(got, x, j * row, opts);
      ok[j] = 1;
    }
  });
  return compact(index, ids, x, ok, reasons, row);
}

/** Pack the rows that loaded to the front (request order kept) and build the skip report. */
function compact(
  index: SampleIndex,
  ids: ArrayLike<number>,
  x: Float32Array,
  ok: Uint8Array,
  reasons: (string | undefined)[],
  row: number,
): Batch {
  const m = ids.length;
  const skipped: Skipped[] = [];
  let n = 0;
  const outIds = new Int32Array(m);
  const y = new Int32Array(m);
  for (let j = 0; j < m; j++) {
    const id = ids[j]!;
    if (!ok[j]) {
      skipped.push({ id, path: index.paths[id]!, reason: reasons[j] ?? 'unknown' });
      continue;
    }
    if (n !== j) x.copyWithin(n * row, j * row, (j + 1) * row);
    outIds[n] = id;
    y[n] = index.labels[id]!;
    n++;
  }
  return trimmed(x, y, outIds, n, m, row, skipped);
}

/**
 * A whole split decoded once into one Float32Array [n, size, size, 3] (for small datasets such as the demo's,
 * where decoding every step would dominate the step time). Files that fail at build time are reported in
 * `skipped` and again by every gather that asks for them.
 */
export class ImageCache {
  /** [rows, size, size, 3] normalised pixels of the samples that decoded. */
  readonly x: Float32Array;
  /** Row of sample id in x, or -1 if it was skipped. */
  private readonly rowOf: Int32Array;
  private readonly reasons: Map<number, string>;

  private constructor(
    readonly index: SampleIndex,
    readonly opts: DecodeOptions,
    x: Float32Array,
    rowOf: Int32Array,
    readonly skipped: Skipped[],
  ) {
    this.x = x;
    this.rowOf = rowOf;
    this.reasons = new Map(skipped.map((s) => [s.id, s.reason]));
  }

  /** Decode every sample of `index`. Refuses (SGT_DATA_INVALID) if the pixels would exceed maxBytes (default 1 GiB). */
  static async build(index: SampleIndex, opts: DecodeOptions, maxBytes = 2 ** 30): Promise<ImageCache> {
    checkDecodeOptions(opts);
    const n = index.paths.length;
    const row = opts.size * opts.size * 3;
    const need = n * row * 4;
    if (need > maxBytes) {
      throw new SigmaError(
        'SGT_DATA_INVALID',
        `caching ${n} images of ${opts.size}x${opts.size} needs ${need} bytes > limit ${maxBytes}; ` +
          'use loadBatch per step instead or raise the cache limit',
      );
    }
    const all = await loadBatch(index, index.ids, opts);
    const rowOf = new Int32Array(n).fill(-1);
    for (let r = 0; r < all.n; r++) rowOf[all.ids[r]!] = r;
    return new ImageCache(index, opts, all.x, rowOf, all.skipped);
  }

  /** Samples held (n minus skipped). */
  get rows(): number {
    return this.x.length / (this.opts.size * this.opts.size * 3);
  }

  /** Same contract as loadBatch, from memory: rows in request order, skipped ids reported with their reason. */
  gather(ids: ArrayLike<number>): Batch {
    const row = this.opts.size * this.opts.size * 3;
    const m = ids.length;
    const x = new Float32Array(m * row);
    const y = new Int32Array(m);
    const outIds = new Int32Array(m);
    const skipped: Skipped[] = [];
    let n = 0;
    for (let j = 0; j < m; j++) {
      const id = ids[j]!;
      checkId(this.index, id);
      const r = this.rowOf[id]!;
      if (r < 0) {
        skipped.push({ id, path: this.index.paths[id]!, reason: this.reasons.get(id) ?? 'unknown' });
        continue;
      }
      x.set(this.x.subarray(r * row, (r + 1) * row), n * row);
      y[n] = this.index.labels[id]!;
      outIds[n] = id;
      n++;
    }
    return trimmed(x, y, outIds, n, m, row, skipped);
  }
}
