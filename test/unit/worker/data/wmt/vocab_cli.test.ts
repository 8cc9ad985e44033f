// trainVocabulary / prepareWmt: the vocabulary is learned on first use, reused for the same inputs, refused (not
// silently replaced) when the inputs changed, and the cache holds train + each dev/test set.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, cp, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SigmaError } from '../../../../../shared/errors.js';
import { prepareWmt, trainVocabulary } from '../../../../../worker/data/wmt/vocab_cli.js';
import { openCacheSplit } from '../../../../../worker/data/wmt/cache.js';

const FIX = fileURLToPath(new URL('../../../../../../test/fixtures/wmt', import.meta.url));

describe('trainVocabulary / prepareWmt', () => {
  it('learns on first use, reuses, refuses changed inputs unless forced, and prepares the cache', async () => {
    const root = join(await mkdtemp(join(tmpdir(), 'wmt-cli-')), 'corpus');
    await cp(join(FIX, 'corpus'), root, { recursive: true });
    const logs: string[] = [];
    const opts = { root, src: 'en', tgt: 'de', valid: ['newstest2016'], test: ['newstest2021'], vocabSize: 300, threads: 1, log: (m: string) => logs.push(m) };
    const a = await trainVocabulary(opts);
    assert.equal(a.reused, false);
    assert.equal(a.size, 300);
    assert.ok(a.path.startsWith(join(root, '.sigmatrain')));
    // 6 aligned lines (1 empty; 23/2 and 5/3 words exceed the 1.5 ratio) + 5 TSV lines (2 malformed, 1 empty)
    assert.deepEqual(
      { read: a.counts.read, kept: a.counts.kept, empty: a.counts.empty, ratio: a.counts.ratio, malformed: a.counts.malformed },
      { read: 11, kept: 5, empty: 2, ratio: 2, malformed: 2 },
    );
    const b = await trainVocabulary(opts);
    assert.equal(b.reused, true);
    assert.equal(b.hash, a.hash);

    const p = await prepareWmt(opts);
    assert.equal(p.vocab.hash, a.hash);
    assert.deepEqual(Object.keys(p.header.splits), ['train', 'valid-newstest2016', 'test-newstest2021']);
    assert.equal(p.header.splits.train!.pairs, 5);
    assert.equal(p.header.splits['valid-newstest2016']!.pairs, 3);
    const t = await openCacheSplit(p.cacheDir, 'test-newstest2021', a.hash);
    assert.equal(await p.vocab.decode(await t.tgt.get(1)), 'Zweiter & letzter Satz.');
    await t.src.close();
    await t.tgt.close();

    await appendFile(join(root, 'training/europarl-v7.de-en.en'), 'one more\n');
    await appendFile(join(root, 'training/europarl-v7.de-en.de'), 'noch eins\n');
    await assert.rejects(trainVocabulary(opts), (e: unknown) => e instanceof SigmaError && e.code === 'SGT_VOCAB' && /force/.test(e.message));
    const c = await trainVocabulary({ ...opts, force: true });
    assert.equal(c.reused, false);
    assert.equal(c.counts.kept, 6);
  });

  it('a corpus too small for vocabSize: a smaller vocabulary logged with both sizes (soft), or SGT_VOCAB (hardLimit)', async () => {
    const root = join(await mkdtemp(join(tmpdir(), 'wmt-cli-')), 'corpus');
    await cp(join(FIX, 'corpus'), root, { recursive: true });
    const logs: string[] = [];
    const opts = { root, src: 'en', tgt: 'de', valid: ['newstest2016'], test: ['newstest2021'], vocabSize: 5000, threads: 1, log: (m: string) => logs.push(m) };
    await assert.rejects(trainVocabulary({ ...opts, hardLimit: true }), (e: unknown) => e instanceof SigmaError && e.code === 'SGT_VOCAB' && /5000 cannot be reached/.test(e.message));
    const a = await trainVocabulary(opts);
    assert.ok(a.size > 300 && a.size < 5000, `size ${a.size}`);
    assert.ok(logs.some((m) => m.includes(`${a.size} tokens, fewer than the 5000 asked for`)), logs.join('\n'));
    const p = await prepareWmt(opts);
    assert.equal(p.vocab.size, a.size);
    // Reused: said again; a hard limit now refuses the smaller file instead of training with it.
    assert.ok(logs.some((m) => m.includes('reused') && m.includes('fewer than the 5000 asked for')), logs.join('\n'));
    await assert.rejects(trainVocabulary({ ...opts, hardLimit: true }), (e: unknown) => e instanceof SigmaError && e.code === 'SGT_VOCAB' && new RegExp(`has ${a.size} tokens, fewer than data.wmt.vocabSize 5000`).test(e.message));
  });
});
