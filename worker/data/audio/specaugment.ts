// SpecAugment (Park et al., 2019) without time warping, as the σReparam speech recipe uses it: frequency and time
// masks drawn from a seed, applied in place to normalised features (masked values become 0, the utterance mean).

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
  const int = (k: keyof SpecAugmentOptions, hi: number): void => {
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
}

/** The seed for one utterance in one epoch: the same (seed, epoch, utterance) always gets the same masks. */
export const specAugmentSeed = (seed: number, epoch: number, utterance: number): number => deriveSeed(seed, 0x5bec, epoch, utterance);

/**
 * Draw and apply the masks in place; returns them (for tests and diagnostics). Frequency mask: f uniform in
 * [0, min(F, bins)], f0 uniform in [0, bins − f]. Time mask: t uniform in [0, min(T, floor(p·frames))], t0 uniform in
 * [0, frames − t]. Masks may overlap; a width of 0 masks nothing. Fill value 0 = the mean after normalizeUtterance.
 */
export function specAugment(f: Features, o: SpecAugmentOptions, seed: number): Mask[] {
  checkSpecAugment(o);
  const { data, frames, bins } = f;
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
