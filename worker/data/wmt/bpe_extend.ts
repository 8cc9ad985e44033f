// BPE merges past the `tokenizers` trainer's 30 000 tokens: the Node binding trains only with BpeTrainer::default()
// (vocab_size 30 000, no way to pass another), so a larger joint vocabulary (the paper's WMT'17 En-De uses ~41k)
// continues the same greedy rule from where the trainer stopped — no other maintained Node library trains BPE.
//
// The words are the trainer's (the library's own normaliser and Metaspace pre-tokenizer over the same text), each
// segmented by the trainer's merges in rank order (how the BPE model encodes); then, until the target size: merge the
// most frequent adjacent pair of tokens within words (ties: the pair of lower token ids, as BpeTrainer does), update
// the pair counts of the words that held it. So the first K merges of a longer vocabulary stay those of a shorter one.

import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import tokenizers from 'tokenizers';

const { metaspacePreTokenizer, nfkcNormalizer, replace, sequenceNormalizer } = tokenizers;

/**
 * The trainer's text pipeline (vocab_train_child.ts sets it on the tokenizer it trains): the trainer sees lines with
 * their newline, so a Replace normaliser drops it ("\n" joins no merge), then NFKC if asked; Metaspace pieces.
 */
export function trainerPipeline(normalization: 'nfkc' | 'none') {
  const norms = [replace('\n', '')];
  if (normalization === 'nfkc') norms.push(nfkcNormalizer());
  return { normalizer: sequenceNormalizer(norms), preTokenizer: metaspacePreTokenizer() };
}

/** Word → count over a one-sentence-a-line file, split as the trainer splits it (normalised, "▁word" pieces). */
export async function countWords(textFile: string, normalization: 'nfkc' | 'none'): Promise<Map<string, number>> {
  const { normalizer: norm, preTokenizer: pre } = trainerPipeline(normalization);
  const counts = new Map<string, number>();
  const lines = createInterface({ input: createReadStream(textFile, 'utf8'), crlfDelay: Infinity });
  for await (const line of lines) {
    for (const [w] of pre.preTokenizeString(norm.normalizeString(line))) counts.set(w, (counts.get(w) ?? 0) + 1);
  }
  return counts;
}

/** A word's tokens under `ranks` (pair "a b" → merge rank): repeatedly merge the adjacent pair of lowest rank. */
export function segment(word: string, ranks: ReadonlyMap<string, number>): string[] {
  const s = [...word];
  for (;;) {
    let best = -1;
    let bestRank = Infinity;
    for (let i = 0; i + 1 < s.length; i++) {
      const r = ranks.get(`${s[i]} ${s[i + 1]}`);
      if (r !== undefined && r < bestRank) {
        bestRank = r;
        best = i;
      }
    }
    if (best < 0) return s;
    const a = s[best]!;
    const b = s[best + 1]!;
    // Merge every non-overlapping occurrence of this pair, left to right (the BPE model's order).
    const out: string[] = [];
    for (let i = 0; i < s.length; i++) {
      if (i + 1 < s.length && s[i] === a && s[i + 1] === b) {
        out.push(a + b);
        i++;
      } else out.push(s[i]!);
    }
    s.splice(0, s.length, ...out);
  }
}

/** Max-heap of (count, pair key) with lazy deletion: stale entries are skipped when popped. */
class PairHeap {
  private h: [number, number][] = [];
  push(count: number, key: number): void {
    const h = this.h;
    h.push([count, key]);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.above(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }
  pop(): [number, number] | undefined {
    const h = this.h;
    if (!h.length) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.above(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.above(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
  /** Higher count first; equal counts: the lower key (lower first token id, then lower second). */
  private above(x: [number, number], y: [number, number]): boolean {
    return x[0] > y[0] || (x[0] === y[0] && x[1] < y[1]);
  }
}

const SHIFT = 2 ** 24;

export interface ExtendResult {
  /** The new merges, in order (each [a, b]; a + b may already be a token, as in the trainer's own list). */
  merges: [string, string][];
  /** The tokens the vocabulary gains, in order. */
  tokens: string[];
}

/**
 * Continues BPE from `merges` (applied to `words`) until `vocab` has grown by `want` tokens or no adjacent pair is
 * left. `vocab` lists the current tokens (their index is the id used for tie-breaking); it is not modified.
 */
export function extendMerges(words: ReadonlyMap<string, number>, vocab: readonly string[], merges: readonly [string, string][], want: number): ExtendResult {
  const ranks = new Map<string, number>();
  merges.forEach(([a, b], i) => ranks.set(`${a} ${b}`, i));
  const ids = new Map<string, number>();
  const names: string[] = [];
  const id = (t: string): number => {
    let v = ids.get(t);
    if (v === undefined) {
      v = names.length;
      ids.set(t, v);
      names.push(t);
    }
    return v;
  };
  for (const t of vocab) id(t);
  if (names.length >= SHIFT) throw new RangeError(`vocabulary of ${names.length} tokens: pair keys need fewer than ${SHIFT}`);

  // Words as id arrays, with their counts; pair → count and pair → the words holding it.
  const seqs: number[][] = [];
  const freq: number[] = [];
  for (const [w, c] of words) {
    seqs.push(segment(w, ranks).map(id));
    freq.push(c);
  }
  const count = new Map<number, number>();
  const where = new Map<number, Set<number>>();
  const add = (key: number, wi: number, c: number) => {
    count.set(key, (count.get(key) ?? 0) + c);
    let s = where.get(key);
    if (!s) where.set(key, (s = new Set()));
    s.add(wi);
  };
  seqs.forEach((s, wi) => {
    for (let i = 0; i + 1 < s.length; i++) add(s[i]! * SHIFT + s[i + 1]!, wi, freq[wi]!);
  });
  const heap = new PairHeap();
  for (const [k, c] of count) heap.push(c, k);

  const known = new Set(vocab);
  const out: ExtendResult = { merges: [], tokens: [] };
  while (out.tokens.length < want) {
    const top = heap.pop();
    if (!top) break;
    const [c, key] = top;
    if (count.get(key) !== c || c <= 0) continue; // stale
    const a = Math.floor(key / SHIFT);
    const b = key % SHIFT;
    const merged = names[a]! + names[b]!;
    const m = id(merged);
    if (names.length > SHIFT) throw new RangeError(`more than ${SHIFT} tokens`);
    out.merges.push([names[a]!, names[b]!]);
    if (!known.has(merged)) {
      known.add(merged);
      out.tokens.push(merged);
    }
    const touched = new Set<number>();
    for (const wi of where.get(key) ?? []) {
      const s = seqs[wi]!;
      const f = freq[wi]!;
      for (let i = 0; i + 1 < s.length; i++) {
        const k = s[i]! * SHIFT + s[i + 1]!;
        count.set(k, count.get(k)! - f);
        touched.add(k);
      }
      const next: number[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) {
          next.push(m);
          i++;
        } else next.push(s[i]!);
      }
      seqs[wi] = next;
      for (let i = 0; i + 1 < next.length; i++) {
        const k = next[i]! * SHIFT + next[i + 1]!;
        add(k, wi, f);
        touched.add(k);
      }
    }
    count.delete(key);
    where.delete(key);
    for (const k of touched) {
      const v = count.get(k);
      if (v !== undefined && v > 0) heap.push(v, k);
    }
  }
  return out;
}
