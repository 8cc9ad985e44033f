// Subword vocabulary: exact size, deterministic training (same bytes), lossless encode→decode, special ids.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SigmaError } from '../../../../../shared/errors.js';
import { loadVocab, trainVocab } from '../../../../../worker/data/wmt/vocab.js';
import { Rng } from '../../../../../worker/rng.js';

const ONES = ['', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
const EINS = ['', 'ein', 'zwei', 'drei', 'vier', 'fünf', 'sechs', 'sieben', 'acht', 'neun'];
const TENS = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];
const ZIG = ['', '', 'zwanzig', 'dreißig', 'vierzig', 'fünfzig', 'sechzig', 'siebzig', 'achtzig', 'neunzig'];

/** A small rule-based en/de corpus (number words, with reordering) and some ordinary sentences. */
function corpus(n: number, seed: number): string[] {
  const r = new Rng(seed);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const h = 1 + r.int(9);
    const t = 2 + r.int(8);
    const o = 1 + r.int(9);
    out.push(`${ONES[h]} hundred ${TENS[t]} ${ONES[o]}`);
    out.push(`${EINS[h]}hundert${EINS[o]}und${ZIG[t]}`);
    out.push(`Die Straße ist ${h + t + o} Meter lang, sagte Jörg: „Größer geht's nicht!“`);
  }
  return out;
}

describe('subword vocabulary', () => {
  it('has exactly vocabSize tokens, fairseq special ids, and training is deterministic (same file bytes)', async () => {
    const text = corpus(400, 1);
    const d1 = await mkdtemp(join(tmpdir(), 'vocab-'));
    const d2 = await mkdtemp(join(tmpdir(), 'vocab-'));
    const a = await trainVocab(text, d1, { vocabSize: 400 });
    const b = await trainVocab(text, d2, { vocabSize: 400 });
    const fa = await readFile(a.path);
    const fb = await readFile(b.path);
    assert.ok(fa.equals(fb), 'two trainings on the same text differ');
    assert.equal(a.hash, createHash('sha256').update(fa).digest('hex'));
    assert.equal(a.size, 400);
    const v = await loadVocab(d1);
    assert.equal(v.size, 400);
    assert.equal(v.hash, a.hash);
    assert.deepEqual([v.bos, v.pad, v.eos, v.unk], [0, 1, 2, 3]);
    // a smaller vocabulary is a prefix of the larger one (the first K merges of the same greedy run)
    const c = await trainVocab(text, await mkdtemp(join(tmpdir(), 'vocab-')), { vocabSize: 330 });
    const big = JSON.parse(fa.toString()).model;
    const small = JSON.parse(await readFile(c.path, 'utf8')).model;
    assert.deepEqual(small.merges, big.merges.slice(0, small.merges.length));
    // a different corpus gives a different file
    const other = await trainVocab(corpus(400, 2).reverse(), await mkdtemp(join(tmpdir(), 'vocab-')), { vocabSize: 400 });
    assert.notEqual(other.hash, a.hash);
  });

  it('round-trips encode→decode losslessly, unseen characters included (byte fallback), and compresses seen text', async () => {
    const text = corpus(400, 3);
    const dir = await mkdtemp(join(tmpdir(), 'vocab-'));
    await trainVocab(text, dir, { vocabSize: 500 });
    const v = await loadVocab(dir);
    const probe = [...corpus(50, 99), 'Unseen: ✓ Ж 東京 😀 Ω', 'two  spaces  inside\tand a tab ', 'a'];
    let chars = 0;
    let toks = 0;
    for (const s of probe) {
      const ids = await v.encode(s);
      assert.ok(ids instanceof Int32Array);
      for (const id of ids) assert.ok(id >= 4 || id === 3, `special id ${id} inside a sentence`);
      assert.ok(!ids.includes(v.unk), `unk in ${JSON.stringify(s)}`);
      assert.equal(await v.decode(ids), s);
      chars += s.length;
      toks += ids.length;
    }
    const batch = await v.encodeBatch(probe);
    for (let i = 0; i < probe.length; i++) assert.deepEqual(batch[i], await v.encode(probe[i]!));
    assert.ok(toks < chars / 2, `${toks} tokens for ${chars} characters: the merges are not used`);
    // NFKC (the default, as in SentencePiece) rewrites compatibility characters; with normalization 'none' they survive
    assert.equal(await v.decode(await v.encode('½')), '1⁄2');
    const raw = await mkdtemp(join(tmpdir(), 'vocab-'));
    await trainVocab(text, raw, { vocabSize: 500, normalization: 'none' });
    const vr = await loadVocab(raw);
    assert.equal(await vr.decode(await vr.encode('½ ﬁ ２')), '½ ﬁ ２');
    // decode skips specials
    const ids = await v.encode('one hundred');
    assert.equal(await v.decode(Int32Array.from([v.bos, ...ids, v.eos, v.pad])), 'one hundred');
  });

  it('soft limit (the default): a corpus that cannot fill vocabSize gets every token it yields, and says so', async () => {
    // "a b" / "b a": 4 specials + 256 bytes + alphabet {▁, a, b} + merges "▁a", "▁b" = 265 tokens at most.
    const dir = await mkdtemp(join(tmpdir(), 'vocab-'));
    const t = await trainVocab(['a b', 'b a'], dir, { vocabSize: 5000 });
    assert.equal(t.requested, 5000);
    assert.equal(t.size, 265);
    const v = await loadVocab(dir);
    assert.equal(v.size, 265);
    assert.deepEqual([...(await v.encode('a b'))].length, 2);
    assert.equal(await v.decode(await v.encode('b a')), 'b a');
  });

  it('errors: too small a vocabulary, one the corpus cannot fill, a missing file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vocab-'));
    await assert.rejects(trainVocab(['a b'], dir, { vocabSize: 100 }), (e: unknown) => e instanceof SigmaError && e.code === 'SGT_VOCAB' && /≥ 261/.test(e.message));
    await assert.rejects(trainVocab(['a b', 'b a'], dir, { vocabSize: 5000, hardLimit: true }), (e: unknown) => e instanceof SigmaError && /cannot be reached/.test(e.message));
    await assert.rejects(loadVocab(join(dir, 'nope')), (e: unknown) => e instanceof SigmaError && e.code === 'SGT_VOCAB' && /nope/.test(e.message));
  });
});
