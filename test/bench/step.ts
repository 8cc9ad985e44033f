// bench:step — ms/step and samples/s of the reference bench model (32×32×3, patch 4, dim 192, depth 6, 3 heads,
// MLP 768, 10 classes, batch 32, AdamW, one thread): σReparam without LN and plain linear with pre-LN, per backend.
// Usage: npm run bench:step [-- --backends wasm,cpu --steps 10 --warmup 2 --stock Identity,BatchMatMul --family vit
//        --fused on|off|both]
// --fused off (default, what training runs use) | on | both: time every model with the fused ops
// (worker/kernels/fused) on, off, or both, alternating step by step.
// --composite on (default, what training runs use) | off | both: the same with the fused layer kernels
// (worker/kernels/composite: one registered kernel per linear, attention core, GELU, LayerNorm, power step).
// --kernel-times on: after the timed steps, one more step per configuration with every kernel timed (kernel_time.ts):
// self CPU ms per kernel (`kernelTimes`), and in the summary the matrix products' CPU ms, their share of the step and
// their GFLOP per CPU second; step_torch.py --matmuls reports the same products for PyTorch, so that the two sides'
// arithmetic compares apart from the rest.
// --stock K,...: on wasm, also time each model with those patched kernels swapped back to tfjs's stock ones (same run),
// and report patched ÷ stock.
// msPerStep is wall-clock; cpuMsPerStep is the process's CPU time per step (user + system), which a loaded shared
// machine inflates far less than wall-clock: compare runs by it when the load average exceeds the core count.
// Before/after (issue 10): run this on two checkouts at the same time and compare their `summary` blocks, e.g.
//   git worktree add /tmp/base <ref> && (cd /tmp/base && npm ci && npm run build)
//   node /tmp/base/dist/test/bench/step.js --backends wasm & npm run bench:step -- --backends wasm; wait
// Every result also carries `kernels`: the kernels the engine dispatched in one whole training step (forward,
// backward, power step, optimizer) and in one Transformer layer's power step + forward + backward, by kernel name.
import * as tf from '@tensorflow/tfjs';
import { execFileSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { initBackend, type BackendName } from '../../worker/backend.js';
import { loadConfig } from '../../shared/config/index.js';
import { ClassifyTask } from '../../worker/tasks/classify.js';
import { Trainer } from '../../worker/train/trainer.js';
import { LocalCollective } from '../../worker/comm/collective.js';
import type { VitModel } from '../../worker/models/vit.js';
import { Rng } from '../../worker/rng.js';
import { KERNEL_PATCHES, stockKernel } from '../../worker/kernels/index.js';
import { countKernels, type KernelCount } from '../../worker/kernels/count.js';
import { timeKernels, type KernelTimes } from './kernel_time.js';
import { setFusedOps } from '../../worker/kernels/fused/index.js';
import { setFusedKernels } from '../../worker/kernels/composite/index.js';
import { applyBlock } from '../../worker/nn/layers.js';
import { powerStep } from '../../worker/nn/linear.js';
import type { ReplicaState } from '../../worker/train/state.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const BATCH = 32;
const SIZE = 32;

/**
 * A model family the bench can build: its config overrides for a variant, and one Transformer layer as a
 * function of the built model's state (for the per-layer kernel count). Add a family here when it exists.
 */
interface Family {
  overrides(v: { reparam: string; norm: string }): Record<string, unknown>;
  /** Power step of the layer's linears, then forward + backward of the layer alone on a random input. */
  layer(model: VitModel, state: ReplicaState): () => tf.TensorContainer;
}

const FAMILIES: Record<string, Family> = {
  vit: {
    overrides: (v) => ({
      model: { family: 'vit', vit: { variant: 'bench/4', imageSize: SIZE, pool: 'cls' }, reparam: v.reparam, norm: v.norm },
      data: { shapes: { numClasses: 10 } },
    }),
    layer: (model, state) => () => {
      const blk = model.blocks[0];
      const prefix = `blocks.${blk.index}.`;
      const names = [...state.params.keys()].filter((n) => n.startsWith(prefix));
      const buffers = new Map(state.buffers);
      for (const l of model.linears.filter((r) => r.name.startsWith(prefix) && r.reparam !== 'none')) {
        const { u, v } = powerStep(state.params.get(l.weight)! as unknown as tf.Tensor2D, buffers.get(l.u!) as tf.Tensor1D, 1);
        buffers.set(l.u!, u);
        buffers.set(l.v!, v);
      }
      const x = tf.randomNormal([BATCH, model.arch.tokens, model.arch.dim], 0, 1, 'float32', 1) as tf.Tensor3D;
      const { grads } = tf.valueAndGrads((...ps: tf.Tensor[]) => {
        const params = new Map(names.map((n, i) => [n, ps[i]]));
        const out = applyBlock(blk, params, buffers, x, { temperature: 1, training: true, dropout: 0, attnDropout: 0, seed: 1 });
        return tf.sum(out.x) as tf.Scalar;
      })(names.map((n) => state.params.get(n)!));
      return grads;
    },
  },
};
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

/** The checkout's commit (and "+dirty" with uncommitted changes), so that a before/after pair names both sides. */
function gitCommit(): string | null {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return dirty ? `${head}+dirty` : head;
  } catch {
    return null; // not a git checkout (an installed package)
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
  const familyName = arg('family', 'vit');
  const family = FAMILIES[familyName];
  if (family === undefined) throw new Error(`--family ${familyName}: unknown (one of ${Object.keys(FAMILIES).join(', ')})`);
  // Default off: what a training run uses (nothing turns the fused ops on outside tests and this bench).
  const fusedArg = arg('fused', 'off');
  const fusedSets = ({ on: [true], off: [false], both: [true, false] } as Record<string, boolean[]>)[fusedArg];
  if (fusedSets === undefined) throw new Error(`--fused ${fusedArg}: use on, off or both`);
  const compositeArg = arg('composite', 'on');
  const compositeSets = ({ on: [true], off: [false], both: [true, false] } as Record<string, boolean[]>)[compositeArg];
  if (compositeSets === undefined) throw new Error(`--composite ${compositeArg}: use on, off or both`);
  const results: Array<{
    backend: string; model: string; kernels: string; fused: boolean; composite: boolean; msPerStep: number; cpuMsPerStep: number; samplesPerSecond: number; steps: number;
    warmup: number; params: number; kernelsPerStep: KernelCount; kernelsPerLayer: KernelCount; kernelTimes?: KernelTimes;
  }> = [];
  const kernelTimesArg = arg('kernel-times', 'off');
  if (kernelTimesArg !== 'on' && kernelTimesArg !== 'off') throw new Error(`--kernel-times ${kernelTimesArg}: use on or off`);
  for (const backend of backends) {
    const active = await initBackend(backend);
    // cpu is ~50× slower than wasm: fewer steps keep the bench within minutes.
    const steps = Number(arg('steps', active === 'cpu' ? '2' : '10'));
    const warmup = Number(arg('warmup', active === 'cpu' ? '1' : '2'));
    const kernelSets = active === 'wasm' && stockNames.length ? ['patched', `stock:${stockNames.join('+')}`] : ['patched'];
    // Every configuration gets its own trainer; the timed steps alternate between them (one step each in turn),
    // so that the load of a shared machine falls on all of them alike and their ratios hold.
    const runs = Object.entries(VARIANTS).flatMap(([name, v]) => kernelSets.flatMap((kernels) => fusedSets.flatMap((fusedOn) => compositeSets.map((compositeOn) => {
      const config = loadConfig({
        env: {},
        overrides: { backend, ...family.overrides(v), train: { globalBatch: BATCH }, optim: { name: 'adamw', lr: 1e-3 } },
      });
      const task = new ClassifyTask(config);
      return { name, kernels, fusedOn, compositeOn, model: task.model as VitModel, trainer: new Trainer(config, task, { totalSteps: warmup + steps + 1 }), times: [] as number[], cpu: [] as number[] };
    }))));
    const rng = new Rng(1);
    const batch = { x: Float32Array.from({ length: BATCH * SIZE * SIZE * 3 }, () => rng.normal32()), y: Int32Array.from({ length: BATCH }, (_, i) => i % 10), samples: BATCH, units: BATCH, skipped: [] };
    const inSetting = async <T>(r: (typeof runs)[number], fn: () => Promise<T>): Promise<T> => {
      setFusedOps(r.fusedOn);
      setFusedKernels(r.compositeOn);
      try {
        return await (r.kernels === 'patched' ? fn() : withStockKernels(stockNames, fn));
      } finally {
        setFusedOps(false);
        setFusedKernels(true);
      }
    };
    for (let s = 0; s < warmup + steps; s++) {
      for (const r of runs) {
        await inSetting(r, async () => {
          const c0 = process.cpuUsage();
          const t0 = performance.now();
          await r.trainer.trainStep(batch, new LocalCollective());
          const t1 = performance.now();
          const c = process.cpuUsage(c0);
          if (s >= warmup) {
            r.times.push(t1 - t0);
            r.cpu.push((c.user + c.system) / 1000);
          }
        });
      }
    }
    for (const r of runs) {
      const ms = median(r.times);
      // Counted after the timed steps: profiling adds bookkeeping per kernel.
      const kernelsPerStep = await inSetting(r, () => countKernels(async () => {
        await r.trainer.trainStep(batch, new LocalCollective());
        return [];
      }));
      const kernelsPerLayer = await inSetting(r, () => countKernels(family.layer(r.model, r.trainer.state)));
      const kernelTimes = kernelTimesArg === 'on'
        ? await inSetting(r, () => timeKernels(() => r.trainer.trainStep(batch, new LocalCollective())))
        : undefined;
      results.push({
        backend: active, model: r.name, kernels: r.kernels, fused: r.fusedOn, composite: r.compositeOn, msPerStep: +ms.toFixed(1), cpuMsPerStep: +median(r.cpu).toFixed(1),
        samplesPerSecond: +((BATCH * 1000) / ms).toFixed(2), steps, warmup, params: r.trainer.state.totalSize,
        kernelsPerStep, kernelsPerLayer, kernelTimes,
      });
      r.trainer.dispose();
    }
  }
  const out = {
    bench: 'step',
    family: familyName,
    commit: gitCommit(),
    loadAverage: loadavg().map((l) => +l.toFixed(2)),
    cores: cpus().length,
    config: { image: [SIZE, SIZE, 3], patch: 4, dim: 192, depth: 6, heads: 3, mlp: 768, classes: 10, batch: BATCH, optimizer: 'adamw', threads: 1 },
    node: process.version,
    cpu: cpus()[0]?.model,
    // One line per configuration: what a before/after note quotes.
    summary: results.map((r) => ({
      model: r.model, backend: r.backend, fused: r.fused, composite: r.composite, kernels: r.kernels, msPerStep: r.msPerStep, cpuMsPerStep: r.cpuMsPerStep,
      samplesPerSecond: r.samplesPerSecond, kernelsPerStep: r.kernelsPerStep.total, kernelsPerLayer: r.kernelsPerLayer.total,
      ...(r.kernelTimes ? {
        matmulCpuMsPerStep: r.kernelTimes.matmul.cpuMs, matmulCpuShare: +(r.kernelTimes.matmul.cpuMs / r.kernelTimes.cpuMs).toFixed(3),
        matmulGflops: r.kernelTimes.matmul.gflops, outsideKernelsCpuMs: r.kernelTimes.outsideCpuMs,
      } : {}),
    })),
    results,
    ratios: Object.fromEntries(
      backends.map((b) => {
        const s = results.find((r) => r.backend === b && r.model === 'sigmaReparam_noLN' && r.kernels === 'patched' && r.fused === fusedSets[0] && r.composite === compositeSets[0]);
        const p = results.find((r) => r.backend === b && r.model === 'plain_preLN' && r.kernels === 'patched' && r.fused === fusedSets[0] && r.composite === compositeSets[0]);
        return [b, s && p ? +(s.msPerStep / p.msPerStep).toFixed(3) : null];
      }),
    ),
    cpuRatios: Object.fromEntries(
      backends.map((b) => {
        const s = results.find((r) => r.backend === b && r.model === 'sigmaReparam_noLN' && r.kernels === 'patched' && r.fused === fusedSets[0] && r.composite === compositeSets[0]);
        const p = results.find((r) => r.backend === b && r.model === 'plain_preLN' && r.kernels === 'patched' && r.fused === fusedSets[0] && r.composite === compositeSets[0]);
        return [b, s && p ? +(s.cpuMsPerStep / p.cpuMsPerStep).toFixed(3) : null];
      }),
    ),
    compositeOverPlain: Object.fromEntries(
      results.filter((r) => r.composite && !r.fused && r.kernels === 'patched').flatMap((r) => {
        const u = results.find((q) => q.backend === r.backend && q.model === r.model && q.kernels === 'patched' && !q.fused && !q.composite);
        return u ? [[`${r.backend}/${r.model}`, { ms: +(r.msPerStep / u.msPerStep).toFixed(3), cpuMs: +(r.cpuMsPerStep / u.cpuMsPerStep).toFixed(3) }]] : [];
      }),
    ),
    patchedOverStock: Object.fromEntries(
      results.filter((r) => r.kernels !== 'patched').map((r) => {
        const p = results.find((q) => q.backend === r.backend && q.model === r.model && q.kernels === 'patched' && q.fused === r.fused && q.composite === r.composite)!;
        return [`${r.backend}/${r.model}`, +(p.msPerStep / r.msPerStep).toFixed(3)];
      }),
    ),
    fusedOverUnfused: Object.fromEntries(
      results.filter((r) => r.fused && r.kernels === 'patched').flatMap((r) => {
        const u = results.find((q) => q.backend === r.backend && q.model === r.model && q.kernels === 'patched' && !q.fused && q.composite === r.composite);
        return u ? [[`${r.backend}/${r.model}`, +(r.msPerStep / u.msPerStep).toFixed(3)]] : [];
      }),
    ),
    kernelCounts: Object.fromEntries(results.map((r) => [`${r.backend}/${r.model}/${r.kernels}/${r.fused ? 'fused' : 'unfused'}/${r.composite ? 'composite' : 'plain'}`, { step: r.kernelsPerStep.total, layer: r.kernelsPerLayer.total }])),
    note: 'cpuRatios: the same ratio of CPU time per step; kernelsPerLayer: one layer\'s power step + forward + backward (plus the seed and sum of the probe loss); ratios: σReparam-noLN ms/step ÷ plain-preLN ms/step, same backend, same run (fused ops as the first --fused setting); fusedOverUnfused: ms/step with the fused ops ÷ without, same run; compositeOverPlain: ms and CPU ms/step with the fused layer kernels ÷ without, same run; patchedOverStock: ms/step with our kernels ÷ with the --stock kernels, same run',
  };
  console.log(JSON.stringify(out, null, 2));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
