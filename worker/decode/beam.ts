// Batched beam search and greedy decoding over any cached incremental decoder (fairseq's SequenceGenerator
// semantics): one packed device→host readback per step, finished sentences leave the batch, the cache follows beams.
import * as tf from '@tensorflow/tfjs';

/** What a model offers for incremental decoding: one position per step, keys/values cached (seq2seq.ts, lm.ts). */
export interface IncrementalDecoder<C> {
  vocabSize: number;
  /** Next-token log-probabilities [rows, V] after feeding `tokens` [rows] int32, and the cache grown by them. */
  step(cache: C, tokens: tf.Tensor1D): { logProbs: tf.Tensor2D; cache: C };
  /** The cache with its rows gathered by `rows` [n] int32 (beams reordered, finished sentences dropped). */
  reorder(cache: C, rows: tf.Tensor1D): C;
  /** Every tensor the cache holds. */
  tensors(cache: C): tf.Tensor[];
}

export interface DecodeOptions {
  bos: number;
  eos: number;
  /** Tokens never generated (padding, BOS; fairseq bans pad and bos the same way). */
  banned?: readonly number[];
  /** Per sentence, its source length (non-pad tokens); one entry per row of the initial cache. */
  sourceLengths: ArrayLike<number>;
  /** Longest output (EOS not counted) = ⌊a·S + b⌋ with S the sentence's source length (fairseq's max_len_a, max_len_b). */
  maxLenA: number;
  maxLenB: number;
  /** Upper bound on that, e.g. the model's maxPositions − 1. */
  maxLenCap?: number;
}

export interface BeamOptions extends DecodeOptions {
  /** Beams per sentence (4–5 for translation). */
  beam: number;
  /**
   * Length penalty α. 'fairseq' (the default, what fairseq-generate --lenpen does): a finished hypothesis scores
   * Σ log p / len^α with len counting its EOS. 'gnmt' (Wu et al. 2016): Σ log p / ((5 + len) / 6)^α.
   */
  lengthPenalty: number;
  lengthPenaltyKind?: 'fairseq' | 'gnmt';
  /** Hypotheses returned per sentence, best first (default: beam). */
  nBest?: number;
}

export interface Hypothesis {
  /** Generated tokens, without BOS and EOS. */
  tokens: number[];
  /** Length-normalised score used for ranking. */
  score: number;
  /** Σ log p over the tokens and the EOS. */
  logProb: number;
}

/** Row budget on a float32 readback of candidate indices: they must stay exact integers. */
const EXACT_FLOAT32_INT = 1 << 24;

function maxLengths(o: DecodeOptions): number[] {
  return Array.from(o.sourceLengths, (s) => {
    const m = Math.floor(o.maxLenA * s + o.maxLenB);
    return Math.max(0, o.maxLenCap === undefined ? m : Math.min(m, o.maxLenCap));
  });
}

/** [1, V]: −∞ at banned tokens, 0 elsewhere. */
function banRow(vocab: number, banned: readonly number[] | undefined): tf.Tensor2D {
  const row = new Float32Array(vocab);
  for (const t of banned ?? []) {
    if (t < 0 || t >= vocab) throw new Error(`banned token ${t} is outside the vocabulary [0, ${vocab})`);
    row[t] = -Infinity;
  }
  return tf.tensor2d(row, [1, vocab]);
}

function checkCommon(vocab: number, o: DecodeOptions): void {
  for (const [k, v] of [['bos', o.bos], ['eos', o.eos]] as const) {
    if (!Number.isInteger(v) || v < 0 || v >= vocab) throw new Error(`decode: ${k} id ${v} is outside the vocabulary [0, ${vocab})`);
  }
  if (o.banned?.includes(o.eos)) throw new Error(`decode: eos ${o.eos} is banned, no hypothesis could end`);
}

/** Disposes the tensors of `old` that `next` does not hold (a step or a reorder replaced them). */
function disposeReplaced<C>(dec: IncrementalDecoder<C>, old: C, next: C): void {
  const keep = new Set(dec.tensors(next));
  for (const t of dec.tensors(old)) if (!keep.has(t)) t.dispose();
}

function reorder<C>(dec: IncrementalDecoder<C>, cache: C, rows: number[]): C {
  const idx = tf.tensor1d(rows, 'int32');
  const next = dec.reorder(cache, idx);
  idx.dispose();
  disposeReplaced(dec, cache, next);
  return next;
}

interface Beam {
  tokens: number[];
  /** Σ log p so far (−∞ for a placeholder beam). */
  score: number;
}

/**
 * Beam search for the sentences whose rows make up `cache` (one row per sentence; the search takes the cache over
 * and disposes it). Per step: log p of every beam's next token, plus the beam's score, top 2·beam candidates per
 * sentence over beam×V; EOS candidates among the top `beam` become finished hypotheses (normalised by the length
 * penalty), the best `beam` others continue. A sentence is done when it has `beam` finished hypotheses (fairseq's
 * rule: no look-ahead for a better normalised score) or reaches its maximum length, where every beam gets EOS.
 * Returns per sentence its finished hypotheses, best first.
 */
export async function beamSearch<C>(dec: IncrementalDecoder<C>, cache0: C, o: BeamOptions): Promise<Hypothesis[][]> {
  const V = dec.vocabSize;
  const K = o.beam;
  checkCommon(V, o);
  if (!Number.isInteger(K) || K < 1) throw new Error(`beam search: beam ${K} must be a positive integer`);
  if (V < 2) throw new Error(`beam search: a vocabulary of ${V} leaves nothing to choose`);
  if (K * V >= EXACT_FLOAT32_INT) throw new Error(`beam search: beam·V = ${K * V} candidates exceed float32's exact integers`);
  const norm = o.lengthPenaltyKind === 'gnmt'
    ? (logProb: number, len: number) => logProb / Math.pow((5 + len) / 6, o.lengthPenalty)
    : (logProb: number, len: number) => logProb / Math.pow(len, o.lengthPenalty);
  const B = o.sourceLengths.length;
  const maxLen = maxLengths(o);
  const finals: Hypothesis[][] = Array.from({ length: B }, () => []);
  if (B === 0) {
    for (const t of dec.tensors(cache0)) t.dispose();
    return finals;
  }
  const ban = banRow(V, o.banned);
  // Each sentence's row becomes K rows; only beam 0 is live at first (the others are −∞ placeholders), so the
  // first step expands one prefix, not K copies of it.
  let cache = reorder(dec, cache0, Array.from({ length: B * K }, (_, r) => Math.floor(r / K)));
  let active = Array.from({ length: B }, (_, s) => s); // sentence ids, in batch order
  let beams: Beam[][] = active.map(() => Array.from({ length: K }, (_, j) => ({ tokens: [], score: j === 0 ? 0 : -Infinity })));
  try {
    for (let t = 0; active.length > 0; t++) {
      const n = active.length;
      const rows = n * K;
      const last = Int32Array.from(beams.flatMap((bs) => bs.map((b) => (b.tokens.length ? b.tokens[b.tokens.length - 1] : o.bos))));
      const scores = Float32Array.from(beams.flatMap((bs) => bs.map((b) => b.score)));
      const tokens = tf.tensor1d(last, 'int32');
      const r = dec.step(cache, tokens);
      tokens.dispose();
      disposeReplaced(dec, cache, r.cache);
      cache = r.cache;
      const packed = tf.tidy(() => {
        const lp = tf.add(r.logProbs, ban); // [rows, V]
        const cand = tf.add(lp, tf.tensor2d(scores, [rows, 1])).reshape([n, K * V]);
        const top = tf.topk(cand, 2 * K); // [n, 2K]
        const eosLp = tf.slice(lp, [0, o.eos], [rows, 1]).reshape([rows]);
        return tf.concat([top.values.reshape([-1]), tf.cast(top.indices, 'float32').reshape([-1]), eosLp]);
      });
      r.logProbs.dispose();
      const h = await packed.data(); // the step's one readback: candidate scores, candidate ids, log p(EOS) per row
      packed.dispose();
      const nextActive: number[] = [];
      const nextBeams: Beam[][] = [];
      const parents: number[] = [];
      for (let p = 0; p < n; p++) {
        const s = active[p];
        const bs = beams[p];
        const fin = finals[s];
        if (t >= maxLen[s]) {
          // Out of length: every live beam ends here with EOS.
          for (let j = 0; j < K && fin.length < K; j++) {
            if (!Number.isFinite(bs[j].score)) continue;
            const lp = bs[j].score + h[2 * n * 2 * K + p * K + j];
            fin.push({ tokens: bs[j].tokens, logProb: lp, score: norm(lp, t + 1) });
          }
          continue;
        }
        const cands: Array<{ score: number; beam: number; token: number }> = [];
        for (let c = 0; c < 2 * K; c++) {
          const id = h[n * 2 * K + p * 2 * K + c];
          cands.push({ score: h[p * 2 * K + c], beam: Math.floor(id / V), token: id % V });
        }
        for (let c = 0; c < K && fin.length < K; c++) {
          const x = cands[c];
          if (x.token === o.eos && Number.isFinite(x.score)) fin.push({ tokens: bs[x.beam].tokens, logProb: x.score, score: norm(x.score, t + 1) });
        }
        if (fin.length >= K) continue;
        const keep = cands.filter((x) => x.token !== o.eos && Number.isFinite(x.score)).slice(0, K);
        const nb: Beam[] = keep.map((x) => ({ tokens: [...bs[x.beam].tokens, x.token], score: x.score }));
        const rowOf = keep.map((x) => p * K + x.beam);
        while (nb.length < K) {
          nb.push({ tokens: nb[0]?.tokens ?? [], score: -Infinity });
          rowOf.push(rowOf[0] ?? p * K);
        }
        nextActive.push(s);
        nextBeams.push(nb);
        parents.push(...rowOf);
      }
      active = nextActive;
      beams = nextBeams;
      if (active.length > 0) cache = reorder(dec, cache, parents);
    }
  } finally {
    ban.dispose();
    for (const t of dec.tensors(cache)) t.dispose();
  }
  const nBest = o.nBest ?? K;
  // Stable sort: among equal scores the earlier-finished hypothesis first.
  return finals.map((f) => [...f].sort((a, b) => b.score - a.score).slice(0, nBest));
}

/**
 * Greedy decoding: the most probable token at each step, until EOS or the sentence's maximum length (then the
 * output ends there, as beam search's forced EOS would end it). Takes the cache over and disposes it.
 */
export async function greedySearch<C>(dec: IncrementalDecoder<C>, cache0: C, o: DecodeOptions): Promise<Hypothesis[]> {
  const V = dec.vocabSize;
  checkCommon(V, o);
  const B = o.sourceLengths.length;
  const maxLen = maxLengths(o);
  const out: Hypothesis[] = Array.from({ length: B }, () => ({ tokens: [], score: 0, logProb: 0 }));
  const ban = banRow(V, o.banned);
  let cache = cache0;
  let active = Array.from({ length: B }, (_, s) => s);
  try {
    for (let t = 0; active.length > 0; t++) {
      const last = Int32Array.from(active.map((s) => (out[s].tokens.length ? out[s].tokens[out[s].tokens.length - 1] : o.bos)));
      const tokens = tf.tensor1d(last, 'int32');
      const r = dec.step(cache, tokens);
      tokens.dispose();
      disposeReplaced(dec, cache, r.cache);
      cache = r.cache;
      const packed = tf.tidy(() => {
        const lp = tf.add(r.logProbs, ban);
        const top = tf.topk(lp, 1); // [rows, 1]
        const eosLp = tf.slice(lp, [0, o.eos], [active.length, 1]);
        return tf.concat([top.values.reshape([-1]), tf.cast(top.indices, 'float32').reshape([-1]), eosLp.reshape([-1])]);
      });
      r.logProbs.dispose();
      const h = await packed.data(); // one readback per step
      packed.dispose();
      const n = active.length;
      const keepRows: number[] = [];
      const still: number[] = [];
      for (let p = 0; p < n; p++) {
        const s = active[p];
        const hyp = out[s];
        if (t >= maxLen[s]) {
          hyp.logProb += h[2 * n + p];
          continue;
        }
        const token = h[n + p];
        hyp.logProb += h[p];
        if (token === o.eos) continue;
        hyp.tokens.push(token);
        keepRows.push(p);
        still.push(s);
      }
      if (still.length > 0 && still.length < n) cache = reorder(dec, cache, keepRows);
      active = still;
    }
  } finally {
    ban.dispose();
    for (const t of dec.tensors(cache)) t.dispose();
  }
  for (const hyp of out) hyp.score = hyp.logProb; // greedy ranks nothing: its score is the plain Σ log p
  return out;
}
