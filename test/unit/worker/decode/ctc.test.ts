// worker/decode/ctc.ts: greedy and prefix beam search on hand-made posteriors (where they differ in the known way),
// beam width 1 against greedy on peaky posteriors, and a wide beam against brute force over every alignment.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  LETTER_TOKENS, decodeBatch, greedyDecode, logSoftmaxRows, prefixBeamSearch, textToTokens, tokensToText,
} from '../../../../worker/decode/ctc.js';
import { CharNgramLm } from '../../../../worker/decode/charlm.js';
import { Rng } from '../../../../worker/rng.js';

const logOf = (probs: number[][]): Float64Array => Float64Array.from(probs.flat(), Math.log);

/** Every alignment of T frames over C classes, collapsed; total probability per labelling. Independent of the decoder. */
function bruteForce(probs: number[][], blank = 0): Map<string, number> {
  const T = probs.length;
  const C = probs[0].length;
  const totals = new Map<string, number>();
  const path = new Array<number>(T).fill(0);
  for (let code = 0; code < C ** T; code++) {
    let p = 1;
    let rest = code;
    for (let t = 0; t < T; t++) {
      path[t] = rest % C;
      rest = Math.floor(rest / C);
      p *= probs[t][path[t]];
    }
    const label: number[] = [];
    path.forEach((c, t) => { if (c !== blank && (t === 0 || path[t - 1] !== c)) label.push(c); });
    const key = label.join(',');
    totals.set(key, (totals.get(key) ?? 0) + p);
  }
  return totals;
}

function randomPosteriors(rng: Rng, T: number, C: number, peak = 0): number[][] {
  return Array.from({ length: T }, () => {
    const raw = Array.from({ length: C }, () => rng.next() + 0.05);
    if (peak > 0) {
      const k = Math.floor(rng.next() * C);
      const rest = raw.reduce((s, v, i) => (i === k ? s : s + v), 0);
      return raw.map((v, i) => (i === k ? peak : ((1 - peak) * v) / rest));
    }
    const z = raw.reduce((s, v) => s + v, 0);
    return raw.map((v) => v / z);
  });
}

describe('greedy decoding', () => {
  test('collapses repeats, drops blanks, keeps a label repeated across a blank', () => {
    // argmax per frame: a a _ a b b _ _ b  → a a b b
    const seq = [1, 1, 0, 1, 2, 2, 0, 0, 2];
    const scores = seq.flatMap((k) => [0, 1, 2].map((c) => (c === k ? 2 : 0)));
    assert.deepEqual(greedyDecode(scores, seq.length, 3), [1, 1, 2, 2]);
    assert.deepEqual(greedyDecode([], 0, 3), []);
  });
});

describe('prefix beam search', () => {
  test('finds the labelling greedy misses when its probability is spread over many alignments', () => {
    // p(blank) = 0.6 each frame: the best path is "_ _" (0.36), but "a" totals 0.4·0.6 + 0.6·0.4 + 0.4·0.4 = 0.64.
    const probs = [[0.6, 0.4], [0.6, 0.4]];
    assert.deepEqual(greedyDecode(logOf(probs), 2, 2), []);
    const [best, second] = prefixBeamSearch(logOf(probs), 2, 2, { beamWidth: 4 });
    assert.deepEqual(best.tokens, [1]);
    assert.ok(Math.abs(best.logProb - Math.log(0.64)) < 1e-12);
    assert.deepEqual(second.tokens, []);
    assert.ok(Math.abs(second.logProb - Math.log(0.36)) < 1e-12);
  });

  test('a wide beam finds the most probable labelling and its exact probability (brute force, tiny T and C)', () => {
    const rng = new Rng(11);
    for (let trial = 0; trial < 40; trial++) {
      const T = 1 + (trial % 6);
      const C = 2 + (trial % 3);
      const probs = randomPosteriors(rng, T, C);
      const exact = bruteForce(probs);
      const [bestKey, bestP] = [...exact.entries()].sort((a, b) => b[1] - a[1])[0];
      const hyps = prefixBeamSearch(logOf(probs), T, C, { beamWidth: 10_000 });
      assert.equal(hyps[0].tokens.join(','), bestKey, `trial ${trial}: T=${T} C=${C}`);
      assert.ok(Math.abs(Math.exp(hyps[0].logProb) - bestP) <= 1e-12 + 1e-9 * bestP);
      // Every hypothesis carries its labelling's exact total probability; together they account for everything.
      let total = 0;
      for (const h of hyps) {
        const p = exact.get(h.tokens.join(','))!;
        assert.ok(Math.abs(Math.exp(h.logProb) - p) <= 1e-12 + 1e-9 * p, `trial ${trial}: [${h.tokens}]`);
        total += Math.exp(h.logProb);
      }
      assert.ok(Math.abs(total - 1) < 1e-9, `trial ${trial}: probabilities sum to ${total}`);
    }
  });

  test('width 1 equals greedy on peaky posteriors (dominant class ≥ 0.9 per frame)', () => {
    const rng = new Rng(5);
    for (let trial = 0; trial < 50; trial++) {
      const T = 5 + (trial % 20);
      const C = 3 + (trial % 5);
      const probs = randomPosteriors(rng, T, C, 0.9 + 0.09 * rng.next());
      const lp = logOf(probs);
      assert.deepEqual(prefixBeamSearch(lp, T, C, { beamWidth: 1 })[0].tokens, greedyDecode(lp, T, C), `trial ${trial}`);
    }
  });

  test('token pruning keeps the result on peaky posteriors and validates its options', () => {
    const rng = new Rng(9);
    const probs = randomPosteriors(rng, 30, 6, 0.95);
    const lp = logOf(probs);
    const full = prefixBeamSearch(lp, 30, 6, { beamWidth: 8 });
    const pruned = prefixBeamSearch(lp, 30, 6, { beamWidth: 8, tokenPrune: 8 });
    assert.deepEqual(pruned[0].tokens, full[0].tokens);
    assert.throws(() => prefixBeamSearch(lp, 30, 6, { beamWidth: 0 }), /beamWidth 0/);
    assert.throws(() => prefixBeamSearch(lp, 30, 6, { beamWidth: 2, tokenPrune: 0 }), /tokenPrune 0/);
    assert.throws(() => prefixBeamSearch(lp, 31, 6, { beamWidth: 2 }), /cannot hold \[T=31, C=6\]/);
  });
});

describe('prefix beam search with a character LM (shallow fusion)', () => {
  // Classes 0 blank, 1 word boundary, 2 apostrophe, 3 "a": the first four letter tokens.
  const lm = CharNgramLm.fromTexts(['a a', 'aa', "a'a", 'a'], 3);
  const fused = (key: string, p: number, weight: number, bonus: number): number => {
    const toks = key === '' ? [] : key.split(',').map(Number);
    let s = Math.log(p) + bonus * toks.length + weight * lm.logProbEnd(toks);
    toks.forEach((x, i) => (s += weight * lm.logProb(toks.slice(0, i), x)));
    return s;
  };

  test('a wide beam finds the labelling of highest log p_ctc + weight·log p_lm + bonus·tokens (brute force)', () => {
    const rng = new Rng(17);
    for (let trial = 0; trial < 40; trial++) {
      const T = 1 + (trial % 5);
      const probs = randomPosteriors(rng, T, 4);
      const [weight, bonus] = [0.3 + rng.next(), rng.next() * 2 - 0.5];
      const scored = [...bruteForce(probs).entries()].map(([k, p]) => [k, fused(k, p, weight, bonus)] as const).sort((a, b) => b[1] - a[1]);
      const hyps = prefixBeamSearch(logOf(probs), T, 4, { beamWidth: 10_000, lm: { model: lm, weight, bonus } });
      assert.equal(hyps[0]!.tokens.join(','), scored[0]![0], `trial ${trial}: T=${T}`);
      for (const h of hyps.slice(0, 5)) {
        const want = scored.find(([k]) => k === h.tokens.join(','))![1];
        assert.ok(Math.abs(h.score - want) <= 1e-9 * (1 + Math.abs(want)), `trial ${trial} [${h.tokens}]: ${h.score} vs ${want}`);
      }
    }
  });

  test('the LM turns a narrowly misheard letter into the spelling it was counted on; weight 0 keeps the acoustics', () => {
    // Frames: g, o, then "a" 0.45 against "t" 0.55 → the acoustics alone read "got"; an LM of "goa" reads "goa".
    const C = LETTER_TOKENS.length;
    const frames = [{ g: 0.9 }, { o: 0.9 }, { a: 0.45, t: 0.55 }] as Record<string, number>[];
    const probs = frames.map((f) => Array.from({ length: C }, (_, c) => f[LETTER_TOKENS[c]!] ?? 1e-4));
    const lp = logSoftmaxRows(Float64Array.from(probs.flat(), Math.log), 3, C);
    const goa = CharNgramLm.fromTexts(['goa', 'goa goa'], 4);
    assert.equal(tokensToText(prefixBeamSearch(lp, 3, C, { beamWidth: 8 })[0]!.tokens), 'got');
    assert.equal(tokensToText(prefixBeamSearch(lp, 3, C, { beamWidth: 8, lm: { model: goa, weight: 0, bonus: 0 } })[0]!.tokens), 'got');
    assert.equal(tokensToText(prefixBeamSearch(lp, 3, C, { beamWidth: 8, lm: { model: goa, weight: 0.5, bonus: 0 } })[0]!.tokens), 'goa');
    assert.throws(() => prefixBeamSearch(lp, 3, C, { beamWidth: 8, lm: { model: goa, weight: -1, bonus: 0 } }), /LM weight -1/);
  });
});

describe('batches and the letter vocabulary', () => {
  test('decodeBatch reads each utterance up to its length; greedy and beam agree on a clear batch', () => {
    const C = 4;
    const T = 6;
    const frame = (k: number) => [0, 1, 2, 3].map((c) => (c === k ? 5 : 0));
    // utterance 0: a b _ c | padding c c ; utterance 1: c c _ padding…
    const scores = [[1, 2, 0, 3, 3, 3], [3, 3, 0, 1, 2, 1]].flatMap((u) => u.flatMap(frame));
    const want = [[1, 2, 3], [3]];
    assert.deepEqual(decodeBatch(Float32Array.from(scores), [2, T, C], [4, 3], { method: 'greedy' }), want);
    assert.deepEqual(decodeBatch(scores, [2, T, C], [4, 3], { method: 'beam', beamWidth: 4 }), want);
    assert.throws(() => decodeBatch(scores, [2, T, C], [4, 7], { method: 'greedy' }), /lengths\[1\] = 7/);
  });

  test('logSoftmaxRows normalises each frame', () => {
    const lp = logSoftmaxRows([1, 2, 3, -1e3, 0, 1e3], 2, 3);
    for (let t = 0; t < 2; t++) {
      const s = [0, 1, 2].reduce((a, c) => a + Math.exp(lp[t * 3 + c]), 0);
      assert.ok(Math.abs(s - 1) < 1e-12);
    }
  });

  test('29 tokens; text round-trips through token ids; other characters are refused with their position', () => {
    assert.equal(LETTER_TOKENS.length, 29);
    const ids = textToTokens("  HE'S  a Dog ");
    assert.deepEqual(ids.map((i) => LETTER_TOKENS[i]), ['h', 'e', "'", 's', '|', 'a', '|', 'd', 'o', 'g']);
    assert.equal(tokensToText(ids), "he's a dog");
    assert.equal(tokensToText([0, 1, 3, 0, 1, 1, 4, 1]), 'a b');
    assert.throws(() => textToTokens('AB1'), /"1" \(U\+0031\) at position 2/);
    assert.throws(() => textToTokens('a|b'), /"\|"/);
  });
});
