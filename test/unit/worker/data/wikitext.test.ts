// Tests for the WikiText-103 data: streamed lines (chunk boundaries, bad UTF-8, empty/missing files), the word
// vocabulary (counts, order, file round trip), the token cache (round trip, lazy reads, staleness), subword
// encoders, training blocks exactly once across ranks, and the evaluation windows scoring every token once.

import { strict as assert } from 'node:assert';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { SigmaError } from '../../../../shared/errors.js';
import { Rng } from '../../../../worker/rng.js';
import {
  EOS,
  UNK,
  buildTokenCache,
  buildWordVocab,
  ensureTokenCache,
  evalShare,
  evalWindows,
  loadOrBuildWordVocab,
  perplexity,
  planTrainBlocks,
  readLines,
  readVocab,
  scoredRange,
  TokenStream,
  wikitextFile,
  writeVocab,
  type SubwordVocab,
} from '../../../../worker/data/wikitext.js';

const tmpRoot = await fs.mkdtemp(path.join(os.tmpdir(), 'sgt-wikitext-'));
after(() => fs.rm(tmpRoot, { recursive: true, force: true }));

/** A small file in WikiText-103's layout: " = Title = " headings, blank lines around them, <unk>, @-@ @,@ @.@. */
function fixtureText(seed: number, articles: number): string {
  const rng = new Rng(seed);
  const vocab = ['the', 'of', 'and', 'in', 'a', 'was', 'to', 'game', 'Valkyria', 'Chronicles', 'III', 'Senjō', '<unk>',
    '@-@', '@,@', '@.@', '1', '000', '3', '14', 'is', 'war', 'Gallia', 'nation', '"', ',', '.', '(', ')', 'Ōtomo'];
  const out: string[] = [];
  for (let a = 0; a < articles; a++) {
    out.push(' ', ` = ${vocab[8 + rng.int(4)]} ${a} = `, ' ');
    for (let p = 0; p < 3; p++) {
      if (p > 0) out.push(' ', ` = = Section ${p} = = `, ' ');
      const n = 5 + rng.int(40);
      out.push(' ' + Array.from({ length: n }, () => vocab[rng.int(vocab.length)]).join(' ') + ' ');
    }
  }
  return out.join('\n') + '\n';
}

async function put(name: string, text: string | Buffer): Promise<string> {
  const file = path.join(tmpRoot, name);
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, text);
  return file;
}

/** The id stream, computed directly from the text (split lines, whitespace tokens, <eos> per line). */
function expectedIds(text: string, index: Map<string, number>): number[] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.flatMap((l) => [...l.split(/\s+/).filter((w) => w !== '').map((w) => index.get(w) ?? 1), 0]);
}

const isDataError = (file: string) => (err: unknown): boolean =>
  err instanceof SigmaError && err.code === 'SGT_DATA_INVALID' && err.message.includes(file);

describe('readLines', () => {
  it('splits across tiny chunks, multi-byte characters straddling chunk ends, final line without newline', async () => {
    const text = 'ab Ōtomo\n\n = Senjō = \nlast';
    const file = await put('lines.txt', text);
    for (const chunk of [1, 2, 3, 7, 1 << 20]) {
      const got = [];
      for await (const l of readLines(file, chunk)) got.push(l);
      assert.deepEqual(got.map((l) => l.text), ['ab Ōtomo', '', ' = Senjō = ', 'last'], `chunk ${chunk}`);
      assert.deepEqual(got.map((l) => l.lineNo), [1, 2, 3, 4], `chunk ${chunk}`);
    }
  });
  it('an empty or missing file is an error naming the path', async () => {
    const empty = await put('empty/wiki.train.tokens', '');
    await assert.rejects(async () => { for await (const _ of readLines(empty)); }, isDataError(empty));
    const missing = path.join(tmpRoot, 'nope', 'wiki.valid.tokens');
    await assert.rejects(async () => { for await (const _ of readLines(missing)); }, isDataError(missing));
    await assert.rejects(buildWordVocab(missing), isDataError(missing));
  });
  it('bad UTF-8 is an error naming the file, line and byte offset', async () => {
    const file = await put('bad.tokens', Buffer.concat([Buffer.from('ok line\nfine é '), Buffer.from([0xc3, 0x28]), Buffer.from(' x\n')]));
    await assert.rejects(async () => { for await (const _ of readLines(file, 5)); },
      (err: unknown) => isDataError(file)(err) && /line 2/.test((err as Error).message) && /byte offset 16/.test((err as Error).message));
  });
  it('names split files as distributed', () => {
    assert.equal(wikitextFile('/d/wikitext-103', 'valid'), path.join('/d/wikitext-103', 'wiki.valid.tokens'));
    assert.equal(wikitextFile('/d/wikitext-103-raw', 'test', 'raw'), path.join('/d/wikitext-103-raw', 'wiki.test.raw'));
  });
});

describe('word vocabulary', () => {
  it('orders <eos>, <unk>, then by count with code-point ties, <eos> counting lines (empty ones too)', async () => {
    const file = await put('tiny.tokens', 'b a a\n\n c b a <unk>\ny x\n');
    const v = await buildWordVocab(file);
    assert.deepEqual(v.tokens, [EOS, UNK, 'a', 'b', 'c', 'x', 'y']);
    assert.deepEqual(v.counts, [4, 1, 3, 2, 1, 1, 1]);
    const v2 = await buildWordVocab(file, { minCount: 2 });
    assert.deepEqual(v2.tokens, [EOS, UNK, 'a', 'b']);
    assert.deepEqual(v2.counts, [4, 4, 3, 2]); // <unk>: 1 literal + c, x, y
  });
  it('counts every token of a WikiText-format file and round-trips through its file', async () => {
    const text = fixtureText(1, 30);
    const file = await put('wt/wiki.train.tokens', text);
    const v = await buildWordVocab(file);
    const direct = new Map<string, number>();
    for (const w of text.split(/\s+/).filter((s) => s !== '')) direct.set(w, (direct.get(w) ?? 0) + 1);
    assert.equal(v.tokens.length, direct.size + (direct.has(UNK) ? 1 : 2));
    for (const [w, c] of direct) assert.equal(v.counts[v.index.get(w)!], c, w);
    assert.equal(v.counts[0], text.split('\n').length - 1);
    for (let i = 3; i < v.counts.length; i++) assert.ok(v.counts[i - 1]! >= v.counts[i]!);
    const vf = path.join(tmpRoot, 'wt/vocab.txt');
    await writeVocab(vf, v);
    const back = await readVocab(vf);
    assert.deepEqual(back.tokens, v.tokens);
    assert.deepEqual(back.counts, v.counts);
    assert.equal(back.hash, v.hash);
    assert.equal((await buildWordVocab(file)).hash, v.hash, 'deterministic');
    const vf2 = path.join(tmpRoot, 'wt/run/vocab.txt');
    const made = await loadOrBuildWordVocab(file, vf2);
    const loaded = await loadOrBuildWordVocab(file, vf2);
    assert.deepEqual([made.built, loaded.built], [true, false]);
    assert.equal(loaded.vocab.hash, v.hash);
  });
  it('a malformed vocabulary file is an error naming file and line', async () => {
    const vf = await put('badvocab.txt', `${EOS} 3\n${UNK} 0\nfoo bar 2\n`);
    await assert.rejects(readVocab(vf), (err: unknown) => isDataError(vf)(err) && /line 3/.test((err as Error).message));
  });
});

describe('token cache', () => {
  it('round-trips the id stream and reads any range lazily', async () => {
    const text = fixtureText(2, 40);
    const train = await put('c/wiki.train.tokens', text);
    const vocab = await buildWordVocab(train);
    const cache = path.join(tmpRoot, 'c/cache/train.bin');
    const header = await buildTokenCache(train, cache, vocab);
    const want = expectedIds(text, vocab.index);
    const small = path.join(tmpRoot, 'c/cache/train-chunked.bin');
    await buildTokenCache(train, small, vocab, { chunkTokens: 7 }); // many writes, chunks ending mid-line
    assert.deepEqual(Array.from((await fs.readFile(small)).subarray(header.dataOffset)),
      Array.from((await fs.readFile(cache)).subarray(header.dataOffset)));
    assert.equal(header.tokens, want.length);
    assert.equal(header.oov, 0);
    const s = await TokenStream.open(cache);
    try {
      assert.deepEqual(Array.from(await s.read(0, s.length)), want);
      assert.deepEqual(Array.from(await s.read(100, 137)), want.slice(100, 137));
      const { input, target } = await s.inputTarget(0, 5, 0);
      assert.deepEqual(Array.from(target), want.slice(0, 5));
      assert.deepEqual(Array.from(input), [0, ...want.slice(0, 4)]);
      const mid = await s.inputTarget(50, 60, 0);
      assert.deepEqual(Array.from(mid.input), want.slice(49, 59));
      assert.deepEqual(Array.from(mid.target), want.slice(50, 60));
      await assert.rejects(s.read(0, s.length + 1), SigmaError);
    } finally {
      await s.close();
    }
  });
  it('a corrupt cache file is rebuilt, not trusted', async () => {
    const train = await put('k/wiki.train.tokens', 'a b\n');
    const vocab = await buildWordVocab(train);
    const cache = await put('k/train.bin', 'SGTTOK1\n\u0004\u0000\u0000\u0000{bad');
    await assert.rejects(TokenStream.open(cache), (err: unknown) => isDataError(cache)(err));
    const { stream, built } = await ensureTokenCache(train, cache, vocab);
    assert.equal(built, true);
    assert.deepEqual(Array.from(await stream.read(0, stream.length)), [vocab.index.get('a'), vocab.index.get('b'), 0]);
    await stream.close();
  });
  it('maps words outside the vocabulary to <unk> and counts them', async () => {
    const train = await put('o/wiki.train.tokens', 'a b\n');
    const valid = await put('o/wiki.valid.tokens', 'a zz b <eos>\n');
    const vocab = await buildWordVocab(train);
    const h = await buildTokenCache(valid, path.join(tmpRoot, 'o/valid.bin'), vocab);
    assert.equal(h.oov, 2);
    const s = await TokenStream.open(path.join(tmpRoot, 'o/valid.bin'));
    assert.deepEqual(Array.from(await s.read(0, s.length)), [vocab.index.get('a'), 1, vocab.index.get('b'), 1, 0]);
    await s.close();
  });
  it('is reused while source and vocabulary match, rebuilt when either changes', async () => {
    const train = await put('e/wiki.train.tokens', fixtureText(3, 5));
    const vocab = await buildWordVocab(train);
    const cache = path.join(tmpRoot, 'e/train.bin');
    const first = await ensureTokenCache(train, cache, vocab);
    await first.stream.close();
    assert.equal(first.built, true);
    const second = await ensureTokenCache(train, cache, vocab);
    await second.stream.close();
    assert.equal(second.built, false);
    await fs.utimes(train, new Date(), new Date(Date.now() + 5000));
    const third = await ensureTokenCache(train, cache, vocab);
    await third.stream.close();
    assert.equal(third.built, true);
    const other = await buildWordVocab(train, { minCount: 3 });
    const fourth = await ensureTokenCache(train, cache, other);
    assert.equal(fourth.built, true);
    assert.equal(fourth.stream.header.vocabHash, other.hash);
    await fourth.stream.close();
  });
  it('takes a subword encoder instead, with its own <eos>, and rejects ids outside its vocabulary', async () => {
    const text = 'ab c\n\nd\n';
    const file = await put('s/wiki.train.raw', text);
    const enc: SubwordVocab = {
      kind: 'subword', eosId: 2, size: 300, hash: 'bytes-v1',
      encode: (t) => Int32Array.from(Buffer.from(t, 'utf8'), (b) => b + 3),
    };
    await buildTokenCache(file, path.join(tmpRoot, 's/c.bin'), enc);
    const s = await TokenStream.open(path.join(tmpRoot, 's/c.bin'));
    assert.deepEqual(Array.from(await s.read(0, s.length)), [97 + 3, 98 + 3, 32 + 3, 99 + 3, 2, 2, 100 + 3, 2]);
    assert.equal(s.header.vocabHash, 'bytes-v1');
    await s.close();
    await assert.rejects(buildTokenCache(file, path.join(tmpRoot, 's/d.bin'), { ...enc, size: 100 }),
      (err: unknown) => isDataError(file)(err) && /line 1/.test((err as Error).message));
    await assert.rejects(fs.stat(path.join(tmpRoot, 's/d.bin')), 'no cache left behind');
  });
});

describe('training blocks', () => {
  it('every block exactly once per epoch across ranks, equal batch counts, seeded order', () => {
    for (const [numTokens, worldSize, bpb] of [[512 * 37 + 100, 3, 2], [512 * 8, 2, 4], [512 * 5, 4, 1], [100, 2, 1]] as const) {
      const plans = Array.from({ length: worldSize }, (_, rank) =>
        planTrainBlocks({ numTokens, blockSize: 512, seed: 9, epoch: 1, worldSize, rank, blocksPerBatch: bpb }));
      const blocks = Math.floor(numTokens / 512);
      const seen = plans.flatMap((p) => p.batches.flatMap((b) => Array.from(b))).sort((a, b) => a - b);
      assert.deepEqual(seen, Array.from({ length: blocks }, (_, i) => i * 512));
      assert.ok(plans.every((p) => p.batches.length === plans[0]!.batches.length));
      assert.ok(plans.every((p) => p.batches.every((b) => b.length <= bpb)));
      assert.equal(plans[0]!.droppedTail, numTokens - blocks * 512);
    }
    const a = planTrainBlocks({ numTokens: 512 * 50, blockSize: 512, seed: 1, epoch: 0, worldSize: 2, rank: 0, blocksPerBatch: 5 });
    const b = planTrainBlocks({ numTokens: 512 * 50, blockSize: 512, seed: 1, epoch: 0, worldSize: 2, rank: 0, blocksPerBatch: 5 });
    const c = planTrainBlocks({ numTokens: 512 * 50, blockSize: 512, seed: 1, epoch: 1, worldSize: 2, rank: 0, blocksPerBatch: 5 });
    assert.deepEqual(a, b);
    assert.notDeepEqual(a.batches, c.batches);
  });
});

describe('evaluation windows', () => {
  it('score every token exactly once, with full-length windows (property over many lengths and shapes)', () => {
    for (const [w, s] of [[512, 256], [8, 4], [7, 3], [5, 5], [6, 1]] as const) {
      for (let n = 0; n <= 3 * w + 40; n++) {
        const plan = evalWindows(n, w, s);
        const hits = new Uint8Array(n);
        plan.forEach((win, k) => {
          assert.ok(win.start <= win.scoreFrom && win.scoreFrom < win.end && win.end <= n, JSON.stringify(win));
          assert.equal(win.end - win.start, Math.min(w, n), 'every window has full context');
          if (k === 0) assert.equal(win.scoreFrom, 0, 'the first window scores all its tokens');
          else assert.ok(win.end - win.scoreFrom <= s, 'later windows score at most the stride');
          for (let i = win.scoreFrom; i < win.end; i++) hits[i]!++;
        });
        assert.ok(hits.every((h) => h === 1), `n=${n} w=${w} s=${s}`);
        for (const ws of [1, 2, 3, 5]) {
          assert.deepEqual(Array.from({ length: ws }, (_, r) => evalShare(plan, ws, r)).flat(), plan);
        }
      }
    }
  });
  it('is the paper protocol on 512/256: windows at 0, 256, 512 … scoring [0,512), [512,768), …', () => {
    assert.deepEqual(evalWindows(1300).slice(0, 3), [
      { start: 0, scoreFrom: 0, end: 512 }, { start: 256, scoreFrom: 512, end: 768 }, { start: 512, scoreFrom: 768, end: 1024 }]);
    assert.deepEqual(evalWindows(1300).at(-1), { start: 788, scoreFrom: 1280, end: 1300 });
    assert.deepEqual(scoredRange(evalWindows(1300)[1]!), { from: 256, to: 512 });
    assert.deepEqual(scoredRange(evalWindows(1300).at(-1)!), { from: 492, to: 512 });
  });
  it('perplexity = exp(Σ NLL / N) over sums added across ranks; a uniform model over V words has perplexity V', () => {
    const V = 267_735;
    const perRank = [{ nll: 100 * Math.log(V), tokens: 100 }, { nll: 37 * Math.log(V), tokens: 37 }];
    const ppl = perplexity(perRank.reduce((a, b) => ({ nll: a.nll + b.nll, tokens: a.tokens + b.tokens })));
    assert.ok(Math.abs(ppl - V) <= 1e-9 * V, String(ppl));
    assert.throws(() => perplexity({ nll: 0, tokens: 0 }), SigmaError);
    assert.throws(() => perplexity({ nll: Number.NaN, tokens: 3 }), SigmaError);
  });
});
