// Tests for the translation demo corpus: German and English number words against hand-written pairs and an
// inverse parser, the sentence grammar (articles, adjective endings, verb-second), determinism, disjoint splits,
// and that the written SGM and WMT XML files parse with a real XML parser and carry the same segments.

import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { SaxesParser } from 'saxes';
import { SigmaError } from '../../../../../shared/errors.js';
import {
  DEMO_FILES,
  englishNumber,
  generateDemoCorpus,
  germanNumber,
  renderPair,
  writeDemoCorpus,
  xmlEscape,
} from '../../../../../worker/data/wmt/demo_corpus.js';
import { Rng } from '../../../../../worker/rng.js';

const tmpRoot = await fs.mkdtemp(path.join(os.tmpdir(), 'sgt-mtdemo-'));
after(() => fs.rm(tmpRoot, { recursive: true, force: true }));

// Written by hand from a German grammar, not from the generator.
const GERMAN: [number, string][] = [
  [0, 'null'], [1, 'eins'], [2, 'zwei'], [6, 'sechs'], [7, 'sieben'], [10, 'zehn'], [11, 'elf'], [12, 'zwölf'],
  [16, 'sechzehn'], [17, 'siebzehn'], [20, 'zwanzig'], [21, 'einundzwanzig'], [30, 'dreißig'], [42, 'zweiundvierzig'],
  [60, 'sechzig'], [66, 'sechsundsechzig'], [70, 'siebzig'], [77, 'siebenundsiebzig'], [99, 'neunundneunzig'],
  [100, 'einhundert'], [101, 'einhunderteins'], [110, 'einhundertzehn'], [111, 'einhundertelf'],
  [121, 'einhunderteinundzwanzig'], [200, 'zweihundert'], [342, 'dreihundertzweiundvierzig'],
  [999, 'neunhundertneunundneunzig'], [1000, 'eintausend'], [1001, 'eintausendeins'],
  [1100, 'eintausendeinhundert'], [2024, 'zweitausendvierundzwanzig'], [17017, 'siebzehntausendsiebzehn'],
  [21000, 'einundzwanzigtausend'], [100000, 'einhunderttausend'], [101101, 'einhunderteintausendeinhunderteins'],
  [999999, 'neunhundertneunundneunzigtausendneunhundertneunundneunzig'],
];

const ENGLISH: [number, string][] = [
  [0, 'zero'], [1, 'one'], [15, 'fifteen'], [40, 'forty'], [42, 'forty two'], [101, 'one hundred one'],
  [342, 'three hundred forty two'], [1000, 'one thousand'], [1100, 'one thousand one hundred'],
  [21000, 'twenty one thousand'], [999999, 'nine hundred ninety nine thousand nine hundred ninety nine'],
];

// An inverse written separately (greedy longest match over the morphemes), so every generated word is checked.
const MORPH: [string, number][] = [
  ['zwölf', 12], ['elf', 11], ['zehn', 10], ['dreizehn', 13], ['vierzehn', 14], ['fünfzehn', 15], ['sechzehn', 16],
  ['siebzehn', 17], ['achtzehn', 18], ['neunzehn', 19], ['eins', 1], ['ein', 1], ['zwei', 2], ['drei', 3],
  ['vier', 4], ['fünf', 5], ['sechs', 6], ['sieben', 7], ['acht', 8], ['neun', 9],
];
const TENS: [string, number][] = [
  ['zwanzig', 20], ['dreißig', 30], ['vierzig', 40], ['fünfzig', 50], ['sechzig', 60], ['siebzig', 70], ['achtzig', 80], ['neunzig', 90],
];
function parseBelow100(s: string): number {
  if (s === '') return 0;
  for (const [w, v] of TENS) if (s === w) return v;
  const und = s.indexOf('und');
  if (und > 0) {
    const u = MORPH.find(([w]) => w === s.slice(0, und));
    const t = TENS.find(([w]) => w === s.slice(und + 3));
    assert.ok(u && t && u[1] < 10 && u[0] !== 'eins', `bad tens compound ${s}`);
    return u[1] + t[1];
  }
  const m = MORPH.find(([w]) => w === s);
  assert.ok(m && m[0] !== 'ein', `bad word ${s}`); // a bare "ein" is never a number word on its own
  return m[1];
}
function parseBelow1000(s: string): number {
  const i = s.indexOf('hundert');
  if (i < 0) return parseBelow100(s);
  const h = MORPH.find(([w]) => w === s.slice(0, i));
  assert.ok(h && h[1] < 10 && h[0] !== 'eins', `bad hundreds ${s}`);
  return 100 * h[1] + parseBelow100(s.slice(i + 7));
}
function parseGerman(s: string): number {
  if (s === 'null') return 0;
  const i = s.indexOf('tausend');
  if (i < 0) return parseBelow1000(s);
  const head = s.slice(0, i);
  const th = parseBelow1000(head === 'ein' ? 'eins' : head.endsWith('ein') ? `${head}s` : head);
  return 1000 * th + parseBelow1000(s.slice(i + 7));
}

async function parseXml(file: string): Promise<{ path: string[]; attrs: Record<string, string>; text: string }[]> {
  const parser = new SaxesParser();
  const stack: string[] = [];
  const segs: { path: string[]; attrs: Record<string, string>; text: string }[] = [];
  let current: { path: string[]; attrs: Record<string, string>; text: string } | undefined;
  parser.on('error', (e) => { throw e; });
  parser.on('opentag', (tag) => {
    stack.push(tag.name);
    if (tag.name === 'seg') current = { path: [...stack], attrs: tag.attributes as Record<string, string>, text: '' };
  });
  parser.on('text', (t) => { if (current) current.text += t; });
  parser.on('closetag', (tag) => {
    stack.pop();
    if (tag.name === 'seg' && current) { segs.push(current); current = undefined; }
  });
  parser.write(await fs.readFile(file, 'utf8')).close();
  return segs;
}

const lines = async (file: string): Promise<string[]> => (await fs.readFile(file, 'utf8')).split('\n').slice(0, -1);

describe('number words', () => {
  it('German matches hand-written numbers (eins/ein, units before tens, einhundert/eintausend)', () => {
    for (const [n, w] of GERMAN) assert.equal(germanNumber(n), w, `n=${n}`);
  });
  it('English matches hand-written numbers', () => {
    for (const [n, w] of ENGLISH) assert.equal(englishNumber(n), w, `n=${n}`);
  });
  it('every German word parses back to its number (0..2100 and 3000 random up to 999 999)', () => {
    const rng = new Rng(7);
    const ns = [...Array.from({ length: 2101 }, (_, i) => i), ...Array.from({ length: 3000 }, () => rng.int(1_000_000))];
    for (const n of ns) assert.equal(parseGerman(germanNumber(n)), n, `n=${n}: ${germanNumber(n)}`);
  });
  it('rejects numbers outside 0..999 999', () => {
    for (const n of [-1, 1.5, 1_000_000]) assert.throws(() => germanNumber(n), SigmaError);
  });
});

describe('sentences', () => {
  // indices: subjects I=0 she=3; verbs see=0; nouns car=0 dog=1 cat=2; adjectives red=0; adverbs today=0
  it('plural counts: number word, strong adjective ending, plural noun, capitalised', () => {
    assert.deepEqual(renderPair({ kind: 'carrier', n: 42, subject: 0, verb: 0, adverb: -1, adjective: 0, noun: 0 }),
      { en: 'I see forty two red cars.', de: 'Ich sehe zweiundvierzig rote Autos.' });
    assert.deepEqual(renderPair({ kind: 'carrier', n: 21, subject: 0, verb: 0, adverb: -1, adjective: -1, noun: 1 }),
      { en: 'I see twenty one dogs.', de: 'Ich sehe einundzwanzig Hunde.' });
  });
  it('a count of one is the accusative indefinite article by gender', () => {
    const one = (noun: number, adjective: number): string =>
      renderPair({ kind: 'carrier', n: 1, subject: 0, verb: 0, adverb: -1, adjective, noun }).de;
    assert.equal(one(0, 0), 'Ich sehe ein rotes Auto.');
    assert.equal(one(1, 0), 'Ich sehe einen roten Hund.');
    assert.equal(one(2, 0), 'Ich sehe eine rote Katze.');
    assert.equal(one(1, -1), 'Ich sehe einen Hund.');
  });
  it('a fronted adverb puts the German verb second, the subject after it', () => {
    assert.deepEqual(renderPair({ kind: 'carrier', n: 1, subject: 3, verb: 0, adverb: 0, adjective: -1, noun: 2 }),
      { en: 'Today she sees one cat.', de: 'Heute sieht sie eine Katze.' });
  });
  it('number sentences', () => {
    assert.deepEqual(renderPair({ kind: 'number', n: 101 }), { en: 'The number is one hundred one.', de: 'Die Zahl ist einhunderteins.' });
  });
});

describe('corpus', () => {
  const opts = { seed: 5, train: 3000, dev: 200, test: 200 };
  it('is deterministic from the seed and changes with it', () => {
    assert.deepEqual(generateDemoCorpus(opts), generateDemoCorpus(opts));
    assert.notDeepEqual(generateDemoCorpus(opts).train.slice(0, 20), generateDemoCorpus({ ...opts, seed: 6 }).train.slice(0, 20));
  });
  it('has the sizes asked for and disjoint, duplicate-free splits', () => {
    const c = generateDemoCorpus(opts);
    assert.equal(c.train.length, 3000);
    assert.equal(c.dev.length, 200);
    assert.equal(c.test.length, 200);
    const all = [...c.train, ...c.dev, ...c.test].map((p) => p.en);
    assert.equal(new Set(all).size, all.length);
  });
  it('rejects a non-positive size naming the key', () => {
    assert.throws(() => generateDemoCorpus({ ...opts, dev: 0 }), /dev=0/);
  });
  it('maxNumber bounds every number (read back from the German words) and keeps the sentence kinds; out of range is an error', () => {
    const numbersOf = (de: string): number[] => de.replace(/\.$/, '').split(' ').filter((w) => w !== 'ein' && /^[a-zäöüß]+$/.test(w) && /(null|eins?|zwei|drei|vier|fünf|sechs|sieben|acht|neun|zehn|elf|zwölf|zig|ßig|hundert|tausend)$/.test(w))
      .map(parseGerman).filter((n) => !Number.isNaN(n));
    const small = generateDemoCorpus({ ...opts, maxNumber: 9999 });
    const full = generateDemoCorpus(opts);
    const maxOf = (c: typeof full) => Math.max(...c.train.flatMap((p) => numbersOf(p.de)));
    assert.ok(maxOf(small) <= 9999 && maxOf(small) > 9000, `largest ${maxOf(small)}`);
    assert.ok(maxOf(full) > 100_000, `largest ${maxOf(full)}`);
    // The same draws decide the kind of sentence: "The number is …" where the full corpus has one.
    assert.deepEqual(small.test.slice(0, 50).map((p) => p.en.startsWith('The number')), full.test.slice(0, 50).map((p) => p.en.startsWith('The number')));
    assert.throws(() => generateDemoCorpus({ ...opts, maxNumber: 999 }), /maxNumber=999 must be an integer from 1000 to 999999/);
    assert.throws(() => generateDemoCorpus({ ...opts, maxNumber: 1_000_000 }), /maxNumber=1000000/);
  });
  it('a count never ends in …01 before a noun (no settled German form)', () => {
    for (const p of generateDemoCorpus(opts).train) {
      if (p.en.startsWith('The number')) continue;
      assert.doesNotMatch(p.en, /(hundred|thousand) one (?!hundred|thousand)/, p.en);
    }
  });
});

describe('files in WMT formats', async () => {
  const out = path.join(tmpRoot, 'a');
  const opts = { seed: 11, train: 1000, dev: 60, test: 45 };
  const res = await writeDemoCorpus(out, opts);
  const corpus = generateDemoCorpus(opts);

  it('aligned text and TSV hold the training pairs, TSV as de<TAB>en, line counts matching', async () => {
    const en = await lines(path.join(out, DEMO_FILES.alignedEn));
    const de = await lines(path.join(out, DEMO_FILES.alignedDe));
    const tsv = (await lines(path.join(out, DEMO_FILES.tsv))).map((l) => l.split('\t'));
    assert.equal(en.length, de.length);
    assert.equal(en.length, res.aligned);
    assert.ok(tsv.every((cols) => cols.length === 2));
    assert.deepEqual([...en.map((e, i) => ({ en: e, de: de[i] })), ...tsv.map(([d, e]) => ({ en: e, de: d }))], corpus.train);
  });

  it('SGM files parse as XML with srcset/refset, docs and per-document seg ids, unescaped text equal to the pairs', async () => {
    const src = await parseXml(path.join(out, DEMO_FILES.devSrc));
    const ref = await parseXml(path.join(out, DEMO_FILES.devRef));
    assert.deepEqual(src.map((s) => s.text), corpus.dev.map((p) => p.en));
    assert.deepEqual(ref.map((s) => s.text), corpus.dev.map((p) => p.de));
    assert.deepEqual(src[0]!.path, ['srcset', 'doc', 'p', 'seg']);
    assert.deepEqual(ref[0]!.path, ['refset', 'doc', 'p', 'seg']);
    assert.deepEqual(src.slice(0, 12).map((s) => s.attrs.id), ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '1', '2']);
    const head = (await fs.readFile(path.join(out, DEMO_FILES.devRef), 'utf8')).split('\n')[0];
    assert.equal(head, '<refset setid="demodev2024" srclang="en" trglang="de">');
    assert.ok(corpus.dev.some((p) => p.en.includes('&')), 'the dev set exercises escaping');
  });

  it('the WMT XML test set parses, src/ref segments aligned and equal to the SGM test set', async () => {
    const segs = await parseXml(path.join(out, DEMO_FILES.testXml));
    const src = segs.filter((s) => s.path.join('/') === 'dataset/collection/doc/src/p/seg');
    const ref = segs.filter((s) => s.path.join('/') === 'dataset/collection/doc/ref/p/seg');
    assert.equal(src.length + ref.length, segs.length);
    assert.deepEqual(src.map((s) => s.text), corpus.test.map((p) => p.en));
    assert.deepEqual(ref.map((s) => s.text), corpus.test.map((p) => p.de));
    assert.deepEqual((await parseXml(path.join(out, DEMO_FILES.testSrc))).map((s) => s.text), corpus.test.map((p) => p.en));
    assert.deepEqual((await parseXml(path.join(out, DEMO_FILES.testRef))).map((s) => s.text), corpus.test.map((p) => p.de));
    assert.match(await fs.readFile(path.join(out, DEMO_FILES.testXml), 'utf8'), /<ref lang="de" translator="A">/);
  });

  it('no dev or test source sentence appears in the training files', async () => {
    const train = new Set([
      ...(await lines(path.join(out, DEMO_FILES.alignedEn))),
      ...(await lines(path.join(out, DEMO_FILES.tsv))).map((l) => l.split('\t')[1]!),
    ]);
    for (const file of [DEMO_FILES.devSrc, DEMO_FILES.testSrc]) {
      for (const s of await parseXml(path.join(out, file))) assert.ok(!train.has(s.text), `${file}: ${s.text} is in training`);
    }
  });

  it('writing twice with one seed gives identical bytes', async () => {
    const again = path.join(tmpRoot, 'b');
    await writeDemoCorpus(again, opts);
    for (const rel of Object.values(DEMO_FILES)) {
      assert.ok((await fs.readFile(path.join(out, rel))).equals(await fs.readFile(path.join(again, rel))), rel);
    }
  });

  it('escapes the five XML specials', () => {
    assert.equal(xmlEscape(`a<b>&"c'`), 'a&lt;b&gt;&amp;&quot;c&apos;');
  });
});

describe('npm run data:mt-demo entry', () => {
  const entry = fileURLToPath(new URL('../../../../../coordinator/tools/mt_demo_data.js', import.meta.url));
  it('writes every file under --out with the sizes asked for', async () => {
    const out = path.join(tmpRoot, 'cli');
    const { stdout } = await promisify(execFile)(process.execPath, [entry, '--out', out, '--seed', '4', '--train', '50', '--dev', '10', '--test', '10']);
    assert.match(stdout, /wrote 50 training pairs \(40 aligned, 10 TSV\), 10 dev, 10 test/);
    for (const rel of Object.values(DEMO_FILES)) await fs.access(path.join(out, rel));
  });
  it('a missing --out or a non-integer size exits 1 with a usage error', async () => {
    for (const args of [['--seed', '4'], ['--out', path.join(tmpRoot, 'x'), '--train', 'many']]) {
      await assert.rejects(promisify(execFile)(process.execPath, [entry, ...args]),
        (err: { code?: number; stderr?: string }) => err.code === 1 && /SGT_CLI_USAGE/.test(err.stderr ?? ''));
    }
  });
});
