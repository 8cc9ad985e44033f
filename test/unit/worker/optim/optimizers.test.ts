// worker/optim: each optimizer's first three steps against float64 updates written from the formulas (weight decay,
// Nesterov, LARS exclusion of biases/γ, LAMB trust ratio, Adagrad accumulator, lrScale groups), on cpu and wasm.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as tf from '@tensorflow/tfjs';

import { forEachBackend } from '../../../helpers/backends.js';
import type { ParamKind } from '../../../../worker/nn/params.js';
import { createOptimizer, type OptimizerSpec } from '../../../../worker/optim/index.js';

/** A variable holding `values` (the initial tensor is freed: the variable keeps its own reference). */
function vari(values: ArrayLike<number>, shape?: number[]): tf.Variable {
  const t = tf.tensor(Array.from(values), shape);
  const v = tf.variable(t);
  t.dispose();
  return v;
}

const f = Math.fround;
const KIND: Record<string, ParamKind> = { w: 'weight', b: 'bias', g: 'gamma', pos: 'embed' };
const SHAPE: Record<string, number[]> = { w: [2, 2], b: [2], g: [1], pos: [3] };
const INIT: Record<string, number[]> = { w: [0.5, -1.25, 2.0, 0.75], b: [0.1, -0.2], g: [1.0], pos: [0.3, -0.6, 0.2] };
/** Gradients of steps 1, 2, 3. */
const GRADS: Record<string, number[]>[] = [
  { w: [0.2, -0.4, 0.1, 0.3], b: [0.05, -0.1], g: [0.3], pos: [0.01, 0.02, -0.03] },
  { w: [-0.1, 0.25, 0.35, -0.2], b: [-0.02, 0.04], g: [-0.1], pos: [-0.02, 0.05, 0.01] },
  { w: [0.15, 0.05, -0.3, 0.12], b: [0.03, 0.01], g: [0.2], pos: [0.04, -0.01, 0.02] },
];
const LRS = [0.1, 0.05, 0.02];

// ---- float64 references, one per optimizer, written from the update rules; state per parameter name ----
type Vec = number[];
/** What each parameter gets in a case: weight decay, lr multiplier, adapted (LARS/LAMB trust ratio) or not. */
type Groups = Record<string, { wd: number; scale: number; adapt: boolean }>;
type Ref = (name: string, p: Vec, g: Vec, lr: number, t: number, grp: Groups[string]) => Vec;
const norm = (x: Vec) => Math.sqrt(x.reduce((a, v) => a + v * v, 0));

function sgdRef(mu: number, nesterov: boolean): Ref {
  const buf = new Map<string, Vec>();
  return (name, p, g, lr, _t, { wd }) => {
    const d = g.map((gi, i) => gi + wd * p[i]);
    if (mu === 0) return p.map((pi, i) => pi - lr * d[i]);
    const b = buf.has(name) ? buf.get(name)!.map((bi, i) => mu * bi + d[i]) : d.slice(); // PyTorch: b₁ = d
    buf.set(name, b);
    const dir = nesterov ? d.map((di, i) => di + mu * b[i]) : b;
    return p.map((pi, i) => pi - lr * dir[i]);
  };
}

function adamwRef(b1: number, b2: number, eps: number): Ref {
  const m = new Map<string, Vec>();
  const v = new Map<string, Vec>();
  return (name, p, g, lr, t, { wd }) => {
    const m1 = g.map((gi, i) => b1 * (m.get(name)?.[i] ?? 0) + (1 - b1) * gi);
    const v1 = g.map((gi, i) => b2 * (v.get(name)?.[i] ?? 0) + (1 - b2) * gi * gi);
    m.set(name, m1);
    v.set(name, v1);
    return p.map((pi, i) => pi * (1 - lr * wd) - (lr * (m1[i] / (1 - b1 ** t))) / (Math.sqrt(v1[i] / (1 - b2 ** t)) + eps));
  };
}

function larsRef(mu: number, nesterov: boolean, eta: number, eps: number): Ref {
  const buf = new Map<string, Vec>();
  return (name, p, g, lr, _t, { wd, adapt }) => {
    let d = g.map((gi, i) => gi + wd * p[i]);
    if (adapt) {
      const wn = norm(p);
      const gn = norm(g);
      const r = wn > 0 && gn > 0 ? (eta * wn) / (gn + wd * wn + eps) : 1;
      d = d.map((x) => x * r);
    }
    const b = buf.has(name) ? buf.get(name)!.map((bi, i) => mu * bi + d[i]) : d.slice();
    buf.set(name, b);
    const dir = nesterov ? d.map((di, i) => di + mu * b[i]) : b;
    return p.map((pi, i) => pi - lr * dir[i]);
  };
}

function lambRef(b1: number, b2: number, eps: number): Ref {
  const m = new Map<string, Vec>();
  const v = new Map<string, Vec>();
  return (name, p, g, lr, t, { wd, adapt }) => {
    const m1 = g.map((gi, i) => b1 * (m.get(name)?.[i] ?? 0) + (1 - b1) * gi);
    const v1 = g.map((gi, i) => b2 * (v.get(name)?.[i] ?? 0) + (1 - b2) * gi * gi);
    m.set(name, m1);
    v.set(name, v1);
    const u = p.map((pi, i) => m1[i] / (1 - b1 ** t) / (Math.sqrt(v1[i] / (1 - b2 ** t)) + eps) + wd * pi);
    const wn = norm(p);
    const un = norm(u);
    const r = adapt && wn > 0 && un > 0 ? wn / un : 1;
    return p.map((pi, i) => pi - lr * r * u[i]);
  };
}

function adagradRef(s0: number, eps: number): Ref {
  const acc = new Map<string, Vec>();
  return (name, p, g, lr, _t, { wd }) => {
    const d = g.map((gi, i) => gi + wd * p[i]);
    const s = d.map((di, i) => (acc.get(name)?.[i] ?? s0) + di * di); // PyTorch: state_sum starts at s₀
    acc.set(name, s);
    return p.map((pi, i) => pi - (lr * d[i]) / (Math.sqrt(s[i]) + eps));
  };
}

// ---- the cases: spec → reference and the groups the spec should produce ----
const plain = { wd: 0, scale: 1, adapt: false };
interface Case { label: string; spec: OptimizerSpec; ref: () => Ref; groups: Groups }
const CASES: Case[] = [
  {
    label: 'sgd momentum 0.9, L2 wd 0.01 on weights, γ lr ×5',
    spec: { name: 'sgd', momentum: 0.9, weightDecay: 0.01, gammaLrScale: 5 },
    ref: () => sgdRef(0.9, false),
    groups: { w: { ...plain, wd: 0.01 }, b: plain, g: { ...plain, scale: 5 }, pos: plain },
  },
  {
    label: 'sgd Nesterov 0.8, wd 0.05 on weights and embeddings',
    spec: { name: 'sgd', momentum: 0.8, nesterov: true, weightDecay: 0.05, decayKinds: ['weight', 'embed'] },
    ref: () => sgdRef(0.8, true),
    groups: { w: { ...plain, wd: 0.05 }, b: plain, g: plain, pos: { ...plain, wd: 0.05 } },
  },
  {
    label: 'sgd without momentum',
    spec: { name: 'sgd' },
    ref: () => sgdRef(0, false),
    groups: { w: plain, b: plain, g: plain, pos: plain },
  },
  {
    label: 'adamw wd 0.05, γ lr ×10',
    spec: { name: 'adamw', beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.05, gammaLrScale: 10 },
    ref: () => adamwRef(0.9, 0.999, 1e-8),
    groups: { w: { ...plain, wd: 0.05 }, b: plain, g: { ...plain, scale: 10 }, pos: plain },
  },
  {
    label: 'lars η 0.02, wd 0.01: biases and γ excluded from adaptation and decay, embeddings adapted',
    spec: { name: 'lars', momentum: 0.9, trustCoefficient: 0.02, weightDecay: 0.01, eps: 1e-8, gammaLrScale: 2 },
    ref: () => larsRef(0.9, false, 0.02, 1e-8),
    groups: { w: { wd: 0.01, scale: 1, adapt: true }, b: plain, g: { ...plain, scale: 2 }, pos: { ...plain, adapt: true } },
  },
  {
    label: 'lars Nesterov, nothing excluded (biases and γ adapted and decayed)',
    spec: { name: 'lars', momentum: 0.5, nesterov: true, trustCoefficient: 0.1, weightDecay: 0.02, decayKinds: ['weight', 'bias', 'gamma'], lars: { excludeKinds: [] } },
    ref: () => larsRef(0.5, true, 0.1, 1e-8),
    groups: { w: { wd: 0.02, scale: 1, adapt: true }, b: { wd: 0.02, scale: 1, adapt: true }, g: { wd: 0.02, scale: 1, adapt: true }, pos: { ...plain, adapt: true } },
  },
  {
    label: 'lamb wd 0.01: trust ratio ‖w‖/‖u‖ on weights and embeddings, biases and γ plain',
    spec: { name: 'lamb', beta1: 0.9, beta2: 0.99, eps: 1e-6, weightDecay: 0.01 },
    ref: () => lambRef(0.9, 0.99, 1e-6),
    groups: { w: { wd: 0.01, scale: 1, adapt: true }, b: plain, g: plain, pos: { ...plain, adapt: true } },
  },
  {
    label: 'adagrad initial accumulator 0.1, L2 wd 0.01, γ lr ×3',
    spec: { name: 'adagrad', initialAccumulator: 0.1, eps: 1e-10, weightDecay: 0.01, gammaLrScale: 3 },
    ref: () => adagradRef(0.1, 1e-10),
    groups: { w: { ...plain, wd: 0.01 }, b: plain, g: { ...plain, scale: 3 }, pos: plain },
  },
];

function makeParams(): Map<string, tf.Variable> {
  return new Map(Object.keys(INIT).map((n) => [n, vari(INIT[n], SHAPE[n])]));
}

function gradsOf(step: number): Map<string, tf.Tensor> {
  return new Map(Object.entries(GRADS[step]).map(([n, g]) => [n, tf.tensor(g, SHAPE[n])]));
}

forEachBackend((backend) => {
  for (const c of CASES) {
    test(`[${backend}] ${c.label}: 3 steps within 1e-6 of the float64 rule`, () => {
      const opt = createOptimizer(c.spec, (n) => KIND[n]);
      const params = makeParams();
      const ref = c.ref();
      // The reference sees what the optimizer sees: float32 inputs.
      const want: Record<string, Vec> = Object.fromEntries(Object.entries(INIT).map(([n, v]) => [n, v.map(f)]));
      for (let s = 0; s < 3; s++) {
        const grads = gradsOf(s);
        opt.step(params, grads, LRS[s]);
        for (const t of grads.values()) t.dispose();
        for (const n of Object.keys(INIT)) {
          const grp = c.groups[n];
          want[n] = ref(n, want[n], GRADS[s][n].map(f), LRS[s] * grp.scale, s + 1, grp);
          const got = params.get(n)!.dataSync();
          for (let i = 0; i < got.length; i++) {
            assert.ok(Math.abs(got[i] - want[n][i]) <= 1e-6,
              `${c.spec.name} step ${s + 1} ${n}[${i}]: got ${got[i]}, want ${want[n][i]} (moved ${INIT[n][i] - want[n][i]} so far)`);
          }
        }
      }
      opt.dispose();
      for (const p of params.values()) p.dispose();
    });
  }
});

test('by hand: sgd Nesterov (μ 0.9, wd 0.1, lr 0.1) on w = 1: 0.886, then 0.773066', async () => {
  // step 1: d = 0.5 + 0.1·1 = 0.6; b = 0.6; d + μb = 1.14; w = 1 − 0.114 = 0.886
  // step 2: d = 0.25 + 0.1·0.886 = 0.3386; b = 0.9·0.6 + 0.3386 = 0.8786; d + μb = 1.12934; w = 0.886 − 0.112934
  await tf.setBackend('cpu');
  const opt = createOptimizer({ name: 'sgd', momentum: 0.9, nesterov: true, weightDecay: 0.1 }, () => 'weight');
  const w = new Map([['w', vari([1])]]);
  const steps = [[0.5, 0.886], [0.25, 0.773066]];
  for (const [g, want] of steps) {
    const grads = new Map([['w', tf.tensor([g])]]);
    opt.step(w, grads, 0.1);
    grads.get('w')!.dispose();
    assert.ok(Math.abs(w.get('w')!.dataSync()[0] - want) < 1e-6, `${w.get('w')!.dataSync()[0]} vs ${want}`);
  }
  opt.dispose();
  w.get('w')!.dispose();
});

test('by hand: lars trust ratio η‖w‖/(‖g‖ + wd‖w‖) on w = (3, 4), g = (0.6, 0.8); the bias takes plain SGD', async () => {
  // ‖w‖ = 5, ‖g‖ = 1, η = 0.01, wd = 0.1: r = 0.05/1.5 = 1/30; d = (g + 0.1w)·r = (0.9, 1.2)/30 = (0.03, 0.04);
  // w ← w − 1·d = (2.97, 3.96). The bias: no decay, no ratio: b ← (1, 1) − (0.5, −0.5) = (0.5, 1.5).
  await tf.setBackend('cpu');
  const opt = createOptimizer({ name: 'lars', trustCoefficient: 0.01, weightDecay: 0.1, eps: 0 },
    (n) => (n === 'w' ? 'weight' : 'bias'));
  const params = new Map([['w', vari([3, 4])], ['b', vari([1, 1])]]);
  const grads = new Map([['w', tf.tensor([0.6, 0.8])], ['b', tf.tensor([0.5, -0.5])]]);
  opt.step(params, grads, 1);
  const w = params.get('w')!.dataSync();
  const b = params.get('b')!.dataSync();
  assert.ok(Math.abs(w[0] - 2.97) < 1e-6 && Math.abs(w[1] - 3.96) < 1e-6, `w = ${w}`);
  assert.deepEqual([...b], [0.5, 1.5]);
  opt.dispose();
  for (const t of [...params.values(), ...grads.values()]) t.dispose();
});

test('by hand: lamb step 1 on w = (3, 4), g = (1, −2), wd 0.1: u = (1.3, −0.6), w ← w − lr·(5/‖u‖)·u', async () => {
  // Step 1: m̂ = g, v̂ = g², so m̂/(√v̂ + ε) = sign(g) (ε = 1e-12); u = (1, −1) + 0.1·(3, 4) = (1.3, −0.6);
  // ‖u‖ = √2.05; r = 5/√2.05 ≈ 3.4922; lr 0.01: w = (3 − 0.045399, 4 + 0.020953).
  await tf.setBackend('cpu');
  const opt = createOptimizer({ name: 'lamb', eps: 1e-12, weightDecay: 0.1 }, () => 'weight');
  const params = new Map([['w', vari([3, 4])]]);
  const grads = new Map([['w', tf.tensor([1, -2])]]);
  opt.step(params, grads, 0.01);
  const r = 5 / Math.sqrt(2.05);
  const w = params.get('w')!.dataSync();
  assert.ok(Math.abs(w[0] - (3 - 0.01 * r * 1.3)) < 1e-6 && Math.abs(w[1] - (4 + 0.01 * r * 0.6)) < 1e-6, `w = ${w}`);
  opt.dispose();
  for (const t of [...params.values(), ...grads.values()]) t.dispose();
});

test('by hand: adagrad with initial accumulator 1: w ← w − lr·g/√(1 + g²)', async () => {
  // g = 0.75: s = 1 + 0.5625 = 1.5625 = 1.25²; w = 2 − 0.5·0.75/1.25 = 1.7. Then g = 1: s = 2.5625; w = 1.7 − 0.5/1.600781.
  await tf.setBackend('cpu');
  const opt = createOptimizer({ name: 'adagrad', initialAccumulator: 1, eps: 1e-10 }, () => 'weight');
  const params = new Map([['w', vari([2])]]);
  for (const [g, want] of [[0.75, 1.7], [1, 1.7 - 0.5 / Math.sqrt(2.5625)]]) {
    const grads = new Map([['w', tf.tensor([g])]]);
    opt.step(params, grads, 0.5);
    grads.get('w')!.dispose();
    assert.ok(Math.abs(params.get('w')!.dataSync()[0] - want) < 1e-6, `${params.get('w')!.dataSync()[0]} vs ${want}`);
  }
  // The slot holds Σg² without s₀ (an absent slot means zeros, as for every optimizer).
  assert.ok(Math.abs((await opt.getState()).slots.get('s/w')![0] - 1.5625) < 1e-7);
  opt.dispose();
  params.get('w')!.dispose();
});
