// Tests for RandAugment: each op on tiny known images against values computed by hand from PIL's definitions,
// timm's magnitude → argument mapping, spec parsing, and the op sampler's determinism.

import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import {
  RAND_AUGMENT_OPS,
  applyOp,
  opArgument,
  parseRandAugment,
  randAugment,
  type RandAugmentConfig,
} from '../../../../worker/data/randaugment.js';
import { Rng } from '../../../../worker/rng.js';
import type { Rgb } from '../../../../worker/data/transforms.js';

/** A 1-row image of grey pixels with the given values (R = G = B). */
const greys = (vs: number[]): Rgb => ({ width: vs.length, height: 1, data: Uint8Array.from(vs.flatMap((v) => [v, v, v])) });
const red = (img: Rgb): number[] => [...img.data].filter((_, i) => i % 3 === 0);
const FILL = [124, 116, 104] as const;

describe('point ops', () => {
  it('posterize keeps the high bits; 8 bits is the identity, 0 bits is black', () => {
    const img = greys([0, 63, 64, 127, 200, 255]);
    assert.deepEqual(red(applyOp(img, 'Posterize', 2)), [0, 0, 64, 64, 192, 192]);
    assert.deepEqual(red(applyOp(img, 'Posterize', 1)), [0, 0, 0, 0, 128, 128]);
    assert.deepEqual(red(applyOp(img, 'Posterize', 8)), [0, 63, 64, 127, 200, 255]);
    assert.deepEqual(red(applyOp(img, 'Posterize', 0)), [0, 0, 0, 0, 0, 0]);
  });

  it('solarize inverts at and above the threshold; invert is 255 − v; solarizeAdd adds below 128', () => {
    const img = greys([0, 100, 127, 128, 200, 255]);
    assert.deepEqual(red(applyOp(img, 'Solarize', 128)), [0, 100, 127, 127, 55, 0]);
    assert.deepEqual(red(applyOp(img, 'Solarize', 256)), [0, 100, 127, 128, 200, 255]);
    assert.deepEqual(red(applyOp(img, 'Solarize', 0)), [255, 155, 128, 127, 55, 0]);
    assert.deepEqual(red(applyOp(img, 'Invert', 0)), [255, 155, 128, 127, 55, 0]);
    assert.deepEqual(red(applyOp(img, 'SolarizeAdd', 110)), [110, 210, 237, 128, 200, 255]);
  });

  it('autocontrast stretches each channel from [min, max] to [0, 255] (trunc), a flat channel unchanged', () => {
    const img: Rgb = { width: 3, height: 1, data: Uint8Array.from([50, 9, 0, 100, 9, 10, 150, 9, 20]) };
    const out = applyOp(img, 'AutoContrast', 0);
    // R: scale 2.55, offset −127.5 → 0, trunc(127.5) = 127, 255. G flat. B: scale 12.75 → 0, 127, 255.
    assert.deepEqual([...out.data], [0, 9, 0, 127, 9, 127, 255, 9, 255]);
  });

  it('equalize follows PIL: step = (N − last bin)//256, lut[v] = (step//2 + Σ_{u<v} h[u]) // step', () => {
    // 1024 pixels, 256 each of 10, 20, 30, 40: step = 768//256 = 3; lut = 1//3, 257//3, 513//3, 769//3 → 0, 85, 171, 256→255
    const vs = Array.from({ length: 1024 }, (_, i) => [10, 20, 30, 40][i % 4]!);
    const out = applyOp(greys(vs), 'Equalize', 0);
    assert.deepEqual(red(out).slice(0, 4), [0, 85, 171, 255]);
    // Too few pixels for a step: identity.
    assert.deepEqual(red(applyOp(greys([0, 0, 128, 255]), 'Equalize', 0)), [0, 0, 128, 255]);
  });
});

describe('enhance ops (PIL blend d + f·(v − d), clipped, truncated)', () => {
  const img: Rgb = { width: 2, height: 1, data: Uint8Array.from([255, 0, 0, 100, 150, 201]) };

  it('brightness scales towards black', () => {
    assert.deepEqual([...applyOp(img, 'Brightness', 0.5).data], [127, 0, 0, 50, 75, 100]);
    assert.deepEqual([...applyOp(img, 'Brightness', 1.5).data], [255, 0, 0, 150, 225, 255]);
    assert.deepEqual([...applyOp(img, 'Brightness', 1).data], [...img.data]);
  });

  it('color 0 is PIL greyscale (19595 R + 38470 G + 7471 B + 2^15) >> 16; color 1 the identity', () => {
    const l0 = (255 * 19595 + 0x8000) >> 16; // 76
    const l1 = (100 * 19595 + 150 * 38470 + 201 * 7471 + 0x8000) >> 16;
    assert.deepEqual([...applyOp(img, 'Color', 0).data], [l0, l0, l0, l1, l1, l1]);
    assert.deepEqual([...applyOp(img, 'Color', 1).data], [...img.data]);
  });

  it('contrast 0 is the rounded mean luma everywhere', () => {
    const l0 = (255 * 19595 + 0x8000) >> 16;
    const l1 = (100 * 19595 + 150 * 38470 + 201 * 7471 + 0x8000) >> 16;
    const mean = Math.trunc((l0 + l1) / 2 + 0.5);
    assert.deepEqual([...applyOp(img, 'Contrast', 0).data], new Array(6).fill(mean));
  });

  it('sharpness 0 is the SMOOTH filter inside, border copied; sharpness 2 extrapolates', () => {
    const vs = [0, 0, 0, 0, 130, 0, 0, 0, 0];
    const sq: Rgb = { width: 3, height: 3, data: Uint8Array.from(vs.flatMap((v) => [v, v, v])) };
    assert.deepEqual(red(applyOp(sq, 'Sharpness', 0)), [0, 0, 0, 0, 50, 0, 0, 0, 0]); // 5·130/13
    assert.deepEqual(red(applyOp(sq, 'Sharpness', 2)), [0, 0, 0, 0, 210, 0, 0, 0, 0]); // 50 + 2·80
  });
});

describe('geometric ops (PIL affine, pixel centres)', () => {
  // 4×4 with distinct red values 10·(row·4 + col); G = B = 0.
  const base: Rgb = { width: 4, height: 4, data: Uint8Array.from(Array.from({ length: 16 }, (_, i) => [10 * i, 0, 0]).flat()) };
  const at = (img: Rgb, x: number, y: number): number => img.data[(y * img.width + x) * 3]!;

  it('rotate 90° is counter-clockwise and exact: out[y][x] = in[x][W−1−y]', () => {
    const out = applyOp(base, 'Rotate', 90, FILL);
    for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) assert.equal(at(out, x, y), at(base, 3 - y, x), `(${x}, ${y})`);
    const back = applyOp(out, 'Rotate', -90, FILL);
    assert.deepEqual(back.data, base.data);
  });

  it('translate by one pixel shifts left and fills the last column', () => {
    const out = applyOp(base, 'TranslateXRel', 1 / 4, FILL);
    for (let y = 0; y < 4; y++) {
      for (let x = 0; x < 3; x++) assert.equal(at(out, x, y), at(base, x + 1, y));
      assert.deepEqual([...out.data.subarray((y * 4 + 3) * 3, (y * 4 + 4) * 3)], [...FILL]);
    }
    const up = applyOp(base, 'TranslateYRel', -1 / 4, FILL); // negative: content moves down
    for (let x = 0; x < 4; x++) assert.equal(at(up, x, 1), at(base, x, 0));
  });

  it('shear 0 is the identity; shear x by 1 samples x + y (half-way between pixels, fill past the edge)', () => {
    assert.deepEqual(applyOp(base, 'ShearX', 0, FILL).data, base.data);
    const out = applyOp(base, 'ShearX', 1, FILL);
    // Output centre (x+½, y+½) reads input x + y + 1 (a centre at x + y + ½ + ½): midway between columns.
    assert.deepEqual([0, 1, 2, 3].map((x) => at(out, x, 0)), [5, 15, 25, FILL[0]]);
    assert.deepEqual([0, 1, 2, 3].map((x) => at(out, x, 1)), [55, 65, FILL[0], FILL[0]]);
  });
});

describe('timm magnitude mapping and spec parsing', () => {
  const cfg = (inc: boolean): RandAugmentConfig => ({ ...parseRandAugment('rand-m9'), increasing: inc });

  it('maps level 9 (of 10) like timm, with and without inc1', () => {
    const rng = new Rng(1);
    assert.equal(opArgument('Posterize', 9, cfg(false), rng), 3);
    assert.equal(opArgument('Posterize', 9, cfg(true), rng), 1);
    assert.equal(opArgument('Solarize', 9, cfg(false), rng), 230);
    assert.equal(opArgument('Solarize', 9, cfg(true), rng), 26);
    assert.ok(Math.abs(opArgument('Color', 9, cfg(false), rng) - 1.72) < 1e-12);
    const inc = opArgument('Contrast', 9, cfg(true), rng);
    assert.ok(Math.abs(Math.abs(inc - 1) - 0.81) < 1e-12, String(inc));
    assert.equal(Math.abs(opArgument('Rotate', 10, cfg(false), rng)), 30);
    assert.ok(Math.abs(Math.abs(opArgument('ShearX', 10, cfg(false), rng)) - 0.3) < 1e-12);
    assert.ok(Math.abs(Math.abs(opArgument('TranslateXRel', 10, cfg(false), rng)) - 0.45) < 1e-12);
    const signs = new Set(Array.from({ length: 50 }, () => Math.sign(opArgument('Rotate', 5, cfg(false), rng))));
    assert.deepEqual([...signs].sort(), [-1, 1]);
  });

  it('parses rand-m9-mstd0.5-inc1 (DeiT) and rejects unknown sections', () => {
    const c = parseRandAugment('rand-m9-mstd0.5-inc1');
    assert.deepEqual([c.n, c.magnitude, c.magnitudeStd, c.magnitudeMax, c.increasing, c.prob], [2, 9, 0.5, 10, true, 0.5]);
    assert.deepEqual(c.ops, RAND_AUGMENT_OPS);
    assert.equal(parseRandAugment('rand-m7-n3-mstdinf-p1').magnitudeStd, Infinity);
    assert.equal(parseRandAugment('rand-m7-n3-mstdinf-p1').n, 3);
    assert.throws(() => parseRandAugment('rand-m9-w0'), /unknown section "w0"/);
    assert.throws(() => parseRandAugment('augmix-m5'), /must start with "rand-"/);
    assert.throws(() => parseRandAugment('rand-mx'), /cannot read section "mx"/);
  });
});

describe('randAugment', () => {
  const img: Rgb = { width: 8, height: 8, data: Uint8Array.from({ length: 192 }, (_, i) => (i * 37) % 256) };

  it('is a pure function of the stream and does not modify its input', () => {
    const cfg = parseRandAugment('rand-m9-mstd0.5-inc1');
    const copy = Uint8Array.from(img.data);
    const outs = Array.from({ length: 20 }, (_, s) => randAugment(img, cfg, new Rng(s)).data);
    assert.deepEqual(img.data, copy);
    for (let s = 0; s < 20; s++) assert.deepEqual(randAugment(img, cfg, new Rng(s)).data, outs[s]);
    assert.ok(new Set(outs.map((d) => d.join())).size > 8, 'different streams give different results');
  });

  it('one op, prob 1, no magnitude noise: exactly that op at that magnitude', () => {
    const cfg: RandAugmentConfig = { ...parseRandAugment('rand-m9-n1-p1-inc1'), ops: ['Posterize'] };
    assert.deepEqual(randAugment(img, cfg, new Rng(3)).data, applyOp(img, 'Posterize', 1).data);
    const none: RandAugmentConfig = { ...cfg, prob: 0 };
    assert.deepEqual(randAugment(img, none, new Rng(3)).data, img.data);
  });
});
