// Tests for the synthetic shapes ImageFolder: determinism, idempotence, atomic replacement, real image files,
// class balance, and that the label is not readable from mean colour alone.

import { strict as assert } from 'node:assert';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import sharp from 'sharp';
import { SigmaError } from '../../../../shared/errors.js';
import { deriveSeed } from '../../../../worker/rng.js';
import {
  MANIFEST_FILE,
  SHAPE_CLASSES,
  generateShapes,
  renderShape,
  type ShapesOptions,
} from '../../../../worker/data/synthetic.js';

const tmpRoot = await fs.mkdtemp(path.join(os.tmpdir(), 'sgt-synth-'));
after(() => fs.rm(tmpRoot, { recursive: true, force: true }));

const base = (root: string, over: Partial<ShapesOptions> = {}): ShapesOptions => ({
  root: path.join(tmpRoot, root),
  size: 16,
  classes: 10,
  trainPerClass: 4,
  valPerClass: 2,
  seed: 7,
  ...over,
});

/** relative path → bytes, for every file under dir. */
async function snapshot(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const e of await fs.readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const full = path.join(e.parentPath, e.name);
    out.set(path.relative(dir, full), await fs.readFile(full));
  }
  return out;
}

describe('renderShape', () => {
  it('is a pure function of (class, size, seed)', () => {
    for (const cls of SHAPE_CLASSES) {
      const a = renderShape(cls, 16, 123);
      assert.equal(a.length, 16 * 16 * 3);
      assert.deepEqual(a, renderShape(cls, 16, 123));
      assert.notDeepEqual(a, renderShape(cls, 16, 124));
    }
  });

  it('does not give the class away through mean colour (nearest-centroid accuracy near chance)', () => {
    const perClass = 120;
    const K = SHAPE_CLASSES.length;
    const feat = (cls: (typeof SHAPE_CLASSES)[number], seed: number): number[] => {
      const img = renderShape(cls, 16, seed);
      const m = [0, 0, 0];
      for (let i = 0; i < img.length; i++) m[i % 3]! += img[i]! / 256;
      return m;
    };
    const centroids = SHAPE_CLASSES.map((cls, c) => {
      const s = [0, 0, 0];
      for (let i = 0; i < perClass; i++) feat(cls, deriveSeed(1, c, i)).forEach((v, j) => (s[j]! += v / perClass));
      return s;
    });
    let correct = 0;
    SHAPE_CLASSES.forEach((cls, c) => {
      for (let i = 0; i < perClass; i++) {
        const f = feat(cls, deriveSeed(2, c, i));
        let best = 0;
        let bestD = Infinity;
        centroids.forEach((cen, k) => {
          const d = (f[0]! - cen[0]!) ** 2 + (f[1]! - cen[1]!) ** 2 + (f[2]! - cen[2]!) ** 2;
          if (d < bestD) [best, bestD] = [k, d];
        });
        if (best === c) correct++;
      }
    });
    const acc = correct / (perClass * K);
    assert.ok(acc < 0.25, `mean-colour accuracy ${acc} should be near chance (${1 / K})`);
  });
});

describe('generateShapes', () => {
  it('writes a real, balanced ImageFolder of PNGs with a manifest', async () => {
    const o = base('png', { classes: 3, trainPerClass: 5, valPerClass: 3 });
    const r = await generateShapes(o);
    assert.deepEqual(r, { root: path.resolve(o.root), created: true });
    const manifest = JSON.parse(await fs.readFile(path.join(o.root, MANIFEST_FILE), 'utf8'));
    assert.equal(manifest.seed, 7);
    assert.deepEqual(manifest.classNames, ['circle', 'square', 'triangle']);
    for (const [split, per] of [['train', 5], ['val', 3]] as const) {
      const classes = (await fs.readdir(path.join(o.root, split))).sort();
      assert.deepEqual(classes, ['circle', 'square', 'triangle']);
      for (const cls of classes) {
        const files = await fs.readdir(path.join(o.root, split, cls));
        assert.equal(files.length, per, `${split}/${cls}`);
        for (const f of files) {
          assert.match(f, /^\d{6}\.png$/);
          const meta = await sharp(path.join(o.root, split, cls, f)).metadata();
          assert.equal(meta.format, 'png');
          assert.equal(meta.width, 16);
          assert.equal(meta.height, 16);
          assert.equal(meta.channels, 3);
        }
      }
    }
  });

  it('writes JPEGs when asked, at the requested size', async () => {
    const o = base('jpeg', { classes: 2, trainPerClass: 2, valPerClass: 1, size: 32, format: 'jpeg' });
    await generateShapes(o);
    const dir = path.join(o.root, 'train', 'circle');
    const files = await fs.readdir(dir);
    assert.equal(files.length, 2);
    for (const f of files) {
      assert.match(f, /\.jpg$/);
      const meta = await sharp(path.join(dir, f)).metadata();
      assert.equal(meta.format, 'jpeg');
      assert.equal(meta.width, 32);
      assert.equal(meta.height, 32);
    }
  });

  it('is deterministic: same seed → identical bytes; different seed → different images', async () => {
    await generateShapes(base('det-a'));
    await generateShapes(base('det-b'));
    await generateShapes(base('det-c', { seed: 8 }));
    const a = await snapshot(path.join(tmpRoot, 'det-a'));
    const b = await snapshot(path.join(tmpRoot, 'det-b'));
    const c = await snapshot(path.join(tmpRoot, 'det-c'));
    assert.equal(a.size, 10 * 6 + 1);
    assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
    for (const [k, v] of a) assert.ok(v.equals(b.get(k)!), `${k} differs between two runs with the same seed`);
    let differ = 0;
    for (const [k, v] of a) if (k !== MANIFEST_FILE && !v.equals(c.get(k)!)) differ++;
    assert.equal(differ, 10 * 6, 'every image should change with the seed');
  });

  it('is idempotent, and regenerates when a file is missing or the parameters change', async () => {
    const o = base('idem');
    assert.equal((await generateShapes(o)).created, true);
    const one = path.join(o.root, 'train', 'ring', '000028.png');
    const before = await fs.stat(one);
    assert.equal((await generateShapes(o)).created, false);
    assert.equal((await fs.stat(one)).mtimeMs, before.mtimeMs, 'an up-to-date dataset is not rewritten');

    const snap = await snapshot(o.root);
    await fs.rm(one);
    assert.equal((await generateShapes(o)).created, true);
    assert.deepEqual(await snapshot(o.root), snap, 'regeneration restores the same bytes');

    assert.equal((await generateShapes({ ...o, trainPerClass: 3 })).created, true);
    assert.equal((await fs.readdir(path.join(o.root, 'train', 'ring'))).length, 3);
    const m = JSON.parse(await fs.readFile(path.join(o.root, MANIFEST_FILE), 'utf8'));
    assert.equal(m.trainPerClass, 3);

    const leftovers = (await fs.readdir(tmpRoot)).filter((f) => f.startsWith('idem.'));
    assert.deepEqual(leftovers, [], 'no temp or old directories left beside the root');
  });

  it('lets concurrent callers race: one installs, the other finds it complete', async () => {
    const o = base('race', { classes: 4 });
    const rs = await Promise.all([generateShapes(o), generateShapes(o), generateShapes(o)]);
    assert.equal(rs.filter((r) => r.created).length, 1);
    assert.equal((await generateShapes(o)).created, false);
    assert.deepEqual((await fs.readdir(tmpRoot)).filter((f) => f.startsWith('race.')), []);
  });

  it('never overwrites a non-empty directory it did not generate', async () => {
    const root = path.join(tmpRoot, 'foreign');
    await fs.mkdir(root);
    await fs.writeFile(path.join(root, 'thesis.tex'), 'precious');
    await assert.rejects(generateShapes(base('foreign')), (e: unknown) => {
      assert.ok(e instanceof SigmaError);
      assert.equal(e.code, 'SGT_DATA_INVALID');
      assert.ok(e.message.includes(root), e.message);
      return true;
    });
    assert.equal(await fs.readFile(path.join(root, 'thesis.tex'), 'utf8'), 'precious');
    assert.deepEqual((await fs.readdir(tmpRoot)).filter((f) => f.startsWith('foreign.')), []);
  });

  it('fills an existing empty directory', async () => {
    const root = path.join(tmpRoot, 'empty');
    await fs.mkdir(root);
    assert.equal((await generateShapes(base('empty', { classes: 1 }))).created, true);
    assert.equal((await fs.readdir(path.join(root, 'train', 'circle'))).length, 4);
  });

  it('rejects bad options naming the value', async () => {
    for (const bad of [{ classes: 11 }, { classes: 0 }, { size: 4 }, { trainPerClass: 1.5 }, { seed: NaN }]) {
      await assert.rejects(generateShapes(base('bad', bad)), (e: unknown) => {
        assert.ok(e instanceof SigmaError && e.code === 'SGT_DATA_INVALID');
        assert.ok(e.message.includes(String(Object.values(bad)[0])), e.message);
        return true;
      });
    }
  });
});
