// Where a step's CPU time goes, by kernel: every kernel the engine or a fused kernel runs on the active backend is
// wrapped in a timer for one call of a function, and each gets its SELF time (a fused kernel's inner kernels are
// charged to them, not to it). On wasm and cpu a kernel returns when its arithmetic is done, so the time around the
// kernel function is its cost; CPU time (process.cpuUsage) is the figure that other load on the machine does not
// inflate. BatchMatMul also gets its floating-point operations, for GFLOP/s against the PyTorch peer's products.
import * as tf from '@tensorflow/tfjs';

export interface KernelTimes {
  /** CPU ms (user + system) of the whole call. */
  cpuMs: number;
  /** CPU ms outside every kernel: the engine's bookkeeping, tape, JavaScript of the model and optimizer. */
  outsideCpuMs: number;
  /** Self CPU ms and calls per kernel name, most expensive first. */
  byKernel: Record<string, { cpuMs: number; calls: number }>;
  /** The matrix products: self CPU ms, 2·batch·m·k·n summed in 1e9 operations, and GFLOP per CPU second. */
  matmul: { cpuMs: number; calls: number; gflop: number; gflops: number };
}

/** 2·batch·m·k·n of a BatchMatMul call. */
function matMulFlop(args: Parameters<tf.KernelFunc>[0]): number {
  const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const ta = Boolean(args.attrs?.['transposeA']);
  const tb = Boolean(args.attrs?.['transposeB']);
  const m = a.shape[a.shape.length - (ta ? 1 : 2)];
  const k = a.shape[a.shape.length - (ta ? 2 : 1)];
  const n = b.shape[b.shape.length - (tb ? 2 : 1)];
  const batch = Math.max(tf.util.sizeFromShape(a.shape.slice(0, -2)), tf.util.sizeFromShape(b.shape.slice(0, -2)));
  return 2 * batch * m * k * n;
}

/** Runs `fn` with every kernel of the active backend timed, then restores the kernels it found. */
export async function timeKernels(fn: () => Promise<unknown>): Promise<KernelTimes> {
  const backend = tf.getBackend();
  const kernels = tf.getKernelsForBackend(backend);
  const self = new Map<string, { us: number; calls: number }>();
  // CPU µs of the kernels running now, innermost last: a kernel's self time is its time minus its children's.
  const childUs: number[] = [0];
  let flop = 0;
  for (const k of kernels) {
    tf.unregisterKernel(k.kernelName, backend);
    tf.registerKernel({
      ...k,
      kernelFunc: (args) => {
        childUs.push(0);
        const c0 = process.cpuUsage();
        try {
          return k.kernelFunc(args);
        } finally {
          const c = process.cpuUsage(c0);
          const us = c.user + c.system;
          const s = self.get(k.kernelName) ?? { us: 0, calls: 0 };
          s.us += us - childUs.pop()!;
          s.calls += 1;
          self.set(k.kernelName, s);
          childUs[childUs.length - 1] += us;
          if (k.kernelName === tf.BatchMatMul) flop += matMulFlop(args);
        }
      },
    });
  }
  const c0 = process.cpuUsage();
  try {
    await fn();
  } finally {
    for (const k of kernels) {
      tf.unregisterKernel(k.kernelName, backend);
      tf.registerKernel(k);
    }
  }
  const c = process.cpuUsage(c0);
  const cpuMs = (c.user + c.system) / 1000;
  const sorted = [...self].sort((a, b) => b[1].us - a[1].us);
  const mm = self.get(tf.BatchMatMul) ?? { us: 0, calls: 0 };
  return {
    cpuMs: +cpuMs.toFixed(1),
    outsideCpuMs: +(cpuMs - childUs[0] / 1000).toFixed(1),
    byKernel: Object.fromEntries(sorted.map(([n, s]) => [n, { cpuMs: +(s.us / 1000).toFixed(1), calls: s.calls }])),
    matmul: { cpuMs: +(mm.us / 1000).toFixed(1), calls: mm.calls, gflop: +(flop / 1e9).toFixed(3), gflops: mm.us ? +(flop / 1e3 / mm.us).toFixed(2) : 0 },
  };
}
