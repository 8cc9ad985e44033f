// WMT readers, discovery and cleaning on the fixtures under test/fixtures/wmt (dev-set expectations come from
// sacreBLEU's own reading logic run in CPython: test/fixtures/wmt/expected_dev.py).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SigmaError } from '../../../../../shared/errors.js';
import { firstInvalidUtf8, indexLineStarts, readLines } from '../../../../../worker/data/wmt/lines.js';
import { readAligned, readPairs, readSgmPair, readTsv, readWmtXml, type Pair } from '../../../../../worker/data/wmt/formats.js';
import { discoverCorpus } from '../../../../../worker/data/wmt/discover.js';
import { cleanVerdict, DEFAULT_CLEAN, emptyCounts } from '../../../../../worker/data/wmt/clean.js';

const FIX = fileURLToPath(new URL('../../../../../../test/fixtures/wmt', import.meta.url));
const expected = JSON.parse(readFileSync(join(FIX, 'expected_dev.json'), 'utf8'));

async function all(it: AsyncIterable<Pair>): Promise<Pair[]> {
  const out: Pair[] = [];
  for await (const p of it) out.push(p);
  return out;
}

async function rejectsWith(p: Promise<unknown>, code: string, ...parts: (string | RegExp)[]): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof SigmaError, `expected SigmaError, got ${e}`);
    assert.equal(e.code, code);
    for (const s of parts) assert.match(e.message, typeof s === 'string' ? new RegExp(s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : s);
    return true;
  });
}

describe('lines', () => {
  it('finds the first invalid UTF-8 byte (overlong, surrogate, truncated, stray continuation)', () => {
    const cases: [number[], number][] = [
      [[0x61, 0xc3, 0xa4, 0x62], -1],
      [[0x61, 0xc0, 0xaf], 1], // overlong '/'
      [[0xed, 0xa0, 0x80], 0], // UTF-16 surrogate
      [[0x61, 0x62, 0xe2, 0x82], 2], // truncated €
      [[0x80], 0],
      [[0xf0, 0x9f, 0x98, 0x80, 0xf5], 4], // 😀 then an impossible lead byte
    ];
    for (const [bytes, at] of cases) assert.equal(firstInvalidUtf8(Uint8Array.from(bytes)), at, JSON.stringify(bytes));
    // agrees with TextDecoder on validity
    for (const [bytes, at] of cases) {
      let ok = true;
      try {
        new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
      } catch {
        ok = false;
      }
      assert.equal(ok, at === -1);
    }
  });

  it('streams lines across chunk boundaries, CRLF and a last line without newline; indexes line starts', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lines-'));
    const f = join(dir, 'x.txt');
    const lines = Array.from({ length: 30000 }, (_, i) => `zeile ${i} äöü ${'x'.repeat(i % 97)}`);
    await writeFile(f, lines.join('\r\n'));
    const got: string[] = [];
    for await (const l of readLines(f)) got.push(l.text);
    assert.deepEqual(got, lines);
    const idx = await indexLineStarts(f, 1000);
    assert.equal(idx.lines, 30000);
    assert.equal(idx.starts.length, 30);
    // reading from a recorded start gives line 1000·k
    const sub: string[] = [];
    for await (const l of readLines(f, { start: idx.starts[7]!, end: idx.starts[8]! })) sub.push(l.text);
    assert.deepEqual(sub, lines.slice(7000, 8000));
  });
});

describe('readers', () => {
  it('aligned text pairs line i with line i', async () => {
    const t = join(FIX, 'corpus/training/europarl-v7.de-en');
    const pairs = await all(readAligned(`${t}.en`, `${t}.de`));
    assert.equal(pairs.length, 6);
    assert.deepEqual(pairs[0], { src: 'Resumption of the session', tgt: 'Wiederaufnahme der Sitzungsperiode' });
    assert.deepEqual(pairs[2], { src: '', tgt: 'Leerzeile' });
  });

  it('TSV columns follow the file name pair order; malformed lines are counted', async () => {
    const f = join(FIX, 'corpus/training/news-commentary-v14.de-en.tsv');
    const counts = emptyCounts();
    const enDe = await all(readTsv(f, 1, counts)); // en→de: en is column 1 in a de-en file
    assert.deepEqual(enDe[0], { src: 'The price of gold', tgt: 'Der Preis von Gold' });
    assert.deepEqual(enDe[1], { src: '', tgt: '' });
    assert.equal(enDe.length, 3);
    assert.equal(counts.malformed, 2);
    const deEn = await all(readTsv(f, 0));
    assert.deepEqual(deEn[2], { src: 'Die Welt wartet .', tgt: 'The world waits .' });
  });

  it('SGM segments are read exactly as sacreBLEU reads them (entities kept, whitespace collapsed)', async () => {
    const d = join(FIX, 'corpus/dev');
    const pairs = await all(readSgmPair(join(d, 'newstest2016-ende-src.en.sgm'), join(d, 'newstest2016-ende-ref.de.sgm')));
    assert.deepEqual(pairs.map((p) => p.src), expected.sgm.src);
    assert.deepEqual(pairs.map((p) => p.tgt), expected.sgm.ref);
  });

  it('WMT XML: test suites skipped, segments by id, entities decoded, first translator by default', async () => {
    const f = join(FIX, 'corpus/dev/newstest2021.en-de.xml');
    const pairs = await all(readWmtXml(f, 'en', 'de'));
    assert.deepEqual(pairs.map((p) => p.src), expected.xml.src);
    assert.deepEqual(pairs.map((p) => p.tgt), expected.xml.refs.A);
    // another translator by name (sacreBLEU's zip(src, ref) would see only the first ref of each doc)
    const b = await all(readWmtXml(f, 'en', 'de', 'B'));
    assert.deepEqual(b.map((p) => p.tgt), ['Der erste Satz', 'Der zweite Satz']);
    // the reverse direction swaps sides
    const rev = await all(readWmtXml(f, 'de', 'en'));
    assert.deepEqual(rev.map((p) => p.src), expected.xml.refs.A);
    await rejectsWith(all(readWmtXml(f, 'en', 'de', 'Z')), 'SGT_CORPUS_FORMAT', 'translator "Z"');
    await rejectsWith(all(readWmtXml(f, 'en', 'fr')), 'SGT_CORPUS_FORMAT', 'not en/fr');
  });
});

describe('bad corpora', () => {
  const b = join(FIX, 'bad');
  it('mismatched line counts name both files and both counts', async () => {
    await rejectsWith(
      all(readAligned(join(b, 'mismatch.de-en.en'), join(b, 'mismatch.de-en.de'))),
      'SGT_CORPUS_MISMATCH',
      `${join(b, 'mismatch.de-en.en')} has 3 lines`,
      `${join(b, 'mismatch.de-en.de')} has 2`,
    );
  });
  it('undecodable UTF-8 names the file and the byte offset', async () => {
    // the fixture has 0xFF at byte 35 (see its bytes: "good line\nsecond line \xc3\xa4 ok\nbroken \xff here\n")
    await rejectsWith(
      all(readAligned(join(b, 'badutf8.de-en.en'), join(b, 'badutf8.de-en.de'))),
      'SGT_CORPUS_ENCODING',
      `${join(b, 'badutf8.de-en.en')}: invalid UTF-8 at byte offset 35`,
    );
  });
  it('an empty file is an error naming it', async () => {
    await rejectsWith(all(readAligned(join(b, 'empty.de-en.en'), join(b, 'empty.de-en.de'))), 'SGT_CORPUS_EMPTY', join(b, 'empty.de-en.en'));
  });
});

describe('discovery', () => {
  it('finds training corpora and dev sets from root + languages + set names', async () => {
    const root = join(FIX, 'corpus');
    const c = await discoverCorpus({ root, src: 'en', tgt: 'de', valid: ['newstest2016'], test: ['newstest2021'] });
    assert.deepEqual(
      c.train.map((s) => s.kind),
      ['aligned', 'tsv'],
    );
    assert.deepEqual(c.train[0], {
      kind: 'aligned',
      srcFile: join(root, 'training/europarl-v7.de-en.en'),
      tgtFile: join(root, 'training/europarl-v7.de-en.de'),
    });
    assert.deepEqual(c.train[1], { kind: 'tsv', file: join(root, 'training/news-commentary-v14.de-en.tsv'), srcColumn: 1 });
    assert.equal(c.valid[0]!.source.kind, 'sgm');
    assert.equal(c.test[0]!.source.kind, 'wmtxml');
    const valid = await all(readPairs(c.valid[0]!.source));
    assert.deepEqual(valid.map((p) => p.tgt), expected.sgm.ref);
    // de→en picks the other TSV column and reverses the aligned files
    const r = await discoverCorpus({ root, src: 'de', tgt: 'en', valid: ['newstest2021'], test: [] });
    assert.deepEqual(r.train[1], { kind: 'tsv', file: join(root, 'training/news-commentary-v14.de-en.tsv'), srcColumn: 0 });
    assert.equal((r.train[0] as { srcFile: string }).srcFile, join(root, 'training/europarl-v7.de-en.de'));
  });
  it('a compressed training file is an error, not silently skipped', async () => {
    const root = await mkdtemp(join(tmpdir(), 'disc-'));
    await mkdir(join(root, 'training'));
    await writeFile(join(root, 'training/news-commentary-v16.de-en.tsv.gz'), 'x');
    await rejectsWith(discoverCorpus({ root, src: 'en', tgt: 'de', valid: [], test: [] }), 'SGT_CORPUS_FORMAT', 'news-commentary-v16.de-en.tsv.gz is compressed');
  });
  it('a missing set names what was looked for', async () => {
    await rejectsWith(
      discoverCorpus({ root: join(FIX, 'corpus'), src: 'en', tgt: 'de', valid: ['newstest2099'], test: [] }),
      'SGT_CORPUS_NOT_FOUND',
      'newstest2099-{ende,deen}-src.en.sgm',
    );
    await rejectsWith(
      discoverCorpus({ root: join(FIX, 'corpus'), src: 'en', tgt: 'fr', valid: [], test: [] }),
      'SGT_CORPUS_NOT_FOUND',
      'no training corpus for en-fr',
    );
  });
});

describe('cleaning (clean-corpus-n rules)', () => {
  it('counts each removal under its first failing filter', () => {
    const o = { ...DEFAULT_CLEAN, maxTokens: 5, maxRatio: 1.5, maxChars: 30 };
    assert.equal(cleanVerdict('a b', 'c d', o), null);
    assert.equal(cleanVerdict('  ', 'c', o), 'empty');
    assert.equal(cleanVerdict('a b c d e f', 'a b c d e f', o), 'tooLong');
    assert.equal(cleanVerdict('a b c', 'a b', o), null); // 1.5 is allowed, as in clean-corpus-n (ratio > max removes)
    assert.equal(cleanVerdict('a b c d', 'a b', o), 'ratio');
    assert.equal(cleanVerdict('a', 'a b', o), 'ratio');
    assert.equal(cleanVerdict('x'.repeat(31), 'y'.repeat(31), o), 'tooManyChars');
    assert.equal(cleanVerdict('a', 'b', { ...o, minTokens: 2 }), 'tooShort');
  });
});
