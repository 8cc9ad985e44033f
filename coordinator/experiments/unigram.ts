// The unigram baseline of a translation run: the per-token NLL of a model that predicts every target token from its
// training frequency alone (no source, no context), i.e. the entropy of the target-token distribution, </s> included.
import { readdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { SigmaError } from '../../shared/errors.js';
import { openCacheSplit } from '../../worker/data/wmt/cache.js';
import { cacheDirOf, vocabDirOf, workDirCandidates } from '../../worker/data/wmt/vocab_cli.js';

export interface UnigramBaseline {
  /** Token cache it was counted from (its "train" split). */
  cacheDir: string;
  pairs: number;
  /** Target tokens counted, one </s> per pair included (the decoder predicts it like any token). */
  tokens: number;
  /** Distinct target token ids seen. */
  types: number;
  /** −Σ p log p over the target tokens, nats: the NLL per token of the best context-free predictor. */
  entropy: number;
}

/** Shannon entropy (nats) of the distribution proportional to `counts` (zeros allowed, not all zero). Pure. */
export function entropyOfCounts(counts: Iterable<number>): number {
  const xs = [...counts];
  const n = xs.reduce((a, b) => a + b, 0);
  if (!(n > 0) || xs.some((c) => !(c >= 0))) throw new RangeError(`counts must be non-negative with a positive sum, got ${xs.slice(0, 8).join(', ')}`);
  let h = 0;
  for (const c of xs) if (c > 0) h -= (c / n) * Math.log(c / n);
  return h;
}

/** Counts the target side of a cache's "train" split (plus one `eos` per pair) and returns its entropy. */
export async function targetUnigram(cacheDir: string, eos = 2): Promise<UnigramBaseline> {
  const split = await openCacheSplit(cacheDir, 'train');
  try {
    const counts = new Map<number, number>();
    let tokens = 0;
    for (let i = 0; i < split.pairs; i++) {
      const t = await split.tgt.get(i);
      for (const id of t) counts.set(id, (counts.get(id) ?? 0) + 1);
      counts.set(eos, (counts.get(eos) ?? 0) + 1);
      tokens += t.length + 1;
    }
    return { cacheDir, pairs: split.pairs, tokens, types: counts.size, entropy: entropyOfCounts(counts.values()) };
  } finally {
    await Promise.all([split.src.close(), split.tgt.close()]);
  }
}

/**
 * The token cache a WMT run with these options built (the layout is worker/data/wmt/vocab_cli.ts's: the first work
 * dir candidate holding the vocabulary, its cache named by the vocabulary's hash from vocab.meta.json).
 */
export async function runCacheDir(o: { root: string; workDir?: string; src: string; tgt: string; vocabSize: number }): Promise<string> {
  const tried: string[] = [];
  for (const work of workDirCandidates(o.root, o.workDir)) {
    const dir = vocabDirOf(work, o);
    let hash: string;
    try {
      hash = (JSON.parse(await readFile(join(dir, 'vocab.meta.json'), 'utf8')) as { hash: string }).hash;
    } catch (e) {
      tried.push(`${dir} (vocab.meta.json unreadable: ${(e as Error).message})`);
      continue;
    }
    const want = cacheDirOf(dir, hash);
    const have = await readdir(dir);
    if (!have.includes(basename(want))) throw new SigmaError('SGT_DATA_INVALID', `${dir} has no token cache ${basename(want)} for its vocabulary (has ${have.join(', ')}); run a job on this data first`);
    return want;
  }
  throw new SigmaError('SGT_DATA_INVALID', `no learned vocabulary for ${o.src}-${o.tgt} ${o.vocabSize}: tried ${tried.join('; ')}; run a job on this data first`);
}
