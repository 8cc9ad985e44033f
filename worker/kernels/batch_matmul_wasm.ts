// BatchMatMul for the wasm backend that always reaches XNNPACK: tfjs-wasm only uses XNNPACK for
// [1,M,K]x[1,K,N] without transposes and runs a scalar loop (1–3 GFLOP/s) otherwise, i.e. for every
// backward matmul and every attention matmul. We transpose explicitly and feed it one batch at a time.
import * as tf from '@tensorflow/tfjs';

import { asWasm, dropView, floatView, runWasmKernel, wasmId, type WasmBackendLike } from './wasm_internals.js';

type RawBatchMatMul = (
  aId: number, aShape: Uint8Array, aRank: number,
  bId: number, bShape: Uint8Array, bRank: number,
  transposeA: boolean, transposeB: boolean, outId: number,
) => void;

// The C export is per wasm module; wrap it once per backend instance.
const rawByBackend = new WeakMap<object, RawBatchMatMul>();
function rawBatchMatMul(be: WasmBackendLike): RawBatchMatMul {
  let fn = rawByBackend.get(be);
  if (fn === undefined) {
    fn = be.wasm.cwrap('BatchMatMul', null, [
      'number', 'array', 'number', 'number', 'array', 'number', 'number', 'number', 'number',
    ]) as RawBatchMatMul;
    rawByBackend.set(be, fn);
  }
  return fn;
}

const SMALL_PRODUCT = 4096;
const MIN_INNER = 4;

const shapeBytes = (shape: number[]): Uint8Array => new Uint8Array(new Int32Array(shape).buffer);

/** out[M,N] = a[M,K] · b[K,N] on tensors the C++ side knows, through its XNNPACK fully-connected path. */
function xnnMatMul(be: WasmBackendLike, a: tf.TensorInfo, b: tf.TensorInfo, out: tf.TensorInfo,
  m: number, k: number, n: number): void {
  rawBatchMatMul(be)(wasmId(be, a), shapeBytes([1, m, k]), 3, wasmId(be, b), shapeBytes([1, k, n]), 3,
    false, false, wasmId(be, out));
}

/** [batch, rows, cols] -> [batch, cols, rows] with the wasm Transpose kernel; caller disposes the result. */
function transposeLast2(backend: unknown, x: tf.TensorInfo, batch: number, rows: number, cols: number): tf.TensorInfo {
  const x3: tf.TensorInfo = { dataId: x.dataId, shape: [batch, rows, cols], dtype: x.dtype };
  return runWasmKernel('Transpose', backend, { x: x3 }, { perm: [0, 2, 1] });
}

/**
 * Kernel body. `fallback` is the stock kernel: it keeps tiny and empty products, and batch shapes that broadcast
 * both ways ([2,1]x[1,3]), which neither kernel flattens right. Otherwise, as in the stock kernels, output batch i
 * reads a[i % batchA] and b[i % batchB].
 */
export function makeBatchMatMulWasm(fallback: tf.KernelFunc): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const a = inputs['a'] as tf.TensorInfo;
    const b = inputs['b'] as tf.TensorInfo;
    const transposeA = Boolean(attrs?.['transposeA']);
    const transposeB = Boolean(attrs?.['transposeB']);
    if (a.dtype !== 'float32' || b.dtype !== 'float32') {
      throw new Error(`BatchMatMul on wasm needs float32 inputs, got ${a.dtype} and ${b.dtype}`);
    }
    const ra = a.shape.length;
    const rb = b.shape.length;
    const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
    const k = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
    const kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
    const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
    if (k !== kb) {
      throw new Error(`matMul inner dimensions differ: a ${a.shape} (transposeA=${transposeA}), ` +
        `b ${b.shape} (transposeB=${transposeB})`);
    }
    const batchA = tf.util.sizeFromShape(a.shape.slice(0, -2));
    const batchB = tf.util.sizeFromShape(b.shape.slice(0, -2));
    const batch = Math.max(batchA, batchB);
    // Each XNNPACK product costs a few µs of set-up (views, operator creation, weight packing): below ~4k
    // multiply-adds per product the stock loop is as fast (measured: [64,16,16]x[64,16,16] ties).
    const perProduct = batchB === 1 ? batch * m * k : m * k;
    const outOuter = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
    // k < MIN_INNER (outer products u·vᵀ, as in the σReparam weight gradient): XNNPACK's fully-connected operator
    // returned wrong values and NaN there (a [1,192]ᵀ·[1,576] product inside a backward pass; alone it was right).
    // With k that small the product is a memory-bound broadcast anyway: the stock loop loses nothing.
    if (perProduct * n < SMALL_PRODUCT || k < MIN_INNER || tf.util.sizeFromShape(outOuter) !== batch) {
      return fallback({ inputs, backend, attrs });
    }

    const be = asWasm(backend);
    // Row-major operands: aRm [batchA, M, K], bRm [batchB, K, N].
    const aT = transposeA ? transposeLast2(backend, a, batchA, k, m) : null;
    const bT = transposeB ? transposeLast2(backend, b, batchB, n, k) : null;
    const aRm = aT ?? a;
    const bRm = bT ?? b;
    const out = be.makeOutput([...outOuter, m, n], 'float32');
    try {
      if (batchB === 1) {
        // Shared right operand (x[B,T,D]·W[D,E]): one [B·M, K]x[K, N] product. Passing b's own id lets XNNPACK
        // keep its packed weights across steps (its cache is keyed by id, dropped when the tensor is disposed).
        xnnMatMul(be, aRm, bRm, out, batch * m, k, n);
      } else {
        for (let i = 0; i < batch; i++) {
          const ai = batchA === 1 ? aRm : floatView(be, aRm, (i % batchA) * m * k, [1, m, k]);
          const bi = floatView(be, bRm, (i % batchB) * k * n, [1, k, n]);
          const oi = floatView(be, out, i * m * n, [1, m, n]);
          xnnMatMul(be, ai, bi, oi, m, k, n);
          if (ai !== aRm) dropView(be, ai);
          dropView(be, bi);
          dropView(be, oi);
        }
      }
    } finally {
      if (aT !== null) be.disposeData(aT.dataId);
      if (bT !== null) be.disposeData(bT.dataId);
    }
    return out;
  };
}
