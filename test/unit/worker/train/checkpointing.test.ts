// Checkpoints of a replica: a round trip restores parameters, σReparam u/v, optimizer slots, EMA and step bitwise;
// another architecture or optimizer is refused with a message naming the checkpoint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../../worker/backend.js';
import { loadConfig } from '../../../../shared/config/index.js';
import { buildModel } from '../../../../worker/models/index.js';
import { Trainer, localReducer } from '../../../../worker/train/trainer.js';
import { saveCheckpoint, loadLatestCheckpoint } from '../../../../worker/train/checkpointing.js';
import { Rng } from '../../../../worker/nn/rng.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const cfg = (model: Record<string, unknown> = {}, optim: Record<string, unknown> = {}) =>
  loadConfig({ env: {}, overrides: { model: { variant: 'test/4', imageSize: 8, ...model }, data: { numClasses: 3 }, optim: { emaDecay: 0.9, ...optim } } });

async function trained(config: ReturnType<typeof cfg>): Promise<Trainer> {
  const t = new Trainer(config, buildModel(config));
  const rng = new Rng(1);
  const batch = { x: Float32Array.from({ length: 4 * 8 * 8 * 3 }, () => rng.normal()), y: Int32Array.of(0, 1, 2, 0), n: 4 };
  for (let i = 0; i < 3; i++) await t.trainStep(batch, localReducer);
  return t;
}

test('round trip: parameters, u/v, optimizer slots, EMA and step come back bitwise', async () => {
  await initBackend('cpu');
  const dir = mkdtempSync(join(tmpdir(), 'sgt-ckpt-'));
  const a = await trained(cfg());
  await saveCheckpoint(a, dir, a.config);
  const b = new Trainer(a.config, buildModel(a.config));
  assert.ok(await loadLatestCheckpoint(b, dir, b.config));
  assert.equal(b.step, 3);
  const sa = a.state.snapshot(), sb = b.state.snapshot();
  for (const [n, v] of sa) assert.deepEqual(Buffer.from(sb.get(n)!.buffer), Buffer.from(v.buffer), n);
  const oa = a.optimizer.getState(), ob = b.optimizer.getState();
  assert.equal(ob.step, oa.step);
  for (const [k, v] of oa.slots) assert.deepEqual(Buffer.from(ob.slots.get(k)!.buffer), Buffer.from(v.buffer), k);
  const ea = a.ema!.getState(), eb = b.ema!.getState();
  for (const [k, v] of ea.slots) assert.deepEqual(Buffer.from(eb.slots.get(k)!.buffer), Buffer.from(v.buffer), k);
  a.dispose();
  b.dispose();
});

test('resuming another architecture or optimizer is refused, naming the checkpoint and the keys', async () => {
  await initBackend('cpu');
  const dir = mkdtempSync(join(tmpdir(), 'sgt-ckpt-'));
  const a = await trained(cfg());
  await saveCheckpoint(a, dir, a.config);
  const other = new Trainer(cfg({ norm: 'pre' }), buildModel(cfg({ norm: 'pre' })));
  await assert.rejects(loadLatestCheckpoint(other, dir, other.config), /SGT_CHECKPOINT_INVALID: checkpoint .*ckpt-000000003 holds another architecture .*"norm":"none".*"norm":"pre"/);
  const lars = new Trainer(cfg({}, { name: 'lars' }), buildModel(cfg({}, { name: 'lars' })));
  await assert.rejects(loadLatestCheckpoint(lars, dir, lars.config), /written by optimizer adamw, this run uses lars \(optim\.name\)/);
  for (const t of [a, other, lars]) t.dispose();
});
