// Vocabularies past the tokenizers trainer's fixed 30 000 tokens (issue 12: the paper's joint BPE is ~41k): the
// trainer's vocabulary stays a prefix, the first merge past it is the most frequent within-word pair of the corpus
// as the library's own encoder segments it, and the library encodes and decodes with the larger file.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extendMerges, segment } from '../../../../../worker/data/wmt/bpe_extend.js';
import { loadVocab, trainVocab, TRAINER_LIMIT } from '../../../../../worker/data/wmt/vocab.js';
import { Rng } from '../../../../../worker/rng.js';

/** Sentences of 8 random lowercase words (6–12 letters) drawn from `types` words, the lower ones more often. */
function corpus(types: number, sentences: number, seed: number): string[] {
  const r = new Rng(seed);
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  const words: string[] = [];
  for (let i = 0; i < types; i++) {
    let w = '';
    for (let j = 6 + r.int(7); j > 0; j--) w += letters[r.int(26)];
    words.push(w);
  }
  return Array.from({ length: sentences }, () => Array.from({ length: 8 }, () => words[Math.floor(types * r.next() ** 2)]!).join(' '));
}

interface VocabJson { model: { vocab: Record<string, number>; merges: [string, string][] } }

describe('BPE past the trainer limit', () => {
  it('segment: lowest-rank pair first, every occurrence left to right', () => {
    const ranks = new Map([['a b', 0], ['b c', 1], ['ab c', 2]]);
    assert.deepEqual(segment('abcbc', ranks), ['abc', 'bc']);
    assert.deepEqual(segment('bbb', new Map([['b b', 0]])), ['bb', 'b']);
    assert.deepEqual(segment('xy', ranks), ['x', 'y']);
  });

  it('extendMerges: most frequent pair first (ties: lower ids), counts updated after each merge', () => {
    // "abab"×3, "cab"×2: pairs ab 8, ba 3, ca 2 → merge ab; then (ab)(ab) 3, c(ab) 2 → merge abab; then c+ab.
    const words = new Map([['abab', 3], ['cab', 2]]);
    const r = extendMerges(words, ['a', 'b', 'c'], [], 3);
    assert.deepEqual(r.merges, [['a', 'b'], ['ab', 'ab'], ['c', 'ab']]);
    assert.deepEqual(r.tokens, ['ab', 'abab', 'cab']);
    // Nothing left to merge: stops short of `want`.
    assert.equal(extendMerges(words, ['a', 'b', 'c'], [], 10).tokens.length, 3);
    // Tie (x y and y z both 1): the pair of lower ids.
    assert.deepEqual(extendMerges(new Map([['xyz', 1]]), ['z', 'y', 'x'], [], 1).merges, [['y', 'z']]);
  });

  it('a 41 000-token vocabulary: the trainer\'s vocabulary is its prefix, the next merge is the top pair, the library uses it', async () => {
    const text = corpus(30000, 16000, 7);
    const full = await mkdtemp(join(tmpdir(), 'bpe41k-'));
    const base = await mkdtemp(join(tmpdir(), 'bpe30k-'));
    try {
      const t = await trainVocab(text, full, { vocabSize: 41000, hardLimit: true });
      assert.equal(t.size, 41000);
      assert.ok(t.extended > 10000, `merges past the trainer: ${t.extended}`);
      // Everything the trainer learns: 4 specials + 256 bytes + its TRAINER_LIMIT tokens (alphabet and merges).
      const b = await trainVocab(text, base, { vocabSize: 260 + TRAINER_LIMIT, hardLimit: true });
      assert.equal(b.extended, 0);
      const J = JSON.parse(await readFile(t.path, 'utf8')) as VocabJson;
      const B = JSON.parse(await readFile(b.path, 'utf8')) as VocabJson;
      const idsB = Object.entries(B.model.vocab);
      assert.ok(idsB.every(([tok, id]) => J.model.vocab[tok] === id), 'the trainer\'s tokens keep their ids');
      assert.deepEqual(J.model.merges.slice(0, B.model.merges.length), B.model.merges);

      // The first merge past the trainer: the most frequent adjacent pair inside words (second token not "▁…"),
      // counted over the corpus as the library's encoder segments it with the trainer's vocabulary.
      const vb = await loadVocab(base);
      const name = new Map(idsB.map(([tok, id]) => [id, tok]));
      const pairs = new Map<string, number>();
      for (const ids of await vb.encodeBatch(text)) {
        for (let i = 0; i + 1 < ids.length; i++) {
          const y = name.get(ids[i + 1]!)!;
          if (!y.startsWith('▁')) pairs.set(`${name.get(ids[i]!)} ${y}`, (pairs.get(`${name.get(ids[i]!)} ${y}`) ?? 0) + 1);
        }
      }
      const top = Math.max(...pairs.values());
      const first = J.model.merges[B.model.merges.length]!.join(' ');
      assert.equal(pairs.get(first), top, `first merge past the trainer "${first}" occurs ${pairs.get(first)} times; the top pair ${top}`);

      // The library encodes with the new merges (fewer tokens) and decodes losslessly.
      const v = await loadVocab(full);
      const sample = text.slice(0, 200);
      const n41 = (await v.encodeBatch(sample)).reduce((a, x) => a + x.length, 0);
      const n30 = (await vb.encodeBatch(sample)).reduce((a, x) => a + x.length, 0);
      assert.ok(n41 < n30, `${n41} tokens with 41k vs ${n30} with the trainer's`);
      for (const s of sample.slice(0, 20)) assert.equal(await v.decode(await v.encode(s)), s);
    } finally {
      await rm(full, { recursive: true, force: true });
      await rm(base, { recursive: true, force: true });
    }
  });
});
