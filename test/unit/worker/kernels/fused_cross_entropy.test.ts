// worker/kernels/fused softmax cross-entropy with label smoothing: against the training step's crossEntropySum,
// finite differences of the loss (gradient) and of the gradient (H·v), on every backend.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as tf from '@tensorflow/tfjs';

import { fusedOpsEnabled, softmaxCrossEntropySum } from '../../../../worker/kernels/fused/index.js';
import { logSoftmax } from '../../../../worker/kernels/ops.js';
import { crossEntropySum } from '../../../../worker/tasks/classify.js';
import { Rng } from '../../../../worker/rng.js';
import { forEachBackend } from '../../../helpers/backends.js';
import { checkCase, randn, type Case } from '../../../helpers/fused.js';
import { assertClose } from '../../../helpers/numeric.js';

const CASES: Case[] = [
  {
    name: 'softmax cross-entropy, label smoothing 0.1',
    params: (rng) => [randn(rng, [4, 5], 2)],
    // The unfused composition is the training step's crossEntropySum; the fused op is what it should call.
    out: ([z]) => {
      const labels = tf.tensor1d([0, 3, 4, 1], 'int32');
      const loss = fusedOpsEnabled() ? softmaxCrossEntropySum(z as tf.Tensor2D, labels, 0.1, logSoftmax) : crossEntropySum(z as tf.Tensor2D, labels, 0.1);
      return tf.reshape(loss, [1]);
    },
  },
];

forEachBackend((backend) => {
  for (const c of CASES) checkCase(c, backend);

  test(`[${backend}] softmax cross-entropy: value and gradient equal the step's crossEntropySum (smoothing 0 and 0.1)`, () => {
    const rng = new Rng(4);
    const z = randn(rng, [4, 5], 2);
    const labels = tf.tensor1d([0, 3, 4, 1], 'int32');
    for (const eps of [0, 0.1]) {
      const f = tf.valueAndGrad((x: tf.Tensor) => softmaxCrossEntropySum(x as tf.Tensor2D, labels, eps, logSoftmax));
      const u = tf.valueAndGrad((x: tf.Tensor) => crossEntropySum(x as tf.Tensor2D, labels, eps));
      const [a, b] = [f(z), u(z)];
      assertClose(a.value.dataSync(), b.value.dataSync(), 1e-5, `loss ε=${eps}`);
      assertClose(a.grad.dataSync(), b.grad.dataSync(), 1e-5, `gradient ε=${eps}`);
    }
    assert.throws(() => softmaxCrossEntropySum(z as tf.Tensor2D, labels, 1, logSoftmax), /label smoothing/);
  });

});
