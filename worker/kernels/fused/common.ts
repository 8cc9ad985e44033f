// Shared by the fused ops: the switch that turns them off (A/B benchmarks, tests against the unfused composition)
// and the customGrad wrapper every fused op is built on.
//
// Route: tf.customGrad, never a saved output or intermediate. The forward runs with the tape off (no Identity clone
// per saved tensor, no tape node per op), and the gradient is a short hand-written chain of differentiable ops of
// the saved INPUTS only, recomputing what it needs. Hessian-vector products stay exact because that chain is recorded
// on the outer tape like any other ops; a saved intermediate would be a constant there (notes/tfjs.md).
import * as tf from '@tensorflow/tfjs';

// Off by default: on wasm they cut kernels by 25–30 % but were not faster in the same-run A/B (σReparam 1.26× slower,
// plain pre-LN 1.00×, on a loaded 2-core machine), and they change float rounding. `bench:step -- --fused both`
// measures both; turn them on where that shows they pay. The registered layer kernels (kernels/composite, on by
// default on cpu/wasm) do the same job in ~8× fewer kernels with the composition's bits; these take precedence when on.
let enabled = false;

/** Turns the fused ops on or off (default) process-wide; off, every call site runs the plain tfjs composition. */
export function setFusedOps(on: boolean): void {
  enabled = on;
}

export function fusedOpsEnabled(): boolean {
  return enabled;
}

/**
 * A single-output op `forward(...inputs)` whose gradient is `backward(dy, saved, constants)`, which returns one
 * gradient per input (shaped like it) built from differentiable tfjs ops of `dy`, the saved inputs and `constants`
 * only. `save[i]` false: input i is not kept for the backward (each kept tensor costs one Identity kernel); backward
 * then sees `null` there. `constants` are tensors without a gradient (masks, power-step vectors) that the backward
 * needs: they are kept with the op like saved inputs, since the caller's scope may be gone when the backward runs.
 */
export function fusedOp<T extends tf.Tensor>(
  forward: (...inputs: tf.Tensor[]) => T,
  backward: (dy: tf.Tensor, saved: Array<tf.Tensor | null>, constants: tf.Tensor[]) => tf.Tensor[],
  save?: readonly boolean[],
  constants: readonly tf.Tensor[] = [],
): (...inputs: tf.Tensor[]) => T {
  return tf.customGrad((...args: unknown[]) => {
    const saveFunc = args.pop() as tf.GradSaveFunc;
    const inputs = args as tf.Tensor[];
    const keep = inputs.map((_, i) => save === undefined || save[i]);
    saveFunc([...inputs.filter((_, i) => keep[i]), ...constants]);
    return {
      value: forward(...inputs),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        let j = 0;
        const kept = keep.map((k) => (k ? saved[j++] : null));
        return backward(dy as tf.Tensor, kept, saved.slice(j));
      },
    };
  }) as unknown as (...inputs: tf.Tensor[]) => T;
}

/** Sum `g` (shaped like a broadcast result) down to `shape`. */
export function unbroadcast(g: tf.Tensor, shape: number[]): tf.Tensor {
  const axes = tf.broadcast_util.getReductionAxes(shape, g.shape);
  return tf.reshape(axes.length > 0 ? tf.sum(g, axes) : g, shape);
}

/**
 * `fn(...inputs)` computed off the gradient tape: a diagnostic (entropy, token norms) costs its kernels only, with
 * no Identity clone per op and no tape node. Its gradient is zero.
 */
export function untaped<T extends tf.Tensor>(fn: (...inputs: tf.Tensor[]) => T, ...inputs: tf.Tensor[]): T {
  const shapes = inputs.map((t) => t.shape);
  return fusedOp(fn, () => shapes.map((s) => tf.zeros(s)), inputs.map(() => false))(...inputs);
}
