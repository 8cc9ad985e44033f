// Ring all-reduce benchmark (`npm run bench:allreduce`): real processes per world size × data plane × transport ×
// payload size, prints ONE JSON document with median time, algbw = S/t and busbw = algbw·2(N−1)/N in GB/s
// (nccl-tests definitions).
//
// Restrict with env or args (args win): BENCH_WORLDS / --worlds 2,3   BENCH_SIZES_MB / --sizes 4,16
// BENCH_PLANES / --planes net,zmq (the Ring's dataPlane)   BENCH_TRANSPORTS / --transports ipc,tcp
// BENCH_ITERS / --iters N (timed iterations; default scales with size)
// BENCH_WARMUP / --warmup N   BENCH_CHUNK_BYTES / --chunk-bytes B   BENCH_HWM / --hwm N   BENCH_SOCKBUF / --sockbuf B
// BENCH_MALLOC / --malloc tuned|default (tuned: workers get RING_MALLOC_ENV, as the launcher should do; default)
// BENCH_PEER / --peer gloo: also run PyTorch's gloo all-reduce (test/bench/allreduce_gloo.py, BENCH_PYTHON / --python,
// default /usr/bin/python3) alternately with every ring configuration, BENCH_REPS / --reps times (default 5; worlds 2,
// sizes 1,16,64), and print both busbw and the ratio per size (`comparison`).
// BENCH_PROFILE / --profile DIR: run the ring workers under `node --cpu-prof --cpu-prof-dir DIR` (one .cpuprofile per rank).
// The same file is the per-rank worker when started with --worker '<json>'.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';
import { DATA_PLANES, DEFAULT_CHUNK_BYTES, DEFAULT_HWM, Ring, RING_MALLOC_ENV, type DataPlane } from '../../worker/comm/ring.js';

const MB = 1 << 20;

interface WorkerJob {
  rank: number;
  worldSize: number;
  listen: string;
  next: string;
  prev: string;
  dataPlane: DataPlane;
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
    prev: job.prev,
    dataPlane: job.dataPlane,
    chunkBytes: job.chunkBytes,
    highWaterMark: job.hwm,
    socketBufferBytes: job.sockbuf,
    timeoutMs: 120_000,
  });
  await ring.open();
  const times: number[][] = [];
  // CPU seconds (user+sys, all threads incl. ZeroMQ's I/O thread on the zmq plane) and minor page faults per timed iteration:
  // robust to other load on the machine, unlike wall time.
  const cpu: number[] = [];
  const faults: number[] = [];
  const switches: number[] = []; // context switches (voluntary + involuntary): each is a wake-up the scheduler must serve
  const ctx = () => {
    const u = process.resourceUsage();
    return u.voluntaryContextSwitches + u.involuntaryContextSwitches;
  };
  for (let s = 0; s < job.sizesBytes.length; s++) {
    const a = new Float32Array(job.sizesBytes[s] / 4).fill(1e-3 * (job.rank + 1));
    const mine: number[] = [];
    let c0 = process.cpuUsage();
    let f0 = process.resourceUsage().minorPageFault;
    let x0 = ctx();
    for (let it = 0; it < job.warmup[s] + job.iters[s]; it++) {
      if (it === job.warmup[s]) {
        c0 = process.cpuUsage();
        f0 = process.resourceUsage().minorPageFault;
        x0 = ctx();
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
    switches.push((ctx() - x0) / job.iters[s]);
    times.push(mine);
  }
  // Self-check (both planes): an odd length (uneven segments and chunks) sums to N(N+1)/2 everywhere;
  // the barriers above (one float: empty segments) went through the same path.
  const check = new Float32Array(1_000_003).fill(job.rank + 1);
  await ring.allReduceSum(check);
  const want = (job.worldSize * (job.worldSize + 1)) / 2;
  const bad = check.findIndex((v) => v !== want);
  if (bad >= 0) throw new Error(`rank ${job.rank}: all-reduce self-check failed at element ${bad}: ${check[bad]} ≠ ${want}`);
  await ring.close();
  process.stdout.write(JSON.stringify({ rank: job.rank, times, cpu, faults, switches }) + '\n');
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
  switches: number[];
}

function runWorkers(jobs: WorkerJob[], env: NodeJS.ProcessEnv, profileDir: string): Promise<WorkerResult[]> {
  const self = fileURLToPath(import.meta.url);
  const prof = profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [];
  return Promise.all(
    jobs.map(
      (job) =>
        new Promise<WorkerResult>((resolve, reject) => {
          const p = spawn(process.execPath, [...prof, self, '--worker', JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'inherit'], env });
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

type BaseJob = Omit<WorkerJob, 'rank' | 'worldSize' | 'listen' | 'next' | 'prev' | 'dataPlane'>;

/** One run of the ring for one plane, transport and world size: per size, the slowest rank's time per iteration, CPU, faults. */
async function runRing(plane: DataPlane, transport: string, N: number, base: BaseJob, env: NodeJS.ProcessEnv, profileDir: string): Promise<RunOfSize[]> {
  const dir = mkdtempSync(join(tmpdir(), 'sgt-bench-'));
  const eps: string[] = [];
  for (let r = 0; r < N; r++) eps.push(transport === 'ipc' ? `ipc://${join(dir, `r${r}.sock`)}` : `tcp://127.0.0.1:${await freePort()}`);
  const jobs = eps.map((listen, r) => ({ ...base, rank: r, worldSize: N, listen, next: eps[(r + 1) % N], prev: eps[(r + N - 1) % N], dataPlane: plane }));
  try {
    const perRank = await runWorkers(jobs, env, profileDir);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    return base.sizesBytes.map((_, s) => ({
      // The collective is done when the slowest rank is: per iteration, the max over ranks.
      times: perRank[0].times[s].map((_, it) => Math.max(...perRank.map((r) => r.times[s][it]))),
      cpu: mean(perRank.map((r) => r.cpu[s])),
      faults: mean(perRank.map((r) => r.faults[s])),
      switches: mean(perRank.map((r) => r.switches[s])),
    }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface RunOfSize {
  times: number[];
  cpu: number;
  faults?: number;
  /** Context switches per all-reduce per rank (all threads). */
  switches?: number;
}

/** The peer (test/bench/allreduce_gloo.py): PyTorch gloo, N processes on loopback tcp, timed the same way. */
function runGloo(python: string, N: number, sizesBytes: number[], iters: number[], warmup: number[]): Promise<{ torch: string; runs: RunOfSize[] }> {
  const script = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'bench', 'allreduce_gloo.py');
  const args = [script, '--world', String(N), '--sizes-bytes', sizesBytes.join(','), '--iters', iters.join(','), '--warmup', warmup.join(',')];
  return new Promise((resolve, reject) => {
    const p = spawn(python, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.once('error', (e) => reject(new Error(`cannot start the gloo peer with ${python} (set BENCH_PYTHON / --python): ${e.message}`)));
    p.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`gloo peer (${python} ${script}) exited with ${code}; it needs PyTorch with gloo`));
      const doc = JSON.parse(out.trim().split('\n').pop() as string) as {
        torch: string;
        results: { times: number[]; cpuSecondsPerRank: number; contextSwitchesPerRank: number }[];
      };
      resolve({ torch: doc.torch, runs: doc.results.map((r) => ({ times: r.times, cpu: r.cpuSecondsPerRank, switches: r.contextSwitchesPerRank })) });
    });
  });
}

/** Median time over iterations → the usual result fields. */
function summarise(S: number, N: number, run: RunOfSize): { medianSeconds: number; minSeconds: number; algbwGBps: number; busbwGBps: number } {
  const t = median(run.times);
  const algbw = S / t / 1e9;
  return {
    medianSeconds: +t.toPrecision(4),
    minSeconds: +Math.min(...run.times).toPrecision(4),
    algbwGBps: +algbw.toFixed(3),
    busbwGBps: +((algbw * 2 * (N - 1)) / N).toFixed(3),
  };
}

async function main(): Promise<void> {
  const peer = option('peer', 'BENCH_PEER', '');
  if (peer !== '' && peer !== 'gloo') throw new Error(`peer ${JSON.stringify(peer)} is not gloo`);
  const worlds = numbers(option('worlds', 'BENCH_WORLDS', peer ? '2' : '2,3,4'));
  const sizesMB = numbers(option('sizes', 'BENCH_SIZES_MB', peer ? '1,16,64' : '1,4,16,64,256'));
  const transports = option('transports', 'BENCH_TRANSPORTS', 'ipc,tcp').split(',');
  for (const t of transports) if (t !== 'ipc' && t !== 'tcp') throw new Error(`transport ${JSON.stringify(t)} is not ipc|tcp`);
  const planes = option('planes', 'BENCH_PLANES', DATA_PLANES.join(',')).split(',') as DataPlane[];
  for (const p of planes) if (!DATA_PLANES.includes(p)) throw new Error(`plane ${JSON.stringify(p)} is not ${DATA_PLANES.join('|')}`);
  const configs = planes.flatMap((plane) => transports.map((transport) => ({ plane, transport, key: `${plane}-${transport}` })));
  const profileDir = option('profile', 'BENCH_PROFILE', '');
  const reps = numbers(option('reps', 'BENCH_REPS', peer ? '5' : '1'))[0];
  const python = option('python', 'BENCH_PYTHON', '/usr/bin/python3');
  const fixedIters = option('iters', 'BENCH_ITERS', '');
  const fixedWarmup = option('warmup', 'BENCH_WARMUP', '');
  const chunkBytes = Number(option('chunk-bytes', 'BENCH_CHUNK_BYTES', String(DEFAULT_CHUNK_BYTES)));
  const hwm = Number(option('hwm', 'BENCH_HWM', String(DEFAULT_HWM)));
  const sockbuf = Number(option('sockbuf', 'BENCH_SOCKBUF', '-1'));
  // Default iterations: ~1 GB of payload per size for small sizes, at least 3 timed runs for large ones
  // (with a peer, a third of that per repetition: the repetitions make up the rest).
  const budget = peer ? 341 : 1024;
  const iters = sizesMB.map((mb) => (fixedIters ? Number(fixedIters) : Math.max(3, Math.min(20, Math.round(budget / mb)))));
  const warmup = sizesMB.map((mb) => (fixedWarmup ? Number(fixedWarmup) : mb >= 256 ? 1 : 2));
  const sizesBytes = sizesMB.map((mb) => Math.round((mb * MB) / 4) * 4);
  const malloc = option('malloc', 'BENCH_MALLOC', 'tuned');
  if (malloc !== 'tuned' && malloc !== 'default') throw new Error(`malloc ${JSON.stringify(malloc)} is not tuned|default`);
  const env = malloc === 'tuned' ? { ...process.env, ...RING_MALLOC_ENV } : process.env;
  const base = { chunkBytes, hwm, sockbuf, sizesBytes, iters, warmup };
  const loadBefore = loadavg();
  const loads: number[] = [];
  const started = Date.now();

  // ours[transport][N][rep][size], gloo[N][rep][size]: with a peer, ring and gloo alternate within each repetition,
  // so both see the same load on a shared machine.
  const ours = new Map<string, RunOfSize[][]>();
  const gloo = new Map<number, RunOfSize[][]>();
  let torch = '';
  for (let rep = 0; rep < reps; rep++) {
    for (const N of worlds) {
      for (const { plane, transport, key: name } of configs) {
        const key = `${name}/${N}`;
        if (!ours.has(key)) ours.set(key, []);
        ours.get(key)?.push(await runRing(plane, transport, N, base, env, profileDir));
        loads.push(loadavg()[0]);
      }
      if (peer) {
        const g = await runGloo(python, N, sizesBytes, iters, warmup);
        torch = g.torch;
        if (!gloo.has(N)) gloo.set(N, []);
        gloo.get(N)?.push(g.runs);
        loads.push(loadavg()[0]);
      }
    }
  }

  const round3 = (v: number) => +v.toFixed(3);
  const results: object[] = [];
  const comparison: object[] = [];
  for (const N of worlds) {
    for (const { plane, transport, key: name } of configs) {
      const runs = ours.get(`${name}/${N}`) as RunOfSize[][];
      sizesBytes.forEach((S, s) => {
        // All iterations of all repetitions pooled for the medians; CPU and faults averaged.
        const pooled: RunOfSize = { times: runs.flatMap((r) => r[s].times), cpu: median(runs.map((r) => r[s].cpu)) };
        results.push({
          plane,
          transport,
          worldSize: N,
          bytes: S,
          sizeMB: sizesMB[s],
          iterations: pooled.times.length,
          ...summarise(S, N, pooled),
          cpuSecondsPerRank: +pooled.cpu.toPrecision(3),
          minorFaultsPerRank: Math.round(median(runs.map((r) => r[s].faults ?? 0))),
          contextSwitchesPerRank: Math.round(median(runs.map((r) => r[s].switches ?? 0))),
        });
        if (!peer) return;
        const g = gloo.get(N) as RunOfSize[][];
        const perRep = runs.map((r, i) => {
          const a = summarise(S, N, r[s]).busbwGBps;
          const b = summarise(S, N, g[i][s]).busbwGBps;
          return { ours: a, gloo: b, ratio: round3(a / b) };
        });
        const gPooled: RunOfSize = { times: g.flatMap((r) => r[s].times), cpu: median(g.map((r) => r[s].cpu)) };
        const ob = summarise(S, N, pooled).busbwGBps;
        const gb = summarise(S, N, gPooled).busbwGBps;
        comparison.push({
          plane,
          transport,
          worldSize: N,
          sizeMB: sizesMB[s],
          busbwGBps: { ours: ob, gloo: gb },
          ratio: round3(ob / gb),
          ratioMedianOfRepetitions: round3(median(perRep.map((x) => x.ratio))),
          cpuSecondsPerRank: { ours: +pooled.cpu.toPrecision(3), gloo: +gPooled.cpu.toPrecision(3) },
          cpuRatio: round3(gPooled.cpu / pooled.cpu),
          contextSwitchesPerRank: { ours: Math.round(median(runs.map((r) => r[s].switches ?? 0))), gloo: Math.round(median(g.map((r) => r[s].switches ?? 0))) },
          repetitions: perRep,
        });
      });
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
      repetitions: reps,
      peer: peer ? { backend: 'gloo', torch, transport: 'tcp://127.0.0.1', script: 'test/bench/allreduce_gloo.py' } : undefined,
      node: process.version,
      wallSeconds: Math.round((Date.now() - started) / 1000),
      loadavg1mBeforeAfter: [+loadBefore[0].toFixed(2), +loadavg()[0].toFixed(2)],
      loadavg1mAfterEachRun: loads.map((l) => +l.toFixed(2)),
      cores: cpus().length,
      cpu: cpus()[0]?.model,
      timing:
        'per iteration: barrier, then all-reduce; slowest rank; median over iterations (pooled over repetitions)' +
        (peer ? '; with a peer, ring and gloo alternate in every repetition; ratio = ours / gloo busbw' : ''),
      definitions: 'algbw = bytes / t; busbw = algbw * 2(N-1)/N (nccl-tests); GB = 1e9 bytes; cpuRatio = gloo CPU / ours (> 1: ours cheaper)',
      note:
        cpus().length < Math.max(...worlds) * 2
          ? `only ${cpus().length} cores: each rank keeps its JS thread (and on the zmq plane a ZeroMQ I/O thread) busy, so world sizes above ` +
            `${Math.max(1, Math.floor(cpus().length / 2))} oversubscribe the CPU; those numbers measure CPU contention, not the ring. ` +
            `cpuSecondsPerRank (user+sys, all threads) is the load-independent figure; loadavg shows other load on the machine.`
          : undefined,
    },
    results,
    comparison: peer ? comparison : undefined,
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
