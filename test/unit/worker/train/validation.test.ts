// worker/train/validation.ts: evaluation sets (periodic and final), host-side evaluateBatch, per-set metricsOf, and
// the sums crossing ranks once (a fake two-rank collective that adds a second rank's sums).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { Collective } from '../../../../worker/comm/collective.js';
import type { EvalModel, EvalSet, Task, TaskBatch, TaskData } from '../../../../worker/tasks/task.js';
import type { Trainer } from '../../../../worker/train/trainer.js';
import { validate } from '../../../../worker/train/validation.js';

interface Batch extends TaskBatch {
  /** Hypothesis errors and reference length of the batch's examples. */
  errors: number;
  refLen: number;
}

const SETS: EvalSet[] = [
  { name: 'dev-a', when: 'periodic' },
  { name: 'dev-b', when: 'periodic' },
  { name: 'test-a', when: 'final' },
];
/** Per set: this rank's batches as [examples, errors, reference length]. */
const BATCHES: Record<string, Array<[number, number, number]>> = {
  'dev-a': [[2, 3, 10], [1, 1, 5]],
  'dev-b': [[4, 0, 20]],
  'test-a': [[3, 6, 12]],
};

function fixture(): { trainer: Trainer<Batch>; data: TaskData<Batch>; seen: string[] } {
  const seen: string[] = [];
  const task = {
    name: 'fake',
    evalSums: ['errors', 'ref', 'n'],
    evalMetrics: [],
    async evaluateBatch(b: Batch, m: EvalModel, set: string) {
      seen.push(`${set}@${m.temperature}`);
      return { errors: b.errors, ref: b.refLen, n: b.samples };
    },
    metricsOf(sums: Record<string, number>, set: string) {
      return { [`wer_${set}`]: sums.errors / sums.ref };
    },
  } as unknown as Task<Batch>;
  const data = {
    evalSets: SETS,
    async *valBatches(_w: number, _r: number, set?: string) {
      for (const [samples, errors, refLen] of BATCHES[set!]) yield { samples, units: samples, skipped: [], errors, refLen };
    },
  } as unknown as TaskData<Batch>;
  const trainer = { task, state: { params: new Map(), buffers: new Map() }, ema: null } as unknown as Trainer<Batch>;
  return { trainer, data, seen };
}

/** A collective of two ranks whose other rank evaluated exactly the same batches. */
const twoRanks: Collective = {
  rank: 0, worldSize: 2, bytesSent: 0,
  async allReduceSum(buf: Float32Array) { for (let i = 0; i < buf.length; i++) buf[i] *= 2; },
  async broadcast() {}, async barrier() {},
};

test('periodic sets each get their own metrics from their own sums; final sets only when asked', async () => {
  const { trainer, data, seen } = fixture();
  const v = await validate(trainer, data, twoRanks, 0.5);
  assert.deepEqual(Object.keys(v.metrics).sort(), ['wer_dev-a', 'wer_dev-b']);
  assert.equal(v.metrics['wer_dev-a'], (3 + 1) / (10 + 5)); // ×2 on both sides of the ratio
  assert.equal(v.metrics['wer_dev-b'], 0);
  assert.equal(v.n, 2 * (2 + 1 + 4));
  assert.equal(v.ema, null);
  assert.deepEqual(seen, ['dev-a@0.5', 'dev-a@0.5', 'dev-b@0.5']);

  const all = await validate(trainer, data, twoRanks, 1, { periodic: true, final: true });
  assert.deepEqual(Object.keys(all.metrics).sort(), ['wer_dev-a', 'wer_dev-b', 'wer_test-a']);
  assert.equal(all.metrics['wer_test-a'], 6 / 12);
  assert.equal(all.n, 2 * (2 + 1 + 4 + 3));

  const finalOnly = await validate(trainer, data, twoRanks, 1, { periodic: false, final: true });
  assert.deepEqual(Object.keys(finalOnly.metrics), ['wer_test-a']);
  assert.equal(finalOnly.n, 6);
});
