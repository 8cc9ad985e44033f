// Synthetic speech corpus in the LibriSpeech layout: short command phrases over a closed vocabulary, spoken by
// espeak-ng voices at several speeds and pitches, converted by sox to 16 kHz mono 16-bit FLAC. Deterministic from a
// seed; small enough that a CTC model learns it on 2 cores in minutes. Run: npm run data:speech-demo [-- --out DIR].

import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { SigmaError } from '../../../shared/errors.js';
import { parseStreamInfo } from '../audio/flac.js';
import { Rng, deriveSeed } from '../../rng.js';

/** The closed vocabulary: digits, directions and commands, three words with apostrophes. */
export const SYNTH_VOCABULARY: readonly string[] = [
  'ZERO', 'ONE', 'TWO', 'THREE', 'FOUR', 'FIVE', 'SIX', 'SEVEN', 'EIGHT', 'NINE',
  'YES', 'NO', 'UP', 'DOWN', 'LEFT', 'RIGHT', 'GO', 'STOP', 'ON', 'OFF', "DON'T", "LET'S", "IT'S",
];

/** A speaker: an espeak-ng voice with a voice variant, base speed (words/min) and pitch (0–99). */
export interface SynthSpeaker {
  voice: string;
  speed: number;
  pitch: number;
  /** Extra pause between words, in 10 ms units (espeak-ng -g). */
  gap: number;
}

/**
 * Voices: an espeak-ng accent with a voice variant (formants, pitch range, breathiness). Training speakers draw from
 * 6 accents × 13 variants; held-out speakers use an accent and variants that no training voice has (en-gb-x-gbclan;
 * m5, m8, f3), so dev/test hear voices unseen in training and the WER measures generalisation to new voices.
 */
const TRAIN_ACCENTS = ['en-us', 'en-gb', 'en-gb-scotland', 'en-gb-x-rp', 'en-029', 'en-us-nyc'];
const TRAIN_VARIANTS = ['', 'm1', 'm2', 'm3', 'm4', 'm6', 'm7', 'f1', 'f2', 'f4', 'f5', 'klatt', 'klatt3'];
export const TRAIN_VOICES: readonly string[] = TRAIN_ACCENTS.flatMap((a) => TRAIN_VARIANTS.map((v) => (v ? `${a}+${v}` : a)));
export const HELDOUT_VOICES: readonly string[] = [
  'en-gb-x-gbclan+m5', 'en-us+f3', 'en-gb+m8', 'en-gb-x-gbclan+f3', 'en-gb-scotland+m5', 'en-us-nyc+f3', 'en-029+m8', 'en-gb-x-gbclan',
];

export interface SynthSubset {
  name: string;
  speakers: number;
  chaptersPerSpeaker: number;
  utterancesPerChapter: number;
  /** Draw voices from the held-out list (for dev/test). */
  heldOut?: boolean;
}

/**
 * The demo corpus: 1560 training utterances (120 speakers, each voice of TRAIN_VOICES at least once, speed and pitch
 * drawn per utterance), 160 + 160 for dev/test from 8 held-out voices.
 */
export const DEMO_SUBSETS: readonly SynthSubset[] = [
  { name: 'train-demo', speakers: 120, chaptersPerSpeaker: 1, utterancesPerChapter: 13 },
  { name: 'dev-demo', speakers: 8, chaptersPerSpeaker: 1, utterancesPerChapter: 20, heldOut: true },
  { name: 'test-demo', speakers: 8, chaptersPerSpeaker: 1, utterancesPerChapter: 20, heldOut: true },
];

export interface SynthOptions {
  /** Folder to create LibriSpeech/ in. */
  out: string;
  seed?: number;
  subsets?: readonly SynthSubset[];
  /** Utterances synthesised at once (default 2 × cores). */
  concurrency?: number;
  /** Words per phrase, inclusive range (default [1, 4]). */
  words?: [number, number];
  /** The words phrases are drawn from (default SYNTH_VOCABULARY): letters and apostrophes, upper case. */
  vocabulary?: readonly string[];
}

export interface SynthReport {
  /** The LibriSpeech folder written. */
  dir: string;
  utterances: number;
  audioSeconds: number;
  seconds: number;
}

/**
 * Run `espeak-ng … --stdout TEXT | sox -t wav - … out.flac` through /bin/sh so the audio flows between the two tools
 * directly (text, voice and file go in as positional parameters, never into the script). Rejects with stderr.
 */
function speak(text: string, s: SynthSpeaker, file: string): Promise<void> {
  // sox -D: no dither, so the output is a pure function of the input; pad: 150 ms of silence at both ends.
  const script = 'espeak-ng -v "$1" -s "$2" -p "$3" -g "$6" --stdout "$4" | sox -q -t wav - -D -r 16000 -c 1 -b 16 "$5" pad 0.15 0.15';
  return new Promise((resolve, reject) => {
    const sh = spawn('/bin/sh', ['-c', `set -e; command -v espeak-ng >/dev/null || { echo "espeak-ng is not installed" >&2; exit 127; }; command -v sox >/dev/null || { echo "sox is not installed" >&2; exit 127; }; ${script}`, 'speak', s.voice, String(s.speed), String(s.pitch), text, file, String(s.gap)], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    sh.stderr.on('data', (d: Buffer) => (err += d.toString()));
    sh.on('error', (e) => reject(new SigmaError('SGT_DATA_INVALID', `cannot run /bin/sh: ${e.message}`)));
    sh.on('close', (c) => {
      if (c === 0) resolve();
      else if (c === 127) reject(new SigmaError('SGT_DATA_INVALID', `${err.trim()} (apt-get install -y espeak-ng sox flac)`));
      else reject(new SigmaError('SGT_DATA_INVALID', `synthesising "${text}" into ${file} failed (exit ${c}): ${err.trim()}`));
    });
  });
}

interface Job {
  text: string;
  speaker: SynthSpeaker;
  file: string;
}

/**
 * Write the corpus under `<out>/LibriSpeech/<subset>/<speaker>/<chapter>/` with `<speaker>-<chapter>.trans.txt`.
 * Speaker ids are unique over subsets; each utterance varies its speaker's speed, pitch and word gap. Returns counts
 * and the wall time.
 */
export async function synthesizeCorpus(o: SynthOptions): Promise<SynthReport> {
  const t0 = performance.now();
  const seed = o.seed ?? 0;
  const [wMin, wMax] = o.words ?? [1, 4];
  const vocabulary = o.vocabulary ?? SYNTH_VOCABULARY;
  if (vocabulary.length === 0) throw new SigmaError('SGT_DATA_INVALID', 'synthesizeCorpus: the vocabulary is empty');
  const bad = vocabulary.find((w) => !/^[A-Z']+$/.test(w));
  if (bad !== undefined) throw new SigmaError('SGT_DATA_INVALID', `synthesizeCorpus: vocabulary word ${JSON.stringify(bad)} is not upper-case letters and apostrophes`);
  const dir = path.join(path.resolve(o.out), 'LibriSpeech');
  const jobs: Job[] = [];
  let speakerId = 100;
  for (const sub of o.subsets ?? DEMO_SUBSETS) {
    const voices = sub.heldOut ? HELDOUT_VOICES : TRAIN_VOICES;
    // Consecutive speakers take consecutive voices from a seeded start, so a subset with ≥ voices.length speakers has each.
    const first = new Rng(deriveSeed(seed, speakerId)).int(voices.length);
    for (let k = 0; k < sub.speakers; k++) {
      const spk = String(speakerId++);
      const r = new Rng(deriveSeed(seed, Number(spk)));
      const base: SynthSpeaker = { voice: voices[(first + k) % voices.length]!, speed: 130 + r.int(50), pitch: 20 + r.int(60), gap: 0 };
      for (let c = 0; c < sub.chaptersPerSpeaker; c++) {
        const ch = String(1000 + Number(spk) * 10 + c);
        const chDir = path.join(dir, sub.name, spk, ch);
        await fs.mkdir(chDir, { recursive: true });
        const lines: string[] = [];
        for (let u = 0; u < sub.utterancesPerChapter; u++) {
          const id = `${spk}-${ch}-${String(u).padStart(4, '0')}`;
          const n = wMin + r.int(wMax - wMin + 1);
          const text = Array.from({ length: n }, () => vocabulary[r.int(vocabulary.length)]!).join(' ');
          lines.push(`${id} ${text}`);
          // Each utterance varies its speaker's speed (±20 words/min), pitch (±10) and word gap (0–30 ms).
          const speaker = { voice: base.voice, speed: base.speed + r.int(41) - 20, pitch: Math.max(0, Math.min(99, base.pitch + r.int(21) - 10)), gap: r.int(4) };
          jobs.push({ text, speaker, file: path.join(chDir, `${id}.flac`) });
        }
        await fs.writeFile(path.join(chDir, `${spk}-${ch}.trans.txt`), lines.join('\n') + '\n');
      }
    }
  }
  const concurrency = o.concurrency ?? 2 * os.availableParallelism();
  let next = 0;
  const run = async (): Promise<void> => {
    while (next < jobs.length) {
      const j = jobs[next++]!;
      // espeak-ng reads its text as words; lower case keeps it from spelling capitals letter by letter.
      await speak(j.text.toLowerCase(), j.speaker, j.file);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, jobs.length) }, run));
  const audioSeconds = await totalSeconds(jobs.map((j) => j.file));
  return { dir, utterances: jobs.length, audioSeconds, seconds: (performance.now() - t0) / 1000 };
}

/** Sum of durations from the files' STREAMINFO. */
async function totalSeconds(files: string[]): Promise<number> {
  let s = 0;
  for (const f of files) {
    const fh = await fs.open(f, 'r');
    try {
      const b = Buffer.alloc(64);
      await fh.read(b, 0, 64, 0);
      const info = parseStreamInfo(new Uint8Array(b.buffer, b.byteOffset, 64));
      s += info.totalSamples / info.sampleRate;
    } finally {
      await fh.close();
    }
  }
  return s;
}

/**
 * CLI: --out DIR (default data/speech-demo), --seed N, --if-missing (keep a corpus this CLI already wrote with the same
 * seed and subsets: its LibriSpeech/.synth.json says so).
 */
async function main(argv: string[]): Promise<void> {
  const arg = (k: string): string | undefined => {
    const i = argv.indexOf(k);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const out = arg('--out') ?? 'data/speech-demo';
  const seed = Number(arg('--seed') ?? 0);
  if (!Number.isSafeInteger(seed)) throw new SigmaError('SGT_CLI_USAGE', `--seed ${arg('--seed')} is not an integer`);
  const stamp = path.join(path.resolve(out), 'LibriSpeech', '.synth.json');
  const want = JSON.stringify({ seed, subsets: DEMO_SUBSETS, voices: { train: TRAIN_VOICES, heldOut: HELDOUT_VOICES } });
  if (argv.includes('--if-missing') && (await fs.readFile(stamp, 'utf8').catch(() => '')) === want) {
    process.stdout.write(`${path.dirname(stamp)} holds the demo corpus (seed ${seed}) already\n`);
    return;
  }
  const r = await synthesizeCorpus({ out, seed });
  await fs.writeFile(stamp, want);
  process.stdout.write(
    `wrote ${r.utterances} utterances (${(r.audioSeconds / 60).toFixed(1)} min of audio) to ${r.dir} in ${r.seconds.toFixed(1)} s\n` +
      `subsets: ${DEMO_SUBSETS.map((s) => s.name).join(', ')}\n`,
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(1);
  });
}
