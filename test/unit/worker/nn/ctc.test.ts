// worker/nn/ctc.ts against PyTorch's ctc_loss (test/fixtures/ctc_cases.json: loss and ∂loss/∂logits per case, whatever
// cases the file holds), batched with padding, reductions, zeroInfinity, bad input, and the second-order paths:
// the differentiable path's H·v against finite differences of the float64 host gradient, the fast path's clear refusal.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';

import * as tf from '@tensorflow/tfjs';

import { hessianVectorProduct } from '../../../../worker/diagnostics/hvp.js';
import { ctcHost, ctcLoss, minimumFrames, type CtcOptions } from '../../../../worker/nn/ctc.js';
import { forEachBackend } from '../../../helpers/backends.js';

interface Case {
  T: number;
  inputLength: number;
  classes: number;
  blank: number;
  target: number[];
  logits: number[][];
  loss: number | 'inf';
  gradLogits: number[][] | null;
}

const fixture = JSON.parse(
  readFileSync(new URL('../../../../../test/fixtures/ctc_cases.json', import.meta.url), 'utf8'),
) as { cases: Case[] };
const CASES = fixture.cases;
const expectedLoss = (c: Case): number => (c.loss === 'inf' ? Number.POSITIVE_INFINITY : c.loss);

/** |a − b| ≤ rtol·|b| + atol elementwise, atol = floor·max|b| (the reference README's comparison). */
function assertNear(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, floor: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
  const atol = floor * scale;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    assert.ok(d <= rtol * Math.abs(expected[i]) + atol, `${what}[${i}]: ${actual[i]} vs ${expected[i]} (|diff| ${d})`);
  }
}

function targetsOf(c: Case) {
  return { targets: c.target, targetLengths: [c.target.length], inputLengths: [c.inputLength] };
}

test('the fixture holds cases, among them an infeasible one, an empty target and a padded input', () => {
  assert.ok(CASES.length > 0);
  assert.ok(CASES.some((c) => c.loss === 'inf'));
  assert.ok(CASES.some((c) => c.target.length === 0));
  assert.ok(CASES.some((c) => c.inputLength < c.T));
});

test('minimumFrames counts a blank between equal neighbours', () => {
  assert.equal(minimumFrames([]), 0);
  assert.equal(minimumFrames([2, 2, 2]), 5);
  assert.equal(minimumFrames([1, 2, 1]), 3);
});

describe('host forward-backward (float64) against PyTorch', () => {
  for (const [i, c] of CASES.entries()) {
    test(`case ${i}: T=${c.T} (input ${c.inputLength}), C=${c.classes}, target [${c.target}]`, () => {
      const { loss, grad } = ctcHost(c.logits.flat(), [1, c.T, c.classes], targetsOf(c), c.blank, true);
      if (c.loss === 'inf') {
        assert.equal(loss[0], Number.POSITIVE_INFINITY);
        assert.ok(grad!.every((g) => g === 0), 'an infeasible sample gets a zero gradient');
        return;
      }
      assertNear([loss[0]], [expectedLoss(c)], 1e-5, 0, 'loss');
      assertNear(grad!, c.gradLogits!.flat(), 1e-5, 1e-6, 'grad');
    });
  }
});

/** All cases in one batch: frames padded to the longest T with garbage, classes padded with logits of −1e4 (zero probability). */
function padded() {
  const B = CASES.length;
  const T = Math.max(...CASES.map((c) => c.T)) + 2;
  const C = Math.max(...CASES.map((c) => c.classes));
  const S = Math.max(...CASES.map((c) => c.target.length)) + 1;
  const logits = new Float32Array(B * T * C);
  const targets = new Int32Array(B * S).fill(7); // padding entries: must be ignored
  CASES.forEach((c, b) => {
    for (let t = 0; t < T; t++) {
      for (let k = 0; k < C; k++) {
        logits[(b * T + t) * C + k] = t < c.T && k < c.classes ? c.logits[t][k] : k < c.classes ? Math.sin(7 * t + k) * 30 : -1e4;
      }
    }
    c.target.forEach((y, j) => { targets[b * S + j] = y; });
  });
  return {
    B, T, C, logits,
    targets: { targets, targetLengths: CASES.map((c) => c.target.length), inputLengths: CASES.map((c) => c.inputLength) },
  };
}

/**
 * Absolute floor on gradients, × max|reference|: the fast path reads fp32 logits and works in float64 (measured error
 * 7e-8); the differentiable path runs the α recursion in float32 over up to 29 frames (measured 3.7e-6).
 */
const GRAD_FLOOR = { fast: 1e-6, differentiable: 1e-5 } as const;

forEachBackend((backend) => {
  for (const impl of ['fast', 'differentiable'] as const) {
    describe(`[${backend}] ${impl} path, all cases in one padded batch`, () => {
      test('per-sample loss and gradient equal PyTorch (1e-5 relative)', async () => {
        const p = padded();
        const before = tf.memory().numTensors;
        const x = tf.tensor3d(p.logits, [p.B, p.T, p.C]);
        const loss = ctcLoss(x, p.targets, { impl, reduction: 'none', zeroInfinity: false });
        // Σ over feasible samples only (zeroInfinity), so that the infeasible one does not make the sum +∞.
        const g = tf.grad((z: tf.Tensor) => ctcLoss(z as tf.Tensor3D, p.targets, { impl, reduction: 'sum', zeroInfinity: true }))(x);
        const [l, gv] = [await loss.data(), await g.data()];
        tf.dispose([x, loss, g]);
        assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
        CASES.forEach((c, b) => {
          if (c.loss === 'inf') {
            assert.equal(l[b], Number.POSITIVE_INFINITY, `case ${b}: infeasible gives +inf`);
          } else {
            assertNear([l[b]], [expectedLoss(c)], 1e-5, 0, `case ${b} loss`);
          }
          const got: number[] = [];
          const want: number[] = [];
          for (let t = 0; t < p.T; t++) {
            for (let k = 0; k < p.C; k++) {
              const v = gv[(b * p.T + t) * p.C + k];
              if (t < c.T && k < c.classes) {
                got.push(v);
                want.push(c.gradLogits ? c.gradLogits[t][k] : 0);
              } else {
                assert.ok(Math.abs(v) <= 1e-6, `case ${b}: padding frame/class gradient ${v} at t=${t}, k=${k}`);
              }
            }
          }
          assertNear(got, want, 1e-5, GRAD_FLOOR[impl], `case ${b} grad`);
        });
      });

      test('reductions: sum, and mean divides by the target length (at least 1) then by B, as PyTorch', async () => {
        const feasible = CASES.filter((c) => c.loss !== 'inf');
        const B = feasible.length;
        const T = Math.max(...feasible.map((c) => c.T));
        const C = Math.max(...feasible.map((c) => c.classes));
        const S = Math.max(...feasible.map((c) => c.target.length));
        const logits = new Float32Array(B * T * C).fill(-1e4);
        const targets = new Int32Array(B * S).fill(1);
        feasible.forEach((c, b) => {
          c.logits.forEach((row, t) => row.forEach((v, k) => { logits[(b * T + t) * C + k] = v; }));
          c.target.forEach((y, j) => { targets[b * S + j] = y; });
        });
        const tg = { targets, targetLengths: feasible.map((c) => c.target.length), inputLengths: feasible.map((c) => c.inputLength) };
        const x = tf.tensor3d(logits, [B, T, C]);
        const run = async (o: CtcOptions) => { const r = ctcLoss(x, tg, { impl, ...o }); const v = (await r.data())[0]; r.dispose(); return v; };
        const sum = feasible.reduce((s, c) => s + expectedLoss(c), 0);
        const mean = feasible.reduce((s, c) => s + expectedLoss(c) / Math.max(c.target.length, 1), 0) / B;
        assertNear([await run({ reduction: 'sum' })], [sum], 1e-5, 0, 'sum');
        assertNear([await run({ reduction: 'mean' })], [mean], 1e-5, 0, 'mean');
        assertNear([await run({})], [mean], 1e-5, 0, 'default is mean');
        x.dispose();
      });

      test('infeasible: +inf without zeroInfinity, 0 with it, and a zero gradient either way', async () => {
        const c = CASES.find((k) => k.loss === 'inf')!;
        const x = tf.tensor3d(c.logits.flat(), [1, c.T, c.classes]);
        const inf = ctcLoss(x, targetsOf(c), { impl, reduction: 'none' });
        const zero = ctcLoss(x, targetsOf(c), { impl, reduction: 'mean', zeroInfinity: true });
        const g = tf.grad((z: tf.Tensor) => ctcLoss(z as tf.Tensor3D, targetsOf(c), { impl, reduction: 'sum', zeroInfinity: true }))(x);
        assert.equal((await inf.data())[0], Number.POSITIVE_INFINITY);
        assert.equal((await zero.data())[0], 0);
        assert.ok((await g.data()).every((v) => v === 0));
        tf.dispose([x, inf, zero, g]);
      });
    });
  }

  test(`[${backend}] the differentiable path's H·v equals finite differences of the float64 host gradient`, async () => {
    // Two padded samples with a repeated label, small enough for a quick check.
    const B = 2; const T = 6; const C = 4;
    const logits = Float32Array.from({ length: B * T * C }, (_, i) => Math.sin(1.3 * i) * 1.5);
    const v = Float32Array.from({ length: B * T * C }, (_, i) => Math.cos(0.7 * i + 0.2));
    const tg = { targets: [1, 1, 2, 3, 0, 0], targetLengths: [3, 1], inputLengths: [6, 4] };
    const sumLoss = ([z]: tf.Tensor[]) => ctcLoss(z as tf.Tensor3D, tg, { impl: 'differentiable', reduction: 'sum' }) as tf.Scalar;
    const x = tf.tensor3d(logits, [B, T, C]);
    const vt = tf.tensor3d(v, [B, T, C]);
    const before = tf.memory().numTensors;
    const [hv] = hessianVectorProduct(sumLoss, [x], [vt]);
    const got = await hv.data();
    hv.dispose();
    assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
    // Reference: central differences (h = 1e-4) of the exact float64 host gradient along v.
    const h = 1e-4;
    const at = (s: number) => ctcHost(Float64Array.from(logits, (z, i) => z + s * v[i]), [B, T, C], tg, 0, true).grad!;
    const gp = at(h); const gm = at(-h);
    const want = Array.from(gp, (g, i) => (g - gm[i]) / (2 * h));
    assertNear(got, want, 1e-3, 1e-3, 'H·v');
    tf.dispose([x, vt]);
  });

  test(`[${backend}] the fast path refuses a second derivative with SGT_CTC_SECOND_ORDER`, () => {
    const x = tf.randomNormal([1, 5, 4], 0, 1, 'float32', 3) as tf.Tensor3D;
    const v = tf.onesLike(x);
    const tg = { targets: [1, 2], targetLengths: [2], inputLengths: [5] };
    assert.throws(
      () => hessianVectorProduct(([z]) => ctcLoss(z as tf.Tensor3D, tg, { reduction: 'sum' }) as tf.Scalar, [x], [v]),
      (e: Error) => /SGT_CTC_SECOND_ORDER/.test(e.message) && /differentiable/.test(e.message),
    );
    tf.dispose([x, v]);
  });

  test(`[${backend}] bad input names the sample and the value`, () => {
    const x = tf.zeros([2, 4, 3]) as tf.Tensor3D;
    const ok = { targets: [1, 2, 1, 0], targetLengths: [2, 1], inputLengths: [4, 4] };
    assert.throws(() => ctcLoss(x, { ...ok, targets: [1, 0, 1, 0] }), /SGT_DATA_INVALID: ctc: targets\[0\]\[1\] = 0 .*blank/);
    assert.throws(() => ctcLoss(x, { ...ok, targets: [1, 3, 1, 0] }), /targets\[0\]\[1\] = 3/);
    assert.throws(() => ctcLoss(x, { ...ok, inputLengths: [4, 5] }), /inputLengths\[1\] = 5 is outside \[0, T=4\]/);
    assert.throws(() => ctcLoss(x, { ...ok, targetLengths: [3, 1] }), /targetLengths\[0\] = 3 is outside \[0, S=2\]/);
    assert.throws(() => ctcLoss(x, { ...ok, inputLengths: [4] }), /inputLengths has 1 entries for a batch of 2/);
    assert.throws(() => ctcLoss(x, ok, { reduction: 'avg' as never }), /SGT_CONFIG_INVALID.*reduction "avg"/);
    x.dispose();
  });
});
