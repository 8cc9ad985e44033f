// worker/decode/charlm.ts: interpolated Kneser–Ney values computed by hand from the formulas (Chen & Goodman 1998)
// on a two-sentence corpus; every context's distribution sums to 1 (seen, unseen, short contexts; orders 1–6); the
// errors name what is wrong.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { CharNgramCounter, CharNgramLm, LM_END } from '../../../../worker/decode/charlm.js';
import { textToTokens } from '../../../../worker/decode/ctc.js';
import { Rng } from '../../../../worker/rng.js';

const [A, B] = textToTokens('ab');
const Z = textToTokens('z')[0]!;
const close = (got: number, want: number, what: string) => assert.ok(Math.abs(got - want) <= 1e-12 + 1e-12 * Math.abs(want), `${what}: ${got} ≠ ${want}`);

describe('character n-gram LM (interpolated Kneser–Ney)', () => {
  test('bigram probabilities on {"ab", "a"} equal the hand computation', () => {
    // Padded: <s> a b </s>, <s> a </s>. Bigram counts: (<s> a) 2, (a b) 1, (a </s>) 1, (b </s>) 1 → n1 3, n2 1, D2 = 3/5.
    // Unigram continuation counts: a 1 (after <s>), b 1 (after a), </s> 2 (after a, b): total 4 over 3 types,
    // n1 2, n2 1 → D1 = 1/2. Order 0: 1/29 (28 letter tokens and </s>).
    const lm = CharNgramLm.fromTexts(['ab', 'a'], 2);
    const u = 0.5 * 3 / 4 / 29;
    const p1 = { a: 0.5 / 4 + u, b: 0.5 / 4 + u, end: 1.5 / 4 + u, z: u };
    close(Math.exp(lm.logProb([], A!)), (2 - 0.6) / 2 + 0.6 * 1 / 2 * p1.a, 'p(a | <s>)');
    close(Math.exp(lm.logProb([A!], B!)), (1 - 0.6) / 2 + 0.6 * 2 / 2 * p1.b, 'p(b | a)');
    close(Math.exp(lm.logProbEnd([A!, B!])), (1 - 0.6) / 1 + 0.6 * 1 / 1 * p1.end, 'p(</s> | b)');
    close(Math.exp(lm.logProb([A!], Z)), 0.6 * 2 / 2 * p1.z, 'p(z | a): unseen after a');
    close(Math.exp(lm.logProb([Z], A!)), p1.a, 'p(a | z): unseen context, the unigram');
    // Only the last order − 1 tokens are read.
    assert.equal(lm.logProb([Z, Z, A!], B!), lm.logProb([A!], B!));
  });

  test('every context sums to 1 over the 29 predicted symbols, for orders 1–6', () => {
    const texts = ["go left", "don't stop", "it's one two", "left left right", "seven", "go"];
    const rng = new Rng(3);
    for (let order = 1; order <= 6; order++) {
      const lm = CharNgramLm.fromTexts(texts, order);
      const contexts: number[][] = [[], textToTokens('go'), textToTokens("don't s"), textToTokens('zzzq'), textToTokens('left le')];
      for (let k = 0; k < 20; k++) contexts.push(Array.from({ length: rng.int(8) }, () => 1 + rng.int(28)));
      for (const ctx of contexts) {
        let s = 0;
        for (let sym = 1; sym <= LM_END; sym++) {
          const p = Math.exp(lm.logProb(ctx, sym));
          assert.ok(p > 0, `order ${order}, [${ctx}] → ${sym}: p = 0`);
          s += p;
        }
        close(s, 1, `order ${order}, context [${ctx}]: Σp`);
      }
    }
  });

  test('a higher order prefers the words it was counted on', () => {
    const lm = CharNgramLm.fromTexts(['five go', 'go five', 'five five'], 5);
    const score = (t: string) => [...textToTokens(t), LM_END].reduce((s, x, i, a) => s + lm.logProb(a.slice(0, i), x), 0);
    assert.ok(score('five go') > score('fevegor') + 5, `${score('five go')} vs ${score('fevegor')}`);
  });

  test('errors name the order, the symbol, the transcript character', () => {
    assert.throws(() => CharNgramLm.fromTexts(['a'], 0), /order 0 must be an integer in \[1, 20\]/);
    assert.throws(() => CharNgramLm.fromTexts([], 3), /no text/);
    assert.throws(() => CharNgramLm.fromTexts(['a1'], 3), /"1".*position 1 of "a1"/);
    const small = new CharNgramCounter(3, 40);
    small.add('go left');
    assert.throws(() => small.add('seven right now'), /more than 40 distinct n-grams of order ≤ 3 after 2 transcripts.*lower the order/);
    const lm = CharNgramLm.fromTexts(['a'], 2);
    assert.throws(() => lm.logProb([], 0), /symbol 0 is outside \[1, 29\]/);
    assert.throws(() => lm.logProb([], 30), /symbol 30/);
  });
});
