// The deep-MT experiment's pure parts (issue 12 item 7): the plan (names, per-arm flags, variants by depth), the
// --depths/--methods subset flags, seeds, the status rule applied to synthetic run records with known losses and
// NLLs, and the unigram baseline's entropy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { COLLAPSED_NATS, FULL, QUICK, TRAINED_FRACTION, cell, deepOutcome, findings, plan, seedsAt, splitSubset, tables, type DeepOutcome } from '../../../coordinator/experiments/deepmt.js';
import { entropyOfCounts, targetUnigram } from '../../../coordinator/experiments/unigram.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { outcome } from '../../../coordinator/experiments/analyze.js';
import type { DoneRun } from '../../../coordinator/experiments/harness.js';
import type { RunData } from '../../../coordinator/report/load.js';

test('plan: every depth × arm once, named <arm>-<L>L, with the arm\'s norm/reparam and the "<width>-<L>L-<L>L" variant', () => {
  const p = plan(FULL);
  assert.equal(p.length, FULL.depths.reduce((n, L) => n + seedsAt(FULL, L).length, 0) * 3);
  assert.deepEqual(p.slice(0, 3).map((x) => x.name), [`postln-${FULL.depths[0]}L`, `postln-sigma-${FULL.depths[0]}L`, `deepnorm-${FULL.depths[0]}L`]);
  const flags = (name: string) => new Map(p.find((x) => x.name === name)!.flags.map(([k, v]) => [k, String(v)]));
  const L = FULL.depths.at(-1)!;
  assert.deepEqual([...flags(`postln-${L}L`)].filter(([k]) => k.startsWith('model.')), [['model.norm', 'post'], ['model.reparam', 'none'], ['model.seq2seq.variant', `${FULL.width}-${L}L-${L}L`]]);
  assert.equal(flags(`postln-sigma-${L}L`).get('model.reparam'), 'sigma');
  assert.equal(flags(`postln-sigma-${L}L`).get('model.norm'), 'post');
  assert.equal(flags(`deepnorm-${L}L`).get('model.norm'), 'deepnorm');
  assert.equal(flags(`deepnorm-${L}L`).get('optim.lr'), String(FULL.lr));
  assert.deepEqual(plan(QUICK).map((x) => x.name), ['postln-2L', 'postln-sigma-2L', 'deepnorm-2L']);
});

test('--depths / --methods pick a subset and leave the other flags; bad lists are errors naming the flag', () => {
  assert.deepEqual(splitSubset(['--out', 'x', '--depths', '2,6', '--methods', 'postln']), { rest: ['--out', 'x'], depths: [2, 6], methods: ['postln'] });
  assert.deepEqual(splitSubset(['--quick']), { rest: ['--quick'] });
  assert.throws(() => splitSubset(['--depths', 'two']), /--depths needs comma-separated layer counts, got "two"/);
  assert.throws(() => splitSubset(['--methods']), /--methods needs a comma-separated list/);
});

/** A run whose training losses are `losses` (steps 0…) and per-token NLLs `nlls`, with a final evaluation. */
function done(name: string, depth: number, losses: number[], nlls: number[], bleu: number, seed = 0): DoneRun {
  const steps = losses.map((loss, step) => ({
    step, epoch: 0, generation: 1, time: step, loss, metrics: { nll: nlls[step] }, entropy: [{ attn: 'self', layer: 0, heads: [2 - step * 0.01, 1.5] }],
  }));
  const run = {
    dir: `/runs/${name}`, steps, diagnostics: [], events: [], ledger: [], files: [], skipped: [],
    evals: [{ step: losses.length - 1, epoch: 0, time: 0, metrics: { valid_bleu: bleu - 1, valid_loss: 2, bleu }, n: 10 }],
    coordinator: { totalSteps: losses.length },
  } as unknown as RunData;
  const p = { name, method: 'post-LN', optimizer: 'adamw', lr: 3e-3, warmupSteps: 2, numClasses: 0, tags: { depth, method: 'postln', seed } };
  const job = { exitCode: 0, timedOut: false, seconds: 10, nonFiniteLoss: false };
  return { plan: { ...p, flags: [] }, run, outcome: outcome(run, job, p) };
}

test('status: trained when the final NLL is below the fraction of the unigram baseline, stalled above it, diverged above the initial loss', () => {
  const initial = 6;
  const uni = 4;
  // Final window = the post-warmup steps here (fewer than 10 of them): steps 2–4. Losses and NLLs differ (label
  // smoothing), and the status follows the NLL: run "b" has a low smoothed loss but an NLL at the unigram level.
  const trained = deepOutcome(done('a-2L', 2, [initial, 5, 2, 2, 2], [6, 5, 1.8, 2, 2.2], 40), uni);
  const stalled = deepOutcome(done('a-6L', 6, [initial, 5, 2, 2, 2], [6, 5, 3.9, 4, 4.1], 1), uni);
  const diverged = deepOutcome(done('a-12L', 12, [initial, 5, 7, 7, 7], [6, 5, 1, 1, 1], 0), uni);
  assert.ok(2 < TRAINED_FRACTION * uni && 4 > TRAINED_FRACTION * uni, 'the cases straddle the rule');
  assert.deepEqual([trained.status, stalled.status, diverged.status], ['trained', 'stalled', 'diverged']);
  assert.equal(trained.finalNll, 2);
  assert.equal(trained.nllRatio, 0.5);
  assert.equal(stalled.nllRatio, 1);
  assert.equal(trained.testBleu, 40);
  assert.equal(trained.validBleu, 39);
  assert.equal(trained.valLoss, 2);
  assert.equal(trained.depth, 2);
  assert.equal(trained.seed, 0);
  assert.equal(trained.minEntropy, 1.5);
  assert.equal(trained.collapsed, false);
  assert.equal(cell(trained), 'NLL 0.50× uni · BLEU 40.0 · ent 1.500');
  assert.equal(cell(stalled), 'NLL 1.00× uni (stalled) · BLEU 1.0 · ent 1.500');
  const outcomes: DeepOutcome[] = [trained, stalled, diverged];
  const [grid] = tables(outcomes, 'test', uni);
  assert.deepEqual(grid!.rows.map((r) => r[0]), ['2L-2L', '6L-6L', '12L-12L']);
  assert.deepEqual(findings(outcomes), ['post-LN: trained at 2L; at 6L-6L it did not train (stalled, final NLL 4.000 = 1.00× unigram).']);
});

test('a step without its NLL gives no final NLL and no "trained"; a head below the collapse level is marked', () => {
  const missing = deepOutcome(done('m-2L', 2, [6, 5, 2, 2, 2], [6, 5, 1, Number.NaN, 1], 40), 4);
  assert.equal(missing.finalNll, undefined);
  assert.equal(missing.status, 'stalled');
  const d = done('c-2L', 2, [6, 5, 2, 2, 2], [6, 5, 1, 1, 1], 40);
  const low = { ...d, outcome: { ...d.outcome, minEntropy: COLLAPSED_NATS / 2 } };
  const c = deepOutcome(low, 4);
  assert.equal(c.collapsed, true);
  assert.equal(c.status, 'trained');
  assert.match(cell(c), /\(trained, entropy collapsed\)/);
});

test('trained-at step: the last step of the first 10 steps whose mean NLL is below the trained level', () => {
  // NLL 4 (= unigram) for steps 0–7, then 1; the trained level is 0.75 × 4 = 3. Windows: steps 0–9 mean
  // (8·4 + 2·1) / 10 = 3.4, steps 1–10 3.1, steps 2–11 (6·4 + 4·1) / 10 = 2.8 < 3 → step 11.
  const nlls = [4, 4, 4, 4, 4, 4, 4, 4, 1, 1, 1, 1, 1, 1];
  const o = deepOutcome(done('t-2L', 2, nlls.map((x) => x + 0.2), nlls, 10), 4);
  assert.equal(o.trainedAtStep, 11);
  const never = deepOutcome(done('n-2L', 2, nlls.map(() => 4.2), nlls.map(() => 4), 0), 4);
  assert.equal(never.trainedAtStep, undefined);
});

test('several seeds of a depth: one cell saying how many trained, findings name the seeds that did not', () => {
  const uni = 4;
  const runs = [
    deepOutcome(done('p-6L', 6, [6, 5, 2, 2, 2], [6, 5, 1, 1, 1], 30, 0), uni),
    deepOutcome(done('p-12L', 12, [6, 5, 2, 2, 2], [6, 5, 1, 1, 1], 30, 0), uni),
    deepOutcome(done('p-12L-s1', 12, [6, 5, 5, 5, 5], [6, 5, 4, 4, 4], 0, 1), uni),
  ];
  const [grid] = tables(runs, 'test', uni);
  assert.match(grid!.rows[1]![1]!, /^1\/2 trained: s0 NLL 0\.25× uni · .*; s1 NLL 1\.00× uni \(stalled\)/);
  assert.deepEqual(findings(runs), ['post-LN: trained at 6L; at 12L-12L 1 of 2 seeds did not train (seed 1: stalled, final NLL 4.000 = 1.00× unigram).']);
});

test('plan with extra seeds: the first seed keeps the plain name, the others get -s<seed> and their own seed flag', () => {
  const s = { ...FULL, depths: [6, 12], seeds: [0], extraSeeds: { 12: [1, 2] } };
  const p = plan(s);
  assert.deepEqual(p.filter((x) => x.name.startsWith('postln-') && !x.name.startsWith('postln-sigma')).map((x) => x.name), ['postln-6L', 'postln-12L', 'postln-12L-s1', 'postln-12L-s2']);
  assert.equal(new Map(p.find((x) => x.name === 'deepnorm-12L-s2')!.flags).get('seed'), 2);
  assert.deepEqual(seedsAt(s, 6), [0]);
});

test('unigram baseline: entropy of counts against closed forms, and of a real token cache counted with </s>', async () => {
  assert.ok(Math.abs(entropyOfCounts([5, 5, 5, 5]) - Math.log(4)) <= 1e-12);
  // p = (1/4, 3/4): −(¼ ln ¼ + ¾ ln ¾) = 0.5623351446188083
  assert.ok(Math.abs(entropyOfCounts([1, 0, 3]) - 0.5623351446188083) <= 1e-12);
  assert.equal(entropyOfCounts([7]), 0);
  assert.throws(() => entropyOfCounts([0, 0]), /positive sum/);
  assert.throws(() => entropyOfCounts([1, -1, 3]), /non-negative/);
  // A token cache in cache.ts's layout, written by hand: targets [5, 6] and [5], so with one </s> (id 2) per pair
  // the counts are {5: 2, 6: 1, 2: 2} over 5 tokens.
  const dir = mkdtempSync(join(tmpdir(), 'unigram-'));
  try {
    const side = (name: string, seqs: number[][]) => {
      writeFileSync(join(dir, `train.${name}.bin`), Buffer.from(Uint16Array.from(seqs.flat()).buffer));
      const idx = [0];
      for (const q of seqs) idx.push(idx.at(-1)! + q.length);
      writeFileSync(join(dir, `train.${name}.idx`), Buffer.from(BigUint64Array.from(idx.map(BigInt)).buffer));
    };
    side('src', [[7, 8, 9], [7]]);
    side('tgt', [[5, 6], [5]]);
    writeFileSync(join(dir, 'header.json'), JSON.stringify({ format: 'sigmatrain-wmt-cache/1', vocabHash: 'x', vocabSize: 10, dtype: 'uint16', sources: [], splits: { train: {} } }));
    const u = await targetUnigram(dir);
    const expected = -(2 * (2 / 5) * Math.log(2 / 5) + (1 / 5) * Math.log(1 / 5));
    assert.deepEqual([u.pairs, u.tokens, u.types], [2, 5, 3]);
    assert.ok(Math.abs(u.entropy - expected) <= 1e-12, `${u.entropy} vs ${expected}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
