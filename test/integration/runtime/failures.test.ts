// Failures with real processes: a worker SIGKILLed mid-run, the coordinator SIGKILLed and restarted, and SIGTERM
// with a final checkpoint whose resume equals an uninterrupted run bitwise (cpu backend).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readCheckpoint, latestCheckpoint } from '../../../shared/checkpoint/store.js';
import { stepsPerEpoch } from '../../../worker/data/sampler.js';
import { sigmatrain, TINY, tempDir, coordinatorAddress, killTree, type Proc } from '../helpers/job.js';

const data = join(tempDir('fail-data'), 'shapes');
const N_TRAIN = 3 * 16; // tiny.yaml: 3 classes × 16
const GLOBAL_BATCH = 12;

interface Entry { step: number; epoch: number; samples: number; generation: number }

function ledger(dir: string): Entry[] {
  return readFileSync(join(dir, 'ledger.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Entry);
}

/** Every step 0..total-1 exactly once, and every epoch's samples add up to the dataset. */
function assertExactlyOnce(dir: string, total: number): Entry[] {
  const e = ledger(dir);
  const steps = e.map((x) => x.step).sort((a, b) => a - b);
  assert.deepEqual(steps, Array.from({ length: total }, (_, i) => i), `ledger steps: ${steps.join(',')}`);
  const perEpoch = stepsPerEpoch(N_TRAIN, GLOBAL_BATCH, false);
  for (let ep = 0; ep < total / perEpoch; ep++) {
    const samples = e.filter((x) => x.epoch === ep).reduce((a, x) => a + x.samples, 0);
    assert.equal(samples, N_TRAIN, `epoch ${ep} saw ${samples} samples`);
  }
  return e;
}

function pidOf(p: Proc, workerId: string): number {
  const line = p.messages(new RegExp(`^started worker ${workerId} `)).at(-1);
  assert.ok(line, `no start line for ${workerId}`);
  return Number(line.pid);
}

const EPOCHS = 6;
const TOTAL = EPOCHS * stepsPerEpoch(N_TRAIN, GLOBAL_BATCH, false);
const common = (dir: string, addr: string) => [
  '--config', TINY, '--run-dir', dir, '--data.root', data, '--dist.coordinator', addr, '--train.epochs', String(EPOCHS),
];

test('a worker SIGKILLed mid-run: the job re-forms, completes every step exactly once', { timeout: 180_000 }, async () => {
  const dir = tempDir('kill-worker');
  const p = sigmatrain(['run', ...common(dir, coordinatorAddress()), '--workers', '2', '--max-restarts', '1']);
  try {
    await p.waitFor((l) => typeof l.msg === 'string' && /^step 6\//.test(l.msg), 90_000, 'step 6');
    killTree(pidOf(p, 'local-1'), 'SIGKILL');
    const code = await p.exit;
    assert.equal(code, 0, p.text.slice(-30).join('\n'));
  } finally {
    killTree(p.child.pid);
  }
  assertExactlyOnce(dir, TOTAL);
  const summary = p.lines.find((l) => l.summary)?.summary as { steps: number; generations: number; workerFailures: number };
  assert.equal(summary.steps, TOTAL);
  assert.ok(summary.generations >= 2, `generations ${summary.generations}`);
  assert.ok(summary.workerFailures >= 1);
  assert.ok(p.messages(/^re-forming/).length >= 1);
  const final = await readCheckpoint((await latestCheckpoint(join(dir, 'checkpoints')))!);
  assert.equal(final.state.step, TOTAL);
});

test('the coordinator SIGKILLed and restarted: the workers re-attach and the job completes exactly once', { timeout: 180_000 }, async () => {
  const dir = tempDir('kill-coord');
  const addr = coordinatorAddress();
  const coord1 = sigmatrain(['coordinator', ...common(dir, addr), '--workers', '2']);
  const launch = sigmatrain(['launch', ...common(dir, addr), '--nproc-per-node', '2', '--node-name', 'n0']);
  let coord2: Proc | undefined;
  try {
    await coord1.waitFor((l) => typeof l.msg === 'string' && /^step 6\//.test(l.msg), 90_000, 'step 6');
    killTree(coord1.child.pid, 'SIGKILL');
    await coord1.exit;
    coord2 = sigmatrain(['coordinator', ...common(dir, addr), '--workers', '2', '--resume', 'auto']);
    assert.equal(await coord2.exit, 0, coord2.text.slice(-30).join('\n'));
    assert.equal(await launch.exit, 0, launch.text.slice(-30).join('\n'));
  } finally {
    killTree(coord1.child.pid);
    killTree(coord2?.child.pid);
    killTree(launch.child.pid);
  }
  assert.ok(coord2!.messages(/^re-attached worker/).length >= 1, 'the new coordinator re-attached running workers');
  assertExactlyOnce(dir, TOTAL);
});

test('SIGTERM writes a final checkpoint; resuming from it equals an uninterrupted run bitwise (cpu)', { timeout: 240_000 }, async () => {
  const straight = tempDir('straight');
  const a = sigmatrain(['run', ...common(straight, coordinatorAddress()), '--workers', '2']);
  assert.equal(await a.exit, 0, a.text.slice(-30).join('\n'));

  const dir = tempDir('sigterm');
  const b = sigmatrain(['run', ...common(dir, coordinatorAddress()), '--workers', '2']);
  await b.waitFor((l) => typeof l.msg === 'string' && /^step 5\//.test(l.msg), 90_000, 'step 5');
  b.child.kill('SIGTERM');
  assert.equal(await b.exit, 0, b.text.slice(-30).join('\n'));
  const stopped = await readCheckpoint((await latestCheckpoint(join(dir, 'checkpoints')))!);
  assert.ok(stopped.state.step > 0 && stopped.state.step < TOTAL, `stopped at step ${stopped.state.step}`);
  const summary = b.lines.find((l) => l.summary)?.summary as { stoppedEarly: boolean };
  assert.equal(summary.stoppedEarly, true);

  const c = sigmatrain(['run', ...common(dir, coordinatorAddress()), '--workers', '2', '--resume', 'auto']);
  assert.equal(await c.exit, 0, c.text.slice(-30).join('\n'));
  assert.ok(c.messages(/^resumed from checkpoint/).length === 1, 'rank 0 resumed from the checkpoint');
  assertExactlyOnce(dir, TOTAL);

  const x = await readCheckpoint((await latestCheckpoint(join(straight, 'checkpoints')))!);
  const y = await readCheckpoint((await latestCheckpoint(join(dir, 'checkpoints')))!);
  assert.equal(x.state.step, TOTAL);
  assert.equal(y.state.step, TOTAL);
  for (const [name, t] of x.model) {
    assert.deepEqual(Buffer.from(y.model.get(name)!.data.buffer), Buffer.from(t.data.buffer), `${name} differs`);
  }
  for (const [name, t] of x.optimizer) {
    assert.deepEqual(Buffer.from(y.optimizer.get(name)!.data.buffer), Buffer.from(t.data.buffer), `optimizer ${name} differs`);
  }
});
