// Checkpoints of a replica: a round trip restores parameters, σReparam u/v, optimizer slots, EMA and step bitwise;
// another architecture or optimizer is refused with a message naming the checkpoint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../../worker/backend.js';
import { loadConfig } from '../../../../shared/config/index.js';
import { ClassifyTask } from '../../../../worker/tasks/classify.js';
import { Trainer } from '../../../../worker/train/trainer.js';
import { LocalCollective } from '../../../../worker/comm/collective.js';
import { saveCheckpoint, loadLatestCheckpoint } from '../../../../worker/train/checkpointing.js';
import { Rng } from '../../../../worker/rng.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const cfg = (model: Record<string, unknown> = {}, optim: Record<string, unknown> = {}) =>
  loadConfig({ env: {}, overrides: { model: { vit: { variant: 'test/4', imageSize: 8 }, ...model }, data: { shapes: { numClasses: 3 } }, optim: { emaDecay: 0.9, ...optim } } });

async function trained(config: ReturnType<typeof cfg>): Promise<Trainer> {
  const t = new Trainer(config, new ClassifyTask(config));
  const rng = new Rng(1);
  const batch = { x: Float32Array.from({ length: 4 * 8 * 8 * 3 }, () => rng.normal32()), y: Int32Array.of(0, 1, 2, 0), samples: 4, units: 4, skipped: [] };
  for (let i = 0; i < 3; i++) await t.trainStep(batch, new LocalCollective());
  return t;
}

test('round trip: parameters, u/v, optimizer slots, EMA and step come back bitwise', async () => {
  await initBackend('cpu');
  const dir = mkdtempSync(join(tmpdir(), 'sgt-ckpt-'));
  const a = await trained(cfg());
  await saveCheckpoint(a, dir, a.config);
  const b = new Trainer(a.config, new ClassifyTask(a.config));
  assert.ok(await loadLatestCheckpoint(b, dir));
  assert.equal(b.step, 3);
  const sa = await a.state.snapshot(), sb = await b.state.snapshot();
  const bytes = (v: Float32Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  for (const [n, v] of sa) assert.deepEqual(bytes(sb.get(n)!), bytes(v), n);
  const oa = await a.optimizer.getState(), ob = await b.optimizer.getState();
  assert.equal(ob.step, oa.step);
  for (const [k, v] of oa.slots) assert.deepEqual(bytes(ob.slots.get(k)!), bytes(v), k);
  const ea = await a.ema!.getState(), eb = await b.ema!.getState();
  assert.equal(b.digest, a.digest, 'the step digest is part of the checkpoint');
  assert.notEqual(a.digest, '0000000000000000');
  for (const [k, v] of ea.slots) assert.deepEqual(bytes(eb.slots.get(k)!), bytes(v), k);
  a.dispose();
  b.dispose();
});

test('resuming another architecture or optimizer is refused, naming the checkpoint and the keys', async () => {
  await initBackend('cpu');
  const dir = mkdtempSync(join(tmpdir(), 'sgt-ckpt-'));
  const a = await trained(cfg());
  await saveCheckpoint(a, dir, a.config);
  const other = new Trainer(cfg({ norm: 'pre' }), new ClassifyTask(cfg({ norm: 'pre' })));
  await assert.rejects(loadLatestCheckpoint(other, dir), /SGT_CHECKPOINT_INVALID: checkpoint .*ckpt-000000003 holds another architecture .*"norm":"none".*"norm":"pre"/);
  const lars = new Trainer(cfg({}, { name: 'lars' }), new ClassifyTask(cfg({}, { name: 'lars' })));
  await assert.rejects(loadLatestCheckpoint(lars, dir), /written by optimizer adamw, this run uses lars \(optim\.name\)/);
  for (const t of [a, other, lars]) t.dispose();
});
