// Counts the kernels the tfjs engine dispatches while a function runs (tf.profile), by kernel name. The unit of
// the "kernels per layer": on a GPU backend each is (at least) one dispatch with its host-side bookkeeping.
import * as tf from '@tensorflow/tfjs';

export interface KernelCount {
  /** Registered kernels the engine ran (a customGrad op's own entry is a scope, not a kernel: not counted). */
  total: number;
  /** Per kernel name, most frequent first. */
  byName: Record<string, number>;
}

/**
 * Runs `fn` under tf.profile and counts the registered kernels of the active backend it dispatched. Kernels that
 * a kernel calls directly (our wasm kernels call others by kernelFunc) are one kernel to the engine and count once.
 * The tensors `fn` returns are disposed.
 */
export async function countKernels(fn: () => tf.TensorContainer | Promise<tf.TensorContainer>): Promise<KernelCount> {
  const backend = tf.getBackend();
  const info = await tf.profile(async () => {
    const out = await fn();
    return out;
  });
  tf.dispose(info.result);
  const byName = new Map<string, number>();
  for (const k of info.kernels) {
    if (tf.getKernel(k.name, backend) === undefined) continue; // a customGrad scope entry
    byName.set(k.name, (byName.get(k.name) ?? 0) + 1);
  }
  const sorted = [...byName].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  return { total: sorted.reduce((s, [, n]) => s + n, 0), byName: Object.fromEntries(sorted) };
}
