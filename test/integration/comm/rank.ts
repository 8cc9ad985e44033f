// Fixture process: one ring rank. Runs the collectives named in its job (argv[2], JSON), writes each result to
// <outDir>/r<rank>-c<i>.bin and a summary to <outDir>/r<rank>.json; on a CommError it records it and exits 3.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ring, type DataPlane } from '../../../worker/comm/ring.js';
import { CommError } from '../../../worker/comm/errors.js';
import { fillF32, fillU8 } from './data.js';

export type RankCase =
  | { kind: 'allreduce'; length: number; seed: number }
  | { kind: 'broadcast'; dtype: 'f32' | 'u8'; length: number; root: number; seed: number }
  | { kind: 'barrier' };

export interface RankJob {
  rank: number;
  worldSize: number;
  listen: string;
  next: string;
  prev: string;
  dataPlane?: DataPlane;
  generation?: number;
  timeoutMs: number;
  chunkBytes?: number;
  outDir: string;
  cases: RankCase[];
  /** Kill test: repeat an all-reduce of this many floats forever, printing "progress <i>" after each. */
  loopLength?: number;
}

export interface RankSummary {
  ok: boolean;
  rank: number;
  error?: { code: string; reason: string; message: string; details: unknown };
  /** ms from the last completed collective to the error (how long the rank waited before giving up). */
  waitedMs?: number;
  closeMs?: number;
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2]) as RankJob;
  const summary: RankSummary = { ok: true, rank: job.rank };
  const ring = new Ring({
    rank: job.rank,
    worldSize: job.worldSize,
    listen: job.listen,
    next: job.next,
    prev: job.prev,
    dataPlane: job.dataPlane,
    generation: job.generation,
    timeoutMs: job.timeoutMs,
    chunkBytes: job.chunkBytes,
  });
  let lastProgress = Date.now();
  try {
    await ring.open();
    for (let i = 0; i < job.cases.length; i++) {
      const c = job.cases[i];
      let out: Uint8Array | null = null;
      if (c.kind === 'allreduce') {
        const a = fillF32(new Float32Array(c.length), c.seed, job.rank);
        await ring.allReduceSum(a);
        out = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
      } else if (c.kind === 'broadcast') {
        const a = c.dtype === 'f32' ? fillF32(new Float32Array(c.length), c.seed, job.rank) : fillU8(new Uint8Array(c.length), c.seed, job.rank);
        await ring.broadcast(a, c.root);
        out = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
      } else {
        await ring.barrier();
      }
      if (out) writeFileSync(join(job.outDir, `r${job.rank}-c${i}.bin`), out);
      lastProgress = Date.now();
    }
    if (job.loopLength !== undefined) {
      const a = fillF32(new Float32Array(job.loopLength), 1, job.rank);
      for (let it = 0; ; it++) {
        await ring.allReduceSum(a);
        a.fill(1); // keep values finite; contents do not matter here
        lastProgress = Date.now();
        process.stdout.write(`progress ${it}\n`);
      }
    }
  } catch (e) {
    summary.ok = false;
    summary.waitedMs = Date.now() - lastProgress;
    const ce = e as CommError;
    summary.error = { code: ce.code ?? 'unknown', reason: ce.details?.reason ?? 'unknown', message: ce.message, details: ce.details };
  }
  const t0 = Date.now();
  await ring.close();
  summary.closeMs = Date.now() - t0;
  writeFileSync(join(job.outDir, `r${job.rank}.json`), JSON.stringify(summary));
  process.exitCode = summary.ok ? 0 : 3;
}

void main();
