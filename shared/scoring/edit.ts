// Word and character error rates: Levenshtein alignment counts (substitutions, deletions, insertions) as sums
// over a set, so ranks add them and divide once by the total reference length.
import { SigmaError } from '../errors.js';
import { codePoints, pySplit } from './text.js';

/** Edit statistics of one or more (reference, hypothesis) pairs; all fields are sums. */
export interface EditStats {
  /** substitutions + deletions + insertions: the minimal edit distance. */
  errors: number;
  substitutions: number;
  deletions: number;
  insertions: number;
  /** Tokens in the references (the denominator of WER/CER). */
  refLength: number;
  /** Tokens in the hypotheses. */
  hypLength: number;
  /** Pairs counted. */
  segments: number;
}

export function emptyEditStats(): EditStats {
  return { errors: 0, substitutions: 0, deletions: 0, insertions: 0, refLength: 0, hypLength: 0, segments: 0 };
}

/** Adds b into a (in place) and returns a. */
export function addEditStats(a: EditStats, b: EditStats): EditStats {
  for (const k of Object.keys(a) as Array<keyof EditStats>) a[k] += b[k];
  return a;
}

/**
 * Minimal edit distance between two token sequences, with its split into substitutions, deletions (reference
 * tokens missing from the hypothesis) and insertions (extra hypothesis tokens). Among alignments of equal cost,
 * one with the most substitutions, then the most deletions, is counted (a fixed rule, so the split is reproducible).
 * O(|ref|·|hyp|) time, O(|hyp|) memory. Tokens compare with ===.
 */
export function editStats<T>(ref: readonly T[], hyp: readonly T[]): EditStats {
  const m = hyp.length;
  // Row i holds, for every hypothesis prefix j, the best (cost, subs, dels, ins) aligning ref[0..i) with hyp[0..j).
  let cost = new Uint32Array(m + 1);
  let sub = new Uint32Array(m + 1);
  let del = new Uint32Array(m + 1);
  let ins = new Uint32Array(m + 1);
  for (let j = 0; j <= m; j++) {
    cost[j] = j;
    ins[j] = j;
  }
  let nCost = new Uint32Array(m + 1);
  let nSub = new Uint32Array(m + 1);
  let nDel = new Uint32Array(m + 1);
  let nIns = new Uint32Array(m + 1);
  for (let i = 1; i <= ref.length; i++) {
    nCost[0] = i;
    nSub[0] = 0;
    nDel[0] = i;
    nIns[0] = 0;
    for (let j = 1; j <= m; j++) {
      const same = ref[i - 1] === hyp[j - 1];
      // Candidates: diagonal (match or substitution), deletion (from above), insertion (from the left); keep the
      // lowest cost, then the most substitutions, then the most deletions. The order is additive along a path,
      // so this row-by-row choice is the global optimum of that order.
      let c = cost[j - 1] + (same ? 0 : 1);
      let s = sub[j - 1] + (same ? 0 : 1);
      let d = del[j - 1];
      let n = ins[j - 1];
      const cDel = cost[j] + 1;
      if (cDel < c || (cDel === c && (sub[j] > s || (sub[j] === s && del[j] + 1 > d)))) {
        c = cDel;
        s = sub[j];
        d = del[j] + 1;
        n = ins[j];
      }
      const cIns = nCost[j - 1] + 1;
      if (cIns < c || (cIns === c && (nSub[j - 1] > s || (nSub[j - 1] === s && nDel[j - 1] > d)))) {
        c = cIns;
        s = nSub[j - 1];
        d = nDel[j - 1];
        n = nIns[j - 1] + 1;
      }
      nCost[j] = c;
      nSub[j] = s;
      nDel[j] = d;
      nIns[j] = n;
    }
    [cost, nCost] = [nCost, cost];
    [sub, nSub] = [nSub, sub];
    [del, nDel] = [nDel, del];
    [ins, nIns] = [nIns, ins];
  }
  return { errors: cost[m], substitutions: sub[m], deletions: del[m], insertions: ins[m], refLength: ref.length, hypLength: m, segments: 1 };
}

/** Words of a transcript: split on whitespace (normalise case and punctuation before, as the task defines). */
export function words(s: string): string[] {
  return pySplit(s);
}

export interface CerOptions {
  /** Leave spaces out of the character sequence (ESPnet-style CER); default false: a space between words counts. */
  ignoreSpaces?: boolean;
}

/** Characters (code points) of a transcript: words joined by single spaces, or without spaces if ignoreSpaces. */
export function characters(s: string, opts: CerOptions = {}): string[] {
  return codePoints(pySplit(s).join(opts.ignoreSpaces ? '' : ' '));
}

function pairs(refs: readonly string[], hyps: readonly string[], what: string, unit: (s: string) => string[]): EditStats {
  if (refs.length !== hyps.length) throw new SigmaError('SGT_DATA_INVALID', `${what}: ${refs.length} references but ${hyps.length} hypotheses; they pair up line by line`);
  const total = emptyEditStats();
  for (let i = 0; i < refs.length; i++) addEditStats(total, editStats(unit(refs[i]), unit(hyps[i])));
  return total;
}

/**
 * Word edit statistics summed over a set. An empty reference contributes its hypothesis words as insertions and
 * nothing to refLength.
 */
export function werStats(refs: readonly string[], hyps: readonly string[]): EditStats {
  return pairs(refs, hyps, 'WER', words);
}

/** Character edit statistics summed over a set (code points; whitespace runs count as one space unless ignored). */
export function cerStats(refs: readonly string[], hyps: readonly string[], opts: CerOptions = {}): EditStats {
  return pairs(refs, hyps, 'CER', (s) => characters(s, opts));
}

/**
 * errors / refLength (a fraction; ×100 for percent). With refLength 0 — only empty references — the rate is 0 if
 * there are no errors and +Infinity otherwise (every hypothesis token is an insertion against nothing).
 */
export function errorRate(s: Pick<EditStats, 'errors' | 'refLength'>): number {
  if (s.refLength > 0) return s.errors / s.refLength;
  return s.errors === 0 ? 0 : Number.POSITIVE_INFINITY;
}

const EDIT_KEYS: ReadonlyArray<keyof EditStats> = ['errors', 'substitutions', 'deletions', 'insertions', 'refLength', 'hypLength', 'segments'];
const snake = (k: string): string => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** Named sums for an evaluation record: `${prefix}_errors`, `_substitutions`, `_deletions`, `_insertions`, `_ref_length`, `_hyp_length`, `_segments`. */
export function editStatsToRecord(s: EditStats, prefix: string): Record<string, number> {
  return Object.fromEntries(EDIT_KEYS.map((k) => [`${prefix}_${snake(k)}`, s[k]]));
}

export function editStatsFromRecord(record: Readonly<Record<string, number>>, prefix: string): EditStats {
  const s = emptyEditStats();
  for (const k of EDIT_KEYS) {
    const key = `${prefix}_${snake(k)}`;
    const v = record[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new SigmaError('SGT_DATA_INVALID', `edit statistics: "${key}" must be a finite non-negative number, got ${JSON.stringify(v)}`);
    s[k] = v;
  }
  return s;
}
