// StridedSlice that is right when an axis is shrunk (x[1, ::2]): tfjs 4.22's cpu and wasm kernels index x with the
// output shape *after* dropping shrunk axes, so x[1, ::2] of a [4,5] tensor returns x.flat[1..3] instead of row 1.
// Also the index map behind the StridedSlice gradient (gradients.ts).
import * as tf from '@tensorflow/tfjs';

type SliceInfo = ReturnType<typeof tf.slice_util.sliceInfo>;

export function sliceInfoOf(xShape: number[], a: tf.StridedSliceAttrs): SliceInfo {
  return tf.slice_util.sliceInfo(xShape, a.begin, a.end, a.strides, a.beginMask, a.endMask, a.ellipsisMask,
    a.newAxisMask, a.shrinkAxisMask);
}

/** Output shape with x's rank (shrunk axes kept as 1, new axes absent): what x is actually walked with. */
export function denseOutShape(info: SliceInfo): number[] {
  return info.begin.map((b, d) => Math.max(0, Math.ceil((info.end[d] - b) / info.strides[d])));
}

/** Flat x index of every output element: output location l (shape `outShape`, x's rank) reads x[l·stride + begin]. */
export function stridedSliceIndices(
  xShape: number[], outShape: number[], begin: number[], strides: number[],
): Int32Array {
  const rank = xShape.length;
  const size = tf.util.sizeFromShape(outShape);
  const xStrides = [...tf.util.computeStrides(xShape), 1]; // element strides of x, row-major
  const idx = new Int32Array(size);
  const loc = new Array<number>(rank).fill(0);
  for (let i = 0; i < size; i++) {
    let flat = 0;
    for (let d = 0; d < rank; d++) flat += (loc[d] * strides[d] + begin[d]) * xStrides[d];
    idx[i] = flat;
    for (let d = rank - 1; d >= 0; d--) { // odometer, last axis fastest
      if (++loc[d] < outShape[d]) break;
      loc[d] = 0;
    }
  }
  return idx;
}

/**
 * Kernel body for `backendName`: the stock kernel where it is right (no shrunk axis, or its slice fast paths),
 * otherwise a gather of the flat indices above, reshaped to the final shape.
 */
export function makeStridedSliceKernel(backendName: string, stock: tf.KernelFunc): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const x = inputs['x'] as tf.TensorInfo;
    const a = attrs as unknown as tf.StridedSliceAttrs;
    const info = sliceInfoOf(x.shape, a);
    const dense = denseOutShape(info);
    const size = tf.util.sizeFromShape(dense);
    if (a.shrinkAxisMask === 0 || info.isIdentity || info.isSimpleSlice || info.sliceDim0 || size === 0) {
      return stock({ inputs, backend, attrs });
    }
    const be = backend as tf.KernelBackend;
    const idx = stridedSliceIndices(x.shape, dense, info.begin, info.strides);
    const indices: tf.TensorInfo = { dataId: be.write(idx, [size], 'int32'), shape: [size], dtype: 'int32' };
    const gather = tf.getKernel(tf.GatherV2, backendName);
    if (gather === undefined) throw new Error(`StridedSlice on ${backendName} needs kernel GatherV2`);
    try {
      const flatX: tf.TensorInfo = { dataId: x.dataId, shape: [tf.util.sizeFromShape(x.shape)], dtype: x.dtype };
      const out = gather.kernelFunc({ inputs: { x: flatX, indices }, backend, attrs: { axis: 0, batchDims: 0 } }) as
        tf.TensorInfo;
      return { dataId: out.dataId, shape: info.finalShape, dtype: out.dtype }; // a reshape: same data
    } finally {
      be.disposeData(indices.dataId);
    }
  };
}
