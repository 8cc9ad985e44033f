// One utterance from file to model input, as a data worker thread does it: read, decode (exact, MD5-checked), check
// 16 kHz mono and the indexed length, features, per-utterance normalisation, SpecAugment. Failures come back as a
// skip reason with a message, never as an exception, so the loader can count and log them.

import { promises as fs } from 'node:fs';
import { FlacError, formatMismatch, type FlacReader } from '../audio/flac.js';
import { computeFeatures, melAxisOf, type FeatureOptions, type Features } from '../audio/features.js';
import { specAugment, type Mask, type SpecAugmentOptions } from '../audio/specaugment.js';
import type { SkipReason } from './scan.js';

export interface UtteranceOptions {
  features: FeatureOptions;
  /** Training only; null/undefined for evaluation. */
  specAugment?: SpecAugmentOptions | null;
}

export type LoadedUtterance =
  | { ok: true; features: Features; masks: Mask[] }
  | { ok: false; reason: SkipReason; message: string };

/**
 * Load one utterance. `expectedSamples` is the index's duration: a file that decodes to another length changed
 * since indexing (or is damaged) and is skipped, since batches were planned from that length. `seed` drives
 * SpecAugment (see specAugmentSeed).
 */
export async function loadUtterance(reader: FlacReader, file: string, expectedSamples: number, o: UtteranceOptions, seed = 0): Promise<LoadedUtterance> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (e) {
    return { ok: false, reason: 'unreadable_flac', message: `${file}: cannot read (${(e as Error).message})` };
  }
  let samples: Int16Array;
  try {
    const a = await reader.decode(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    const bad = formatMismatch(a.info);
    if (bad) return { ok: false, reason: 'unreadable_flac', message: `${file}: ${bad}` };
    samples = a.samples;
  } catch (e) {
    const kind = e instanceof FlacError && e.kind === 'truncated' ? 'truncated_flac' : 'unreadable_flac';
    return { ok: false, reason: kind, message: `${file}: ${(e as Error).message}` };
  }
  if (samples.length !== expectedSamples) {
    return { ok: false, reason: 'truncated_flac', message: `${file}: ${samples.length} samples, the index says ${expectedSamples} (file changed since indexing; rebuild the index)` };
  }
  const features = computeFeatures(samples, o.features);
  const masks = o.specAugment ? specAugment(features, o.specAugment, seed, melAxisOf(o.features)) : [];
  return { ok: true, features, masks };
}
