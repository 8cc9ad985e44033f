// The ImageNet layout end to end: train/<wnid>/*.JPEG and a flat val/ with LOC_val_solution.csv, streamed through
// decode threads with RandomResizedCrop, flip, RandAugment, erasing, mixup/cutmix and repeated augmentation, trains
// through `sigmatrain run` with 2 workers, evaluates top-1/top-5 on raw and EMA weights, and resumes mid-epoch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, renameSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateShapes } from '../../worker/data/synthetic.js';
import { sigmatrain, tempDir, coordinatorAddress } from './helpers/job.js';

const DEMO = fileURLToPath(new URL('../../../configs/demo.yaml', import.meta.url));

/** A tiny ImageNet-shaped tree from generated JPEGs: wnid folders, .JPEG names, a flat val/ + CSV. */
async function fixture(): Promise<string> {
  const src = join(tempDir('inet-src'), 'shapes');
  await generateShapes({ root: src, size: 24, classes: 3, trainPerClass: 40, valPerClass: 8, seed: 2, format: 'jpeg' });
  const root = join(tempDir('inet'), 'imagenet');
  mkdirSync(join(root, 'val'), { recursive: true });
  const rows = ['ImageId,PredictionString'];
  readdirSync(join(src, 'train')).sort().forEach((cls, i) => {
    const wnid = `n0000000${i}`;
    mkdirSync(join(root, 'train', wnid), { recursive: true });
    for (const f of readdirSync(join(src, 'train', cls))) renameSync(join(src, 'train', cls, f), join(root, 'train', wnid, `${wnid}_${f.replace('.jpg', '.JPEG')}`));
    for (const f of readdirSync(join(src, 'val', cls))) {
      const id = `ILSVRC2012_val_${cls}_${f.replace('.jpg', '')}`;
      renameSync(join(src, 'val', cls, f), join(root, 'val', `${id}.JPEG`));
      rows.push(`${id},${wnid} 1 2 3 4`);
    }
  });
  writeFileSync(join(root, 'LOC_val_solution.csv'), rows.join('\n') + '\n');
  return root;
}

test('ImageNet layout: DeiT augmentations, mixup/cutmix, EMA eval, top-5, and a mid-epoch resume', { timeout: 300_000 }, async () => {
  const root = await fixture();
  const dir = tempDir('inet-run');
  const args = ['run', '--config', DEMO, '--workers', '2', '--run-dir', dir, '--dist.coordinator', coordinatorAddress(), '--metrics.port', '0',
    '--data.kind', 'imagenet', '--data.root', root, '--data.imagenet.numClasses', '3', '--model.vit.imageSize', '16', '--data.imagenet.repeats', '2',
    '--data.imagenet.threads', '1', '--train.globalBatch', '16', '--train.epochs', '2', '--optim.emaDecay', '0.9', '--checkpoint.everySteps', '5', '--train.logEverySteps', '1'];
  const a = sigmatrain(args);
  await a.waitFor((l) => typeof l.msg === 'string' && /^step 7\//.test(l.msg), 200_000, 'step 7');
  a.child.kill('SIGTERM');
  assert.equal(await a.exit, 0, a.text.slice(-20).join('\n'));
  const b = sigmatrain([...args, '--resume', 'auto']);
  assert.equal(await b.exit, 0, b.text.slice(-20).join('\n'));
  // 3 classes × 40 images × 2 repeats / 16 = 15 steps per epoch, 2 epochs.
  const ledger = readFileSync(join(dir, 'ledger.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; samples: number });
  assert.deepEqual(ledger.map((e) => e.step).sort((x, y) => x - y), Array.from({ length: 30 }, (_, i) => i));
  assert.ok(ledger.every((e) => e.samples === 16));
  const evals = readFileSync(join(dir, 'evals.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { n: number; metrics: { val_top5: number }; ema?: { val_top1: number } });
  assert.ok(evals.length >= 1 && evals.every((e) => e.n === 24), 'the whole flat val set (24 images, labels from the CSV) is evaluated');
  assert.ok(evals.every((e) => e.metrics.val_top5 === 1), 'top-5 of 3 classes is always a hit');
  assert.ok(evals.every((e) => e.ema && Number.isFinite(e.ema.val_top1)), 'EMA weights evaluated too');
  assert.match(String(b.messages(/^done: /)[0]?.msg), /val_top1=0\.\d{3} val_top5=1\.000 val_loss=\d+\.\d{4} ema_val_top1=0\.\d{3}/);
});

test('sigmatrain train streams the ImageNet layout too: one process, EMA and top-5 in the summary', { timeout: 300_000 }, async () => {
  const root = await fixture();
  const p = sigmatrain(['train', '--config', DEMO, '--run-dir', tempDir('inet-train'), '--metrics.port', '0',
    '--data.kind', 'imagenet', '--data.root', root, '--data.imagenet.numClasses', '3', '--model.vit.imageSize', '16', '--data.imagenet.threads', '1',
    '--train.globalBatch', '16', '--train.maxSteps', '6', '--optim.emaDecay', '0.9']);
  assert.equal(await p.exit, 0, p.text.slice(-20).join('\n'));
  const done = p.messages(/^done: /)[0];
  assert.match(String(done?.msg), /^done: 6 steps, .* val_top1=0\.\d{3} val_top5=1\.000 val_loss=\d+\.\d{4} ema_val_top1=0\.\d{3}/);
  const evals = p.lines.filter((l) => typeof (l.metrics as { val_top1?: number } | undefined)?.val_top1 === 'number' && l.n === 24);
  assert.ok(evals.length >= 1, 'the whole flat val set (24 images) evaluated');
});
