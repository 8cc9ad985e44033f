// Speech recognition end to end (issue 13): a corpus in the LibriSpeech layout, synthesized once with other subset
// names than the demo's (training voices; the evaluation subsets speak in held-out voices), trains through
// `sigmatrain run --workers 2` with the demo config and command-line subsets; the summary names wer_<subset> for every
// evaluation subset, greedy and beam, and the CER falls well below chance; `sigmatrain transcribe` prints one transcript
// per file from the run's checkpoint. Needs espeak-ng and sox (.ci/run installs them).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { synthesizeCorpus } from '../../worker/data/librispeech/synth.js';
import { spawnSync } from 'node:child_process';
import { CLI, sigmatrain, tempDir, coordinatorAddress } from './helpers/job.js';

const CONFIG = fileURLToPath(new URL('../../../configs/librispeech-demo.yaml', import.meta.url));
const root = tempDir('asr-corpus');
const runDir = tempDir('asr-run');
const EVAL = ['held-dev-a', 'held-dev-b'];

// Training speakers cycle through the synthesizer's training voices; the two evaluation subsets speak in held-out
// voices (accent and variants no training voice has) and are the only thing the WER is measured on.
const TRAIN_UTTERANCES = 52 * 8;
before(async () => {
  await synthesizeCorpus({
    out: root, seed: 7,
    subsets: [
      { name: 'held-train', speakers: 52, chaptersPerSpeaker: 1, utterancesPerChapter: 8 },
      { name: 'held-dev-a', speakers: 2, chaptersPerSpeaker: 1, utterancesPerChapter: 10, heldOut: true },
      { name: 'held-dev-b', speakers: 2, chaptersPerSpeaker: 1, utterancesPerChapter: 10, heldOut: true },
    ],
  });
});

interface Summary { task: string; headline: string; steps: number; totalSteps?: number; workerFailures?: number; eval: Record<string, number> }

// What the short run (4 epochs, 380 steps of 2 × 4 s of audio, constant lr 3e-3, the config's blank bias, sinusoidal
// positions and frequency warp ±20 %) reaches on held-out voices: CER 0.51 / 0.39, greedy WER 0.96 / 0.88, beam WER
// 0.92 / 0.87 on held-dev-a / held-dev-b (82 s for the whole file on 2 cores at load ≈ 3, 61 s of it training). With
// the previous config (CAPE, SpecAugment masks, no warp): CER 0.55 / 0.46; before that (244 steps of 2 × 6 s, no blank
// bias) 0.60 / 0.57. The demo's own cosine decay from 4e-3 ends the learning too early in a run this short, so the
// schedule is overridden. The budget of this test does not reach a low WER (the demo goes lower with 1560 utterances
// and 12 epochs: configs/librispeech-demo.yaml); the bounds say that letters are learnt on voices never heard in
// training (an untrained or blank-only model has CER 1.0) and that neither decoder inserts more words than the
// references hold.
const CER_BOUND = 0.6;
const WER_BOUND = 1.0;
// The config's character 6-gram LM of the training transcripts (weight 1, bonus 1.5), fused into the beam: the same
// logits give word error rates 0.37 / 0.28 against greedy 0.96 / 0.88 (the phrases' 23 words are the training text's).
const LM_WER_BOUND = 0.6;
/** Short steps (2 × 4 s of audio) give many updates in little time: 4 epochs of the 416 utterances = 380 steps. */
const TEST_RUN = ['--train.epochs', '4', '--train.evalEveryEpochs', '2', '--train.maxSeconds', '4', '--optim.warmupSteps', '30', '--optim.lr', '0.003', '--optim.schedule', 'constant'];

test('asr: `run --workers 2` with command-line subsets learns letters on held-out voices, wer_<subset> greedy and beam for each eval subset', { timeout: 900_000 }, async () => {
  const t0 = performance.now();
  const p = sigmatrain([
    'run', '--config', CONFIG, '--workers', '2', '--run-dir', runDir, '--dist.coordinator', coordinatorAddress(), '--metrics.port', '0',
    '--data.root', root, '--data.librispeech.train', 'held-train', '--data.librispeech.eval', EVAL.join(','),
    '--data.librispeech.cacheDir', join(root, 'index'), ...TEST_RUN,
  ]);
  assert.equal(await p.exit, 0, p.text.slice(-20).join('\n'));
  const done = p.messages(/^done: /)[0];
  assert.ok(done, 'a summary line');
  const s = done.summary as Summary;
  console.log(`# asr run --workers 2 (${TRAIN_UTTERANCES} training utterances): ${JSON.stringify(s.eval)} after ${s.steps} steps, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  assert.equal(s.task, 'asr');
  assert.equal(s.headline, 'wer');
  assert.equal(s.steps, s.totalSteps);
  assert.equal(s.workerFailures, 0);
  for (const sub of EVAL) {
    assert.match(String(done.msg), new RegExp(`wer_${sub}=\\d+\\.\\d{3}`), `the summary prints wer_${sub}`);
    for (const k of [`wer_${sub}`, `cer_${sub}`, `wer_beam_${sub}`, `wer_lm_${sub}`]) assert.ok(Number.isFinite(s.eval[k]), `${k} = ${s.eval[k]}`);
    assert.match(String(done.msg), new RegExp(`wer_lm_${sub}=\\d+\\.\\d{3}`), `the summary prints wer_lm_${sub} (the config's character LM)`);
    assert.ok(s.eval[`wer_lm_${sub}`]! <= LM_WER_BOUND, `beam + LM wer_lm_${sub} = ${s.eval[`wer_lm_${sub}`]} > ${LM_WER_BOUND}`);
    assert.ok(s.eval[`wer_${sub}`]! <= WER_BOUND, `greedy wer_${sub} = ${s.eval[`wer_${sub}`]} > ${WER_BOUND}`);
    assert.ok(s.eval[`wer_beam_${sub}`]! <= WER_BOUND, `beam wer_beam_${sub} = ${s.eval[`wer_beam_${sub}`]} > ${WER_BOUND}`);
    assert.ok(s.eval[`cer_${sub}`]! <= CER_BOUND, `cer_${sub} = ${s.eval[`cer_${sub}`]} > ${CER_BOUND}`);
  }
  assert.ok(s.eval.wer! <= WER_BOUND, `pooled wer ${s.eval.wer}`);
  const evals = readFileSync(join(runDir, 'evals.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { metrics: Record<string, number> });
  assert.ok(evals.length >= 2, `${evals.length} evaluations`);
  const first = evals[0]!.metrics;
  const last = evals.at(-1)!.metrics;
  for (const sub of EVAL) {
    assert.ok(last[`loss_${sub}`]! < first[`loss_${sub}`]!, `loss_${sub} ${first[`loss_${sub}`]} → ${last[`loss_${sub}`]}`);
  }
  const steps = readFileSync(join(runDir, 'steps.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { unit: string; units: number; samples: number });
  assert.ok(steps.every((r) => r.unit === 'frames' && r.units > r.samples), 'steps count frames');
});

test('asr: `sigmatrain transcribe` prints one transcript per file; a file that is not FLAC is an error naming it', { timeout: 120_000 }, async () => {
  const dir = join(root, 'LibriSpeech', 'held-dev-a');
  const files: string[] = [];
  for (const spk of readdirSync(dir)) for (const ch of readdirSync(join(dir, spk))) for (const f of readdirSync(join(dir, spk, ch))) if (f.endsWith('.flac')) files.push(join(dir, spk, ch, f));
  const two = files.slice(0, 2);
  // stdout alone (the transcripts), apart from stderr (what was loaded).
  const transcribe = (...args: string[]) => spawnSync(process.execPath, [CLI, 'transcribe', '--run-dir', runDir, ...args], { encoding: 'utf8', timeout: 60_000 });
  const p = transcribe(...two);
  assert.equal(p.status, 0, p.stderr);
  const lines = p.stdout.split('\n').slice(0, -1);
  assert.equal(lines.length, 2, p.stdout);
  for (const l of lines) assert.match(l, /^[a-z' ]*$/);
  const beam = transcribe('--beam', '4', two[0]!);
  assert.equal(beam.status, 0, beam.stderr);
  assert.equal(beam.stdout.split('\n').length, 2, 'one line');
  // With the run's character LM, counted again from the corpus the run read; the LM needs the beam search.
  const fused = transcribe('--beam', '4', '--lm', '--lm-weight', '0.7', ...two);
  assert.equal(fused.status, 0, fused.stderr);
  assert.equal(fused.stdout.split('\n').length, 3, 'one line a file');
  assert.match(fused.stderr, /character LM of order 6 from 416 transcripts of held-train, weight 0\.7/);
  const noBeam = transcribe('--lm', two[0]!);
  assert.notEqual(noBeam.status, 0);
  assert.match(noBeam.stderr, /add --beam N/);
  const junk = join(root, 'not-audio.flac');
  writeFileSync(junk, 'hello');
  const bad = transcribe(junk);
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /not-audio\.flac/);
});
