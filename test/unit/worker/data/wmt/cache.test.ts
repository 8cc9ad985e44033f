// Token cache: built in worker threads by line ranges, it holds exactly what reading + cleaning + encoding each pair
// on one thread gives; it is reused when fresh and rebuilt when a source or the vocabulary changes.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SigmaError } from '../../../../../shared/errors.js';
import { buildCache, openCacheSplit, type CacheSplit } from '../../../../../worker/data/wmt/cache.js';
import { cleanVerdict, DEFAULT_CLEAN, NO_CLEAN } from '../../../../../worker/data/wmt/clean.js';
import { discoverCorpus } from '../../../../../worker/data/wmt/discover.js';
import { readPairs } from '../../../../../worker/data/wmt/formats.js';
import { loadVocab, trainVocab } from '../../../../../worker/data/wmt/vocab.js';

const FIX = fileURLToPath(new URL('../../../../../../test/fixtures/wmt', import.meta.url));

async function setup() {
  const root = await mkdtemp(join(tmpdir(), 'wmt-cache-'));
  await cp(join(FIX, 'corpus'), join(root, 'corpus'), { recursive: true });
  // more lines than the fixture so a file is cut into several parts
  const en: string[] = [];
  const de: string[] = [];
  for (let i = 0; i < 500; i++) {
    en.push(`sentence number ${i} is ${i % 7 === 0 ? '' : 'quite '}short`);
    de.push(i % 50 === 0 ? '' : `Satz Nummer ${i} ist ${i % 7 === 0 ? '' : 'ziemlich '}kurz`);
  }
  await writeFile(join(root, 'corpus/training/synth.de-en.en'), en.join('\n') + '\n');
  await writeFile(join(root, 'corpus/training/synth.de-en.de'), de.join('\n') + '\n');
  const corpus = await discoverCorpus({ root: join(root, 'corpus'), src: 'en', tgt: 'de', valid: ['newstest2016'], test: ['newstest2021'] });
  const text: string[] = [];
  for (const s of corpus.train) for await (const p of readPairs(s)) text.push(p.src, p.tgt);
  await trainVocab(text, join(root, 'vocab'), { vocabSize: 400 });
  const splits: CacheSplit[] = [
    { name: 'train', sources: corpus.train, clean: { ...DEFAULT_CLEAN } },
    { name: 'valid', sources: corpus.valid.map((v) => v.source), clean: { ...NO_CLEAN } },
    { name: 'test', sources: corpus.test.map((v) => v.source), clean: { ...NO_CLEAN } },
  ];
  return { root, corpus, splits, vocabDir: join(root, 'vocab') };
}

describe('token cache', () => {
  it('holds exactly the single-thread read → clean → encode result, in order, with counts; reused when fresh', async () => {
    const { root, splits, vocabDir } = await setup();
    const logs: string[] = [];
    const dir = join(root, 'cache');
    const h = await buildCache({ dir, vocab: vocabDir, splits, threads: 2, linesPerPart: 64, log: (m) => logs.push(m) });
    const v = await loadVocab(vocabDir);
    assert.equal(h.vocabHash, v.hash);
    for (const split of splits) {
      // reference: the readers, cleaning and encoder on this thread, pair by pair
      const want: { src: Int32Array; tgt: Int32Array }[] = [];
      let dropped = 0;
      for (const s of split.sources) {
        for await (const p of readPairs(s)) {
          if (cleanVerdict(p.src, p.tgt, split.clean)) dropped++;
          else want.push({ src: await v.encode(p.src), tgt: await v.encode(p.tgt) });
        }
      }
      const c = await openCacheSplit(dir, split.name, v.hash);
      assert.equal(c.pairs, want.length, split.name);
      const hs = h.splits[split.name]!;
      assert.equal(hs.counts.kept, want.length);
      assert.equal(hs.counts.read - hs.counts.kept, dropped + hs.counts.malformed, `${split.name}: every removal counted`);
      for (let i = 0; i < want.length; i++) {
        assert.deepEqual(await c.src.get(i), want[i]!.src, `${split.name} src ${i}`);
        assert.deepEqual(await c.tgt.get(i), want[i]!.tgt, `${split.name} tgt ${i}`);
        assert.equal(c.src.lengths[i], want[i]!.src.length);
      }
      const last = want.length - 1;
      assert.deepEqual(await c.tgt.getMany([last, 0]), [want[last]!.tgt, want[0]!.tgt]);
      await c.src.close();
      await c.tgt.close();
    }
    assert.ok(h.splits.train!.counts.empty >= 10, 'the synthetic empty targets are counted as empty');
    assert.equal(h.splits.train!.counts.malformed, 2);

    // same inputs → reused; threads = 0 gives the same bytes
    const again = await buildCache({ dir, vocab: vocabDir, splits, log: (m) => logs.push(m) });
    assert.match(logs.at(-1)!, /up to date/);
    assert.deepEqual(again.splits, h.splits);
    const inline = await buildCache({ dir: join(root, 'cache0'), vocab: vocabDir, splits, threads: 0 });
    assert.deepEqual(inline.splits, h.splits);

    // a touched source → rebuilt
    await utimes(join(root, 'corpus/training/synth.de-en.en'), new Date(), new Date(Date.now() + 5000));
    await buildCache({ dir, vocab: vocabDir, splits, log: (m) => logs.push(m) });
    assert.ok(logs.some((m) => /source files changed/.test(m)));

    // another vocabulary → refused on open, rebuilt on build
    await trainVocab(['other text entirely', 'ganz anderer Text'], join(root, 'vocab2'), { vocabSize: 290 });
    const v2 = await loadVocab(join(root, 'vocab2'));
    await assert.rejects(openCacheSplit(dir, 'train', v2.hash), (e: unknown) => e instanceof SigmaError && e.code === 'SGT_VOCAB');
    await buildCache({ dir, vocab: join(root, 'vocab2'), splits, log: (m) => logs.push(m) });
    assert.ok(logs.some((m) => /vocabulary changed/.test(m)));
  });

  it('reports a mismatched corpus from the worker path with both files and counts', async () => {
    const { root, vocabDir } = await setup();
    const b = join(FIX, 'bad');
    await assert.rejects(
      buildCache({
        dir: join(root, 'cache-bad'),
        vocab: vocabDir,
        splits: [{ name: 'train', sources: [{ kind: 'aligned', srcFile: join(b, 'mismatch.de-en.en'), tgtFile: join(b, 'mismatch.de-en.de') }], clean: { ...DEFAULT_CLEAN } }],
      }),
      (e: unknown) => e instanceof SigmaError && e.code === 'SGT_CORPUS_MISMATCH' && /has 3 lines/.test(e.message) && /has 2/.test(e.message),
    );
    await assert.rejects(
      buildCache({
        dir: join(root, 'cache-bad2'),
        vocab: vocabDir,
        threads: 1,
        splits: [{ name: 'train', sources: [{ kind: 'aligned', srcFile: join(b, 'badutf8.de-en.en'), tgtFile: join(b, 'badutf8.de-en.de') }], clean: { ...DEFAULT_CLEAN } }],
      }),
      (e: unknown) => e instanceof SigmaError && e.code === 'SGT_CORPUS_ENCODING' && /byte offset 35/.test(e.message),
    );
  });
});
