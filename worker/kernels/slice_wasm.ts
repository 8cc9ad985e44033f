// Slice and SplitV on wasm without copying the whole input per output. tfjs 4.22's wasm Slice reads its input with
// backend.readSync, which copies the ENTIRE input out of the heap (HEAPU8.slice) before taking the slice; SplitV
// calls that Slice once per output. Unflattening the step's 2.7M-float gradient into ~100 parameters (one SplitV)
// copied ~1.1 GB per step (~25 % of a bench step on wasm); every q/k/v slice of the joint projection copied the
// whole projection. Here the input is read through a heap view taken after the output is allocated (an allocation
// can grow the heap and detach older views), so a slice costs only the elements it keeps. Same values, bitwise.
import * as tf from '@tensorflow/tfjs';

import { asWasm, type WasmBackendLike } from './wasm_internals.js';

/** Copies the box [begin, begin + size) of x (row-major, `xShape`) into `out`, one contiguous innermost run at a time. */
function copyBox(x: ArrayLike<number> & { subarray(a: number, b: number): ArrayLike<number> }, xShape: number[],
  out: { set(a: ArrayLike<number>, o: number): void }, begin: number[], size: number[]): void {
  const rank = xShape.length;
  if (rank === 0) {
    out.set(x.subarray(0, 1), 0);
    return;
  }
  const strides = tf.util.computeStrides(xShape);
  // Merge the trailing axes the box covers whole into one run: the longest contiguous stretch.
  let inner = rank - 1;
  let run = size[inner];
  while (inner > 0 && size[inner] === xShape[inner]) {
    inner--;
    run *= size[inner];
  }
  const outer = size.slice(0, inner);
  const count = outer.reduce((p, d) => p * d, 1);
  const loc = new Array<number>(inner).fill(0);
  let o = 0;
  for (let i = 0; i < count; i++) {
    let off = begin[inner] * (inner < rank - 1 ? strides[inner] : 1);
    for (let d = 0; d < inner; d++) off += (begin[d] + loc[d]) * strides[d];
    out.set(x.subarray(off, off + run), o);
    o += run;
    for (let d = inner - 1; d >= 0; d--) { // odometer over the outer axes, last fastest
      if (++loc[d] < outer[d]) break;
      loc[d] = 0;
    }
  }
}

function sliceInto(be: WasmBackendLike, x: tf.TensorInfo, begin: number[], size: number[]): tf.TensorInfo {
  const out = be.makeOutput(size, x.dtype);
  if (tf.util.sizeFromShape(size) === 0) return out;
  // Views after makeOutput: it may have grown (and so detached) the heap.
  const xv = be.typedArrayFromHeap(x);
  const ov = be.typedArrayFromHeap(out);
  copyBox(xv, x.shape, ov, begin, size);
  return out;
}

/** Slice: string tensors (kept in JS, not in the heap) and complex ones go to the stock kernel. */
export function makeSliceWasm(stock: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const x = (args.inputs as { x: tf.TensorInfo }).x;
    if (x.dtype === 'string' || x.dtype === 'complex64') return stock(args);
    const a = args.attrs as unknown as tf.SliceAttrs;
    const [begin, size] = tf.slice_util.parseSliceParams(x as unknown as tf.Tensor, a.begin, a.size);
    return sliceInto(asWasm(args.backend), x, begin, size);
  };
}

/** SplitV: one slice per output along `axis`, each reading only its own part. */
export function makeSplitVWasm(stock: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const x = (args.inputs as { x: tf.TensorInfo }).x;
    if (x.dtype === 'string' || x.dtype === 'complex64') return stock(args);
    const a = args.attrs as unknown as tf.SplitVAttrs;
    const axis = tf.util.parseAxisParam(a.axis, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(x as unknown as tf.Tensor, a.numOrSizeSplits, axis);
    const be = asWasm(args.backend);
    const begin = new Array<number>(x.shape.length).fill(0);
    return sizes.map((s) => {
      const size = [...x.shape];
      size[axis] = s;
      const out = sliceInto(be, x, begin, size);
      begin[axis] += s;
      return out;
    });
  };
}
