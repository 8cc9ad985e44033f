// worker/optim/clip.ts and ema.ts: clipping by global norm on a flat gradient; the weight EMA's values, swap-in for
// evaluation (live weights restored bitwise, also when the evaluation throws), state round trip, no leaks.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as tf from '@tensorflow/tfjs';

import { initBackend } from '../../../../worker/backend.js';
import { clipByGlobalNorm, globalNorm } from '../../../../worker/optim/clip.js';
import { Ema } from '../../../../worker/optim/ema.js';

/** A variable holding `values` (the initial tensor is freed: the variable keeps its own reference). */
function vari(values: ArrayLike<number>, shape?: number[]): tf.Variable {
  const t = tf.tensor(Array.from(values), shape);
  const v = tf.variable(t);
  t.dispose();
  return v;
}

await initBackend('cpu');

test('clipByGlobalNorm scales a gradient above maxNorm to maxNorm and leaves one below it alone', () => {
  const g = new Float32Array([3, 4, 0, 0]);
  assert.deepEqual(clipByGlobalNorm(g, 1), { norm: 5, factor: 0.2 });
  assert.ok(Math.abs(g[0] - 0.6) < 1e-7 && Math.abs(g[1] - 0.8) < 1e-7 && g[2] === 0, `${g}`);
  assert.ok(Math.abs(globalNorm(g) - 1) < 1e-7);
  const small = new Float32Array([0.3, 0.4]);
  const r = clipByGlobalNorm(small, 1);
  assert.ok(Math.abs(r.norm - 0.5) < 1e-7 && r.factor === 1, JSON.stringify(r));
  assert.deepEqual([...small], [Math.fround(0.3), Math.fround(0.4)]);
  const off = new Float32Array([30, 40]);
  assert.deepEqual(clipByGlobalNorm(off, 0), { norm: 50, factor: 1 }, 'maxNorm 0 = off');
  assert.deepEqual([...off], [30, 40]);
});

test('clipByGlobalNorm with a divisor (summed gradients) and apply: false only reports', () => {
  // Sum over n = 10 samples of a mean gradient (0.6, 0.8)·5: mean norm 5 > 2, factor 0.4.
  const sum = new Float32Array([30, 40]);
  const r = clipByGlobalNorm(sum, 2, { divisor: 10, apply: false });
  assert.deepEqual(r, { norm: 5, factor: 0.4 });
  assert.deepEqual([...sum], [30, 40]);
  const nan = new Float32Array([NaN, 1]);
  assert.equal(clipByGlobalNorm(nan, 1).factor, 1, 'a non-finite norm is reported, not clipped');
});

test('Ema: e ← d·e + (1 − d)·p from a copy of the initial weights; swapIn/swapOut and apply for evaluation', async () => {
  const params = new Map([['w', vari([1, 2])], ['b', vari([0])]]);
  const n0 = tf.memory().numTensors;
  const ema = new Ema(0.9, params);
  // Two updates with the weights at (2, 4) and b = 1: e₁ = 0.9·(1, 2) + 0.1·(2, 4) = (1.1, 2.2); e₂ = (1.19, 2.38).
  tf.tidy(() => {
    params.get('w')!.assign(tf.tensor([2, 4]));
    params.get('b')!.assign(tf.tensor([1]));
  });
  ema.update(params);
  const n1 = tf.memory().numTensors;
  ema.update(params);
  assert.equal(tf.memory().numTensors, n1, 'update leaks nothing');
  const live = params.get('w')!.dataSync().slice();
  const seen = await ema.apply(params, () => [...params.get('w')!.dataSync(), ...params.get('b')!.dataSync()]);
  const want = [1.19, 2.38, 0.19];
  seen.forEach((x, i) => assert.ok(Math.abs(x - want[i]) < 1e-6, `ema[${i}] = ${x}, want ${want[i]}`));
  assert.deepEqual(params.get('w')!.dataSync(), live, 'live weights are back, bit for bit');
  await assert.rejects(ema.apply(params, () => { throw new Error('eval failed'); }), /eval failed/);
  assert.deepEqual(params.get('w')!.dataSync(), live, 'live weights are back after a failed evaluation');
  assert.equal(tf.memory().numTensors, n1, 'swap in/out leaks nothing');
  ema.swapIn(params);
  assert.throws(() => ema.update(params), /swapOut first/);
  ema.swapOut(params);
  assert.deepEqual(params.get('w')!.dataSync(), live);

  const state = (await ema.getState());
  assert.equal(state.step, 2);
  assert.deepEqual([...state.slots.keys()], ['e/w', 'e/b']);
  const other = new Ema(0.9, params);
  other.setState(state, new Map([['w', [2]], ['b', [1]]]));
  ema.update(params);
  other.update(params);
  const a = (await ema.getState());
  const b = (await other.getState());
  for (const k of a.slots.keys()) assert.deepEqual(b.slots.get(k), a.slots.get(k));
  assert.throws(() => other.setState({ step: 0, slots: new Map([['e/w', new Float32Array(2)]]) }, new Map([['w', [2]], ['b', [1]]])), /lacks e\/b/);
  ema.dispose();
  other.dispose();
  assert.equal(tf.memory().numTensors, n0, 'dispose frees the averages');
  for (const p of params.values()) p.dispose();
});
