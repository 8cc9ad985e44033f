// Injected faults stop the job with the right error (issue 11 item 2): one replica's parameter perturbed (the
// test-only switch SGT_FAULT_PERTURB, worker/faults.ts) → SGT_REPLICA_MISMATCH naming the rank; a checkpoint whose
// bytes no longer match their recorded sha256 → resuming fails with SGT_CHECKPOINT_INVALID naming the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { latestCheckpoint } from '../../../shared/checkpoint/store.js';
import { sigmatrain, TINY, tempDir, coordinatorAddress, killTree } from '../helpers/job.js';

const data = join(tempDir('faults-data'), 'shapes');
const common = (dir: string) => ['--config', TINY, '--run-dir', dir, '--data.root', data, '--dist.coordinator', coordinatorAddress()];

test('a perturbed replica stops the job with SGT_REPLICA_MISMATCH naming the rank', { timeout: 150_000 }, async () => {
  const dir = tempDir('mismatch');
  // Rank 1 adds 1e-3 to one weight once it holds 4 steps, just before the consistency check there (every 2 steps).
  const p = sigmatrain(['run', ...common(dir), '--workers', '2', '--max-restarts', '0'], { SGT_FAULT_PERTURB: '1:4' });
  let code: number;
  try {
    code = await Promise.race([p.exit, new Promise<number>((r) => setTimeout(() => r(-1), 120_000))]);
  } finally {
    killTree(p.child.pid);
  }
  const out = p.text.join('\n');
  assert.notEqual(code, -1, `the job did not stop within 120 s:\n${p.text.slice(-30).join('\n')}`);
  assert.notEqual(code, 0, 'the job must fail');
  assert.ok(p.messages(/perturbed this replica/).length === 1, 'the fault was injected once');
  // The job's own error (the coordinator's last words) carries the worker's code and names rank 1 against rank 0.
  const last = p.text.filter((l) => l.startsWith('SGT_')).at(-1) ?? '';
  assert.match(last, /^SGT_REPLICA_MISMATCH: worker local-\d stopped the job: SGT_REPLICA_MISMATCH: replicas diverged at step 4: ranks 1 hold other parameters/, out.slice(-3000));
  assert.equal(p.messages(/^done: /).length, 0, 'no "done" summary');
});

test('resuming from a checkpoint whose sha256 does not match fails at once naming the file', { timeout: 180_000 }, async () => {
  const dir = tempDir('badsha');
  // A job stopped part-way (SIGTERM: rank 0 writes a final checkpoint), so that --resume auto has steps left to run.
  const a = sigmatrain(['run', ...common(dir), '--workers', '2', '--train.epochs', '6']);
  await a.waitFor((l) => typeof l.msg === 'string' && /^step 5\//.test(l.msg), 90_000, 'step 5');
  a.child.kill('SIGTERM');
  assert.equal(await a.exit, 0, a.text.slice(-30).join('\n'));
  const ckpt = (await latestCheckpoint(join(dir, 'checkpoints')))!;
  const file = join(ckpt, 'model.safetensors');
  const bytes = readFileSync(file);
  bytes[bytes.length - 3] ^= 0x40; // one bit of the last tensor's data: the safetensors header still parses
  writeFileSync(file, bytes);

  const b = sigmatrain(['run', ...common(dir), '--workers', '2', '--train.epochs', '6', '--resume', 'auto', '--max-restarts', '0']);
  let code: number;
  try {
    code = await Promise.race([b.exit, new Promise<number>((r) => setTimeout(() => r(-1), 90_000))]);
  } finally {
    killTree(b.child.pid);
  }
  assert.notEqual(code, -1, `resuming a corrupt checkpoint hung for 90 s:\n${b.text.slice(-30).join('\n')}`);
  assert.notEqual(code, 0);
  const last = b.text.filter((l) => l.startsWith('SGT_')).at(-1) ?? '';
  assert.ok(last.startsWith('SGT_CHECKPOINT_INVALID: '), b.text.slice(-20).join('\n'));
  assert.ok(last.includes(`${file}: sha256 `) && last.includes('does not match') && last.includes('the file is corrupt'), last);
});
