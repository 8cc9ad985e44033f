// The kernels we add or replace, in one table (tests iterate over it), and their installation per backend.
// Every entry is checked against the cpu backend's result (or a reference) in test/unit/worker/backend.test.ts.
import * as tf from '@tensorflow/tfjs';

import { makeBatchMatMulWasm } from './batch_matmul_wasm.js';
import { makeCpuBridge } from './cpu_bridge.js';
import { makeIdentityWasm } from './identity_wasm.js';
import { makeLogSoftmaxKernel } from './log_softmax.js';
import { makeSliceWasm, makeSplitVWasm } from './slice_wasm.js';
import { makeStridedSliceKernel } from './strided_slice.js';
import { makeUnsortedSegmentSumWasm } from './unsorted_segment_sum_wasm.js';

export interface KernelPatch {
  kernelName: string;
  /** Backends it is installed for (tfjs-node kernels take and return Tensors: a different contract, left alone). */
  backends: ReadonlyArray<'cpu' | 'wasm'>;
  /** replace: a stock kernel made faster or correct; direct: written here; composite: built from the backend's kernels;
   *  cpu-bridge: inputs copied to the cpu backend and back. */
  how: 'replace' | 'direct' | 'composite' | 'cpu-bridge';
  why: string;
}

export const KERNEL_PATCHES: readonly KernelPatch[] = Object.freeze([
  {
    kernelName: tf.BatchMatMul, backends: ['wasm'], how: 'replace',
    why: 'stock kernel uses XNNPACK only for unbatched untransposed products, a scalar loop otherwise (25x slower)',
  },
  {
    kernelName: tf.Identity, backends: ['wasm'], how: 'replace',
    why: 'stock kernel copies the buffer; the engine clones every tensor saved for backward through it (~18% of a step)',
  },
  { kernelName: tf.UnsortedSegmentSum, backends: ['wasm'], how: 'direct', why: 'missing; gradient of gather' },
  { kernelName: tf.Conv2DBackpropFilter, backends: ['wasm'], how: 'cpu-bridge', why: 'missing; conv2d weight grad' },
  {
    kernelName: tf.DepthwiseConv2dNativeBackpropFilter, backends: ['wasm'], how: 'cpu-bridge',
    why: 'missing; depthwise conv weight gradient',
  },
  {
    kernelName: tf.DepthwiseConv2dNativeBackpropInput, backends: ['wasm'], how: 'cpu-bridge',
    why: 'missing; depthwise conv input gradient',
  },
  { kernelName: tf.Einsum, backends: ['wasm'], how: 'cpu-bridge', why: 'missing' },
  {
    kernelName: tf.Slice, backends: ['wasm'], how: 'replace',
    why: 'stock kernel copies the whole input out of the heap (readSync) for every slice',
  },
  {
    kernelName: tf.SplitV, backends: ['wasm'], how: 'replace',
    why: 'stock kernel is one stock Slice per output: the whole input copied per output (1.1 GB per bench step)',
  },
  {
    kernelName: tf.StridedSlice, backends: ['cpu', 'wasm'], how: 'replace',
    why: 'stock kernels are wrong when an axis is shrunk with strides (x[1, ::2] read the wrong elements)',
  },
  {
    kernelName: tf.LogSoftmax, backends: ['cpu', 'wasm'], how: 'composite',
    why: 'missing on cpu/wasm; gives log-softmax a registered, twice-differentiable gradient (see ops.ts)',
  },
]);

function build(patch: KernelPatch, backendName: string, stock: tf.KernelConfig | undefined): tf.KernelFunc {
  switch (patch.kernelName) {
    case tf.BatchMatMul:
      if (stock === undefined) throw new Error('stock wasm BatchMatMul is not registered');
      return makeBatchMatMulWasm(stock.kernelFunc);
    case tf.Identity:
      if (stock === undefined) throw new Error('stock wasm Identity is not registered');
      return makeIdentityWasm(stock.kernelFunc);
    case tf.Slice:
    case tf.SplitV:
      if (stock === undefined) throw new Error(`stock wasm ${patch.kernelName} is not registered`);
      return (patch.kernelName === tf.Slice ? makeSliceWasm : makeSplitVWasm)(stock.kernelFunc);
    case tf.UnsortedSegmentSum:
      return makeUnsortedSegmentSumWasm(makeCpuBridge(patch.kernelName));
    case tf.LogSoftmax:
      return makeLogSoftmaxKernel(backendName);
    case tf.StridedSlice:
      if (stock === undefined) throw new Error(`stock ${backendName} StridedSlice is not registered`);
      return makeStridedSliceKernel(backendName, stock.kernelFunc);
    default:
      return makeCpuBridge(patch.kernelName);
  }
}

const installedFor = new Set<string>();
// Stock kernels we replaced, by `${backend}/${kernel}`: benchmarks and tests compare against them.
const replaced = new Map<string, tf.KernelConfig>();

/** The stock kernel a 'replace' patch displaced (undefined when not installed or nothing was replaced). */
export function stockKernel(kernelName: string, backendName: string): tf.KernelConfig | undefined {
  return replaced.get(`${backendName}/${kernelName}`);
}

/**
 * Registers the table's kernels for `backendName` ('wasm' needs @tensorflow/tfjs-backend-wasm imported so that
 * its stock kernels are registered; the backend need not be initialized yet). Idempotent per backend.
 */
export function installKernelPatches(backendName: string): void {
  if (installedFor.has(backendName)) return;
  for (const patch of KERNEL_PATCHES) {
    if (!(patch.backends as readonly string[]).includes(backendName)) continue;
    const stock = tf.getKernel(patch.kernelName, backendName);
    if (patch.how === 'replace' ? stock === undefined : stock !== undefined) continue; // nothing to replace / has one
    const kernelFunc = build(patch, backendName, stock);
    if (stock !== undefined) {
      replaced.set(`${backendName}/${patch.kernelName}`, stock);
      tf.unregisterKernel(patch.kernelName, backendName);
    }
    // Keep the stock setupFunc: it binds the wasm export the fallback path calls, and runs at backend init.
    tf.registerKernel({ kernelName: patch.kernelName, backendName, kernelFunc, setupFunc: stock?.setupFunc });
  }
  installedFor.add(backendName);
}
