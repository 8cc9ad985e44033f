// Ring all-reduce benchmark (`npm run bench:allreduce`): real processes per world size × transport × payload size,
// prints ONE JSON document with median time, algbw = S/t and busbw = algbw·2(N−1)/N in GB/s (nccl-tests definitions).
//
// Restrict with env or args (args win): BENCH_WORLDS / --worlds 2,3   BENCH_SIZES_MB / --sizes 4,16
// BENCH_TRANSPORTS / --transports ipc,tcp   BENCH_ITERS / --iters N (timed iterations; default scales with size)
// BENCH_WARMUP / --warmup N   BENCH_CHUNK_BYTES / --chunk-bytes B   BENCH_HWM / --hwm N   BENCH_SOCKBUF / --sockbuf B
// BENCH_MALLOC / --malloc tuned|default (tuned: workers get RING_MALLOC_ENV, as the launcher should do; default)
// The same file is the per-rank worker when started with --worker '<json>'.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';
import { DEFAULT_CHUNK_BYTES, DEFAULT_HWM, Ring, RING_MALLOC_ENV } from '../../worker/comm/ring.js';

const MB = 1 << 20;

interface WorkerJob {
  rank: number;
  worldSize: number;
  listen: string;
  next: string;
  chunkBytes: number;
  hwm: number;
  sockbuf: number;
  sizesBytes: number[];
  iters: number[];
  warmup: number[];
}

/** Per rank: for each size, the duration of every timed iteration (seconds), each started right after a barrier. */
async function worker(job: WorkerJob): Promise<void> {
  const ring = new Ring({
    rank: job.rank,
    worldSize: job.worldSize,
    listen: job.listen,
    next: job.next,
    chunkBytes: job.chunkBytes,
    highWaterMark: job.hwm,
    socketBufferBytes: job.sockbuf,
    timeoutMs: 120_000,
  });
  await ring.open();
  const times: number[][] = [];
  // CPU seconds (user+sys, all threads incl. ZeroMQ's I/O thread) and minor page faults per timed iteration:
  // robust to other load on the machine, unlike wall time.
  const cpu: number[] = [];
  const faults: number[] = [];
  for (let s = 0; s < job.sizesBytes.length; s++) {
    const a = new Float32Array(job.sizesBytes[s] / 4).fill(1e-3 * (job.rank + 1));
    const mine: number[] = [];
    let c0 = process.cpuUsage();
    let f0 = process.resourceUsage().minorPageFault;
    for (let it = 0; it < job.warmup[s] + job.iters[s]; it++) {
      if (it === job.warmup[s]) {
        c0 = process.cpuUsage();
        f0 = process.resourceUsage().minorPageFault;
      }
      await ring.barrier();
      const t0 = process.hrtime.bigint();
      await ring.allReduceSum(a);
      const dt = Number(process.hrtime.bigint() - t0) / 1e9;
      if (it >= job.warmup[s]) mine.push(dt);
    }
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1e6 / job.iters[s]);
    faults.push((process.resourceUsage().minorPageFault - f0) / job.iters[s]);
    times.push(mine);
  }
  await ring.close();
  process.stdout.write(JSON.stringify({ rank: job.rank, times, cpu, faults }) + '\n');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => resolve(p));
    });
  });
}

interface WorkerResult {
  times: number[][];
  cpu: number[];
  faults: number[];
}

function runWorkers(jobs: WorkerJob[], env: NodeJS.ProcessEnv): Promise<WorkerResult[]> {
  const self = fileURLToPath(import.meta.url);
  return Promise.all(
    jobs.map(
      (job) =>
        new Promise<WorkerResult>((resolve, reject) => {
          const p = spawn(process.execPath, [self, '--worker', JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'inherit'], env });
          let out = '';
          p.stdout.on('data', (b: Buffer) => (out += b.toString()));
          p.once('exit', (code) => {
            if (code !== 0) return reject(new Error(`rank ${job.rank} of ${job.worldSize} exited with ${code}`));
            resolve(JSON.parse(out.trim()) as WorkerResult);
          });
        }),
    ),
  );
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

function option(name: string, env: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && process.argv[i + 1] !== undefined) return process.argv[i + 1];
  return process.env[env] ?? fallback;
}

const numbers = (s: string): number[] =>
  s.split(',').map((x) => {
    const v = Number(x);
    if (!Number.isFinite(v) || v <= 0) throw new Error(`bench option value ${JSON.stringify(x)} is not a positive number`);
    return v;
  });

async function main(): Promise<void> {
  const worlds = numbers(option('worlds', 'BENCH_WORLDS', '2,3,4'));
  const sizesMB = numbers(option('sizes', 'BENCH_SIZES_MB', '1,4,16,64,256'));
  const transports = option('transports', 'BENCH_TRANSPORTS', 'ipc,tcp').split(',');
  for (const t of transports) if (t !== 'ipc' && t !== 'tcp') throw new Error(`transport ${JSON.stringify(t)} is not ipc|tcp`);
  const fixedIters = option('iters', 'BENCH_ITERS', '');
  const fixedWarmup = option('warmup', 'BENCH_WARMUP', '');
  const chunkBytes = Number(option('chunk-bytes', 'BENCH_CHUNK_BYTES', String(DEFAULT_CHUNK_BYTES)));
  const hwm = Number(option('hwm', 'BENCH_HWM', String(DEFAULT_HWM)));
  const sockbuf = Number(option('sockbuf', 'BENCH_SOCKBUF', '-1'));
  // Default iterations: ~1 GB of payload per size for small sizes, at least 3 timed runs for large ones.
  const iters = sizesMB.map((mb) => (fixedIters ? Number(fixedIters) : Math.max(3, Math.min(20, Math.round(1024 / mb)))));
  const warmup = sizesMB.map((mb) => (fixedWarmup ? Number(fixedWarmup) : mb >= 256 ? 1 : 2));
  const sizesBytes = sizesMB.map((mb) => Math.round((mb * MB) / 4) * 4);
  const malloc = option('malloc', 'BENCH_MALLOC', 'tuned');
  if (malloc !== 'tuned' && malloc !== 'default') throw new Error(`malloc ${JSON.stringify(malloc)} is not tuned|default`);
  const env = malloc === 'tuned' ? { ...process.env, ...RING_MALLOC_ENV } : process.env;
  const loadBefore = loadavg();
  const started = Date.now();

  const results: object[] = [];
  for (const transport of transports) {
    for (const N of worlds) {
      const dir = mkdtempSync(join(tmpdir(), 'sgt-bench-'));
      const eps: string[] = [];
      for (let r = 0; r < N; r++) eps.push(transport === 'ipc' ? `ipc://${join(dir, `r${r}.sock`)}` : `tcp://127.0.0.1:${await freePort()}`);
      const jobs = eps.map((listen, r) => ({ rank: r, worldSize: N, listen, next: eps[(r + 1) % N], chunkBytes, hwm, sockbuf, sizesBytes, iters, warmup }));
      try {
        const perRank = await runWorkers(jobs, env);
        sizesBytes.forEach((S, s) => {
          // The collective is done when the slowest rank is: per iteration, the max over ranks.
          const per = perRank[0].times[s].map((_, it) => Math.max(...perRank.map((r) => r.times[s][it])));
          const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
          const t = median(per);
          const algbw = S / t / 1e9;
          results.push({
            transport,
            worldSize: N,
            bytes: S,
            sizeMB: sizesMB[s],
            iterations: per.length,
            medianSeconds: +t.toPrecision(4),
            minSeconds: +Math.min(...per).toPrecision(4),
            algbwGBps: +algbw.toFixed(3),
            busbwGBps: +((algbw * 2 * (N - 1)) / N).toFixed(3),
            cpuSecondsPerRank: +mean(perRank.map((r) => r.cpu[s])).toPrecision(3),
            minorFaultsPerRank: Math.round(mean(perRank.map((r) => r.faults[s]))),
          });
        });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  const doc = {
    bench: 'ring all-reduce (worker/comm/ring.ts), float32 sum, in place',
    config: {
      chunkBytes,
      highWaterMark: hwm,
      socketBufferBytes: sockbuf,
      mallocEnv: malloc === 'tuned' ? RING_MALLOC_ENV : 'glibc defaults',
      warmup: Object.fromEntries(sizesMB.map((mb, i) => [`${mb}MB`, warmup[i]])),
      iterations: Object.fromEntries(sizesMB.map((mb, i) => [`${mb}MB`, iters[i]])),
      node: process.version,
      wallSeconds: Math.round((Date.now() - started) / 1000),
      loadavg1mBeforeAfter: [+loadBefore[0].toFixed(2), +loadavg()[0].toFixed(2)],
      cores: cpus().length,
      cpu: cpus()[0]?.model,
      timing: 'per iteration: barrier, then all-reduce; slowest rank; median over iterations',
      definitions: 'algbw = bytes / t; busbw = algbw * 2(N-1)/N (nccl-tests); GB = 1e9 bytes',
      note:
        cpus().length < Math.max(...worlds) * 2
          ? `only ${cpus().length} cores: each rank keeps a JS thread and a ZeroMQ I/O thread busy, so world sizes above ` +
            `${Math.max(1, Math.floor(cpus().length / 2))} oversubscribe the CPU; those numbers measure CPU contention, not the ring. ` +
            `cpuSecondsPerRank (user+sys, all threads) is the load-independent figure; loadavg shows other load on the machine.`
          : undefined,
    },
    results,
  };
  process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
}

const wi = process.argv.indexOf('--worker');
if (wi >= 0) {
  void worker(JSON.parse(process.argv[wi + 1]) as WorkerJob).catch((e) => {
    process.stderr.write(`bench worker failed: ${(e as Error).stack}\n`);
    process.exit(1);
  });
} else {
  void main().catch((e) => {
    process.stderr.write(`bench failed: ${(e as Error).stack}\n`);
    process.exit(1);
  });
}
