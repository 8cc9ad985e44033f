// Checks for the fused ops (worker/kernels/fused): value and gradient against the unfused composition, gradient
// against finite differences of the loss, H·v against finite differences of the gradient.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as tf from '@tensorflow/tfjs';

import { gradient, hessianVectorProduct } from '../../worker/diagnostics/hvp.js';
import { fusedOpsEnabled, setFusedOps } from '../../worker/kernels/fused/index.js';
import { setFusedKernels } from '../../worker/kernels/composite/index.js';
import { Rng } from '../../worker/rng.js';
import { assertClose, relErr } from './numeric.js';

export function randn(rng: Rng, shape: number[], scale = 1): tf.Tensor {
  return tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => scale * rng.normal32()), shape);
}

/**
 * Runs fn with the fused ops on or off, inside a scope; returns plain data. The fused layer kernels
 * (kernels/composite, on by default) are off meanwhile: "off" is the plain tfjs composition.
 */
export function withFused<T>(on: boolean, fn: () => T): T {
  const before = fusedOpsEnabled();
  setFusedOps(on);
  try {
    return withKernels(false, fn);
  } finally {
    setFusedOps(before);
  }
}

/** Runs fn with the fused layer kernels (kernels/composite) on or off inside a scope; they are on again afterwards. */
export function withKernels<R>(on: boolean, fn: () => R): R {
  setFusedKernels(on);
  tf.engine().startScope();
  try {
    return fn();
  } finally {
    tf.engine().endScope();
    setFusedKernels(true);
  }
}

export const data = (ts: tf.Tensor[]): Float64Array => Float64Array.from(ts.flatMap((t) => Array.from(t.dataSync())));

/**
 * One op under test: `out(params)` is what nn/ computes (fused or not, by the switch); the loss is Σ out ⊙ R with a
 * fixed random R, so its Hessian is Σ R·∂²out and every second-order term of the op shows up in H·v.
 */
export interface Case {
  name: string;
  params: (rng: Rng) => tf.Tensor[];
  out: (ps: tf.Tensor[]) => tf.Tensor;
}

/** f(p + t·v), the loss along v. */
function lossAlong(c: Case, r: tf.Tensor, p: tf.Tensor[], v: tf.Tensor[], t: number): number {
  return tf.tidy(() => tf.sum(tf.mul(c.out(p.map((pi, i) => tf.add(pi, tf.mul(v[i], t)))), r)).dataSync()[0]);
}

/** Central differences with one Richardson step (error O(h⁴)) of a function of t at 0. */
export function richardson(f: (t: number) => number | Float64Array, h: number): Float64Array {
  const d = (s: number): Float64Array => {
    const a = f(s);
    const b = f(-s);
    const fa = typeof a === 'number' ? Float64Array.of(a) : a;
    const fb = typeof b === 'number' ? Float64Array.of(b) : b;
    return fa.map((x, i) => (x - fb[i]) / (2 * s));
  };
  const dh = d(h);
  return d(h / 2).map((x, i) => (4 * x - dh[i]) / 3);
}

export function checkCase(c: Case, backend: string): void {
  test(`[${backend}] ${c.name}: value and gradient equal the unfused composition's`, () => {
    const rng = new Rng(11);
    const p = c.params(rng);
    const r = randn(rng, c.out(p).shape);
    const loss = (ps: tf.Tensor[]): tf.Scalar => tf.sum(tf.mul(c.out(ps), r));
    const [yF, gF] = withFused(true, () => [c.out(p).dataSync().slice(), data(gradient(loss, p))]);
    const [yU, gU] = withFused(false, () => [c.out(p).dataSync().slice(), data(gradient(loss, p))]);
    assertClose(yF, yU, 1e-5, `${c.name} value`);
    assertClose(gF, gU, 1e-4, `${c.name} gradient`);
  });

  test(`[${backend}] ${c.name}: gradient and H·v match finite differences`, (t) => {
    const rng = new Rng(12);
    const p = c.params(rng);
    const r = randn(rng, c.out(p).shape);
    const v = p.map((pi) => randn(rng, pi.shape));
    const loss = (ps: tf.Tensor[]): tf.Scalar => tf.sum(tf.mul(c.out(ps), r));
    withFused(true, () => {
      const gv = data(gradient(loss, p)).reduce((s, g, i) => s + g * data(v)[i], 0);
      const fd = richardson((s) => lossAlong(c, r, p, v, s), 1e-2)[0];
      t.diagnostic(`∇f·v ${gv} vs finite differences ${fd}`);
      assert.ok(Math.abs(gv - fd) <= 2e-3 * Math.abs(fd) + 1e-3, `${c.name}: ∇f·v ${gv} vs ${fd}`);
      const hv = data(hessianVectorProduct(loss, p, v));
      const fdH = richardson((s) => withFused(true, () => data(gradient(loss, p.map((pi, i) => tf.add(pi, tf.mul(v[i], s)))))), 1e-2);
      const err = relErr(hv, fdH);
      t.diagnostic(`H·v relative error ${err.toExponential(2)} (‖H·v‖ ${Math.hypot(...fdH).toExponential(2)})`);
      assert.ok(err <= 2e-3, `${c.name}: H·v relative error ${err}`);
    });
  });
}

