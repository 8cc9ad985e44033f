// BLEU against sacreBLEU 2.6.0: every case and option of bleu_cases.json (score within 0.01, identical n-gram
// counts, totals and lengths), the edge-case fixture, a closed-form example, and shard sums equal to the whole.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addBleuStats, bleuFromStats, bleuSegmentStats, bleuStats, bleuStatsFromRecord, bleuStatsToRecord, corpusBleu, emptyBleuStats, sentenceBleu, type BleuOptions, type BleuScore, type BleuScoreOptions } from '../../../../shared/scoring/index.js';
import { edgeFixture, near, refStreams, translationCases, type SacreBleuResult } from './fixtures.js';

function assertMatches(got: BleuScore, want: SacreBleuResult, scoreTol: number, what: string): void {
  assert.ok(near(got.score, want.score, 0, scoreTol), `${what}: score ${got.score} vs sacreBLEU ${want.score}`);
  assert.deepEqual(got.counts, want.counts, `${what}: n-gram counts`);
  assert.deepEqual(got.totals, want.totals, `${what}: n-gram totals`);
  assert.equal(got.sysLen, want.sys_len, `${what}: sys_len`);
  assert.equal(got.refLen, want.ref_len, `${what}: ref_len`);
  assert.ok(near(got.bp, want.bp, 1e-12, 1e-12), `${what}: bp ${got.bp} vs ${want.bp}`);
  if (want.precisions) {
    want.precisions.forEach((p, i) => assert.ok(near(got.precisions[i], p, 1e-12, 1e-12), `${what}: precision ${i + 1} ${got.precisions[i]} vs ${p}`));
  }
}

describe('BLEU on the translation sets (bleu_cases.json, sacreBLEU 2.6.0)', () => {
  const cases = translationCases();
  it('the fixture holds cases', () => assert.ok(cases.length > 0));
  for (const c of cases) {
    describe(c.name, () => {
      for (const [key, want] of Object.entries(c.scores)) {
        const m = /^bleu tokenize=(\S+) lowercase=(True|False)$/.exec(key);
        if (!m) continue;
        it(`corpus BLEU ${key}`, () => {
          const got = corpusBleu(c.hypotheses, c.references, { tokenize: m[1] as BleuOptions['tokenize'], lowercase: m[2] === 'True' });
          assertMatches(got, want as SacreBleuResult, 0.01, `${c.name} ${key}`);
        });
      }
      const sentenceKey = Object.keys(c.scores).find((k) => k.startsWith('sentence_bleu'));
      if (sentenceKey) {
        it(sentenceKey, () => {
          const want = c.scores[sentenceKey] as number[];
          assert.ok(want.length > 0);
          want.forEach((w, i) => {
            const got = sentenceBleu(c.hypotheses[i], c.references.map((r) => r[i]), { tokenize: '13a', smooth: 'exp' }).score;
            assert.ok(near(got, w, 0, 0.01), `${c.name} line ${i + 1}: sentence BLEU ${got} vs sacreBLEU ${w}`);
          });
        });
      }
    });
  }
});

describe('BLEU on the edge cases (sacrebleu_edge_cases.json)', () => {
  for (const c of edgeFixture().cases) {
    const refs = refStreams(c);
    it(`${c.name}: corpus BLEU, ${c.bleu_corpus.length} option sets`, () => {
      for (const want of c.bleu_corpus) {
        const got = corpusBleu(c.hypotheses, refs, want.options as BleuOptions & BleuScoreOptions);
        assertMatches(got, want, 1e-9 * Math.max(1, want.score), `${c.name} ${JSON.stringify(want.options)}`);
      }
    });
    it(`${c.name}: sentence BLEU, ${c.bleu_sentence.length} option sets`, () => {
      for (const set of c.bleu_sentence) {
        set.results.forEach((want, i) => {
          const got = sentenceBleu(c.hypotheses[i], refs.map((r) => r[i]), set.options as BleuOptions & BleuScoreOptions);
          assertMatches(got, want, 1e-9 * Math.max(1, want.score), `${c.name} line ${i + 1} ${JSON.stringify(set.options)}`);
        });
      }
    });
  }
});

describe('BLEU closed form', () => {
  it('hyp "the cat sat on the mat" vs ref "the cat is on the mat": precisions 5/6, 3/5, 1/4 and exp-smoothed 1/(2·3)', () => {
    const s = corpusBleu(['the cat sat on the mat'], [['the cat is on the mat']]);
    assert.deepEqual(s.counts, [5, 3, 1, 0]);
    assert.deepEqual(s.totals, [6, 5, 4, 3]);
    assert.equal(s.bp, 1);
    const want = 100 * Math.pow((5 / 6) * (3 / 5) * (1 / 4) * (1 / 6), 1 / 4);
    assert.ok(near(s.score, want, 1e-12, 0), `${s.score} vs ${want}`);
  });
  it('brevity penalty exp(1 − r/c) when the hypothesis is shorter; 0 matches give 0 whatever the smoothing', () => {
    const s = corpusBleu(['a b c'], [['a b c d e f']]);
    assert.ok(near(s.bp, Math.exp(1 - 6 / 3), 1e-15, 0));
    for (const smooth of ['exp', 'floor', 'add-k', 'none'] as const) assert.equal(corpusBleu(['x y'], [['a b']], { smooth }).score, 0);
  });
  it('an empty hypothesis set scores 0 with bp 0', () => {
    const s = corpusBleu([''], [['a b']]);
    assert.equal(s.score, 0);
    assert.equal(s.bp, 0);
  });
});

describe('BLEU statistics add up across ranks', () => {
  for (const c of translationCases()) {
    it(`${c.name}: three shards, summed as records, score once = whole corpus`, () => {
      const n = c.hypotheses.length;
      const cuts = [0, Math.floor(n / 3), Math.floor((2 * n) / 3), n];
      const records = cuts.slice(0, -1).map((from, k) =>
        bleuStatsToRecord(bleuStats(c.hypotheses.slice(from, cuts[k + 1]), c.references.map((r) => r.slice(from, cuts[k + 1])))),
      );
      // The all-reduce: key-wise sums of Record<string, number>.
      const summed: Record<string, number> = {};
      for (const r of records) for (const [k, v] of Object.entries(r)) summed[k] = (summed[k] ?? 0) + v;
      const fromShards = bleuFromStats(bleuStatsFromRecord(summed));
      const whole = corpusBleu(c.hypotheses, c.references);
      assert.deepEqual(fromShards, whole);
    });
  }
  it('segment statistics sum to the corpus statistics', () => {
    const c = translationCases()[0];
    const total = emptyBleuStats();
    for (const s of bleuSegmentStats(c.hypotheses, c.references, { tokenize: 'intl' })) addBleuStats(total, s);
    assert.deepEqual(total, bleuStats(c.hypotheses, c.references, { tokenize: 'intl' }));
  });
  it('record keys are named sums', () => {
    assert.deepEqual(Object.keys(bleuStatsToRecord(emptyBleuStats())).sort(), ['bleu_counts_1', 'bleu_counts_2', 'bleu_counts_3', 'bleu_counts_4', 'bleu_ref_len', 'bleu_sys_len', 'bleu_totals_1', 'bleu_totals_2', 'bleu_totals_3', 'bleu_totals_4']);
  });
});

describe('BLEU bad input', () => {
  it('a reference stream of another length names the stream and both counts', () => {
    assert.throws(() => corpusBleu(['a', 'b'], [['a', 'b'], ['a']]), /SGT_DATA_INVALID.*reference stream 2 has 1 segments but there are 2 hypotheses/);
  });
  it('no reference stream, or a segment without any reference', () => {
    assert.throws(() => corpusBleu(['a'], []), /SGT_DATA_INVALID.*at least one reference stream/);
    assert.throws(() => corpusBleu(['a', 'b'], [['a', undefined]]), /SGT_DATA_INVALID: segment 2 has no reference/);
  });
  it('unknown tokenizer or smoothing names the value and the choices', () => {
    assert.throws(() => corpusBleu(['a'], [['a']], { tokenize: 'zh' as never }), /SGT_CONFIG_INVALID.*"zh".*13a, intl, char, none/);
    assert.throws(() => corpusBleu(['a'], [['a']], { smooth: 'lin' as never }), /SGT_CONFIG_INVALID.*"lin"/);
  });
  it('a statistics record with a missing or negative entry names the key', () => {
    const r = bleuStatsToRecord(emptyBleuStats());
    delete r.bleu_totals_3;
    assert.throws(() => bleuStatsFromRecord(r), /SGT_DATA_INVALID.*"bleu_totals_3"/);
    assert.throws(() => bleuStatsFromRecord({ ...bleuStatsToRecord(emptyBleuStats()), bleu_sys_len: -1 }), /"bleu_sys_len".*-1/);
  });
});
