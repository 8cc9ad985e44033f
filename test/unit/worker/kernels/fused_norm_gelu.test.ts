// worker/kernels/fused layernorm and GELU, as nn/layers.ts calls them: against the unfused composition, finite
// differences of the loss (gradient) and of the gradient (H·v), on every backend.

import * as tf from '@tensorflow/tfjs';

import { applyLayerNorm, gelu } from '../../../../worker/nn/layers.js';
import { forEachBackend } from '../../../helpers/backends.js';
import { checkCase, randn, type Case } from '../../../helpers/fused.js';

const CASES: Case[] = [
  {
    name: 'layernorm',
    params: (rng) => [randn(rng, [2, 3, 5]), tf.add(randn(rng, [5], 0.3), 1), randn(rng, [5], 0.3)],
    out: ([x, scale, shift]) => applyLayerNorm({ scale: 's', shift: 'b', dim: 5 }, new Map([['s', scale], ['b', shift]]), x),
  },
  { name: 'gelu', params: (rng) => [randn(rng, [4, 6], 1.5)], out: ([x]) => gelu(x) },
];

forEachBackend((backend) => {
  for (const c of CASES) checkCase(c, backend);
});
