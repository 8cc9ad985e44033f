// Readers for WMT's distribution formats, each yielding (source, target) sentence pairs one at a time:
// aligned plain text, news-commentary TSV, the pre-2021 "fake SGML" dev/test sets and the 2021+ WMT XML.

import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { SaxesParser } from 'saxes';
import { SigmaError } from '../../../shared/errors.js';
import type { CleanCounts } from './clean.js';
import { assertNonEmpty, firstInvalidUtf8, readLines, type LineRange } from './lines.js';

export interface Pair {
  src: string;
  tgt: string;
}

/** One corpus on disk. Line ranges (byte offsets at line starts) let worker threads read a part of it. */
export type CorpusSource =
  | { kind: 'aligned'; srcFile: string; tgtFile: string }
  | { kind: 'tsv'; file: string; srcColumn: 0 | 1 }
  | { kind: 'sgm'; srcFile: string; refFile: string }
  | { kind: 'wmtxml'; file: string; srcLang: string; tgtLang: string; translator?: string };

export function sourceFiles(s: CorpusSource): string[] {
  switch (s.kind) {
    case 'aligned':
      return [s.srcFile, s.tgtFile];
    case 'tsv':
    case 'wmtxml':
      return [s.file];
    case 'sgm':
      return [s.srcFile, s.refFile];
  }
}

async function countRest(it: AsyncIterator<unknown>): Promise<number> {
  let n = 0;
  while (!(await it.next()).done) n++;
  return n;
}

/**
 * Aligned plain text: line i of `<name>.<src>` translates line i of `<name>.<tgt>`. A different line count is an
 * error naming both files and both counts (the usual cause: one side re-extracted, or a stray newline).
 */
export async function* readAligned(
  srcFile: string,
  tgtFile: string,
  ranges?: { src: LineRange; tgt: LineRange },
): AsyncGenerator<Pair> {
  if (!ranges) {
    await assertNonEmpty(srcFile);
    await assertNonEmpty(tgtFile);
  }
  const a = readLines(srcFile, ranges?.src)[Symbol.asyncIterator]();
  const b = readLines(tgtFile, ranges?.tgt)[Symbol.asyncIterator]();
  let n = 0;
  for (;;) {
    const [x, y] = await Promise.all([a.next(), b.next()]);
    if (x.done && y.done) return;
    if (x.done || y.done) {
      const restA = x.done ? 0 : 1 + (await countRest(a));
      const restB = y.done ? 0 : 1 + (await countRest(b));
      const where = ranges ? ` (in the line range starting at bytes ${ranges.src.start ?? 0} / ${ranges.tgt.start ?? 0})` : '';
      throw new SigmaError(
        'SGT_CORPUS_MISMATCH',
        `aligned corpus sides differ in line count${where}: ${srcFile} has ${n + restA} lines, ${tgtFile} has ${n + restB}; ` +
          `both sides must have one sentence per line, line for line`,
      );
    }
    n++;
    yield { src: x.value.text, tgt: y.value.text };
  }
}

/**
 * Tab-separated pairs (news-commentary-v14.de-en.tsv): column 0 is the first language of the file name's pair.
 * A line without exactly one tab is counted as malformed (news-commentary has a few), never silently dropped.
 */
export async function* readTsv(file: string, srcColumn: 0 | 1, counts?: CleanCounts, range?: LineRange): AsyncGenerator<Pair> {
  if (!range) await assertNonEmpty(file);
  for await (const line of readLines(file, range)) {
    const tab = line.text.indexOf('\t');
    if (line.text.length === 0) {
      yield { src: '', tgt: '' }; // document separators: cleaning counts them as empty
      continue;
    }
    if (tab < 0 || line.text.indexOf('\t', tab + 1) >= 0) {
      if (counts) {
        counts.read++;
        counts.malformed++;
      }
      continue;
    }
    const c0 = line.text.slice(0, tab);
    const c1 = line.text.slice(tab + 1);
    yield srcColumn === 0 ? { src: c0, tgt: c1 } : { src: c1, tgt: c0 };
  }
}

// Python's str.isspace() set, which sacreBLEU's `re.sub(r"\s+", " ", s.strip())` uses; JS's \s differs
// (it lacks \x1c-\x1f and \x85, and adds \ufeff).
const PY_WS = '\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const PY_WS_RUN = new RegExp(`[${PY_WS}]+`, 'g');
const PY_STRIP = new RegExp(`^[${PY_WS}]+|[${PY_WS}]+$`, 'g');

/** sacreBLEU's Dataset._clean: strip, then collapse whitespace runs to one space. */
export function sacrebleuClean(s: string): string {
  return s.replace(PY_STRIP, '').replace(PY_WS_RUN, ' ');
}

// sacreBLEU's FakeSGMLDataset: re.sub(r"<seg.*?>(.*)</seg>.*?", "\\1", line), with Python's '.' (anything but \n).
const SEG_RE = /<seg[^\n]*?>([^\n]*)<\/seg>[^\n]*?/;

/** The segments of one SGM file, read as sacreBLEU reads them: lines starting "<seg ", entities left as written. */
export async function* readSgmSegments(file: string): AsyncGenerator<string> {
  await assertNonEmpty(file);
  for await (const line of readLines(file)) {
    if (line.text.startsWith('<seg ')) yield sacrebleuClean(line.text.replace(SEG_RE, '$1'));
  }
}

/** Pre-2021 dev/test set: `<set>-<sl><tl>-src.<src>.sgm` and `…-ref.<tgt>.sgm`, segment for segment. */
export async function* readSgmPair(srcFile: string, refFile: string): AsyncGenerator<Pair> {
  const a = readSgmSegments(srcFile)[Symbol.asyncIterator]();
  const b = readSgmSegments(refFile)[Symbol.asyncIterator]();
  let n = 0;
  for (;;) {
    const [x, y] = await Promise.all([a.next(), b.next()]);
    if (x.done && y.done) return;
    if (x.done || y.done) {
      const na = n + (x.done ? 0 : 1 + (await countRest(a)));
      const nb = n + (y.done ? 0 : 1 + (await countRest(b)));
      throw new SigmaError(
        'SGT_CORPUS_MISMATCH',
        `SGM test set sides differ in segment count: ${srcFile} has ${na} <seg> lines, ${refFile} has ${nb}`,
      );
    }
    n++;
    yield { src: x.value, tgt: y.value };
  }
}

interface XmlDoc {
  srcLang: string;
  refLang: string;
  src: Map<number, string>;
  /** translator (null when absent) → seg id → text */
  refs: Map<string | null, Map<number, string>>;
}

/** The documents of a WMT XML file; the whole file is parsed (test sets are a few MB at most). */
async function parseWmtXml(file: string): Promise<{ docs: XmlDoc[]; translators: (string | null)[] }> {
  await assertNonEmpty(file);
  const bytes = await readFile(file);
  const bad = firstInvalidUtf8(bytes);
  if (bad >= 0) {
    throw new SigmaError('SGT_CORPUS_ENCODING', `${file}: invalid UTF-8 at byte offset ${bad}; convert the file to UTF-8`);
  }
  const parser = new SaxesParser({ fileName: file });
  const docs: XmlDoc[] = [];
  const translators: (string | null)[] = [];
  let doc: XmlDoc | null = null;
  let side: { kind: 'src' | 'ref' | 'other'; translator: string | null } | null = null;
  let pendingSrcTranslator: string | null = null;
  let seg: { id: number; text: string; depth: number } | null = null;
  let depth = 0;
  parser.on('opentag', (tag) => {
    depth++;
    const attr = (k: string): string | undefined => {
      const v = tag.attributes[k];
      return typeof v === 'string' ? v : v?.value;
    };
    if (tag.name === 'doc') {
      doc = attr('testsuite') !== undefined ? null : { srcLang: '', refLang: '', src: new Map(), refs: new Map() };
      if (doc) docs.push(doc);
    } else if (doc && (tag.name === 'src' || tag.name === 'ref')) {
      if (tag.name === 'src') {
        doc.srcLang = attr('lang') ?? '';
        pendingSrcTranslator = attr('translator') ?? null;
        side = { kind: 'src', translator: null };
      } else {
        doc.refLang = attr('lang') ?? '';
        // sacreBLEU: ref.get("translator", src.get("translator"))
        const t = attr('translator') ?? pendingSrcTranslator;
        if (!translators.includes(t)) translators.push(t);
        side = { kind: 'ref', translator: t };
        if (!doc.refs.has(t)) doc.refs.set(t, new Map());
      }
    } else if (doc && tag.name === 'hyp') {
      side = { kind: 'other', translator: null };
    } else if (doc && side && tag.name === 'seg') {
      const id = Number(attr('id'));
      if (!Number.isInteger(id)) {
        throw new SigmaError('SGT_CORPUS_FORMAT', `${file}:${parser.line}: <seg> without an integer id (id="${attr('id')}")`);
      }
      seg = { id, text: '', depth };
    }
  });
  parser.on('text', (t) => {
    if (seg && depth === seg.depth) seg.text += t; // lxml's seg.text: the text before any child element
  });
  parser.on('closetag', (tag) => {
    if (seg && tag.name === 'seg' && depth === seg.depth) {
      if (doc && side?.kind === 'src') doc.src.set(seg.id, seg.text);
      else if (doc && side?.kind === 'ref') doc.refs.get(side.translator)!.set(seg.id, seg.text);
      seg = null;
    } else if (tag.name === 'src' || tag.name === 'ref' || tag.name === 'hyp') side = null;
    else if (tag.name === 'doc') doc = null;
    depth--;
  });
  try {
    parser.write(bytes.toString('utf8')).close();
  } catch (e) {
    if (e instanceof SigmaError) throw e;
    throw new SigmaError('SGT_CORPUS_FORMAT', `${file}: not well-formed XML: ${(e as Error).message}`, { cause: e });
  }
  return { docs, translators };
}

/**
 * A 2021+ WMT XML test set (`newstest2021.en-de.xml`, `wmttest2022.en-de.all.xml`), unwrapped as sacreBLEU's
 * WMTXMLDataset does: test-suite documents skipped, segments in id order, a segment kept when any translator has
 * a non-empty reference for it. `translator` picks the reference (default: the first one in the file).
 * srcLang/tgtLang may be the file's reverse direction: then the reference side is our source.
 */
export async function* readWmtXml(file: string, srcLang: string, tgtLang: string, translator?: string): AsyncGenerator<Pair> {
  const { docs, translators } = await parseWmtXml(file);
  if (docs.length === 0) throw new SigmaError('SGT_CORPUS_EMPTY', `${file}: no <doc> with <src>/<ref> (only test suites?)`);
  const t = translator !== undefined ? translator : translators[0] ?? null;
  if (translator !== undefined && !translators.includes(translator)) {
    throw new SigmaError(
      'SGT_CORPUS_FORMAT',
      `${file}: no reference by translator "${translator}"; the file has ${translators.map((x) => JSON.stringify(x ?? '(none)')).join(', ')}`,
    );
  }
  for (const d of docs) {
    let forward: boolean;
    if (d.srcLang === srcLang && d.refLang === tgtLang) forward = true;
    else if (d.srcLang === tgtLang && d.refLang === srcLang) forward = false;
    else {
      throw new SigmaError(
        'SGT_CORPUS_FORMAT',
        `${basename(file)}: a document has <src lang="${d.srcLang}"> and <ref lang="${d.refLang}">, not ${srcLang}/${tgtLang}`,
      );
    }
    const chosen = d.refs.get(t) ?? new Map<number, string>();
    for (const id of [...d.src.keys()].sort((a, b) => a - b)) {
      if (![...d.refs.values()].some((m) => (m.get(id) ?? '') !== '')) continue;
      const s = sacrebleuClean(d.src.get(id) ?? '');
      const r = sacrebleuClean(chosen.get(id) ?? '');
      yield forward ? { src: s, tgt: r } : { src: r, tgt: s };
    }
  }
}

/** Pairs of any source. TSV lines without exactly one tab are counted in `counts.malformed`. */
export function readPairs(s: CorpusSource, counts?: CleanCounts): AsyncGenerator<Pair> {
  switch (s.kind) {
    case 'aligned':
      return readAligned(s.srcFile, s.tgtFile);
    case 'tsv':
      return readTsv(s.file, s.srcColumn, counts);
    case 'sgm':
      return readSgmPair(s.srcFile, s.refFile);
    case 'wmtxml':
      return readWmtXml(s.file, s.srcLang, s.tgtLang, s.translator);
  }
}
