// WER and CER on a hand-computed set (substitutions, insertions, deletions, empty hypothesis, empty reference),
// edit distances against a textbook full-matrix Levenshtein on random sequences, and summable records.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addEditStats, cerStats, editStats, editStatsFromRecord, editStatsToRecord, emptyEditStats, errorRate, werStats } from '../../../../shared/scoring/index.js';

// [reference, hypothesis, substitutions, deletions, insertions], worked out by hand.
const WORD_SET: Array<[string, string, number, number, number]> = [
  ['the cat sat on the mat', 'the cat sit on mat', 1, 1, 0], // sat→sit, "the" dropped
  ['a b c', 'a x b c', 0, 0, 1], // x inserted
  ['a b c', '', 0, 3, 0], // empty hypothesis: every reference word deleted
  ['', 'a b', 0, 0, 2], // empty reference: every hypothesis word inserted, reference length 0
  ['', '', 0, 0, 0],
  ['a b', 'c d', 2, 0, 0],
  ['  one   two\tthree ', 'one two three', 0, 0, 0], // whitespace runs separate words only
];

describe('WER by hand', () => {
  for (const [ref, hyp, s, d, i] of WORD_SET) {
    it(`${JSON.stringify(ref)} → ${JSON.stringify(hyp)}: S=${s} D=${d} I=${i}`, () => {
      const st = werStats([ref], [hyp]);
      assert.deepEqual([st.substitutions, st.deletions, st.insertions, st.errors], [s, d, i, s + d + i]);
    });
  }
  it('the set sums: 10 errors over 17 reference words', () => {
    const st = werStats(WORD_SET.map((c) => c[0]), WORD_SET.map((c) => c[1]));
    assert.deepEqual(st, { errors: 10, substitutions: 3, deletions: 4, insertions: 3, refLength: 17, hypLength: 16, segments: 7 });
    assert.equal(errorRate(st), 10 / 17);
  });
  it('an empty reference alone: errors are the insertions, reference length 0, rate +Infinity (0 if no errors)', () => {
    const st = werStats([''], ['a b']);
    assert.deepEqual([st.errors, st.insertions, st.refLength], [2, 2, 0]);
    assert.equal(errorRate(st), Number.POSITIVE_INFINITY);
    assert.equal(errorRate(werStats([''], [''])), 0);
  });
  it('equal-cost alignments are split with the most substitutions: "a b" → "b a" is 2 substitutions', () => {
    const st = werStats(['a b'], ['b a']);
    assert.deepEqual([st.substitutions, st.deletions, st.insertions], [2, 0, 0]);
  });
});

describe('CER by hand', () => {
  it('characters are code points; a space between words is a character unless ignoreSpaces', () => {
    assert.deepEqual(cerStats(['abc'], ['abd']), { errors: 1, substitutions: 1, deletions: 0, insertions: 0, refLength: 3, hypLength: 3, segments: 1 });
    const spaced = cerStats(['ab cd'], ['abcd']);
    assert.deepEqual([spaced.deletions, spaced.errors, spaced.refLength], [1, 1, 5]);
    assert.deepEqual([cerStats(['ab cd'], ['abcd'], { ignoreSpaces: true }).errors, cerStats(['ab cd'], ['abcd'], { ignoreSpaces: true }).refLength], [0, 4]);
    const astral = cerStats(['😀a'], ['a']);
    assert.deepEqual([astral.deletions, astral.refLength], [1, 2]);
  });
  it('whitespace runs and edges count as one space / nothing', () => {
    assert.equal(cerStats(['a  b '], ['a b']).errors, 0);
  });
});

/** Textbook Levenshtein distance, full matrix. */
function levenshtein(a: readonly number[], b: readonly number[]): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  }
  return d[a.length][b.length];
}

describe('edit distance against a reference implementation', () => {
  it('300 random token sequences: distance equal, S+D+I = errors, D − I = |ref| − |hyp|', () => {
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    for (let t = 0; t < 300; t++) {
      const ref = Array.from({ length: rand(12) }, () => rand(4));
      const hyp = Array.from({ length: rand(12) }, () => rand(4));
      const s = editStats(ref, hyp);
      const where = `ref ${ref} hyp ${hyp}`;
      assert.equal(s.errors, levenshtein(ref, hyp), where);
      assert.equal(s.substitutions + s.deletions + s.insertions, s.errors, where);
      assert.equal(s.deletions - s.insertions, ref.length - hyp.length, where);
    }
  });
});

describe('edit statistics add up across ranks', () => {
  it('records of two halves sum to the whole', () => {
    const refs = WORD_SET.map((c) => c[0]);
    const hyps = WORD_SET.map((c) => c[1]);
    const summed: Record<string, number> = {};
    for (const [from, to] of [[0, 3], [3, 7]]) {
      for (const [k, v] of Object.entries(editStatsToRecord(werStats(refs.slice(from, to), hyps.slice(from, to)), 'wer'))) summed[k] = (summed[k] ?? 0) + v;
    }
    assert.deepEqual(editStatsFromRecord(summed, 'wer'), werStats(refs, hyps));
    assert.ok('wer_ref_length' in summed && 'wer_errors' in summed);
    assert.deepEqual(addEditStats(emptyEditStats(), werStats(refs, hyps)), werStats(refs, hyps));
  });
  it('bad input names what is wrong', () => {
    assert.throws(() => werStats(['a'], []), /SGT_DATA_INVALID.*1 references but 0 hypotheses/);
    assert.throws(() => editStatsFromRecord({ wer_errors: 1 }, 'wer'), /"wer_substitutions"/);
  });
});
