// worker/backend.ts and worker/kernels: backend selection; every patched kernel against the cpu backend (or a
// reference); every re-registered gradient, first and second order, against central finite differences; the ops a
// Transformer needs, forward + backward + H·v, on every backend that loads here.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';

import * as tf from '@tensorflow/tfjs';

import { SigmaError } from '../../../shared/errors.js';
import { activeAdapter, describeAdapter, initBackend, isSoftwareAdapter, type BackendName } from '../../../worker/backend.js';
import { gradient, hessianVectorProduct } from '../../../worker/diagnostics/hvp.js';
import {
  GRADIENT_PATCHES, KERNEL_PATCHES, SAVED_OUTPUT_KERNELS, installGradientPatches, logSoftmax, restoreStockGradients,
  sparseSoftmaxCrossEntropy, stockKernel,
} from '../../../worker/kernels/index.js';

// ---------------------------------------------------------------------------------------------------------------
// Helpers: seeded data, comparisons, finite differences.

/** mulberry32: the same numbers on every backend and run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function randn(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = scale * Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
  return out;
}
/** Values in ±1.3 at least 0.1 away from the kinks the probes use (0, ±0.5, ±1, 0.2). */
function smoothPoints(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const kinks = [0, 0.5, -0.5, 1, -1, 0.2];
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let v: number;
    do v = (r() * 2 - 1) * 1.3; while (kinks.some((k) => Math.abs(v - k) < 0.1));
    out[i] = v;
  }
  return out;
}

/** Like tf.tidy for plain results (tidy is typed for tensors and walks returned arrays element by element). */
function scoped<T>(fn: () => T): T {
  tf.engine().startScope();
  try {
    return fn();
  } finally {
    tf.engine().endScope();
  }
}

const norm = (a: ArrayLike<number>): number => Math.sqrt(Array.from(a).reduce((s, v) => s + v * v, 0));
function diffNorm(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s);
}
/** max |a − b| ≤ rtol · max(1, max |b|) */
function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let scale = 1;
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    scale = Math.max(scale, Math.abs(expected[i]));
    const d = Math.abs(actual[i] - expected[i]);
    worst = Number.isNaN(d) ? Infinity : Math.max(worst, d);
  }
  assert.ok(worst <= rtol * scale, `${what}: max |diff| ${worst.toExponential(2)} > ${rtol} × ${scale.toFixed(3)}`);
}
/** ‖a − b‖ ≤ rtol · ‖b‖ + atol */
function assertNormClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, atol: number,
  what: string): void {
  const err = diffNorm(actual, expected);
  assert.ok(err <= rtol * norm(expected) + atol,
    `${what}: ‖diff‖ ${err.toExponential(2)} vs ‖expected‖ ${norm(expected).toExponential(2)} ` +
    `(got ${fmt(actual)}, expected ${fmt(expected)})`);
}
const fmt = (a: ArrayLike<number>): string => `[${Array.from(a).slice(0, 6).map((v) => v.toFixed(5)).join(', ')}${
  a.length > 6 ? ', …' : ''}]`;

/**
 * Central difference with one Richardson step: (4·D(h/2) − D(h))/3, error O(h⁴) instead of O(h²), so h can stay
 * large enough (1e-2) that float32 rounding of the evaluations (~6e-8·|f|/h) stays near 1e-5.
 */
function richardson(evalAt: (t: number) => Float64Array, h: number): Float64Array {
  const d = (s: number): Float64Array => {
    const p = evalAt(s);
    const m = evalAt(-s);
    return p.map((v, i) => (v - m[i]) / (2 * s));
  };
  const dh = d(h);
  const dh2 = d(h / 2);
  return dh2.map((v, i) => (4 * v - dh[i]) / 3);
}

type Probe = {
  name: string;
  x: () => tf.Tensor; // the point, float32
  f: (x: tf.Tensor) => tf.Scalar;
};

const read = (t: tf.Tensor): Float64Array => Float64Array.from(t.dataSync());

/** f(x + t·v) as a 1-vector */
function fAlong(p: Probe, x: tf.Tensor, v: tf.Tensor, t: number): Float64Array {
  return scoped(() => read(p.f(tf.add(x, tf.mul(v, t)))));
}
/** ∇f(x + t·v) */
function gradAlong(p: Probe, x: tf.Tensor, v: tf.Tensor, t: number): Float64Array {
  return scoped(() => {
    const xt = tf.add(x, tf.mul(v, t));
    const [g] = gradient(([z]) => p.f(z), [xt]);
    return read(g);
  });
}

/** First and second derivative of a probe along a direction, by autodiff and by finite differences. */
function checkProbe(p: Probe, seed: number, h = 1e-2): void {
  scoped(() => {
    const x = p.x();
    const v = tf.tensor(randn(x.size, seed), x.shape);
    const [g] = gradient(([z]) => p.f(z), [x]);
    const gv = tf.sum(tf.mul(g, v)).dataSync()[0];
    const fdGv = richardson((t) => fAlong(p, x, v, t), h)[0];
    assertNormClose([gv], [fdGv], 1e-3, 1e-4, `${p.name}: ∇f·v vs finite differences`);
    const [hv] = hessianVectorProduct(([z]) => p.f(z), [x], [v]);
    const fdHv = richardson((t) => gradAlong(p, x, v, t), h);
    assertNormClose(hv.dataSync(), fdHv, 1e-3, 1e-4, `${p.name}: H·v vs finite differences of ∇f`);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Backends under test: cpu and wasm always, tensorflow where tfjs-node(-gpu) loads.

const HAS_TENSORFLOW = await initBackend('tensorflow').then(() => true, () => false);
const BACKENDS: BackendName[] = HAS_TENSORFLOW ? ['cpu', 'wasm', 'tensorflow'] : ['cpu', 'wasm'];

async function use(backend: BackendName): Promise<void> {
  assert.equal(await initBackend(backend), backend);
}

// ---------------------------------------------------------------------------------------------------------------

describe('initBackend', () => {
  test('cpu and wasm activate, twice is fine, and the wasm patches are installed', async () => {
    for (const b of ['cpu', 'wasm', 'cpu', 'wasm'] as const) {
      assert.equal(await initBackend(b), b);
      assert.equal(tf.getBackend(), b);
    }
    const stock = stockKernel(tf.BatchMatMul, 'wasm');
    assert.ok(stock !== undefined, 'stock BatchMatMul was replaced');
    assert.notEqual(tf.getKernel(tf.BatchMatMul, 'wasm')?.kernelFunc, stock.kernelFunc);
    assert.ok(tf.getKernel(tf.UnsortedSegmentSum, 'wasm') !== undefined);
    for (const g of GRADIENT_PATCHES) assert.equal(tf.getGradient(g.kernelName), g, `${g.kernelName} gradient`);
  });

  test('tensorflow without tfjs-node says how to install it and suggests wasm', { skip: HAS_TENSORFLOW }, async () => {
    await assert.rejects(initBackend('tensorflow'), (err: unknown) => {
      assert.ok(err instanceof SigmaError);
      assert.equal(err.code, 'SGT_BACKEND_UNAVAILABLE');
      assert.match(err.message, /npm install @tensorflow\/tfjs-node-gpu@4\.22\.0/);
      assert.match(err.message, /backend: wasm/);
      assert.match(err.message, /tfjs-node-gpu: /); // why the import failed
      return true;
    });
  });

  test('webgpu runs on a hardware GPU adapter or says why not; it never takes a software adapter', async () => {
    try {
      assert.equal(await initBackend('webgpu'), 'webgpu');
      const adapter = activeAdapter();
      assert.ok(adapter !== undefined, 'the adapter webgpu runs on is known');
      assert.equal(isSoftwareAdapter(adapter), false, `software adapter taken: ${describeAdapter(adapter)}`);
    } catch (err) {
      assert.ok(err instanceof SigmaError, String(err));
      assert.equal(err.code, 'SGT_BACKEND_UNAVAILABLE');
      assert.match(err.message, /backend "webgpu": \S/); // the reason
      assert.match(err.message, /backend: wasm/); // what to do instead
    }
  });

  test('software adapters (lavapipe, SwiftShader, fallback) are recognised; GPUs are not', () => {
    const info = (vendor: string, device: string, fallback = false) =>
      ({ vendor, architecture: '', device, description: '', fallback });
    assert.equal(isSoftwareAdapter(info('mesa', 'llvmpipe (LLVM 15.0.6, 256 bits)')), true);
    assert.equal(isSoftwareAdapter(info('google', 'SwiftShader Device (Subzero)')), true);
    assert.equal(isSoftwareAdapter(info('nvidia', 'nvidia-h200', true)), true);
    assert.equal(isSoftwareAdapter(info('nvidia', 'nvidia-h200')), false);
    assert.equal(isSoftwareAdapter(info('amd', 'radeon-rx-7900')), false);
  });

  test('auto picks the best backend that loads and logs why', async () => {
    const logs: Array<{ msg: string; fields?: Record<string, unknown> }> = [];
    const got = await initBackend('auto', (msg, fields) => logs.push({ msg, fields }));
    const gpu = activeAdapter();
    assert.equal(got, HAS_TENSORFLOW ? 'tensorflow' : gpu !== undefined ? 'webgpu' : 'wasm');
    assert.equal(logs.length, 1);
    assert.equal(logs[0].fields?.['backend'], got);
    if (!HAS_TENSORFLOW) assert.ok(Array.isArray(logs[0].fields?.['tensorflow']), 'the reasons tensorflow failed');
    if (got === 'wasm') assert.equal(typeof logs[0].fields?.['webgpu'], 'string', 'the reason webgpu was not taken');
  });

  test('an unknown name is a SigmaError', async () => {
    await assert.rejects(initBackend('gpu' as BackendName), (err: unknown) =>
      err instanceof SigmaError && err.code === 'SGT_BACKEND_UNAVAILABLE' && /"gpu"/.test(err.message));
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Kernel contracts: each KERNEL_PATCHES entry, run through the engine with identical inputs on every backend.

type KernelCase = {
  name: string;
  inputs: () => tf.NamedTensorMap | tf.Tensor[];
  attrs: tf.NamedAttrMap;
  /** Worked out by hand, where the cpu kernel itself is the one patched. */
  expected?: number[];
};

function matmulCase(aShape: number[], bShape: number[], transposeA: boolean, transposeB: boolean): KernelCase {
  const size = (s: number[]): number => s.reduce((p, d) => p * d, 1);
  return {
    name: `${aShape}${transposeA ? 'ᵀ' : ''} x ${bShape}${transposeB ? 'ᵀ' : ''}`,
    inputs: () => ({ a: tf.tensor(randn(size(aShape), 1), aShape), b: tf.tensor(randn(size(bShape), 2), bShape) }),
    attrs: { transposeA, transposeB },
  };
}
const bools = [false, true];
const MATMUL_CASES: KernelCase[] = [
  // every transpose combination, odd sizes, big enough for the XNNPACK route (≥ 4096 multiply-adds per product)
  ...bools.flatMap((ta) => bools.map((tb) => matmulCase(ta ? [53, 37] : [37, 53], tb ? [29, 53] : [53, 29], ta, tb))),
  ...bools.flatMap((ta) => bools.map((tb) =>
    matmulCase(ta ? [5, 41, 19] : [5, 19, 41], tb ? [5, 23, 41] : [5, 41, 23], ta, tb))),
  ...bools.flatMap((ta) => bools.map((tb) =>
    matmulCase(ta ? [2, 3, 33, 17] : [2, 3, 17, 33], tb ? [2, 3, 13, 33] : [2, 3, 33, 13], ta, tb))),
  // broadcast batch: shared right operand (merged into one product), shared left operand, batch-1 rank 3
  ...bools.map((tb) => matmulCase([3, 2, 19, 23], tb ? [31, 23] : [23, 31], false, tb)),
  matmulCase([3, 23, 19], [23, 31], true, false),
  matmulCase([19, 23], [4, 23, 31], false, false),
  matmulCase([3, 19, 23], [1, 31, 23], false, true),
  // attention shapes [batch·heads, T, d]
  matmulCase([6, 17, 16], [6, 17, 16], false, true),
  matmulCase([6, 17, 17], [6, 17, 16], true, false),
  // tiny products stay on the stock kernel
  matmulCase([4, 3, 5], [4, 5, 2], false, false),
  matmulCase([4, 5, 3], [4, 2, 5], true, true),
];

const KERNEL_CASES: Record<string, KernelCase[]> = {
  [tf.BatchMatMul]: MATMUL_CASES,
  [tf.Identity]: [
    { name: 'float32 [3, 5]', inputs: () => ({ x: tf.tensor(randn(15, 41), [3, 5]) }), attrs: {} },
    { name: 'int32 [7]', inputs: () => ({ x: tf.tensor1d([3, -1, 4, 1, -5, 9, 2], 'int32') }), attrs: {} },
    { name: 'bool [2, 2]', inputs: () => ({ x: tf.tensor2d([[1, 0], [0, 1]], [2, 2], 'bool') }), attrs: {} },
  ],
  [tf.UnsortedSegmentSum]: [
    {
      name: 'repeated and out-of-range ids, inner dims',
      inputs: () => ({
        x: tf.tensor(randn(10 * 3 * 4, 3), [10, 3, 4]),
        segmentIds: tf.tensor1d([0, 2, 2, 4, -1, 2, 0, 5, 4, 4], 'int32'),
      }),
      attrs: { numSegments: 5 },
    },
    {
      name: 'int32 values, all in one segment',
      inputs: () => ({ x: tf.tensor1d([1, -2, 3, 4, 5, 6, 7], 'int32'), segmentIds: tf.fill([7], 1, 'int32') }),
      attrs: { numSegments: 3 },
    },
  ],
  [tf.Conv2DBackpropFilter]: [{
    name: 'stride 2 valid',
    inputs: () => ({
      x: tf.tensor(randn(2 * 9 * 9 * 3, 4), [2, 9, 9, 3]), dy: tf.tensor(randn(2 * 4 * 4 * 5, 5), [2, 4, 4, 5]),
    }),
    attrs: { strides: [2, 2], pad: 'valid', dataFormat: 'NHWC', filterShape: [3, 3, 3, 5] },
  }],
  [tf.DepthwiseConv2dNativeBackpropFilter]: [{
    name: 'multiplier 2',
    inputs: () => ({
      x: tf.tensor(randn(7 * 7 * 2, 6), [1, 7, 7, 2]), dy: tf.tensor(randn(5 * 5 * 4, 7), [1, 5, 5, 4]),
    }),
    attrs: { strides: [1, 1], dilations: [1, 1], pad: 'valid', filterShape: [3, 3, 2, 2] },
  }],
  [tf.DepthwiseConv2dNativeBackpropInput]: [{
    name: 'multiplier 2',
    inputs: () => ({ dy: tf.tensor(randn(5 * 5 * 4, 8), [1, 5, 5, 4]), filter: tf.tensor(randn(36, 9), [3, 3, 2, 2]) }),
    attrs: { strides: [1, 1], dilations: [1, 1], pad: 'valid', inputShape: [1, 7, 7, 2] },
  }],
  [tf.Einsum]: [{
    name: 'bij,bjk->bik',
    inputs: () => [tf.tensor(randn(2 * 3 * 4, 10), [2, 3, 4]), tf.tensor(randn(2 * 4 * 5, 11), [2, 4, 5])],
    attrs: { equation: 'bij,bjk->bik' },
  }],
  [tf.Slice]: [
    ...([[[4, 5, 6], [1, 0, 2], [2, 5, 3]], [[4, 5, 6], [1, 0, 0], [2, -1, -1]], [[4, 5, 6], [0, 2, 0], [4, 1, 6]],
      [[30], [7], [11]], [[2, 3, 2, 3, 2], [1, 0, 1, 1, 0], [1, 3, 1, 2, 1]], [[3, 4], [1, 1], [0, 3]]] as const)
      .map(([shape, begin, size], i): KernelCase => ({
        name: `[${shape}] begin [${begin}] size [${size}]`,
        inputs: () => ({ x: tf.tensor(randn(shape.reduce((p, d) => p * d, 1), 50 + i), [...shape]) }),
        attrs: { begin: [...begin], size: [...size] },
      })),
    { name: 'int32 [3, 4] rows 1..2', inputs: () => ({ x: tf.tensor2d([...Array(12).keys()], [3, 4], 'int32') }), attrs: { begin: [1, 0], size: [2, 4] } },
  ],
  [tf.SplitV]: [
    ...([[[10, 7], [3, -1, 2], 0], [[10, 7], [2, 5], 1], [[3, 4, 5], [1, 3, 1], 2], [[257], [100, 1, 156], 0]] as const)
      .map(([shape, sizes, axis], i): KernelCase => ({
        name: `[${shape}] into [${sizes}] along ${axis}`,
        inputs: () => ({ x: tf.tensor(randn(shape.reduce((p, d) => p * d, 1), 60 + i), [...shape]) }),
        attrs: { numOrSizeSplits: [...sizes], axis },
      })),
  ],
  [tf.StridedSlice]: stridedSliceCases(),
  [tf.LogSoftmax]: [{
    name: '[3, 7] last axis, large logits',
    inputs: () => ({ logits: tf.tensor(randn(21, 12, 30), [3, 7]) }),
    attrs: { axis: 1 },
  }],
};

/** x = [[0..4], [5..9], [10..14], [15..19]] sliced; expected values worked out by hand. */
function stridedSliceCases(): KernelCase[] {
  const x = (): tf.NamedTensorMap => ({ x: tf.tensor(Array.from({ length: 20 }, (_, i) => i), [4, 5]) });
  const c = (name: string, begin: number[], end: number[], strides: number[], masks: number[], expected: number[]):
    KernelCase => ({
    name, inputs: x, expected,
    attrs: {
      begin, end, strides,
      beginMask: masks[0], endMask: masks[1], ellipsisMask: masks[2], newAxisMask: masks[3], shrinkAxisMask: masks[4],
    },
  });
  return [
    c('x[1, ::2] (broken in stock tfjs)', [1, 0], [2, 5], [1, 2], [0, 0, 0, 0, 1], [5, 7, 9]),
    c('x[::2, 1] (broken in stock tfjs)', [0, 1], [4, 2], [2, 1], [0, 0, 0, 0, 2], [1, 11]),
    c('x[3, 4::-2]', [3, 4], [4, 0], [1, -2], [0, 2, 0, 0, 1], [19, 17, 15]),
    c('x[0::2, 4:0:-2]', [0, 4], [4, 0], [2, -2], [0, 0, 0, 0, 0], [4, 2, 14, 12]),
    c('x[1:3] (slice fast path)', [1], [3], [1], [0, 0, 0, 0, 0], [5, 6, 7, 8, 9, 10, 11, 12, 13, 14]),
    c('x[..., newaxis, 2]', [0, 0, 2], [0, 0, 3], [1, 1, 1], [0, 0, 1, 2, 4], [2, 7, 12, 17]),
  ];
}

/** The cpu kernel's result, or a reference for kernels we patch on cpu too. */
function referenceFor(kernelName: string, c: KernelCase): Float32Array | Int32Array | Uint8Array {
  if (c.expected !== undefined) return Float32Array.from(c.expected);
  return scoped(() => {
    const inputs = c.inputs();
    if (kernelName === tf.LogSoftmax) {
      const { logits } = inputs as tf.NamedTensorMap;
      return tf.sub(logits, tf.logSumExp(logits, -1, true)).dataSync();
    }
    return valuesOf(tf.engine().runKernel(kernelName, inputs as tf.NamedTensorMap, c.attrs));
  });
}

/** A kernel's values, outputs one after another when it has several (SplitV). */
function valuesOf(out: tf.Tensor | tf.Tensor[] | tf.TensorInfo | tf.TensorInfo[]): Float32Array | Int32Array | Uint8Array {
  const outs = (Array.isArray(out) ? out : [out]) as tf.Tensor[];
  if (outs.length === 1) return outs[0].dataSync() as Float32Array | Int32Array | Uint8Array;
  return Float32Array.from(outs.flatMap((t) => [...t.dataSync()]));
}

describe('kernel contracts (KERNEL_PATCHES)', () => {
  test('every patched kernel has contract cases', () => {
    for (const p of KERNEL_PATCHES) assert.ok(KERNEL_CASES[p.kernelName]?.length, `cases for ${p.kernelName}`);
  });

  const expected = new Map<string, Array<Float32Array | Int32Array | Uint8Array>>();
  before(async () => {
    await use('cpu');
    for (const p of KERNEL_PATCHES) {
      expected.set(p.kernelName, KERNEL_CASES[p.kernelName].map((c) => referenceFor(p.kernelName, c).slice()));
    }
  });

  for (const backend of BACKENDS) {
    for (const p of KERNEL_PATCHES) {
      if (!(p.backends as readonly string[]).includes(backend)) continue;
      const against = p.backends.includes('cpu') ? 'a reference' : 'cpu';
      test(`${backend}: ${p.kernelName} (${p.how}) matches ${against}`,
        async () => {
          await use(backend);
          const before = tf.memory().numTensors;
          KERNEL_CASES[p.kernelName].forEach((c, i) => {
            const got = scoped(() => valuesOf(tf.engine().runKernel(p.kernelName, c.inputs() as tf.NamedTensorMap, c.attrs)));
            assertClose(got, expected.get(p.kernelName)![i], 1e-5, `${p.kernelName} ${c.name}`);
          });
          assert.equal(tf.memory().numTensors, before, 'no tensor leaked');
        });
    }
  }

  test('wasm: a clone shares its source\'s buffer, outlives it, and the buffer is freed with the last reference',
    async () => {
      await use('wasm');
      const be = tf.backend() as unknown as { refCount(d: object): number; dataIdMap: { has(d: object): boolean } };
      const buffers = tf.memory().numDataBuffers;
      const x = tf.tensor(randn(1000, 42), [10, 100]);
      const values = x.dataSync().slice();
      const y = tf.clone(x);
      assert.equal(y.dataId, x.dataId, 'same buffer');
      assert.equal(be.refCount(x.dataId), 2);
      assert.equal(tf.memory().numDataBuffers, buffers + 1, 'no second buffer');
      x.dispose();
      assert.equal(be.refCount(y.dataId), 1);
      assert.deepEqual(y.dataSync(), values, 'the clone still reads the values after its source is gone');
      // A kernel output is a new buffer: the clone's values stay as they were.
      const z = tf.mul(y, 2);
      assert.deepEqual(y.dataSync(), values);
      z.dispose();
      const id = y.dataId;
      y.dispose();
      assert.equal(be.dataIdMap.has(id), false, 'freed with the last reference');
      assert.equal(tf.memory().numDataBuffers, buffers);
    });

  test('wasm: SplitV of 4M floats into 100 parts (the size where the stock kernel copied 1.6 GB) is exact', async (t) => {
    await use('wasm');
    scoped(() => {
      // Time is reported, not asserted (tests carry no timing bounds): bench:step's cpuMsPerStep shows the cost.
      const x = tf.range(0, 4_000_000, 1, 'float32');
      const t0 = performance.now();
      const parts = tf.split(x, 100);
      t.diagnostic(`split took ${(performance.now() - t0).toFixed(0)} ms`);
      assert.equal(parts.length, 100);
      for (const i of [0, 57, 99]) {
        const v = parts[i].dataSync();
        assert.equal(v.length, 40_000);
        assert.deepEqual([v[0], v[39_999]], [i * 40_000, i * 40_000 + 39_999]);
      }
    });
  });

  test('wasm: gather gradient (UnsortedSegmentSum) is a direct scatter-add: vocab 8000, 4096 rows, equal to 2·t·count',
    async (t) => {
      await use('wasm');
      scoped(() => {
        const values = randn(8000 * 32, 13, 0.1);
        const table = tf.tensor(values, [8000, 32]);
        const r = rng(14);
        const idList = Array.from({ length: 4096 }, () => Math.floor(r() * 8000));
        const ids = tf.tensor1d(idList, 'int32');
        const t0 = performance.now();
        const [g] = gradient(([x]) => tf.sum(tf.square(tf.gather(x, ids))), [table]);
        const got = g.dataSync();
        t.diagnostic(`gradient took ${(performance.now() - t0).toFixed(0)} ms`);
        // d/dt Σ gather(t)² = 2·t·(times the row was gathered): closed form, independent of the kernel.
        const count = new Float64Array(8000);
        for (const id of idList) count[id]++;
        let worst = 0;
        for (let i = 0; i < values.length; i++) {
          const want = 2 * values[i] * count[Math.floor(i / 32)];
          worst = Math.max(worst, Math.abs(got[i] - want) / (1e-6 + Math.abs(want)));
        }
        assert.ok(worst < 1e-5, `worst relative error ${worst}`);
      });
    });
});

// ---------------------------------------------------------------------------------------------------------------
// Gradient patches: every GRADIENT_PATCHES entry, first and second order against finite differences.

const W = (n: number, seed: number): tf.Tensor => tf.tensor(randn(n, seed, 0.7));
const pts = (shape: number[], seed = 21): (() => tf.Tensor) => () =>
  tf.tensor(smoothPoints(shape.reduce((p, d) => p * d, 1), seed), shape);
const weighted = (y: tf.Tensor, seed: number): tf.Scalar => tf.sum(tf.mul(y, tf.reshape(W(y.size, seed), y.shape)));
/** Rows whose entries are ≥ 0.2 apart, so finite differences never swap the max/min. */
const distinctRows = (): tf.Tensor => tf.tensor2d([[0.3, -0.7, 1.2, 0.6], [0.1, -1.1, 0.35, 0.8]]);
const cube = (x: tf.Tensor): tf.Tensor => tf.mul(x, tf.square(x));

/** A bilinear matMul probe: a and b both cut out of x, so the Hessian exercises the gradient's own gradient. */
function matmulProbe(aShape: number[], bShape: number[], ta: boolean, tb: boolean): Probe {
  const na = aShape.reduce((p, d) => p * d, 1);
  const nb = bShape.reduce((p, d) => p * d, 1);
  return {
    name: `BatchMatMul ${aShape}${ta ? 'ᵀ' : ''}·${bShape}${tb ? 'ᵀ' : ''}`,
    x: () => tf.tensor(randn(na + nb, 31, 0.8)),
    f: (x) => {
      const a = tf.reshape(tf.slice(x, 0, na), aShape);
      const b = tf.reshape(tf.slice(x, na, nb), bShape);
      return weighted(tf.matMul(a, b, ta, tb), 32);
    },
  };
}

const GRADIENT_PROBES: Record<string, Probe[]> = {
  [tf.Exp]: [{ name: 'x·exp(x)', x: pts([8]), f: (x) => weighted(tf.mul(x, tf.exp(x)), 1) }],
  [tf.Tanh]: [{ name: 'tanh', x: pts([8]), f: (x) => weighted(tf.tanh(tf.mul(x, 1.5)), 2) }],
  [tf.Sigmoid]: [{ name: 'sigmoid', x: pts([8]), f: (x) => weighted(tf.sigmoid(tf.mul(x, 2)), 3) }],
  [tf.Softmax]: [{ name: 'softmax rows', x: pts([2, 4]), f: (x) => weighted(tf.softmax(tf.mul(x, 2)), 4) }],
  [tf.LogSoftmax]: [{ name: 'LogSoftmax kernel', x: pts([2, 4]), f: (x) => weighted(logSoftmax(tf.mul(x, 2)), 5) }],
  [tf.Elu]: [{ name: 'elu, both signs', x: pts([8]), f: (x) => weighted(tf.elu(x), 6) }],
  [tf.Pow]: [{
    name: 'a^b with a and b functions of x',
    x: pts([8]),
    f: (x) => weighted(tf.pow(tf.add(tf.abs(x), 0.5), tf.add(tf.mul(x, 0.3), 1.5)), 7),
  }],
  [tf.Max]: [{ name: 'max over rows, squared', x: distinctRows, f: (x) => weighted(tf.square(tf.max(x, 1)), 8) }],
  [tf.Min]: [{ name: 'min over rows, squared', x: distinctRows, f: (x) => weighted(tf.square(tf.min(x, 1)), 9) }],
  [tf.BatchMatMul]: [
    ...bools.flatMap((ta) => bools.map((tb) =>
      matmulProbe(ta ? [2, 4, 3] : [2, 3, 4], tb ? [2, 5, 4] : [2, 4, 5], ta, tb))),
    matmulProbe([2, 3, 4], [4, 5], false, false), // x[B,T,D]·W[D,E]: the broadcast stock tfjs cannot differentiate
    matmulProbe([2, 3, 4], [5, 4], false, true),
    matmulProbe([3, 4], [2, 4, 5], false, false),
  ],
  [tf.Equal]: [{
    name: 'x³·[x = x]', x: pts([8]), f: (x) => weighted(tf.mul(cube(x), tf.cast(tf.equal(x, x), 'float32')), 10),
  }],
  [tf.NotEqual]: [{
    name: 'where(x ≠ 0)', x: pts([8]), f: (x) => weighted(tf.where(tf.notEqual(x, 0), cube(x), tf.zerosLike(x)), 11),
  }],
  [tf.Greater]: [{
    name: 'where(x > 0)', x: pts([8]), f: (x) => weighted(tf.where(tf.greater(x, 0), cube(x), tf.square(x)), 12),
  }],
  [tf.Less]: [{
    name: 'maximum(x, 0.2x)', x: pts([8]), f: (x) => weighted(tf.square(tf.maximum(x, tf.mul(x, 0.2))), 13),
  }],
  [tf.LessEqual]: [{ name: 'minimum(x, 0.2)', x: pts([8]), f: (x) => weighted(cube(tf.minimum(x, 0.2)), 14) }],
  [tf.LogicalAnd]: [{ name: 'clipByValue', x: pts([8]), f: (x) => weighted(cube(tf.clipByValue(x, -0.5, 0.5)), 15) }],
  [tf.LogicalOr]: [{
    name: 'where(|x| > 0.5)',
    x: pts([8]),
    f: (x) => weighted(tf.where(tf.logicalOr(tf.less(x, -0.5), tf.greater(x, 0.5)), cube(x), tf.square(x)), 16),
  }],
  [tf.LogicalNot]: [{
    name: 'where(!(x > 0))',
    x: pts([8]),
    f: (x) => weighted(tf.where(tf.logicalNot(tf.greater(x, 0)), cube(x), tf.square(x)), 17),
  }],
  [tf.StridedSlice]: [
    {
      name: 'x[0::2, 4:0:-2]',
      x: pts([4, 5]),
      f: (x) => weighted(cube(tf.stridedSlice(x, [0, 4], [4, 0], [2, -2])), 18),
    },
    {
      name: 'x[1, ::2] (shrink axis)',
      x: pts([4, 5]),
      f: (x) => weighted(cube(tf.stridedSlice(x, [1, 0], [2, 5], [1, 2], 0, 0, 0, 0, 1)), 19),
    },
  ],
};

describe('gradient patches (GRADIENT_PATCHES)', () => {
  test('every re-registered gradient has probes', () => {
    for (const g of GRADIENT_PATCHES) assert.ok(GRADIENT_PROBES[g.kernelName]?.length, `probes for ${g.kernelName}`);
  });

  for (const backend of BACKENDS) {
    for (const g of GRADIENT_PATCHES) {
      test(`${backend}: ${g.kernelName}: ∇f·v and H·v match finite differences`, async () => {
        await use(backend);
        GRADIENT_PROBES[g.kernelName].forEach((p, i) => checkProbe(p, 100 + i));
      });
    }
  }

  test('x·exp(x)\'\' at 0.7 is 2.7·e^0.7 ≈ 5.4373 (stock tfjs: 2·e^0.7 ≈ 4.03)', async () => {
    for (const backend of BACKENDS) {
      await use(backend);
      const f = ([x]: tf.Tensor[]): tf.Scalar => tf.sum(tf.mul(x, tf.exp(x)));
      const h = scoped(() => hessianVectorProduct(f, [tf.scalar(0.7)], [tf.scalar(1)])[0].dataSync()[0]);
      assert.ok(Math.abs(h - 2.7 * Math.exp(0.7)) < 1e-4, `${backend}: ${h}`);
    }
  });

  test('the checks can fail: with the stock tfjs gradients, the probes of saved-output gradients fail', async () => {
    await use('cpu');
    restoreStockGradients();
    try {
      for (const name of SAVED_OUTPUT_KERNELS) {
        const p = GRADIENT_PROBES[name][0];
        assert.throws(() => checkProbe(p, 100), `${p.name} passed with the stock gradient`);
      }
      assert.throws(() => checkProbe(GRADIENT_PROBES[tf.BatchMatMul][4], 100), /shape/);
    } finally {
      installGradientPatches();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The ops a Transformer/ViT trains with: forward, gradient and H·v on every backend against cpu, and H·v against
// finite differences. f = Σ w ⊙ op(x)², so even linear ops get a non-zero Hessian (2 Jᵀ W J).

const idx = (): tf.Tensor1D => tf.tensor1d([0, 5, 5, 2, 3], 'int32');
const OPS: Record<string, (x: tf.Tensor) => tf.Tensor> = {
  'matMul (batched, both transposed)': (x) => tf.matMul(tf.reshape(x, [2, 3, 4]), tf.reshape(x, [2, 4, 3]), true, true),
  softmax: (x) => tf.softmax(x),
  'logSoftmax (ours)': (x) => logSoftmax(x),
  'sparseSoftmaxCrossEntropy (ours)': (x) =>
    sparseSoftmaxCrossEntropy(x as tf.Tensor2D, tf.tensor1d([0, 1, 3, 2, 0, 1], 'int32')),
  log: (x) => tf.log(tf.add(tf.abs(x), 1)),
  exp: (x) => tf.exp(x),
  tanh: (x) => tf.tanh(x),
  'erf (gelu)': (x) => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.div(x, Math.SQRT2)), 1)),
  sigmoid: (x) => tf.sigmoid(x),
  relu: (x) => tf.relu(x),
  gather: (x) => tf.gather(x, idx()),
  concat: (x) => tf.concat([x, tf.mul(x, 2)], 1),
  slice: (x) => tf.slice(x, [1, 1], [3, 2]),
  stridedSlice: (x) => tf.stridedSlice(x, [0, 3], [6, 0], [2, -1]),
  reshape: (x) => tf.reshape(x, [4, 6]),
  transpose: (x) => tf.transpose(x),
  tile: (x) => tf.tile(x, [2, 1]),
  pad: (x) => tf.pad(x, [[1, 0], [0, 2]]),
  mean: (x) => tf.mean(x, 1),
  sum: (x) => tf.sum(x, 0),
  max: (x) => tf.max(x, 1),
  square: (x) => tf.square(x),
  sqrt: (x) => tf.sqrt(tf.add(tf.abs(x), 1)),
  rsqrt: (x) => tf.rsqrt(tf.add(tf.abs(x), 1)),
  'moments (layer norm)': (x) => {
    const m = tf.moments(x, -1, true);
    return tf.div(tf.sub(x, m.mean), tf.sqrt(tf.add(m.variance, 1e-5)));
  },
  'sub, add, neg': (x) => tf.add(tf.sub(x, 1), tf.neg(tf.mul(x, 0.3))),
  addN: (x) => tf.addN([x, tf.square(x), x]),
  div: (x) => tf.div(x, tf.add(tf.abs(x), 1)),
  maximum: (x) => tf.maximum(x, tf.mul(x, 0.5)),
  'where/greater/less/equal/logicalAnd': (x) =>
    tf.where(tf.logicalAnd(tf.greater(x, -1), tf.logicalAnd(tf.less(x, 1), tf.equal(x, x))), x, tf.mul(x, 3)),
  cast: (x) => tf.cast(tf.mul(x, 2), 'float32'),
  oneHot: (x) => tf.mul(x, tf.sum(tf.oneHot(tf.tensor1d([0, 2], 'int32'), 4))),
  'dropout (randomUniform)': (x) => tf.dropout(x, 0.5, undefined, 7),
  'zerosLike, onesLike': (x) => tf.add(tf.zerosLike(x), tf.mul(tf.onesLike(x), x)),
  abs: (x) => tf.abs(x),
  clipByValue: (x) => tf.clipByValue(x, -0.5, 0.5),
  norm: (x) => tf.norm(x, 'euclidean', 1),
  'linspace, range': (x) => tf.mul(x, tf.sum(tf.add(tf.linspace(0, 1, 4), tf.range(0, 4)))),
  'expandDims, squeeze': (x) => tf.squeeze(tf.expandDims(x, 1)),
  'stack, unstack': (x) => tf.unstack(tf.stack([x, tf.square(x)]))[1],
};

describe('Transformer ops: forward, gradient and H·v', () => {
  const x0 = (): tf.Tensor => tf.tensor(smoothPoints(24, 41), [6, 4]);
  const probe = (name: string): Probe => ({ name, x: x0, f: (x) => weighted(tf.square(OPS[name](x)), 42) });
  const results = (name: string): Float64Array[] => scoped(() => {
    const p = probe(name);
    const x = p.x();
    const v = tf.tensor(randn(24, 43), [6, 4]);
    const [g] = gradient(([z]) => p.f(z), [x]);
    const [hv] = hessianVectorProduct(([z]) => p.f(z), [x], [v]);
    return [read(OPS[name](x)), read(g), read(hv)];
  });

  const onCpu = new Map<string, Float64Array[]>();
  before(async () => {
    await use('cpu');
    for (const name of Object.keys(OPS)) onCpu.set(name, results(name));
  });

  for (const backend of BACKENDS) {
    test(`${backend}: every op matches cpu (forward, ∇, H·v) and finite differences (H·v)`, async () => {
      await use(backend);
      for (const name of Object.keys(OPS)) {
        const [y, g, hv] = results(name);
        const [yc, gc, hvc] = onCpu.get(name)!;
        assertClose(y, yc, 1e-5, `${name} forward`);
        assertClose(g, gc, 1e-5, `${name} gradient`);
        assertClose(hv, hvc, 1e-4, `${name} H·v`);
        checkProbe(probe(name), 44);
      }
    });
  }
});
