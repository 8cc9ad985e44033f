// Pure index arithmetic of the ring all-reduce: how an array of L elements splits into N segments of M chunks,
// and which segment a rank sends / receives at each of the 2(N-1) steps. No sockets here, so it is unit-tested alone.

/** Half-open element range [start, end). */
export interface Span {
  start: number;
  end: number;
}

/** Segment k of an L-element array cut into N near-equal parts: [floor(kL/N), floor((k+1)L/N)). */
export function segmentSpan(length: number, worldSize: number, k: number): Span {
  return { start: Math.floor((k * length) / worldSize), end: Math.floor(((k + 1) * length) / worldSize) };
}

/**
 * Chunks per segment: M = ceil(segBytes / chunkBytes), at least 1 — the same M for every segment, so (step s,
 * chunk j) names one message on every rank. No extra cutting of small segments: on the 2-core build machine the
 * ring is CPU-bound, and cutting 0.5–2 MB segments into 64–256 KB chunks for a deeper pipeline cost 20–60 % more
 * CPU per byte (per-message overhead, context switches) and lowered bandwidth. Pass a smaller chunkBytes where
 * latency, not CPU, limits (a real network with idle cores).
 */
export function chunksPerSegment(length: number, worldSize: number, bytesPerElement: number, chunkBytes: number): number {
  const segBytes = Math.ceil(length / worldSize) * bytesPerElement;
  return Math.max(1, Math.ceil(segBytes / chunkBytes));
}

/** Chunk j of segment k (may be empty when the segment has fewer than M elements). */
export function chunkSpan(length: number, worldSize: number, chunks: number, k: number, j: number): Span {
  const seg = segmentSpan(length, worldSize, k);
  const n = seg.end - seg.start;
  return { start: seg.start + Math.floor((j * n) / chunks), end: seg.start + Math.floor(((j + 1) * n) / chunks) };
}

export const mod = (a: number, n: number): number => ((a % n) + n) % n;

/**
 * Segment that `rank` receives at step s of the all-reduce (0 ≤ s < 2(N-1)).
 * Reduce-scatter (s < N-1): segment r-s-1, added to the partial sum; after step N-2 rank r owns segment r+1.
 * All-gather (t = s-(N-1)): segment r-t, the owner's final value, copied.
 * The segment sent at step s is the one received at step s-1 (or segment r at step 0), so sends of step s+1
 * depend only on receives of step s, chunk by chunk.
 */
export function recvSegment(rank: number, worldSize: number, step: number): number {
  return step < worldSize - 1 ? mod(rank - step - 1, worldSize) : mod(rank - (step - (worldSize - 1)), worldSize);
}

export function sendSegment(rank: number, worldSize: number, step: number): number {
  return step === 0 ? rank : recvSegment(rank, worldSize, step - 1);
}
