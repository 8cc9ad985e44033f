// SpecAugment (Park et al., 2019) without time warping, as the σReparam speech recipe uses it: frequency and time
// masks drawn from a seed, applied in place to normalised features (masked values become 0, the utterance mean);
// optionally preceded by a per-utterance frequency warp of the mel bins (VTLP, Jaitly & Hinton 2013).

import { SigmaError } from '../../../shared/errors.js';
import { Rng, deriveSeed } from '../../rng.js';
import type { Features } from './features.js';

export interface SpecAugmentOptions {
  /** Frequency masks per utterance (mF; paper recipe 2). */
  freqMasks: number;
  /** Largest frequency-mask width F: each width is uniform in [0, F] bins (recipe 30). */
  freqWidth: number;
  /** Time masks per utterance (mT; recipe 10). */
  timeMasks: number;
  /** Largest time-mask width T in frames (recipe 50). */
  timeWidth: number;
  /** Largest fraction p of the utterance one time mask may cover: width ≤ floor(p·frames) (recipe 0.1). */
  maxTimeFraction: number;
  /**
   * Vocal tract length perturbation: the largest |α − 1| of a per-utterance frequency warp f → α·f of the mel bins,
   * α uniform in [1 − w, 1 + w] (0 or absent: off). It simulates other speakers' formant positions.
   */
  freqWarp?: number;
}

/**
 * The frequency axis of [frames × bins] features: bin b is centred at toHz(lo + (b + 1)·(hi − lo)/(bins + 1)), with lo,
 * hi the band edges lowHz, highHz in mel (how torchaudio's and Kaldi's triangular mel banks place their centres).
 */
export interface MelAxis {
  toMel(hz: number): number;
  toHz(mel: number): number;
  lowHz: number;
  highHz: number;
}

/** The recipe of the σReparam paper's speech experiments (after wav2letter/CAPE): 2 × F 30, 10 × T 50, p 0.1. */
export const SPEC_AUGMENT_RECIPE: Readonly<SpecAugmentOptions> = { freqMasks: 2, freqWidth: 30, timeMasks: 10, timeWidth: 50, maxTimeFraction: 0.1 };

/** One applied mask: [start, start + width) along its axis. */
export interface Mask {
  axis: 'freq' | 'time';
  start: number;
  width: number;
}

export function checkSpecAugment(o: SpecAugmentOptions): void {
  const int = (k: Exclude<keyof SpecAugmentOptions, 'freqWarp'>, hi: number): void => {
    const v = o[k];
    if (!Number.isInteger(v) || v < 0 || v > hi) throw new SigmaError('SGT_DATA_INVALID', `SpecAugment ${k}=${v} must be an integer in [0, ${hi}]`);
  };
  int('freqMasks', 64);
  int('freqWidth', 1024);
  int('timeMasks', 1024);
  int('timeWidth', 100000);
  if (!(o.maxTimeFraction >= 0 && o.maxTimeFraction <= 1)) {
    throw new SigmaError('SGT_DATA_INVALID', `SpecAugment maxTimeFraction=${o.maxTimeFraction} must be in [0, 1]`);
  }
  if (o.freqWarp !== undefined && !(o.freqWarp >= 0 && o.freqWarp < 0.5)) {
    throw new SigmaError('SGT_DATA_INVALID', `SpecAugment freqWarp=${o.freqWarp} (data.librispeech.specAugment.freqWarp) must be in [0, 0.5), e.g. 0.1`);
  }
}

/** The warp factor α of one utterance: uniform in [1 − w, 1 + w] from its own stream, so the masks' draws stay as without it. */
export function drawWarp(seed: number, w: number): number {
  return 1 + w * (2 * new Rng(deriveSeed(seed, 0x7a4b)).float() - 1);
}

/**
 * Frequency warp in place (VTLP on mel bins): bin b, centred at f_b Hz, takes the value the unwarped features have at
 * frequency f_b / α, i.e. at the fractional bin p_b = (mel(f_b / α) − lo)/(hi − lo)·(bins + 1) − 1, linearly
 * interpolated and clamped to [0, bins − 1]. α > 1 moves spectral content up (a shorter vocal tract), α < 1 down.
 */
export function warpFrequency(f: Features, alpha: number, axis: MelAxis): void {
  const { data, frames, bins } = f;
  if (alpha === 1 || frames === 0) return;
  const lo = axis.toMel(axis.lowHz);
  const hi = axis.toMel(axis.highHz);
  const src = new Int32Array(bins);
  const frac = new Float64Array(bins);
  for (let b = 0; b < bins; b++) {
    const hz = axis.toHz(lo + ((b + 1) * (hi - lo)) / (bins + 1));
    const p = Math.min(bins - 1, Math.max(0, ((axis.toMel(hz / alpha) - lo) / (hi - lo)) * (bins + 1) - 1));
    src[b] = Math.min(bins - 2, Math.floor(p));
    frac[b] = p - src[b]!;
  }
  const row = new Float64Array(bins);
  for (let t = 0; t < frames; t++) {
    const o = t * bins;
    for (let b = 0; b < bins; b++) row[b] = data[o + b]!;
    for (let b = 0; b < bins; b++) data[o + b] = row[src[b]!]! * (1 - frac[b]!) + row[src[b]! + 1]! * frac[b]!;
  }
}

/** The seed for one utterance in one epoch: the same (seed, epoch, utterance) always gets the same masks. */
export const specAugmentSeed = (seed: number, epoch: number, utterance: number): number => deriveSeed(seed, 0x5bec, epoch, utterance);

/**
 * Draw and apply the masks in place; returns them (for tests and diagnostics). Frequency mask: f uniform in
 * [0, min(F, bins)], f0 uniform in [0, bins − f]. Time mask: t uniform in [0, min(T, floor(p·frames))], t0 uniform in
 * [0, frames − t]. Masks may overlap; a width of 0 masks nothing. Fill value 0 = the mean after normalizeUtterance.
 * With freqWarp > 0 the warp (drawWarp, warpFrequency on `axis`) comes first.
 */
export function specAugment(f: Features, o: SpecAugmentOptions, seed: number, axis?: MelAxis): Mask[] {
  checkSpecAugment(o);
  const { data, frames, bins } = f;
  if (o.freqWarp) {
    if (!axis) throw new Error('specAugment: freqWarp needs the features\' mel axis');
    warpFrequency(f, drawWarp(seed, o.freqWarp), axis);
  }
  const rng = new Rng(seed);
  const masks: Mask[] = [];
  const fMax = Math.min(o.freqWidth, bins);
  for (let i = 0; i < o.freqMasks; i++) {
    const width = rng.int(fMax + 1);
    const start = rng.int(bins - width + 1);
    masks.push({ axis: 'freq', start, width });
    for (let t = 0; t < frames; t++) data.fill(0, t * bins + start, t * bins + start + width);
  }
  const tMax = Math.min(o.timeWidth, Math.floor(o.maxTimeFraction * frames));
  for (let i = 0; i < o.timeMasks; i++) {
    const width = rng.int(tMax + 1);
    const start = rng.int(frames - width + 1);
    masks.push({ axis: 'time', start, width });
    data.fill(0, start * bins, (start + width) * bins);
  }
  return masks;
}
