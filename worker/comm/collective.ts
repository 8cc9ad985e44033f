// The Collective seam: what the trainer, validation, diagnostics and the consistency check need from their peers —
// sums, a broadcast and a barrier — served by the ring (many processes) or by a single process (world size 1).
import type { Ring } from './ring.js';

export interface Collective {
  readonly rank: number;
  readonly worldSize: number;
  /** Element-wise sum across ranks, in place; every rank ends with the same bits. */
  allReduceSum(flat: Float32Array): Promise<void>;
  /** Overwrites `buf` on every rank with root's `buf`. */
  broadcast(buf: Float32Array, root: number): Promise<void>;
  /** Returns when every rank has called it. */
  barrier(): Promise<void>;
  /** Bytes this rank has sent so far (the allreduce_bytes metric); 0 for one process. */
  readonly bytesSent: number;
}

/** One process: a sum over one rank is the identity. */
export class LocalCollective implements Collective {
  readonly rank = 0;
  readonly worldSize = 1;
  readonly bytesSent = 0;
  async allReduceSum(): Promise<void> {}
  async broadcast(_buf: Float32Array, root: number): Promise<void> {
    if (root !== 0) throw new RangeError(`broadcast root ${root} outside a world of size 1`);
  }
  async barrier(): Promise<void> {}
}

/** The ring of a generation as a Collective. */
export class RingCollective implements Collective {
  constructor(private readonly ring: Ring) {}
  get rank(): number {
    return this.ring.rank;
  }
  get worldSize(): number {
    return this.ring.worldSize;
  }
  get bytesSent(): number {
    return this.ring.stats.bytesSent;
  }
  allReduceSum(flat: Float32Array): Promise<void> {
    return this.ring.allReduceSum(flat);
  }
  broadcast(buf: Float32Array, root: number): Promise<void> {
    return this.ring.broadcast(buf, root);
  }
  /** A one-float all-reduce: no rank leaves before every rank has entered. */
  barrier(): Promise<void> {
    return this.ring.allReduceSum(new Float32Array(1));
  }
}
