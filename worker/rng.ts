// The one seeded PRNG of the trainer: mulberry32 streams for initialisation, data order, augmentation and synthetic
// data, whose seeds derive from integer tuples (seed, rank, epoch, step …), so every stream is reproducible.

/** splitmix32-style mixing of several integers into one 32-bit seed (model initialisation streams). */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** murmur3 fmix32 finaliser: a bijective avalanche mix of a uint32. */
export function fmix32(h: number): number {
  h >>>= 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Hash a tuple of integers (any safe integer, negative included) to a uint32 seed.
 * Order matters: deriveSeed(1, 2) !== deriveSeed(2, 1). Each part contributes its low and high 32 bits.
 */
export function deriveSeed(...parts: number[]): number {
  let h = 0x6a09e667;
  for (const p of parts) {
    if (!Number.isSafeInteger(p)) throw new RangeError(`deriveSeed: ${p} is not a safe integer`);
    const lo = p >>> 0;
    const hi = Math.floor(p / 4294967296) >>> 0;
    h = fmix32((h ^ lo) + 0x9e3779b9);
    h = fmix32((h ^ hi) + 0x7f4a7c15);
  }
  return h;
}

/**
 * mulberry32 stream: 2^32 period, good enough for init, shuffles and procedural images (not for cryptography).
 * Two families of draws on the same stream: `float`/`normal` use 53 random bits (two draws) per uniform — the data
 * pipeline; `next`/`normal32`/`truncNormal` use one 32-bit draw per uniform — parameter initialisation, Lanczos start
 * vectors. Both stay as they were, so every seed keeps giving the same data and the same initial weights.
 */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Next uniform uint32. */
  u32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in [0, 1) with 53 random bits (two draws). */
  float(): number {
    const hi = this.u32() >>> 5; // 27 bits
    const lo = this.u32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform in [a, b). */
  uniform(a: number, b: number): number {
    return a + (b - a) * this.float();
  }

  /** Uniform integer in [0, k), k ≥ 1; bias ≤ k / 2^53 (negligible for any array length). */
  int(k: number): number {
    return Math.floor(this.float() * k);
  }

  /** Standard normal (Box–Muller, one value per call). */
  normal(): number {
    const u = 1 - this.float(); // (0, 1]
    const v = this.float();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Uniform in [0, 1) from one 32-bit draw. */
  next(): number {
    return this.u32() / 4294967296;
  }

  /** Standard normal from 32-bit uniforms (Box–Muller, u in (0, 1)). */
  normal32(): number {
    let u = 0;
    while (u === 0) u = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** Normal(0, std²) truncated at ±2 std (timm's trunc_normal_ default bounds for std=0.02 are wider; ±2σ is the usual ViT choice). */
  truncNormal(std: number): number {
    for (;;) {
      const z = this.normal32();
      if (Math.abs(z) <= 2) return z * std;
    }
  }
}
