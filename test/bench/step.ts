// bench:step — ms/step and samples/s of the reference bench model (32×32×3, patch 4, dim 192, depth 6, 3 heads,
// MLP 768, 10 classes, batch 32, AdamW, one thread): σReparam without LN and plain linear with pre-LN, per backend.
// Usage: npm run bench:step [-- --backends wasm,cpu --steps 10 --warmup 2 --stock Identity,BatchMatMul]
// --stock K,...: on wasm, also time each model with those patched kernels swapped back to tfjs's stock ones (same run),
// and report patched ÷ stock.
import * as tf from '@tensorflow/tfjs';
import { cpus } from 'node:os';
import { initBackend, type BackendName } from '../../worker/backend.js';
import { loadConfig } from '../../shared/config/index.js';
import { ClassifyTask } from '../../worker/tasks/classify.js';
import { Trainer, localReduce } from '../../worker/train/trainer.js';
import { Rng } from '../../worker/nn/rng.js';
import { KERNEL_PATCHES, stockKernel } from '../../worker/kernels/index.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const BATCH = 32;
const SIZE = 32;
const VARIANTS = {
  sigmaReparam_noLN: { reparam: 'sigma', norm: 'none' },
  plain_preLN: { reparam: 'none', norm: 'pre' },
} as const;

async function available(): Promise<BackendName[]> {
  const out: BackendName[] = [];
  for (const b of ['tensorflow', 'wasm', 'cpu'] as const) {
    try {
      if ((await initBackend(b)) === (b === 'tensorflow' ? tf.getBackend() : b)) out.push(b);
    } catch {
      // not installed here
    }
  }
  return out;
}

/** Runs `fn` with the named patched wasm kernels replaced by tfjs's stock kernels, then puts the patches back. */
async function withStockKernels<T>(names: string[], fn: () => Promise<T>): Promise<T> {
  const patched = names.map((name) => {
    const stock = stockKernel(name, 'wasm');
    if (stock === undefined) {
      throw new Error(`--stock ${name}: not a replaced wasm kernel (replaced: ${KERNEL_PATCHES.filter((p) => p.how === 'replace').map((p) => p.kernelName).join(', ')})`);
    }
    const mine = tf.getKernel(name, 'wasm')!;
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel(stock);
    return mine;
  });
  try {
    return await fn();
  } finally {
    for (const k of patched) {
      tf.unregisterKernel(k.kernelName, 'wasm');
      tf.registerKernel(k);
    }
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main(): Promise<void> {
  const requested = arg('backends', '');
  const backends = requested ? (requested.split(',') as BackendName[]) : await available();
  const stockNames = arg('stock', '').split(',').filter(Boolean);
  const results: Array<{ backend: string; model: string; kernels: string; msPerStep: number; samplesPerSecond: number; steps: number; warmup: number; params: number }> = [];
  for (const backend of backends) {
    const active = await initBackend(backend);
    // cpu is ~50× slower than wasm: fewer steps keep the bench within minutes.
    const steps = Number(arg('steps', active === 'cpu' ? '2' : '10'));
    const warmup = Number(arg('warmup', active === 'cpu' ? '1' : '2'));
    const kernelSets = active === 'wasm' && stockNames.length ? ['patched', `stock:${stockNames.join('+')}`] : ['patched'];
    for (const [name, v] of Object.entries(VARIANTS)) {
      for (const kernels of kernelSets) {
        const time = async (): Promise<void> => {
          const config = loadConfig({
            env: {},
            overrides: {
              backend,
              model: { variant: 'bench/4', imageSize: SIZE, reparam: v.reparam, norm: v.norm, pool: 'cls' },
              data: { numClasses: 10 },
              train: { globalBatch: BATCH },
              optim: { name: 'adamw', lr: 1e-3 },
            },
          });
          const trainer = new Trainer(config, new ClassifyTask(config), { totalSteps: warmup + steps });
          const rng = new Rng(1);
          const batch = { x: Float32Array.from({ length: BATCH * SIZE * SIZE * 3 }, () => rng.normal()), y: Int32Array.from({ length: BATCH }, (_, i) => i % 10), samples: BATCH, units: BATCH, skipped: [] };
          const times: number[] = [];
          for (let s = 0; s < warmup + steps; s++) {
            const t0 = performance.now();
            await trainer.trainStep(batch, localReduce);
            if (s >= warmup) times.push(performance.now() - t0);
          }
          const ms = median(times);
          results.push({ backend: active, model: name, kernels, msPerStep: +ms.toFixed(1), samplesPerSecond: +((BATCH * 1000) / ms).toFixed(2), steps, warmup, params: trainer.state.totalSize });
          trainer.dispose();
        };
        await (kernels === 'patched' ? time() : withStockKernels(stockNames, time));
      }
    }
  }
  const out = {
    bench: 'step',
    config: { image: [SIZE, SIZE, 3], patch: 4, dim: 192, depth: 6, heads: 3, mlp: 768, classes: 10, batch: BATCH, optimizer: 'adamw', threads: 1 },
    node: process.version,
    cpu: cpus()[0]?.model,
    results,
    ratios: Object.fromEntries(
      backends.map((b) => {
        const s = results.find((r) => r.backend === b && r.model === 'sigmaReparam_noLN' && r.kernels === 'patched');
        const p = results.find((r) => r.backend === b && r.model === 'plain_preLN' && r.kernels === 'patched');
        return [b, s && p ? +(s.msPerStep / p.msPerStep).toFixed(3) : null];
      }),
    ),
    patchedOverStock: Object.fromEntries(
      results.filter((r) => r.kernels !== 'patched').map((r) => {
        const p = results.find((q) => q.backend === r.backend && q.model === r.model && q.kernels === 'patched')!;
        return [`${r.backend}/${r.model}`, +(p.msPerStep / r.msPerStep).toFixed(3)];
      }),
    ),
    note: 'ratios: σReparam-noLN ms/step ÷ plain-preLN ms/step, same backend, same run; patchedOverStock: ms/step with our kernels ÷ with the --stock kernels, same run',
  };
  console.log(JSON.stringify(out, null, 2));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
