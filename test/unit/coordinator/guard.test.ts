// The collapse detector on hand-made entropy traces, and the temperature schedule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CollapseDetector } from '../../../coordinator/guard.js';
import { loadConfig } from '../../../shared/config/index.js';
import { temperatureAt } from '../../../worker/train/temperature.js';

const guard = (o: Record<string, unknown> = {}) => loadConfig({ env: {}, overrides: { guard: { fraction: 0.5, window: 3, warmupSteps: 2, ...o } } }).guard;

test('a layer falling below fraction × running max for `window` steps raises one alarm, at the window\'s end', () => {
  const d = new CollapseDetector(guard());
  const trace = [2, 2, 2, 1.5, 0.9, 0.8, 0.7, 0.6, 0.5]; // layer 1; layer 0 stays at 2
  const alarms = trace.map((e, step) => d.observe(step, [[2, 2], [e, e + 0.5]]));
  // Below 0.5 × 2 = 1 from step 4 on: steps 4, 5, 6 → alarm at step 6, once.
  assert.deepEqual(alarms.map((a) => a.map((x) => x.layer)), [[], [], [], [], [], [], [1], [], []]);
  assert.equal(alarms[6][0].step, 6);
  assert.equal(alarms[6][0].runningMax, 2);
  assert.deepEqual(d.collapsing(), [false, true]);
});

test('a dip shorter than the window, or during warm-up, raises nothing; recovery clears the flag', () => {
  const d = new CollapseDetector(guard());
  const trace = [0.1, 0.1, 2, 0.5, 0.5, 2, 0.5, 0.5, 0.5, 2];
  const alarms = trace.map((e, step) => d.observe(step, [[e]]));
  assert.deepEqual(alarms.map((a) => a.length), [0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
  assert.deepEqual(d.collapsing(), [false]);
});

test('the Theorem 3.1 margin criterion', () => {
  const d = new CollapseDetector(guard({ fraction: 0, boundMargin: 0.2 }));
  const alarms = [1, 1, 1, 0.55, 0.55, 0.55].map((e, step) => d.observe(step, [[e]], [[0.4]]));
  assert.equal(alarms.flat().length, 1);
  assert.equal(alarms[5][0].bound, 0.4);
});

test('temperature: base, schedule by epoch and step (the latest start wins), live override', () => {
  const model = loadConfig({ env: {}, overrides: { model: { temperature: 1, temperatureSchedule: [{ fromEpoch: 2, value: 0.1 }, { fromStep: 30, value: 0.5 }] } } }).model;
  const perEpoch = 10;
  assert.equal(temperatureAt(model, 0, perEpoch), 1);
  assert.equal(temperatureAt(model, 19, perEpoch), 1);
  assert.equal(temperatureAt(model, 20, perEpoch), 0.1);
  assert.equal(temperatureAt(model, 30, perEpoch), 0.5);
  assert.equal(temperatureAt(model, 35, perEpoch, { value: 2, fromStep: 33 }), 2);
  assert.equal(temperatureAt(model, 32, perEpoch, { value: 2, fromStep: 33 }), 0.5);
});
