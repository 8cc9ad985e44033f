// optim.schedule plateau wired through the trainer (issue 13): the loop's evaluation feeds the task's headline metric,
// the lr follows (halved after `patience` evaluations without improvement, in the headline's direction), and the
// schedule's state survives a checkpoint round trip and the state broadcast to a joining replica (exactly, lr and
// best are float64); a checkpoint without it is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../../../../worker/backend.js';
import { loadConfig } from '../../../../shared/config/index.js';
import { ClassifyTask } from '../../../../worker/tasks/classify.js';
import { Trainer } from '../../../../worker/train/trainer.js';
import { saveCheckpoint, loadLatestCheckpoint } from '../../../../worker/train/checkpointing.js';
import { fromNamed, packState, stateLayout, toNamed, unpackState } from '../../../../worker/train/snapshot.js';

const cfg = (optim: Record<string, unknown>) =>
  loadConfig({ env: {}, overrides: { model: { vit: { variant: 'test/4', imageSize: 8 } }, data: { shapes: { numClasses: 3 } }, optim: { lr: 0.4, ...optim } } });

test('plateau: the headline (val_top1, higher is better) drives the lr; other schedules ignore evaluations', async () => {
  await initBackend('cpu');
  const c = cfg({ schedule: 'plateau', plateau: { patience: 2, factor: 0.5, threshold: 0 } });
  const t = new Trainer(c, new ClassifyTask(c));
  assert.equal(t.lr(0), 0.4);
  const seen = [0.5, 0.6, 0.55, 0.6, 0.58, 0.7].map((v) => t.observeEvaluation({ val_top1: v, val_loss: 1 })!);
  // 0.5 best, 0.6 best, 0.55 bad 1, 0.6 (not better than 0.6) bad 2 → halve, 0.58 bad 1, 0.7 best.
  assert.deepEqual(seen.map((s) => s.reduced), [false, false, false, true, false, false]);
  assert.equal(t.lr(10), 0.2);
  const plain = cfg({ schedule: 'constant' });
  assert.equal(new Trainer(plain, new ClassifyTask(plain)).observeEvaluation({ val_top1: 0.1 }), null);
});

test('plateau: its state is checkpointed and restored; a checkpoint without it is refused', async () => {
  await initBackend('cpu');
  const c = cfg({ schedule: 'plateau', plateau: { patience: 1, factor: 0.5, threshold: 0 } });
  const a = new Trainer(c, new ClassifyTask(c));
  for (const v of [0.5, 0.4, 0.3]) a.observeEvaluation({ val_top1: v });
  assert.equal(a.lr(0), 0.1);
  const dir = mkdtempSync(join(tmpdir(), 'sgt-plateau-'));
  await saveCheckpoint(a, dir, c);
  const b = new Trainer(c, new ClassifyTask(c));
  await loadLatestCheckpoint(b, dir);
  assert.equal(b.lr(0), 0.1);
  assert.deepEqual(b.plateau!.state(), a.plateau!.state());
  const plain = cfg({ schedule: 'constant' });
  const dir2 = mkdtempSync(join(tmpdir(), 'sgt-plateau-'));
  await saveCheckpoint(new Trainer(plain, new ClassifyTask(plain)), dir2, plain);
  await assert.rejects(loadLatestCheckpoint(new Trainer(c, new ClassifyTask(c)), dir2), /no plateau schedule state/);
});

test('plateau: a replica that joins mid-run takes the sender\'s schedule state from the broadcast, bit for bit', async () => {
  await initBackend('cpu');
  // factor 0.3 and WERs like 0.123456789: values a float32 broadcast would round, so the test sees a lossy encoding.
  const c = cfg({ lr: 0.37, schedule: 'plateau', plateau: { patience: 1, factor: 0.3, threshold: 0 } });
  const a = new Trainer(c, new ClassifyTask(c));
  for (const v of [0.123456789, 0.1, 0.05, 0.04]) a.observeEvaluation({ val_top1: v });
  assert.equal(a.plateau!.state().reductions, 3);
  const b = new Trainer(c, new ClassifyTask(c));
  assert.notEqual(b.lr(5), a.lr(5));
  const layout = stateLayout(b);
  assert.equal(stateLayout(a).hash, layout.hash);
  fromNamed(b, unpackState(packState(await toNamed(a), stateLayout(a)), layout, false));
  assert.deepEqual(b.plateau!.state(), a.plateau!.state());
  assert.equal(b.lr(5), a.lr(5));
  assert.equal(b.plateau!.scale, a.plateau!.scale);
  // The next evaluation acts the same on both (same best, same counters).
  assert.deepEqual(b.observeEvaluation({ val_top1: 0.2 }), a.observeEvaluation({ val_top1: 0.2 }));
  // A replica without a plateau schedule has another layout: it refuses the buffer instead of misreading it.
  const plain = cfg({ lr: 0.37, schedule: 'constant' });
  const p = new Trainer(plain, new ClassifyTask(plain));
  assert.notEqual(stateLayout(p).hash, layout.hash);
  const buf = packState(await toNamed(a), stateLayout(a));
  assert.throws(() => unpackState(buf, stateLayout(p), false), /SGT_STATE_LAYOUT/);
  for (const t of [a, b, p]) t.dispose();
});
