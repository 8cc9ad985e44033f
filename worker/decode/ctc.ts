// CTC decoding on the host: greedy (best path: argmax per frame, collapse repeats, drop blanks) and lexicon-free
// prefix beam search (Hannun et al. 2014), optionally fused with a character LM (charlm.ts), plus the letter vocabulary
// of the speech task.
// Inputs are one utterance's scores [T, C] row-major (logits or log-probabilities) as read back from the device.

import type { CharNgramLm } from './charlm.js';

/** Token ids of the speech task: 0 blank, 1 word boundary "|", 2 apostrophe, 3…28 the letters a…z (29 in all). */
export const LETTER_TOKENS: readonly string[] = Object.freeze(['<blank>', '|', "'", ...'abcdefghijklmnopqrstuvwxyz']);
export const BLANK = 0;
export const WORD_BOUNDARY = 1;

/**
 * Transcript → token ids: letters (either case) and the apostrophe map to their ids, runs of spaces to one word
 * boundary; leading/trailing spaces are dropped. Any other character throws, naming it and its position.
 */
export function textToTokens(text: string): number[] {
  const out: number[] = [];
  let space = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === ' ') {
      space = out.length > 0;
      continue;
    }
    const id = LETTER_TOKENS.indexOf(ch.toLowerCase());
    if (id < 2) {
      throw new Error(`transcript character ${JSON.stringify(ch)} (U+${ch.charCodeAt(0).toString(16).padStart(4, '0')}) at ` +
        `position ${i} of ${JSON.stringify(text)} is not a letter, apostrophe or space: normalise the transcript`);
    }
    if (space) out.push(WORD_BOUNDARY);
    space = false;
    out.push(id);
  }
  return out;
}

/** Token ids → text: word boundaries become single spaces (none at the ends), blanks are skipped, letters lower case. */
export function tokensToText(tokens: readonly number[]): string {
  let s = '';
  for (const t of tokens) {
    if (t === BLANK) continue;
    if (t === WORD_BOUNDARY) s += ' ';
    else if (t > 0 && t < LETTER_TOKENS.length) s += LETTER_TOKENS[t];
    else throw new RangeError(`token id ${t} is outside the letter vocabulary [0, ${LETTER_TOKENS.length})`);
  }
  return s.replace(/ +/g, ' ').trim();
}

function checkShape(scores: ArrayLike<number>, T: number, C: number): void {
  if (!Number.isInteger(T) || !Number.isInteger(C) || T < 0 || C < 1 || scores.length < T * C) {
    throw new RangeError(`ctc decode: scores of length ${scores.length} cannot hold [T=${T}, C=${C}]`);
  }
}

/** Best path: argmax per frame (the first on ties), repeats collapsed, blanks dropped. */
export function greedyDecode(scores: ArrayLike<number>, T: number, C: number, blank = BLANK): number[] {
  checkShape(scores, T, C);
  const out: number[] = [];
  let prev = -1;
  for (let t = 0; t < T; t++) {
    let best = 0;
    for (let c = 1; c < C; c++) if (scores[t * C + c] > scores[t * C + best]) best = c;
    if (best !== prev && best !== blank) out.push(best);
    prev = best;
  }
  return out;
}

/** Per-frame log-softmax in float64 (scores [T, C] → log-probabilities). */
export function logSoftmaxRows(scores: ArrayLike<number>, T: number, C: number): Float64Array {
  checkShape(scores, T, C);
  const out = new Float64Array(T * C);
  for (let t = 0; t < T; t++) {
    let m = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < C; c++) m = Math.max(m, scores[t * C + c]);
    let sum = 0;
    for (let c = 0; c < C; c++) sum += Math.exp(scores[t * C + c] - m);
    const z = m + Math.log(sum);
    for (let c = 0; c < C; c++) out[t * C + c] = scores[t * C + c] - z;
  }
  return out;
}

const NEG_INF = Number.NEGATIVE_INFINITY;
function lse(a: number, b: number): number {
  if (a === NEG_INF) return b;
  if (b === NEG_INF) return a;
  return a > b ? a + Math.log1p(Math.exp(b - a)) : b + Math.log1p(Math.exp(a - b));
}

export interface BeamOptions {
  /** Prefixes kept after each frame (≥ 1). */
  beamWidth: number;
  blank?: number;
  /**
   * Per frame, skip classes whose log-probability is below (best class − tokenPrune): a speed knob (0 < … ; default
   * Infinity: try every class, the exact search within the beam).
   */
  tokenPrune?: number;
  /** Shallow fusion with a character LM (charlm.ts): prefixes rank by log p_ctc + weight·log p_lm + bonus·tokens. */
  lm?: LmFusion;
}

export interface LmFusion {
  model: CharNgramLm;
  /** Weight of the LM's log-probability (e.g. 0.5). */
  weight: number;
  /** Score added per emitted token, against the LM's preference for short outputs (e.g. 1). */
  bonus: number;
}

export interface Hypothesis {
  tokens: number[];
  /** log p(tokens | x) summed over the alignments that survived the beam (exact when nothing was pruned). */
  logProb: number;
  /** With an LM: logProb + weight·ln p_lm(tokens, end) + bonus·tokens, what the hypotheses are ranked by. */
  score: number;
}

interface Beam {
  tokens: number[];
  /** log-probability of the prefix over alignments ending in a blank / in its last label. */
  pb: number;
  pnb: number;
  /** weight·ln p_lm(tokens) + bonus·tokens (0 without an LM): a function of the tokens alone. */
  lm: number;
}

/**
 * Lexicon-free CTC prefix beam search over log-probabilities [T, C] (use logSoftmaxRows on logits). Returns up to
 * beamWidth hypotheses, most probable first. Each prefix carries p_b (alignments ending in blank) and p_nb (ending in
 * its last label): a repeated label extends the prefix only from p_b, and otherwise merges into the same prefix.
 */
export function prefixBeamSearch(logProbs: ArrayLike<number>, T: number, C: number, opts: BeamOptions): Hypothesis[] {
  checkShape(logProbs, T, C);
  const width = opts.beamWidth;
  if (!Number.isInteger(width) || width < 1) throw new RangeError(`ctc beam search: beamWidth ${width} must be an integer ≥ 1`);
  const blank = opts.blank ?? BLANK;
  const prune = opts.tokenPrune ?? Number.POSITIVE_INFINITY;
  if (!(prune > 0)) throw new RangeError(`ctc beam search: tokenPrune ${prune} must be > 0`);
  const lm = opts.lm;
  if (lm && !(Number.isFinite(lm.weight) && lm.weight >= 0 && Number.isFinite(lm.bonus))) {
    throw new RangeError(`ctc beam search: LM weight ${lm.weight} must be ≥ 0 and bonus ${lm.bonus} finite`);
  }
  const rank = (b: Beam): number => lse(b.pb, b.pnb) + b.lm;
  let beams: Beam[] = [{ tokens: [], pb: 0, pnb: NEG_INF, lm: 0 }];
  for (let t = 0; t < T; t++) {
    const row = t * C;
    let top = NEG_INF;
    for (let c = 0; c < C; c++) top = Math.max(top, logProbs[row + c]);
    const classes: number[] = [];
    for (let c = 0; c < C; c++) if (c !== blank && logProbs[row + c] >= top - prune) classes.push(c);
    const next = new Map<string, Beam>();
    const at = (tokens: number[], from: Beam): Beam => {
      const key = tokens.join(',');
      let b = next.get(key);
      if (!b) {
        const added = tokens.length > from.tokens.length && lm ? lm.weight * lm.model.logProb(from.tokens, tokens[tokens.length - 1]!) + lm.bonus : 0;
        next.set(key, (b = { tokens, pb: NEG_INF, pnb: NEG_INF, lm: from.lm + added }));
      }
      return b;
    };
    const pBlank = logProbs[row + blank];
    for (const beam of beams) {
      const total = lse(beam.pb, beam.pnb);
      const same = at(beam.tokens, beam);
      same.pb = lse(same.pb, total + pBlank);
      const last = beam.tokens.length > 0 ? beam.tokens[beam.tokens.length - 1] : -1;
      for (const c of classes) {
        const p = logProbs[row + c];
        if (c === last) {
          same.pnb = lse(same.pnb, beam.pnb + p); // "a a" with no blank between: still "a"
          const ext = at([...beam.tokens, c], beam);
          ext.pnb = lse(ext.pnb, beam.pb + p); // "a _ a": "aa"
        } else {
          const ext = at([...beam.tokens, c], beam);
          ext.pnb = lse(ext.pnb, total + p);
        }
      }
    }
    // Impossible prefixes ("a a" right after "a" with no blank yet) would only take beam slots.
    beams = [...next.values()].filter((b) => lse(b.pb, b.pnb) > NEG_INF).sort((a, b) => rank(b) - rank(a)).slice(0, width);
  }
  const end = (b: Beam): number => (lm ? lm.weight * lm.model.logProbEnd(b.tokens) : 0);
  return beams.map((b) => ({ tokens: b.tokens, logProb: lse(b.pb, b.pnb), score: rank(b) + end(b) })).sort((a, b) => b.score - a.score);
}

export interface BatchDecodeOptions {
  method: 'greedy' | 'beam';
  /** For 'beam'. */
  beamWidth?: number;
  tokenPrune?: number;
  blank?: number;
  /** For 'beam': shallow fusion with a character LM. */
  lm?: LmFusion;
}

/**
 * Decodes a batch read back once from the device: scores [B, T, C] row-major (logits), frames past lengths[b] ignored.
 * Returns the best token sequence per utterance.
 */
export function decodeBatch(
  scores: ArrayLike<number>, shape: readonly [number, number, number], lengths: ArrayLike<number>, o: BatchDecodeOptions,
): number[][] {
  const [B, T, C] = shape;
  if (scores.length < B * T * C) throw new RangeError(`ctc decode: scores of length ${scores.length} cannot hold [${shape}]`);
  if (lengths.length !== B) throw new RangeError(`ctc decode: ${lengths.length} lengths for a batch of ${B}`);
  const out: number[][] = [];
  for (let b = 0; b < B; b++) {
    const n = lengths[b];
    if (!Number.isInteger(n) || n < 0 || n > T) throw new RangeError(`ctc decode: lengths[${b}] = ${n} is outside [0, ${T}]`);
    const from = b * T * C;
    const to = (b * T + n) * C;
    const rows = ArrayBuffer.isView(scores) ? (scores as Float32Array).subarray(from, to) : Array.from(scores).slice(from, to);
    if (o.method === 'greedy') {
      out.push(greedyDecode(rows, n, C, o.blank));
    } else {
      const hyps = prefixBeamSearch(logSoftmaxRows(rows, n, C), n, C, {
        beamWidth: o.beamWidth ?? 8, blank: o.blank, tokenPrune: o.tokenPrune, lm: o.lm,
      });
      out.push(hyps[0]?.tokens ?? []);
    }
  }
  return out;
}
