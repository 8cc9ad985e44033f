// Gradient re-registrations that make tfjs 4.22 gradients twice differentiable (Hessian-vector products).
// The gradient registry is global: these apply to every backend.
//
// Why: the engine saves a tensor for backprop by cloning it, and the clone's tape node is pushed *before* the
// node of the op that produced it. A gradient that reads its op's saved OUTPUT therefore reads a tensor the tape
// sees as a constant: first derivatives are right, the second-order terms through that output are silently
// dropped (x·exp(x)'' = 4.03 instead of 5.44) or backprop throws "Cannot compute gradient". Every gradient here
// saves only inputs and recomputes what it needs with differentiable ops. Also here: zero gradients for comparisons
// (masks inside other gradients), BatchMatMul with batch broadcasting, and StridedSlice (had no gradient).
import * as tf from '@tensorflow/tfjs';

import { denseOutShape, sliceInfoOf, stridedSliceIndices } from './strided_slice.js';

const f32 = (x: tf.Tensor): tf.Tensor => (x.dtype === 'float32' ? x : tf.cast(x, 'float32'));

type SingleGradFunc = (dy: tf.Tensor, saved: tf.Tensor[], attrs: tf.NamedAttrMap) => Record<string, () => tf.Tensor>;

/** A gradient config for a single-output kernel that saves only inputs. */
function grad(kernelName: string, inputsToSave: string[], gradFunc: SingleGradFunc): tf.GradConfig {
  return { kernelName, inputsToSave, gradFunc: (dy, saved, attrs) => gradFunc(dy as tf.Tensor, saved, attrs) };
}

/** Sum `g` (shaped like the broadcast output) back down to `shape` (the input's). */
function unbroadcast(g: tf.Tensor, shape: number[]): tf.Tensor {
  const axes = tf.broadcast_util.getReductionAxes(shape, g.shape);
  return tf.reshape(axes.length > 0 ? tf.sum(g, axes) : g, shape);
}

function runKernel(name: string, inputs: tf.NamedTensorMap, attrs: tf.NamedAttrMap): tf.Tensor {
  return tf.engine().runKernel(name, inputs, attrs) as tf.Tensor;
}

/** Gradient of max/min over `axes`: dy goes to every entry equal to the extreme (ties all get it, as in tfjs). */
function extremeGrad(dy: tf.Tensor, x: tf.Tensor, axes: number[], reduce: typeof tf.max): tf.Tensor {
  const yKeep = reduce(x, axes, true);
  const mask = tf.cast(tf.equal(x, yKeep), 'float32'); // piecewise constant: Equal's gradient is zero (below)
  return tf.mul(tf.reshape(dy, yKeep.shape), mask);
}

/** Gradients that used to read their op's saved output. */
const SAVED_OUTPUT_FIXES: tf.GradConfig[] = [
  grad(tf.Exp, ['x'], (dy, [x]) => ({ x: () => tf.mul(dy, tf.exp(f32(x))) })),
  grad(tf.Tanh, ['x'], (dy, [x]) => ({ x: () => tf.mul(dy, tf.sub(1, tf.square(tf.tanh(f32(x))))) })),
  grad(tf.Sigmoid, ['x'], (dy, [x]) => ({
    x: () => {
      const s = tf.sigmoid(f32(x));
      return tf.mul(dy, tf.mul(s, tf.sub(1, s)));
    },
  })),
  // y = softmax(x) along dim; dx = y·dy − y·Σ_dim(y·dy).
  grad(tf.Softmax, ['logits'], (dy, [logits], attrs) => ({
    logits: () => {
      const dim = (attrs as unknown as tf.SoftmaxAttrs).dim;
      const y = runKernel(tf.Softmax, { logits }, { dim });
      const ydy = tf.mul(dy, y);
      return tf.sub(ydy, tf.mul(tf.sum(ydy, dim, true), y));
    },
  })),
  // The LogSoftmax kernel (tfjs-node runs it; tf.logSoftmax itself is a customGrad op, see ops.ts):
  // dx = dy − softmax(x)·Σ_axis dy.
  grad(tf.LogSoftmax, ['logits'], (dy, [logits], attrs) => ({
    logits: () => {
      const axis = (attrs as unknown as tf.LogSoftmaxAttrs).axis;
      const y = runKernel(tf.Softmax, { logits }, { dim: axis });
      return tf.sub(dy, tf.mul(tf.sum(dy, axis, true), y));
    },
  })),
  // elu'(x) = 1 for x > 0, exp(x) otherwise = exp(min(x, 0)): one smooth expression, no where() whose
  // unselected exp(x) branch could overflow and turn into 0·inf = NaN at second order.
  grad(tf.Elu, ['x'], (dy, [x]) => ({ x: () => tf.mul(dy, tf.exp(tf.minimum(f32(x), 0))) })),
  // y = a^b; ∂y/∂a = b·a^(b−1); ∂y/∂b = y·log(a) for a > 0, else 0. log(where(a > 0, a, 1)) keeps the
  // unselected branch finite, so its masked derivative cannot become 0·inf at second order.
  grad(tf.Pow, ['a', 'b'], (dy, [a, b]) => {
    const outShape = tf.broadcast_util.assertAndGetBroadcastShape(a.shape, b.shape);
    return {
      a: () => {
        const bf = f32(b);
        const g = tf.mul(dy, tf.mul(bf, tf.pow(f32(a), tf.sub(bf, 1))));
        return unbroadcast(tf.reshape(g, outShape), a.shape);
      },
      b: () => {
        const af = f32(a);
        const logA = tf.log(tf.where(tf.greater(af, 0), af, tf.onesLike(af)));
        const y = tf.pow(af, f32(b));
        return unbroadcast(tf.reshape(tf.mul(dy, tf.mul(y, logA)), outShape), b.shape);
      },
    };
  }),
  grad(tf.Max, ['x'], (dy, [x], attrs) => ({
    x: () => extremeGrad(dy, x, tf.util.parseAxisParam((attrs as unknown as tf.MaxAttrs).reductionIndices, x.shape),
      tf.max),
  })),
  grad(tf.Min, ['x'], (dy, [x], attrs) => ({
    x: () => extremeGrad(dy, x, tf.util.parseAxisParam((attrs as unknown as tf.MinAttrs).axis, x.shape), tf.min),
  })),
];

/**
 * matMul with broadcast batch dims (x[B,T,D]·W[D,E], the usual linear layer): the stock gradient returns dW with
 * the broadcast shape [B,D,E] and backprop throws on the shape check. Sum the gradient back to each input's shape;
 * when b is shared across the batch (and a is not transposed), dW is one [K, B·M]x[B·M, N] product instead of B
 * products and a sum.
 */
const BATCH_MATMUL_GRAD: tf.GradConfig = grad(tf.BatchMatMul, ['a', 'b'], (dy, [a, b], attrs) => {
  const { transposeA, transposeB } = attrs as unknown as tf.BatchMatMulAttrs;
  const bShared = tf.util.sizeFromShape(b.shape.slice(0, -2)) === 1;
  const aBatched = tf.util.sizeFromShape(a.shape.slice(0, -2)) > 1;
  const da = (): tf.Tensor => {
    let g: tf.Tensor;
    if (!transposeA && !transposeB) g = tf.matMul(dy, b, false, true); //  dy·bᵀ
    else if (!transposeA && transposeB) g = tf.matMul(dy, b, false, false); // dy·b
    else if (transposeA && !transposeB) g = tf.matMul(b, dy, false, true); // b·dyᵀ
    else g = tf.matMul(b, dy, true, true); // bᵀ·dyᵀ
    return unbroadcast(g, a.shape);
  };
  const db = (): tf.Tensor => {
    if (bShared && aBatched && !transposeA) {
      const k = a.shape[a.rank - 1];
      const a2 = tf.reshape(a, [-1, k]); // [B·M, K]
      const dy2 = tf.reshape(dy, [-1, dy.shape[dy.rank - 1]]); // [B·M, N]
      const g = transposeB ? tf.matMul(dy2, a2, true, false) : tf.matMul(a2, dy2, true, false); // [N,K] | [K,N]
      return tf.reshape(g, b.shape);
    }
    let g: tf.Tensor;
    if (!transposeA && !transposeB) g = tf.matMul(a, dy, true, false); // aᵀ·dy
    else if (!transposeA && transposeB) g = tf.matMul(dy, a, true, false); // dyᵀ·a
    else if (transposeA && !transposeB) g = tf.matMul(a, dy, false, false); // a·dy
    else g = tf.matMul(dy, a, true, true); // dyᵀ·aᵀ
    return unbroadcast(g, b.shape);
  };
  return { a: da, b: db };
});

/**
 * Comparisons and logic ops are piecewise constant, so their gradient is zero (tfjs already says so for
 * GreaterEqual, Step, Sign, Floor...). Without these, any second-order pass through a gradient that builds a mask
 * (Maximum, Minimum, ClipByValue, Relu6, LeakyRelu, Max, Min, where(x > 0, ...)) throws
 * "gradient function not found for Less".
 */
const ZERO_GRAD_BINARY = [tf.Equal, tf.NotEqual, tf.Greater, tf.Less, tf.LessEqual, tf.LogicalAnd, tf.LogicalOr];
const ZERO_GRADS: tf.GradConfig[] = [
  ...ZERO_GRAD_BINARY.map((name) =>
    grad(name, ['a', 'b'], (_dy, [a, b]) => ({ a: () => tf.zeros(a.shape), b: () => tf.zeros(b.shape) }))),
  grad(tf.LogicalNot, ['x'], (_dy, [x]) => ({ x: () => tf.zeros(x.shape) })),
];

/**
 * StridedSlice has no gradient in tfjs 4.22 (x[:, 0]-style slicing could not be trained through). The op is
 * linear: output element i reads x at flat index idx[i], so dx = scatter-add of dy at idx, written as
 * unsortedSegmentSum (whose gradient is gather, whose gradient is unsortedSegmentSum: any order works).
 */
const STRIDED_SLICE_GRAD: tf.GradConfig = grad(tf.StridedSlice, ['x'], (dy, [x], attrs) => ({
  x: () => {
    const info = sliceInfoOf(x.shape, attrs as unknown as tf.StridedSliceAttrs);
    const idx = stridedSliceIndices(x.shape, denseOutShape(info), info.begin, info.strides);
    if (idx.length === 0) return tf.zeros(x.shape);
    const flat = tf.unsortedSegmentSum(tf.reshape(f32(dy), [-1]), tf.tensor1d(idx, 'int32'), x.size);
    return tf.reshape(flat, x.shape);
  },
}));

/** Kernels whose stock gradient read the op's saved output. */
export const SAVED_OUTPUT_KERNELS: readonly string[] = SAVED_OUTPUT_FIXES.map((g) => g.kernelName);

/** Every gradient this module registers, in one place (tests iterate over it). */
export const GRADIENT_PATCHES: readonly tf.GradConfig[] = [
  ...SAVED_OUTPUT_FIXES, BATCH_MATMUL_GRAD, ...ZERO_GRADS, STRIDED_SLICE_GRAD,
];

/** What each group is for, keyed by kernel name (reports, tests). */
export const GRADIENT_PATCH_REASONS: Readonly<Record<string, string>> = Object.freeze(Object.fromEntries([
  ...SAVED_OUTPUT_FIXES.map((g) => [g.kernelName, 'saved its output: recomputed from the input for 2nd order']),
  ...ZERO_GRADS.map((g) => [g.kernelName, 'piecewise constant: zero gradient so masks are differentiable']),
  [BATCH_MATMUL_GRAD.kernelName, 'ignored batch broadcasting: shapes now reduced, shared-weight dW in one product'],
  [STRIDED_SLICE_GRAD.kernelName, 'had no gradient: scatter-add through unsortedSegmentSum'],
]));

/**
 * Not patched, on purpose: MaxPool, MaxPool3D and LRN also save their output, but their gradients run
 * MaxPoolGrad/LRNGrad kernels that have no gradient at all, so a second order through them throws either way;
 * no Transformer uses them.
 */
export const GRADIENTS_LEFT_ALONE: readonly string[] = [tf.MaxPool, tf.MaxPool3D, tf.LRN];

// Stock configs we replaced (undefined: there was none), captured once, so that a test can show what we fix.
let stock: Map<string, tf.GradConfig | undefined> | null = null;
let installed = false;

export function installGradientPatches(): void {
  if (installed) return;
  stock ??= new Map(GRADIENT_PATCHES.map((g) => [g.kernelName, tf.getGradient(g.kernelName) ?? undefined]));
  for (const g of GRADIENT_PATCHES) tf.registerGradient(g);
  installed = true;
}

/**
 * Test-only: puts the stock tfjs gradients back for `kernelNames` (default: all we patch); kernels that had none
 * get one that throws, as before. installGradientPatches() re-installs ours.
 */
export function restoreStockGradients(kernelNames?: readonly string[]): void {
  if (stock === null) return;
  for (const [kernelName, config] of stock) {
    if (kernelNames !== undefined && !kernelNames.includes(kernelName)) continue;
    tf.registerGradient(config ?? {
      kernelName,
      gradFunc: () => { throw new Error(`Cannot compute gradient: gradient function not found for ${kernelName}.`); },
    });
  }
  installed = false;
}
