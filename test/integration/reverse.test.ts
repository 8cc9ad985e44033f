// The seams hold (issue 10): a second task — sequence reversal with the encoder family, batches in tokens, metrics
// named by the task — trains through `sigmatrain train` and `sigmatrain run --workers 2` with no code of its own
// outside worker/tasks/, worker/models/ and one line of shared/tasks.ts, to a clearly good token accuracy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sigmatrain, tempDir, coordinatorAddress } from './helpers/job.js';

const CONFIG = fileURLToPath(new URL('../../../configs/reverse.yaml', import.meta.url));
// Fixed-length sequences learn in fewer steps: 4 epochs of 32 steps keep both runs within the test budget.
const FAST = ['--data.reverse.minLength', '5', '--data.reverse.maxLength', '5', '--train.epochs', '4', '--diagnostics.everySteps', '64', '--metrics.port', '0'];

interface Summary { task: string; headline: string; steps: number; eval: Record<string, number>; workerFailures?: number; totalSteps?: number }

test('reverse: `sigmatrain train` learns to reverse sequences (val_token_acc ≥ 0.9)', { timeout: 120_000 }, async () => {
  const p = sigmatrain(['train', '--config', CONFIG, '--run-dir', tempDir('reverse-train'), ...FAST]);
  assert.equal(await p.exit, 0, p.text.slice(-20).join('\n'));
  const s = p.lines.find((l) => l.summary)?.summary as Summary;
  console.log(`# reverse train: ${JSON.stringify(s.eval)} after ${s.steps} steps`);
  assert.equal(s.task, 'reverse');
  assert.equal(s.headline, 'val_token_acc');
  assert.deepEqual(Object.keys(s.eval).sort(), ['val_loss', 'val_seq_acc', 'val_token_acc']);
  assert.ok(s.eval.val_token_acc >= 0.9, `val_token_acc ${s.eval.val_token_acc}`);
  assert.match(String(p.messages(/^done: /)[0]?.msg), /val_token_acc=\d\.\d{3} val_seq_acc=\d\.\d{3} val_loss=\d+\.\d{4}/);
});

test('reverse: `sigmatrain run --workers 2` trains it too; the run log carries tokens, named metrics, sites and digests', { timeout: 120_000 }, async () => {
  const dir = tempDir('reverse-run');
  const p = sigmatrain(['run', '--config', CONFIG, '--workers', '2', '--run-dir', dir, '--dist.coordinator', coordinatorAddress(), ...FAST]);
  assert.equal(await p.exit, 0, p.text.slice(-20).join('\n'));
  const s = p.messages(/^done: /)[0]?.summary as Summary;
  assert.ok(s, 'a summary line');
  console.log(`# reverse run --workers 2: ${JSON.stringify(s.eval)} after ${s.steps} steps`);
  assert.equal(s.steps, s.totalSteps);
  assert.equal(s.workerFailures, 0);
  assert.ok(s.eval.val_token_acc >= 0.9, `val_token_acc ${s.eval.val_token_acc}`);
  const steps = readFileSync(join(dir, 'steps.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as {
    step: number; unit: string; units: number; samples: number; metrics: Record<string, number>; entropy: { attn: string; layer: number; heads: number[] }[]; digest: string;
  });
  assert.equal(steps.length, s.steps);
  for (const r of steps) {
    assert.equal(r.unit, 'tokens');
    assert.equal(r.units, 5 * r.samples, `step ${r.step}: 5 tokens per sequence`);
    assert.deepEqual(Object.keys(r.metrics), ['accuracy']);
    assert.deepEqual(r.entropy.map((e) => [e.attn, e.layer, e.heads.length]), [['self', 0, 2], ['self', 1, 2]]);
    assert.match(r.digest, /^[0-9a-f]{16}$/);
  }
  assert.equal(new Set(steps.map((r) => r.digest)).size, steps.length, 'the digest chain moves every step');
  const evals = readFileSync(join(dir, 'evals.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { metrics: Record<string, number> });
  assert.ok(evals.every((e) => 'val_token_acc' in e.metrics && 'val_seq_acc' in e.metrics));
});
