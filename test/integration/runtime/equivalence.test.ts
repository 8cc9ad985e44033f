// Data parallelism is exact: 1 worker with the global batch and 2 or 3 workers with a share each reach the same
// parameters (≤ 1e-5 relative), and within a run every rank holds bitwise-identical state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readCheckpoint, latestCheckpoint } from '../../../shared/checkpoint/store.js';
import { sigmatrain, TINY, tempDir, coordinatorAddress } from '../helpers/job.js';

const data = tempDir('equiv-data');

async function runWith(workers: number): Promise<{ dir: string; hashes: Map<string, string[]> }> {
  const dir = tempDir(`equiv-${workers}`);
  const p = sigmatrain(['run', '--config', TINY, '--workers', String(workers), '--run-dir', dir, '--data.root', join(data, 'shapes'),
    '--dist.coordinator', coordinatorAddress(), '--train.maxSteps', '4', '--dist.consistencyEverySteps', '2', '--optim.lr', '0.001', '--log.level', 'debug']);
  const code = await p.exit;
  assert.equal(code, 0, `run with ${workers} workers failed:\n${p.text.slice(-30).join('\n')}`);
  const hashes = new Map<string, string[]>();
  for (const l of p.messages(/^replica state hash/)) {
    assert.equal(l.consistent, true, `inconsistent replicas: ${JSON.stringify(l)}`);
    const key = String(l.step);
    hashes.set(key, [...(hashes.get(key) ?? []), String(l.stateHash)]);
  }
  return { dir, hashes };
}

test('1, 2 and 3 workers give the same parameters; ranks are bitwise identical', { timeout: 240_000 }, async () => {
  const runs = [];
  for (const n of [1, 2, 3]) runs.push(await runWith(n));
  for (const [i, r] of runs.entries()) {
    const n = i + 1;
    assert.deepEqual([...r.hashes.keys()].sort(), ['2', '4'], `consistency checks at steps 2 and 4 (${n} workers)`);
    for (const [step, hs] of r.hashes) {
      assert.equal(hs.length, n, `${n} ranks report a hash at step ${step}`);
      assert.equal(new Set(hs).size, 1, `ranks differ at step ${step}: ${hs.join(' ')}`);
    }
  }
  const ckpts = await Promise.all(runs.map(async (r) => readCheckpoint((await latestCheckpoint(join(r.dir, 'checkpoints')))!)));
  for (const c of ckpts) assert.equal(c.state.step, 4);
  const [one, ...others] = ckpts;
  for (const [k, other] of others.entries()) {
    let num = 0, den = 0;
    for (const [name, t] of one.model) {
      const u = other.model.get(name)!.data;
      for (let i = 0; i < t.data.length; i++) {
        num += (u[i] - t.data[i]) ** 2;
        den += t.data[i] ** 2;
      }
    }
    const rel = Math.sqrt(num / den);
    assert.ok(rel <= 1e-5, `${k + 2} workers vs 1: relative parameter difference ${rel}`);
  }
});
