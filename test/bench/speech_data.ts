// bench:speech-data — the speech data path on the synthesised demo corpus: corpus generation time, LibriSpeech index
// build (worker threads, cold and cached), and decode + features throughput in seconds of audio per second on one
// thread, for kaldi-fbank and logmel (normalised, with SpecAugment). Prints one JSON document.
// Usage: npm run bench:speech-data [-- --root DIR (an existing LibriSpeech tree; else one is synthesised) --threads 2]

import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { FlacReader } from '../../worker/data/audio/flac.js';
import { computeFeatures, type FeatureKind } from '../../worker/data/audio/features.js';
import { SPEC_AUGMENT_RECIPE, specAugment } from '../../worker/data/audio/specaugment.js';
import { buildLibriIndex } from '../../worker/data/librispeech/index.js';
import { DEMO_SUBSETS, synthesizeCorpus } from '../../worker/data/librispeech/synth.js';

const arg = (k: string): string | undefined => {
  const i = process.argv.indexOf(`--${k}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};

async function main(): Promise<void> {
  const threads = Number(arg('threads') ?? 2);
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'sgt-speech-bench-'));
  try {
    let root = arg('root');
    let synth = null;
    if (!root) {
      synth = await synthesizeCorpus({ out: tmp, seed: 0 });
      root = tmp;
    }
    const subsets = (arg('subsets') ?? DEMO_SUBSETS.map((s) => s.name).join(',')).split(',');
    const cacheDir = path.join(tmp, 'cache');
    const cold = await buildLibriIndex({ root, subsets, threads, cacheDir });
    const warm = await buildLibriIndex({ root, subsets, threads, cacheDir });
    const utts = cold.subsets.flatMap((s) => s.utterances);
    const audioSeconds = utts.reduce((s, u) => s + u.samples, 0) / 16000;

    const reader = new FlacReader();
    const bytes = await Promise.all(utts.map((u) => fs.readFile(u.path)));
    // Wall and CPU time of this thread's work: on a shared machine the CPU figure is the one that carries over.
    const cpu = (c: NodeJS.CpuUsage): number => (c.user + c.system) / 1e6;
    let t = performance.now();
    let c0 = process.cpuUsage();
    const pcm: Int16Array[] = [];
    for (const b of bytes) pcm.push((await reader.decode(new Uint8Array(b.buffer, b.byteOffset, b.byteLength))).samples);
    const decodeS = (performance.now() - t) / 1000;
    const decodeCpu = cpu(process.cpuUsage(c0));
    reader.close();
    const feats: Record<string, number> = {};
    const featsCpu: Record<string, number> = {};
    for (const kind of ['kaldi-fbank', 'logmel'] as FeatureKind[]) {
      t = performance.now();
      c0 = process.cpuUsage();
      pcm.forEach((s, i) => specAugment(computeFeatures(s, { kind }), SPEC_AUGMENT_RECIPE, i));
      feats[kind] = audioSeconds / ((performance.now() - t) / 1000);
      featsCpu[kind] = audioSeconds / cpu(process.cpuUsage(c0));
    }
    const out = {
      machine: { cores: os.availableParallelism(), loadavg1: os.loadavg()[0] },
      corpus: { utterances: utts.length, audioSeconds: +audioSeconds.toFixed(1), synthSeconds: synth ? +synth.seconds.toFixed(1) : null },
      index: { threads, coldSeconds: +cold.seconds.toFixed(2), cachedSeconds: +warm.seconds.toFixed(2), skipped: Object.values(cold.counts).reduce((a, b) => a + b, 0) },
      audioSecondsPerSecond: {
        decode: +(audioSeconds / decodeS).toFixed(0),
        kaldiFbankNormSpecAugment: +feats['kaldi-fbank']!.toFixed(0),
        logmelNormSpecAugment: +feats['logmel']!.toFixed(0),
      },
      audioSecondsPerCpuSecond: {
        decode: +(audioSeconds / decodeCpu).toFixed(0),
        kaldiFbankNormSpecAugment: +featsCpu['kaldi-fbank']!.toFixed(0),
        logmelNormSpecAugment: +featsCpu['logmel']!.toFixed(0),
      },
    };
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

await main();
