// Character n-gram language model for lexicon-free CTC decoding (shallow fusion in prefixBeamSearch), as the
// lexicon-free decoders of wav2letter/flashlight use one: interpolated Kneser–Ney (Chen & Goodman 1998, §3) over the
// letter tokens of the speech task, counted from transcripts. Written here because no maintained JavaScript library
// builds or queries character n-gram models; KenLM is C++ and reads its models from files this runtime cannot build.
//
// Symbols: the letter token ids 1…28 of LETTER_TOKENS (word boundary, apostrophe, a…z), END (29) for the end of a
// transcript; contexts are padded with BOS (0, never predicted). Highest order: raw counts; lower orders: continuation
// counts N1+(• g) (how many distinct symbols precede g). Each order k interpolates with order k − 1 through one absolute
// discount D_k = n1 / (n1 + 2 n2) (its count-of-counts); order 0 is uniform over the 29 predicted symbols, so every
// context's distribution sums to 1 and no symbol has probability 0.

import { LETTER_TOKENS, textToTokens } from './ctc.js';

/** Predicted symbols: the letter tokens 1…28 and END. */
export const LM_END = LETTER_TOKENS.length;
const LM_BOS = 0;
const PREDICTED = LETTER_TOKENS.length; // 28 letter tokens + END

interface Order {
  /** k-gram (context + symbol) → count (raw at the highest order, continuation below). */
  counts: Map<string, number>;
  /** context → Σ counts over symbols. */
  totals: Map<string, number>;
  /** context → number of symbols with a count. */
  types: Map<string, number>;
  discount: number;
}

/** Distinct n-grams one model may hold: below V8's 2^24 entries per Map or Set, which would otherwise fail mid-count. */
const MAX_GRAMS = 16_000_000;

const key = (ids: readonly number[], from: number, to: number): string => String.fromCharCode(...ids.slice(from, to).map((i) => 65 + i));

/** Counts transcripts one at a time (a text file of any size streams through `add`), then `build` makes the model. */
export class CharNgramCounter {
  private readonly top = new Map<string, number>();
  /** Distinct k-grams for 2 ≤ k ≤ order, for the continuation counts of order k − 1. */
  private readonly below = new Set<string>();
  private texts = 0;

  /** `maxGrams`: distinct n-grams allowed before `add` throws (default just below V8's Map limit). */
  constructor(readonly order: number, private readonly maxGrams = MAX_GRAMS) {
    if (!Number.isInteger(order) || order < 1 || order > 20) throw new RangeError(`character LM order ${order} must be an integer in [1, 20]`);
  }

  /** One transcript: letters, apostrophes, spaces (textToTokens's rules; it throws naming a bad character). */
  add(text: string): void {
    const n = this.order;
    const seq = [...new Array<number>(n - 1).fill(LM_BOS), ...textToTokens(text), LM_END];
    for (let i = n - 1; i < seq.length; i++) {
      const g = key(seq, i - n + 1, i + 1);
      this.top.set(g, (this.top.get(g) ?? 0) + 1);
      for (let k = 1; k < n; k++) this.below.add(key(seq, i - k, i + 1));
    }
    this.texts++;
    if (this.below.size > this.maxGrams || this.top.size > this.maxGrams) {
      throw new RangeError(`character LM: more than ${this.maxGrams} distinct n-grams of order ≤ ${n} after ${this.texts} transcripts ` +
        '(a JavaScript Map holds at most 2^24 entries): lower the order (data.librispeech.lm.order) or count less text');
    }
  }

  build(): CharNgramLm {
    if (this.texts === 0) throw new RangeError('character LM: no text to count');
    const orders: Order[] = [];
    for (let k = 1; k <= this.order; k++) orders.push({ counts: new Map(), totals: new Map(), types: new Map(), discount: 0 });
    for (const [g, c] of this.top) orders[this.order - 1]!.counts.set(g, c);
    // Order k < n: N1+(• g) for each k-gram g = the number of distinct (k+1)-grams x·g.
    for (const xg of this.below) {
      const o = orders[xg.length - 2]!;
      const g = xg.slice(1);
      o.counts.set(g, (o.counts.get(g) ?? 0) + 1);
    }
    for (const o of orders) {
      let n1 = 0;
      let n2 = 0;
      for (const [g, c] of o.counts) {
        const ctx = g.slice(0, -1);
        o.totals.set(ctx, (o.totals.get(ctx) ?? 0) + c);
        o.types.set(ctx, (o.types.get(ctx) ?? 0) + 1);
        if (c === 1) n1++;
        else if (c === 2) n2++;
      }
      // Chen & Goodman's estimate; 0.5 where the counts cannot give one (no singletons or doubletons).
      const d = n1 / (n1 + 2 * n2);
      o.discount = d > 0 && d < 1 ? d : 0.5;
    }
    return new CharNgramLm(orders);
  }
}

export class CharNgramLm {
  readonly order: number;
  private readonly memo = new Map<string, number>();

  /** From CharNgramCounter.build or fromTexts. */
  constructor(private readonly orders: readonly Order[]) {
    this.order = orders.length;
  }

  /** Counts `texts` (transcripts: letters, apostrophes, spaces) into an `order`-gram model. */
  static fromTexts(texts: Iterable<string>, order: number): CharNgramLm {
    const c = new CharNgramCounter(order);
    for (const t of texts) c.add(t);
    return c.build();
  }

  /**
   * ln p(symbol | context): `context` is the token ids so far (only the last order − 1 are read; fewer are padded with
   * BOS), `symbol` a letter token 1…28 or LM_END.
   */
  logProb(context: readonly number[], symbol: number): number {
    if (!Number.isInteger(symbol) || symbol < 1 || symbol > LM_END) throw new RangeError(`character LM: symbol ${symbol} is outside [1, ${LM_END}]`);
    const n = this.order - 1;
    const ctx = context.length >= n ? context.slice(context.length - n) : [...new Array<number>(n - context.length).fill(LM_BOS), ...context];
    const k = key(ctx, 0, n) + String.fromCharCode(65 + symbol);
    let lp = this.memo.get(k);
    if (lp === undefined) {
      lp = Math.log(this.prob(k));
      if (this.memo.size < 1 << 20) this.memo.set(k, lp);
    }
    return lp;
  }

  /** ln p(END | context): the transcript ends here. */
  logProbEnd(context: readonly number[]): number {
    return this.logProb(context, LM_END);
  }

  /** p of the last symbol of `g` after the rest, interpolated down to the uniform order 0. */
  private prob(g: string): number {
    let p = 1 / PREDICTED;
    for (let k = 1; k <= g.length; k++) {
      const o = this.orders[k - 1]!;
      const sub = g.slice(g.length - k);
      const total = o.totals.get(sub.slice(0, -1));
      if (!total) continue; // unseen context: this order adds nothing, p stays the lower order's
      const c = o.counts.get(sub) ?? 0;
      p = Math.max(c - o.discount, 0) / total + (o.discount * o.types.get(sub.slice(0, -1))!) / total * p;
    }
    return p;
  }
}
