// bench:data — images/s of decode + train augment (RandomResizedCrop 224 bicubic, flip, RandAugment
// rand-m9-mstd0.5-inc1, normalise) through the Loader, on the calling thread and on 1, N = cores and 2N decode
// threads, over generated 500×375 quality-90 JPEGs. Prints one JSON document.
// Usage: npm run bench:data [-- --images 192 --batch 64 --batches 6]

import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { DEIT_RAND_AUGMENT, trainTransform } from '../../worker/data/augment.js';
import type { SampleIndex } from '../../worker/data/imagefolder.js';
import { Loader } from '../../worker/data/loader.js';
import { DEIT_MIX } from '../../worker/data/mix.js';
import { DecodePool } from '../../worker/data/pool.js';
import { Rng } from '../../worker/rng.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer, got ${process.argv[i + 1]}`);
  return v;
}

const CORES = os.availableParallelism();
const MAX_THREADS = 2 * CORES;

// libuv's threadpool (file reads and every sharp call, shared by all worker threads) is sized once, from the
// environment, before the first use — which module loading already makes. Re-run with it sized for 2N threads.
if (!process.env.UV_THREADPOOL_SIZE) {
  const r = spawnSync(process.execPath, process.argv.slice(1), {
    stdio: 'inherit',
    env: { ...process.env, UV_THREADPOOL_SIZE: String(Math.max(4, MAX_THREADS)) },
  });
  process.exit(r.status ?? 1);
}

const W = 500, H = 375, QUALITY = 90;
const IMAGES = arg('images', 192);
const BATCH = arg('batch', 64);
const BATCHES = arg('batches', 6); // timed batches per configuration, after one warm-up batch

/** A photo-like 500×375 RGB image: smooth colour fields (an upscaled 8×6 random image), edges, grain. */
async function photo(seed: number): Promise<Buffer> {
  const rng = new Rng(seed);
  const small = Uint8Array.from({ length: 8 * 6 * 3 }, () => rng.int(256));
  const field = await sharp(small, { raw: { width: 8, height: 6, channels: 3 } }).resize(W, H, { kernel: 'cubic' }).raw().toBuffer();
  const cx = rng.uniform(100, 400), cy = rng.uniform(80, 300), r = rng.uniform(40, 120);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const o = (y * W + x) * 3;
      const inside = (x - cx) ** 2 + (y - cy) ** 2 < r * r;
      for (let c = 0; c < 3; c++) {
        const v = (inside ? 255 - field[o + c]! : field[o + c]!) + 14 * rng.normal();
        field[o + c] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
  return sharp(field, { raw: { width: W, height: H, channels: 3 } }).jpeg({ quality: QUALITY }).toBuffer();
}

/** The image set, generated once into the temp dir and reused by later runs. */
async function dataset(): Promise<SampleIndex> {
  const dir = path.join(os.tmpdir(), `sigmatrain-bench-data-v1-${W}x${H}q${QUALITY}`);
  await fs.mkdir(dir, { recursive: true });
  const paths: string[] = [];
  const bytes = new Float64Array(IMAGES);
  for (let i = 0; i < IMAGES; i++) {
    const p = path.join(dir, `${String(i).padStart(5, '0')}.JPEG`);
    let size = 0;
    try {
      size = (await fs.stat(p)).size;
    } catch {
      const tmp = `${p}.${process.pid}.tmp`;
      await fs.writeFile(tmp, await photo(i));
      await fs.rename(tmp, p);
      size = (await fs.stat(p)).size;
    }
    paths.push(p);
    bytes[i] = size;
  }
  return { ids: Int32Array.from({ length: IMAGES }, (_, i) => i), paths, labels: new Int32Array(IMAGES), bytes, classes: ['bench'] };
}

interface Result {
  threads: number;
  where: string;
  images: number;
  seconds: number;
  imagesPerSecond: number;
  /** Time the calling (training) thread's event loop was busy, per image: what the loader takes from training. */
  callingThreadBusyMsPerImage: number;
}

async function measure(index: SampleIndex, threads: number, full = false): Promise<Result> {
  const transform = full ? trainTransform({ size: 224 }) : trainTransform({ size: 224, erasing: null });
  const pool = threads > 0 ? new DecodePool({ threads }) : undefined;
  const loader = new Loader(index, {
    transform,
    seed: 1,
    batchPerRank: BATCH,
    pool,
    prefetch: threads > 0 ? 2 : 0,
    mix: full ? DEIT_MIX : null,
    numClasses: 1000,
  });
  await loader.next(); // warm-up: thread start, JIT
  let images = 0;
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  for (let b = 0; b < BATCHES; b++) {
    const batch = await loader.next();
    if (!batch) throw new Error('loader ended early');
    if (batch.skipped.length) throw new Error(`skipped ${batch.skipped[0]!.path}: ${batch.skipped[0]!.reason}`);
    images += batch.n;
  }
  const seconds = (performance.now() - t0) / 1000;
  const busyMs = performance.eventLoopUtilization(elu0).active;
  await loader.close();
  await pool?.close();
  return {
    threads,
    where: threads === 0 ? 'calling thread' : `DecodePool(${threads})`,
    images,
    seconds: +seconds.toFixed(3),
    imagesPerSecond: +(images / seconds).toFixed(1),
    callingThreadBusyMsPerImage: +(busyMs / images).toFixed(3),
  };
}

async function main(): Promise<void> {
  const index = await dataset();
  const results: Result[] = [];
  for (const threads of [...new Set([0, 1, CORES, MAX_THREADS])]) results.push(await measure(index, threads));
  const fullRecipe = await measure(index, CORES, true);
  const meanBytes = index.bytes.reduce((a, b) => a + b, 0) / IMAGES;
  console.log(
    JSON.stringify(
      {
        bench: 'data',
        measures: 'read + decode + RandomResizedCrop(224, bicubic) + hflip + RandAugment + normalise, through Loader.next()',
        config: {
          source: { width: W, height: H, jpegQuality: QUALITY, images: IMAGES, meanBytes: Math.round(meanBytes) },
          outputSize: 224,
          batch: BATCH,
          timedBatches: BATCHES,
          randAugment: DEIT_RAND_AUGMENT,
          cores: CORES,
          cpuModel: os.cpus()[0]?.model ?? 'unknown',
          loadavg1m: +os.loadavg()[0]!.toFixed(2),
          node: process.version,
          sharp: sharp.versions.sharp,
          libvips: sharp.versions.vips,
          sharpConcurrency: sharp.concurrency(),
          uvThreadpoolSize: Number(process.env.UV_THREADPOOL_SIZE),
        },
        results,
        fullRecipe: { ...fullRecipe, adds: 'random erasing p=0.25 + mixup/cutmix on the batch (main thread)' },
      },
      null,
      2,
    ),
  );
}

await main();
