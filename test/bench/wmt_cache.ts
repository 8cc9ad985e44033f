// bench:wmt-cache — indexing throughput (pairs/s) of the WMT token cache: read aligned text, clean, BPE-encode,
// write binary token arrays, on 0 (this thread), 1, 2 and N worker threads, over a generated corpus (Zipf-distributed
// pseudo-words, 5–60 words a sentence). Also times vocabulary training. Prints one JSON document; on a shared
// machine read pairsPerCpuSecond (CPU time of all the process's threads) next to the wall-clock rate.
// Usage: npm run bench:wmt-cache [-- --pairs 200000 --vocab 8000]

import { performance } from 'node:perf_hooks';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { Rng } from '../../worker/rng.js';
import { buildCache } from '../../worker/data/wmt/cache.js';
import { DEFAULT_CLEAN } from '../../worker/data/wmt/clean.js';
import { readPairs } from '../../worker/data/wmt/formats.js';
import { trainVocab } from '../../worker/data/wmt/vocab.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer, got ${process.argv[i + 1]}`);
  return v;
}

function lexicon(r: Rng, n: number, syllables: string[]): string[] {
  const words = new Set<string>();
  while (words.size < n) {
    let w = '';
    const k = 1 + r.int(4);
    for (let i = 0; i < k; i++) w += syllables[r.int(syllables.length)];
    words.add(w);
  }
  return [...words];
}

async function writeCorpus(dir: string, pairs: number): Promise<void> {
  const r = new Rng(12);
  const en = lexicon(r, 20000, ['ba', 'con', 'de', 'ex', 'fi', 'gra', 'ho', 'in', 'ju', 'ka', 'le', 'mo', 'nu', 'op', 'pre', 'qu', 'ri', 'st', 'th', 'un', 'vo', 'wh', 'y']);
  const de = lexicon(r, 20000, ['an', 'be', 'ch', 'dä', 'ei', 'fü', 'ge', 'ha', 'ich', 'ja', 'ke', 'lö', 'mu', 'nie', 'ob', 'pf', 'qu', 'ra', 'sch', 'tz', 'ü', 'ver', 'wß', 'zu']);
  const zipf = (n: number) => Math.min(n - 1, Math.floor(Math.exp(r.float() * Math.log(n)) - 1));
  const a = createWriteStream(path.join(dir, 'synth.de-en.en'));
  const b = createWriteStream(path.join(dir, 'synth.de-en.de'));
  for (let i = 0; i < pairs; i++) {
    const n = 5 + r.int(56);
    const m = Math.max(1, Math.round(n * (0.8 + 0.4 * r.float())));
    const s = Array.from({ length: n }, () => en[zipf(en.length)]).join(' ');
    const t = Array.from({ length: m }, () => de[zipf(de.length)]).join(' ');
    if (!a.write(s + ' .\n')) await once(a, 'drain');
    if (!b.write(t + ' .\n')) await once(b, 'drain');
  }
  a.end();
  b.end();
  await Promise.all([once(a, 'finish'), once(b, 'finish')]);
}

async function main(): Promise<void> {
  const pairs = arg('pairs', 200000);
  const vocabSize = arg('vocab', 8000);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-wmt-'));
  try {
    await writeCorpus(dir, pairs);
    const source = { kind: 'aligned' as const, srcFile: path.join(dir, 'synth.de-en.en'), tgtFile: path.join(dir, 'synth.de-en.de') };
    let t0 = performance.now();
    async function* sentences() {
      for await (const p of readPairs(source)) {
        yield p.src;
        yield p.tgt;
      }
    }
    const v = await trainVocab(sentences(), path.join(dir, 'vocab'), { vocabSize });
    const trainSeconds = (performance.now() - t0) / 1000;
    const runs: Record<string, unknown>[] = [];
    for (const threads of [...new Set([0, 1, 2, os.availableParallelism()])]) {
      t0 = performance.now();
      const cpu0 = process.cpuUsage();
      const h = await buildCache({ dir: path.join(dir, `cache${threads}`), vocab: v.path, threads, splits: [{ name: 'train', sources: [source], clean: { ...DEFAULT_CLEAN } }] });
      const s = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      const cpuSeconds = (cpu.user + cpu.system) / 1e6; // all threads of this process, native encoder threads included
      runs.push({ threads, seconds: +s.toFixed(2), pairsPerSecond: Math.round(h.splits.train!.counts.read / s), cpuSeconds: +cpuSeconds.toFixed(2), pairsPerCpuSecond: Math.round(h.splits.train!.counts.read / cpuSeconds), loadAverage: +os.loadavg()[0]!.toFixed(1), kept: h.splits.train!.pairs, srcTokens: h.splits.train!.srcTokens, rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20) });
    }
    console.log(JSON.stringify({ pairs, cores: os.availableParallelism(), vocab: { size: v.size, merges: v.merges, trainSeconds: +trainSeconds.toFixed(2) }, runs }, null, 1));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
