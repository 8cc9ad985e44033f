// Test helper: spawns one real `node` process per ring rank (the rank.ts fixture), picks endpoints, and checks the
// results: float64 reference within 1e-6 relative, and bitwise equality across ranks.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fillF32, fillU8, referenceSum } from './data.js';
import type { DataPlane } from '../../../worker/comm/ring.js';
import type { RankCase, RankJob, RankSummary } from './rank.js';

export const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), 'rank.js');

export type Transport = 'ipc' | 'tcp';

/** A free loopback port (bound then released; the tiny reuse race is acceptable in tests). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function endpoints(transport: Transport, worldSize: number, dir: string): Promise<string[]> {
  if (transport === 'ipc') return Array.from({ length: worldSize }, (_, r) => `ipc://${join(dir, `r${r}.sock`)}`);
  const out: string[] = [];
  for (let r = 0; r < worldSize; r++) out.push(`tcp://127.0.0.1:${await freePort()}`);
  return out;
}

export interface Cluster {
  dir: string;
  procs: ChildProcess[];
  /** Resolves with each rank's exit code (null if killed) once all have exited. */
  exited: Promise<(number | null)[]>;
  /** stdout lines per rank, as they arrive. */
  lines: string[][];
  summary(rank: number): RankSummary;
  result(rank: number, caseIndex: number): Buffer;
  cleanup(): void;
}

export interface LaunchOptions {
  worldSize: number;
  endpoints: string[];
  cases: RankCase[];
  timeoutMs: number;
  chunkBytes?: number;
  /** The ring's data plane (default: the Ring's default). */
  dataPlane?: DataPlane;
  loopLength?: number;
  /** Command prefix per rank, e.g. ['ip', 'netns', 'exec', 'ns0'] (default: none). */
  prefix?: (rank: number) => string[];
  /** Kill all ranks if they have not exited after this long (the test then fails, rather than hanging). */
  hardLimitMs?: number;
}

export function launch(o: LaunchOptions): Cluster {
  const dir = mkdtempSync(join(tmpdir(), 'sgt-ring-out-'));
  const lines: string[][] = [];
  const procs: ChildProcess[] = [];
  const exits: Promise<number | null>[] = [];
  for (let r = 0; r < o.worldSize; r++) {
    const job: RankJob = {
      rank: r,
      worldSize: o.worldSize,
      listen: o.endpoints[r],
      next: o.endpoints[(r + 1) % o.worldSize],
      prev: o.endpoints[(r + o.worldSize - 1) % o.worldSize],
      dataPlane: o.dataPlane,
      timeoutMs: o.timeoutMs,
      chunkBytes: o.chunkBytes,
      outDir: dir,
      cases: o.cases,
      loopLength: o.loopLength,
    };
    const pre = o.prefix ? o.prefix(r) : [];
    const argv = [...pre, process.execPath, FIXTURE, JSON.stringify(job)];
    const p = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
    const mine: string[] = [];
    lines.push(mine);
    let partial = '';
    p.stdout?.on('data', (b: Buffer) => {
      const parts = (partial + b.toString()).split('\n');
      partial = parts.pop() ?? '';
      mine.push(...parts);
    });
    exits.push(new Promise((resolve) => p.once('exit', (code) => resolve(code))));
    procs.push(p);
  }
  const hard = setTimeout(() => procs.forEach((p) => p.exitCode === null && p.kill('SIGKILL')), o.hardLimitMs ?? 30_000);
  const exited = Promise.all(exits).finally(() => clearTimeout(hard));
  return {
    dir,
    procs,
    exited,
    lines,
    summary: (r) => JSON.parse(readFileSync(join(dir, `r${r}.json`), 'utf8')) as RankSummary,
    result: (r, i) => readFileSync(join(dir, `r${r}-c${i}.bin`)),
    cleanup: () => {
      procs.forEach((p) => p.exitCode === null && p.signalCode === null && p.kill('SIGKILL'));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Checks every case of a finished cluster; returns a list of failures (empty = all good).
 * All-reduce: rank 0's result vs the float64 sum, |got − ref| ≤ 1e-6·|ref|, and every rank's bytes equal rank 0's.
 * Broadcast: every rank's bytes equal the root's input.
 */
export function verify(c: Cluster, worldSize: number, cases: RankCase[]): string[] {
  const bad: string[] = [];
  cases.forEach((k, i) => {
    if (k.kind === 'barrier') return;
    const r0 = c.result(0, i);
    for (let r = 1; r < worldSize; r++) {
      if (!c.result(r, i).equals(r0)) bad.push(`case ${i} (${k.kind}): rank ${r} not bitwise equal to rank 0`);
    }
    if (k.kind === 'allreduce') {
      const got = new Float32Array(r0.buffer, r0.byteOffset, r0.byteLength / 4);
      const ref = referenceSum(k.length, k.seed, worldSize);
      if (got.length !== ref.length) bad.push(`case ${i}: length ${got.length}, expected ${ref.length}`);
      let worst = 0;
      let at = -1;
      for (let j = 0; j < ref.length; j++) {
        const rel = Math.abs(got[j] - ref[j]) / Math.abs(ref[j]);
        if (Number.isNaN(rel) || rel > worst) {
          worst = rel;
          at = j;
          if (Number.isNaN(rel)) break;
        }
      }
      if (!(worst <= 1e-6)) bad.push(`case ${i} (${k.kind} len ${ref.length}): relative error ${worst} at ${at} (got ${got[at]}, ref ${ref[at]})`);
    } else {
      const want =
        k.dtype === 'f32' ? Buffer.from(fillF32(new Float32Array(k.length), k.seed, k.root).buffer) : Buffer.from(fillU8(new Uint8Array(k.length), k.seed, k.root));
      if (!r0.equals(want)) bad.push(`case ${i} (broadcast ${k.dtype} len ${k.length} root ${k.root}): differs from root's input`);
    }
  });
  return bad;
}
