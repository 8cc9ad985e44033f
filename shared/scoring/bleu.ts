// BLEU as sacreBLEU 2.6.0 computes it (corpus and sentence level, its four smoothing methods), with the
// sufficient statistics exposed as plain numbers so ranks can sum them and score once.
import { SigmaError } from '../errors.js';
import { bleuTokenizer, type BleuTokenizerName, type Tokenizer } from './tokenizers.js';
import { pyRstrip, pySplit } from './text.js';

export const BLEU_MAX_ORDER = 4;
export const BLEU_SMOOTH_METHODS = ['exp', 'floor', 'add-k', 'none'] as const;
export type BleuSmoothMethod = (typeof BLEU_SMOOTH_METHODS)[number];
/** sacreBLEU's defaults for the smoothing value (Chen & Cherry 2014): floor 0.1, add-k 1. */
export const BLEU_SMOOTH_DEFAULTS: Readonly<Record<BleuSmoothMethod, number | undefined>> = { exp: undefined, floor: 0.1, 'add-k': 1, none: undefined };

export interface BleuOptions {
  /** Default '13a'. */
  tokenize?: BleuTokenizerName;
  lowercase?: boolean;
  /** Default 4. */
  maxOrder?: number;
}

export interface BleuScoreOptions {
  /** Default 'exp' (sacreBLEU's default for corpus and sentence BLEU). */
  smooth?: BleuSmoothMethod;
  /** For floor and add-k; default BLEU_SMOOTH_DEFAULTS[smooth]. */
  smoothValue?: number;
  /** Average only over the orders that have n-grams (sacreBLEU: off for corpus BLEU, on for sentence BLEU). */
  effectiveOrder?: boolean;
}

/** Sufficient statistics of BLEU; every field is a sum over segments, so statistics of shards add up. */
export interface BleuStats {
  /** Hypothesis tokens. */
  sysLen: number;
  /** Closest reference length per segment (ties to the shorter), summed. */
  refLen: number;
  /** Clipped n-gram matches per order, [maxOrder]. */
  counts: number[];
  /** Hypothesis n-grams per order, [maxOrder]. */
  totals: number[];
}

export interface BleuScore extends BleuStats {
  /** 0–100. */
  score: number;
  /** Smoothed precisions in percent, [maxOrder]. */
  precisions: number[];
  bp: number;
}

/** Lowercasing (optional) and tokenization, as sacreBLEU's BLEU._preprocess_segment: rstrip first. */
function preprocessor(opts: BleuOptions): (s: string) => string {
  const tok: Tokenizer = bleuTokenizer(opts.tokenize ?? '13a');
  const lower = opts.lowercase ?? false;
  return (s) => tok(pyRstrip(lower ? s.toLowerCase() : s));
}

/** All n-grams of orders 1..maxOrder of a token list, keyed by the space-joined tokens (tokens hold no spaces). */
function ngramCounts(tokens: string[], maxOrder: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < tokens.length; i++) {
    // Grow the n-gram starting at i one token at a time instead of slicing and joining per order.
    let key = tokens[i];
    for (let n = 1; n <= maxOrder && i + n <= tokens.length; n++) {
      if (n > 1) key += ` ${tokens[i + n - 1]}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return counts;
}

function orderOf(key: string): number {
  let n = 1;
  for (let i = 0; i < key.length; i++) if (key.charCodeAt(i) === 32) n++;
  return n;
}

/** The reference length closest to the hypothesis length; on a tie, the shorter reference. */
export function closestRefLength(hypLen: number, refLens: readonly number[]): number {
  let bestDiff = -1;
  let best = -1;
  for (const r of refLens) {
    const d = Math.abs(hypLen - r);
    if (bestDiff === -1 || d < bestDiff) {
      bestDiff = d;
      best = r;
    } else if (d === bestDiff && r < best) {
      best = r;
    }
  }
  return best;
}

export function emptyBleuStats(maxOrder = BLEU_MAX_ORDER): BleuStats {
  return { sysLen: 0, refLen: 0, counts: new Array<number>(maxOrder).fill(0), totals: new Array<number>(maxOrder).fill(0) };
}

/** Adds b into a (in place) and returns a. */
export function addBleuStats(a: BleuStats, b: BleuStats): BleuStats {
  if (a.counts.length !== b.counts.length) throw new SigmaError('SGT_DATA_INVALID', `cannot add BLEU statistics of max order ${a.counts.length} and ${b.counts.length}`);
  a.sysLen += b.sysLen;
  a.refLen += b.refLen;
  for (let i = 0; i < a.counts.length; i++) {
    a.counts[i] += b.counts[i];
    a.totals[i] += b.totals[i];
  }
  return a;
}

/**
 * Statistics of one segment against its references (one string per reference stream; `undefined` marks a missing
 * reference, as sacreBLEU's None, and is left out). Reference n-gram counts are the maximum over references.
 */
function segmentStats(hyp: string, refs: ReadonlyArray<string | undefined>, prep: (s: string) => string, maxOrder: number, where: string): BleuStats {
  const refNgrams = new Map<string, number>();
  const refLens: number[] = [];
  for (const ref of refs) {
    if (ref === undefined) continue;
    const tokens = pySplit(prep(ref));
    refLens.push(tokens.length);
    for (const [k, c] of ngramCounts(tokens, maxOrder)) if (c > (refNgrams.get(k) ?? 0)) refNgrams.set(k, c);
  }
  // sacreBLEU would add a reference length of −1 here; a segment without any reference is a data error.
  if (refLens.length === 0) throw new SigmaError('SGT_DATA_INVALID', `${where} has no reference (every reference stream is undefined there)`);
  const hypTokens = pySplit(prep(hyp));
  const s = emptyBleuStats(maxOrder);
  s.sysLen = hypTokens.length;
  s.refLen = closestRefLength(hypTokens.length, refLens);
  for (const [k, c] of ngramCounts(hypTokens, maxOrder)) {
    const n = orderOf(k) - 1;
    s.totals[n] += c;
    const r = refNgrams.get(k);
    if (r !== undefined) s.counts[n] += Math.min(c, r);
  }
  return s;
}

function checkStreams(hyps: readonly string[], refStreams: ReadonlyArray<ReadonlyArray<string | undefined>>): void {
  if (refStreams.length === 0) throw new SigmaError('SGT_DATA_INVALID', 'BLEU needs at least one reference stream, got none');
  refStreams.forEach((r, i) => {
    if (r.length !== hyps.length) {
      throw new SigmaError('SGT_DATA_INVALID', `reference stream ${i + 1} has ${r.length} segments but there are ${hyps.length} hypotheses: every stream needs one line per hypothesis`);
    }
  });
}

/**
 * Per-segment BLEU statistics: `refStreams[k][i]` is the k-th reference of hypothesis i (sacreBLEU's layout).
 * Useful for bootstrap resampling; corpus statistics are their sum (bleuStats).
 */
export function bleuSegmentStats(hyps: readonly string[], refStreams: ReadonlyArray<ReadonlyArray<string | undefined>>, opts: BleuOptions = {}): BleuStats[] {
  checkStreams(hyps, refStreams);
  const prep = preprocessor(opts);
  const maxOrder = opts.maxOrder ?? BLEU_MAX_ORDER;
  return hyps.map((h, i) => segmentStats(h, refStreams.map((r) => r[i]), prep, maxOrder, `segment ${i + 1}`));
}

/** Corpus BLEU statistics of a (shard of a) test set; add shards with addBleuStats, score with bleuFromStats. */
export function bleuStats(hyps: readonly string[], refStreams: ReadonlyArray<ReadonlyArray<string | undefined>>, opts: BleuOptions = {}): BleuStats {
  const total = emptyBleuStats(opts.maxOrder ?? BLEU_MAX_ORDER);
  for (const s of bleuSegmentStats(hyps, refStreams, opts)) addBleuStats(total, s);
  return total;
}

/** sacreBLEU's BLEU.compute_bleu: the score from (summed) statistics. */
export function bleuFromStats(stats: BleuStats, opts: BleuScoreOptions = {}): BleuScore {
  const method = opts.smooth ?? 'exp';
  if (!BLEU_SMOOTH_METHODS.includes(method)) throw new SigmaError('SGT_CONFIG_INVALID', `unknown BLEU smoothing "${method}": use one of ${BLEU_SMOOTH_METHODS.join(', ')}`);
  const value = opts.smoothValue ?? BLEU_SMOOTH_DEFAULTS[method] ?? 0;
  const maxOrder = stats.counts.length;
  const { sysLen, refLen } = stats;
  // Copies: add-k changes the counts it scores with, and sacreBLEU reports those changed counts.
  const counts = stats.counts.slice();
  const totals = stats.totals.slice();
  let bp = 1;
  if (sysLen < refLen) bp = sysLen > 0 ? Math.exp(1 - refLen / sysLen) : 0;
  const precisions = new Array<number>(maxOrder).fill(0);
  // No match at any order: 0 whatever the smoothing (sacreBLEU #141).
  if (!counts.some((c) => c !== 0)) return { score: 0, counts, totals, precisions, bp, sysLen, refLen };

  let smoothMteval = 1;
  let effOrder = maxOrder;
  for (let n = 1; n <= maxOrder; n++) {
    if (method === 'add-k' && n > 1) {
      counts[n - 1] += value;
      totals[n - 1] += value;
    }
    if (totals[n - 1] === 0) break;
    if (opts.effectiveOrder) effOrder = n;
    if (counts[n - 1] === 0) {
      if (method === 'exp') {
        smoothMteval *= 2;
        precisions[n - 1] = 100 / (smoothMteval * totals[n - 1]);
      } else if (method === 'floor') {
        precisions[n - 1] = (100 * value) / totals[n - 1];
      }
    } else {
      precisions[n - 1] = (100 * counts[n - 1]) / totals[n - 1];
    }
  }
  // log(0) is floored to −9999999999 as in sacreBLEU's my_log, which drives the score to 0.
  let logSum = 0;
  for (let i = 0; i < effOrder; i++) logSum += precisions[i] === 0 ? -9999999999 : Math.log(precisions[i]);
  const score = bp * Math.exp(logSum / effOrder);
  return { score, counts, totals, precisions, bp, sysLen, refLen };
}

/** Corpus BLEU (sacrebleu.corpus_bleu): exp smoothing, no effective order unless asked. */
export function corpusBleu(hyps: readonly string[], refStreams: ReadonlyArray<ReadonlyArray<string | undefined>>, opts: BleuOptions & BleuScoreOptions = {}): BleuScore {
  return bleuFromStats(bleuStats(hyps, refStreams, opts), opts);
}

/** Sentence BLEU (sacrebleu.sentence_bleu): exp smoothing and effective order by default. */
export function sentenceBleu(hyp: string, refs: ReadonlyArray<string | undefined>, opts: BleuOptions & BleuScoreOptions = {}): BleuScore {
  const prep = preprocessor(opts);
  const stats = segmentStats(hyp, refs, prep, opts.maxOrder ?? BLEU_MAX_ORDER, 'the sentence');
  return bleuFromStats(stats, { ...opts, effectiveOrder: opts.effectiveOrder ?? true });
}

/**
 * Statistics as named sums for an evaluation record (`Record<string, number>` on the wire):
 * `${prefix}_sys_len`, `${prefix}_ref_len`, `${prefix}_counts_<n>`, `${prefix}_totals_<n>` for n = 1..maxOrder.
 */
export function bleuStatsToRecord(stats: BleuStats, prefix = 'bleu'): Record<string, number> {
  const r: Record<string, number> = { [`${prefix}_sys_len`]: stats.sysLen, [`${prefix}_ref_len`]: stats.refLen };
  stats.counts.forEach((c, i) => {
    r[`${prefix}_counts_${i + 1}`] = c;
    r[`${prefix}_totals_${i + 1}`] = stats.totals[i];
  });
  return r;
}

/** Reads back what bleuStatsToRecord wrote (after the ranks summed it); a missing key is an error naming it. */
export function bleuStatsFromRecord(record: Readonly<Record<string, number>>, prefix = 'bleu', maxOrder = BLEU_MAX_ORDER): BleuStats {
  const get = (k: string): number => {
    const v = record[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new SigmaError('SGT_DATA_INVALID', `BLEU statistics: "${k}" must be a finite non-negative number, got ${JSON.stringify(v)}`);
    return v;
  };
  const s = emptyBleuStats(maxOrder);
  s.sysLen = get(`${prefix}_sys_len`);
  s.refLen = get(`${prefix}_ref_len`);
  for (let n = 1; n <= maxOrder; n++) {
    s.counts[n - 1] = get(`${prefix}_counts_${n}`);
    s.totals[n - 1] = get(`${prefix}_totals_${n}`);
  }
  return s;
}
