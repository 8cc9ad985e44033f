// Runs a cpu-backend kernel on behalf of the wasm backend: copy inputs over, run, copy outputs back. For kernels
// tfjs-wasm 4.22 lacks and that are rare in our models (conv weight gradients, einsum); max diff vs cpu is 0.
import * as tf from '@tensorflow/tfjs';

import { asWasm } from './wasm_internals.js';

export function makeCpuBridge(kernelName: string): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const cpuKernel = tf.getKernel(kernelName, 'cpu');
    if (cpuKernel === undefined) throw new Error(`cpu kernel ${kernelName} is not registered`);
    const cpu = tf.findBackend('cpu');
    if (cpu === null) throw new Error('the cpu backend is not registered (import @tensorflow/tfjs)');
    const be = asWasm(backend);
    const wasmBackend = backend as tf.KernelBackend;

    const toCpu = (t: tf.TensorInfo): tf.TensorInfo =>
      ({ dataId: cpu.write(wasmBackend.readSync(t.dataId), t.shape, t.dtype), shape: t.shape, dtype: t.dtype });
    // Some kernels (Einsum) take an array of inputs; keep the container's kind.
    const cpuInputs: tf.NamedTensorInfoMap | tf.TensorInfo[] = Array.isArray(inputs)
      ? (inputs as tf.TensorInfo[]).map(toCpu)
      : Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, t === undefined ? t : toCpu(t)]));
    const made = (Array.isArray(cpuInputs) ? cpuInputs : Object.values(cpuInputs))
      .filter((t): t is tf.TensorInfo => t !== undefined);

    try {
      const res = cpuKernel.kernelFunc({ inputs: cpuInputs as tf.NamedTensorInfoMap, backend: cpu, attrs });
      const outs = Array.isArray(res) ? res : [res];
      const back = outs.map((o) => {
        const values = cpu.readSync(o.dataId) as Float32Array | Int32Array | Uint8Array;
        const w = be.makeOutput(o.shape, o.dtype);
        be.typedArrayFromHeap(w).set(values); // view taken right after the allocation, used at once
        cpu.disposeData(o.dataId);
        return w;
      });
      return Array.isArray(res) ? back : back[0];
    } finally {
      for (const t of made) cpu.disposeData(t.dataId);
    }
  };
}
