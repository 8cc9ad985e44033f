// `sigmatrain run --gpus 0,1` pins one worker per GPU through CUDA_VISIBLE_DEVICES (checked on the workers' own
// logs; the tensor backend here is cpu since no GPU or libtensorflow is present), and a bad list is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { sigmatrain, TINY, tempDir, coordinatorAddress } from './helpers/job.js';

test('--gpus 3,5: worker local rank r sees only GPU r of the list', { timeout: 120_000 }, async () => {
  const p = sigmatrain(['run', '--config', TINY, '--gpus', '3,5', '--run-dir', tempDir('gpus'), '--data.root', join(tempDir('gpus-data'), 'shapes'),
    '--dist.coordinator', coordinatorAddress(), '--train.maxSteps', '2']);
  assert.equal(await p.exit, 0, p.text.slice(-20).join('\n'));
  const ready = p.messages(/^worker local-\d ready/);
  assert.deepEqual(ready.map((l) => [l.workerId, l.cudaVisibleDevices]).sort(), [['local-0', '3'], ['local-1', '5']]);
  assert.equal(p.messages(/^generation 1: 2 workers/).length, 1, 'one worker per listed GPU');
});

test('--gpus with a malformed list is refused naming the flag', async () => {
  const p = sigmatrain(['run', '--config', TINY, '--gpus', '0,x']);
  assert.equal(await p.exit, 1);
  assert.match(p.text.join('\n'), /--gpus must be "all" or a list like 0,1,2, got "0,x"/);
});
