// A step longer than the heartbeat timeout (tfjs computes it synchronously, so the training thread's heartbeat timer
// cannot fire) must not get a healthy worker declared lost: the liveness thread keeps it alive. With busyTimeoutMs
// shorter than a step, the same job loses its workers — the thread is what keeps them, and a hung training thread
// is still found.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { sigmatrain, TINY, tempDir, coordinatorAddress, killTree } from '../helpers/job.js';

// bench/4 (6 blocks, width 192) on the cpu backend, 96 images a step: seconds per step on this machine's cores,
// against a 1 s heartbeat timeout.
const slow = (dir: string, data: string, busyTimeoutMs: number): string[] => [
  'run', '--config', TINY, '--workers', '2', '--run-dir', dir, '--data.root', data, '--dist.coordinator', coordinatorAddress(),
  '--model.vit.variant', 'bench/4', '--data.shapes.trainPerClass', '32', '--train.globalBatch', '96', '--train.epochs', '3', '--diagnostics.everySteps', '0',
  '--checkpoint.everySteps', '0', '--dist.heartbeatMs', '100', '--dist.heartbeatTimeoutMs', '1000', '--dist.allreduceTimeoutMs', '30000',
  '--dist.busyTimeoutMs', String(busyTimeoutMs),
];

test('steps longer than the heartbeat timeout: no worker is lost, the job ends with 0 failures', { timeout: 240_000 }, async () => {
  const data = join(tempDir('alive-data'), 'shapes');
  const p = sigmatrain(slow(tempDir('alive'), data, 60_000));
  assert.equal(await p.exit, 0, p.text.slice(-20).join('\n'));
  const s = p.messages(/^done: /)[0]?.summary as { steps: number; workerFailures: number; seconds: number };
  assert.ok(s, 'a summary');
  assert.equal(s.steps, 3);
  // The premise: a step took longer than the heartbeat timeout.
  const steps = p.lines.filter((l) => l.role === 'coordinator' && typeof l.step === 'number' && typeof l.loss === 'number').map((l) => Number(l.time));
  const longest = Math.max(...steps.slice(1).map((t, i) => t - steps[i]));
  console.log(`# longest step ${longest} ms against a 1000 ms heartbeat timeout; ${s.seconds.toFixed(1)} s in all`);
  assert.ok(longest > 1000, `steps too short (${longest} ms) to test anything`);
  assert.equal(s.workerFailures, 0, p.messages(/lost worker/).map((l) => l.msg).join('\n'));
  assert.equal(p.messages(/lost worker/).length, 0);
});

test('a training thread busy past dist.busyTimeoutMs stops proving liveness: the worker is declared lost', { timeout: 240_000 }, async () => {
  const data = join(tempDir('alive-data'), 'shapes');
  const p = sigmatrain(slow(tempDir('alive-hung'), data, 100));
  try {
    const lost = await p.waitFor((l) => /lost worker/.test(l.msg ?? ''), 180_000, 'a worker declared lost');
    assert.match(String(lost.msg), /silent for \d+ ms/);
  } finally {
    killTree(p.child.pid, 'SIGKILL');
    await p.exit;
  }
});
