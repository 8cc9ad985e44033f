// Speech features as plain functions of Int16 samples → Float32Array [frames × bins], for the data worker threads:
// Kaldi-compatible fbank (torchaudio.compliance.kaldi.fbank) and torchaudio-style log-mel (MelSpectrogram), per-
// utterance mean/variance normalisation. Computed in float64, stored as float32.

import { SigmaError } from '../../../shared/errors.js';
import { PowerSpectrum } from './fft.js';
import type { MelAxis } from './specaugment.js';

export type FeatureKind = 'kaldi-fbank' | 'logmel';
export const FEATURE_KINDS: readonly FeatureKind[] = ['kaldi-fbank', 'logmel'];

/** Both kinds share these: 16 kHz input, 25 ms window (400 samples), 10 ms shift (160), 80 mel bins. */
export interface FeatureOptions {
  kind: FeatureKind;
  /** Mel bins (default 80). */
  bins?: number;
  /**
   * Multiplier applied to the int16 samples first. Default: 1 for kaldi-fbank (Kaldi's int16 scale), 1/32768 for
   * logmel (torchaudio.load's [-1, 1) scale). In the log domain a scale c shifts every unfloored value by 2·ln c.
   */
  scale?: number;
  /** logmel only: 'slaney' (default, as the issue asks) or 'htk' (torchaudio MelSpectrogram's own default). */
  melScale?: MelScale;
  /** Normalise each bin over the utterance's frames (default true); see normalizeUtterance. */
  normalize?: boolean;
}

export const SAMPLE_RATE = 16000;
const WIN = 400; // 25 ms
const HOP = 160; // 10 ms

/** Frames an utterance of n samples yields: snip-edges for Kaldi (0 when n < 400), centred for log-mel. */
export function featureFrames(n: number, kind: FeatureKind): number {
  if (kind === 'kaldi-fbank') return n < WIN ? 0 : 1 + Math.floor((n - WIN) / HOP);
  return n <= WIN / 2 ? 0 : 1 + Math.floor(n / HOP); // reflect padding of 200 needs n > 200
}

/** Features of one utterance: data is [frames × bins] row-major (frame t, bin b at t·bins + b). */
export interface Features {
  data: Float32Array;
  frames: number;
  bins: number;
}

/** One PowerSpectrum per size and thread: compute() is synchronous, so sharing it within a thread is safe. */
const spectra = new Map<number, PowerSpectrum>();
function spectrum(n: number): PowerSpectrum {
  let ps = spectra.get(n);
  if (!ps) spectra.set(n, (ps = new PowerSpectrum(n)));
  return ps;
}

// ---- Kaldi fbank ---------------------------------------------------------------------------------------------------

const FLT_EPSILON = 1.1920928955078125e-7; // numeric_limits<float>::epsilon(), Kaldi's floor before log
const kaldiMel = (hz: number): number => 1127 * Math.log(1 + hz / 700);
const kaldiMelToHz = (mel: number): number => 700 * (Math.exp(mel / 1127) - 1);

export interface SparseBank {
  /** For bin b: weights of FFT bins first[b] .. first[b] + w[b].length − 1. */
  first: Int32Array;
  w: Float64Array[];
}

function sparse(dense: (b: number, k: number) => number, bins: number, fftBins: number): SparseBank {
  const first = new Int32Array(bins);
  const w: Float64Array[] = [];
  for (let b = 0; b < bins; b++) {
    const row = Array.from({ length: fftBins }, (_, k) => dense(b, k));
    let lo = row.findIndex((v) => v > 0);
    if (lo < 0) lo = 0;
    let hi = row.length - 1;
    while (hi > lo && !(row[hi]! > 0)) hi--;
    first[b] = lo;
    w.push(Float64Array.from(row.slice(lo, hi + 1)));
  }
  return { first, w };
}

const kaldiBanks = new Map<number, SparseBank>();

/**
 * Kaldi's triangular mel bins (kaldi.get_mel_banks with low 20 Hz, high = Nyquist, no VTLN) over the 256 lowest
 * bins of a 512-point FFT; Kaldi's mel scale 1127·ln(1 + f/700), triangles equally spaced in mel, the Nyquist bin
 * gets weight 0.
 */
export function kaldiMelBank(bins: number): SparseBank {
  let bank = kaldiBanks.get(bins);
  if (bank) return bank;
  const padded = 512;
  const fftBins = padded / 2; // the Nyquist bin (index 256) is left out, as Kaldi does
  const binWidth = SAMPLE_RATE / padded;
  const lo = kaldiMel(20), hi = kaldiMel(SAMPLE_RATE / 2);
  const delta = (hi - lo) / (bins + 1);
  bank = sparse(
    (b, k) => {
      const left = lo + b * delta, center = lo + (b + 1) * delta, right = lo + (b + 2) * delta;
      const mel = kaldiMel(binWidth * k);
      return Math.max(0, Math.min((mel - left) / (center - left), (right - mel) / (right - center)));
    },
    bins,
    fftBins,
  );
  kaldiBanks.set(bins, bank);
  return bank;
}

let povey: Float64Array | null = null;
/** Povey window: a symmetric Hann window raised to 0.85. */
function poveyWindow(): Float64Array {
  if (!povey) {
    povey = new Float64Array(WIN);
    for (let i = 0; i < WIN; i++) povey[i] = (0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (WIN - 1))) ** 0.85;
  }
  return povey;
}

/**
 * Kaldi-compatible log mel filterbank, as torchaudio.compliance.kaldi.fbank(num_mel_bins, frame_length 25,
 * frame_shift 10, dither 0, energy_floor 0, window povey, preemphasis 0.97, remove_dc_offset, snip_edges,
 * round_to_power_of_two) on samples × scale (1: Kaldi's int16 scale): per 400-sample frame, subtract the frame mean, pre-emphasise
 * (x_j −= 0.97·x_{j−1}, x_0 −= 0.97·x_0), window, zero-pad to 512, |FFT|², mel bins, ln(max(e, FLT_EPSILON)).
 */
export function kaldiFbank(samples: Int16Array, bins = 80, scale = 1): Features {
  const frames = featureFrames(samples.length, 'kaldi-fbank');
  const data = new Float32Array(frames * bins);
  const bank = kaldiMelBank(bins);
  const win = poveyWindow();
  const ps = spectrum(512);
  const frame = new Float64Array(512);
  const power = new Float64Array(ps.bins);
  for (let t = 0; t < frames; t++) {
    const s = t * HOP;
    let mean = 0;
    for (let j = 0; j < WIN; j++) mean += samples[s + j]! * scale;
    mean /= WIN;
    for (let j = 0; j < WIN; j++) frame[j] = samples[s + j]! * scale - mean;
    for (let j = WIN - 1; j > 0; j--) frame[j] = frame[j]! - 0.97 * frame[j - 1]!;
    frame[0] = frame[0]! - 0.97 * frame[0]!;
    for (let j = 0; j < WIN; j++) frame[j] = frame[j]! * win[j]!;
    frame.fill(0, WIN);
    ps.compute(frame, power);
    melLog(power, bank, data, t * bins, (e) => Math.log(Math.max(e, FLT_EPSILON)));
  }
  return { data, frames, bins };
}

function melLog(power: Float64Array, bank: SparseBank, out: Float32Array, off: number, log: (e: number) => number): void {
  for (let b = 0; b < bank.w.length; b++) {
    const w = bank.w[b]!;
    const k0 = bank.first[b]!;
    let e = 0;
    for (let i = 0; i < w.length; i++) e += w[i]! * power[k0 + i]!;
    out[off + b] = log(e);
  }
}

// ---- torchaudio log-mel --------------------------------------------------------------------------------------------

/** Slaney's mel scale (librosa's default, torchaudio mel_scale='slaney'): linear below 1 kHz, logarithmic above. */
export function slaneyHzToMel(hz: number): number {
  const fSp = 200 / 3;
  return hz >= 1000 ? 1000 / fSp + Math.log(hz / 1000) / (Math.log(6.4) / 27) : hz / fSp;
}
export function slaneyMelToHz(mel: number): number {
  const fSp = 200 / 3;
  const minLogMel = 1000 / fSp;
  return mel >= minLogMel ? 1000 * Math.exp((Math.log(6.4) / 27) * (mel - minLogMel)) : fSp * mel;
}

/** HTK's mel scale (torchaudio's default mel_scale): 2595·log10(1 + f/700). */
export const htkHzToMel = (hz: number): number => 2595 * Math.log10(1 + hz / 700);
export const htkMelToHz = (mel: number): number => 700 * (10 ** (mel / 2595) - 1);

export type MelScale = 'slaney' | 'htk';
const torchBanks = new Map<string, SparseBank>();

/**
 * torchaudio.functional.melscale_fbanks(n_freqs 201, f_min 0, f_max 8000, n_mels, 16000, norm None, melScale):
 * FFT bin k sits at 40·k Hz (linspace 0..8000), triangle b rises from f[b] to f[b+1] and falls to f[b+2], where f
 * are n_mels + 2 points equally spaced in mel between 0 and 8 kHz. No area normalisation.
 */
export function torchMelBank(bins: number, scale: MelScale = 'slaney'): SparseBank {
  const key = `${scale}:${bins}`;
  let bank = torchBanks.get(key);
  if (bank) return bank;
  const [toMel, toHz] = scale === 'slaney' ? [slaneyHzToMel, slaneyMelToHz] : [htkHzToMel, htkMelToHz];
  const nFreqs = 201;
  const mMax = toMel(SAMPLE_RATE / 2);
  const f = Array.from({ length: bins + 2 }, (_, i) => toHz((mMax * i) / (bins + 1)));
  bank = sparse(
    (b, k) => {
      const hz = (k * (SAMPLE_RATE / 2)) / (nFreqs - 1);
      const down = (hz - f[b]!) / (f[b + 1]! - f[b]!);
      const up = (f[b + 2]! - hz) / (f[b + 2]! - f[b + 1]!);
      return Math.max(0, Math.min(down, up));
    },
    bins,
    nFreqs,
  );
  torchBanks.set(key, bank);
  return bank;
}

let hann: Float64Array | null = null;
/** Periodic Hann window of 400 (torch.hann_window default). */
function hannWindow(): Float64Array {
  if (!hann) {
    hann = new Float64Array(WIN);
    for (let i = 0; i < WIN; i++) hann[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / WIN);
  }
  return hann;
}

/**
 * torchaudio-style log-mel: MelSpectrogram(16000, n_fft 400, hop 160, n_mels, power 2, center, pad_mode reflect,
 * mel_scale, norm None) on samples × scale (default 1/32768), then ln(x + 1e-6). Frame t covers padded[160t, 160t + 400) where
 * padded is the signal reflected by 200 at both ends (without repeating the edge sample).
 */
export function logMel(samples: Int16Array, bins = 80, melScale: MelScale = 'slaney', scale = 1 / 32768): Features {
  const n = samples.length;
  const frames = featureFrames(n, 'logmel');
  const data = new Float32Array(frames * bins);
  const bank = torchMelBank(bins, melScale);
  const win = hannWindow();
  const ps = spectrum(WIN);
  const frame = new Float64Array(WIN);
  const power = new Float64Array(ps.bins);
  const pad = WIN / 2;
  const at = (i: number): number => {
    // index into the reflect-padded signal (−200 ≤ i < n + 200 after shifting)
    const j = i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i;
    return samples[j]! * scale;
  };
  const frameB = new Float64Array(WIN);
  const powerB = new Float64Array(ps.bins);
  const fill = (dst: Float64Array, t: number): void => {
    const s = t * HOP - pad;
    for (let j = 0; j < WIN; j++) dst[j] = at(s + j) * win[j]!;
  };
  // Two frames per transform (see PowerSpectrum.computePair).
  for (let t = 0; t < frames; t += 2) {
    fill(frame, t);
    if (t + 1 < frames) {
      fill(frameB, t + 1);
      ps.computePair(frame, frameB, power, powerB);
      melLog(powerB, bank, data, (t + 1) * bins, (e) => Math.log(e + 1e-6));
    } else {
      ps.compute(frame, power);
    }
    melLog(power, bank, data, t * bins, (e) => Math.log(e + 1e-6));
  }
  return { data, frames, bins };
}

// ---- normalisation and dispatch ------------------------------------------------------------------------------------

/**
 * Per-utterance mean/variance normalisation, in place: for each bin b, x[t,b] ← (x[t,b] − μ_b) / sqrt(σ²_b + eps)
 * with μ_b, σ²_b the mean and (population) variance over the utterance's frames. After it every bin has mean 0, so a
 * SpecAugment mask filled with 0 holds the utterance's mean.
 */
export function normalizeUtterance(f: Features, eps = 1e-5): Features {
  const { data, frames, bins } = f;
  if (frames === 0) return f;
  for (let b = 0; b < bins; b++) {
    let mean = 0;
    for (let t = 0; t < frames; t++) mean += data[t * bins + b]!;
    mean /= frames;
    let v = 0;
    for (let t = 0; t < frames; t++) v += (data[t * bins + b]! - mean) ** 2;
    const inv = 1 / Math.sqrt(v / frames + eps);
    for (let t = 0; t < frames; t++) data[t * bins + b] = (data[t * bins + b]! - mean) * inv;
  }
  return f;
}

/** Where the bins of these features sit in frequency (for a frequency warp): Kaldi's mel from 20 Hz, or torchaudio's from 0, to 8 kHz. */
export function melAxisOf(o: FeatureOptions): MelAxis {
  if (o.kind === 'kaldi-fbank') return { toMel: kaldiMel, toHz: kaldiMelToHz, lowHz: 20, highHz: SAMPLE_RATE / 2 };
  const [toMel, toHz] = (o.melScale ?? 'slaney') === 'slaney' ? [slaneyHzToMel, slaneyMelToHz] : [htkHzToMel, htkMelToHz];
  return { toMel, toHz, lowHz: 0, highHz: SAMPLE_RATE / 2 };
}

/** The feature function the loader calls in its threads: Int16 samples (16 kHz mono) → [frames × bins]. */
export function computeFeatures(samples: Int16Array, o: FeatureOptions): Features {
  const bins = o.bins ?? 80;
  let f: Features;
  if (!Number.isInteger(bins) || bins < 4 || bins > 128) throw new SigmaError('SGT_DATA_INVALID', `feature bins=${bins} must be an integer in [4, 128]`);
  if (o.scale !== undefined && !(o.scale > 0 && Number.isFinite(o.scale))) throw new SigmaError('SGT_DATA_INVALID', `feature scale=${o.scale} must be finite and > 0`);
  if (o.melScale !== undefined && o.melScale !== 'slaney' && o.melScale !== 'htk') {
    throw new SigmaError('SGT_DATA_INVALID', `feature melScale '${String(o.melScale)}' is not one of slaney, htk`);
  }
  if (o.kind === 'kaldi-fbank') f = kaldiFbank(samples, bins, o.scale ?? 1);
  else if (o.kind === 'logmel') f = logMel(samples, bins, o.melScale ?? 'slaney', o.scale ?? 1 / 32768);
  else throw new SigmaError('SGT_DATA_INVALID', `feature kind '${String(o.kind)}' is not one of ${FEATURE_KINDS.join(', ')}`);
  return (o.normalize ?? true) ? normalizeUtterance(f) : f;
}
