// A LogSoftmax kernel for backends that lack one (cpu and wasm in tfjs 4.22), composed of the backend's own
// kernels. With it, log-softmax is one kernel whose registered gradient (gradients.ts) is twice differentiable;
// tf.logSoftmax is a customGrad op instead, whose second-order terms are lost.
import * as tf from '@tensorflow/tfjs';

/** y = x − max − log Σ exp(x − max) along `axis` (the last one, as tf.logSoftmax requires). */
export function makeLogSoftmaxKernel(backendName: string): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const logits = inputs['logits'] as tf.TensorInfo;
    const axis = Number(attrs?.['axis'] ?? -1);
    const run = (name: string, ins: tf.NamedTensorInfoMap, at: tf.NamedAttrMap = {}): tf.TensorInfo => {
      const kernel = tf.getKernel(name, backendName);
      if (kernel === undefined) throw new Error(`LogSoftmax on ${backendName} needs kernel ${name}`);
      return kernel.kernelFunc({ inputs: ins, backend, attrs: at }) as tf.TensorInfo;
    };
    const temps: tf.TensorInfo[] = [];
    const keep = (t: tf.TensorInfo): tf.TensorInfo => { temps.push(t); return t; };
    try {
      const max = keep(run(tf.Max, { x: logits }, { reductionIndices: [axis], keepDims: true }));
      const shifted = keep(run(tf.Sub, { a: logits, b: max }));
      const exps = keep(run(tf.Exp, { x: shifted }));
      const sums = keep(run(tf.Sum, { x: exps }, { axis: [axis], keepDims: true }));
      const logSums = keep(run(tf.Log, { x: sums }));
      return run(tf.Sub, { a: shifted, b: logSums });
    } finally {
      for (const t of temps) (backend as tf.KernelBackend).disposeData(t.dataId);
    }
  };
}
