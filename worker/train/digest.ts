// The chained step digest: digest_s = H(digest_{s−1}, s, checksum of step s's all-reduced buffer). Every replica
// computes it from bitwise-identical reduced buffers, so equal digests at equal steps mean the same steps were applied
// in the same order — the coordinator's "no step applied twice, none lost" check reads it from the step reports.

/** The digest before any step. */
export const DIGEST_ZERO = '0000000000000000';

/** murmur3's 32-bit finaliser. */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A 64-bit non-cryptographic hash of 32-bit words (two independently seeded murmur3-style lanes), as 16 hex digits. */
export function hash64(words: Uint32Array): string {
  let a = 0x9747b28c;
  let b = 0x5bd1e995 ^ words.length;
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    let k = Math.imul(w, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    a ^= Math.imul(k, 0x1b873593);
    a = (a << 13) | (a >>> 19);
    a = (Math.imul(a, 5) + 0xe6546b64) | 0;
    b = Math.imul(b ^ w, 0x01000193);
  }
  const h1 = fmix(a ^ words.length);
  const h2 = fmix((b + h1) | 0);
  return h1.toString(16).padStart(8, '0') + h2.toString(16).padStart(8, '0');
}

/** The next link of the chain: H(previous digest, step, checksum of the reduced Float32 buffer). */
export function nextDigest(previous: string, step: number, reduced: Float32Array): string {
  const checksum = hash64(new Uint32Array(reduced.buffer, reduced.byteOffset, reduced.length));
  const link = new Uint32Array(5);
  link[0] = parseInt(previous.slice(0, 8), 16);
  link[1] = parseInt(previous.slice(8, 16), 16);
  link[2] = step >>> 0;
  link[3] = parseInt(checksum.slice(0, 8), 16);
  link[4] = parseInt(checksum.slice(8, 16), 16);
  return hash64(link);
}

/** The digest as four 16-bit integers (exact in float32), for the state broadcast; and back. */
export function digestToFloats(d: string): number[] {
  return [0, 4, 8, 12].map((i) => parseInt(d.slice(i, i + 4), 16));
}

export function digestFromFloats(f: ArrayLike<number>): string {
  return Array.from({ length: 4 }, (_, i) => Math.round(f[i]).toString(16).padStart(4, '0')).join('');
}
