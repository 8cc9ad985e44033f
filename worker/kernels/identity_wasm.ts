// Identity on wasm without a copy. tfjs's engine clones every tensor a kernel saves for its gradient (and tf.clone,
// tf.keep(tf.clone(...)) elsewhere) through the Identity kernel; the stock wasm kernel copies the buffer, which was
// ~18 % of a training step on the bench model. Tensors are immutable, so the clone can share the input's buffer
// with a reference count, as the stock wasm Reshape and the cpu backend's Identity already do.
import type * as tf from '@tensorflow/tfjs';

import { asWasm } from './wasm_internals.js';

export function makeIdentityWasm(stock: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const x = (args.inputs as { x: tf.TensorInfo }).x;
    if (x.dtype === 'string') return stock(args); // string tensors live in JS, not in the heap
    asWasm(args.backend).incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  };
}
