// worker/optim: resuming from getState/setState (through one flat Float32Array) continues bitwise identically, no
// tensor leaks over steps, AdamW's numerics are those of the pre-refactor class, and bad specs/states are refused.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as tf from '@tensorflow/tfjs';

import { forEachBackend } from '../../../helpers/backends.js';
import type { ParamKind } from '../../../../worker/nn/params.js';
import {
  createOptimizer, paramGroups, type Optimizer, type OptimizerSpec, type OptimizerState,
} from '../../../../worker/optim/index.js';

/** A variable holding `values` (the initial tensor is freed: the variable keeps its own reference). */
function vari(values: ArrayLike<number>, shape?: number[]): tf.Variable {
  const t = tf.tensor(Array.from(values), shape);
  const v = tf.variable(t);
  t.dispose();
  return v;
}

const KIND: Record<string, ParamKind> = { 'blocks.0/w': 'weight', 'blocks.0/b': 'bias', gamma: 'gamma', ln: 'norm' };
const SHAPES = new Map<string, number[]>([['blocks.0/w', [3, 4]], ['blocks.0/b', [4]], ['gamma', [1]], ['ln', [4]]]);
const kindOf = (n: string): ParamKind => KIND[n];

const SPECS: OptimizerSpec[] = [
  { name: 'sgd', momentum: 0.9, nesterov: true, weightDecay: 0.01 },
  { name: 'adamw', weightDecay: 0.05, gammaLrScale: 4 },
  { name: 'lars', momentum: 0.9, trustCoefficient: 0.01, weightDecay: 0.001 },
  { name: 'lamb', weightDecay: 0.01 },
  { name: 'adagrad', initialAccumulator: 0.1, weightDecay: 0.001 },
];

/** Deterministic pseudo-random values (an LCG): the same on every call with the same seed. */
function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  });
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

function params(seed = 1): Map<string, tf.Variable> {
  return new Map([...SHAPES].map(([n, s], i) => [n, vari(values(size(s), seed + i), s)]));
}

function gradsAt(step: number): Map<string, tf.Tensor> {
  return new Map([...SHAPES].map(([n, s], i) => [n, tf.tensor(values(size(s), 1000 * step + i), s)]));
}

function stepN(opt: Optimizer, p: Map<string, tf.Variable>, from: number, n: number): void {
  for (let s = from; s < from + n; s++) {
    const g = gradsAt(s);
    opt.step(p, g, 0.01 * (1 + (s % 3)));
    for (const t of g.values()) t.dispose();
  }
}

const bits = (a: Float32Array | Uint8Array | Int32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** The state through one flat Float32Array and back (what a checkpoint or the ring broadcast does; no JSON). */
function roundTrip(s: OptimizerState): OptimizerState {
  const keys = [...s.slots.keys()];
  const total = keys.reduce((a, k) => a + s.slots.get(k)!.length, 0);
  const flat = new Float32Array(total + 1);
  let o = 0;
  for (const k of keys) {
    flat.set(s.slots.get(k)!, o);
    o += s.slots.get(k)!.length;
  }
  flat[o] = s.step;
  const slots = new Map<string, Float32Array>();
  o = 0;
  for (const k of keys) {
    const n = s.slots.get(k)!.length;
    slots.set(k, flat.slice(o, o + n));
    o += n;
  }
  return { step: flat[o], slots };
}

forEachBackend((backend) => {
  for (const spec of SPECS) {
    test(`[${backend}] ${spec.name}: 3 steps, state round trip into a fresh optimizer, 2 more steps on both: identical bits`, async () => {
      const a = createOptimizer(spec, kindOf);
      const pa = params();
      stepN(a, pa, 0, 3);
      const saved = roundTrip((await a.getState()));
      assert.equal(saved.step, 3);
      assert.deepEqual([...saved.slots.keys()].sort(),
        a.slotNames.flatMap((s) => [...SHAPES.keys()].map((n) => `${s}/${n}`)).sort());

      const b = createOptimizer(spec, kindOf);
      const pb = new Map([...pa].map(([n, v]) => [n, vari(v.dataSync(), v.shape)]));
      b.setState(saved, SHAPES);
      stepN(a, pa, 3, 2);
      stepN(b, pb, 3, 2);
      for (const n of SHAPES.keys()) {
        assert.ok(bits(pa.get(n)!.dataSync() as Float32Array).equals(bits(pb.get(n)!.dataSync() as Float32Array)), `${spec.name}: ${n} differs after resume`);
      }
      const sa = (await a.getState());
      const sb = (await b.getState());
      assert.equal(sa.step, 5);
      assert.equal(sb.step, 5);
      for (const [k, v] of sa.slots) assert.ok(bits(v).equals(bits(sb.slots.get(k)!)), `${spec.name}: slot ${k} differs after resume`);
      for (const o of [a, b]) o.dispose();
      for (const v of [...pa.values(), ...pb.values()]) v.dispose();
    });

    test(`[${backend}] ${spec.name}: tf.memory().numTensors constant over steps; dispose frees the slots`, async () => {
      const before = tf.memory().numTensors;
      const opt = createOptimizer(spec, kindOf);
      const p = params();
      stepN(opt, p, 0, 1);
      const afterFirst = tf.memory().numTensors;
      assert.equal(afterFirst, before + SHAPES.size * (1 + opt.slotNames.length));
      for (let s = 1; s < 5; s++) {
        stepN(opt, p, s, 1);
        assert.equal(tf.memory().numTensors, afterFirst, `${spec.name}: tensors after step ${s + 1}`);
      }
      opt.setState((await opt.getState()), SHAPES);
      assert.equal(tf.memory().numTensors, afterFirst, 'setState replaces, not adds');
      opt.dispose();
      for (const v of p.values()) v.dispose();
      assert.equal(tf.memory().numTensors, before);
    });
  }
});

/** The AdamW step as it was before the refactor onto SlotOptimizer (worker/optim/adamw.ts at b588da3). */
class LegacyAdamW {
  private t = 0;
  readonly m = new Map<string, tf.Tensor>();
  readonly v = new Map<string, tf.Tensor>();
  constructor(private readonly o: { beta1: number; beta2: number; eps: number; weightDecay: number; decays: (n: string) => boolean; lrScale?: (n: string) => number }) {}
  step(params: ReadonlyMap<string, tf.Variable>, grads: ReadonlyMap<string, tf.Tensor>, lr: number): void {
    this.t += 1;
    const { beta1, beta2, eps } = this.o;
    const bc1 = 1 - Math.pow(beta1, this.t);
    const bc2 = 1 - Math.pow(beta2, this.t);
    for (const [name, p] of params) {
      const g = grads.get(name)!;
      const wd = this.o.decays(name) ? this.o.weightDecay : 0;
      const plr = lr * (this.o.lrScale?.(name) ?? 1);
      const [m, v, next] = tf.tidy(() => {
        const m0 = this.m.get(name) ?? tf.zerosLike(p);
        const v0 = this.v.get(name) ?? tf.zerosLike(p);
        const m1 = tf.add(tf.mul(m0, beta1), tf.mul(g, 1 - beta1));
        const v1 = tf.add(tf.mul(v0, beta2), tf.mul(tf.square(g), 1 - beta2));
        const decayed = wd > 0 ? tf.mul(p, 1 - plr * wd) : p;
        const denom = tf.add(tf.div(tf.sqrt(v1), Math.sqrt(bc2)), eps);
        const upd = tf.sub(decayed, tf.mul(tf.div(m1, denom), plr / bc1));
        return [m1, v1, upd];
      });
      this.m.get(name)?.dispose();
      this.v.get(name)?.dispose();
      this.m.set(name, m);
      this.v.set(name, v);
      p.assign(next);
      next.dispose();
    }
  }
}

test('createOptimizer\'s AdamW gives the same bits as the pre-refactor class (weight decay and γ lr scale by group)', async () => {
  await tf.setBackend('cpu');
  const o = {
    beta1: 0.9, beta2: 0.98, eps: 1e-8, weightDecay: 0.05,
    decays: (n: string) => KIND[n] === 'weight',
    lrScale: (n: string) => (KIND[n] === 'gamma' ? 4 : 1),
  };
  const legacy = new LegacyAdamW(o);
  const viaSpec = createOptimizer({ name: 'adamw', beta1: 0.9, beta2: 0.98, eps: 1e-8, weightDecay: 0.05, gammaLrScale: 4 }, kindOf);
  const [pl, ps] = [params(), params()];
  for (let s = 0; s < 4; s++) {
    const g = gradsAt(s);
    legacy.step(pl, g, 0.01);
    viaSpec.step(ps, g, 0.01);
    for (const t of g.values()) t.dispose();
  }
  for (const n of SHAPES.keys()) {
    const want = bits(pl.get(n)!.dataSync() as Float32Array);
    assert.ok(bits(ps.get(n)!.dataSync() as Float32Array).equals(want), `createOptimizer adamw ${n}`);
    assert.ok(bits((await viaSpec.getState()).slots.get(`m/${n}`)!).equals(bits(legacy.m.get(n)!.dataSync() as Float32Array)));
    assert.ok(bits((await viaSpec.getState()).slots.get(`v/${n}`)!).equals(bits(legacy.v.get(n)!.dataSync() as Float32Array)));
  }
  for (const m of [legacy.m, legacy.v]) for (const t of m.values()) t.dispose();
  viaSpec.dispose();
  for (const v of [...pl.values(), ...ps.values()]) v.dispose();
});

test('setState refuses another optimizer\'s slots, unknown parameters and wrong sizes, and keeps its state', async () => {
  await tf.setBackend('cpu');
  const adam = createOptimizer({ name: 'adamw' }, kindOf);
  const sgd = createOptimizer({ name: 'sgd', momentum: 0.9 }, kindOf);
  const p = params();
  stepN(adam, p, 0, 1);
  stepN(sgd, p, 0, 1);
  const kept = (await sgd.getState());
  const adamState = await adam.getState();
  const n0 = tf.memory().numTensors;
  assert.throws(() => sgd.setState(adamState, SHAPES), /SGT_CHECKPOINT_INVALID.*slot "v".*another optimizer/);
  assert.throws(() => sgd.setState({ step: 1, slots: new Map([['m/nope', new Float32Array(4)]]) }, SHAPES), /unknown parameter nope/);
  assert.throws(() => sgd.setState({ step: 1, slots: new Map([['m/ln', new Float32Array(3)]]) }, SHAPES), /m\/ln has 3 values.*needs 4/);
  assert.throws(() => sgd.setState({ step: 1.5, slots: new Map() }, SHAPES), /step 1.5/);
  assert.equal(tf.memory().numTensors, n0, 'a refused state leaks nothing');
  const now = (await sgd.getState());
  assert.equal(now.step, kept.step);
  for (const [k, v] of kept.slots) assert.ok(bits(v).equals(bits(now.slots.get(k)!)));
  adam.dispose();
  sgd.dispose();
  for (const v of p.values()) v.dispose();
});

test('createOptimizer validates the spec once: unknown keys, NaN, ranges, kinds, Nesterov without momentum', () => {
  const bad: [unknown, RegExp][] = [
    [{ name: 'rmsprop' }, /name = "rmsprop".*sgd, adamw, lars, lamb, adagrad/],
    [{ name: 'adamw', lr: 0.1 }, /lr = 0.1.*unknown key/],
    [{ name: 'adamw', beta1: NaN }, /beta1 = NaN/],
    [{ name: 'adamw', beta2: 1 }, /beta2 = 1.*\[0, 1\)/],
    [{ name: 'sgd', momentum: '0.9' }, /momentum = "0.9"/],
    [{ name: 'sgd', nesterov: true }, /nesterov = true.*momentum > 0/],
    [{ name: 'lars', lars: { excludeKinds: ['bias', 'head'] } }, /lars.excludeKinds.*unknown kind "head"/],
    [{ name: 'lamb', lamb: { exclude: [] } }, /lamb.exclude = .*unknown key/],
    [{ name: 'adagrad', eps: 0 }, /eps = 0.*> 0/],
    [{ name: 'adamw', weightDecay: -1 }, /weightDecay = -1/],
    [{ name: 'adamw', decayKinds: 'weight' }, /decayKinds = "weight"/],
  ];
  for (const [spec, re] of bad) {
    assert.throws(() => createOptimizer(spec as OptimizerSpec, kindOf), (e: Error) => /SGT_CONFIG_INVALID/.test(e.message) && re.test(e.message), JSON.stringify(spec));
  }
  const p = params();
  const g = gradsAt(0);
  assert.throws(() => createOptimizer({ name: 'adamw' }, () => 'head' as ParamKind).step(p, g, 0.1), /kind "head"/);
  for (const t of [...p.values(), ...g.values()]) t.dispose();
});

test('paramGroups: defaults by kind for lars (biases, γ, norms excluded) and adamw (decay on weights only)', () => {
  const lars = paramGroups({ name: 'lars', weightDecay: 0.1, gammaLrScale: 3 }, kindOf);
  assert.deepEqual(lars('blocks.0/w'), { lrScale: 1, weightDecay: 0.1, excludeFromAdaptation: false });
  assert.deepEqual(lars('blocks.0/b'), { lrScale: 1, weightDecay: 0, excludeFromAdaptation: true });
  assert.deepEqual(lars('gamma'), { lrScale: 3, weightDecay: 0, excludeFromAdaptation: true });
  assert.deepEqual(lars('ln'), { lrScale: 1, weightDecay: 0, excludeFromAdaptation: true });
  const adam = paramGroups({ name: 'adamw', weightDecay: 0.1 }, kindOf);
  assert.deepEqual(adam('blocks.0/w'), { lrScale: 1, weightDecay: 0.1, excludeFromAdaptation: false });
  assert.deepEqual(adam('ln'), { lrScale: 1, weightDecay: 0, excludeFromAdaptation: false });
  const onlyBias = paramGroups({ name: 'lamb', weightDecay: 0.1, decayKinds: ['weight', 'norm'], lamb: { excludeKinds: ['bias'] } }, kindOf);
  assert.deepEqual(onlyBias('ln'), { lrScale: 1, weightDecay: 0.1, excludeFromAdaptation: false });
  assert.deepEqual(onlyBias('blocks.0/b'), { lrScale: 1, weightDecay: 0, excludeFromAdaptation: true });
});

test('a step with a missing gradient throws naming it and changes nothing (no parameter, slot or step)', async () => {
  await tf.setBackend('cpu');
  const opt = createOptimizer({ name: 'lamb' }, kindOf);
  const p = params();
  stepN(opt, p, 0, 1);
  const before = [...p.values()].map((v) => (v.dataSync() as Float32Array).slice());
  const g = gradsAt(1);
  g.get('ln')!.dispose();
  g.delete('ln');
  assert.throws(() => opt.step(p, g, 0.1), /LAMB: no gradient for ln/);
  [...p.values()].forEach((v, i) => assert.ok(bits(v.dataSync() as Float32Array).equals(bits(before[i]))));
  assert.equal((await opt.getState()).step, 1);
  opt.dispose();
  for (const t of [...p.values(), ...g.values()]) t.dispose();
});
