// worker/kernels/fused attention core, as nn/attention.ts calls it: output, gradient and entropy against the
// unfused composition, finite differences of the loss (gradient) and of the gradient (H·v), on every backend; and a
// whole block: fewer kernels than the composition, no tensor leaks.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as tf from '@tensorflow/tfjs';

import { countKernels } from '../../../../worker/kernels/count.js';
import { fusedOpsEnabled, setFusedOps } from '../../../../worker/kernels/fused/index.js';
import { setFusedKernels } from '../../../../worker/kernels/composite/index.js';
import { applyAttention, declareAttention } from '../../../../worker/nn/attention.js';
import { applyBlock, declareBlock } from '../../../../worker/nn/layers.js';
import { SpecBuilder } from '../../../../worker/nn/params.js';
import { Rng } from '../../../../worker/rng.js';
import { forEachBackend } from '../../../helpers/backends.js';
import { checkCase, randn, withFused, type Case } from '../../../helpers/fused.js';
import { assertClose } from '../../../helpers/numeric.js';

function attentionCase(qkv: 'joint' | 'separate', masks: boolean): Case {
  const b = new SpecBuilder();
  const ref = declareAttention(b, 'a', 6, 2, qkv, { reparam: 'sigma', gammaInit: 'one', initStd: 0.4 }, new Rng(5));
  const names = b.params.map((s) => s.name);
  const buffers = new Map(b.buffers.map((s) => [s.name, tf.tensor(s.init, s.shape)]));
  for (const t of buffers.values()) tf.keep(t);
  return {
    name: `attention (${qkv} q/k/v, σReparam${masks ? ', key mask, causal, τ = 0.5' : ''})`,
    params: (rng) => [...b.params.map((s) => (s.kind === 'gamma' ? tf.scalar(1.1) : randn(rng, s.shape, 0.4))), randn(rng, [2, 4, 6])],
    out: (ps) => {
      const x = ps[ps.length - 1] as tf.Tensor3D;
      const keyMask = masks ? tf.tensor2d([[1, 1, 1, 0], [1, 1, 1, 1]]) : undefined;
      const o = applyAttention(ref, new Map(names.map((n, i) => [n, ps[i]])), buffers, { x, temperature: masks ? 0.5 : 1, keyMask, causal: masks });
      return o.y;
    },
  };
}

const CASES: Case[] = [
  attentionCase('joint', false),
  attentionCase('separate', true),
];

forEachBackend((backend) => {
  for (const c of CASES) checkCase(c, backend);

  test(`[${backend}] attention entropy per head is the unfused one (key mask, causal, τ = 0.3)`, () => {
    const b = new SpecBuilder();
    const ref = declareAttention(b, 'a', 6, 3, 'joint', { reparam: 'none', gammaInit: 'one', initStd: 0.6 }, new Rng(2));
    const params = new Map(b.params.map((s) => [s.name, tf.tensor(s.init, s.shape)]));
    const x = randn(new Rng(9), [2, 5, 6]) as tf.Tensor3D;
    const keyMask = tf.tensor2d([[1, 1, 1, 1, 0], [1, 1, 0, 0, 0]]);
    for (const causal of [false, true]) {
      const run = (on: boolean) => withFused(on, () =>
        applyAttention(ref, params, new Map(), { x, temperature: 0.3, keyMask, causal }).entropy.dataSync().slice());
      assertClose(run(true), run(false), 1e-5, `entropy causal=${causal}`);
    }
  });

  test(`[${backend}] a σReparam block's forward + backward runs at most 70 % of the kernels of the composition`, async (t) => {
    const b = new SpecBuilder();
    const ref = declareBlock(b, 0, { dim: 8, heads: 2, mlpDim: 16, qkv: 'joint', norm: 'pre', depth: 2, dropPath: 0, linear: { reparam: 'sigma', gammaInit: 'one', initStd: 0.3 } }, new Rng(1));
    const ps = b.params.map((s) => tf.tensor(s.init, s.shape));
    const buffers = new Map(b.buffers.map((s) => [s.name, tf.tensor(s.init, s.shape)]));
    const x = randn(new Rng(2), [2, 5, 8]) as tf.Tensor3D;
    const step = () => tf.grads((...p: tf.Tensor[]) => tf.sum(applyBlock(ref, new Map(b.params.map((s, i) => [s.name, p[i]])), buffers, x,
      { temperature: 1, training: true, dropout: 0, attnDropout: 0, seed: 1 }).x))(ps);
    const count = async (on: boolean) => {
      const before = fusedOpsEnabled();
      setFusedOps(on);
      setFusedKernels(false); // against the plain composition (the fused layer kernels have their own test: composite.test.ts)
      try {
        return (await countKernels(step)).total;
      } finally {
        setFusedOps(before);
        setFusedKernels(true);
      }
    };
    const [fusedN, plainN] = [await count(true), await count(false)];
    t.diagnostic(`kernels: fused ${fusedN}, unfused ${plainN}`);
    assert.ok(fusedN <= 0.7 * plainN, `fused ${fusedN} vs unfused ${plainN}`);
    // No leaks: repeated fused backward passes leave the tensor count where it was.
    tf.dispose(step());
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) tf.dispose(step());
    assert.equal(tf.memory().numTensors, before);
  });
});
