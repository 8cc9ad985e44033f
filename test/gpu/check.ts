// The GPU check (bench:gpu packs it for an offline GPU host; test/gpu/run.sh runs it there): on the webgpu backend,
// (1) a small σReparam ViT's loss, gradient and Hessian-vector product against the cpu backend, (2) train-step timings
// of the bench model (b32, b256) and ViT-B/16 (b64). Prints one JSON object. All readbacks are async (dataSync does not
// work on webgpu in Node). Usage: node check.mjs [--backend webgpu] [--quick] [--no-bench]
import * as tf from '@tensorflow/tfjs';
import { cpus } from 'node:os';
import { activeAdapter, initBackend, type BackendName } from '../../worker/backend.js';
import { loadConfig } from '../../shared/config/index.js';
import { ClassifyTask } from '../../worker/tasks/classify.js';
import { Trainer } from '../../worker/train/trainer.js';
import { LocalCollective } from '../../worker/comm/collective.js';
import { ReplicaState } from '../../worker/train/state.js';
import { gradient, hessianVectorProduct } from '../../worker/diagnostics/hvp.js';
import { Rng } from '../../worker/rng.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const backend = arg('backend', 'webgpu') as BackendName;
const quick = process.argv.includes('--quick');
/** Correctness only (a dry run of the bundle on a CPU backend). */
const noBench = process.argv.includes('--no-bench');

/** Loss, gradient and H·v of a small σReparam ViT on one backend, read back as float64 arrays. */
async function probe(on: BackendName): Promise<{ loss: number; grad: Float64Array; hv: Float64Array }> {
  await initBackend(on);
  const config = loadConfig({ env: {}, overrides: {
    backend: on, model: { vit: { variant: 'test/4', imageSize: 8 }, reparam: 'sigma', norm: 'pre', qkv: 'joint' }, data: { shapes: { numClasses: 10 } },
  } });
  const task = new ClassifyTask(config);
  const state = new ReplicaState(task.model.params, task.model.buffers);
  const rng = new Rng(3);
  const n = 4;
  const images = tf.tensor4d(Float32Array.from({ length: n * 8 * 8 * 3 }, () => rng.normal32()), [n, 8, 8, 3]);
  const labels = tf.tensor1d(Int32Array.from({ length: n }, (_, i) => (3 * i) % 10), 'int32');
  const names = task.model.params.map((p) => p.name);
  const params = names.map((k) => state.params.get(k)!);
  const loss = (ps: tf.Tensor[]): tf.Scalar => {
    const named = new Map(names.map((k, i) => [k, ps[i]]));
    const { outputs } = task.model.forward(named, state.buffers, { images }, { training: false, temperature: 1, dropout: 0, attnDropout: 0, seed: 0 });
    return task.loss(outputs, { labels }, { labelSmoothing: 0.1 }).loss;
  };
  const vec = params.map((p, i) => tf.tensor(Float32Array.from({ length: p.size }, (_, j) => Math.sin(1 + i * 7 + j)), p.shape));
  const l = tf.tidy(() => loss(params));
  const g = gradient(loss, params);
  const hv = hessianVectorProduct(loss, params, vec);
  const flat = async (ts: tf.Tensor[]) => {
    const c = tf.concat(ts.map((t) => t.reshape([-1])));
    const v = Float64Array.from(await c.data());
    c.dispose();
    return v;
  };
  const out = { loss: (await l.data())[0], grad: await flat(g), hv: await flat(hv) };
  tf.dispose([l, ...g, ...hv, ...vec, images, labels]);
  state.dispose();
  return out;
}

/** max |a−b| / (rtol·|b| + atol·max|b|): ≤ 1 passes. */
function worst(a: Float64Array, b: Float64Array, rtol: number, atol: number): number {
  let scale = 0;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  let w = 0;
  for (let i = 0; i < a.length; i++) w = Math.max(w, Math.abs(a[i] - b[i]) / (rtol * Math.abs(b[i]) + atol * scale + 1e-30));
  return w;
}

async function bench(name: string, variant: string, imageSize: number, batch: number, reparam: string, norm: string, steps: number) {
  const config = loadConfig({ env: {}, overrides: {
    backend, model: { vit: { variant, imageSize, pool: 'cls' }, reparam, norm }, data: { shapes: { numClasses: 10 } }, train: { globalBatch: batch },
    optim: { name: 'adamw', lr: 1e-3 },
  } });
  const t0 = performance.now();
  const trainer = new Trainer(config, new ClassifyTask(config), { totalSteps: steps + 2 });
  const buildSeconds = (performance.now() - t0) / 1000;
  const rng = new Rng(1);
  const b = {
    x: Float32Array.from({ length: batch * imageSize * imageSize * 3 }, () => rng.normal32()),
    y: Int32Array.from({ length: batch }, (_, i) => i % 10), samples: batch, units: batch, skipped: [],
  };
  const times: number[] = [];
  for (let s = 0; s < steps + 2; s++) {
    const t = performance.now();
    await trainer.trainStep(b, new LocalCollective());
    if (s >= 2) times.push(performance.now() - t);
  }
  trainer.dispose();
  times.sort((x, y) => x - y);
  const ms = times[Math.floor(times.length / 2)];
  return { name, variant, imageSize, batch, reparam, norm, steps, buildSeconds: +buildSeconds.toFixed(1), msPerStep: +ms.toFixed(1), samplesPerSecond: +((batch * 1000) / ms).toFixed(1) };
}

async function main(): Promise<void> {
  const started = performance.now();
  const out: Record<string, unknown> = { check: 'gpu', backend, node: process.version, cpu: cpus()[0]?.model };
  try {
    await initBackend(backend, (msg, fields) => (out.backendLog = { msg, ...fields }));
    out.adapter = activeAdapter() ?? null;
  } catch (e) {
    out.error = (e as Error).message;
    console.log(JSON.stringify(out, null, 2));
    process.exit(1);
  }
  const ref = await probe('cpu');
  const got = await probe(backend);
  const grad = worst(got.grad, ref.grad, 2e-3, 1e-4);
  const hv = worst(got.hv, ref.hv, 5e-3, 5e-4);
  out.correctness = {
    model: 'ViT test/4, σReparam, pre-LN, 8×8 images, batch 4, label smoothing 0.1', rtolGrad: 2e-3, rtolHv: 5e-3,
    lossCpu: ref.loss, loss: got.loss, gradWorst: +grad.toFixed(3), hvWorst: +hv.toFixed(3),
    pass: Math.abs(got.loss - ref.loss) <= 1e-3 * Math.abs(ref.loss) && grad <= 1 && hv <= 1,
  };
  await initBackend(backend);
  const steps = quick ? 2 : 5;
  out.bench = noBench ? [] : [
    await bench('bench σReparam no-LN b32', 'bench/4', 32, 32, 'sigma', 'none', steps),
    await bench('bench plain pre-LN b32', 'bench/4', 32, 32, 'none', 'pre', steps),
    await bench('bench σReparam no-LN b256', 'bench/4', 32, 256, 'sigma', 'none', steps),
    ...(quick ? [] : [await bench('ViT-B/16 plain pre-LN b64', 'B/16', 224, 64, 'none', 'pre', 3)]),
  ];
  out.seconds = +((performance.now() - started) / 1000).toFixed(1);
  console.log(JSON.stringify(out, null, 2));
  if (!(out.correctness as { pass: boolean }).pass) process.exit(1);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
