// Tests for the decode pool and the Loader on a generated JPEG ImageFolder with a corrupt and a truncated file:
// threads give bit-identical batches to single-threaded decoding, bad files are skipped with their paths, a killed
// thread costs only its samples, batches are deterministic per (seed, epoch, step), and resuming from a cursor works.

import { strict as assert } from 'node:assert';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { evalTransform, sampleSeed, trainTransform } from '../../../../worker/data/augment.js';
import { indexImageFolder, type SampleIndex } from '../../../../worker/data/imagefolder.js';
import { Loader, type LoaderBatch, type LoaderOptions } from '../../../../worker/data/loader.js';
import { DEIT_MIX } from '../../../../worker/data/mix.js';
import { DecodePool, decodeInline } from '../../../../worker/data/pool.js';
import { generateShapes } from '../../../../worker/data/synthetic.js';

const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'sgt-loader-'));
const pool = new DecodePool({ threads: 2, chunk: 3 });
after(async () => {
  await pool.close();
  await fs.rm(tmp, { recursive: true, force: true });
});

let train: SampleIndex;
let val: SampleIndex;
let garbage = '';
let truncated = '';
const T = trainTransform({ size: 32 });

before(async () => {
  const root = path.join(tmp, 'shapes');
  await generateShapes({ root, size: 64, classes: 3, trainPerClass: 5, valPerClass: 2, seed: 8, format: 'jpeg' });
  garbage = path.join(root, 'train', 'square', '000006.jpg');
  await fs.writeFile(garbage, Buffer.from('definitely not a JPEG'));
  truncated = path.join(root, 'train', 'triangle', '000011.jpg');
  const full = await fs.readFile(truncated);
  await fs.writeFile(truncated, full.subarray(0, Math.floor(full.length * 0.6)));
  train = await indexImageFolder(root, 'train');
  val = await indexImageFolder(root, 'val');
});

const seedsFor = (ids: number[], epoch: number): number[] => ids.map((id) => sampleSeed(3, epoch, id));

describe('DecodePool', () => {
  it('returns the same rows as single-threaded decoding, and skips the corrupt and truncated files', async () => {
    const ids = train.ids.slice().reverse();
    const paths = Array.from(ids, (id) => train.paths[id]!);
    const seeds = seedsFor([...ids], 0);
    const inline = await decodeInline(paths, seeds, T);
    const pooled = await pool.decode(paths, seeds, T);
    assert.ok(pooled.x.buffer instanceof SharedArrayBuffer);
    // Which rows failed is deterministic; libvips' message text may vary between threads.
    assert.deepEqual(pooled.reasons.map((r) => r !== null), inline.reasons.map((r) => r !== null));
    assert.deepEqual(new Float32Array(pooled.x), inline.x);
    const bad = paths.filter((_, k) => pooled.reasons[k] !== null);
    assert.deepEqual(bad.sort(), [garbage, truncated].sort());
    for (const r of pooled.reasons.filter((x) => x !== null)) assert.match(r!, /^decode failed: /);
    // eval transform too
    const e1 = await pool.decode(paths, seeds, evalTransform({ size: 24 }));
    const e2 = await decodeInline(paths, seeds, evalTransform({ size: 24 }));
    assert.deepEqual(new Float32Array(e1.x), e2.x);
  });

  it('a thread that dies costs only its samples; the pool replaces it and keeps working', async () => {
    const pathsList = Array.from({ length: 12 }, (_, k) => train.paths[k % 4]!);
    const seeds = seedsFor(pathsList.map((_, k) => k), 0);
    const p = pool.decode(pathsList, seeds, T);
    // Kill the first thread while its chunk (rows 0..2) is in flight.
    const slots = (pool as unknown as { pool: { slots: { worker: { terminate(): Promise<number> } }[] } }).pool.slots;
    await slots[0]!.worker.terminate();
    const got = await p;
    const failed = got.reasons.map((r, k) => (r ? k : -1)).filter((k) => k >= 0);
    assert.ok(failed.length > 0 && failed.length <= 3, String(failed));
    for (const k of failed) assert.match(got.reasons[k]!, /^decode worker failed/);
    const again = await pool.decode(pathsList, seeds, T);
    assert.ok(again.reasons.every((r) => r === null));
  });
});

describe('Loader', () => {
  const base: LoaderOptions = { transform: T, seed: 3, batchPerRank: 4, worldSize: 2, rank: 1, repeats: 2, mix: DEIT_MIX, epochs: 2 };

  async function all(l: Loader): Promise<LoaderBatch[]> {
    const out: LoaderBatch[] = [];
    for await (const b of l) out.push(b);
    await l.close();
    return out;
  }

  it('threads and the calling thread give identical batches (pixels, labels, soft labels, skips)', async () => {
    const a = await all(new Loader(train, { ...base, threads: 0, prefetch: 0 }));
    const b = await all(new Loader(train, { ...base, pool, prefetch: 3 }));
    assert.equal(a.length, b.length);
    assert.equal(a.length, 2 * Math.floor((15 * 2) / 8));
    for (let i = 0; i < a.length; i++) {
      assert.deepEqual([a[i]!.epoch, a[i]!.step], [b[i]!.epoch, b[i]!.step]);
      assert.deepEqual(a[i]!.ids, b[i]!.ids);
      assert.deepEqual(a[i]!.repeats, b[i]!.repeats);
      assert.deepEqual(new Float32Array(a[i]!.x), new Float32Array(b[i]!.x));
      assert.deepEqual(a[i]!.soft, b[i]!.soft);
      assert.deepEqual(a[i]!.skipped.map((s) => [s.id, s.path]), b[i]!.skipped.map((s) => [s.id, s.path]));
      assert.deepEqual(a[i]!.mix, b[i]!.mix);
    }
  });

  it('reports each skipped sample with its path, and the rest of the batch still trains', async () => {
    const l = new Loader(train, { ...base, worldSize: 1, rank: 0, batchPerRank: 30, repeats: 2, epochs: 1, pool });
    const [b] = await all(l);
    assert.equal(b!.n + b!.skipped.length, 30);
    assert.deepEqual(b!.skipped.map((s) => s.path).sort(), [garbage, garbage, truncated, truncated].sort()); // both copies
    assert.equal(l.skippedTotal, 4);
    assert.equal(b!.x.length, b!.n * 32 * 32 * 3);
    assert.equal(b!.soft!.length, b!.n * 3);
    for (let i = 0; i < b!.n; i++) {
      const s = b!.soft!.subarray(i * 3, i * 3 + 3).reduce((x, y) => x + y, 0);
      assert.ok(Math.abs(s - 1) < 1e-5);
    }
    assert.ok(b!.x.every(Number.isFinite));
  });

  it('is deterministic per (seed, epoch, step); a sample looks different in another epoch and in its other copy', async () => {
    const one = { ...base, worldSize: 1, rank: 0, batchPerRank: 30, mix: null, epochs: 2, pool };
    const first = await all(new Loader(train, one));
    const again = await all(new Loader(train, one));
    assert.deepEqual(new Float32Array(first[0]!.x), new Float32Array(again[0]!.x));
    const row = (b: LoaderBatch, id: number, rep: number): Float32Array => {
      const k = [...b.ids].findIndex((v, i) => v === id && b.repeats[i] === rep);
      return b.x.slice(k * 3072, (k + 1) * 3072);
    };
    assert.notDeepEqual(row(first[0]!, 0, 0), row(first[1]!, 0, 0), 'epoch 0 vs epoch 1');
    assert.notDeepEqual(row(first[0]!, 0, 0), row(first[0]!, 0, 1), 'copy 0 vs copy 1');
    const other = await all(new Loader(train, { ...one, seed: 4 }));
    assert.notDeepEqual(new Float32Array(first[0]!.x), new Float32Array(other[0]!.x));
  });

  it('resumes from a cursor: starting at (epoch, step) gives the batches a full run gives there', async () => {
    const full = await all(new Loader(train, { ...base, pool }));
    const l = new Loader(train, { ...base, pool, epoch: 0, step: 2 });
    const first = await l.next();
    assert.deepEqual([first!.epoch, first!.step], [0, 2]);
    assert.deepEqual(new Float32Array(first!.x), new Float32Array(full[2]!.x));
    assert.deepEqual(first!.soft, full[2]!.soft);
    assert.deepEqual(l.cursor, { epoch: 1, step: 0 }); // step 2 was the last of 3: the cursor rolls over
    const second = await l.next();
    assert.deepEqual([second!.epoch, second!.step], [1, 0]); // 3 steps per epoch
    assert.deepEqual(l.cursor, { epoch: 1, step: 1 });
    await l.close();
    await assert.rejects(l.next(), /after close/);
    assert.throws(() => new Loader(train, { ...base, step: 9 }), /step=9/);
  });

  it('eval: index order, split over ranks, each sample once, hard labels only, then null', async () => {
    const seen: number[] = [];
    for (const rank of [0, 1]) {
      const l = new Loader(val, { transform: evalTransform({ size: 24 }), seed: 0, batchPerRank: 2, worldSize: 2, rank, threads: 1 });
      const bs = await all(l);
      assert.equal(bs.length, 2); // ceil(6 / 4)
      for (const b of bs) {
        assert.equal(b.soft, undefined);
        assert.deepEqual([...b.y], Array.from(b.ids, (id) => val.labels[id]!));
        seen.push(...b.ids);
      }
      assert.equal(await l.next().catch(() => 'closed'), 'closed');
    }
    assert.deepEqual(seen.sort(), [0, 1, 2, 3, 4, 5]);
    const l = new Loader(val, { transform: evalTransform({ size: 24 }), seed: 0, batchPerRank: 8 });
    assert.ok(await l.next());
    assert.equal(await l.next(), null);
    await l.close();
  });

  it('rejects options that cannot work, naming them', () => {
    assert.throws(() => new Loader(val, { transform: evalTransform(), seed: 0, batchPerRank: 2, mix: DEIT_MIX }), /train transform/);
    assert.throws(() => new Loader(val, { transform: evalTransform(), seed: 0, batchPerRank: 2, repeats: 2 }), /repeats=2/);
    assert.throws(() => new Loader(val, { transform: T, seed: 0, batchPerRank: 0 }), /batchPerRank=0/);
    assert.throws(() => new Loader(val, { transform: T, seed: 0, batchPerRank: 7 }), /no full global batch of 7/);
  });
});
