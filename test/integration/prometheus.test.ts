// A real Prometheus (Debian's package) scrapes a 2-worker run: PromQL returns per-head entropy series and the
// Hessian sharpness with its stability threshold, the coordinator's job metrics, and the alert rules load.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ruleFiles } from '../../deploy/k8s/generate.js';
import { sigmatrain, TINY, tempDir, coordinatorAddress, killTree } from './helpers/job.js';
import { startPrometheus } from './helpers/prometheus.js';


test('Prometheus scrapes a 2-worker run: entropy per head, sharpness, threshold, job metrics', { timeout: 240_000 }, async () => {
  const dir = tempDir('prom');
  const base = 39400 + Math.floor(Math.random() * 200) * 10;
  const p = sigmatrain(['run', '--config', TINY, '--workers', '2', '--run-dir', dir, '--data.root', join(tempDir('prom-data'), 'shapes'),
    '--dist.coordinator', coordinatorAddress(), '--metrics.port', String(base), '--metrics.host', '127.0.0.1',
    '--train.epochs', '400', '--diagnostics.everySteps', '16', '--diagnostics.sharpnessTopK', '2', '--diagnostics.batch', '12']);
  const prom = await startPrometheus({
    targets: [
      { job: 'sigmatrain-coordinator', addresses: [`127.0.0.1:${base}`] },
      { job: 'sigmatrain-worker', addresses: [`127.0.0.1:${base + 1}`, `127.0.0.1:${base + 2}`] },
    ],
    scrapeIntervalSeconds: 1,
    ruleFiles: ruleFiles(),
  });
  try {
    // test/4: 2 layers × 2 heads, exported by rank 0 only.
    const ent = await prom.waitFor('sigmatrain_attention_entropy_nats', (r) => r.length === 4, 120_000);
    assert.deepEqual(ent.map((s) => `${s.metric.layer}/${s.metric.head}`).sort(), ['0/0', '0/1', '1/0', '1/1']);
    assert.ok(ent.every((s) => s.metric.rank === '0' && s.metric.job === 'sigmatrain-worker'));
    assert.ok(ent.every((s) => Number(s.value[1]) > 0 && Number(s.value[1]) <= Math.log(5) + 1e-6), 'entropies within (0, log T]');
    // Each rank exports its own copy of the global sharpness. The two targets are scraped at different instants, so a
    // query can catch one rank already past the next diagnostic step; between diagnostics (every 16 steps) both must
    // show the same value, bit for bit. Ranks that computed different values never agree and the wait times out.
    const sharp = await prom.waitFor('sigmatrain_hessian_sharpness{k="1"}', (r) => r.length === 2, 120_000);
    assert.ok(sharp.every((s) => Number(s.value[1]) > 0), 'positive top eigenvalue on both ranks');
    const same = await prom.waitFor('sigmatrain_hessian_sharpness{k="1"}',
      (r) => r.length === 2 && r[0].value[1] === r[1].value[1], 60_000);
    assert.ok(Number(same[0].value[1]) > 0, 'both ranks computed the same global sharpness');
    const thr = await prom.query('sigmatrain_stability_threshold');
    assert.ok(thr.length === 2 && thr.every((s) => Math.abs(Number(s.value[1]) - 38 / 0.003) < 1e-6), 'AdamW threshold 38/η');
    const bound = await prom.waitFor('sigmatrain_attention_entropy_bound_nats', (r) => r.length === 4, 60_000);
    for (const b of bound) {
      const e = ent.find((s) => s.metric.layer === b.metric.layer && s.metric.head === b.metric.head)!;
      assert.ok(Number(b.value[1]) <= Number(e.value[1]) + 0.5, 'bound and entropy are on the same scale');
    }
    const world = await prom.waitFor('sigmatrain_world_size{job="sigmatrain-coordinator"}', (r) => r.length === 1 && r[0].value[1] === '2', 30_000);
    assert.equal(world.length, 1);
    const rate = await prom.waitFor('sum(rate(sigmatrain_samples_total[10s]))', (r) => r.length === 1 && Number(r[0].value[1]) > 0, 30_000);
    assert.ok(Number(rate[0].value[1]) > 0);
    // The alert rules loaded and evaluate.
    const res = await fetch(`${prom.url}/api/v1/rules`);
    const rules = (await res.json()) as { data: { groups: Array<{ rules: Array<{ name: string; health: string }> }> } };
    const all = rules.data.groups.flatMap((g) => g.rules);
    assert.ok(all.length >= 5 && all.every((r) => r.health !== 'err'), JSON.stringify(all.map((r) => [r.name, r.health])));
  } finally {
    await prom.stop();
    killTree(p.child.pid, 'SIGTERM');
    await p.exit;
  }
});
