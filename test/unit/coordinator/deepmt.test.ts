// The deep-MT experiment's pure parts (issue 12 item 7): the plan (names, per-arm flags, variants by depth), the
// --depths/--methods subset flags, and the status rule applied to synthetic run records with known losses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FULL, QUICK, TRAINED_FRACTION, cell, deepOutcome, findings, plan, splitSubset, tables, type DeepOutcome } from '../../../coordinator/experiments/deepmt.js';
import { outcome } from '../../../coordinator/experiments/analyze.js';
import type { DoneRun } from '../../../coordinator/experiments/harness.js';
import type { RunData } from '../../../coordinator/report/load.js';

test('plan: every depth × arm once, named <arm>-<L>L, with the arm\'s norm/reparam and the "<width>-<L>L-<L>L" variant', () => {
  const p = plan(FULL);
  assert.equal(p.length, FULL.depths.length * 3);
  assert.deepEqual(p.slice(0, 3).map((x) => x.name), [`postln-${FULL.depths[0]}L`, `postln-sigma-${FULL.depths[0]}L`, `deepnorm-${FULL.depths[0]}L`]);
  const flags = (name: string) => new Map(p.find((x) => x.name === name)!.flags.map(([k, v]) => [k, String(v)]));
  const L = FULL.depths.at(-1)!;
  assert.deepEqual([...flags(`postln-${L}L`)].filter(([k]) => k.startsWith('model.')), [['model.norm', 'post'], ['model.reparam', 'none'], ['model.seq2seq.variant', `tiny-${L}L-${L}L`]]);
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

/** A run whose training losses are `losses` (steps 0…), with a final evaluation. */
function done(name: string, depth: number, losses: number[], bleu: number): DoneRun {
  const steps = losses.map((loss, step) => ({ step, epoch: 0, generation: 1, time: step, loss, entropy: [{ attn: 'self', layer: 0, heads: [2 - step * 0.01, 1.5] }] }));
  const run = {
    dir: `/runs/${name}`, steps, diagnostics: [], events: [], ledger: [], files: [], skipped: [],
    evals: [{ step: losses.length - 1, epoch: 0, time: 0, metrics: { valid_bleu: bleu - 1, valid_loss: 2, bleu }, n: 10 }],
    coordinator: { totalSteps: losses.length },
  } as unknown as RunData;
  const p = { name, method: 'post-LN', optimizer: 'adamw', lr: 3e-3, warmupSteps: 2, numClasses: 0, tags: { depth, method: 'postln' } };
  const job = { exitCode: 0, timedOut: false, seconds: 10, nonFiniteLoss: false };
  return { plan: { ...p, flags: [] }, run, outcome: outcome(run, job, p) };
}

test('status: trained below the fraction of the initial loss, stalled between, diverged above it; BLEU from evals.jsonl', () => {
  const initial = 6;
  // Final loss = mean of the post-warmup steps here (fewer than 10 of them): 2, 5, 7.
  const trained = deepOutcome(done('a-2L', 2, [initial, 5, 2, 2, 2], 40));
  const stalled = deepOutcome(done('a-6L', 6, [initial, 5, 5, 5, 5], 1));
  const diverged = deepOutcome(done('a-12L', 12, [initial, 5, 7, 7, 7], 0));
  assert.ok(2 < TRAINED_FRACTION * initial && 5 > TRAINED_FRACTION * initial, 'the cases straddle the rule');
  assert.deepEqual([trained.status, stalled.status, diverged.status], ['trained', 'stalled', 'diverged']);
  assert.equal(trained.testBleu, 40);
  assert.equal(trained.validBleu, 39);
  assert.equal(trained.valLoss, 2);
  assert.equal(trained.depth, 2);
  assert.equal(trained.minEntropy, 1.5);
  assert.equal(cell(trained), 'loss 2.000 · BLEU 40.0 · ent 1.500');
  assert.equal(cell(stalled), 'loss 5.000 (stalled) · BLEU 1.0 · ent 1.500');
  const outcomes: DeepOutcome[] = [trained, stalled, diverged];
  const [grid] = tables(outcomes, 'tiny');
  assert.deepEqual(grid!.rows.map((r) => r[0]), ['2L-2L', '6L-6L', '12L-12L']);
  assert.deepEqual(findings(outcomes), ['post-LN: trained at 2L; stalled from 6L-6L on (stalled, final loss 5.000).']);
});
