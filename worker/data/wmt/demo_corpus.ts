// The translation demo corpus: a rule-based English→German pair (number words in short carrier sentences) that
// needs reordering, deterministic from a seed, written in WMT's own distribution formats so the real readers run.
//
// Why numbers in sentences: "three hundred forty two" → "dreihundertzweiundvierzig" swaps units and tens and glues
// everything into one compound, "Today I see …" → "Heute sehe ich …" moves the verb (German verb-second), and
// adjective/article endings depend on gender and number ("einen roten Hund", "eine rote Katze", "zwei rote Autos").
// The English side has ~93 word types; the German side ~60 words plus number compounds (8.7k distinct in 20k pairs)
// built from ~40 morphemes, which a subword vocabulary splits. A wrong digit spoils the whole German number word,
// so word BLEU is strict about the reordering (how fast a small Transformer learns it is for the demo job to show).
//
// Conventions (both correct German, one picked and kept):
//   - 100 and 1000 are written "einhundert" and "eintausend" (not "hundert"/"tausend"), mirroring "one hundred";
//     so 1100 = "eintausendeinhundert", 101 = "einhunderteins".
//   - A lone or final 1 is "eins" (1, 101 → "einhunderteins"); before "hundert", "tausend" and "und" it is "ein"
//     (21 → "einundzwanzig", 1000 → "eintausend"). A count of exactly 1 before a noun is the indefinite article, inflected for
//     gender in the accusative ("einen Hund", "eine Katze", "ein Auto"), noun in the singular.
//   - Counts before a noun never end in …01 above 1 (101, 2001, …): German has no settled form there
//     ("hunderteins Autos"/"hundertundein Auto"); those numbers still occur in "The number is …" sentences.
//   - English number words are American style without "and" or hyphens ("three hundred forty two"), as in the
//     issue; German nouns are capitalised, sentences start with a capital and end with a full stop.
//   - Up to 999 999.

import { promises as fs } from 'node:fs';
import path from 'node:path';
import { SigmaError } from '../../../shared/errors.js';
import { Rng, deriveSeed } from '../../rng.js';

// ---------------------------------------------------------------------------------------------------------------
// Number words

const EN_UNITS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
const EN_TEENS = ['ten', 'eleven', 'twelve', 'thirteen', 'fourteen', 'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen'];
const EN_TENS = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];

const DE_UNITS = ['null', 'ein', 'zwei', 'drei', 'vier', 'fünf', 'sechs', 'sieben', 'acht', 'neun'];
// sechzehn, siebzehn drop letters; dreißig, sechzig, siebzig are irregular too.
const DE_TEENS = ['zehn', 'elf', 'zwölf', 'dreizehn', 'vierzehn', 'fünfzehn', 'sechzehn', 'siebzehn', 'achtzehn', 'neunzehn'];
const DE_TENS = ['', '', 'zwanzig', 'dreißig', 'vierzig', 'fünfzig', 'sechzig', 'siebzig', 'achtzig', 'neunzig'];

/** Largest number the demo writes out. */
export const MAX_NUMBER = 999_999;

function checkNumber(n: number): void {
  if (!Number.isInteger(n) || n < 0 || n > MAX_NUMBER) {
    throw new SigmaError('SGT_DATA_INVALID', `demo corpus: number ${n} is outside the integers 0..${MAX_NUMBER}`);
  }
}

function enBelow1000(n: number): string[] {
  const words: string[] = [];
  const h = Math.floor(n / 100);
  const r = n % 100;
  if (h > 0) words.push(EN_UNITS[h]!, 'hundred');
  if (r >= 20) {
    words.push(EN_TENS[Math.floor(r / 10)]!);
    if (r % 10 > 0) words.push(EN_UNITS[r % 10]!);
  } else if (r >= 10) words.push(EN_TEENS[r - 10]!);
  else if (r > 0) words.push(EN_UNITS[r]!);
  return words;
}

/** English number words: 342 → "three hundred forty two", 0 → "zero", 1100 → "one thousand one hundred". */
export function englishNumber(n: number): string {
  checkNumber(n);
  if (n === 0) return 'zero';
  const th = Math.floor(n / 1000);
  const words = th > 0 ? [...enBelow1000(th), 'thousand'] : [];
  words.push(...enBelow1000(n % 1000));
  return words.join(' ');
}

/** 0..99 in German; a final 1 is "eins", a 1 that a multiplier follows is "ein". */
function deBelow100(n: number, final: boolean): string {
  if (n === 0) return '';
  if (n === 1) return final ? 'eins' : 'ein';
  if (n < 10) return DE_UNITS[n]!;
  if (n < 20) return DE_TEENS[n - 10]!;
  const u = n % 10;
  const tens = DE_TENS[Math.floor(n / 10)]!;
  return u === 0 ? tens : `${DE_UNITS[u]!}und${tens}`; // units before tens: 42 = zwei-und-vierzig
}

function deBelow1000(n: number, final: boolean): string {
  const h = Math.floor(n / 100);
  return (h > 0 ? `${DE_UNITS[h]!}hundert` : '') + deBelow100(n % 100, final);
}

/** German number word, one compound: 342 → "dreihundertzweiundvierzig", 1 → "eins", 1000 → "eintausend". */
export function germanNumber(n: number): string {
  checkNumber(n);
  if (n === 0) return 'null';
  const th = Math.floor(n / 1000);
  return (th > 0 ? `${deBelow1000(th, false)}tausend` : '') + deBelow1000(n % 1000, true);
}

// ---------------------------------------------------------------------------------------------------------------
// Carrier sentences

type Gender = 'm' | 'f' | 'n';
interface Noun { en: string; enPl: string; de: string; dePl: string; g: Gender }
interface Verb { en: string; en3: string; de1: string; de3: string; dePl: string }
interface Subject { en: string; de: string; person: '1s' | '3s' | 'pl' }

export const NOUNS: readonly Noun[] = [
  { en: 'car', enPl: 'cars', de: 'Auto', dePl: 'Autos', g: 'n' },
  { en: 'dog', enPl: 'dogs', de: 'Hund', dePl: 'Hunde', g: 'm' },
  { en: 'cat', enPl: 'cats', de: 'Katze', dePl: 'Katzen', g: 'f' },
  { en: 'book', enPl: 'books', de: 'Buch', dePl: 'Bücher', g: 'n' },
  { en: 'apple', enPl: 'apples', de: 'Apfel', dePl: 'Äpfel', g: 'm' },
  { en: 'house', enPl: 'houses', de: 'Haus', dePl: 'Häuser', g: 'n' },
  { en: 'bird', enPl: 'birds', de: 'Vogel', dePl: 'Vögel', g: 'm' },
  { en: 'flower', enPl: 'flowers', de: 'Blume', dePl: 'Blumen', g: 'f' },
  { en: 'chair', enPl: 'chairs', de: 'Stuhl', dePl: 'Stühle', g: 'm' },
  { en: 'table', enPl: 'tables', de: 'Tisch', dePl: 'Tische', g: 'm' },
  { en: 'lamp', enPl: 'lamps', de: 'Lampe', dePl: 'Lampen', g: 'f' },
  { en: 'ball', enPl: 'balls', de: 'Ball', dePl: 'Bälle', g: 'm' },
];

/** Adjective stems; German endings are added by case/gender/number (accusative throughout). */
export const ADJECTIVES: readonly { en: string; de: string }[] = [
  { en: 'red', de: 'rot' }, { en: 'blue', de: 'blau' }, { en: 'green', de: 'grün' }, { en: 'small', de: 'klein' },
  { en: 'big', de: 'groß' }, { en: 'old', de: 'alt' }, { en: 'new', de: 'neu' }, { en: 'black', de: 'schwarz' },
  { en: 'white', de: 'weiß' },
];

// All take an accusative object.
const VERBS: readonly Verb[] = [
  { en: 'see', en3: 'sees', de1: 'sehe', de3: 'sieht', dePl: 'sehen' },
  { en: 'buy', en3: 'buys', de1: 'kaufe', de3: 'kauft', dePl: 'kaufen' },
  { en: 'have', en3: 'has', de1: 'habe', de3: 'hat', dePl: 'haben' },
  { en: 'sell', en3: 'sells', de1: 'verkaufe', de3: 'verkauft', dePl: 'verkaufen' },
  { en: 'need', en3: 'needs', de1: 'brauche', de3: 'braucht', dePl: 'brauchen' },
  { en: 'paint', en3: 'paints', de1: 'male', de3: 'malt', dePl: 'malen' },
];

// "Tom & Anna" puts an ampersand into the data so the SGM/XML escaping is exercised by real segments.
const SUBJECTS: readonly Subject[] = [
  { en: 'I', de: 'ich', person: '1s' }, { en: 'we', de: 'wir', person: 'pl' }, { en: 'he', de: 'er', person: '3s' },
  { en: 'she', de: 'sie', person: '3s' }, { en: 'they', de: 'sie', person: 'pl' },
  { en: 'Tom & Anna', de: 'Tom & Anna', person: 'pl' },
];

const ADVERBS: readonly { en: string; de: string }[] = [
  { en: 'today', de: 'heute' }, { en: 'now', de: 'jetzt' }, { en: 'here', de: 'hier' },
];

const cap = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

/** Accusative noun phrase after a count: article for 1, strong plural adjective ending otherwise. */
export function germanObject(count: number, noun: Noun, adjective?: string): string {
  if (count === 1) {
    const [article, ending] = noun.g === 'm' ? ['einen', 'en'] : noun.g === 'f' ? ['eine', 'e'] : ['ein', 'es'];
    return [article, ...(adjective ? [adjective + ending] : []), noun.de].join(' ');
  }
  return [germanNumber(count), ...(adjective ? [`${adjective}e`] : []), noun.dePl].join(' ');
}

/** One sentence pair: a parameter choice, rendered in both languages. */
export interface DemoSentence {
  kind: 'number' | 'carrier';
  n: number;
  subject?: number;
  verb?: number;
  adverb?: number; // index into ADVERBS, or -1 for none
  adjective?: number; // index into ADJECTIVES, or -1 for none
  noun?: number;
}

export function renderPair(s: DemoSentence): { en: string; de: string } {
  if (s.kind === 'number') {
    return { en: `The number is ${englishNumber(s.n)}.`, de: `Die Zahl ist ${germanNumber(s.n)}.` };
  }
  const subj = SUBJECTS[s.subject!]!;
  const verb = VERBS[s.verb!]!;
  const noun = NOUNS[s.noun!]!;
  const adj = s.adjective! >= 0 ? ADJECTIVES[s.adjective!]! : undefined;
  const adv = s.adverb! >= 0 ? ADVERBS[s.adverb!]! : undefined;
  const enVerb = subj.person === '3s' ? verb.en3 : verb.en;
  const deVerb = subj.person === '1s' ? verb.de1 : subj.person === '3s' ? verb.de3 : verb.dePl;
  const enObj = [englishNumber(s.n), ...(adj ? [adj.en] : []), s.n === 1 ? noun.en : noun.enPl].join(' ');
  const deObj = germanObject(s.n, noun, adj?.de);
  const en = adv ? `${cap(adv.en)} ${subj.en} ${enVerb} ${enObj}.` : `${cap(subj.en)} ${enVerb} ${enObj}.`;
  // German is verb-second: a fronted adverb pushes the subject behind the verb.
  const de = adv ? `${cap(adv.de)} ${deVerb} ${subj.de} ${deObj}.` : `${cap(subj.de)} ${deVerb} ${deObj}.`;
  return { en, de };
}

/** Numbers spread over magnitudes: a third below 100, a third below 1000, a third from 1000 up to `max`. */
function drawNumber(rng: Rng, max: number): number {
  const r = rng.float();
  if (r < 1 / 3) return rng.int(100);
  if (r < 2 / 3) return 100 + rng.int(900);
  return 1000 + rng.int(max - 999);
}

function drawSentence(rng: Rng, max: number): DemoSentence {
  if (rng.float() < 0.25) return { kind: 'number', n: drawNumber(rng, max) };
  let n = drawNumber(rng, max);
  while (n > 1 && n % 100 === 1) n = drawNumber(rng, max); // see the header: no count ending in …01 before a noun
  return {
    kind: 'carrier',
    n,
    subject: rng.int(SUBJECTS.length),
    verb: rng.int(VERBS.length),
    adverb: rng.float() < 0.4 ? rng.int(ADVERBS.length) : -1,
    adjective: rng.float() < 0.6 ? rng.int(ADJECTIVES.length) : -1,
    noun: rng.int(NOUNS.length),
  };
}

export interface DemoPair { en: string; de: string }

export interface DemoCorpusOptions {
  seed: number;
  train: number;
  dev: number;
  test: number;
  /**
   * Largest number drawn (1000..MAX_NUMBER; default MAX_NUMBER). A smaller one gives shorter German compounds and a
   * faster demo (9999: at most "neuntausendneunhundertneunundneunzig"); the same seed draws the same sentence kinds.
   */
  maxNumber?: number;
}

export const DEFAULT_DEMO_SIZES = { train: 20_000, dev: 500, test: 500 } as const;

export interface DemoCorpus { train: DemoPair[]; dev: DemoPair[]; test: DemoPair[] }

/**
 * Draw the three splits: distinct English sentences throughout (no dev or test sentence in training, none
 * shared between dev and test, no duplicate within a split), a pure function of the options. Test and dev are
 * drawn first so their content does not depend on the training size.
 */
export function generateDemoCorpus(opts: DemoCorpusOptions): DemoCorpus {
  for (const key of ['train', 'dev', 'test'] as const) {
    const v = opts[key];
    if (!Number.isSafeInteger(v) || v < 1) {
      throw new SigmaError('SGT_DATA_INVALID', `demo corpus: ${key}=${v} must be a positive integer number of pairs`);
    }
  }
  if (!Number.isSafeInteger(opts.seed)) {
    throw new SigmaError('SGT_DATA_INVALID', `demo corpus: seed=${opts.seed} must be an integer`);
  }
  const maxNumber = opts.maxNumber ?? MAX_NUMBER;
  if (!Number.isSafeInteger(maxNumber) || maxNumber < 1000 || maxNumber > MAX_NUMBER) {
    throw new SigmaError('SGT_DATA_INVALID', `demo corpus: maxNumber=${maxNumber} must be an integer from 1000 to ${MAX_NUMBER}`);
  }
  const seen = new Set<string>();
  const draw = (count: number, stream: number): DemoPair[] => {
    const rng = new Rng(deriveSeed(opts.seed, stream, 0xde30));
    const out: DemoPair[] = [];
    let attempts = 0;
    while (out.length < count) {
      if (++attempts > 20 * count + 1000) {
        throw new SigmaError('SGT_DATA_INVALID', `demo corpus: cannot draw ${count} distinct sentences; ask for fewer`);
      }
      const pair = renderPair(drawSentence(rng, maxNumber));
      if (seen.has(pair.en)) continue;
      seen.add(pair.en);
      out.push(pair);
    }
    return out;
  };
  const test = draw(opts.test, 3);
  const dev = draw(opts.dev, 2);
  const train = draw(opts.train, 1);
  return { train, dev, test };
}

// ---------------------------------------------------------------------------------------------------------------
// Writing in WMT's formats

/** XML text/attribute escaping (the five predefined entities). */
export function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** Segments per document in the SGM/XML sets; seg ids restart at 1 in each document, as in newstest. */
const DOC_SIZE = 10;

function docs<T>(items: T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += DOC_SIZE) out.push(items.slice(i, i + DOC_SIZE));
  return out;
}

/** A newstest-style SGM file: `<srcset>` for the source side, `<refset>` for the reference side. */
export function toSgm(setId: string, side: 'src' | 'ref', lang: string, srcLang: string, segments: string[]): string {
  const lines: string[] = [];
  lines.push(side === 'src'
    ? `<srcset setid="${xmlEscape(setId)}" srclang="${srcLang}">`
    : `<refset setid="${xmlEscape(setId)}" srclang="${srcLang}" trglang="${lang}">`);
  docs(segments).forEach((doc, d) => {
    const sysid = side === 'src' ? '' : ' sysid="ref"';
    lines.push(`<doc${sysid} docid="demo-${d + 1}" genre="news" origlang="${srcLang}">`);
    lines.push('<p>');
    doc.forEach((seg, i) => lines.push(`<seg id="${i + 1}">${xmlEscape(seg)}</seg>`));
    lines.push('</p>');
    lines.push('</doc>');
  });
  lines.push(side === 'src' ? '</srcset>' : '</refset>');
  return lines.join('\n') + '\n';
}

/** The WMT XML format of the newer test sets (wmttest2022 on): source and reference side by side per document. */
export function toWmtXml(setId: string, srcLang: string, tgtLang: string, pairs: { src: string; ref: string }[]): string {
  const out: string[] = ['<?xml version="1.0" encoding="utf-8"?>', `<dataset id="${xmlEscape(setId)}">`, '  <collection id="general">'];
  docs(pairs).forEach((doc, d) => {
    out.push(`    <doc id="demo-${d + 1}" origlang="${srcLang}" domain="news">`);
    out.push(`      <src lang="${srcLang}">`, '        <p>');
    doc.forEach((p, i) => out.push(`          <seg id="${i + 1}">${xmlEscape(p.src)}</seg>`));
    out.push('        </p>', '      </src>');
    out.push(`      <ref lang="${tgtLang}" translator="A">`, '        <p>');
    doc.forEach((p, i) => out.push(`          <seg id="${i + 1}">${xmlEscape(p.ref)}</seg>`));
    out.push('        </p>', '      </ref>');
    out.push('    </doc>');
  });
  out.push('  </collection>', '</dataset>');
  return out.join('\n') + '\n';
}

/** Share of the training pairs written as the aligned-text corpus; the rest goes to the TSV corpus. */
const ALIGNED_SHARE = 0.8;

/** Paths written by writeDemoCorpus, relative to the output directory. */
export const DEMO_FILES = {
  alignedEn: 'training/demo-v1.de-en.en',
  alignedDe: 'training/demo-v1.de-en.de',
  tsv: 'training/demo-commentary-v1.de-en.tsv', // columns: de <TAB> en, as news-commentary-v*.de-en.tsv
  devSrc: 'dev/demodev2024-ende-src.en.sgm',
  devRef: 'dev/demodev2024-ende-ref.de.sgm',
  testSrc: 'dev/demotest2024-ende-src.en.sgm',
  testRef: 'dev/demotest2024-ende-ref.de.sgm',
  testXml: 'dev/demotest2024.en-de.xml',
} as const;

export interface DemoWriteResult { files: string[]; train: number; aligned: number; tsv: number; dev: number; test: number }

/**
 * Generate and write the corpus under `outDir`: training pairs split into an aligned-text corpus (80%) and a
 * news-commentary-style TSV (20%), the dev set `demodev2024` as SGM, the test set `demotest2024` both as SGM and
 * as WMT XML (same segments). Every line ends in "\n"; files are UTF-8.
 */
export async function writeDemoCorpus(outDir: string, opts: DemoCorpusOptions): Promise<DemoWriteResult> {
  const corpus = generateDemoCorpus(opts);
  const nAligned = Math.max(1, Math.round(corpus.train.length * ALIGNED_SHARE));
  const aligned = corpus.train.slice(0, nAligned);
  const tsv = corpus.train.slice(nAligned);
  const contents: [string, string][] = [
    [DEMO_FILES.alignedEn, aligned.map((p) => p.en + '\n').join('')],
    [DEMO_FILES.alignedDe, aligned.map((p) => p.de + '\n').join('')],
    [DEMO_FILES.tsv, tsv.map((p) => `${p.de}\t${p.en}\n`).join('')],
    [DEMO_FILES.devSrc, toSgm('demodev2024', 'src', 'en', 'en', corpus.dev.map((p) => p.en))],
    [DEMO_FILES.devRef, toSgm('demodev2024', 'ref', 'de', 'en', corpus.dev.map((p) => p.de))],
    [DEMO_FILES.testSrc, toSgm('demotest2024', 'src', 'en', 'en', corpus.test.map((p) => p.en))],
    [DEMO_FILES.testRef, toSgm('demotest2024', 'ref', 'de', 'en', corpus.test.map((p) => p.de))],
    [DEMO_FILES.testXml, toWmtXml('demotest2024', 'en', 'de', corpus.test.map((p) => ({ src: p.en, ref: p.de })))],
  ];
  await fs.mkdir(path.join(outDir, 'training'), { recursive: true });
  await fs.mkdir(path.join(outDir, 'dev'), { recursive: true });
  const files: string[] = [];
  for (const [rel, text] of contents) {
    const file = path.join(outDir, rel);
    await fs.writeFile(file, text, 'utf8');
    files.push(file);
  }
  return { files, train: corpus.train.length, aligned: aligned.length, tsv: tsv.length, dev: corpus.dev.length, test: corpus.test.length };
}
