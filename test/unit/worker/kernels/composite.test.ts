// worker/kernels/composite: the fused Transformer-layer kernels (issue 14). On every backend: a whole block's value,
// entropy, token norm, power step and every gradient are bitwise those of the unfused composition (the kernels run
// the same kernels inside); H·v through them matches finite differences of the gradient; a layer is ≤ 120 kernels;
// nothing leaks (tensors nor backend buffers).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as tf from '@tensorflow/tfjs';

import { gradient, hessianVectorProduct } from '../../../../worker/diagnostics/hvp.js';
import { fusedKernelsActive, setFusedKernels } from '../../../../worker/kernels/composite/index.js';
import { countKernels } from '../../../../worker/kernels/count.js';
import { applyAttention, declareAttention } from '../../../../worker/nn/attention.js';
import { applyBlock, declareBlock, type BlockRef, type NormMode } from '../../../../worker/nn/layers.js';
import { powerStep, type ReparamMode } from '../../../../worker/nn/linear.js';
import { SpecBuilder } from '../../../../worker/nn/params.js';
import { AdamW } from '../../../../worker/optim/adamw.js';
import { loadConfig } from '../../../../shared/config/index.js';
import { LocalCollective } from '../../../../worker/comm/collective.js';
import { ClassifyTask } from '../../../../worker/tasks/classify.js';
import { Trainer } from '../../../../worker/train/trainer.js';
import { Rng } from '../../../../worker/rng.js';
import { forEachBackend } from '../../../helpers/backends.js';
import { randn, richardson, withKernels } from '../../../helpers/fused.js';
import { assertClose, relErr } from '../../../helpers/numeric.js';

const B = 3, T = 5, DIM = 16, HEADS = 2, MLP = 32;


/** Elements that differ in their bits (NaN = NaN), per tensor. */
function assertBitwise(got: Float32Array[], want: Float32Array[], what: string[]): void {
  assert.equal(got.length, want.length);
  got.forEach((g, i) => {
    assert.equal(g.length, want[i].length, `${what[i]}: length`);
    let diff = 0;
    let worst = 0;
    for (let j = 0; j < g.length; j++) {
      if (Object.is(g[j], want[i][j]) || (Number.isNaN(g[j]) && Number.isNaN(want[i][j]))) continue;
      diff++;
      worst = Math.max(worst, Math.abs(g[j] - want[i][j]));
    }
    assert.equal(diff, 0, `${what[i]}: ${diff} of ${g.length} elements differ from the unfused path (largest |diff| ${worst})`);
  });
}

interface BlockCase {
  ref: BlockRef;
  names: string[];
  params: tf.Tensor[];
  buffers: Map<string, tf.Tensor>;
  x: tf.Tensor3D;
  r: tf.Tensor;
}

function blockCase(reparam: ReparamMode, norm: NormMode, seed: number): BlockCase {
  const b = new SpecBuilder();
  const ref = declareBlock(b, 0, {
    dim: DIM, heads: HEADS, mlpDim: MLP, qkv: 'joint', norm, depth: 4, dropPath: 0,
    linear: { reparam, gammaInit: 'one', initStd: 0.3 },
  }, new Rng(seed));
  const rng = new Rng(seed + 1);
  // γ ≠ 1 and norms ≠ (1, 0), so that every parameter's gradient path carries weight.
  const params = b.params.map((p) => tf.tensor(p.kind === 'weight' || p.kind === 'bias' ? p.init.map((v) => v + 0.05 * rng.normal32()) : p.init.map((v) => v + 0.2 * rng.normal32()), p.shape));
  const buffers = new Map(b.buffers.map((s) => [s.name, tf.tensor(s.init, s.shape)]));
  const x = randn(rng, [B, T, DIM]) as tf.Tensor3D;
  return { ref, names: b.params.map((p) => p.name), params, buffers, x, r: randn(rng, [B, T, DIM]) };
}

const OPTS = { temperature: 0.7, training: true, dropout: 0, attnDropout: 0, seed: 1 };

/** Power step of the block's σReparam linears, then the block: Σ out ⊙ R, entropy, token norm, u/v, gradients. */
function runBlock(c: BlockCase, params: tf.Tensor[] = c.params): Float32Array[] {
  const buffers = new Map(c.buffers);
  for (const [name, u] of c.buffers) {
    if (!name.endsWith('.u')) continue;
    const w = params[c.names.indexOf(name.replace(/\.u$/, '.weight'))] as tf.Tensor2D;
    const s = powerStep(w, u as tf.Tensor1D, 2);
    buffers.set(name, s.u);
    buffers.set(name.replace(/\.u$/, '.v'), s.v);
  }
  const diag: tf.Tensor[] = [];
  const { value, grads } = tf.valueAndGrads((...ps: tf.Tensor[]) => {
    const out = applyBlock(c.ref, new Map(c.names.map((n, i) => [n, ps[i]])), buffers, c.x, OPTS);
    diag.push(tf.keep(out.entropy), tf.keep(out.maxTokenNorm));
    return tf.sum(tf.mul(out.x, c.r)) as tf.Scalar;
  })(params);
  const bufs = [...buffers.entries()].filter(([n]) => !c.buffers.has(n) || buffers.get(n) !== c.buffers.get(n)).map(([, t]) => t);
  const out = [value, ...diag, ...grads, ...bufs].map((t) => t.dataSync().slice() as Float32Array);
  tf.dispose(diag);
  return out;
}

const labels = (c: BlockCase): string[] => ['loss', 'entropy', 'max token norm', ...c.names.map((n) => `d ${n}`), 'u, v'];

forEachBackend((backend) => {
  test(`[${backend}] σReparam block without LN: value, entropy, token norm, u/v and every gradient are the unfused path's bits`, () => {
    const c = blockCase('sigma', 'none', 5);
    assert.ok(fusedKernelsActive(), 'the fused kernels are registered and on by default');
    assertBitwise(withKernels(true, () => runBlock(c)), withKernels(false, () => runBlock(c)), labels(c));
  });

  // With LayerNorm the input's gradient sums LN's two terms before adding the residual's (autodiff: one at a time),
  // so gradients upstream of an LN differ in rounding only; values, entropy and u/v stay bitwise.
  for (const [reparam, norm] of [['sigma', 'pre'], ['none', 'pre'], ['none', 'post']] as const) {
    test(`[${backend}] ${reparam === 'sigma' ? 'σReparam' : 'plain'} ${norm}-LN block: values bitwise, gradients within rounding of the unfused path`, () => {
      const c = blockCase(reparam, norm, 5);
      const fusedOut = withKernels(true, () => runBlock(c));
      const plainOut = withKernels(false, () => runBlock(c));
      const what = labels(c);
      const grads = (xs: Float32Array[]) => xs.slice(3, 3 + c.names.length);
      assertBitwise([...fusedOut.slice(0, 3), ...fusedOut.slice(3 + c.names.length)], [...plainOut.slice(0, 3), ...plainOut.slice(3 + c.names.length)],
        [...what.slice(0, 3), ...what.slice(3 + c.names.length)]);
      grads(fusedOut).forEach((g, i) => assertClose(g, grads(plainOut)[i], 1e-5, what[3 + i]));
    });
  }

  test(`[${backend}] masked and cross attention (causal + key mask, separate q/k/v): value, entropy and gradients are the unfused path's bits`, () => {
    const rng = new Rng(31);
    const b = new SpecBuilder();
    const self = declareAttention(b, 'self', DIM, HEADS, 'joint', { reparam: 'sigma', gammaInit: 'one', initStd: 0.3 }, new Rng(2));
    const cross = declareAttention(b, 'cross', DIM, HEADS, 'separate', { reparam: 'none', gammaInit: 'one', initStd: 0.3 }, new Rng(3));
    const names = b.params.map((p) => p.name);
    const params = b.params.map((p) => tf.tensor(p.init, p.shape));
    const buffers = new Map(b.buffers.map((s) => [s.name, tf.tensor(s.init, s.shape)]));
    const x = randn(rng, [B, T, DIM]) as tf.Tensor3D;
    const ctx = randn(rng, [B, T + 2, DIM]) as tf.Tensor3D;
    const keyMask = tf.tensor2d([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]]);
    const ctxMask = tf.tensor2d([[1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0, 0]]);
    const r = randn(rng, [B, T, DIM]);
    const run = (): Float32Array[] => {
      const ents: tf.Tensor[] = [];
      const { value, grads } = tf.valueAndGrads((...ps: tf.Tensor[]) => {
        const p = new Map(names.map((n, i) => [n, ps[i]]));
        const a = applyAttention(self, p, buffers, { x, causal: true, keyMask, temperature: 1 });
        const c = applyAttention(cross, p, buffers, { x: a.y, context: ctx, keyMask: ctxMask, queryMask: keyMask, temperature: 2 });
        ents.push(tf.keep(a.entropy), tf.keep(c.entropy));
        return tf.sum(tf.mul(c.y, r)) as tf.Scalar;
      })(params);
      const out = [value, ...ents, ...grads].map((t) => t.dataSync().slice() as Float32Array);
      tf.dispose(ents);
      return out;
    };
    assertBitwise(withKernels(true, run), withKernels(false, run), ['loss', 'self entropy', 'cross entropy', ...names.map((n) => `d ${n}`)]);
  });

  for (const norm of ['none', 'pre'] as const) test(`[${backend}] σReparam ${norm}-LN block: gradient and H·v through the fused kernels match finite differences`, (t) => {
    const c = blockCase('sigma', norm, 9);
    const rng = new Rng(40);
    const v = c.params.map((p) => randn(rng, p.shape));
    // u, v fixed (one power step from the stored ones, as a training step takes them): the loss is smooth in θ.
    const loss = (ps: tf.Tensor[]): tf.Scalar => tf.sum(tf.mul(applyBlock(c.ref, new Map(c.names.map((n, i) => [n, ps[i]])), c.buffers, c.x, OPTS).x, c.r)) as tf.Scalar;
    const data = (ts: tf.Tensor[]): Float64Array => Float64Array.from(ts.flatMap((x) => Array.from(x.dataSync())));
    withKernels(true, () => {
      const g = data(gradient(loss, c.params));
      const gv = g.reduce((s, gi, i) => s + gi * data(v)[i], 0);
      const along = (s: number): number => tf.tidy(() => loss(c.params.map((p, i) => tf.add(p, tf.mul(v[i], s)))).dataSync()[0]);
      const fd = richardson(along, 1e-2)[0];
      t.diagnostic(`∇f·v ${gv} vs finite differences ${fd}`);
      assert.ok(Math.abs(gv - fd) <= 2e-3 * Math.abs(fd) + 1e-3, `∇f·v ${gv} vs ${fd}`);
      const hv = data(hessianVectorProduct(loss, c.params, v));
      const fdH = richardson((s) => {
        tf.engine().startScope();
        try {
          return data(gradient(loss, c.params.map((p, i) => tf.add(p, tf.mul(v[i], s)))));
        } finally {
          tf.engine().endScope();
        }
      }, 1e-2);
      const err = relErr(hv, fdH);
      t.diagnostic(`H·v relative error ${err.toExponential(2)} (‖H·v‖ ${Math.hypot(...fdH).toExponential(2)})`);
      assert.ok(err <= 2e-3, `H·v relative error ${err}`);
      const hvPlain = withKernels(false, () => data(hessianVectorProduct(loss, c.params, v)));
      assert.ok(relErr(hv, hvPlain) <= 1e-4, `H·v fused vs unfused: relative difference ${relErr(hv, hvPlain)}`);
    });
  });

  for (const [reparam, norm] of [['sigma', 'none'], ['none', 'pre']] as const) test(`[${backend}] one ${reparam === 'sigma' ? 'σReparam' : 'plain pre-LN'} layer (power step, forward, backward) is ≤ 120 kernels, and nothing leaks`, async () => {
    const c = blockCase(reparam, norm, 5);
    const layer = () => tf.tidy(() => runBlockTensors(c));
    const count = async (on: boolean): Promise<number> => {
      setFusedKernels(on);
      try {
        return (await countKernels(layer)).total;
      } finally {
        setFusedKernels(true);
      }
    };
    const fusedCount = await count(true);
    const plainCount = await count(false);
    assert.ok(fusedCount <= 120, `fused: ${fusedCount} kernels per layer`);
    assert.ok(fusedCount * 4 <= plainCount, `fused ${fusedCount} vs unfused ${plainCount} kernels: expected ≥ 4× fewer`);
    tf.dispose(layer());
    const before = { tensors: tf.memory().numTensors, buffers: tf.engine().backend.numDataIds() };
    for (let i = 0; i < 3; i++) tf.dispose(layer());
    assert.deepEqual({ tensors: tf.memory().numTensors, buffers: tf.engine().backend.numDataIds() }, before, 'tensors or backend buffers leaked');
  });
});

forEachBackend((backend) => {
  test(`[${backend}] AdamW as one kernel per tensor: parameters and moments after 3 steps are the composition's bits`, () => {
    const run = (on: boolean): Float32Array[] => withKernels(on, () => {
      const rng = new Rng(50);
      const params = new Map([['w', tf.variable(randn(rng, [7, 5]))], ['gamma', tf.variable(tf.scalar(1.1))]]);
      const opt = new AdamW({ beta1: 0.9, beta2: 0.999, eps: 1e-8, groups: (n) => ({ lrScale: n === 'gamma' ? 0.5 : 1, weightDecay: n === 'w' ? 0.05 : 0, excludeFromAdaptation: false }) });
      for (let s = 0; s < 3; s++) opt.step(params, new Map([['w', randn(rng, [7, 5])], ['gamma', randn(rng, [])]]), 1e-2);
      const slots = (opt as unknown as { slots: Map<string, Map<string, tf.Tensor>> }).slots;
      return [...params.values(), ...[...slots.values()].flatMap((m) => [...m.values()])].map((t) => t.dataSync().slice() as Float32Array);
    });
    const fusedOut = run(true);
    assert.equal(fusedOut.length, 6);
    assertBitwise(fusedOut, run(false), ['w', 'gamma', 'm/w', 'm/gamma', 'v/w', 'v/gamma']);
  });
});

forEachBackend((backend) => {
  test(`[${backend}] two AdamW training steps of a σReparam ViT without LN: parameters, u/v and loss are the unfused path's bits`, async () => {
    const rng = new Rng(60);
    const batch = {
      x: Float32Array.from({ length: 4 * 8 * 8 * 3 }, () => rng.normal32()), y: Int32Array.from({ length: 4 }, (_, i) => i % 3),
      samples: 4, units: 4, skipped: [],
    };
    const run = async (on: boolean): Promise<Float32Array[]> => {
      setFusedKernels(on);
      const config = loadConfig({
        env: {},
        overrides: {
          backend, model: { family: 'vit', vit: { variant: 'test/4', imageSize: 8, pool: 'cls' }, reparam: 'sigma', norm: 'none' },
          data: { shapes: { numClasses: 3 } }, train: { globalBatch: 4 }, optim: { name: 'adamw', lr: 1e-2 },
        },
      });
      const trainer = new Trainer(config, new ClassifyTask(config), { totalSteps: 3 });
      try {
        const losses: number[] = [];
        for (let s = 0; s < 2; s++) losses.push((await trainer.trainStep(batch, new LocalCollective())).loss);
        const state = [...trainer.state.params.values(), ...trainer.state.buffers.values()].map((t) => t.dataSync().slice() as Float32Array);
        return [Float32Array.from(losses), ...state];
      } finally {
        trainer.dispose();
        setFusedKernels(true);
      }
    };
    const fusedOut = await run(true);
    const plainOut = await run(false);
    assertBitwise(fusedOut, plainOut, fusedOut.map((_, i) => (i === 0 ? 'losses' : `state tensor ${i - 1}`)));
  });
});

/** runBlock without the read-back: what one layer's step dispatches. */
function runBlockTensors(c: BlockCase): tf.Tensor[] {
  const buffers = new Map(c.buffers);
  for (const [name, u] of c.buffers) {
    if (!name.endsWith('.u')) continue;
    const s = powerStep(c.params[c.names.indexOf(name.replace(/\.u$/, '.weight'))] as tf.Tensor2D, u as tf.Tensor1D, 1);
    buffers.set(name, s.u);
    buffers.set(name.replace(/\.u$/, '.v'), s.v);
  }
  const { grads } = tf.valueAndGrads((...ps: tf.Tensor[]) =>
    tf.sum(tf.mul(applyBlock(c.ref, new Map(c.names.map((n, i) => [n, ps[i]])), buffers, c.x, OPTS).x, c.r)) as tf.Scalar)(c.params);
  return grads;
}
