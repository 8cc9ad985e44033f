// Corpus cleaning as Moses' clean-corpus-n.perl does it (and fairseq's prepare scripts call it): empty sides,
// length limits in whitespace tokens (and optionally characters), and the length ratio; each removal is counted.

export interface CleanOptions {
  /** Drop a pair when either side is empty after trimming (clean-corpus-n always does). */
  removeEmpty: boolean;
  /** Minimum whitespace tokens per side (clean-corpus-n's min, usually 1). */
  minTokens: number;
  /** Maximum whitespace tokens per side (clean-corpus-n's max; fairseq's WMT'14 recipe uses 250). 0 = no limit. */
  maxTokens: number;
  /** Maximum characters (code points) per side. 0 = no limit. */
  maxChars: number;
  /** Maximum ratio of token counts, either way round (clean-corpus-n -ratio; fairseq uses 1.5). 0 = no limit. */
  maxRatio: number;
}

/** fairseq's examples/translation/prepare-wmt14en2de.sh: clean-corpus-n -ratio 1.5 … 1 250. */
export const DEFAULT_CLEAN: Readonly<CleanOptions> = Object.freeze({
  removeEmpty: true,
  minTokens: 1,
  maxTokens: 250,
  maxChars: 0,
  maxRatio: 1.5,
});

/** No filtering at all (dev and test sets are never cleaned: their scores must cover every segment). */
export const NO_CLEAN: Readonly<CleanOptions> = Object.freeze({
  removeEmpty: false,
  minTokens: 0,
  maxTokens: 0,
  maxChars: 0,
  maxRatio: 0,
});

/** Why a pair was removed; the first failing filter in this order wins (clean-corpus-n's order). */
export type CleanReason = 'malformed' | 'empty' | 'tooShort' | 'tooLong' | 'tooManyChars' | 'ratio';

/** What the readers and filters did to one corpus: every line read is either kept or counted under a reason. */
export interface CleanCounts {
  read: number;
  kept: number;
  malformed: number;
  empty: number;
  tooShort: number;
  tooLong: number;
  tooManyChars: number;
  ratio: number;
}

export function emptyCounts(): CleanCounts {
  return { read: 0, kept: 0, malformed: 0, empty: 0, tooShort: 0, tooLong: 0, tooManyChars: 0, ratio: 0 };
}

export function addCounts(into: CleanCounts, from: CleanCounts): CleanCounts {
  for (const k of Object.keys(into) as (keyof CleanCounts)[]) into[k] += from[k];
  return into;
}

/** Whitespace tokens as clean-corpus-n counts them (split on runs of spaces after trimming). */
export function countTokens(s: string): number {
  let n = 0;
  let inTok = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ws = c === 32 || c === 9 || c === 10 || c === 13 || c === 11 || c === 12;
    if (!ws && !inTok) n++;
    inTok = !ws;
  }
  return n;
}

function codePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdbff) n++;
  }
  return n;
}

/** null when the pair is kept, else the reason it is removed. */
export function cleanVerdict(src: string, tgt: string, o: CleanOptions): CleanReason | null {
  const ns = countTokens(src);
  const nt = countTokens(tgt);
  if (o.removeEmpty && (ns === 0 || nt === 0)) return 'empty';
  if (ns < o.minTokens || nt < o.minTokens) return 'tooShort';
  if (o.maxTokens > 0 && (ns > o.maxTokens || nt > o.maxTokens)) return 'tooLong';
  if (o.maxChars > 0 && (codePoints(src) > o.maxChars || codePoints(tgt) > o.maxChars)) return 'tooManyChars';
  if (o.maxRatio > 0 && ns > 0 && nt > 0 && (ns / nt > o.maxRatio || nt / ns > o.maxRatio)) return 'ratio';
  return null;
}

/** Validates user-given options (from config) and fills defaults; throws naming the key. */
export function resolveCleanOptions(o: Partial<CleanOptions> = {}): CleanOptions {
  const r: CleanOptions = { ...DEFAULT_CLEAN, ...o };
  for (const k of ['minTokens', 'maxTokens', 'maxChars'] as const) {
    if (!Number.isInteger(r[k]) || r[k] < 0) throw new RangeError(`clean.${k} must be an integer ≥ 0, got ${r[k]}`);
  }
  if (!Number.isFinite(r.maxRatio) || r.maxRatio < 0 || (r.maxRatio > 0 && r.maxRatio < 1)) {
    throw new RangeError(`clean.maxRatio must be 0 (off) or ≥ 1, got ${r.maxRatio}`);
  }
  return r;
}

/** One line for the log: "read=… kept=… empty=… …", zero counts included so a reader sees every filter ran. */
export function formatCounts(c: CleanCounts): string {
  return Object.entries(c)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}
