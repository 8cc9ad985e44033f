// bench:speech — input frames/s (10 ms log-mel frames) of one training step's forward + backward (CTC loss, σReparam
// power step) of the speech model, default the paper's shape scaled down ('bench': d256, 6 layers, MLP 1024, 4 heads).
// Compare with test/bench/speech_torch.py (same shapes, PyTorch, one thread).
// Usage: node dist/test/bench/speech.js [--backend wasm] [--variant bench] [--B 4] [--T 600] [--S 60] [--steps 3]
//        [--kernel-times]: then one more step with every kernel timed (kernel_time.ts), printed as JSON: self CPU ms per
//        kernel, the matrix products' GFLOP/s, the CPU ms outside all kernels.
import * as tf from '@tensorflow/tfjs';

import { initBackend, type BackendName } from '../../worker/backend.js';
import { buildSpeech, speechDefaults } from '../../worker/models/speech.js';
import { ctcLoss } from '../../worker/nn/ctc.js';
import { timeKernels } from './kernel_time.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const backend = arg('backend', 'wasm') as BackendName;
const variant = arg('variant', 'bench');
const B = Number(arg('B', '4'));
const T = Number(arg('T', '600'));
const S = Number(arg('S', '60'));
const steps = Number(arg('steps', '3'));

await initBackend(backend);
const model = buildSpeech({ ...speechDefaults(variant, 1), norm: 'none', positions: 'cape' });
const params = new Map(model.params.map((p) => [p.name, tf.variable(tf.tensor(p.init, p.shape), true)]));
const buffers = new Map(model.buffers.map((p) => [p.name, tf.tensor(p.init, p.shape)]));
const features = tf.randomNormal([B, T, 80], 0, 1, 'float32', 1) as tf.Tensor3D;
const lengths = tf.tensor1d(Array.from({ length: B }, (_, b) => T - 30 * b), 'int32');
const outLengths = Array.from({ length: B }, (_, b) => model.outputLength(T - 30 * b));
const targets = { targets: Array.from({ length: B * S }, (_, i) => 3 + (i % 26)), targetLengths: new Array<number>(B).fill(S), inputLengths: outLengths };
const nParams = model.params.reduce((n, p) => n + p.init.length, 0);

/** Wall and process CPU milliseconds (CPU time is what a shared, loaded machine still measures fairly). */
async function step(seed: number): Promise<[number, number]> {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const vars = [...params.values()];
  const { value, grads } = tf.variableGrads(() => {
    const r = model.forward(params, buffers, { features, lengths }, {
      training: true, temperature: 1, dropout: 0.1, attnDropout: 0, seed, powerIterations: 1,
    });
    return ctcLoss(r.outputs['logits'] as tf.Tensor3D, targets) as tf.Scalar;
  }, vars);
  // One packed readback, as the loop does.
  await tf.concat([value.reshape([1]), ...Object.values(grads).map((g) => g.reshape([-1]))]).data();
  tf.dispose([value, ...Object.values(grads)]);
  const c = process.cpuUsage(c0);
  return [performance.now() - t0, (c.user + c.system) / 1000];
}

console.log(`speech bench on ${tf.getBackend()}: variant ${variant} (${JSON.stringify(model.arch)}, ${(nParams / 1e6).toFixed(2)} M params), ` +
  `B=${B} T=${T} frames (T'=${model.outputLength(T)}), S=${S}`);
await step(0); // warm-up
const runs: [number, number][] = [];
for (let i = 1; i <= steps; i++) runs.push(await step(i));
const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const wall = median(runs.map((r) => r[0]));
const cpu = median(runs.map((r) => r[1]));
const frames = Array.from(await lengths.data()).reduce((a, b) => a + b, 0);
for (const [what, ms] of [['wall', wall], ['cpu', cpu]] as const) {
  console.log(`forward+backward (${what} time): ${ms.toFixed(0)} ms/step (median of ${steps}), ` +
    `${(frames / (ms / 1000)).toFixed(0)} input frames/s (${(frames / 100 / (ms / 1000)).toFixed(2)} s of audio per s)`);
}
if (process.argv.includes('--kernel-times')) {
  const t = await timeKernels(() => step(steps + 1));
  const top = Object.fromEntries(Object.entries(t.byKernel).slice(0, 15));
  console.log(JSON.stringify({ kernelTimes: { cpuMs: t.cpuMs, outsideCpuMs: t.outsideCpuMs, matmul: t.matmul, top } }));
}
