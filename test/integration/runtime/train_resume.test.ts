// `sigmatrain train` (one process) keeps the run trustworthy like the distributed runtime: it serves /metrics while
// training, checkpoints into --run-dir, stops on SIGTERM at a step boundary with a final checkpoint, refuses to
// overwrite a run without --resume auto, and a resumed run ends bitwise where an uninterrupted one does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { sigmatrain, TINY, tempDir } from '../helpers/job.js';

const STEPS = 240; // tiny: 48 samples, global batch 12 → 4 steps per epoch
const args = (dir: string, data: string): string[] => [
  'train', '--config', TINY, '--run-dir', dir, '--data.root', data, '--train.epochs', String(STEPS / 4),
  '--checkpoint.everySteps', '16', '--checkpoint.keep', '2', '--train.logEverySteps', '1',
];

function finalCheckpoint(dir: string): { step: number; model: Buffer; optimizer: Buffer } {
  const root = join(dir, 'checkpoints');
  const last = readdirSync(root).filter((d) => /^ckpt-\d+$/.test(d)).sort().at(-1)!;
  return {
    step: Number(last.slice(5)),
    model: readFileSync(join(root, last, 'model.safetensors')),
    optimizer: readFileSync(join(root, last, 'optimizer.safetensors')),
  };
}

test('sigmatrain train: /metrics while training, SIGTERM → final checkpoint, --resume auto ends bitwise like an uninterrupted run',
  { timeout: 300_000 }, async () => {
    const data = join(tempDir('train-resume-data'), 'shapes');
    const whole = tempDir('train-whole');
    const straight = sigmatrain(args(whole, data));
    assert.equal(await straight.exit, 0, straight.text.slice(-20).join('\n'));
    const reference = finalCheckpoint(whole);
    assert.equal(reference.step, STEPS);

    const dir = tempDir('train-split');
    const first = sigmatrain(args(dir, data));
    const url = (await first.waitFor((l) => typeof l.metrics === 'string', 60_000, 'the metrics URL')).metrics as string;
    await first.waitFor((l) => l.step === 20, 120_000, 'step 20');
    const text = await (await fetch(url)).text();
    assert.match(text, /^sigmatrain_steps_total(\{[^}]*\})? [1-9]\d*$/m, 'steps counted on /metrics');
    assert.match(text, /^sigmatrain_attention_entropy_nats\{[^}]*layer="1"[^}]*head="1"/m, 'per-head entropy on /metrics');
    first.child.kill('SIGTERM');
    assert.equal(await first.exit, 0, first.text.slice(-20).join('\n'));
    const stopped = first.messages(/^stopped: /)[0]?.summary as { steps: number; stoppedEarly: boolean };
    assert.ok(stopped?.stoppedEarly && stopped.steps < STEPS, `stopped early: ${JSON.stringify(stopped)}`);
    assert.equal(finalCheckpoint(dir).step, stopped.steps, 'a final checkpoint at the step it stopped');

    const refused = sigmatrain(args(dir, data));
    assert.equal(await refused.exit, 1);
    assert.match(refused.text.join('\n'), /already holds checkpoints.*--resume auto/);

    const second = sigmatrain([...args(dir, data), '--resume', 'auto']);
    assert.equal(await second.exit, 0, second.text.slice(-20).join('\n'));
    const summary = second.messages(/^done: /)[0]?.summary as { steps: number; resumedFrom: number };
    assert.equal(summary.resumedFrom, stopped.steps);
    assert.equal(summary.steps, STEPS);
    const resumed = finalCheckpoint(dir);
    assert.equal(resumed.step, STEPS);
    assert.ok(resumed.model.equals(reference.model), 'parameters and u/v bitwise equal to the uninterrupted run');
    assert.ok(resumed.optimizer.equals(reference.optimizer), 'optimizer state bitwise equal');
  });
