// Tests for the per-image transforms: torchvision's RandomResizedCrop box (re-derived here from the same stream),
// its centre-crop fallback, eval resize + centre crop on a pixel-coded image, flip, normalisation, random erasing,
// and the whole decodeSample pipeline's determinism.

import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { decodeSample, endsComplete, evalTransform, sampleSeed, trainTransform } from '../../../../worker/data/augment.js';
import { Rng } from '../../../../worker/rng.js';
import {
  IMAGENET_MEAN,
  IMAGENET_STD,
  centreCropBox,
  evalResizeFor,
  flipHorizontal,
  normaliseInto,
  randomErase,
  randomResizedCropBox,
  resizeShorterSide,
  roundHalfEven,
} from '../../../../worker/data/transforms.js';

/** An RGB image whose pixel (x, y) is (x mod 256, y mod 256, 7), PNG-encoded (lossless). */
async function coded(width: number, height: number): Promise<Buffer> {
  const px = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      px[o] = x % 256;
      px[o + 1] = y % 256;
      px[o + 2] = 7;
    }
  }
  return sharp(px, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

const norm = (v: number, c: number): number => (v / 255 - IMAGENET_MEAN[c]!) / IMAGENET_STD[c]!;
const close = (a: number, b: number, tol = 1e-5): void => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

describe('roundHalfEven and eval geometry', () => {
  it('rounds halves to even like Python 3', () => {
    assert.deepEqual([0.5, 1.5, 2.5, 3.5, -0.5, -1.5, 2.4, 2.6].map(roundHalfEven), [0, 2, 2, 4, 0, -2, 2, 3]);
  });

  it('resizes the shorter side (longer truncated) and centre-crops with Python rounding', () => {
    assert.deepEqual(resizeShorterSide(500, 375, 256), { width: 341, height: 256 }); // 256·500/375 = 341.33
    assert.deepEqual(resizeShorterSide(375, 500, 256), { width: 256, height: 341 });
    assert.deepEqual(centreCropBox(341, 256, 224), { top: 16, left: 58, height: 224, width: 224 }); // 58.5 → 58
    assert.deepEqual(centreCropBox(343, 256, 224), { top: 16, left: 60, height: 224, width: 224 }); // 59.5 → 60
    assert.equal(evalResizeFor(224, 0.875), 256);
    assert.equal(evalResizeFor(112, 0.875), 128);
    assert.equal(evalResizeFor(384, 1), 384);
  });
});

describe('randomResizedCropBox', () => {
  /** torchvision's get_params, transcribed independently, on the same stream. */
  function reference(W: number, H: number, rng: Rng, scale: [number, number], ratio: [number, number]): [number, number, number, number] {
    for (let i = 0; i < 10; i++) {
      const ta = W * H * (scale[0] + (scale[1] - scale[0]) * rng.float());
      const ar = Math.exp(Math.log(ratio[0]) + (Math.log(ratio[1]) - Math.log(ratio[0])) * rng.float());
      const w = roundHalfEven(Math.sqrt(ta * ar));
      const h = roundHalfEven(Math.sqrt(ta / ar));
      if (0 < w && w <= W && 0 < h && h <= H) return [Math.floor(rng.float() * (H - h + 1)), Math.floor(rng.float() * (W - w + 1)), h, w];
    }
    return [-1, -1, -1, -1];
  }

  it('equals the torchvision algorithm on the same seeded stream, and stays inside the image', () => {
    for (let s = 0; s < 300; s++) {
      const [W, H] = [[500, 375], [375, 500], [64, 64], [1000, 40]][s % 4]!;
      const box = randomResizedCropBox(W, H, new Rng(s), [0.08, 1], [3 / 4, 4 / 3]);
      const ref = reference(W, H, new Rng(s), [0.08, 1], [3 / 4, 4 / 3]);
      if (ref[0] >= 0) assert.deepEqual([box.top, box.left, box.height, box.width], ref, `seed ${s}`);
      assert.ok(box.top >= 0 && box.left >= 0 && box.top + box.height <= H && box.left + box.width <= W, JSON.stringify(box));
      assert.ok(box.width > 0 && box.height > 0);
    }
  });

  it('hand-checked cases: the whole image at scale 1 ratio 1; a 50×50 square at scale 0.25', () => {
    assert.deepEqual(randomResizedCropBox(100, 100, new Rng(5), [1, 1], [1, 1]), { top: 0, left: 0, height: 100, width: 100 });
    const rng = new Rng(9);
    rng.float(); // area draw
    rng.float(); // ratio draw
    const top = rng.int(51);
    const left = rng.int(51);
    assert.deepEqual(randomResizedCropBox(100, 100, new Rng(9), [0.25, 0.25], [1, 1]), { top, left, height: 50, width: 50 });
  });

  it('falls back after 10 failed tries to the centre crop with the ratio clamped into range', () => {
    const impossible: [number, number] = [2, 3]; // area > image: every try fails
    // wide 100×50 (ratio 2 > 4/3): h = 50, w = round(50·4/3) = 67, left = (100 − 67) // 2 = 16
    assert.deepEqual(randomResizedCropBox(100, 50, new Rng(1), impossible), { top: 0, left: 16, height: 50, width: 67 });
    // tall 30×100 (ratio 0.3 < 3/4): w = 30, h = round(30 / 0.75) = 40, top = 30
    assert.deepEqual(randomResizedCropBox(30, 100, new Rng(1), impossible), { top: 30, left: 0, height: 40, width: 30 });
    // in range: the whole image
    assert.deepEqual(randomResizedCropBox(100, 90, new Rng(1), impossible), { top: 0, left: 0, height: 90, width: 100 });
  });
});

describe('flip, normalise, erase', () => {
  it('flips rows left–right in place (odd and even widths)', () => {
    const img = { width: 3, height: 2, data: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]) };
    flipHorizontal(img);
    assert.deepEqual([...img.data], [7, 8, 9, 4, 5, 6, 1, 2, 3, 16, 17, 18, 13, 14, 15, 10, 11, 12]);
    const even = { width: 2, height: 1, data: Uint8Array.from([1, 2, 3, 4, 5, 6]) };
    flipHorizontal(even);
    assert.deepEqual([...even.data], [4, 5, 6, 1, 2, 3]);
  });

  it('normalises (v/255 − mean)/std per channel at an offset', () => {
    const img = { width: 2, height: 1, data: Uint8Array.from([0, 128, 255, 10, 20, 30]) };
    const dst = new Float32Array(9).fill(99);
    normaliseInto(img, dst, 3, IMAGENET_MEAN, IMAGENET_STD);
    assert.deepEqual([...dst.subarray(0, 3)], [99, 99, 99]);
    [0, 128, 255, 10, 20, 30].forEach((v, i) => close(dst[3 + i]!, norm(v, i % 3)));
  });

  it('erases one box of N(0,1) noise within the area/aspect limits and leaves the rest untouched', () => {
    const H = 64, W = 48;
    const cfg = { p: 1, minArea: 0.02, maxArea: 1 / 3, minAspect: 0.3 };
    let sum = 0, sq = 0, count = 0;
    for (let s = 0; s < 40; s++) {
      const dst = new Float32Array(H * W * 3);
      const box = randomErase(dst, 0, H, W, new Rng(s), cfg);
      assert.ok(box, `seed ${s}`);
      const area = box.height * box.width;
      assert.ok(area >= 0.02 * H * W * 0.8 && area <= (H * W) / 3 * 1.2, `area ${area}`);
      const aspect = box.height / box.width; // timm: h = √(A·r), w = √(A/r)
      assert.ok(aspect > 0.3 * 0.7 && aspect < (1 / 0.3) * 1.4, `aspect ${aspect}`);
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          const inside = y >= box.top && y < box.top + box.height && x >= box.left && x < box.left + box.width;
          for (let c = 0; c < 3; c++) {
            const v = dst[(y * W + x) * 3 + c]!;
            if (!inside) assert.equal(v, 0);
            else {
              sum += v;
              sq += v * v;
              count++;
            }
          }
        }
      }
    }
    const mean = sum / count;
    const std = Math.sqrt(sq / count - mean * mean);
    assert.ok(Math.abs(mean) < 0.05, `mean ${mean}`);
    assert.ok(Math.abs(std - 1) < 0.05, `std ${std}`);
  });

  it('erases with probability p', () => {
    let hits = 0;
    const dst = new Float32Array(16 * 16 * 3);
    for (let s = 0; s < 2000; s++) if (randomErase(dst, 0, 16, 16, new Rng(s), { p: 0.25, minArea: 0.02, maxArea: 1 / 3, minAspect: 0.3 })) hits++;
    assert.ok(hits > 420 && hits < 580, `${hits} / 2000`);
  });
});

describe('decodeSample', () => {
  it('eval: resize shorter side to size/cropPct, centre crop, normalise — exact on a pixel-coded image', async () => {
    // 300×256 is already at the 256 target: the crop is a pure window, left = 38, top = 16.
    const t = evalTransform({ size: 224, cropPct: 224 / 256 });
    const dst = new Float32Array(224 * 224 * 3);
    const trace = await decodeSample(await coded(300, 256), t, 0, dst, 0);
    assert.deepEqual(trace.resized, { width: 300, height: 256 });
    assert.deepEqual(trace.crop, { top: 16, left: 38, height: 224, width: 224 });
    for (const [x, y] of [[0, 0], [223, 0], [0, 223], [223, 223], [100, 57]] as const) {
      const o = (y * 224 + x) * 3;
      close(dst[o]!, norm((x + 38) % 256, 0));
      close(dst[o + 1]!, norm(y + 16, 1));
      close(dst[o + 2]!, norm(7, 2));
    }
  });

  it('eval: portrait 512×1024 resizes to 128×256 and crops the centre at size 112', async () => {
    const t = evalTransform({ size: 112 });
    const dst = new Float32Array(112 * 112 * 3);
    const trace = await decodeSample(await coded(512, 1024), t, 0, dst, 0);
    assert.deepEqual(trace.resized, { width: 128, height: 256 });
    assert.deepEqual(trace.crop, { top: 72, left: 8, height: 112, width: 112 });
  });

  it('train: the crop is randomResizedCropBox on Rng(seed); flip p=1 mirrors the crop', async () => {
    const img = await coded(64, 64);
    const t = trainTransform({ size: 64, scale: [1, 1], ratio: [1, 1], hflip: 1, randAugment: null, erasing: null });
    const dst = new Float32Array(64 * 64 * 3);
    const trace = await decodeSample(img, t, 123, dst, 0);
    assert.deepEqual(trace.crop, randomResizedCropBox(64, 64, new Rng(123), [1, 1], [1, 1]));
    assert.equal(trace.flipped, true);
    close(dst[0]!, norm(63, 0)); // output (0, 0) ← input (63, 0)
    close(dst[(5 * 64 + 10) * 3]!, norm(53, 0));
    close(dst[(5 * 64 + 10) * 3 + 1]!, norm(5, 1));
    const seeded = trainTransform({ size: 32 });
    const w = await sharp(await coded(500, 375)).jpeg({ quality: 90 }).toBuffer();
    const a = new Float32Array(32 * 32 * 3);
    const b = new Float32Array(32 * 32 * 3);
    const c = new Float32Array(32 * 32 * 3);
    const ta = await decodeSample(w, seeded, sampleSeed(7, 0, 42), a, 0);
    await decodeSample(w, seeded, sampleSeed(7, 0, 42), b, 0);
    await decodeSample(w, seeded, sampleSeed(7, 1, 42), c, 0);
    assert.deepEqual(a, b, 'same (seed, epoch, id, repeat) → identical pixels');
    assert.notDeepEqual(a, c, 'another epoch → another augmentation');
    assert.deepEqual(ta.crop, randomResizedCropBox(500, 375, new Rng(sampleSeed(7, 0, 42))));
    assert.notEqual(sampleSeed(7, 0, 42, 0), sampleSeed(7, 0, 42, 1));
  });

  it('throws on an undecodable image (the loaders turn that into a skip)', async () => {
    await assert.rejects(decodeSample(Buffer.from('not an image'), evalTransform({ size: 8 }), 0, new Float32Array(192), 0));
  });

  it('rejects a truncated JPEG wherever the crop lies; decodes one with bytes after EOI like the original', async () => {
    const jpg = await sharp(await coded(200, 150)).jpeg({ quality: 90 }).toBuffer();
    assert.ok(endsComplete(jpg));
    const cut = jpg.subarray(0, Math.floor(jpg.length * 0.9));
    assert.ok(!endsComplete(cut));
    // Small crops mostly lie above the missing rows; libvips alone would decode them without a warning.
    const t = trainTransform({ size: 16, scale: [0.01, 0.02], randAugment: null, erasing: null });
    for (let s = 0; s < 8; s++) await assert.rejects(decodeSample(cut, t, s, new Float32Array(768), 0), /premature|failOn/i);
    const padded = Buffer.concat([jpg, Buffer.from('trailing camera bytes')]);
    assert.ok(!endsComplete(padded));
    const a = new Float32Array(768);
    const b = new Float32Array(768);
    await decodeSample(jpg, t, 3, a, 0);
    await decodeSample(padded, t, 3, b, 0);
    assert.deepEqual(a, b);
  });

  it('decodes the odd JPEGs ImageNet holds (greyscale, CMYK) to 3-channel RGB', async () => {
    const grey = await sharp(Buffer.alloc(32 * 32, 200), { raw: { width: 32, height: 32, channels: 1 } }).jpeg({ quality: 95 }).toBuffer();
    const cmyk = await sharp(await coded(32, 32)).toColourspace('cmyk').jpeg({ quality: 95 }).toBuffer();
    assert.equal((await sharp(cmyk).metadata()).space, 'cmyk');
    const t = evalTransform({ size: 16, cropPct: 0.5 });
    const g = new Float32Array(768);
    await decodeSample(grey, t, 0, g, 0);
    for (let c = 0; c < 3; c++) close(g[c]!, norm(200, c), 0.05);
    const k = new Float32Array(768);
    await decodeSample(cmyk, t, 0, k, 0);
    assert.ok(k.every(Number.isFinite));
    close(k[2]!, norm(7, 2), 0.4); // blue ≈ 7 after the CMYK round trip
  });

  it('rejects a bad transform naming the field', () => {
    assert.throws(() => trainTransform({ hflip: 2 }), /hflip=2/);
    assert.throws(() => evalTransform({ cropPct: 0 }), /cropPct=0/);
    assert.throws(() => trainTransform({ randAugment: 'rand-m9-x3' }), /x3/);
  });
});
