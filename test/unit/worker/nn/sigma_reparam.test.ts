// σReparam linear against the PyTorch reference vectors (test/fixtures), case by case, on every backend.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { powerStep, spectralSigma, applyLinear, type LinearRef } from '../../../../worker/nn/linear.js';
import { topSingular } from '../../../../worker/nn/spectral.js';
import { forEachBackend } from '../../../helpers/backends.js';
import { assertClose, flat } from '../../../helpers/numeric.js';

interface Case {
  out_features: number;
  in_features: number;
  batch: number;
  weight: number[][];
  bias: number[];
  gamma: number;
  u0: number[];
  x: number[][];
  grad_y: number[][];
  expected: Record<string, number | number[] | number[][]>;
}

const fixture = JSON.parse(readFileSync(new URL('../../../../../test/fixtures/sigma_reparam_vectors.json', import.meta.url), 'utf8')) as { cases: Case[] };

/** PyTorch [out][in] → our [in, out]. */
function toOurs(w: number[][]): tf.Tensor2D {
  return tf.tensor2d(w).transpose() as tf.Tensor2D;
}

test('the fixture holds cases', () => {
  assert.ok(fixture.cases.length > 0);
});

forEachBackend((backend) => {
  for (const [i, c] of fixture.cases.entries()) {
    test(`[${backend}] reference case ${i}: ${c.out_features}x${c.in_features}, batch ${c.batch}, γ=${c.gamma}`, () => {
      const e = c.expected;
      const ref: LinearRef = { name: 'l', weight: 'w', bias: 'b', gamma: 'g', u: 'u', v: 'v', inFeatures: c.in_features, outFeatures: c.out_features, reparam: 'sigma' };
      tf.tidy(() => {
        const w = toOurs(c.weight);
        const { u, v } = powerStep(w, tf.tensor1d(c.u0), 1);
        assertClose(u.dataSync(), flat(e.u1), 1e-4, 'u1');
        assertClose(v.dataSync(), flat(e.v), 1e-4, 'v');
        assertClose(spectralSigma(w, u, v).dataSync(), [e.sigma as number], 1e-4, 'sigma');
        const buffers = new Map([['u', u], ['v', v]]);
        const gy = tf.tensor2d(c.grad_y);
        const f = (W: tf.Tensor, b: tf.Tensor, g: tf.Tensor, x: tf.Tensor) =>
          tf.sum(tf.mul(applyLinear(ref, new Map([['w', W], ['b', b], ['g', g]]), buffers, x), gy));
        const args = [w, tf.tensor1d(c.bias), tf.scalar(c.gamma), tf.tensor2d(c.x)];
        const y = applyLinear(ref, new Map([['w', args[0]], ['b', args[1]], ['g', args[2]]]), buffers, args[3]);
        assertClose(y.dataSync(), flat(e.y), 1e-4, 'y');
        const [gW, gB, gG, gX] = tf.grads(f as (...a: tf.Tensor[]) => tf.Tensor)(args);
        assertClose(gW.transpose().dataSync(), flat(e.grad_weight), 1e-4, 'grad_weight');
        assertClose(gB.dataSync(), flat(e.grad_bias), 1e-4, 'grad_bias');
        assertClose(gG.dataSync(), [e.grad_gamma as number], 1e-4, 'grad_gamma');
        assertClose(gX.dataSync(), flat(e.grad_x), 1e-4, 'grad_x');
      });
    });

    test(`[${backend}] case ${i}: repeated power steps converge to the top singular value`, () => {
      const top = c.expected.true_top_singular_value as number;
      tf.tidy(() => {
        const w = toOurs(c.weight);
        let u: tf.Tensor1D = tf.tensor1d(c.u0);
        let v: tf.Tensor1D = u;
        for (let k = 0; k < 40; k++) {
          const r = powerStep(w, u, 50);
          u = r.u;
          v = r.v;
        }
        const sigma = spectralSigma(w, u, v).dataSync()[0];
        assert.ok(sigma <= top * (1 + 1e-5), `σ ${sigma} exceeds the top singular value ${top}`);
        assert.ok(Math.abs(sigma - top) <= 1e-4 * top, `σ after 2000 steps ${sigma} vs top singular value ${top}`);
      });
    });
  }
});

test('topSingular (float64, host) finds the top singular value of every fixture weight', () => {
  for (const c of fixture.cases) {
    const w = Float64Array.from(c.weight.flat());
    const { sigma } = topSingular(w, c.out_features, c.in_features, c.u0, 100000, 1e-15);
    const top = c.expected.true_top_singular_value as number;
    assert.ok(Math.abs(sigma - top) <= 1e-8 * top, `${sigma} vs ${top}`);
  }
});
