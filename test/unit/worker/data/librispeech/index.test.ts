// Tests for the LibriSpeech index on a corpus synthesised here with espeak-ng and sox: zero skips on a clean tree and
// every file decodes to its indexed duration; both root forms; every skip reason counted and logged with its path; a
// non-16 kHz file is an error naming it; the cache is reused, rebuilt per changed chapter, and threads agree with
// the calling thread.

import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SigmaError } from '../../../../../shared/errors.js';
import { FlacReader } from '../../../../../worker/data/audio/flac.js';
import { computeFeatures, featureFrames } from '../../../../../worker/data/audio/features.js';
import { buildLibriIndex, type IndexLogger, type LibriIndex } from '../../../../../worker/data/librispeech/index.js';
import { HELDOUT_VOICES, SYNTH_VOCABULARY, TRAIN_VOICES, synthesizeCorpus } from '../../../../../worker/data/librispeech/synth.js';
import { loadUtterance } from '../../../../../worker/data/librispeech/utterance.js';
import { AudioPool, InlineAudioLoader, type AudioJob } from '../../../../../worker/data/librispeech/audio_pool.js';
import { SPEC_AUGMENT_RECIPE, specAugmentSeed } from '../../../../../worker/data/audio/specaugment.js';

const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'sgt-libri-'));
after(() => fs.rm(tmp, { recursive: true, force: true }));
const corpus = path.join(tmp, 'corpus');
const cacheDir = path.join(tmp, 'cache');
const SUBSETS = [
  { name: 'train-x', speakers: 2, chaptersPerSpeaker: 1, utterancesPerChapter: 3 },
  { name: 'dev-x', speakers: 1, chaptersPerSpeaker: 1, utterancesPerChapter: 3, heldOut: true },
];

class Capture implements IndexLogger {
  readonly warnings: { obj: Record<string, unknown>; msg: string }[] = [];
  warn(obj: object, msg: string): void {
    this.warnings.push({ obj: obj as Record<string, unknown>, msg });
  }
  info(): void {}
}

const dataError = (needle: string) => (e: unknown): boolean => {
  assert.ok(e instanceof SigmaError, String(e));
  assert.equal(e.code, 'SGT_DATA_INVALID');
  assert.ok(e.message.includes(needle), `"${e.message}" should name ${needle}`);
  return true;
};

let clean: LibriIndex;
before(async () => {
  const r = await synthesizeCorpus({ out: corpus, seed: 3, subsets: SUBSETS, concurrency: 4 });
  assert.equal(r.utterances, 9);
  clean = await buildLibriIndex({ root: corpus, subsets: ['train-x', 'dev-x'], threads: 2, cacheDir });
});

describe('synthesised corpus', () => {
  it('indexes with zero skips; every file decodes as flac -d does, to its indexed duration; transcripts use the closed vocabulary', async () => {
    assert.equal(clean.dir, path.join(corpus, 'LibriSpeech'));
    assert.deepEqual(clean.subsets.map((s) => [s.name, s.utterances.length, s.skipped.length]), [['train-x', 6, 0], ['dev-x', 3, 0]]);
    assert.ok(Object.values(clean.counts).every((n) => n === 0));
    const reader = new FlacReader();
    try {
      for (const u of clean.subsets.flatMap((s) => s.utterances)) {
        assert.match(u.id, new RegExp(`^${u.speaker}-${u.chapter}-\\d{4}$`));
        assert.ok(u.transcript.split(' ').every((w) => SYNTH_VOCABULARY.includes(w)), u.transcript);
        const a = await reader.decode(new Uint8Array(await fs.readFile(u.path)));
        assert.equal(a.samples.length, u.samples, u.path);
        const raw = execFileSync('flac', ['-d', '-s', '-c', '--force-raw-format', '--endian=little', '--sign=signed', u.path]);
        assert.ok(Buffer.from(a.samples.buffer, a.samples.byteOffset, a.samples.byteLength).equals(raw), `${u.path}: samples differ from flac -d`);
        assert.ok(u.samples > 0.5 * 16000, `${u.id} is ${u.samples} samples`);
        const f = computeFeatures(a.samples, { kind: 'logmel' });
        assert.equal(f.frames, featureFrames(u.samples, 'logmel'));
        assert.ok(f.data.every(Number.isFinite));
      }
    } finally {
      reader.close();
    }
    // The transcript file is the source of truth: compare with it directly.
    const u0 = clean.subsets[0]!.utterances[0]!;
    const trans = await fs.readFile(path.join(path.dirname(u0.path), `${u0.speaker}-${u0.chapter}.trans.txt`), 'utf8');
    assert.ok(trans.split('\n').includes(`${u0.id} ${u0.transcript}`));
  });

  it('is deterministic from the seed (same transcripts and audio bytes)', async () => {
    const again = path.join(tmp, 'again');
    await synthesizeCorpus({ out: again, seed: 3, subsets: SUBSETS, concurrency: 4 });
    const idx = await buildLibriIndex({ root: again, subsets: ['train-x', 'dev-x'], threads: 0, cacheDir: null });
    const a = clean.subsets.flatMap((s) => s.utterances);
    const b = idx.subsets.flatMap((s) => s.utterances);
    assert.deepEqual(b.map((u) => [u.id, u.transcript, u.samples]), a.map((u) => [u.id, u.transcript, u.samples]));
    for (let i = 0; i < a.length; i++) assert.ok((await fs.readFile(a[i]!.path)).equals(await fs.readFile(b[i]!.path)), a[i]!.id);
  });

  it('accepts root = the LibriSpeech folder itself; a wrong root names the paths tried', async () => {
    const idx = await buildLibriIndex({ root: path.join(corpus, 'LibriSpeech'), subsets: ['dev-x'], threads: 0, cacheDir: null });
    assert.equal(idx.subsets[0]!.utterances.length, 3);
    await assert.rejects(buildLibriIndex({ root: corpus, subsets: ['dev-clean'], threads: 0, cacheDir: null }), dataError('dev-clean'));
    await assert.rejects(buildLibriIndex({ root: corpus, subsets: ['dev-clean'], threads: 0, cacheDir: null }), dataError('train-x'));
    await assert.rejects(buildLibriIndex({ root: corpus, subsets: ['dev-x', 'dev-x'], threads: 0, cacheDir: null }), dataError('twice'));
  });
});

describe('loadUtterance', () => {
  it('gives normalised features, masked on request, and a skip reason for a changed or broken file', async () => {
    const reader = new FlacReader();
    try {
      const u = clean.subsets[1]!.utterances[0]!;
      const plain = await loadUtterance(reader, u.path, u.samples, { features: { kind: 'kaldi-fbank' } });
      assert.ok(plain.ok);
      assert.equal(plain.features.frames, featureFrames(u.samples, 'kaldi-fbank'));
      assert.deepEqual(plain.masks, []);
      const seed = specAugmentSeed(1, 0, 0);
      const aug = await loadUtterance(reader, u.path, u.samples, { features: { kind: 'kaldi-fbank' }, specAugment: SPEC_AUGMENT_RECIPE }, seed);
      assert.ok(aug.ok);
      assert.equal(aug.masks.length, 12);
      const zeros = aug.features.data.filter((v) => v === 0).length;
      assert.ok(zeros > 0 && zeros < aug.features.data.length);
      const changed = await loadUtterance(reader, u.path, u.samples + 1, { features: { kind: 'logmel' } });
      assert.ok(!changed.ok && changed.reason === 'truncated_flac' && changed.message.includes(u.path));
      const gone = await loadUtterance(reader, path.join(tmp, 'nope.flac'), 1, { features: { kind: 'logmel' } });
      assert.ok(!gone.ok && gone.reason === 'unreadable_flac');
    } finally {
      reader.close();
    }
  });
});

describe('synthesizer vocabulary', () => {
  it('draws phrases from a given vocabulary and word range; a word that is not upper-case letters is an error naming it', async () => {
    const out = path.join(tmp, 'vocab');
    await synthesizeCorpus({ out, seed: 2, vocabulary: ['NORTH', "CAN'T"], words: [3, 3], subsets: [{ name: 'v', speakers: 1, chaptersPerSpeaker: 1, utterancesPerChapter: 2 }] });
    const [spk] = await fs.readdir(path.join(out, 'LibriSpeech', 'v'));
    const [ch] = await fs.readdir(path.join(out, 'LibriSpeech', 'v', spk!));
    const lines = (await fs.readFile(path.join(out, 'LibriSpeech', 'v', spk!, ch!, `${spk}-${ch}.trans.txt`), 'utf8')).trim().split('\n');
    assert.equal(lines.length, 2);
    for (const l of lines) {
      const words = l.split(' ').slice(1);
      assert.equal(words.length, 3, l);
      assert.ok(words.every((w) => w === 'NORTH' || w === "CAN'T"), l);
    }
    await assert.rejects(synthesizeCorpus({ out, vocabulary: ['north'] }), /vocabulary word "north"/);
    await assert.rejects(synthesizeCorpus({ out, vocabulary: [] }), /vocabulary is empty/);
  });
});

describe('synthesizer voices', () => {
  it('held-out voices are unheard in training: each has an accent or a variant that no training voice has', () => {
    const split = (v: string) => [v.split('+')[0]!, v.split('+')[1] ?? ''] as const;
    const accents = new Set(TRAIN_VOICES.map((v) => split(v)[0]));
    const variants = new Set(TRAIN_VOICES.map((v) => split(v)[1]));
    assert.ok(TRAIN_VOICES.length >= 60 && new Set(TRAIN_VOICES).size === TRAIN_VOICES.length);
    for (const v of HELDOUT_VOICES) {
      const [a, x] = split(v);
      assert.ok(!accents.has(a) || !variants.has(x), `${v} is a training accent with a training variant`);
    }
  });

  it('every accent and variant is one espeak-ng has (it falls back to its default voice for an unknown one, silently)', () => {
    // `--voices=variant` lists variant files as "!v/<name>" in its fifth column; `--voices=en` lists English accents.
    const listed = (arg: string, col: number) => new Set(execFileSync('espeak-ng', [arg], { encoding: 'utf8' }).trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/)[col]!));
    const files = listed('--voices=variant', 4);
    const languages = listed('--voices=en', 1);
    for (const v of [...TRAIN_VOICES, ...HELDOUT_VOICES]) {
      const [accent, variant] = v.split('+');
      assert.ok(languages.has(accent!), `${v}: espeak-ng has no accent ${accent}`);
      if (variant !== undefined) assert.ok(files.has(`!v/${variant}`), `${v}: espeak-ng has no variant ${variant}`);
    }
  });
});

describe('AudioPool (features in data threads, issue 13)', () => {
  it('gives bit for bit the features and masks of the calling thread, in job order, with a bad file skipped in place', async () => {
    const utts = clean.subsets.flatMap((s) => s.utterances);
    const jobs: AudioJob[] = utts.map((u, i) => ({ path: u.path, samples: u.samples, seed: specAugmentSeed(5, 1, i) }));
    jobs.splice(4, 0, { path: path.join(tmp, 'missing.flac'), samples: 100, seed: 0 });
    const o = { features: { kind: 'logmel' as const }, specAugment: SPEC_AUGMENT_RECIPE };
    const inline = new InlineAudioLoader();
    const pool = new AudioPool({ threads: 2, chunk: 3 });
    try {
      // Two batches at once through the pool: chunks of both interleave over the threads.
      const [want, got, got2] = await Promise.all([inline.load(jobs, o), pool.load(jobs, o), pool.load(jobs.slice(0, 3), { features: { kind: 'kaldi-fbank' } })]);
      assert.equal(got.length, jobs.length);
      got.forEach((g, k) => {
        const w = want[k]!;
        assert.equal(g.ok, w.ok, jobs[k]!.path);
        if (!g.ok || !w.ok) {
          assert.ok(!g.ok && g.reason === 'unreadable_flac' && g.message.includes('missing.flac'), JSON.stringify(g));
          return;
        }
        assert.equal(g.features.frames, w.features.frames);
        assert.deepEqual(g.masks, w.masks);
        assert.ok(g.masks.length > 0);
        assert.ok(Buffer.from(g.features.data.buffer, g.features.data.byteOffset, g.features.data.byteLength)
          .equals(Buffer.from(w.features.data.buffer, w.features.data.byteOffset, w.features.data.byteLength)), `utterance ${k}: thread features differ`);
      });
      const want2 = await inline.load(jobs.slice(0, 3), { features: { kind: 'kaldi-fbank' } });
      got2.forEach((g, k) => {
        const w = want2[k]!;
        assert.ok(g.ok && w.ok);
        assert.ok(Buffer.from(g.features.data.buffer, g.features.data.byteOffset, g.features.data.byteLength)
          .equals(Buffer.from(w.features.data.buffer, w.features.data.byteOffset, w.features.data.byteLength)), `fbank ${k}`);
      });
    } finally {
      await pool.close();
      await inline.close();
    }
    await assert.rejects(pool.load(jobs, o), /after close/);
  });
});

describe('skips', () => {
  it('counts and logs every broken utterance with its path, and keeps the good ones', async () => {
    const lib = path.join(corpus, 'LibriSpeech');
    const src = clean.subsets[0]!.utterances[0]!; // speaker/chapter of train-x's first chapter
    const dst = path.join(lib, 'broken', src.speaker, src.chapter);
    await fs.cp(path.dirname(src.path), dst, { recursive: true });
    const trans = path.join(dst, `${src.speaker}-${src.chapter}.trans.txt`);
    const lines = (await fs.readFile(trans, 'utf8')).trim().split('\n');
    const ids = lines.map((l) => l.split(' ')[0]!);
    const p = `${src.speaker}-${src.chapter}`;
    // ids[0]: its line is dropped → missing_transcript; ids[1]: truncated; ids[2]: kept.
    const full = await fs.readFile(path.join(dst, `${ids[1]}.flac`));
    await fs.writeFile(path.join(dst, `${ids[1]}.flac`), full.subarray(0, Math.floor(full.length * 0.7)));
    await fs.writeFile(path.join(dst, `${p}-0100.flac`), 'not a flac file at all, just text long enough to be read'); // unreadable
    await fs.copyFile(path.join(dst, `${ids[2]}.flac`), path.join(dst, `${p}-0101.flac`)); // bad line (digit)
    await fs.copyFile(path.join(dst, `${ids[2]}.flac`), path.join(dst, `${p}-0102.flac`)); // empty transcript
    await fs.copyFile(path.join(dst, `${ids[2]}.flac`), path.join(dst, `999-1-0001.flac`)); // another chapter's name
    await fs.writeFile(path.join(dst, 'notes.txt'), 'stray');
    await fs.writeFile(
      trans,
      [lines[1], lines[2], `${p}-0100 YES`, `${p}-0101 GO 42`, `${p}-0102`, `${p}-0200 NO AUDIO HERE`, `${p}-0201 it's lower case`].join('\n') + '\n',
    );
    // A second chapter without a transcript file.
    const noTrans = path.join(lib, 'broken', src.speaker, '77');
    await fs.mkdir(noTrans);
    await fs.copyFile(src.path, path.join(noTrans, `${src.speaker}-77-0000.flac`));
    // ... and one whose lower-case transcript is accepted (upper-cased).
    await fs.copyFile(src.path, path.join(dst, `${p}-0201.flac`));

    const log = new Capture();
    const idx = await buildLibriIndex({ root: corpus, subsets: ['broken'], threads: 2, cacheDir, logger: log });
    const s = idx.subsets[0]!;
    assert.deepEqual(s.utterances.map((u) => u.id), [ids[2], `${p}-0201`]);
    assert.equal(s.utterances[1]!.transcript, "IT'S LOWER CASE");
    const want = { missing_transcript: 2, truncated_flac: 1, unreadable_flac: 1, bad_transcript_line: 1, empty_transcript: 1, bad_file_name: 1, unexpected_entry: 1, missing_audio: 1 };
    for (const [reason, n] of Object.entries(s.counts)) assert.equal(n, want[reason as keyof typeof want] ?? 0, `${reason}: ${n}`);
    assert.deepEqual(idx.counts, s.counts);
    assert.equal(log.warnings.length, s.skipped.length);
    const logged = (reason: string, file: string): void => {
      assert.ok(log.warnings.some((w) => w.obj.reason === reason && String(w.obj.path).includes(file)), `no ${reason} warning naming ${file}`);
    };
    logged('missing_transcript', `${ids[0]}.flac`);
    logged('missing_transcript', `${src.speaker}-77-0000.flac`);
    logged('truncated_flac', `${ids[1]}.flac`);
    logged('unreadable_flac', `${p}-0100.flac`);
    logged('bad_transcript_line', `${p}.trans.txt:4`);
    logged('empty_transcript', `${p}.trans.txt:5`);
    logged('missing_audio', `${p}.trans.txt`);
    logged('bad_file_name', '999-1-0001.flac');
    logged('unexpected_entry', 'notes.txt');
    assert.ok(log.warnings.find((w) => w.obj.reason === 'bad_transcript_line')!.msg.includes('"4"'));
  });

  it('a FLAC that is not 16 kHz mono 16-bit is an error naming the file', async () => {
    const dir = path.join(corpus, 'LibriSpeech', 'eight-k', '1', '2');
    await fs.mkdir(dir, { recursive: true });
    const file = path.join(dir, '1-2-0000.flac');
    execFileSync('sox', ['-q', clean.subsets[1]!.utterances[0]!.path, '-r', '8000', file]);
    await fs.writeFile(path.join(dir, '1-2.trans.txt'), '1-2-0000 YES\n');
    await assert.rejects(buildLibriIndex({ root: corpus, subsets: ['eight-k'], threads: 1, cacheDir: null }), dataError(file));
    await assert.rejects(buildLibriIndex({ root: corpus, subsets: ['eight-k'], threads: 0, cacheDir: null }), dataError('8000 Hz'));
  });
});

describe('cache', () => {
  it('is reused while nothing changed, rescans only a changed chapter, and agrees with a fresh scan', async () => {
    const again = await buildLibriIndex({ root: corpus, subsets: ['train-x', 'dev-x'], threads: 2, cacheDir });
    assert.deepEqual(again.subsets.map((s) => s.rescanned), [0, 0]);
    assert.deepEqual(again.subsets.map((s) => s.utterances), clean.subsets.map((s) => s.utterances));
    const files = (await fs.readdir(cacheDir)).filter((f) => f.endsWith('.json'));
    assert.ok(files.some((f) => f.startsWith('train-x-')) && files.some((f) => f.startsWith('dev-x-')), files.join(' '));
    const cached = JSON.parse(await fs.readFile(path.join(cacheDir, files.find((f) => f.startsWith('train-x-'))!), 'utf8')) as { files: number; subsetDir: string };
    assert.equal(cached.files, 6 + 2); // 6 FLACs + 2 transcripts: what it was built from
    // Change one chapter: drop an utterance (its FLAC and its line).
    const u = clean.subsets[0]!.utterances[0]!;
    await fs.rm(u.path);
    const trans = path.join(path.dirname(u.path), `${u.speaker}-${u.chapter}.trans.txt`);
    const kept = (await fs.readFile(trans, 'utf8')).split('\n').filter((l) => !l.startsWith(u.id));
    await fs.writeFile(trans, kept.join('\n'));
    const changed = await buildLibriIndex({ root: corpus, subsets: ['train-x'], threads: 2, cacheDir });
    assert.equal(changed.subsets[0]!.rescanned, 1);
    assert.deepEqual(changed.subsets[0]!.utterances.map((x) => x.id), clean.subsets[0]!.utterances.slice(1).map((x) => x.id));
    const fresh = await buildLibriIndex({ root: corpus, subsets: ['train-x'], threads: 0, cacheDir: null });
    assert.deepEqual(fresh.subsets[0]!.utterances, changed.subsets[0]!.utterances);
    // Another too_short threshold invalidates the cache: every chapter is rescanned, and the long ones go.
    const lengths = changed.subsets[0]!.utterances.map((x) => x.samples).sort((a, b) => a - b);
    const minSamples = lengths[2]!; // the two shortest (distinct lengths) fall below it
    const strict = await buildLibriIndex({ root: corpus, subsets: ['train-x'], threads: 2, cacheDir, minSamples });
    assert.equal(strict.subsets[0]!.rescanned, 2);
    assert.equal(strict.subsets[0]!.counts.too_short, lengths.filter((n) => n < minSamples).length);
    assert.ok(strict.subsets[0]!.counts.too_short >= 1);
    assert.ok(strict.subsets[0]!.utterances.every((x) => x.samples >= minSamples));
  });

  it('a subset where nothing is usable is an error, not an empty index', async () => {
    await assert.rejects(buildLibriIndex({ root: corpus, subsets: ['dev-x'], threads: 0, cacheDir: null, minSamples: 10 * 16000 }), dataError('no usable utterance'));
  });
});
