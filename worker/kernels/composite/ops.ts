// One formula, two executors: the fused kernels' forward and backward formulas are written once against `Ops<T>`
// and run either as differentiable tfjs ops (tapeOps: recorded on the tape, so Hessian-vector products see every
// term) or inside one registered kernel as direct calls of the backend's own kernels (kernelOps: one dispatch for
// the engine, no tape node, no Identity clone per saved tensor). Both issue the same kernels with the same operands
// in the same order, so they give the same bits; each method names the tfjs op it mirrors.
import * as tf from '@tensorflow/tfjs';

export type Axis = number | number[] | null;

export interface Ops<T> {
  shape(x: T): number[];
  reshape(x: T, shape: number[]): T;
  /** tf.matMul → BatchMatMul */
  matMul(a: T, b: T, transposeA?: boolean, transposeB?: boolean): T;
  add(a: T | number, b: T | number): T;
  sub(a: T | number, b: T | number): T;
  mul(a: T | number, b: T | number): T;
  div(a: T | number, b: T | number): T;
  maximum(a: T | number, b: T | number): T;
  pow(a: T | number, b: T | number): T;
  neg(x: T): T;
  abs(x: T): T;
  square(x: T): T;
  sqrt(x: T): T;
  rsqrt(x: T): T;
  exp(x: T): T;
  sigmoid(x: T): T;
  sum(x: T, axis?: Axis, keepDims?: boolean): T;
  mean(x: T, axis?: Axis, keepDims?: boolean): T;
  max(x: T, axis?: Axis, keepDims?: boolean): T;
  transpose(x: T, perm: number[]): T;
  split(x: T, n: number, axis: number): T[];
  concat(xs: T[], axis: number): T;
  /** Softmax over the last axis (the Softmax kernel, as the LogSoftmax gradient runs it). */
  softmax(x: T): T;
  /** The LogSoftmax kernel over the last axis (kernels/log_softmax.ts on cpu/wasm). */
  logSoftmax(x: T): T;
}

const asTensor = (x: tf.Tensor | number): tf.Tensor | number => x;

/** The differentiable executor: plain tfjs ops (and the LogSoftmax/Softmax kernels through the engine). */
export const tapeOps: Ops<tf.Tensor> = {
  shape: (x) => x.shape,
  reshape: (x, s) => tf.reshape(x, s),
  matMul: (a, b, ta = false, tb = false) => tf.matMul(a, b, ta, tb),
  add: (a, b) => tf.add(asTensor(a), asTensor(b)),
  sub: (a, b) => tf.sub(asTensor(a), asTensor(b)),
  mul: (a, b) => tf.mul(asTensor(a), asTensor(b)),
  div: (a, b) => tf.div(asTensor(a), asTensor(b)),
  maximum: (a, b) => tf.maximum(asTensor(a), asTensor(b)),
  pow: (a, b) => tf.pow(asTensor(a), asTensor(b)),
  neg: (x) => tf.neg(x),
  abs: (x) => tf.abs(x),
  square: (x) => tf.square(x),
  sqrt: (x) => tf.sqrt(x),
  rsqrt: (x) => tf.rsqrt(x),
  exp: (x) => tf.exp(x),
  sigmoid: (x) => tf.sigmoid(x),
  sum: (x, axis = null, keepDims = false) => tf.sum(x, axis ?? undefined, keepDims),
  mean: (x, axis = null, keepDims = false) => tf.mean(x, axis ?? undefined, keepDims),
  max: (x, axis = null, keepDims = false) => tf.max(x, axis ?? undefined, keepDims),
  transpose: (x, perm) => tf.transpose(x, perm),
  split: (x, n, axis) => tf.split(x, n, axis),
  concat: (xs, axis) => tf.concat(xs, axis),
  softmax: (x) => tf.engine().runKernel(tf.Softmax, { logits: x }, { dim: x.rank - 1 }) as tf.Tensor,
  logSoftmax: (x) => tf.engine().runKernel(tf.LogSoftmax, { logits: x }, { axis: x.rank - 1 }) as tf.Tensor,
};

/**
 * The in-kernel executor for `backend`: every method runs the backend's registered kernel directly on TensorInfos.
 * Everything it makes is a temporary freed by `release(keep)`, except what `keep` names (the kernel's outputs).
 * Scalars are float32, as tfjs's ops make them from numbers.
 */
export class KernelOps implements Ops<tf.TensorInfo> {
  private readonly temps: tf.TensorInfo[] = [];

  constructor(private readonly backend: tf.KernelBackend, private readonly backendName: string) {}

  private run(name: string, inputs: tf.NamedTensorInfoMap, attrs: Record<string, unknown> = {}): tf.TensorInfo {
    const out = this.runMany(name, inputs, attrs);
    return out[0];
  }

  private runMany(name: string, inputs: tf.NamedTensorInfoMap, attrs: Record<string, unknown> = {}): tf.TensorInfo[] {
    const kernel = tf.getKernel(name, this.backendName);
    if (kernel === undefined) throw new Error(`fused kernel on ${this.backendName} needs the backend's ${name} kernel`);
    const out = kernel.kernelFunc({ inputs, backend: this.backend, attrs: attrs as tf.NamedAttrMap });
    const outs = Array.isArray(out) ? out : [out];
    this.temps.push(...outs);
    return outs;
  }

  private t(x: tf.TensorInfo | number): tf.TensorInfo {
    return typeof x === 'number' ? this.constant([], Float32Array.of(x)) : x;
  }

  private constant(shape: number[], values: Float32Array): tf.TensorInfo {
    // wasm: makeOutput(shape, dtype, offset, values) uploads to the heap; cpu: makeTensorInfo(shape, dtype, values)
    const be = this.backend as unknown as {
      makeOutput(s: number[], d: string, o: undefined, v: Float32Array): tf.TensorInfo;
      makeTensorInfo(s: number[], d: string, v: Float32Array): tf.TensorInfo;
    };
    const s = this.backendName === 'wasm' ? be.makeOutput(shape, 'float32', undefined, values) : be.makeTensorInfo(shape, 'float32', values);
    this.temps.push(s);
    return s;
  }

  private binary(name: string, a: tf.TensorInfo | number, b: tf.TensorInfo | number): tf.TensorInfo {
    return this.run(name, { a: this.t(a), b: this.t(b) });
  }

  /**
   * Frees every temporary except the objects in `keep` (the kernel's outputs, which the engine takes over). By
   * object, not dataId: a reshape shares its input's buffer with a reference of its own, released separately.
   */
  release(keep: readonly tf.TensorInfo[]): void {
    const kept = new Set(keep);
    for (const t of this.temps) if (!kept.has(t)) this.backend.disposeData(t.dataId);
    this.temps.length = 0;
  }

  shape(x: tf.TensorInfo): number[] {
    return x.shape;
  }
  reshape(x: tf.TensorInfo, shape: number[]): tf.TensorInfo {
    return this.run(tf.Reshape, { x }, { shape });
  }
  matMul(a: tf.TensorInfo, b: tf.TensorInfo, transposeA = false, transposeB = false): tf.TensorInfo {
    return this.run(tf.BatchMatMul, { a, b }, { transposeA, transposeB });
  }
  add(a: tf.TensorInfo | number, b: tf.TensorInfo | number): tf.TensorInfo {
    return this.binary(tf.Add, a, b);
  }
  sub(a: tf.TensorInfo | number, b: tf.TensorInfo | number): tf.TensorInfo {
    return this.binary(tf.Sub, a, b);
  }
  mul(a: tf.TensorInfo | number, b: tf.TensorInfo | number): tf.TensorInfo {
    return this.binary(tf.Multiply, a, b);
  }
  div(a: tf.TensorInfo | number, b: tf.TensorInfo | number): tf.TensorInfo {
    return this.binary(tf.RealDiv, a, b);
  }
  maximum(a: tf.TensorInfo | number, b: tf.TensorInfo | number): tf.TensorInfo {
    return this.binary(tf.Maximum, a, b);
  }
  pow(a: tf.TensorInfo | number, b: tf.TensorInfo | number): tf.TensorInfo {
    return this.binary(tf.Pow, a, b);
  }
  neg(x: tf.TensorInfo): tf.TensorInfo {
    return this.run(tf.Neg, { x });
  }
  abs(x: tf.TensorInfo): tf.TensorInfo {
    return this.run(tf.Abs, { x });
  }
  square(x: tf.TensorInfo): tf.TensorInfo {
    return this.run(tf.Square, { x });
  }
  sqrt(x: tf.TensorInfo): tf.TensorInfo {
    return this.run(tf.Sqrt, { x });
  }
  rsqrt(x: tf.TensorInfo): tf.TensorInfo {
    return this.run(tf.Rsqrt, { x });
  }
  exp(x: tf.TensorInfo): tf.TensorInfo {
    return this.run(tf.Exp, { x });
  }
  sigmoid(x: tf.TensorInfo): tf.TensorInfo {
    return this.run(tf.Sigmoid, { x });
  }
  sum(x: tf.TensorInfo, axis: Axis = null, keepDims = false): tf.TensorInfo {
    return this.run(tf.Sum, { x }, { axis, keepDims });
  }
  mean(x: tf.TensorInfo, axis: Axis = null, keepDims = false): tf.TensorInfo {
    return this.run(tf.Mean, { x }, { axis, keepDims });
  }
  max(x: tf.TensorInfo, axis: Axis = null, keepDims = false): tf.TensorInfo {
    // tf.max passes null for "all axes"; the kernels want the list
    return this.run(tf.Max, { x }, { reductionIndices: axis ?? x.shape.map((_, i) => i), keepDims });
  }
  transpose(x: tf.TensorInfo, perm: number[]): tf.TensorInfo {
    return this.run(tf.Transpose, { x }, { perm });
  }
  split(x: tf.TensorInfo, n: number, axis: number): tf.TensorInfo[] {
    return this.runMany(tf.SplitV, { x }, { numOrSizeSplits: n, axis });
  }
  concat(xs: tf.TensorInfo[], axis: number): tf.TensorInfo {
    return this.run(tf.Concat, xs as unknown as tf.NamedTensorInfoMap, { axis });
  }
  softmax(x: tf.TensorInfo): tf.TensorInfo {
    return this.run(tf.Softmax, { logits: x }, { dim: x.shape.length - 1 });
  }
  logSoftmax(x: tf.TensorInfo): tf.TensorInfo {
    return this.run(tf.LogSoftmax, { logits: x }, { axis: x.shape.length - 1 });
  }
}
