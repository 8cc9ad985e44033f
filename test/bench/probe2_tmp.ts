// temporary probe (not committed): fused kernels on vs off, bitwise
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../worker/backend.js';
import { loadConfig } from '../../shared/config/index.js';
import { ClassifyTask } from '../../worker/tasks/classify.js';
import type { VitModel } from '../../worker/models/vit.js';
import { Trainer } from '../../worker/train/trainer.js';
import { applyBlock } from '../../worker/nn/layers.js';
import { powerStep } from '../../worker/nn/linear.js';
import { setFusedKernels } from '../../worker/kernels/composite/index.js';

async function main() {
  const be = process.argv[2] ?? 'wasm';
  await initBackend(be as 'wasm');
  const norm = process.argv[3] ?? 'none'; const reparam = process.argv[4] ?? 'sigma';
  const config = loadConfig({ env: {}, overrides: { backend: be, model: { family: 'vit', vit: { variant: 'bench/4', imageSize: 32, pool: 'cls' }, reparam, norm }, data: { shapes: { numClasses: 10 } }, train: { globalBatch: 32 }, optim: { name: 'adamw', lr: 1e-3 } } });
  const task = new ClassifyTask(config);
  const model = task.model as VitModel;
  const trainer = new Trainer(config, task, { totalSteps: 5 });
  const state = trainer.state;
  const blk = model.blocks[0];
  const prefix = `blocks.${blk.index}.`;
  const names = [...state.params.keys()].filter((n) => n.startsWith(prefix));
  const x = tf.randomNormal([32, model.arch.tokens, model.arch.dim], 0, 1, 'float32', 1) as tf.Tensor3D;
  const run = async (on: boolean) => {
    setFusedKernels(on);
    const buffers = new Map(state.buffers);
    for (const l of model.linears.filter((r) => r.name.startsWith(prefix) && r.reparam !== 'none')) {
      const { u, v } = powerStep(state.params.get(l.weight)! as unknown as tf.Tensor2D, buffers.get(l.u!) as tf.Tensor1D, 1);
      buffers.set(l.u!, u); buffers.set(l.v!, v);
    }
    const w = tf.randomNormal(x.shape, 0, 1, 'float32', 2);
    let ent: tf.Tensor | undefined; let mx: tf.Tensor | undefined;
    const { value, grads } = tf.valueAndGrads((...ps: tf.Tensor[]) => {
      const params = new Map(names.map((n, i) => [n, ps[i]]));
      const out = applyBlock(blk, params, buffers, x, { temperature: 1, training: true, dropout: 0, attnDropout: 0, seed: 1 });
      ent = tf.keep(out.entropy); mx = tf.keep(out.maxTokenNorm);
      return tf.sum(tf.mul(out.x, w)) as tf.Scalar;
    })(names.map((n) => state.params.get(n)!));
    const bufs = [...buffers.entries()].filter(([k]) => k.startsWith(prefix)).map(([, t]) => t);
    return [value, ent!, mx!, ...grads, ...bufs].map((t) => t.dataSync().slice());
  };
  const a = await run(false); const b = await run(true);
  let bad = 0;
  a.forEach((arr, i) => { let d = 0; for (let j = 0; j < arr.length; j++) if (arr[j] !== b[i][j] && !(isNaN(arr[j]) && isNaN(b[i][j]))) d++; if (d) { bad++; let m = 0; for (let j = 0; j < arr.length; j++) m = Math.max(m, Math.abs(arr[j] - b[i][j])); console.log('diff', i, names[i - 3] ?? '', d, '/', arr.length, 'max', m); } });
  console.log(be, norm, reparam, 'tensors', a.length, 'differing', bad);
  // full step
  setFusedKernels(true);
}
main();
