// ImageNet-1k (ILSVRC2012) indexing: train/<wnid>/*.JPEG, and val either as class folders or flat val/*.JPEG
// labelled by Kaggle's LOC_val_solution.csv. Returns the ImageFolder SampleIndex; labels index train's sorted wnids.

import { promises as fs } from 'node:fs';
import path from 'node:path';
import { SigmaError } from '../../shared/errors.js';
import { IMAGE_EXTENSIONS, indexImageFolder, type SampleIndex } from './imagefolder.js';

export const VAL_SOLUTION_FILE = 'LOC_val_solution.csv';

export interface ImageNetOptions {
  /** Class list (label k = classes[k]); default: the sorted class folders of <root>/train. */
  classes?: string[];
  /** Path of LOC_val_solution.csv for a flat val/; default: searched, see valSolutionCandidates. */
  valLabels?: string;
}

const byCodePoint = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const isImage = (name: string): boolean => !name.startsWith('.') && IMAGE_EXTENSIONS.has(path.extname(name).toLowerCase());

/**
 * Where a flat val/ looks for its labels: <root>/LOC_val_solution.csv, <root>/val/LOC_val_solution.csv, and for
 * Kaggle's tree (root = …/ILSVRC/Data/CLS-LOC, CSV three levels up) <root>/../../../LOC_val_solution.csv.
 */
export function valSolutionCandidates(root: string): string[] {
  const r = path.resolve(root);
  return [path.join(r, VAL_SOLUTION_FILE), path.join(r, 'val', VAL_SOLUTION_FILE), path.resolve(r, '..', '..', '..', VAL_SOLUTION_FILE)];
}

/** The entries of `dir`; an unreadable one is SGT_DATA_INVALID naming it, its error code and `advice`. */
async function entriesOf(dir: string, what: string, advice: string) {
  try {
    return await fs.readdir(dir, { withFileTypes: true });
  } catch (e) {
    throw new SigmaError('SGT_DATA_INVALID', `cannot read ${what}${dir} (${(e as NodeJS.ErrnoException).code ?? String(e)})${advice}`, { cause: e });
  }
}

/** Sorted class folder names of <root>/train (no file listing: cheap even for ImageNet). */
async function trainClasses(root: string): Promise<string[]> {
  const dir = path.resolve(root, 'train');
  const entries = await entriesOf(dir, '',
    ": the val labels index train's class folders; point data.root at the directory holding train/ and val/");
  const classes = entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort(byCodePoint);
  if (classes.length === 0) throw new SigmaError('SGT_DATA_INVALID', `${dir} has no class folders (expected train/<wnid>/*.JPEG)`);
  return classes;
}

/**
 * Index an ImageNet split. train: the ImageFolder reader (classes = sorted wnid folders). val: class folders (each
 * must be a train class; labels follow train's order) or flat images labelled by LOC_val_solution.csv (every row
 * must name a train wnid and an existing image; every image must have a row). Samples are ordered by (label, file
 * name) in both val layouts, so the two give the same index. Errors are SGT_DATA_INVALID naming the path or row.
 */
export async function indexImageNet(root: string, split: 'train' | 'val', opts: ImageNetOptions = {}): Promise<SampleIndex> {
  if (split === 'train') {
    const idx = await indexImageFolder(root, 'train');
    if (opts.classes && opts.classes.join('\n') !== idx.classes.join('\n')) {
      throw new SigmaError('SGT_DATA_INVALID', `${path.resolve(root, 'train')}: class folders differ from the given class list`);
    }
    return idx;
  }
  const classes = opts.classes ?? (await trainClasses(root));
  const labelOf = new Map(classes.map((c, k) => [c, k]));
  const dir = path.resolve(root, 'val');
  const entries = await entriesOf(dir, 'the val split at ', `; expected val/<wnid>/*.JPEG or val/*.JPEG + ${VAL_SOLUTION_FILE}`);
  const files = entries.filter((e) => e.isFile() && isImage(e.name)).map((e) => e.name);
  const dirs = entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort(byCodePoint);
  let samples: { path: string; label: number; name: string }[];
  if (files.length > 0) {
    if (dirs.length > 0) {
      throw new SigmaError(
        'SGT_DATA_INVALID',
        `${dir} holds both images (${files[0]}) and folders (${dirs[0]}); use either class folders or a flat val/ with ${VAL_SOLUTION_FILE}`,
      );
    }
    samples = await flatVal(root, dir, files, labelOf, opts.valLabels);
  } else {
    if (dirs.length === 0) throw new SigmaError('SGT_DATA_INVALID', `${dir} has no images and no class folders`);
    samples = [];
    for (const d of dirs) {
      const label = labelOf.get(d);
      if (label === undefined) {
        throw new SigmaError('SGT_DATA_INVALID', `${path.join(dir, d)}: val class folder "${d}" is not a train class`);
      }
      const names = (await fs.readdir(path.join(dir, d), { withFileTypes: true })).filter((e) => e.isFile() && isImage(e.name)).map((e) => e.name);
      for (const name of names) samples.push({ path: path.join(dir, d, name), label, name });
    }
    if (samples.length === 0) throw new SigmaError('SGT_DATA_INVALID', `${dir} has class folders but no images`);
  }
  samples.sort((a, b) => a.label - b.label || byCodePoint(a.name, b.name));
  const n = samples.length;
  const bytes = new Float64Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < n) {
        const i = next++;
        bytes[i] = (await fs.stat(samples[i]!.path)).size;
      }
    }),
  );
  return {
    ids: Int32Array.from({ length: n }, (_, i) => i),
    paths: samples.map((s) => s.path),
    labels: Int32Array.from(samples, (s) => s.label),
    bytes,
    classes,
  };
}

async function findSolution(root: string, explicit: string | undefined): Promise<string> {
  const candidates = explicit ? [path.resolve(explicit)] : valSolutionCandidates(root);
  for (const c of candidates) {
    try {
      if ((await fs.stat(c)).isFile()) return c;
    } catch {
      // next candidate
    }
  }
  throw new SigmaError(
    'SGT_DATA_INVALID',
    `val/ is flat but no ${VAL_SOLUTION_FILE} was found (looked at ${candidates.join(', ')}); ` +
      'download it with the Kaggle ImageNet release, pass its path, or sort val/ into <wnid>/ folders',
  );
}

/**
 * Parse LOC_val_solution.csv: a header with ImageId and PredictionString columns, then one row per image whose
 * PredictionString starts with the wnid ("n01751748 … n01751748 …"). Returns ImageId → {wnid, line} (1-based file
 * line, for messages); errors name the line.
 */
export function parseValSolution(text: string, file = VAL_SOLUTION_FILE): Map<string, { wnid: string; line: number }> {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const header = (lines[0] ?? '').split(',').map((h) => h.trim().replace(/^"|"$/g, ''));
  const idCol = header.indexOf('ImageId');
  const predCol = header.indexOf('PredictionString');
  if (idCol < 0 || predCol < 0) {
    throw new SigmaError('SGT_DATA_INVALID', `${file} line 1: header "${lines[0] ?? ''}" lacks ImageId and PredictionString columns`);
  }
  const out = new Map<string, { wnid: string; line: number }>();
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    const cells = line.split(',').map((c) => c.trim().replace(/^"|"$/g, ''));
    const id = cells[idCol] ?? '';
    const wnid = (cells[predCol] ?? '').split(/\s+/)[0] ?? '';
    if (!id || !wnid) throw new SigmaError('SGT_DATA_INVALID', `${file} line ${i + 1}: "${line}" has no ImageId or no wnid`);
    if (out.has(id)) throw new SigmaError('SGT_DATA_INVALID', `${file} line ${i + 1}: ImageId ${id} is listed twice`);
    out.set(id, { wnid, line: i + 1 });
  }
  if (out.size === 0) throw new SigmaError('SGT_DATA_INVALID', `${file} has a header but no rows`);
  return out;
}

async function flatVal(
  root: string,
  dir: string,
  files: string[],
  labelOf: Map<string, number>,
  explicit: string | undefined,
): Promise<{ path: string; label: number; name: string }[]> {
  const csv = await findSolution(root, explicit);
  const rows = parseValSolution(await fs.readFile(csv, 'utf8'), csv);
  const byStem = new Map(files.map((f) => [f.slice(0, f.length - path.extname(f).length), f]));
  const out: { path: string; label: number; name: string }[] = [];
  for (const [id, { wnid, line }] of rows) {
    const label = labelOf.get(wnid);
    if (label === undefined) {
      throw new SigmaError('SGT_DATA_INVALID', `${csv} line ${line}: ${id} names wnid "${wnid}", which is not a class folder of train/`);
    }
    const name = byStem.get(id);
    if (name === undefined) {
      throw new SigmaError('SGT_DATA_INVALID', `${csv} line ${line}: ${id} is listed but ${path.join(dir, id + '.JPEG')} does not exist`);
    }
    byStem.delete(id);
    out.push({ path: path.join(dir, name), label, name });
  }
  if (byStem.size > 0) {
    const [first] = byStem.values();
    throw new SigmaError('SGT_DATA_INVALID', `${path.join(dir, first!)} (and ${byStem.size - 1} more) has no row in ${csv}`);
  }
  return out;
}
