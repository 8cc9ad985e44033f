// worker/optim/schedule.ts: each schedule at chosen steps against hand-computed values; learningRate (the config's
// shape) still returns the same bits as before it delegated to composeSchedule; bad specs name their key.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { composeSchedule, learningRate, type ScheduleOptions, type ScheduleSpec } from '../../../../worker/optim/schedule.js';

function near(got: number, want: number, what: string): void {
  assert.ok(Math.abs(got - want) <= 1e-12 * Math.max(1, Math.abs(want)), `${what}: ${got} vs ${want}`);
}

test('linear warmup from init: init + (lr − init)·(s+1)/steps, then the main schedule (constant)', () => {
  const lr = composeSchedule({ lr: 0.1, warmup: { steps: 4, init: 0.02 }, main: { kind: 'constant' } });
  for (const [s, want] of [[0, 0.04], [1, 0.06], [2, 0.08], [3, 0.1], [4, 0.1], [1000, 0.1]]) near(lr(s), want, `step ${s}`);
  const noWarmup = composeSchedule({ lr: 0.3, main: { kind: 'constant' } });
  near(noWarmup(0), 0.3, 'no warmup');
});

test('step decay: lr·factorᵏ after k milestones, in steps or in epochs', () => {
  const bySteps = composeSchedule({ lr: 1, main: { kind: 'step', milestones: [10, 20], factor: 0.1 } });
  for (const [s, want] of [[0, 1], [9, 1], [10, 0.1], [19, 0.1], [20, 0.01], [1000, 0.01]]) near(bySteps(s), want, `step ${s}`);
  const byEpochs = composeSchedule({ lr: 1, main: { kind: 'step', milestones: [2, 3], factor: 0.5, unit: 'epochs', stepsPerEpoch: 5 } });
  for (const [s, want] of [[9, 1], [10, 0.5], [14, 0.5], [15, 0.25]]) near(byEpochs(s), want, `epoch step ${s}`);
  // Milestones count from step 0, warmup included.
  const warm = composeSchedule({ lr: 1, warmup: { steps: 5 }, main: { kind: 'step', milestones: [8], factor: 0.1 } });
  for (const [s, want] of [[0, 0.2], [4, 1], [7, 1], [8, 0.1]]) near(warm(s), want, `warm step ${s}`);
});

test('cosine from lr at the end of warmup to the floor at totalSteps, then the floor', () => {
  const lr = composeSchedule({ lr: 1, warmup: { steps: 2 }, main: { kind: 'cosine', floor: 0.1, totalSteps: 12 } });
  // span 10 steps: t = (s − 2)/10; lr = 0.1 + 0.9·½(1 + cos πt). cos 36° = 0.8090169943749475.
  for (const [s, want] of [[0, 0.5], [1, 1], [2, 1], [4, 0.1 + 0.45 * 1.8090169943749475], [7, 0.55], [12, 0.1], [50, 0.1]]) {
    near(lr(s), want, `step ${s}`);
  }
});

test('inverse square root: lr/√(1 + (s − warmup)/timescale)', () => {
  const lr = composeSchedule({ lr: 1, warmup: { steps: 100 }, main: { kind: 'inverse-sqrt', timescale: 100 } });
  for (const [s, want] of [[49, 0.5], [99, 1], [100, 1], [400, 0.5], [900, 1 / 3]]) near(lr(s), want, `step ${s}`);
});

/** learningRate before it delegated (worker/optim/schedule.ts at b588da3). */
function legacy(o: ScheduleOptions, step: number): number {
  if (o.warmupSteps > 0 && step < o.warmupSteps) return (o.lr * (step + 1)) / o.warmupSteps;
  if (o.schedule === 'constant') return o.lr;
  const span = Math.max(1, o.totalSteps - o.warmupSteps);
  const t = Math.min(1, (step - o.warmupSteps) / span);
  const floor = o.lr * o.minLrRatio;
  return floor + (o.lr - floor) * 0.5 * (1 + Math.cos(Math.PI * t));
}

test('learningRate(o, step) returns the same bits as before for constant and cosine, with and without warmup', () => {
  const cases: ScheduleOptions[] = [
    { lr: 3e-3, warmupSteps: 7, schedule: 'cosine', totalSteps: 250, minLrRatio: 0.1 },
    { lr: 1e-3, warmupSteps: 0, schedule: 'cosine', totalSteps: 97, minLrRatio: 0 },
    { lr: 0.0123, warmupSteps: 13, schedule: 'constant', totalSteps: 50, minLrRatio: 0 },
    { lr: 0.7, warmupSteps: 10, schedule: 'cosine', totalSteps: 5, minLrRatio: 0.3 },
  ];
  for (const o of cases) {
    for (let s = 0; s <= 300; s++) assert.equal(learningRate(o, s), legacy(o, s), `${JSON.stringify(o)} step ${s}`);
  }
});

test('bad schedule specs are refused, naming the key and value', () => {
  const bad: [unknown, RegExp][] = [
    [{ lr: NaN, main: { kind: 'constant' } }, /lr = NaN/],
    [{ lr: 1, warmup: { steps: 2.5 }, main: { kind: 'constant' } }, /warmup.steps = 2.5/],
    [{ lr: 1, main: { kind: 'step', milestones: [20, 10], factor: 0.1 } }, /main.milestones = \[20,10\].*increasing/],
    [{ lr: 1, main: { kind: 'step', milestones: [2], factor: 0.1, unit: 'epochs' } }, /main.stepsPerEpoch/],
    [{ lr: 1, main: { kind: 'step', milestones: [2], factor: 0 } }, /main.factor = 0/],
    [{ lr: 1, main: { kind: 'cosine', floor: -1, totalSteps: 10 } }, /main.floor = -1/],
    [{ lr: 1, main: { kind: 'inverse-sqrt', timescale: 0 } }, /main.timescale = 0/],
    [{ lr: 1, main: { kind: 'exponential' } }, /main.kind = "exponential"/],
  ];
  for (const [spec, re] of bad) {
    assert.throws(() => composeSchedule(spec as ScheduleSpec), (e: Error) => /SGT_CONFIG_INVALID/.test(e.message) && re.test(e.message), JSON.stringify(spec));
  }
});
