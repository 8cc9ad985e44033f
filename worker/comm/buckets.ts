// Gradient buckets: many per-parameter Float32Arrays packed into a few flat ~25 MB buckets, so the ring runs a few
// large all-reduces instead of hundreds of small ones; plus a reducer that overlaps packing with the previous transfer.
//
// The reducer SUMS across ranks. Averaging is the caller's job, once, by the global sample count of the step
// (Σ over ranks of the samples each rank saw), because ranks may see different numbers of samples.

import { fail } from '../../shared/errors.js';

export const DEFAULT_BUCKET_BYTES = 25 * 1024 * 1024;

/** Tensor `tensor` (index into the sizes given to planBuckets) lives at bucket[offset, offset+length). */
export interface BucketEntry {
  tensor: number;
  offset: number;
  length: number;
}

export interface Bucket {
  index: number;
  /** Elements (float32) in this bucket: Σ entries' lengths. */
  length: number;
  entries: BucketEntry[];
}

export interface BucketPlan {
  bucketBytes: number;
  /** Element count per tensor, in the order given (reverse layer order: the order backward produces them). */
  sizes: readonly number[];
  buckets: Bucket[];
  /** Largest bucket, elements: the size of the reducer's staging buffers. */
  maxLength: number;
  totalLength: number;
}

/**
 * Greedy, order-preserving: tensors go into the current bucket while it stays ≤ bucketBytes; a tensor larger than
 * a bucket gets a bucket of its own (never split: the ring chunks it anyway). Empty tensors are kept as entries.
 */
export function planBuckets(sizes: readonly number[], bucketBytes: number = DEFAULT_BUCKET_BYTES): BucketPlan {
  if (!Number.isSafeInteger(bucketBytes) || bucketBytes < 4) fail('SGT_COMM', `bucketBytes=${bucketBytes} must be an integer ≥ 4`);
  const cap = Math.floor(bucketBytes / 4);
  const buckets: Bucket[] = [];
  let cur: Bucket = { index: 0, length: 0, entries: [] };
  sizes.forEach((n, tensor) => {
    if (!Number.isSafeInteger(n) || n < 0) fail('SGT_COMM', `gradient ${tensor} has size ${n}; sizes must be non-negative integers (elements)`);
    if (cur.entries.length > 0 && n > 0 && cur.length + n > cap) {
      buckets.push(cur);
      cur = { index: buckets.length, length: 0, entries: [] };
    }
    cur.entries.push({ tensor, offset: cur.length, length: n });
    cur.length += n;
  });
  if (cur.entries.length > 0) buckets.push(cur);
  const maxLength = buckets.reduce((m, b) => Math.max(m, b.length), 0);
  const totalLength = buckets.reduce((s, b) => s + b.length, 0);
  return { bucketBytes, sizes: [...sizes], buckets, maxLength, totalLength };
}

/** planBuckets over the arrays' lengths (the arrays in reverse layer order). */
export function planBucketsFor(grads: readonly Float32Array[], bucketBytes: number = DEFAULT_BUCKET_BYTES): BucketPlan {
  return planBuckets(
    grads.map((g) => g.length),
    bucketBytes,
  );
}

function checkGrads(plan: BucketPlan, grads: readonly Float32Array[]): void {
  if (grads.length !== plan.sizes.length) fail('SGT_COMM', `got ${grads.length} gradient arrays, the bucket plan has ${plan.sizes.length}`);
  grads.forEach((g, i) => {
    if (g.length !== plan.sizes[i]) fail('SGT_COMM', `gradient ${i} has ${g.length} elements, the bucket plan expects ${plan.sizes[i]}`);
  });
}

/** Copies bucket b's tensors into flat[0, bucket.length). */
export function packBucket(plan: BucketPlan, b: number, grads: readonly Float32Array[], flat: Float32Array): void {
  const bucket = plan.buckets[b];
  if (flat.length < bucket.length) fail('SGT_COMM', `bucket ${b} needs ${bucket.length} elements, flat buffer has ${flat.length}`);
  for (const e of bucket.entries) flat.set(grads[e.tensor], e.offset);
}

/** Copies flat[0, bucket.length) back into bucket b's tensors. */
export function unpackBucket(plan: BucketPlan, b: number, flat: Float32Array, grads: Float32Array[]): void {
  const bucket = plan.buckets[b];
  if (flat.length < bucket.length) fail('SGT_COMM', `bucket ${b} needs ${bucket.length} elements, flat buffer has ${flat.length}`);
  for (const e of bucket.entries) grads[e.tensor].set(flat.subarray(e.offset, e.offset + e.length));
}

/** What the reducer needs from a ring (a fake implements it in unit tests). */
export interface AllReducer {
  allReduceSum(data: Float32Array): Promise<void>;
}

/** Let the event loop run (the ring's send/receive loops) between slices of packing work. */
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));
/** Pack/unpack work between yields: ~1 MB of copying (~0.1–0.2 ms) keeps the ring's loops responsive. */
const SLICE_ELEMENTS = 1 << 18;

/**
 * Sums gradients across ranks bucket by bucket, in place in `grads`. Two staging buffers of plan.maxLength floats
 * (allocated once, reused every step): while bucket b is on the wire, bucket b+1 is packed into the other buffer
 * and bucket b-1 unpacked, in slices, so the copies overlap the transfer. The ring guarantees it holds no
 * reference into a buffer once its all-reduce resolved, so reuse is safe.
 */
export class BucketReducer {
  readonly plan: BucketPlan;
  private readonly ring: AllReducer;
  private readonly staging: [Float32Array, Float32Array];

  constructor(ring: AllReducer, plan: BucketPlan) {
    this.ring = ring;
    this.plan = plan;
    this.staging = [new Float32Array(plan.maxLength), new Float32Array(plan.maxLength)];
  }

  async allReduce(grads: Float32Array[]): Promise<void> {
    checkGrads(this.plan, grads);
    const B = this.plan.buckets.length;
    if (B === 0) return;
    const view = (b: number) => this.staging[b % 2].subarray(0, this.plan.buckets[b].length);
    packBucket(this.plan, 0, grads, view(0));
    let inflight = this.ring.allReduceSum(view(0));
    for (let b = 1; b <= B; b++) {
      if (b < B) {
        // Runs while bucket b-1 transfers: the ring's loops get the event loop between slices.
        await yieldToLoop();
        await this.sliced(this.plan.buckets[b].entries, (e, from, to) => view(b).set(grads[e.tensor].subarray(from, to), e.offset + from));
      }
      await inflight;
      if (b < B) inflight = this.ring.allReduceSum(view(b));
      const done = b - 1;
      await this.sliced(this.plan.buckets[done].entries, (e, from, to) =>
        grads[e.tensor].set(view(done).subarray(e.offset + from, e.offset + to), from),
      );
    }
  }

  /** Calls f on [from, to) slices of every entry, yielding to the event loop every SLICE_ELEMENTS elements. */
  private async sliced(entries: BucketEntry[], f: (e: BucketEntry, from: number, to: number) => void): Promise<void> {
    let budget = SLICE_ELEMENTS;
    for (const e of entries) {
      for (let from = 0; from < e.length; ) {
        const to = Math.min(e.length, from + budget);
        f(e, from, to);
        budget -= to - from;
        from = to;
        if (budget === 0) {
          budget = SLICE_ELEMENTS;
          await yieldToLoop();
        }
      }
    }
  }
}
