// Tests for the ImageFolder reader: indexing and sorting, normalisation of known pixels, channel handling,
// resizing, skipping corrupt files with their path, missing-split errors, and the in-memory ImageCache.

import { strict as assert } from 'node:assert';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { SigmaError } from '../../../../shared/errors.js';
import {
  ImageCache,
  assertSameClasses,
  indexImageFolder,
  loadBatch,
  type DecodeOptions,
  type SampleIndex,
} from '../../../../worker/data/imagefolder.js';
import { generateShapes } from '../../../../worker/data/synthetic.js';

const tmpRoot = await fs.mkdtemp(path.join(os.tmpdir(), 'sgt-imgf-'));
after(() => fs.rm(tmpRoot, { recursive: true, force: true }));

const png = (pixels: number[], w: number, h: number, channels: 1 | 3 | 4): Promise<Buffer> =>
  sharp(Uint8Array.from(pixels), { raw: { width: w, height: h, channels } }).png().toBuffer();

async function put(file: string, bytes: Buffer | string): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, bytes);
}

function isDataError(needle: string) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof SigmaError, String(e));
    assert.equal(e.code, 'SGT_DATA_INVALID');
    assert.ok(e.message.includes(needle), `"${e.message}" should name ${needle}`);
    return true;
  };
}

// 2×2 RGB image with known pixels, row-major: (10,20,30) (40,50,60) / (70,80,90) (255,0,128)
const PIXELS = [10, 20, 30, 40, 50, 60, 70, 80, 90, 255, 0, 128];
const NORM: DecodeOptions = { size: 2, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
const expected = (pixels: number[], o: DecodeOptions): number[] => pixels.map((v, i) => (v / 255 - o.mean[i % 3]!) / o.std[i % 3]!);

function assertClose(actual: ArrayLike<number>, want: number[], tol = 1e-5): void {
  assert.equal(actual.length, want.length);
  for (let i = 0; i < want.length; i++) {
    assert.ok(Math.abs(actual[i]! - want[i]!) <= tol, `element ${i}: ${actual[i]} vs ${want[i]}`);
  }
}

describe('indexImageFolder', () => {
  const root = path.join(tmpRoot, 'idx');
  before(async () => {
    // Code-point order: 'B' < 'a' < 'b'. File order inside a class is by name too.
    await put(path.join(root, 'train', 'b', '2.png'), await png(PIXELS, 2, 2, 3));
    await put(path.join(root, 'train', 'b', '10.png'), await png(PIXELS, 2, 2, 3));
    await put(path.join(root, 'train', 'a', 'x.JPG'), await sharp(await png(PIXELS, 2, 2, 3)).jpeg().toBuffer());
    await put(path.join(root, 'train', 'B', 'one.png'), await png([1, 2, 3, 4], 2, 2, 1));
    await put(path.join(root, 'train', 'a', 'notes.txt'), 'not an image');
    await put(path.join(root, 'train', 'a', '.hidden.png'), 'hidden');
    await put(path.join(root, 'train', '.cache', 'c.png'), await png(PIXELS, 2, 2, 3));
    await put(path.join(root, 'train', 'README'), 'top-level file, not a class');
    await fs.mkdir(path.join(root, 'val', 'a'), { recursive: true });
    await fs.mkdir(path.join(root, 'empty'), { recursive: true });
  });

  it('lists every image, classes sorted, labels and sizes aligned with paths', async () => {
    const idx = await indexImageFolder(root, 'train');
    assert.deepEqual(idx.classes, ['B', 'a', 'b']);
    const rel = idx.paths.map((p) => path.relative(path.join(root, 'train'), p));
    assert.deepEqual(rel, [path.join('B', 'one.png'), path.join('a', 'x.JPG'), path.join('b', '10.png'), path.join('b', '2.png')]);
    assert.deepEqual([...idx.labels], [0, 1, 2, 2]);
    assert.deepEqual([...idx.ids], [0, 1, 2, 3]);
    for (let i = 0; i < idx.paths.length; i++) assert.equal(idx.bytes[i], (await fs.stat(idx.paths[i]!)).size);
    assert.ok(path.isAbsolute(idx.paths[0]!));
  });

  it('fails with SGT_DATA_INVALID naming the path for a missing split, no classes, or no images', async () => {
    await assert.rejects(indexImageFolder(path.join(tmpRoot, 'nope'), 'train'), isDataError(path.join(tmpRoot, 'nope', 'train')));
    await assert.rejects(indexImageFolder(path.join(root, 'empty'), 'train'), isDataError(path.join(root, 'empty', 'train')));
    await fs.mkdir(path.join(root, 'empty', 'val'), { recursive: true });
    await assert.rejects(indexImageFolder(path.join(root, 'empty'), 'val'), isDataError(path.join(root, 'empty', 'val')));
    await assert.rejects(indexImageFolder(root, 'val'), isDataError(path.join(root, 'val')));
  });

  it('assertSameClasses catches splits whose labels would disagree', async () => {
    const train = await indexImageFolder(root, 'train');
    assert.doesNotThrow(() => assertSameClasses(train, train));
    assert.throws(() => assertSameClasses(train, { ...train, classes: ['a', 'b'] }), isDataError('train='));
  });
});

describe('loadBatch', () => {
  const root = path.join(tmpRoot, 'load');
  before(async () => {
    await put(path.join(root, 'train', 'k0', 'rgb.png'), await png(PIXELS, 2, 2, 3));
    // RGBA: alpha must be dropped, not composited.
    await put(path.join(root, 'train', 'k1', 'rgba.png'), await png([10, 20, 30, 0, 40, 50, 60, 99, 70, 80, 90, 255, 255, 0, 128, 7], 2, 2, 4));
    // Greyscale: replicated to 3 channels.
    await put(path.join(root, 'train', 'k2', 'grey.png'), await png([0, 100, 200, 255], 2, 2, 1));
    // Uniform 4×4: resized to 2×2 keeps the colour.
    await put(path.join(root, 'train', 'k3', 'big.png'), await png(Array.from({ length: 48 }, (_, i) => [12, 34, 56][i % 3]!), 4, 4, 3));
  });

  it('normalises known pixels exactly: (v/255 − mean) / std, NHWC', async () => {
    const idx = await indexImageFolder(root, 'train');
    const b = await loadBatch(idx, [0], NORM);
    assert.equal(b.n, 1);
    assert.deepEqual([...b.y], [0]);
    assert.deepEqual(b.skipped, []);
    assertClose(b.x, expected(PIXELS, NORM));
    const identity = await loadBatch(idx, [0], { size: 2, mean: [0, 0, 0], std: [1, 1, 1] });
    assertClose(identity.x, PIXELS.map((v) => v / 255), 1e-7);
  });

  it('drops alpha, replicates grey, resizes; rows follow the requested id order', async () => {
    const idx = await indexImageFolder(root, 'train');
    const o: DecodeOptions = { size: 2, mean: [0, 0, 0], std: [1 / 255, 1 / 255, 1 / 255] }; // x = v
    const b = await loadBatch(idx, [3, 2, 1, 0], o);
    assert.equal(b.n, 4);
    assert.deepEqual([...b.y], [3, 2, 1, 0]);
    assert.deepEqual([...b.ids], [3, 2, 1, 0]);
    const row = (r: number): number[] => [...b.x.subarray(r * 12, (r + 1) * 12)].map((v) => Math.round(v));
    assert.deepEqual(row(0), Array.from({ length: 12 }, (_, i) => [12, 34, 56][i % 3]!));
    assert.deepEqual(row(1), [0, 0, 0, 100, 100, 100, 200, 200, 200, 255, 255, 255]);
    assert.deepEqual(row(2), PIXELS);
    assert.deepEqual(row(3), PIXELS);
  });

  it('rejects ids outside the index and bad normalisation', async () => {
    const idx = await indexImageFolder(root, 'train');
    await assert.rejects(loadBatch(idx, [4], NORM), isDataError('4'));
    await assert.rejects(loadBatch(idx, [0], { ...NORM, std: [0.2, 0, 0.2] }), isDataError('std[1]=0'));
  });
});

describe('corrupt files', () => {
  const root = path.join(tmpRoot, 'corrupt');
  let garbage = '';
  let truncated = '';
  let vanished = '';
  let idx: SampleIndex; // indexed before `vanished` was deleted, as when a file disappears during training
  before(async () => {
    await generateShapes({ root, size: 16, classes: 3, trainPerClass: 4, valPerClass: 1, seed: 3 });
    const dir = path.join(root, 'train', 'square');
    garbage = path.join(dir, '000005.png');
    await fs.writeFile(garbage, Buffer.from('this is not a png at all, just text'));
    truncated = path.join(dir, '000006.png');
    const full = await fs.readFile(truncated);
    await fs.writeFile(truncated, full.subarray(0, Math.floor(full.length / 2)));
    vanished = path.join(root, 'train', 'triangle', '000008.png');
    idx = await indexImageFolder(root, 'train');
    await fs.rm(vanished); // a read error at load time, also skipped
  });

  it('skips and reports unreadable images with their path while the rest loads', async () => {
    assert.equal(idx.paths.length, 12);
    const b = await loadBatch(idx, idx.ids, { size: 16, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
    assert.equal(b.n, 9);
    assert.equal(b.x.length, 9 * 16 * 16 * 3);
    assert.deepEqual([...b.ids], [0, 1, 2, 3, 4, 7, 9, 10, 11]);
    assert.deepEqual([...b.y], [0, 0, 0, 0, 1, 1, 2, 2, 2]);
    assert.deepEqual(b.skipped.map((s) => [s.id, s.path]), [[5, garbage], [6, truncated], [8, vanished]]);
    assert.match(b.skipped[0]!.reason, /^decode failed/);
    assert.match(b.skipped[1]!.reason, /^decode failed/);
    assert.match(b.skipped[2]!.reason, /^read failed.*ENOENT/);
    assert.ok(b.x.every((v) => Number.isFinite(v) && v >= -1 - 1e-6 && v <= 1 + 1e-6));
  });

  it('ImageCache decodes once, reports the same skips, and gathers what loadBatch would return', async () => {
    const o: DecodeOptions = { size: 16, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };
    const cache = await ImageCache.build(idx, o);
    assert.equal(cache.rows, 9);
    assert.deepEqual(cache.skipped.map((s) => s.path), [garbage, truncated, vanished]);
    const ids = [11, 5, 0, 8, 7];
    const fromCache = cache.gather(ids);
    const fromDisk = await loadBatch(idx, ids, o);
    assert.equal(fromCache.n, 3);
    assert.deepEqual(fromCache.x, fromDisk.x);
    assert.deepEqual(fromCache.y, fromDisk.y);
    assert.deepEqual(fromCache.ids, fromDisk.ids);
    assert.deepEqual(fromCache.skipped, fromDisk.skipped.map((s) => ({ ...s, reason: cache.skipped.find((c) => c.id === s.id)!.reason })));
    assert.throws(() => cache.gather([12]), isDataError('12'));
  });

  it('ImageCache refuses a split that would not fit the memory limit', async () => {
    const val = await indexImageFolder(root, 'val');
    await assert.rejects(ImageCache.build(val, { size: 16, mean: [0, 0, 0], std: [1, 1, 1] }, 1000), isDataError('1000'));
  });
});
