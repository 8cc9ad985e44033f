// The LM's σReparam power step follows the trainer's powerIterations (issue 12): the first micro-batch of a step
// advances u/v, later ones (powerIterations 0) do not — otherwise ranks holding different numbers of micro-batches
// (the last, partial batch of an epoch) would end the step with different u/v and fail the replica check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../../worker/backend.js';
import { buildLm } from '../../../../worker/models/lm.js';
import { assertClose } from '../../../helpers/numeric.js';
import { EVAL, disposeBuilt, stackOptions, tensorsOf } from '../../../helpers/seq2seq.js';

test('lm: a training forward with powerIterations 0 keeps u/v (and equals the eval forward); with 1 it advances all of them', async () => {
  await initBackend('cpu');
  const b = tensorsOf(buildLm({ ...stackOptions(), variant: 'tiny', seed: 4 }), 0.2);
  const tokens = tf.tensor2d([[3, 4, 5, 6], [7, 8, 9, 10]], [2, 4], 'int32');
  const train = { ...EVAL, training: true };
  const r0 = b.model.forward(b.params, b.buffers, { tokens }, { ...train, powerIterations: 0 });
  const re = b.model.forward(b.params, b.buffers, { tokens }, EVAL);
  assert.equal(r0.bufferUpdates.size, 0);
  assertClose(await r0.outputs.logits!.data(), await re.outputs.logits!.data(), 1e-6, 'logits with stored u/v');
  const r1 = b.model.forward(b.params, b.buffers, { tokens }, { ...train, powerIterations: 1 });
  const sigma = b.model.linears.filter((l) => l.reparam !== 'none');
  assert.ok(sigma.length > 0);
  assert.deepEqual([...r1.bufferUpdates.keys()].sort(), sigma.flatMap((l) => [l.u!, l.v!]).sort());
  const u = sigma[0]!.u!;
  assert.ok(Math.max(...Array.from(await tf.sub(r1.bufferUpdates.get(u)!, b.buffers.get(u)!).abs().data())) > 0, 'u moved');
  for (const r of [r0, re, r1]) tf.dispose([...Object.values(r.outputs), ...r.entropy, ...r.maxTokenNorm, ...r.bufferUpdates.values()]);
  tokens.dispose();
  disposeBuilt(b);
});
