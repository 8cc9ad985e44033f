// worker/optim/plateau.ts: a hand-worked WER sequence, PyTorch's ReduceLROnPlateau on random sequences
// (test/fixtures/plateau_torch.json, made by test/fixtures/gen/plateau_torch.py), checkpoint round trips, bad input.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { PlateauSchedule, type PlateauOptions } from '../../../../worker/optim/plateau.js';

const torchCases = (JSON.parse(
  readFileSync(new URL('../../../../../test/fixtures/plateau_torch.json', import.meta.url), 'utf8'),
) as { cases: { options: PlateauOptions; metrics: number[]; lrs: number[] }[] }).cases;

test('halves the learning rate at the 2nd evaluation in a row without a better WER (patience 2)', () => {
  const p = new PlateauSchedule({ lr: 1, patience: 2 });
  const wer = [30, 25, 26, 27, 24, 24.5, 25, 26, 27];
  // 30 ✓, 25 ✓, 26 ✗, 27 ✗ → ½, 24 ✓, 24.5 ✗, 25 ✗ → ¼, 26 ✗, 27 ✗ → ⅛
  assert.deepEqual(wer.map((w) => p.observe(w).lr), [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.125]);
  assert.equal(p.scale, 0.125);
  assert.deepEqual(p.state(), { lr: 0.125, best: 24, badEvaluations: 0, cooldownLeft: 0, reductions: 3, evaluations: 9 });
});

test('an equal metric is no improvement; a relative threshold asks for more', () => {
  const eq = new PlateauSchedule({ lr: 1, patience: 1 });
  eq.observe(20);
  assert.deepEqual(eq.observe(20), { lr: 0.5, improved: false, reduced: true });
  const rel = new PlateauSchedule({ lr: 1, patience: 1, threshold: 0.01 });
  rel.observe(25);
  assert.equal(rel.observe(24.8).improved, false); // needs < 24.75
  assert.equal(rel.observe(24.7).improved, true);
});

test('cooldown, the lr floor and mode max', () => {
  const cool = new PlateauSchedule({ lr: 1, patience: 1, cooldown: 1 });
  assert.deepEqual([10, 11, 12, 13].map((m) => cool.observe(m).lr), [1, 0.5, 0.5, 0.25]);
  const floor = new PlateauSchedule({ lr: 1, patience: 1, minLr: 0.3 });
  floor.observe(1);
  assert.deepEqual([2, 3, 4].map((m) => floor.observe(m)), [
    { lr: 0.5, improved: false, reduced: true }, { lr: 0.3, improved: false, reduced: true }, { lr: 0.3, improved: false, reduced: false },
  ]);
  const max = new PlateauSchedule({ lr: 1, patience: 1, mode: 'max' });
  assert.deepEqual([10, 12, 11].map((m) => max.observe(m).lr), [1, 1, 0.5]);
});

test('equals PyTorch ReduceLROnPlateau (its patience = ours − 1) on every fixture sequence', () => {
  assert.ok(torchCases.length > 0);
  for (const [i, c] of torchCases.entries()) {
    const p = new PlateauSchedule(c.options);
    const got = c.metrics.map((m) => p.observe(m).lr);
    got.forEach((lr, k) => assert.ok(Math.abs(lr - c.lrs[k]) <= 1e-12 * c.lrs[k], `case ${i}, evaluation ${k}: ${lr} vs ${c.lrs[k]}`));
  }
  assert.ok(torchCases.some((c) => c.lrs[c.lrs.length - 1] < 1), 'the fixture exercises reductions');
});

test('state survives a JSON checkpoint: resuming gives the same learning rates as an uninterrupted run', () => {
  const c = torchCases[2];
  const whole = new PlateauSchedule(c.options);
  const all = c.metrics.map((m) => whole.observe(m).lr);
  const first = new PlateauSchedule(c.options);
  const head = c.metrics.slice(0, 13).map((m) => first.observe(m).lr);
  const saved = JSON.parse(JSON.stringify(first.state()));
  const resumed = new PlateauSchedule(c.options, saved);
  const tail = c.metrics.slice(13).map((m) => resumed.observe(m).lr);
  assert.deepEqual([...head, ...tail], all);
  assert.deepEqual(new PlateauSchedule({ lr: 1 }).state().best, null, 'no evaluation yet: best is null (JSON-safe)');
});

test('bad options, metrics and states are refused, naming the key and value', () => {
  assert.throws(() => new PlateauSchedule({ lr: 1, factor: 1 }), /SGT_CONFIG_INVALID: plateau schedule: factor = 1 .*\(0, 1\)/);
  assert.throws(() => new PlateauSchedule({ lr: 1, patience: 0 }), /patience = 0/);
  assert.throws(() => new PlateauSchedule({ lr: 0 }), /lr = 0/);
  assert.throws(() => new PlateauSchedule({ lr: 1, mode: 'least' as never }), /mode = "least"/);
  assert.throws(() => new PlateauSchedule({ lr: 1, minLr: 2 }), /minLr = 2/);
  assert.throws(() => new PlateauSchedule({ lr: 1 }).observe(Number.NaN), /SGT_DATA_INVALID.*evaluation 1 gave metric NaN/);
  const st = new PlateauSchedule({ lr: 1 }).state();
  assert.throws(() => new PlateauSchedule({ lr: 1 }, { ...st, lr: 2 }), /SGT_CHECKPOINT_INVALID.*lr = 2/);
  assert.throws(() => new PlateauSchedule({ lr: 1 }, { ...st, badEvaluations: -1 }), /badEvaluations = -1/);
});
