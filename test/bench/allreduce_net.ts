// A measurement probe for bench:allreduce (`--transports net-ipc,net-tcp`), not used by the trainer: the same ring
// all-reduce schedule as worker/comm/ring.ts (schedule.ts, same chunks, same bitwise result), but its data plane is
// node:net instead of ZeroMQ, to measure what ZeroMQ's per-message receive buffers cost (see README, issue 14).
// Rank r listens; its successor connects to it as a client with `onread` (one reused 256 KB read buffer), so bytes
// flow r → r+1 over the accepted socket and are reduced (or copied) into place as they arrive: no buffer per
// message, no external-memory GC pressure, no page faults on fresh buffers. No timeouts, generations, reconnects
// after open, or error reporting: it is a probe of the copy and allocation cost only.

import { unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { chunkSpan, chunksPerSegment, mod, recvSegment } from '../../worker/comm/schedule.js';

export interface NetProbeOptions {
  rank: number;
  worldSize: number;
  /** Unix socket path or tcp port per rank. */
  endpoint: (rank: number) => { path: string } | { host: string; port: number };
  chunkBytes: number;
}

/** One message: 8-byte header (step, chunk; uint32 LE), then the chunk's float32 payload. */
const HEADER = 8;

export class NetRingProbe {
  private server: Server | null = null;
  private out: Socket | null = null;
  private in: Socket | null = null;
  /** Bytes that arrived for the next collective while the current one finished (peers may run ahead). */
  private early: Buffer[] = [];
  private onBytes: (piece: Buffer) => void = (p) => this.early.push(Buffer.from(p));
  /** Staging buffers for partial sums (one chunk each), recycled when their send completes. */
  private pool: ArrayBuffer[] = [];
  private readonly readBuf = Buffer.allocUnsafe(256 * 1024);

  constructor(private readonly o: NetProbeOptions) {}

  async open(): Promise<void> {
    const { rank, worldSize: N } = this.o;
    const ep = this.o.endpoint(rank);
    if ('path' in ep) {
      try {
        unlinkSync(ep.path);
      } catch {
        // no stale socket file
      }
    }
    const server = createServer();
    this.server = server;
    const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(ep, () => resolve());
    });
    const prev = this.o.endpoint(mod(rank - 1, N));
    this.in = await new Promise<Socket>((resolve) => {
      const attempt = () => {
        const s = connect({
          ...prev,
          onread: { buffer: this.readBuf, callback: (n: number, buf: Uint8Array) => (this.onBytes(buf.subarray(0, n) as Buffer), true) },
        });
        s.once('connect', () => resolve(s));
        s.once('error', () => setTimeout(attempt, 20));
      };
      attempt();
    });
    this.out = await accepted;
  }

  /** A one-float all-reduce. */
  async barrier(): Promise<void> {
    await this.allReduceSum(new Float32Array(1));
  }

  /** In place, same schedule and arithmetic as Ring.allReduceSum: partial sums p += mine, the owner's final value copied. */
  allReduceSum(data: Float32Array): Promise<void> {
    const { rank: r, worldSize: N, chunkBytes } = this.o;
    const out = this.out as Socket;
    const L = data.length;
    const M = chunksPerSegment(L, N, 4, chunkBytes);
    const steps = 2 * (N - 1);
    return new Promise<void>((resolve) => {
      let writes = 0;
      let received = false;
      const done = () => {
        if (received && writes === 0) resolve();
      };
      const send = (step: number, j: number, f: Float32Array, pooled: boolean) => {
        const h = Buffer.allocUnsafe(HEADER);
        h.writeUInt32LE(step, 0);
        h.writeUInt32LE(j, 4);
        writes++;
        out.write(h);
        // The payload is written without a copy; its buffer is reused only after the write callback.
        out.write(new Uint8Array(f.buffer, f.byteOffset, f.byteLength), () => {
          if (pooled) this.pool.push(f.buffer as ArrayBuffer);
          writes--;
          done();
        });
      };
      for (let j = 0; j < M; j++) {
        const sp = chunkSpan(L, N, M, r, j);
        send(0, j, data.subarray(sp.start, sp.end), false);
      }
      // Messages arrive in schedule order: k = step·M + chunk.
      let k = 0;
      let headerGot = 0;
      let got = 0;
      let step = 0;
      let j = 0;
      let start = 0;
      let bytes = 0;
      let dst: Uint8Array = new Uint8Array(0);
      let partial: Float32Array | null = null; // reduce-scatter: the staging chunk p
      let mine: Float32Array = data;
      let reduced = 0; // floats of p already reduced
      const begin = () => {
        step = Math.floor(k / M);
        j = k % M;
        const sp = chunkSpan(L, N, M, recvSegment(r, N, step), j);
        start = sp.start;
        bytes = (sp.end - sp.start) * 4;
        got = 0;
        reduced = 0;
        mine = data.subarray(sp.start, sp.end);
        if (step < N - 1) {
          const ab = this.pool.pop() ?? new ArrayBuffer(Math.max(bytes, chunkBytes + 4));
          partial = new Float32Array(ab, 0, sp.end - sp.start);
          dst = new Uint8Array(ab, 0, bytes);
        } else {
          partial = null; // all-gather: straight into the caller's array
          dst = new Uint8Array(data.buffer, data.byteOffset + start * 4, bytes);
        }
      };
      const header = Buffer.alloc(HEADER);
      const handle = (piece: Buffer) => {
        let off = 0;
        while (off < piece.length) {
          if (received) {
            this.early.push(Buffer.from(piece.subarray(off)));
            return;
          }
          if (headerGot < HEADER) {
            const t = Math.min(HEADER - headerGot, piece.length - off);
            piece.copy(header, headerGot, off, off + t);
            headerGot += t;
            off += t;
            if (headerGot < HEADER) continue;
            begin();
          }
          const t = Math.min(bytes - got, piece.length - off);
          dst.set(piece.subarray(off, off + t), got);
          got += t;
          off += t;
          if (partial) {
            // Reduce what just landed while it is in cache: p[i] += mine[i] for the whole floats received so far.
            const upTo = got >> 2;
            for (let i = reduced; i < upTo; i++) partial[i] += mine[i];
            reduced = upTo;
          }
          if (got === bytes) {
            if (step === N - 2 && partial) mine.set(partial); // this rank owns the segment: final value
            if (step + 1 < steps) send(step + 1, j, partial ?? mine, partial !== null);
            k++;
            headerGot = 0;
            if (k === steps * M) {
              received = true;
              this.onBytes = (p) => this.early.push(Buffer.from(p));
              done();
            }
          }
        }
      };
      this.onBytes = handle;
      const early = this.early;
      this.early = [];
      for (const p of early) this.onBytes(p);
    });
  }

  async close(): Promise<void> {
    this.in?.destroy();
    await new Promise<void>((resolve) => (this.out ? this.out.end(resolve) : resolve()));
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
