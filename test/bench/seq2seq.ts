// bench:seq2seq — tokens/s of one Transformer-base training step (forward + backward, no optimizer) on tfjs:
// d512, 6+6 layers, 8 heads, FFN 2048, σReparam on every linear (one power step), post-LN, tied embeddings.
// Usage: npm run bench:seq2seq [-- --backend wasm --batch 16 --src 32 --tgt 32 --vocab 8000 --steps 2 --warmup 1]
// test/bench/seq2seq_torch.py runs the same shapes in PyTorch (one thread) for comparison; neither runs in CI.
import * as tf from '@tensorflow/tfjs';
import { cpus } from 'node:os';
import { initBackend, type BackendName } from '../../worker/backend.js';
import { buildSeq2Seq } from '../../worker/models/seq2seq.js';
import { Rng } from '../../worker/rng.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

async function main(): Promise<void> {
  const backend = arg('backend', 'wasm') as BackendName;
  const [B, S, T, V] = ['batch', 'src', 'tgt', 'vocab'].map((k, i) => Number(arg(k, ['16', '32', '32', '8000'][i])));
  const steps = Number(arg('steps', '2'));
  const warmup = Number(arg('warmup', '1'));
  const active = await initBackend(backend);
  const t0 = performance.now();
  const model = buildSeq2Seq({
    variant: 'base', vocabSize: V, padId: 0, norm: 'post', reparam: 'sigma', gammaInit: 'one', qkv: 'separate', activation: 'relu', maxPositions: 1024, seed: 1,
  });
  const buildSeconds = (performance.now() - t0) / 1000;
  const params = new Map(model.params.map((p) => [p.name, tf.tensor(p.init, p.shape)]));
  let buffers = new Map(model.buffers.map((b) => [b.name, tf.tensor(b.init, b.shape)]));
  const names = [...params.keys()];
  const vars = names.map((n) => params.get(n)!);
  const rng = new Rng(2);
  const ids = (n: number) => Int32Array.from({ length: n }, () => 3 + Math.floor(rng.next() * (V - 3)));
  const src = tf.tensor2d(ids(B * S), [B, S], 'int32');
  const tgtIn = tf.tensor2d(ids(B * T), [B, T], 'int32');
  const labels = tf.tensor1d(ids(B * T), 'int32');
  const times: number[] = [];
  const cpuTimes: number[] = [];
  for (let s = 0; s < warmup + steps; s++) {
    const start = performance.now();
    const cpu0 = process.cpuUsage();
    let updates = new Map<string, tf.Tensor>();
    const { value, grads } = tf.engine().gradients(() => {
      const r = model.forward(new Map(names.map((n, i) => [n, vars[i]])), buffers, { src, tgtIn }, { training: true, temperature: 1, dropout: 0.1, attnDropout: 0, seed: s, powerIterations: 1 });
      updates = new Map([...r.bufferUpdates].map(([k, t]) => [k, tf.keep(t)]));
      const logits = (r.outputs['logits'] as tf.Tensor3D).reshape([B * T, V]);
      // Label-smoothed (0.1) cross-entropy summed over target tokens.
      const logp = tf.logSoftmax(logits);
      const nll = tf.neg(tf.sum(tf.mul(tf.oneHot(labels, V), logp)));
      const smooth = tf.neg(tf.mean(logp, -1).sum());
      return tf.add(tf.mul(nll, 0.9), tf.mul(smooth, 0.1)) as tf.Scalar;
    }, vars);
    // One packed readback, as the training loop does.
    const flat = tf.tidy(() => tf.concat([value.reshape([1]), ...Object.values(grads).map((g) => g.reshape([-1]))]));
    await flat.data();
    // σReparam's power step (one per training step, as the trainer asks) returns new u/v for every σ linear.
    tf.dispose([flat, value, ...Object.values(grads), ...[...buffers].filter(([k]) => updates.has(k)).map(([, t]) => t)]);
    buffers = new Map([...buffers].map(([k, t]) => [k, updates.get(k) ?? t]));
    const cpu = process.cpuUsage(cpu0);
    if (s >= warmup) {
      times.push((performance.now() - start) / 1000);
      cpuTimes.push((cpu.user + cpu.system) / 1e6);
    }
  }
  // On a shared machine wall time measures the neighbours: tokens/s are per second of this process's CPU time
  // (one thread), wall times are reported beside them.
  const sec = cpuTimes.reduce((a, b) => a + b, 0) / cpuTimes.length;
  console.log(JSON.stringify({
    bench: 'seq2seq-step', backend: active, node: process.version, cpu: cpus()[0]?.model, threads: 1,
    shapes: { batch: B, srcTokens: S, tgtTokens: T, vocab: V, variant: 'base (d512, 6+6, 8 heads, FFN 2048)', norm: 'post', reparam: 'sigma' },
    params: model.params.reduce((a, p) => a + p.init.length, 0), buildSeconds: +buildSeconds.toFixed(1),
    cpuSecondsPerStep: +sec.toFixed(2), wallSecondsPerStep: times.map((t) => +t.toFixed(2)), targetTokensPerSecond: +((B * T) / sec).toFixed(1), allTokensPerSecond: +((B * (S + T)) / sec).toFixed(1),
  }, null, 2));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
