// chrF and chrF++ (Popović 2015, 2017) as sacreBLEU 2.6.0 computes them, with summable per-order statistics.
import { SigmaError } from '../errors.js';
import { codePoints, pySplit, removeWhitespace } from './text.js';

export interface ChrfOptions {
  /** Character n-gram order, default 6. */
  charOrder?: number;
  /** Word n-gram order: 0 is chrF (default), 2 is chrF++. */
  wordOrder?: number;
  /** Recall weight, default 2. */
  beta?: number;
  lowercase?: boolean;
  /** Keep whitespace inside character n-grams (default false: it is removed first). */
  whitespace?: boolean;
  /**
   * chrF++.py / Moses / NLTK epsilon smoothing (average of per-order F scores). Default false, as sacreBLEU:
   * precision and recall are averaged over the orders that have both hypothesis and reference n-grams.
   */
  epsSmoothing?: boolean;
}

/**
 * Sufficient statistics: for each order (characters 1..charOrder, then words 1..wordOrder) the hypothesis n-gram
 * count, reference n-gram count and matches, flattened as [hyp, ref, match] × order. Sums over segments.
 */
export type ChrfStats = number[];

interface Resolved {
  charOrder: number;
  wordOrder: number;
  beta: number;
  lowercase: boolean;
  whitespace: boolean;
  epsSmoothing: boolean;
}

function resolve(opts: ChrfOptions): Resolved {
  const r = { charOrder: opts.charOrder ?? 6, wordOrder: opts.wordOrder ?? 0, beta: opts.beta ?? 2, lowercase: opts.lowercase ?? false, whitespace: opts.whitespace ?? false, epsSmoothing: opts.epsSmoothing ?? false };
  for (const k of ['charOrder', 'wordOrder'] as const) {
    if (!Number.isInteger(r[k]) || r[k] < 0) throw new SigmaError('SGT_CONFIG_INVALID', `chrF ${k} must be a non-negative integer, got ${r[k]}`);
  }
  if (r.charOrder + r.wordOrder === 0) throw new SigmaError('SGT_CONFIG_INVALID', 'chrF needs charOrder + wordOrder > 0');
  if (!Number.isFinite(r.beta) || r.beta < 0) throw new SigmaError('SGT_CONFIG_INVALID', `chrF beta must be a non-negative number, got ${r.beta}`);
  return r;
}

// string.punctuation: the characters chrF++ peels off the start or end of a word.
const PUNCTS = new Set('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~');

/** chrF++'s word split: one leading or trailing ASCII punctuation mark becomes its own word ('(hi)' → '(hi', ')'). */
function chrfWords(sent: string): string[] {
  const out: string[] = [];
  for (const w of pySplit(sent)) {
    const cps = codePoints(w);
    if (cps.length === 1) out.push(w);
    else if (PUNCTS.has(cps[cps.length - 1])) out.push(cps.slice(0, -1).join(''), cps[cps.length - 1]);
    else if (PUNCTS.has(cps[0])) out.push(cps[0], cps.slice(1).join(''));
    else out.push(w);
  }
  return out;
}

type Counter = Map<string, number>;

function count(items: Iterable<string>): Counter {
  const c: Counter = new Map();
  for (const k of items) c.set(k, (c.get(k) ?? 0) + 1);
  return c;
}

/** Character n-grams of text (code points, as Python slices). */
function charNgrams(text: string, cps: string[], n: number): Counter {
  const c: Counter = new Map();
  // Without astral characters code points are UTF-16 units and substring is the slice.
  const bmp = cps.length === text.length;
  for (let i = 0; i + n <= cps.length; i++) {
    const k = bmp ? text.substring(i, i + n) : cps.slice(i, i + n).join('');
    c.set(k, (c.get(k) ?? 0) + 1);
  }
  return c;
}

function* wordNgrams(words: string[], n: number): Generator<string> {
  for (let i = 0; i + n <= words.length; i++) yield words.slice(i, i + n).join(' ');
}

/** Counters per order: characters 1..charOrder, then words 1..wordOrder. */
function extract(sent: string, o: Resolved): Counter[] {
  const s = o.lowercase ? sent.toLowerCase() : sent;
  const text = o.whitespace ? s : removeWhitespace(s);
  const cps = codePoints(text);
  const out: Counter[] = [];
  for (let n = 1; n <= o.charOrder; n++) out.push(charNgrams(text, cps, n));
  if (o.wordOrder > 0) {
    const words = chrfWords(s);
    for (let n = 1; n <= o.wordOrder; n++) out.push(count(wordNgrams(words, n)));
  }
  return out;
}

function matchStats(hyp: Counter, ref: Counter): [number, number, number] {
  let matches = 0;
  let hypCount = 0;
  for (const [k, c] of hyp) {
    hypCount += c;
    const r = ref.get(k);
    if (r !== undefined) matches += Math.min(c, r);
  }
  let refCount = 0;
  for (const c of ref.values()) refCount += c;
  // sacreBLEU counts no hypothesis n-grams for an order where the reference has none.
  return [ref.size > 0 ? hypCount : 0, refCount, matches];
}

function fScore(stats: readonly number[], o: Resolved): number {
  const eps = 1e-16;
  const order = o.charOrder + o.wordOrder;
  const factor = o.beta ** 2;
  let score = 0;
  let effOrder = 0;
  let avgPrec = 0;
  let avgRec = 0;
  for (let i = 0; i < order; i++) {
    const [nHyp, nRef, nMatch] = [stats[3 * i], stats[3 * i + 1], stats[3 * i + 2]];
    const prec = nHyp > 0 ? nMatch / nHyp : eps;
    const rec = nRef > 0 ? nMatch / nRef : eps;
    const denom = factor * prec + rec;
    score += denom > 0 ? ((1 + factor) * prec * rec) / denom : eps;
    if (nHyp > 0 && nRef > 0) {
      avgPrec += prec;
      avgRec += rec;
      effOrder++;
    }
  }
  if (o.epsSmoothing) return (100 * score) / order;
  if (effOrder === 0) return 0;
  avgPrec /= effOrder;
  avgRec /= effOrder;
  if (avgPrec + avgRec === 0) return 0;
  return (100 * (1 + factor) * avgPrec * avgRec) / (factor * avgPrec + avgRec);
}

/** Number of entries of a ChrfStats for these options: 3 × (charOrder + wordOrder). */
export function chrfStatsLength(opts: ChrfOptions = {}): number {
  const o = resolve(opts);
  return 3 * (o.charOrder + o.wordOrder);
}

/**
 * Per-segment statistics; with several references a segment takes the statistics of the reference with the best
 * F score (the first one on a tie). `undefined` marks a missing reference.
 */
export function chrfSegmentStats(hyps: readonly string[], refStreams: ReadonlyArray<ReadonlyArray<string | undefined>>, opts: ChrfOptions = {}): ChrfStats[] {
  const o = resolve(opts);
  if (refStreams.length === 0) throw new SigmaError('SGT_DATA_INVALID', 'chrF needs at least one reference stream, got none');
  refStreams.forEach((r, i) => {
    if (r.length !== hyps.length) throw new SigmaError('SGT_DATA_INVALID', `reference stream ${i + 1} has ${r.length} segments but there are ${hyps.length} hypotheses: every stream needs one line per hypothesis`);
  });
  return hyps.map((hyp, i) => {
    const h = extract(hyp, o);
    let best: number[] | undefined;
    let bestF = -1;
    for (const stream of refStreams) {
      const ref = stream[i];
      if (ref === undefined) continue;
      const r = extract(ref, o);
      const stats = h.flatMap((hc, k) => matchStats(hc, r[k]));
      const f = fScore(stats, o);
      if (f > bestF) {
        bestF = f;
        best = stats;
      }
    }
    if (best === undefined) throw new SigmaError('SGT_DATA_INVALID', `segment ${i + 1} has no reference (every reference stream is undefined there)`);
    return best;
  });
}

/** Corpus chrF statistics of a (shard of a) test set; add with addChrfStats, score with chrfFromStats. */
export function chrfStats(hyps: readonly string[], refStreams: ReadonlyArray<ReadonlyArray<string | undefined>>, opts: ChrfOptions = {}): ChrfStats {
  const total = new Array<number>(chrfStatsLength(opts)).fill(0);
  for (const s of chrfSegmentStats(hyps, refStreams, opts)) addChrfStats(total, s);
  return total;
}

/** Adds b into a (in place) and returns a. */
export function addChrfStats(a: ChrfStats, b: readonly number[]): ChrfStats {
  if (a.length !== b.length) throw new SigmaError('SGT_DATA_INVALID', `cannot add chrF statistics of length ${a.length} and ${b.length} (different char/word orders)`);
  for (let i = 0; i < a.length; i++) a[i] += b[i];
  return a;
}

/** The chrF score (0–100) of summed statistics, computed with the same options that produced them. */
export function chrfFromStats(stats: readonly number[], opts: ChrfOptions = {}): number {
  const o = resolve(opts);
  if (stats.length !== 3 * (o.charOrder + o.wordOrder)) {
    throw new SigmaError('SGT_DATA_INVALID', `chrF statistics have ${stats.length} entries, expected ${3 * (o.charOrder + o.wordOrder)} for charOrder ${o.charOrder}, wordOrder ${o.wordOrder}`);
  }
  return fScore(stats, o);
}

/** Corpus chrF (sacrebleu.corpus_chrf); wordOrder 2 gives chrF++. */
export function corpusChrf(hyps: readonly string[], refStreams: ReadonlyArray<ReadonlyArray<string | undefined>>, opts: ChrfOptions = {}): number {
  return chrfFromStats(chrfStats(hyps, refStreams, opts), opts);
}

/** Sentence chrF (sacrebleu.sentence_chrf). */
export function sentenceChrf(hyp: string, refs: ReadonlyArray<string | undefined>, opts: ChrfOptions = {}): number {
  return corpusChrf([hyp], refs.map((r) => [r]), opts);
}

/** Names of the statistics in an evaluation record: `${prefix}_<c|w><n>_<hyp|ref|match>`. */
export function chrfStatsKeys(opts: ChrfOptions = {}, prefix = 'chrf'): string[] {
  const o = resolve(opts);
  const keys: string[] = [];
  const orders = [...Array.from({ length: o.charOrder }, (_, i) => `c${i + 1}`), ...Array.from({ length: o.wordOrder }, (_, i) => `w${i + 1}`)];
  for (const ord of orders) for (const f of ['hyp', 'ref', 'match']) keys.push(`${prefix}_${ord}_${f}`);
  return keys;
}

export function chrfStatsToRecord(stats: readonly number[], opts: ChrfOptions = {}, prefix = 'chrf'): Record<string, number> {
  const keys = chrfStatsKeys(opts, prefix);
  if (keys.length !== stats.length) throw new SigmaError('SGT_DATA_INVALID', `chrF statistics have ${stats.length} entries, expected ${keys.length}`);
  return Object.fromEntries(keys.map((k, i) => [k, stats[i]]));
}

export function chrfStatsFromRecord(record: Readonly<Record<string, number>>, opts: ChrfOptions = {}, prefix = 'chrf'): ChrfStats {
  return chrfStatsKeys(opts, prefix).map((k) => {
    const v = record[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new SigmaError('SGT_DATA_INVALID', `chrF statistics: "${k}" must be a finite non-negative number, got ${JSON.stringify(v)}`);
    return v;
  });
}
