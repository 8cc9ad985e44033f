// temporary probe (not committed)
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../worker/backend.js';
import { loadConfig } from '../../shared/config/index.js';
import { ClassifyTask } from '../../worker/tasks/classify.js';
import { Trainer } from '../../worker/train/trainer.js';
import type { VitModel } from '../../worker/models/vit.js';
import { applyBlock } from '../../worker/nn/layers.js';
import { powerStep } from '../../worker/nn/linear.js';
import { setFusedOps } from '../../worker/kernels/fused/index.js';

async function main() {
  await initBackend('wasm');
  const norm = process.argv[2] ?? 'none'; const reparam = process.argv[3] ?? 'sigma';
  if (process.argv[4] === 'fused') setFusedOps(true);
  const config = loadConfig({ env: {}, overrides: { backend: 'wasm', model: { family: 'vit', vit: { variant: 'bench/4', imageSize: 32, pool: 'cls' }, reparam, norm }, data: { shapes: { numClasses: 10 } }, train: { globalBatch: 32 }, optim: { name: 'adamw', lr: 1e-3 } } });
  const task = new ClassifyTask(config);
  const model = task.model as VitModel;
  const trainer = new Trainer(config, task, { totalSteps: 5 });
  const state = trainer.state;
  const blk = model.blocks[0];
  const prefix = `blocks.${blk.index}.`;
  const names = [...state.params.keys()].filter((n) => n.startsWith(prefix));
  const info = await tf.profile(() => {
    const buffers = new Map(state.buffers);
    for (const l of model.linears.filter((r) => r.name.startsWith(prefix) && r.reparam !== 'none')) {
      const { u, v } = powerStep(state.params.get(l.weight)! as unknown as tf.Tensor2D, buffers.get(l.u!) as tf.Tensor1D, 1);
      buffers.set(l.u!, u); buffers.set(l.v!, v);
    }
    (globalThis as any).__mark = 'fwd';
    const x = tf.randomNormal([32, model.arch.tokens, model.arch.dim], 0, 1, 'float32', 1) as tf.Tensor3D;
    const { grads } = tf.valueAndGrads((...ps: tf.Tensor[]) => {
      const params = new Map(names.map((n, i) => [n, ps[i]]));
      const out = applyBlock(blk, params, buffers, x, { temperature: 1, training: true, dropout: 0, attnDropout: 0, seed: 1 });
      return tf.sum(out.x) as tf.Scalar;
    })(names.map((n) => state.params.get(n)!));
    return grads;
  });
  const ks = info.kernels.filter((k) => tf.getKernel(k.name, 'wasm') !== undefined || true);
  for (const k of ks) console.log(k.name, tf.getKernel(k.name, 'wasm') ? '' : '(scope)', JSON.stringify(k.inputShapes), '->', JSON.stringify(k.outputShapes));
}
main();
