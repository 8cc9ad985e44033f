// Time spent in matrix products during one call of a function: every BatchMatMul the engine or a fused kernel runs
// on the active backend, with its multiply-adds. On wasm and cpu a kernel returns when its arithmetic is done, so the
// time around the kernel function is the product's cost; CPU time (process.cpuUsage) is the figure that other load
// on the machine does not inflate. What bench:step --matmuls reports: the share of a step
// that is matmul, and the GFLOP/s those products reach (the PyTorch peer reports the same from its profiler).
import * as tf from '@tensorflow/tfjs';

export interface MatMulTime {
  /** Wall ms inside BatchMatMul during the call. */
  ms: number;
  /** CPU ms (user + system) of this process inside BatchMatMul. */
  cpuMs: number;
  calls: number;
  /** 2·batch·m·k·n summed over the products, in 1e9 floating-point operations. */
  gflop: number;
  /** gflop / CPU seconds. */
  gflops: number;
}

/** Runs `fn` with the active backend's BatchMatMul wrapped in a timer, then restores the kernel it found. */
export async function timeMatMuls(fn: () => Promise<unknown>): Promise<MatMulTime> {
  const backend = tf.getBackend();
  const kernel = tf.getKernel(tf.BatchMatMul, backend);
  if (kernel === undefined) throw new Error(`backend ${backend} has no BatchMatMul kernel to time`);
  let ms = 0;
  let cpuUs = 0;
  let calls = 0;
  let flop = 0;
  const timed: tf.KernelConfig = {
    ...kernel,
    kernelFunc: (args) => {
      const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
      const ta = Boolean(args.attrs?.['transposeA']);
      const tb = Boolean(args.attrs?.['transposeB']);
      const m = a.shape[a.shape.length - (ta ? 1 : 2)];
      const k = a.shape[a.shape.length - (ta ? 2 : 1)];
      const n = b.shape[b.shape.length - (tb ? 2 : 1)];
      const batch = Math.max(tf.util.sizeFromShape(a.shape.slice(0, -2)), tf.util.sizeFromShape(b.shape.slice(0, -2)));
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const out = kernel.kernelFunc(args);
      ms += performance.now() - t0;
      const c = process.cpuUsage(c0);
      cpuUs += c.user + c.system;
      calls += 1;
      flop += 2 * batch * m * k * n;
      return out;
    },
  };
  tf.unregisterKernel(tf.BatchMatMul, backend);
  tf.registerKernel(timed);
  try {
    await fn();
  } finally {
    tf.unregisterKernel(tf.BatchMatMul, backend);
    tf.registerKernel(kernel);
  }
  const cpuMs = cpuUs / 1000;
  return { ms: +ms.toFixed(1), cpuMs: +cpuMs.toFixed(1), calls, gflop: +(flop / 1e9).toFixed(3), gflops: +(flop / 1e6 / cpuMs).toFixed(2) };
}
