// worker/diagnostics/hvp.ts: H·v of a small attention + cross-entropy model against central finite differences of
// its gradient, on every backend that loads; the same check fails with stock tfjs gradients; no tensor leaks.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import * as tf from '@tensorflow/tfjs';

import { initBackend, type BackendName } from '../../../worker/backend.js';
import { gradient, hessianVectorProduct } from '../../../worker/diagnostics/hvp.js';
import {
  SAVED_OUTPUT_KERNELS, installGradientPatches, restoreStockGradients, sparseSoftmaxCrossEntropy,
} from '../../../worker/kernels/index.js';

const HAS_TENSORFLOW = await initBackend('tensorflow').then(() => true, () => false);
const BACKENDS: BackendName[] = HAS_TENSORFLOW ? ['cpu', 'wasm', 'tensorflow'] : ['cpu', 'wasm'];

/** mulberry32 + Box–Muller: identical data on every backend. */
function randn(n: number, seed: number, scale: number): Float32Array {
  let a = seed >>> 0;
  const r = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return Float32Array.from({ length: n },
    () => scale * Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r()));
}

// The model: tokens X [B=2, T=4, d=6]; one head; Q,K,V,O [6,6]; mean-pool over T; classifier [6,3] + bias [3].
const B = 2;
const T = 4;
const D = 6;
const C = 3;
const SHAPES: number[][] = [[D, D], [D, D], [D, D], [D, D], [D, C], [C]]; // Wq Wk Wv Wo Wc bc
const LABELS = [0, 2];

type CE = (logits: tf.Tensor2D, labels: tf.Tensor1D) => tf.Tensor1D;
const tfjsCrossEntropy: CE = (logits, labels) => tf.losses.softmaxCrossEntropy(
  tf.cast(tf.oneHot(labels, C), 'float32'), logits, undefined, undefined, tf.Reduction.NONE) as tf.Tensor1D;

function attentionLoss(crossEntropy: CE = sparseSoftmaxCrossEntropy): (p: tf.Tensor[]) => tf.Scalar {
  return ([wq, wk, wv, wo, wc, bc]) => {
    const x = tf.tensor(randn(B * T * D, 1, 1), [B, T, D]);
    const q = tf.matMul(x, wq); // [B,T,D]
    const k = tf.matMul(x, wk);
    const v = tf.matMul(x, wv);
    const att = tf.softmax(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(D))); // [B,T,T]
    const o = tf.matMul(tf.matMul(att, v), wo); // [B,T,D]
    const logits = tf.add(tf.matMul(tf.mean(o, 1), wc), bc) as tf.Tensor2D; // [B,C]
    return tf.mean(crossEntropy(logits, tf.tensor1d(LABELS, 'int32')));
  };
}

const params = (): tf.Tensor[] => SHAPES.map((s, i) =>
  tf.tensor(randn(s.reduce((p, d) => p * d, 1), 10 + i, i === 5 ? 0.1 : 0.6), s));
const direction = (): tf.Tensor[] => SHAPES.map((s, i) => tf.tensor(randn(s.reduce((p, d) => p * d, 1), 20 + i, 1), s));

/** Like tf.tidy for plain results (tidy is typed for tensors and walks returned arrays element by element). */
function scoped<T>(fn: () => T): T {
  tf.engine().startScope();
  try {
    return fn();
  } finally {
    tf.engine().endScope();
  }
}

const flat = (ts: tf.Tensor[]): Float64Array => Float64Array.from(ts.flatMap((t) => Array.from(t.dataSync())));
const norm = (a: Float64Array): number => Math.sqrt(a.reduce((s, v) => s + v * v, 0));

/** Central differences of the gradient along v with one Richardson step (error O(h⁴)); h = 1e-2. */
function fdHessianVector(loss: (p: tf.Tensor[]) => tf.Scalar, p: tf.Tensor[], v: tf.Tensor[], h = 1e-2): Float64Array {
  const gradAt = (t: number): Float64Array =>
    scoped(() => flat(gradient(loss, p.map((pi, i) => tf.add(pi, tf.mul(v[i], t))))));
  const d = (s: number): Float64Array => {
    const gp = gradAt(s);
    const gm = gradAt(-s);
    return gp.map((x, i) => (x - gm[i]) / (2 * s));
  };
  const dh = d(h);
  return d(h / 2).map((x, i) => (4 * x - dh[i]) / 3);
}

/** ‖H·v − FD‖ / ‖FD‖ for the attention model */
function relativeHvpError(crossEntropy?: CE): number {
  return scoped(() => {
    const loss = attentionLoss(crossEntropy);
    const p = params();
    const v = direction();
    const hv = flat(hessianVectorProduct(loss, p, v));
    const fd = fdHessianVector(loss, p, v);
    return norm(hv.map((x, i) => x - fd[i])) / norm(fd);
  });
}

describe('hessianVectorProduct', () => {
  for (const backend of BACKENDS) {
    test(`${backend}: attention + cross-entropy H·v matches finite differences (rel. error ≤ 1e-3)`, async (t) => {
      await initBackend(backend);
      const err = relativeHvpError();
      t.diagnostic(`relative error ${err.toExponential(2)}`);
      assert.ok(err <= 1e-3, `relative error ${err.toExponential(2)}`);
    });
  }

  test('the check can fail: with the stock saved-output gradients (Softmax...) H·v is wrong', async (t) => {
    await initBackend('cpu');
    restoreStockGradients(SAVED_OUTPUT_KERNELS); // keep our BatchMatMul gradient: stock cannot do x[B,T,D]·W at all
    try {
      const err = relativeHvpError();
      t.diagnostic(`relative error with the stock saved-output gradients: ${err.toExponential(2)}`);
      assert.ok(err > 1e-2, `relative error ${err}`);
      restoreStockGradients();
      assert.throws(() => relativeHvpError(), /shape/, 'stock BatchMatMul gradient and x[B,T,D]·W[D,D]');
    } finally {
      installGradientPatches();
    }
  });

  test('tf.losses.softmaxCrossEntropy (a customGrad op) still loses second-order terms: use sparseSoftmaxCrossEntropy',
    async (t) => {
      await initBackend('cpu');
      const err = relativeHvpError(tfjsCrossEntropy);
      t.diagnostic(`relative error ${err.toExponential(2)}`);
      assert.ok(err > 1e-2, `relative error ${err}: if tfjs fixed this, ops.ts can say so`);
    });

  test('gradient() matches finite differences of the loss', async () => {
    await initBackend('cpu');
    scoped(() => {
      const loss = attentionLoss();
      const p = params();
      const v = direction();
      const gv = flat(gradient(loss, p)).reduce((s, g, i) => s + g * flat(v)[i], 0);
      const at = (t: number): number => loss(p.map((pi, i) => tf.add(pi, tf.mul(v[i], t)))).dataSync()[0];
      const h = 1e-2;
      const fd = (4 * (at(h / 2) - at(-h / 2)) / h - (at(h) - at(-h)) / (2 * h)) / 3;
      assert.ok(Math.abs(gv - fd) <= 1e-3 * Math.abs(fd) + 1e-5, `∇f·v ${gv} vs ${fd}`);
    });
  });

  for (const backend of BACKENDS) {
    test(`${backend}: repeated H·v calls do not grow tf.memory().numTensors`, async () => {
      await initBackend(backend);
      const p = params();
      const v = direction();
      const loss = attentionLoss();
      tf.dispose(hessianVectorProduct(loss, p, v)); // warm-up
      const before = tf.memory().numTensors;
      for (let i = 0; i < 5; i++) tf.dispose(hessianVectorProduct(loss, p, v));
      assert.equal(tf.memory().numTensors, before);
      tf.dispose([...p, ...v]);
    });
  }

  test('params the loss ignores get a zero H·v; mismatched vectors are rejected', async () => {
    await initBackend('cpu');
    scoped(() => {
      const [a, unused] = [tf.tensor1d([0.3, -0.2]), tf.tensor1d([1, 2, 3])];
      const loss = ([x]: tf.Tensor[]): tf.Scalar => tf.sum(tf.exp(x));
      const [ha, hu] = hessianVectorProduct(loss, [a, unused], [tf.ones([2]), tf.ones([3])]);
      assert.deepEqual(Array.from(hu.dataSync()), [0, 0, 0]);
      Array.from(ha.dataSync()).forEach((h, i) => assert.ok(Math.abs(h - Math.exp([0.3, -0.2][i])) < 1e-6));
      assert.throws(() => hessianVectorProduct(loss, [a], [tf.ones([3])]), /shape/);
      assert.throws(() => hessianVectorProduct(loss, [a], []), /1 params/);
    });
  });
});
