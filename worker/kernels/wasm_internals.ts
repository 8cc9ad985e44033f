// Typed access to the few internals of the tfjs 4.22 wasm backend that our kernels need: heap views, tensor
// registration, and calling a wasm export directly. Everything that reaches past the public API lives here.
import * as tf from '@tensorflow/tfjs';

/** What the wasm backend keeps per dataId (backend_wasm.ts `TensorData`). */
export interface WasmTensorData {
  id: number;
  memoryOffset: number;
  shape: number[];
  dtype: tf.DataType;
  refCount: number;
}

export interface WasmModuleLike {
  HEAPU8: Uint8Array;
  cwrap(name: string, returnType: null, argTypes: string[]): (...args: unknown[]) => void;
  tfjs: {
    registerTensor(id: number, size: number, memoryOffset: number): void;
    disposeData(id: number): void;
  };
}

export interface WasmBackendLike {
  wasm: WasmModuleLike;
  dataIdMap: { get(dataId: object): WasmTensorData; delete(dataId: object): boolean };
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: object, force?: boolean): boolean;
  incRef(dataId: object): void;
  refCount(dataId: object): number;
}

export function asWasm(backend: unknown): WasmBackendLike {
  return backend as WasmBackendLike;
}

/** Numeric id the C++ side knows the tensor by. */
export function wasmId(be: WasmBackendLike, info: tf.TensorInfo): number {
  return be.dataIdMap.get(info.dataId).id;
}

/**
 * A tensor that aliases `count` float32 elements of `base` starting at element `start` (no copy). The C++ side
 * sees it as an ordinary tensor id. Release it with `dropView`, never with `disposeData` (that would free()
 * a pointer into the middle of base's allocation).
 */
export function floatView(be: WasmBackendLike, base: tf.TensorInfo, start: number, shape: number[]): tf.TensorInfo {
  const { memoryOffset } = be.dataIdMap.get(base.dataId);
  return be.makeOutput(shape, 'float32', memoryOffset + 4 * start);
}

/** Unregister a view: the C++ disposal callbacks run (XNNPACK drops operators cached on this id), no free(). */
export function dropView(be: WasmBackendLike, view: tf.TensorInfo): void {
  be.wasm.tfjs.disposeData(wasmId(be, view));
  be.dataIdMap.delete(view.dataId);
}

/** Run another wasm kernel from inside a kernel, on TensorInfos (wrapping them as Tensors would free live memory). */
export function runWasmKernel(
  name: string,
  backend: unknown,
  inputs: tf.NamedTensorInfoMap,
  attrs: tf.NamedAttrMap = {},
): tf.TensorInfo {
  const kernelFunc = tf.getKernel(name, 'wasm')?.kernelFunc;
  if (kernelFunc === undefined) throw new Error(`wasm kernel ${name} is not registered`);
  const out = kernelFunc({ inputs, backend: backend as tf.KernelBackend, attrs });
  return (Array.isArray(out) ? out[0] : out) as tf.TensorInfo;
}
