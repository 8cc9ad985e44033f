// Fixed sinusoidal position encodings for token sequences (Vaswani et al. 2017, §3.5), computed on the host.

/**
 * Rows `offset … offset+length−1` of the table PE[pos, 2i] = sin(pos / 10000^{2i/d}), PE[pos, 2i+1] =
 * cos(pos / 10000^{2i/d}): [length, dim] row-major. Positions count from 0 (the BOS-shifted first target token).
 */
export function sinusoidalPositions(length: number, dim: number, offset = 0): Float32Array {
  if (dim % 2 !== 0) throw new Error(`sinusoidal positions need an even dimension, got ${dim}`);
  const out = new Float32Array(length * dim);
  for (let p = 0; p < length; p++) {
    const pos = p + offset;
    for (let i = 0; i < dim / 2; i++) {
      const angle = pos / Math.pow(10000, (2 * i) / dim);
      out[p * dim + 2 * i] = Math.sin(angle);
      out[p * dim + 2 * i + 1] = Math.cos(angle);
    }
  }
  return out;
}
