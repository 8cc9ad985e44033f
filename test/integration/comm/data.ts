// Deterministic test data for the ring fixtures: rank r's array for a case is a pure function of (seed, rank), so the
// test process can rebuild every input and compute a float64 reference without shipping the inputs around.

/** xorshift32 stream mapped to [0.5, 1.5): positive values keep a plain relative-error check meaningful (no cancellation). */
export function fillF32(out: Float32Array, seed: number, rank: number): Float32Array {
  let x = (seed * 2654435761 + rank * 40503 + 1) >>> 0 || 1;
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = 0.5 + x / 4294967296;
  }
  return out;
}

export function fillU8(out: Uint8Array, seed: number, rank: number): Uint8Array {
  let x = (seed * 2246822519 + rank * 3266489917 + 7) >>> 0 || 1;
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** Float64 sum over ranks of the fixture inputs, shape (length,). */
export function referenceSum(length: number, seed: number, worldSize: number): Float64Array {
  const ref = new Float64Array(length);
  const tmp = new Float32Array(length);
  for (let r = 0; r < worldSize; r++) {
    fillF32(tmp, seed, r);
    for (let i = 0; i < length; i++) ref[i] += tmp[i];
  }
  return ref;
}
