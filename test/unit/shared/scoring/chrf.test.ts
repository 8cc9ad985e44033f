// chrF and chrF++ against sacreBLEU 2.6.0 (bleu_cases.json within 0.01; edge cases with every option to 1e-9),
// a hand-computed example, and shard statistics that sum to the whole.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addChrfStats, chrfFromStats, chrfSegmentStats, chrfStats, chrfStatsFromRecord, chrfStatsKeys, chrfStatsLength, chrfStatsToRecord, corpusChrf, sentenceChrf, type ChrfOptions } from '../../../../shared/scoring/index.js';
import { edgeFixture, near, refStreams, translationCases } from './fixtures.js';

describe('chrF on the translation sets (bleu_cases.json, sacreBLEU 2.6.0)', () => {
  for (const c of translationCases()) {
    for (const [key, opts] of [['chrF', {}], ['chrF++ (word_order=2)', { wordOrder: 2 }]] as const) {
      if (!(key in c.scores)) continue;
      it(`${c.name}: ${key}`, () => {
        const want = c.scores[key] as number;
        const got = corpusChrf(c.hypotheses, c.references, opts);
        assert.ok(near(got, want, 0, 0.01), `${c.name} ${key}: ${got} vs sacreBLEU ${want}`);
      });
    }
  }
});

describe('chrF on the edge cases (sacrebleu_edge_cases.json)', () => {
  for (const c of edgeFixture().cases) {
    const refs = refStreams(c);
    it(`${c.name}: corpus and sentence chrF, ${c.chrf_corpus.length} option sets`, () => {
      for (const want of c.chrf_corpus) {
        const got = corpusChrf(c.hypotheses, refs, want.options as ChrfOptions);
        assert.ok(near(got, want.score, 1e-12, 1e-9), `${c.name} ${JSON.stringify(want.options)}: ${got} vs ${want.score}`);
      }
      for (const set of c.chrf_sentence) {
        set.scores.forEach((want, i) => {
          const got = sentenceChrf(c.hypotheses[i], refs.map((r) => r[i]), set.options as ChrfOptions);
          assert.ok(near(got, want, 1e-12, 1e-9), `${c.name} line ${i + 1} ${JSON.stringify(set.options)}: ${got} vs ${want}`);
        });
      }
    });
  }
});

describe('chrF by hand', () => {
  it('"abc" vs "abd", char order 2: P = R = (2/3 + 1/2)/2, so F = 7/12', () => {
    const stats = chrfStats(['abc'], [['abd']], { charOrder: 2 });
    assert.deepEqual(stats, [3, 3, 2, 2, 2, 1]);
    assert.ok(near(chrfFromStats(stats, { charOrder: 2 }), (100 * 7) / 12, 1e-14, 0));
  });
  it('whitespace is removed before character n-grams unless asked', () => {
    assert.deepEqual(chrfStats(['a b'], [['ab']], { charOrder: 2 }), [2, 2, 2, 1, 1, 1]);
    assert.deepEqual(chrfStats(['a b'], [['ab']], { charOrder: 2, whitespace: true }), [3, 2, 2, 2, 1, 0]);
  });
  it('with several references the segment takes the best one', () => {
    const best = chrfStats(['abc'], [['xyz'], ['abc']]);
    assert.deepEqual(best, chrfStats(['abc'], [['abc']]));
    assert.equal(chrfFromStats(best), 100);
  });
});

describe('chrF statistics add up across ranks', () => {
  for (const opts of [{}, { wordOrder: 2 }] as ChrfOptions[]) {
    it(`three shards summed as records = whole corpus ${JSON.stringify(opts)}`, () => {
      const c = translationCases().find((x) => x.references.length > 1) ?? translationCases()[0];
      const n = c.hypotheses.length;
      const cuts = [0, Math.floor(n / 3), Math.floor((2 * n) / 3), n];
      const summed: Record<string, number> = {};
      for (let k = 0; k < 3; k++) {
        const r = chrfStatsToRecord(chrfStats(c.hypotheses.slice(cuts[k], cuts[k + 1]), c.references.map((s) => s.slice(cuts[k], cuts[k + 1])), opts), opts);
        for (const [key, v] of Object.entries(r)) summed[key] = (summed[key] ?? 0) + v;
      }
      assert.equal(chrfFromStats(chrfStatsFromRecord(summed, opts), opts), corpusChrf(c.hypotheses, c.references, opts));
    });
  }
  it('segment statistics sum to the corpus statistics; key names follow the orders', () => {
    const c = translationCases()[0];
    const total = new Array<number>(chrfStatsLength({ wordOrder: 2 })).fill(0);
    for (const s of chrfSegmentStats(c.hypotheses, c.references, { wordOrder: 2 })) addChrfStats(total, s);
    assert.deepEqual(total, chrfStats(c.hypotheses, c.references, { wordOrder: 2 }));
    assert.deepEqual(chrfStatsKeys({ charOrder: 1, wordOrder: 1 }), ['chrf_c1_hyp', 'chrf_c1_ref', 'chrf_c1_match', 'chrf_w1_hyp', 'chrf_w1_ref', 'chrf_w1_match']);
  });
});

describe('chrF bad input', () => {
  it('mismatched streams, missing references, bad options and statistics of other orders are errors naming them', () => {
    assert.throws(() => corpusChrf(['a', 'b'], [['a']]), /SGT_DATA_INVALID.*reference stream 1 has 1 segments but there are 2 hypotheses/);
    assert.throws(() => corpusChrf(['a'], [[undefined]]), /SGT_DATA_INVALID: segment 1 has no reference/);
    assert.throws(() => corpusChrf(['a'], [['a']], { charOrder: -1 }), /SGT_CONFIG_INVALID.*charOrder.*-1/);
    assert.throws(() => chrfFromStats([1, 2, 3], {}), /SGT_DATA_INVALID.*3 entries, expected 18/);
    assert.throws(() => chrfStatsFromRecord({}, { charOrder: 1 }), /"chrf_c1_hyp"/);
  });
});
