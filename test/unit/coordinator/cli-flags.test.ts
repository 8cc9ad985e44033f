// Impossible counts, sizes and ports fail at once with an error naming the flag or key (issue 11 item 8: `run
// --workers 0` used to wait 10 minutes for workers that never come). Each case spawns the real CLI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const CLI = fileURLToPath(new URL('../../../coordinator/cli/index.js', import.meta.url));
const TINY = fileURLToPath(new URL('../../../../test/fixtures/configs/tiny.yaml', import.meta.url));

function cli(args: string[], env: Record<string, string> = {}) {
  const started = Date.now();
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, ...env } });
  return { status: r.status, signal: r.signal, out: `${r.stdout}${r.stderr}`, ms: Date.now() - started };
}

const cases: { args: string[]; env?: Record<string, string>; error: RegExp }[] = [
  { args: ['run', '--workers', '0'], error: /SGT_CLI_USAGE: --workers must be a positive integer \(≥ 1\), got "0"/ },
  { args: ['run', '--workers', '-2'], error: /--workers must be a positive integer/ },
  { args: ['run', '--workers', '1.5'], error: /--workers must be a positive integer \(≥ 1\), got "1.5"/ },
  { args: ['run', '--workers', 'two'], error: /--workers must be a positive integer/ },
  { args: ['run', '--workers', '2', '--max-restarts', '-1'], error: /--max-restarts must be a non-negative integer, got "-1"/ },
  { args: ['run', '--workers', '2', '--dist.minWorkers', '3'], error: /--workers 2 is fewer than dist.minWorkers 3/ },
  { args: ['coordinator', '--workers', '0'], error: /--workers must be a positive integer/ },
  { args: ['coordinator'], env: { WORLD_SIZE: 'four' }, error: /WORLD_SIZE \(the default of --workers\) must be a positive integer \(≥ 1\), got "four"/ },
  { args: ['launch', '--nproc-per-node', '0', '--coordinator', '127.0.0.1:29400'], error: /--nproc-per-node must be a positive integer/ },
  { args: ['launch', '--nproc-per-node', '1', '--node-rank', 'x1', '--coordinator', '127.0.0.1:29400'], error: /--node-rank must be a non-negative integer \(the node's index\), got "x1"/ },
  { args: ['worker', '--local-rank', '-1'], error: /--local-rank must be a non-negative integer, got "-1"/ },
  { args: ['run', '--train.globalBatch', '0'], error: /train.globalBatch: must be a positive integer, got 0/ },
  { args: ['run', '--dist.maxWorkers', '1', '--dist.minWorkers', '2'], error: /dist.maxWorkers: must be 0 \(no limit\) or ≥ dist.minWorkers \(2\)/ },
  { args: ['run', '--dist.heartbeatTimeoutMs', '150'], error: /dist.heartbeatTimeoutMs: must exceed dist.heartbeatMs \(200\)/ },
  { args: ['run', '--dist.chunkBytes', '1001'], error: /dist.chunkBytes: must be a multiple of 4/ },
  { args: ['run', '--metrics.port', '70000'], error: /metrics.port: must be a port in 0..65535/ },
  { args: ['run', '--dist.coordinator', '127.0.0.1:0'], error: /dist.coordinator: port must be in 1..65535/ },
  { args: ['run', '--dist.ringPortBase', '65536'], error: /dist.ringPortBase: must be a port in 1..65535/ },
];

for (const c of cases) {
  test(`${c.env ? Object.entries(c.env).map(([k, v]) => `${k}=${v} `).join('') : ''}sigmatrain ${c.args.join(' ')} fails at once naming it`, () => {
    const r = cli([c.args[0], '--config', TINY, ...c.args.slice(1)], c.env);
    assert.equal(r.signal, null, `still running after 20 s (killed): ${r.out.slice(-500)}`);
    // A worker's bad input is exit 78 (EX_CONFIG: its supervisor must not restart it); every other command exits 1.
    assert.equal(r.status, c.args[0] === 'worker' ? 78 : 1, r.out.slice(-500));
    assert.match(r.out, c.error);
    assert.ok(r.ms < 15_000, `took ${r.ms} ms`);
  });
}

// A data root that does not exist only fails inside the workers: `run` used to restart them three times and then wait
// for workers that never came (five minutes and more). Now a worker exits 78 on bad input, is not restarted, and `run`
// ends the job with the worker's message and that status.
test('sigmatrain run with a missing data root ends at once with the workers\' error and exit 78', async () => {
  const { createServer } = await import('node:net');
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const runDir = join(mkdtempSync(join(tmpdir(), 'sgt-cli-')), 'run');
  const r = cli(['run', '--config', TINY, '--workers', '2', '--dist.coordinator', `127.0.0.1:${port}`, '--run-dir', runDir,
    '--data.kind', 'imagefolder', '--data.root', '/nonexistent/sigmatrain-data']);
  assert.equal(r.signal, null, `still running after 20 s (killed): ${r.out.slice(-800)}`);
  assert.equal(r.status, 78, r.out.slice(-800));
  assert.match(r.out, /SGT_DATA_INVALID: cannot read the train split at \/nonexistent\/sigmatrain-data\/train/);
  assert.match(r.out, /not restarting it, it would fail the same way/);
  assert.doesNotMatch(r.out, /restarting \(1\/3\)/);
  assert.match(r.out, /every worker of local has exited \(local-0: exit 78, local-1: exit 78\): bad input/);
});

// deploy/k8s's workers Job fails at once on the launch container's exit 78 (podFailurePolicy): launch must pass it on.
test('sigmatrain launch whose workers stop on bad input exits 78 without restarting them', () => {
  const r = cli(['launch', '--nproc-per-node', '2', '--config', TINY, '--coordinator', '127.0.0.1:9',
    '--data.kind', 'imagefolder', '--data.root', '/nonexistent/sigmatrain-data']);
  assert.equal(r.signal, null, `still running after 20 s (killed): ${r.out.slice(-800)}`);
  assert.equal(r.status, 78, r.out.slice(-800));
  assert.match(r.out, /SGT_DATA_INVALID: cannot read the train split at \/nonexistent\/sigmatrain-data\/train/);
  assert.doesNotMatch(r.out, /restarting \(1\/3\)/);
});
