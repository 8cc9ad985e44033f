// What `sigmatrain vocab --config F` and a WMT run's first use call: discover the corpus, learn the joint vocabulary
// from its cleaned training text (or reuse the one learned before from the same files and options), build the cache.

import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { SigmaError } from '../../../shared/errors.js';
import { buildCache, type CacheHeader } from './cache.js';
import { addCounts, cleanVerdict, emptyCounts, formatCounts, NO_CLEAN, resolveCleanOptions, type CleanCounts, type CleanOptions } from './clean.js';
import { discoverCorpus, type DiscoveredCorpus } from './discover.js';
import { readPairs, sourceFiles, type CorpusSource } from './formats.js';
import { loadVocab, sha256Hex, trainVocab, TRAINER_LIMIT, VOCAB_FILE, type Vocab } from './vocab.js';

export interface TrainVocabularyOptions {
  /** data.root: the corpus directory (training/ and the dev/test files below it). */
  root: string;
  /** data.wmt.src / data.wmt.tgt */
  src: string;
  tgt: string;
  /** data.wmt.valid / data.wmt.test: set names; discovered so their files never leak into training. */
  valid?: string[];
  test?: string[];
  /** data.wmt.corpora: only training files whose names start with these (default: all found). */
  trainCorpora?: string[];
  /** data.wmt.vocabSize (joint BPE; the paper's WMT'17 En-De uses ~41k). */
  vocabSize: number;
  /** data.wmt.clean.*: cleaning applied to the training text before learning (and before caching). */
  clean?: Partial<CleanOptions>;
  /** data.wmt.normalization (default nfkc). */
  normalization?: 'nfkc' | 'none';
  /** data.wmt.vocabSentences: learn from at most this many sentences (0 = all). */
  maxSentences?: number;
  /**
   * data.wmt.hardVocabLimit: a corpus that cannot fill vocabSize is an error (true) or gets a smaller vocabulary,
   * logged with both sizes (false). Not part of the vocabulary's identity: both give the same file when it fills.
   */
  hardLimit?: boolean;
  /** Where the vocabulary (and cache) live; default <root>/.sigmatrain, or a temp dir when root is read-only. */
  workDir?: string;
  /** Retrain even when a vocabulary from the same inputs exists (it is overwritten). */
  force?: boolean;
  log?: (msg: string) => void;
}

export interface VocabularyResult {
  path: string;
  hash: string;
  size: number;
  /** true when an existing vocabulary learned from the same files and options was reused. */
  reused: boolean;
  /** Cleaning counts over the training text (empty when reused). */
  counts: CleanCounts;
  dir: string;
}

interface VocabMeta {
  options: { src: string; tgt: string; vocabSize: number; clean: CleanOptions; normalization: string; maxSentences: number };
  sources: { path: string; size: number; mtimeMs: number }[];
  hash: string;
}

/**
 * Where a corpus's vocabularies and token caches may live, in order: data.wmt.workDir when set; else <root>/.sigmatrain,
 * or (root not writable) a per-root folder under the system's tmp.
 */
export function workDirCandidates(root: string, workDir?: string): string[] {
  return workDir ? [workDir] : [join(root, '.sigmatrain'), join(tmpdir(), `sigmatrain-wmt-${sha256Hex(resolve(root)).slice(0, 12)}`)];
}

/** The vocabulary folder of these options under a work dir. */
export function vocabDirOf(work: string, o: { src: string; tgt: string; vocabSize: number }): string {
  return join(work, `vocab-${o.src}-${o.tgt}-${o.vocabSize}`);
}

/** The token cache of a vocabulary (by its hash) inside its folder. */
export function cacheDirOf(vocabDir: string, vocabHash: string): string {
  return join(vocabDir, `cache-${vocabHash.slice(0, 12)}`);
}

async function writableWorkDir(o: { root: string; workDir?: string; log: (m: string) => void }): Promise<string> {
  const [preferred, alt] = workDirCandidates(o.root, o.workDir);
  if (o.workDir) {
    await mkdir(preferred!, { recursive: true });
    return preferred!;
  }
  try {
    await mkdir(preferred!, { recursive: true });
    await writeFile(join(preferred!, '.probe'), '');
    return preferred!;
  } catch {
    o.log(`${o.root} is not writable: keeping the vocabulary and token cache in ${alt}`);
    await mkdir(alt!, { recursive: true });
    return alt!;
  }
}

async function sourceStats(sources: CorpusSource[]) {
  const out: VocabMeta['sources'] = [];
  for (const s of sources) for (const f of sourceFiles(s)) {
    const st = await stat(f);
    out.push({ path: f, size: st.size, mtimeMs: st.mtimeMs });
  }
  return out;
}

/** The cleaned training text, source and target interleaved; counts what cleaning removed. */
async function* trainingText(sources: CorpusSource[], clean: CleanOptions, counts: CleanCounts): AsyncGenerator<string> {
  for (const s of sources) {
    const c = emptyCounts();
    for await (const p of readPairs(s, c)) {
      c.read++;
      const why = cleanVerdict(p.src, p.tgt, clean);
      if (why) {
        c[why]++;
        continue;
      }
      c.kept++;
      yield p.src;
      yield p.tgt;
    }
    addCounts(counts, c);
  }
}

/**
 * Learns (or reuses) the joint vocabulary of a WMT corpus. The vocabulary directory is
 * <workDir>/vocab-<src>-<tgt>-<vocabSize>/ holding vocab.json and vocab.meta.json (inputs and options); a run
 * records `hash` and refuses to resume with another.
 */
export async function trainVocabulary(opts: TrainVocabularyOptions): Promise<VocabularyResult> {
  const log = opts.log ?? (() => {});
  const clean = resolveCleanOptions(opts.clean);
  const normalization = opts.normalization ?? 'nfkc';
  const corpus = await discoverCorpus({ root: opts.root, src: opts.src, tgt: opts.tgt, valid: opts.valid ?? [], test: opts.test ?? [], ...(opts.trainCorpora ? { trainCorpora: opts.trainCorpora } : {}) });
  const work = await writableWorkDir({ root: opts.root, ...(opts.workDir ? { workDir: opts.workDir } : {}), log });
  const dir = vocabDirOf(work, opts);
  const options: VocabMeta['options'] = { src: opts.src, tgt: opts.tgt, vocabSize: opts.vocabSize, clean, normalization, maxSentences: opts.maxSentences ?? 0 };
  const sources = await sourceStats(corpus.train);
  let old: VocabMeta | null = null;
  try {
    old = JSON.parse(await readFile(join(dir, 'vocab.meta.json'), 'utf8')) as VocabMeta;
  } catch {
    old = null;
  }
  if (old && !opts.force) {
    const same = JSON.stringify(old.options) === JSON.stringify(options) && JSON.stringify(old.sources) === JSON.stringify(sources);
    if (!same) {
      throw new SigmaError(
        'SGT_VOCAB',
        `${join(dir, VOCAB_FILE)} was learned from other training files or options than now; runs that recorded its hash ` +
          `${old.hash.slice(0, 12)} depend on it. Pass force (sigmatrain vocab --force) to relearn it, or another workDir`,
      );
    }
    const v = await loadVocab(dir);
    if (v.hash !== old.hash) throw new SigmaError('SGT_VOCAB', `${v.path} changed since it was learned (hash ${v.hash} ≠ ${old.hash}); relearn it with force`);
    if (v.size < opts.vocabSize && opts.hardLimit) {
      throw new SigmaError('SGT_VOCAB', `${v.path} has ${v.size} tokens, fewer than data.wmt.vocabSize ${opts.vocabSize} (learned with a soft limit); lower vocabSize, or relearn it with force`);
    }
    log(`vocabulary ${v.path} (${v.size} tokens${v.size < opts.vocabSize ? `, fewer than the ${opts.vocabSize} asked for: the training text yields no more` : ''}, sha256 ${v.hash.slice(0, 12)}) reused`);
    return { path: v.path, hash: v.hash, size: v.size, reused: true, counts: emptyCounts(), dir };
  }
  const counts = emptyCounts();
  log(`learning a joint ${opts.src}/${opts.tgt} vocabulary of ${opts.vocabSize} from ${corpus.train.length} training corpora`);
  const t = await trainVocab(trainingText(corpus.train, clean, counts), dir, {
    vocabSize: opts.vocabSize, normalization, maxSentences: opts.maxSentences ?? 0, hardLimit: opts.hardLimit ?? false,
  });
  if (t.size < t.requested) {
    log(`vocabulary ${t.path}: ${t.size} tokens, fewer than the ${t.requested} asked for (data.wmt.vocabSize): the training text yields no more merges (data.wmt.hardVocabLimit false)`);
  }
  const meta: VocabMeta = { options, sources, hash: t.hash };
  await writeFile(join(dir, 'vocab.meta.json'), JSON.stringify(meta, null, 1));
  log(`vocabulary ${t.path}: ${t.size} tokens (${t.alphabet} characters, ${t.merges} merges${t.extended ? `, ${t.extended} of them past the tokenizers trainer's ${TRAINER_LIMIT} tokens` : ''}) from ${t.sentences} sentences, sha256 ${t.hash.slice(0, 12)}; cleaning ${formatCounts(counts)}`);
  return { path: t.path, hash: t.hash, size: t.size, reused: false, counts, dir };
}

export interface PreparedWmt {
  corpus: DiscoveredCorpus;
  vocab: Vocab;
  cacheDir: string;
  header: CacheHeader;
}

/**
 * Everything a translation task needs before its first step: the vocabulary (learned on first use) and the token
 * cache of train (cleaned), valid and test (uncleaned: scores cover every segment). Splits: "train",
 * "valid-<set>", "test-<set>". The raw dev/test text for BLEU comes from readPairs(corpus.valid[i].source).
 */
export async function prepareWmt(opts: TrainVocabularyOptions & { threads?: number }): Promise<PreparedWmt> {
  const log = opts.log ?? (() => {});
  const v = await trainVocabulary(opts);
  const vocab = await loadVocab(v.path);
  const corpus = await discoverCorpus({ root: opts.root, src: opts.src, tgt: opts.tgt, valid: opts.valid ?? [], test: opts.test ?? [], ...(opts.trainCorpora ? { trainCorpora: opts.trainCorpora } : {}) });
  const cacheDir = cacheDirOf(v.dir, vocab.hash);
  const header = await buildCache({
    dir: cacheDir,
    vocab: v.path,
    ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
    log,
    splits: [
      { name: 'train', sources: corpus.train, clean: resolveCleanOptions(opts.clean) },
      ...corpus.valid.map((s) => ({ name: `valid-${s.name}`, sources: [s.source], clean: { ...NO_CLEAN } })),
      ...corpus.test.map((s) => ({ name: `test-${s.name}`, sources: [s.source], clean: { ...NO_CLEAN } })),
    ],
  });
  for (const [name, s] of Object.entries(header.splits)) log(`${name}: ${s.pairs} pairs, ${s.srcTokens}+${s.tgtTokens} tokens; ${formatCounts(s.counts)}`);
  return { corpus, vocab, cacheDir, header };
}
