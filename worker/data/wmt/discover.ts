// Finds a WMT corpus's files under one root from the language pair and the dev/test set names, the way WMT's
// tarballs lay them out: training/*.de-en.{en,de} or *.de-en.tsv, dev/<set>-ende-src.en.sgm, <set>.en-de.xml.

import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { SigmaError } from '../../../shared/errors.js';
import { sourceFiles, type CorpusSource } from './formats.js';

export interface DiscoverOptions {
  /** Directory holding training/ (or the training files themselves) and the dev/test files anywhere below. */
  root: string;
  /** Source and target language codes as in the file names (e.g. en, de). */
  src: string;
  tgt: string;
  /** Dev/test set names (e.g. newstest2016); each may be SGM, WMT XML or a plain aligned pair. */
  valid: string[];
  test: string[];
  /** Only training corpora whose file name starts with one of these (e.g. europarl-v7); default all found. */
  trainCorpora?: string[];
  /** WMT XML: which reference translator to use (default: the file's first). */
  translator?: string;
}

export interface DiscoveredCorpus {
  train: CorpusSource[];
  valid: { name: string; source: CorpusSource }[];
  test: { name: string; source: CorpusSource }[];
}

/** Every regular file under dir (sorted, so discovery is deterministic), skipping dot-directories (caches). */
async function walk(dir: string, depth = 0): Promise<string[]> {
  if (depth > 6) return [];
  const out: string[] = [];
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p, depth + 1)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

function findSet(files: Set<string>, all: string[], name: string, o: DiscoverOptions): CorpusSource | null {
  const { src, tgt } = o;
  const byBase = new Map<string, string[]>();
  for (const f of all) {
    const b = basename(f);
    if (!byBase.has(b)) byBase.set(b, []);
    byBase.get(b)!.push(f);
  }
  const sameDir = (a: string, bBase: string): string | null => {
    const p = join(dirname(a), bBase);
    return files.has(p) ? p : null;
  };
  // 1. SGM: <set>-<pair>-src.<src>.sgm + <set>-<pair>-ref.<tgt>.sgm, pair = srctgt or tgtsrc (newstest2014 has deen only).
  for (const pair of [`${src}${tgt}`, `${tgt}${src}`]) {
    for (const s of byBase.get(`${name}-${pair}-src.${src}.sgm`) ?? []) {
      const r = sameDir(s, `${name}-${pair}-ref.${tgt}.sgm`);
      if (r) return { kind: 'sgm', srcFile: s, refFile: r };
    }
  }
  // 2. WMT XML (2021+): <set>.<l1>-<l2>.xml or .all.xml, either direction.
  for (const pair of [`${src}-${tgt}`, `${tgt}-${src}`]) {
    for (const ext of ['xml', 'all.xml']) {
      const f = byBase.get(`${name}.${pair}.${ext}`)?.[0];
      if (f) return { kind: 'wmtxml', file: f, srcLang: src, tgtLang: tgt, ...(o.translator ? { translator: o.translator } : {}) };
    }
  }
  // 3. Plain aligned text: <set>.<src> + <set>.<tgt>, or <set>.<l1>-<l2>.<src> + .<tgt>.
  for (const stem of [name, `${name}.${src}-${tgt}`, `${name}.${tgt}-${src}`]) {
    for (const s of byBase.get(`${stem}.${src}`) ?? []) {
      const t = sameDir(s, `${stem}.${tgt}`);
      if (t) return { kind: 'aligned', srcFile: s, tgtFile: t };
    }
  }
  return null;
}

/**
 * Discovers training corpora and dev/test sets. Training files: under <root>/training if it exists, else under
 * <root> (dev/test set files excluded). Throws naming what was looked for when something is missing.
 */
export async function discoverCorpus(o: DiscoverOptions): Promise<DiscoveredCorpus> {
  const { root, src, tgt } = o;
  if (!(await isDir(root))) throw new SigmaError('SGT_CORPUS_NOT_FOUND', `data root ${root} is not a directory`);
  if (!src || !tgt || src === tgt) {
    throw new SigmaError('SGT_CORPUS_NOT_FOUND', `data.wmt.src and data.wmt.tgt must be two different language codes, got "${src}" and "${tgt}"`);
  }
  const all = await walk(root);
  const files = new Set(all);

  const sets = (names: string[]) =>
    names.map((name) => {
      const source = findSet(files, all, name, o);
      if (!source) {
        throw new SigmaError(
          'SGT_CORPUS_NOT_FOUND',
          `dev/test set "${name}" not found under ${root}: looked for ${name}-{${src}${tgt},${tgt}${src}}-src.${src}.sgm with ` +
            `-ref.${tgt}.sgm, ${name}.{${src}-${tgt},${tgt}-${src}}[.all].xml, and ${name}.${src} with ${name}.${tgt}`,
        );
      }
      return { name, source };
    });
  const valid = sets(o.valid);
  const test = sets(o.test);
  const setFiles = new Set<string>();
  for (const { source } of [...valid, ...test]) {
    for (const f of sourceFiles(source)) setFiles.add(f);
  }

  const trainRoot = (await isDir(join(root, 'training'))) ? join(root, 'training') : root;
  const pairs = [`${src}-${tgt}`, `${tgt}-${src}`];
  const wanted = (f: string) => !o.trainCorpora || o.trainCorpora.some((p) => basename(f).startsWith(p));
  const train: CorpusSource[] = [];
  for (const f of all) {
    if (!f.startsWith(trainRoot) || setFiles.has(f) || !wanted(f)) continue;
    const b = basename(f);
    const packed = /\.(gz|xz|bz2|zst|tgz|zip)$/.exec(b);
    if (packed && pairs.some((p) => new RegExp(`\\.${p}\\.(${src}|${tgt}|tsv)\\.${packed[1]}$`).test(b))) {
      throw new SigmaError(
        'SGT_CORPUS_FORMAT',
        `${f} is compressed (.${packed[1]}); decompress it next to itself (the cache reads plain files by byte ranges) or move it out of ${trainRoot}`,
      );
    }
    for (const pair of pairs) {
      if (b.endsWith(`.${pair}.${src}`)) {
        const t = f.slice(0, -src.length) + tgt;
        if (files.has(t)) train.push({ kind: 'aligned', srcFile: f, tgtFile: t });
        else {
          throw new SigmaError('SGT_CORPUS_NOT_FOUND', `${f} has no target side: expected ${relative(root, t)} next to it`);
        }
      } else if (b.endsWith(`.${pair}.tsv`)) {
        train.push({ kind: 'tsv', file: f, srcColumn: pair.startsWith(`${src}-`) ? 0 : 1 });
      }
    }
  }
  if (train.length === 0) {
    throw new SigmaError(
      'SGT_CORPUS_NOT_FOUND',
      `no training corpus for ${src}-${tgt} under ${trainRoot}: expected aligned files *.${src}-${tgt}.${src} + .${tgt} ` +
        `(or *.${tgt}-${src}.*) or TSV files *.${src}-${tgt}.tsv / *.${tgt}-${src}.tsv` +
        (o.trainCorpora ? ` whose names start with ${o.trainCorpora.join(', ')}` : ''),
    );
  }
  return { train, valid, test };
}
