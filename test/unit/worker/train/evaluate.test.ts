// Classification's evaluation sums (top-1 / top-5 hits, loss sum, n) against a hand count with 12 classes (with 3
// classes top-5 is always 1 and proves nothing; issue 11 item 4). The logits are given, so every rank is chosen.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../../worker/backend.js';
import { ClassifyTask } from '../../../../worker/tasks/classify.js';

const K = 12;

/** Σ of ClassifyTask's evaluation sums over chunks of `chunk` rows, read back once per chunk. */
async function evaluateInChunks(x: Float32Array, y: Int32Array, n: number, chunk: number): Promise<Record<string, number>> {
  const total: Record<string, number> = { top1: 0, top5: 0, loss: 0, n: 0 };
  for (let i = 0; i < n; i += chunk) {
    const m = Math.min(chunk, n - i);
    const packed = tf.tidy(() => {
      const logits = tf.tensor2d(x.subarray(i * K, (i + m) * K), [m, K]);
      const labels = tf.tensor1d(y.subarray(i, i + m), 'int32');
      const sums = ClassifyTask.prototype.evaluate.call(null, { logits }, { labels });
      return tf.stack([sums.top1, sums.top5, sums.loss, sums.n]);
    });
    const v = await packed.data();
    packed.dispose();
    ['top1', 'top5', 'loss', 'n'].forEach((k, j) => (total[k] += v[j]));
  }
  return total;
}

/** A row of K distinct logits in which the label has the given 1-based rank. */
function row(label: number, rank: number, shift: number): number[] {
  const others = Array.from({ length: K }, (_, c) => c).filter((c) => c !== label);
  // others sorted by a class-dependent key, then the label inserted at position rank-1; logits descend by position.
  others.sort((a, b) => ((a * 7 + shift) % K) - ((b * 7 + shift) % K));
  const order = [...others.slice(0, rank - 1), label, ...others.slice(rank - 1)];
  const out = new Array<number>(K);
  order.forEach((c, pos) => (out[c] = 3 - 0.37 * pos));
  return out;
}

test('top-1 and top-5 with 12 classes match a hand count, across evaluation chunks', async () => {
  await initBackend('cpu');
  // (label, rank of the label among the logits): ranks 1 count for top-1; ranks 1–5 for top-5; 6 and 12 for neither.
  const samples: [number, number][] = [[0, 1], [3, 2], [11, 5], [5, 6], [7, 12], [2, 1], [9, 4], [4, 3], [6, 7], [1, 5], [10, 1]];
  const rows = samples.map(([label, rank], i) => row(label, rank, i));
  // The rows really put each label at its rank (the stand-in is right before we trust the count).
  for (const [i, [label, rank]] of samples.entries()) assert.equal(rows[i].filter((v) => v > rows[i][label]).length, rank - 1);
  const hand1 = samples.filter(([, r]) => r === 1).length; // 3
  const hand5 = samples.filter(([, r]) => r <= 5).length; // 8
  assert.deepEqual([hand1, hand5], [3, 8]);
  const x = Float32Array.from(rows.flat());
  const y = Int32Array.from(samples.map(([l]) => l));
  const before = tf.memory().numTensors;
  for (const batch of [4, 128]) {
    const r = await evaluateInChunks(x, y, samples.length, batch);
    assert.equal(r.n, samples.length);
    assert.equal(r.top1, hand1, `top-1 hits (chunks of ${batch})`);
    assert.equal(r.top5, hand5, `top-5 hits (chunks of ${batch})`);
    // Cross-entropy sum against log-sum-exp in float64.
    const ce = rows.reduce((s, l, i) => s + Math.log(l.reduce((a, v) => a + Math.exp(v), 0)) - l[y[i]], 0);
    assert.ok(Math.abs(r.loss - ce) <= 1e-5 * ce + 1e-6, `loss sum ${r.loss} vs ${ce}`);
  }
  assert.equal(tf.memory().numTensors, before, 'evaluate leaks no tensors');
});
