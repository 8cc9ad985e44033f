// Power spectra of real frames with fft.js: its radix-4 real transform for power-of-two sizes, Bluestein's chirp-z
// on top of it for any other size (torchaudio's log-mel uses n_fft = 400, which fft.js alone cannot do).

import FFT from 'fft.js';

const isPow2 = (n: number): boolean => n >= 2 && (n & (n - 1)) === 0;

/**
 * |X_k|² for k = 0..n/2 of a real frame of length n (float64 throughout). Reuses its scratch buffers, so one
 * instance per thread; not re-entrant.
 */
export class PowerSpectrum {
  readonly n: number;
  /** Bins out: n/2 + 1 (n even) or (n+1)/2. */
  readonly bins: number;
  private readonly fft: FFT;
  private readonly out: Float64Array;
  // Bluestein state (n not a power of two): m ≥ 2n−1 a power of two, chirp w_k = e^{−iπk²/n}, B = FFT(conj chirp).
  private readonly chirp?: Float64Array;
  private readonly bHat?: Float64Array;
  private readonly a?: Float64Array;
  private readonly aHat?: Float64Array;
  private readonly real?: Float64Array;

  constructor(n: number) {
    if (!Number.isInteger(n) || n < 2) throw new RangeError(`PowerSpectrum: size ${n} must be an integer ≥ 2`);
    this.n = n;
    this.bins = Math.floor(n / 2) + 1;
    if (isPow2(n)) {
      this.fft = new FFT(n);
      this.out = new Float64Array(2 * n);
      this.real = new Float64Array(n);
      return;
    }
    let m = 1;
    while (m < 2 * n - 1) m *= 2;
    this.fft = new FFT(m);
    this.out = new Float64Array(2 * m);
    this.chirp = new Float64Array(2 * n);
    for (let k = 0; k < n; k++) {
      // k² mod 2n keeps the angle small and exact for large k.
      const ang = (Math.PI * ((k * k) % (2 * n))) / n;
      this.chirp[2 * k] = Math.cos(ang);
      this.chirp[2 * k + 1] = -Math.sin(ang);
    }
    const b = new Float64Array(2 * m); // b_k = conj(w_k) for |k| < n, wrapped around m
    for (let k = 0; k < n; k++) {
      b[2 * k] = this.chirp[2 * k]!;
      b[2 * k + 1] = -this.chirp[2 * k + 1]!;
      if (k > 0) {
        b[2 * (m - k)] = b[2 * k]!;
        b[2 * (m - k) + 1] = b[2 * k + 1]!;
      }
    }
    this.bHat = new Float64Array(2 * m);
    this.fft.transform(this.bHat, b);
    this.a = new Float64Array(2 * m);
    this.aHat = new Float64Array(2 * m);
  }

  /**
   * Two frames for the price of one (n not a power of two): transform z = a + i·b, then with Z the DFT of z,
   * A_k = (Z_k + conj Z_{n−k}) / 2 and B_k = (Z_k − conj Z_{n−k}) / 2i. Power-of-two sizes just call compute twice.
   */
  computePair(a: ArrayLike<number>, b: ArrayLike<number>, powerA: Float64Array, powerB: Float64Array): void {
    if (!this.chirp) {
      this.compute(a, powerA);
      this.compute(b, powerB);
      return;
    }
    const z = this.bluestein(a, b);
    const n = this.n;
    for (let k = 0; k < this.bins; k++) {
      const j = (n - k) % n;
      const zr = z[2 * k]!, zi = z[2 * k + 1]!, wr = z[2 * j]!, wi = -z[2 * j + 1]!; // w = conj Z_{n−k}
      powerA[k] = ((zr + wr) ** 2 + (zi + wi) ** 2) / 4;
      powerB[k] = ((zi - wi) ** 2 + (zr - wr) ** 2) / 4;
    }
  }

  /** DFT of re + i·im via Bluestein: returns the scratch array holding X_k (interleaved) for k < n. */
  private bluestein(re: ArrayLike<number>, im: ArrayLike<number> | null): Float64Array {
    const n = this.n;
    const a = this.a!, aHat = this.aHat!, w = this.chirp!, bHat = this.bHat!, out = this.out;
    a.fill(0);
    for (let j = 0; j < n; j++) {
      const xr = re[j]!, xi = im ? im[j]! : 0;
      a[2 * j] = xr * w[2 * j]! - xi * w[2 * j + 1]!;
      a[2 * j + 1] = xr * w[2 * j + 1]! + xi * w[2 * j]!;
    }
    this.fft.transform(aHat, a);
    for (let i = 0; i < aHat.length; i += 2) {
      const r = aHat[i]! * bHat[i]! - aHat[i + 1]! * bHat[i + 1]!;
      const q = aHat[i]! * bHat[i + 1]! + aHat[i + 1]! * bHat[i]!;
      aHat[i] = r;
      aHat[i + 1] = q;
    }
    this.fft.inverseTransform(out, aHat); // fft.js divides by m here
    // X_k = w_k · c_k
    for (let k = 0; k < n; k++) {
      const cr = out[2 * k]!, ci = out[2 * k + 1]!;
      out[2 * k] = cr * w[2 * k]! - ci * w[2 * k + 1]!;
      out[2 * k + 1] = cr * w[2 * k + 1]! + ci * w[2 * k]!;
    }
    return out;
  }

  /** Writes |X_k|² (k = 0..bins−1) of frame[0..n) into power[0..bins). */
  compute(frame: ArrayLike<number>, power: Float64Array): void {
    const n = this.n;
    if (!this.chirp) {
      const r = this.real!;
      for (let i = 0; i < n; i++) r[i] = frame[i]!;
      this.fft.realTransform(this.out, r);
      for (let k = 0; k < this.bins; k++) power[k] = this.out[2 * k]! ** 2 + this.out[2 * k + 1]! ** 2;
      return;
    }
    // X_k = w_k · Σ_j (x_j w_j) conj(w_{k−j}): a circular convolution of length m done with two FFTs.
    const out = this.bluestein(frame, null);
    for (let k = 0; k < this.bins; k++) power[k] = out[2 * k]! ** 2 + out[2 * k + 1]! ** 2;
  }
}
