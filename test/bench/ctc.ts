// bench:ctc — ms of the CTC loss (forward + gradient wrt logits) on the fast host op and on the differentiable tfjs
// path, and of one Hessian-vector product through the differentiable path, at speech shapes (B 8, T 300, S 60, C 29).
// Usage: node dist/test/bench/ctc.js [--backend wasm] [--B 8] [--T 300] [--S 60] [--reps 3]
import * as tf from '@tensorflow/tfjs';

import { initBackend, type BackendName } from '../../worker/backend.js';
import { hessianVectorProduct } from '../../worker/diagnostics/hvp.js';
import { ctcLoss } from '../../worker/nn/ctc.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const backend = arg('backend', 'wasm') as BackendName;
const B = Number(arg('B', '8'));
const T = Number(arg('T', '300'));
const S = Number(arg('S', '60'));
const C = 29;
const reps = Number(arg('reps', '3'));

await initBackend(backend);
const targets = Array.from({ length: B * S }, (_, i) => 1 + ((i * 7) % (C - 1)));
const tg = { targets, targetLengths: new Array<number>(B).fill(S), inputLengths: Array.from({ length: B }, (_, b) => T - 10 * b) };
const x = tf.randomNormal([B, T, C], 0, 1, 'float32', 1) as tf.Tensor3D;
const v = tf.randomNormal([B, T, C], 0, 1, 'float32', 2) as tf.Tensor3D;

async function time(label: string, fn: () => tf.Tensor | tf.Tensor[]): Promise<void> {
  // Wall and process CPU ms (CPU time stays meaningful on a loaded machine).
  const once = async (): Promise<[number, number]> => {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const out = fn();
    const list = Array.isArray(out) ? out : [out];
    for (const t of list) await t.data();
    tf.dispose(list);
    const c = process.cpuUsage(c0);
    return [performance.now() - t0, (c.user + c.system) / 1000];
  };
  await once(); // warm-up (kernel registration, wasm compilation)
  const runs: [number, number][] = [];
  for (let i = 0; i < reps; i++) runs.push(await once());
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const [wall, cpu] = [median(runs.map((r) => r[0])), median(runs.map((r) => r[1]))];
  console.log(`${label.padEnd(44)} ${wall.toFixed(1).padStart(9)} ms wall ${cpu.toFixed(1).padStart(9)} ms cpu (median of ${reps})`);
}

console.log(`ctc bench on ${tf.getBackend()}: B=${B} T=${T} S=${S} C=${C}`);
for (const impl of ['fast', 'differentiable'] as const) {
  await time(`${impl}: loss`, () => ctcLoss(x, tg, { impl }));
  await time(`${impl}: loss + gradient wrt logits`, () => tf.grad((z: tf.Tensor) => ctcLoss(z as tf.Tensor3D, tg, { impl }))(x));
}
await time('differentiable: Hessian-vector product', () =>
  hessianVectorProduct(([z]) => ctcLoss(z as tf.Tensor3D, tg, { impl: 'differentiable' }) as tf.Scalar, [x], [v]));
