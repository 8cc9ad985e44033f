// UnsortedSegmentSum for the wasm backend (tfjs-wasm 4.22 has none; it is the gradient of gather, i.e. of every
// embedding lookup). A direct scatter-add on heap views: O(N·inner), where the cpu kernel does one masked pass
// over all of x per segment (104 s for a vocab of 800 over 4096×256).
import * as tf from '@tensorflow/tfjs';

import { asWasm } from './wasm_internals.js';

/**
 * out[s, ...] = Σ_{i : ids[i] = s} x[i, ...]; x [N, ...inner], segmentIds [N] int32, out [numSegments, ...inner].
 * Ids outside [0, numSegments) are dropped, like the cpu kernel. Other segmentIds ranks go to `fallback`.
 */
export function makeUnsortedSegmentSumWasm(fallback: tf.KernelFunc): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const x = inputs['x'] as tf.TensorInfo;
    const ids = inputs['segmentIds'] as tf.TensorInfo;
    const numSegments = Number(attrs?.['numSegments']);
    if (ids.shape.length !== 1 || ids.shape[0] !== x.shape[0] || ids.dtype !== 'int32' ||
      (x.dtype !== 'float32' && x.dtype !== 'int32')) {
      return fallback({ inputs, backend, attrs });
    }
    const be = asWasm(backend);
    const n = ids.shape[0];
    const inner = n === 0 ? 0 : tf.util.sizeFromShape(x.shape) / n;
    const out = be.makeOutput([numSegments, ...x.shape.slice(1)], x.dtype);
    // Views are taken after the last allocation: an allocation may grow (and replace) the heap buffer.
    const o = be.typedArrayFromHeap(out) as Float32Array | Int32Array;
    const xs = be.typedArrayFromHeap(x) as Float32Array | Int32Array;
    const seg = be.typedArrayFromHeap(ids) as Int32Array;
    o.fill(0);
    for (let i = 0; i < n; i++) {
      const s = seg[i];
      if (s < 0 || s >= numSegments) continue;
      const src = i * inner;
      const dst = s * inner;
      for (let j = 0; j < inner; j++) o[dst + j] += xs[src + j];
    }
    return out;
  };
}
