// `coordinator --after-finish serve` (what the Kubernetes Deployment runs): after the job completes the coordinator
// stays up until SIGTERM with its final metrics, and a worker that joins late is told the job is complete and exits 0;
// restarted on the finished run dir with --resume auto it serves again instead of exiting (a Deployment would restart
// an exited coordinator forever). Without the flag, a finished job's coordinator exits at once, as before.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { sigmatrain, TINY, tempDir, coordinatorAddress, type Proc } from '../helpers/job.js';

const serving = (l: { msg?: string }): boolean => /the job is complete; serving/.test(l.msg ?? '');

async function metricsText(p: Proc): Promise<string> {
  const line = await p.waitFor((l) => typeof l.metrics === 'string', 30_000, 'the metrics URL');
  const res = await fetch(line.metrics as string);
  assert.equal(res.status, 200);
  return res.text();
}

test('--after-finish serve: the coordinator outlives its job, dismisses late workers, and serves again on restart',
  { timeout: 180_000 }, async () => {
    const dir = tempDir('finished');
    const data = join(tempDir('finished-data'), 'shapes');
    const addr = coordinatorAddress();
    const common = ['--config', TINY, '--data.root', data, '--coordinator', addr, '--train.epochs', '1'];
    const coordArgs = ['coordinator', ...common, '--workers', '1', '--run-dir', dir, '--after-finish', 'serve'];

    const c1 = sigmatrain(coordArgs);
    const w0 = sigmatrain(['worker', ...common, '--worker-id', 'w0']);
    try {
      assert.equal(await w0.exit, 0, w0.text.slice(-20).join('\n'));
      await c1.waitFor(serving, 60_000, 'the coordinator serving the complete job');
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(c1.child.exitCode, null, 'coordinator still running after the job');
      const text = await metricsText(c1);
      const summary = (await c1.waitFor((l) => typeof l.summary === 'object', 1000, 'the summary')).summary as { steps: number };
      const steps = /^sigmatrain_job_steps_total(?:\{[^}]*\})? (\S+)$/m.exec(text);
      assert.ok(summary.steps > 0 && steps !== null && Number(steps[1]) === summary.steps,
        `the job's final step count is still served (${steps?.[1]} vs ${summary.steps})`);

      // A worker (re)started after the end: told the job is complete, exits 0.
      const late = sigmatrain(['worker', ...common, '--worker-id', 'late']);
      assert.equal(await late.exit, 0, late.text.slice(-20).join('\n'));
      await c1.waitFor((l) => /late joined a complete job/.test(l.msg ?? ''), 10_000, 'the coordinator dismissing the late worker');

      c1.child.kill('SIGTERM');
      assert.equal(await c1.exit, 0, c1.text.slice(-20).join('\n'));

      // Restarted on the finished run (a Deployment's restart): serves again instead of exiting.
      const c2 = sigmatrain([...coordArgs, '--resume', 'auto']);
      try {
        await c2.waitFor((l) => /already complete/.test(l.msg ?? ''), 30_000, 'the restart noticing the job is complete');
        await c2.waitFor(serving, 30_000, 'the restarted coordinator serving');
        const late2 = sigmatrain(['worker', ...common, '--worker-id', 'late2']);
        assert.equal(await late2.exit, 0, late2.text.slice(-20).join('\n'));
        assert.equal(c2.child.exitCode, null, 'the restarted coordinator stays up');
        c2.child.kill('SIGTERM');
        assert.equal(await c2.exit, 0, c2.text.slice(-20).join('\n'));
      } finally {
        c2.child.kill('SIGKILL');
      }

      // Without the flag a finished job's coordinator exits 0 at once.
      const c3 = sigmatrain(['coordinator', ...common, '--workers', '1', '--run-dir', dir, '--resume', 'auto']);
      assert.equal(await c3.exit, 0, c3.text.slice(-20).join('\n'));
      assert.equal(c3.lines.some(serving), false);
    } finally {
      for (const p of [c1, w0]) p.child.kill('SIGKILL');
    }
  });

test('--after-finish takes exit or serve only', { timeout: 30_000 }, async () => {
  const p = sigmatrain(['coordinator', '--config', TINY, '--after-finish', 'linger', '--run-dir', tempDir('finished-bad')]);
  assert.equal(await p.exit, 1);
  assert.match(p.text.join('\n'), /--after-finish must be exit or serve, got "linger"/);
});
