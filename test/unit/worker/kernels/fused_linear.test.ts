// worker/kernels/fused plain and σReparam linears, as nn/linear.ts calls them: against the unfused composition,
// finite differences of the loss (gradient) and of the gradient (H·v), on every backend.

import { test } from 'node:test';

import * as tf from '@tensorflow/tfjs';

import { applyLinear, declareLinear, powerStep, type LinearRef } from '../../../../worker/nn/linear.js';
import { SpecBuilder } from '../../../../worker/nn/params.js';
import { Rng } from '../../../../worker/rng.js';
import { forEachBackend } from '../../../helpers/backends.js';
import { checkCase, randn, withFused, type Case } from '../../../helpers/fused.js';
import { assertClose } from '../../../helpers/numeric.js';

/** A plain or σReparam linear [in → out] with its u, v after one power step. */
function linearCase(reparam: 'none' | 'sigma', bias: boolean): Case {
  const b = new SpecBuilder();
  const ref: LinearRef = declareLinear(b, 'l', { inFeatures: 4, outFeatures: 3, bias, reparam, gammaInit: 'one', initStd: 0.5 }, new Rng(3));
  const names = b.params.map((s) => s.name);
  const buffers = new Map<string, tf.Tensor>();
  return {
    name: `${reparam === 'sigma' ? 'σReparam' : 'plain'} linear${bias ? ' with bias' : ''}`,
    params: (rng) => {
      const ps = b.params.map((s) => (s.name === 'l.gamma' ? tf.scalar(1.3) : randn(rng, s.shape, 0.5)));
      if (reparam === 'sigma') {
        const { u, v } = powerStep(ps[0] as tf.Tensor2D, tf.tensor1d(b.buffers[0].init), 3);
        buffers.set('l.u', u);
        buffers.set('l.v', v);
      }
      return [...ps, randn(rng, [2, 5, 4])];
    },
    out: (ps) => applyLinear(ref, new Map(names.map((n, i) => [n, ps[i]])), buffers, ps[ps.length - 1]),
  };
}

const CASES: Case[] = [
  linearCase('none', true),
  linearCase('none', false),
  linearCase('sigma', true),
  linearCase('sigma', false),
];

forEachBackend((backend) => {
  for (const c of CASES) checkCase(c, backend);
});

// Regression (issue 14): at these sizes wasm's patched BatchMatMul sent the weight gradient's outer product u·vᵀ
// (inner dimension 1) to XNNPACK, which returned NaN there; the small tests above stay under its size threshold.
forEachBackend((backend) => {
  test(`[${backend}] σReparam linear 256×64→96: value and gradient equal the unfused composition's`, () => {
    const rng = new Rng(21);
    const b = new SpecBuilder();
    const ref = declareLinear(b, 'l', { inFeatures: 64, outFeatures: 96, reparam: 'sigma', gammaInit: 'one', initStd: 0.05 }, new Rng(3));
    const names = b.params.map((s) => s.name);
    const ps = [...b.params.map((s) => (s.name === 'l.gamma' ? tf.scalar(1.2) : randn(rng, s.shape, 0.05))), randn(rng, [256, 64])];
    const buffers = new Map(b.buffers.map((s) => [s.name, tf.tensor(s.init, s.shape)]));
    const r = randn(rng, [256, 96]);
    const f = (...p: tf.Tensor[]): tf.Scalar => tf.sum(tf.mul(applyLinear(ref, new Map(names.map((n, i) => [n, p[i]])), buffers, p[p.length - 1]), r));
    for (let rep = 0; rep < 2; rep++) {
      const fusedG = withFused(true, () => tf.grads(f)(ps).map((g) => g.dataSync().slice()));
      const plainG = withFused(false, () => tf.grads(f)(ps).map((g) => g.dataSync().slice()));
      fusedG.forEach((g, i) => assertClose(g, plainG[i], 1e-4, `gradient ${names[i] ?? 'x'} (pass ${rep})`));
    }
  });
});
