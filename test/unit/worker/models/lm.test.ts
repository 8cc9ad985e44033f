// Decoder-only LM: variants, causality (a position's logits ignore later tokens), padding, cached = full forward.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../../worker/backend.js';
import { buildLm, decodeLmVariant } from '../../../../worker/models/lm.js';
import { SigmaError } from '../../../../shared/errors.js';
import { assertClose } from '../../../helpers/numeric.js';
import { EVAL, disposeBuilt, stackOptions, tensorsOf } from '../../../helpers/seq2seq.js';

const lm = (over = {}) => tensorsOf(buildLm({ ...stackOptions(), variant: 'tiny', seed: 4, ...over }), 0.2);

test('LM variants: width names, <M>L at d512 (the paper\'s 32-layer LM), <width>-<M>L; unknown is SGT_MODEL_VARIANT', () => {
  assert.deepEqual(decodeLmVariant('32L'), { dim: 512, heads: 8, ffn: 2048, layers: 6, decoderLayers: 32 });
  assert.equal(decodeLmVariant('tiny-5L').decoderLayers, 5);
  assert.throws(() => decodeLmVariant('6L-6L'), (e: unknown) => e instanceof SigmaError && e.code === 'SGT_MODEL_VARIANT');
});

test('LM: causal (changing later tokens leaves earlier logits unchanged), one causal site per layer, padding-invariant', async () => {
  await initBackend('cpu');
  const b = lm({ norm: 'pre' });
  assert.deepEqual(b.model.attentionSites.map((s) => [s.kind, s.layer]), [['causal', 0], ['causal', 1]]);
  const before = tf.memory().numTensors;
  const run = (rows: number[][], lengths?: number[]) => tf.tidy(() => b.model.forward(b.params, b.buffers, {
    tokens: tf.tensor2d(rows, undefined, 'int32'), ...(lengths ? { lengths: tf.tensor1d(lengths, 'int32') } : {}),
  }, EVAL).outputs['logits']);
  const a = run([[3, 4, 5, 6, 7]]);
  const c = run([[3, 4, 5, 11, 12]]);
  const p = run([[3, 4, 5, 0, 0], [8, 9, 10, 11, 12]], [3, 5]);
  const first3 = (t: tf.Tensor) => tf.tidy(() => tf.slice(t, [0, 0, 0], [1, 3, 13]));
  const [fa, fc, fp] = [first3(a), first3(c), first3(p)];
  assertClose(await fc.data(), await fa.data(), 1e-5, 'later tokens changed');
  assertClose(await fp.data(), await fa.data(), 1e-5, 'padded in a batch');
  tf.dispose([a, c, p, fa, fc, fp]);
  assert.equal(tf.memory().numTensors, before);
  disposeBuilt(b);
});

test('LM: cached incremental decoding gives the full forward\'s log-probabilities', async () => {
  await initBackend('wasm');
  for (const norm of ['post', 'deepnorm'] as const) {
    const b = lm({ norm, qkv: 'joint' });
    const rows = [[1, 3, 4, 5, 6, 7], [1, 8, 9, 10, 11, 12]];
    const full = tf.tidy(() => tf.logSoftmax(b.model.forward(b.params, b.buffers, { tokens: tf.tensor2d(rows, undefined, 'int32') }, EVAL).outputs['logits']));
    let { decoder, cache } = b.model.incremental(b.params, b.buffers);
    const steps: tf.Tensor[] = [];
    for (let t = 0; t < 6; t++) {
      const tok = tf.tensor1d([rows[0][t], rows[1][t]], 'int32');
      const r = decoder.step(cache, tok);
      tf.dispose([tok, ...decoder.tensors(cache)]);
      cache = r.cache;
      steps.push(r.logProbs.reshape([2, 1, 13]));
      r.logProbs.dispose();
    }
    const inc = tf.concat(steps, 1);
    assertClose(await inc.data(), await full.data(), 2e-5, `${norm}: cached vs full`);
    tf.dispose([inc, full, ...steps, ...decoder.tensors(cache)]);
    disposeBuilt(b);
  }
});
