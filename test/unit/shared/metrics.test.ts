// shared/metrics: the metric-name contract of ARCHITECTURE.md (exact names, types, label names), recorded values,
// per-head gating, rank labels, and `promtool check metrics` on our own exposition.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { Registry } from 'prom-client';
import {
  CoordinatorMetrics, WorkerMetrics, createRegistry, setRank, STEP_BUCKETS_SECONDS, CHECKPOINT_BUCKETS_SECONDS,
} from '../../../shared/metrics/index.js';
import { SigmaError } from '../../../shared/errors.js';

// Written out by hand from ARCHITECTURE.md on purpose: renaming a metric in names.ts must fail here.
const WORKER_CONTRACT: Record<string, [type: string, labels: string[]]> = {
  sigmatrain_attention_entropy_nats: ['gauge', ['attn', 'head', 'layer']],
  sigmatrain_attention_entropy_min_nats: ['gauge', ['attn']],
  sigmatrain_attention_entropy_bound_nats: ['gauge', ['attn', 'head', 'layer']],
  sigmatrain_spectral_norm: ['gauge', ['param']],
  sigmatrain_reparam_gamma: ['gauge', ['param']],
  sigmatrain_hessian_sharpness: ['gauge', ['k']],
  sigmatrain_stability_threshold: ['gauge', []],
  sigmatrain_loss: ['gauge', []],
  sigmatrain_learning_rate: ['gauge', []],
  sigmatrain_grad_norm: ['gauge', []],
  sigmatrain_attention_temperature: ['gauge', []],
  sigmatrain_samples_total: ['counter', []],
  sigmatrain_tokens_total: ['counter', []],
  sigmatrain_steps_total: ['counter', []],
  sigmatrain_step_phase_duration_seconds: ['histogram', ['phase']],
  sigmatrain_allreduce_bytes_total: ['counter', []],
  sigmatrain_allreduce_duration_seconds: ['histogram', []],
  sigmatrain_data_skipped_total: ['counter', []],
};
const COORDINATOR_CONTRACT: Record<string, [type: string, labels: string[]]> = {
  sigmatrain_world_size: ['gauge', []],
  sigmatrain_generation: ['gauge', []],
  sigmatrain_worker_failures_total: ['counter', []],
  sigmatrain_checkpoint_duration_seconds: ['histogram', []],
  sigmatrain_job_steps_total: ['counter', []],
  sigmatrain_entropy_collapse: ['gauge', ['attn', 'layer']],
  sigmatrain_entropy_collapse_events_total: ['counter', []],
};

const DEFAULT_LABELS = new Set(['role', 'rank']);

type Json = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;
type Entry = Json[number];

function step(over: Partial<Parameters<WorkerMetrics['recordStep']>[0]> = {}): Parameters<WorkerMetrics['recordStep']>[0] {
  return {
    loss: 2.5, lr: 1e-3, gradNorm: 0.7, temperature: 1, samples: 32, tokens: 32 * 65,
    entropy: [[2.1, 1.9], [0.4, 3.0]], phases: { data: 0.002, forward_backward: 0.8, allreduce: 0.05, optimizer: 0.01 },
    allreduceBytes: 4096, allreduceSeconds: 0.05, ...over,
  };
}

function recordEverything(w: WorkerMetrics): void {
  w.recordStep(step());
  w.recordBounds([[0.5, 0.6], [0.2, 0.9]]);
  w.recordSpectral([{ name: 'blocks.0.attn.qkv', sigma: 3.2, gamma: 1.1 }, { name: 'head', sigma: 1.4 }]);
  w.recordSharpness([120, 80], 38 / 1e-3);
  w.recordSkipped(2);
}

function recordCoordinator(c: CoordinatorMetrics): void {
  c.setWorld(4, 2);
  c.workerFailed();
  c.checkpoint(1.5);
  c.stepDone();
  c.recordCollapse(1, true);
}

/** name → [type, sorted label names seen in the exposition, excluding default labels and `le`]. */
function shape(json: Json): Record<string, [string, string[]]> {
  const out: Record<string, [string, string[]]> = {};
  for (const m of json) {
    const labels = new Set<string>();
    for (const v of m.values) for (const l of Object.keys(v.labels)) if (!DEFAULT_LABELS.has(l) && l !== 'le') labels.add(l);
    out[m.name] = [String(m.type), [...labels].sort()];
  }
  return out;
}

function metric(json: Json, name: string): Entry {
  const m = json.find((x) => x.name === name);
  assert.ok(m, `${name} missing`);
  return m;
}

/** The value of the series of `name` (or a histogram's `name_count`/`name_sum`/`name_bucket`) whose labels include `labels`. */
function value(json: Json, name: string, labels: Record<string, string> = {}, series = name): number | undefined {
  const v = metric(json, name).values.find((x) => {
    const own = x as { metricName?: string; labels: Record<string, string | number> };
    return (own.metricName ?? name) === series && Object.entries(labels).every(([k, l]) => String(own.labels[k]) === l);
  });
  return v?.value;
}

test('worker registry holds exactly the contract: names, types, label names; no job/instance labels', async () => {
  const registry = createRegistry({ role: 'worker', rank: 0 });
  recordEverything(new WorkerMetrics(registry, { perHead: true }));
  const json = await registry.getMetricsAsJSON();
  assert.deepEqual(shape(json), WORKER_CONTRACT);
  for (const m of json) {
    for (const v of m.values) {
      assert.equal(v.labels.rank, '0');
      assert.equal(v.labels.role, 'worker');
      assert.ok(!('job' in v.labels) && !('instance' in v.labels), `${m.name} sets job/instance`);
    }
  }
});

test('coordinator registry holds exactly the coordinator contract', async () => {
  const registry = createRegistry({ role: 'coordinator' });
  recordCoordinator(new CoordinatorMetrics(registry));
  const json = await registry.getMetricsAsJSON();
  assert.deepEqual(shape(json), COORDINATOR_CONTRACT);
  for (const m of json) for (const v of m.values) assert.deepEqual(Object.keys(v.labels).filter((l) => DEFAULT_LABELS.has(l)), ['role']);
});

test('histogram buckets reach from milliseconds to minutes', () => {
  assert.ok(STEP_BUCKETS_SECONDS[0]! <= 0.001 && STEP_BUCKETS_SECONDS.at(-1)! >= 120);
  assert.ok(CHECKPOINT_BUCKETS_SECONDS[0]! <= 0.01 && CHECKPOINT_BUCKETS_SECONDS.at(-1)! >= 600);
});

test('values: gauges hold the last step, counters accumulate, histograms count observations, min is the min', async () => {
  const registry = createRegistry({ role: 'worker', rank: 1 });
  const w = new WorkerMetrics(registry, { perHead: true });
  w.recordStep(step());
  w.recordStep(step({
    loss: 1.75, samples: 16, tokens: 16 * 65, entropy: [[2.0, 1.2], [0.9, 0.3]], phases: { data: 0.5, forward_backward: 0.7 },
    allreduceBytes: 0, allreduceSeconds: 0, // no all-reduce this step: not observed
  }));
  w.recordEntropy([[4.0], [3.5]], 'cross');
  // Bad increments are dropped, never thrown and never NaN.
  w.recordStep(step({ samples: Number.NaN, tokens: -5, phases: { optimizer: Number.NaN }, allreduceBytes: 0 }));
  let json = await registry.getMetricsAsJSON();

  assert.equal(value(json, 'sigmatrain_loss'), 2.5);
  assert.equal(value(json, 'sigmatrain_learning_rate'), 1e-3);
  assert.equal(value(json, 'sigmatrain_grad_norm'), 0.7);
  assert.equal(value(json, 'sigmatrain_attention_temperature'), 1);
  assert.equal(value(json, 'sigmatrain_steps_total'), 3);
  assert.equal(value(json, 'sigmatrain_samples_total'), 32 + 16);
  assert.equal(value(json, 'sigmatrain_tokens_total'), (32 + 16) * 65);
  assert.equal(value(json, 'sigmatrain_allreduce_bytes_total'), 4096);
  const H = 'sigmatrain_step_phase_duration_seconds';
  // Step 3 reported only a NaN optimizer time: nothing observed for it.
  assert.equal(value(json, H, { phase: 'data' }, `${H}_count`), 2);
  assert.equal(value(json, H, { phase: 'data' }, `${H}_sum`), 0.002 + 0.5);
  assert.equal(value(json, H, { phase: 'forward_backward' }, `${H}_count`), 2);
  assert.equal(value(json, H, { phase: 'optimizer' }, `${H}_count`), 1);
  assert.equal(value(json, H, { phase: 'allreduce' }, `${H}_count`), 1);
  assert.equal(value(json, H, { phase: 'diagnostics' }, `${H}_count`), undefined);
  assert.equal(value(json, H, { phase: 'data', le: '0.001' }, `${H}_bucket`), 0);
  assert.equal(value(json, H, { phase: 'data', le: '0.0025' }, `${H}_bucket`), 1);
  assert.equal(value(json, H, { phase: 'data', le: '+Inf' }, `${H}_bucket`), 2);
  const A = 'sigmatrain_allreduce_duration_seconds';
  assert.equal(value(json, A, {}, `${A}_count`), 1);
  // Minimum per attention type; the third step's entropy (default) is [[2.1,1.9],[0.4,3.0]].
  assert.equal(value(json, 'sigmatrain_attention_entropy_min_nats', { attn: 'self' }), 0.4);
  assert.equal(value(json, 'sigmatrain_attention_entropy_min_nats', { attn: 'cross' }), 3.5);
  assert.equal(value(json, 'sigmatrain_attention_entropy_nats', { layer: '1', head: '0', attn: 'self' }), 0.4);
  assert.equal(value(json, 'sigmatrain_attention_entropy_nats', { layer: '1', head: '0', attn: 'cross' }), 3.5);
  assert.equal(metric(json, 'sigmatrain_attention_entropy_nats').values.length, 4 + 2);

  // Sharpness: a new, shorter top-k replaces the old set.
  w.recordSharpness([50, 40, 30], 2000);
  w.recordSharpness([45], 1900);
  w.recordSpectral([{ name: 'a', sigma: 2, gamma: 0.5 }, { name: 'b', sigma: 3 }]);
  w.recordSpectral([{ name: 'a', sigma: 2.5 }]);
  w.recordSkipped(2);
  w.recordSkipped(3);
  w.recordSkipped(Number.NaN);
  json = await registry.getMetricsAsJSON();
  assert.deepEqual(metric(json, 'sigmatrain_hessian_sharpness').values.map((v) => [v.labels.k, v.value]), [['1', 45]]);
  assert.equal(value(json, 'sigmatrain_stability_threshold'), 1900);
  assert.equal(value(json, 'sigmatrain_spectral_norm', { param: 'a' }), 2.5);
  assert.equal(value(json, 'sigmatrain_spectral_norm', { param: 'b' }), 3);
  assert.equal(value(json, 'sigmatrain_reparam_gamma', { param: 'a' }), 0.5);
  assert.equal(metric(json, 'sigmatrain_reparam_gamma').values.length, 1);
  assert.equal(value(json, 'sigmatrain_data_skipped_total'), 5);
});

test('collapse guard (coordinator): the gauge follows the verdict, events count 0→1 transitions only', async () => {
  const registry = createRegistry({ role: 'coordinator' });
  const c = new CoordinatorMetrics(registry);
  c.recordCollapse(0, true);
  c.recordCollapse(0, true);
  c.recordCollapse(0, false);
  c.recordCollapse(0, true);
  c.recordCollapse(2, true, 'causal');
  c.recordCollapse(2, false, 'causal');
  const json = await registry.getMetricsAsJSON();
  assert.equal(value(json, 'sigmatrain_entropy_collapse_events_total'), 3);
  assert.equal(value(json, 'sigmatrain_entropy_collapse', { layer: '0', attn: 'self' }), 1);
  assert.equal(value(json, 'sigmatrain_entropy_collapse', { layer: '2', attn: 'causal' }), 0);
});

test('recorded matrices are copied: a caller reusing its buffer does not change what is scraped', async () => {
  const registry = createRegistry({ role: 'worker', rank: 0 });
  const w = new WorkerMetrics(registry, { perHead: true });
  const buf = [[1, 2]];
  w.recordStep(step({ entropy: buf }));
  buf[0]![0] = 9;
  const json = await registry.getMetricsAsJSON();
  assert.equal(value(json, 'sigmatrain_attention_entropy_nats', { layer: '0', head: '0' }), 1);
});

test('perHead off: no per-head entropy or bound series, but the per-type minimum is set', async () => {
  const registry = createRegistry({ role: 'worker', rank: 3 });
  const w = new WorkerMetrics(registry, { perHead: false });
  recordEverything(w);
  let json = await registry.getMetricsAsJSON();
  assert.equal(metric(json, 'sigmatrain_attention_entropy_nats').values.length, 0);
  assert.equal(metric(json, 'sigmatrain_attention_entropy_bound_nats').values.length, 0);
  assert.equal(value(json, 'sigmatrain_attention_entropy_min_nats', { attn: 'self' }), 0.4);
  const text = await registry.metrics();
  assert.doesNotMatch(text, /^sigmatrain_attention_entropy_nats\{/m);

  // Turning it on and off again (rank changed at a new generation) adds and then drops the series.
  w.setPerHead(true);
  w.recordStep(step());
  w.recordBounds([[0.1, 0.2], [0.3, 0.4]]);
  json = await registry.getMetricsAsJSON();
  assert.equal(metric(json, 'sigmatrain_attention_entropy_nats').values.length, 4);
  assert.equal(value(json, 'sigmatrain_attention_entropy_bound_nats', { layer: '1', head: '1' }), 0.4);
  w.setPerHead(false);
  json = await registry.getMetricsAsJSON();
  assert.equal(metric(json, 'sigmatrain_attention_entropy_nats').values.length, 0);
  assert.equal(metric(json, 'sigmatrain_attention_entropy_bound_nats').values.length, 0);
});

test('coordinator values; rank relabelling; a bad rank is a SigmaError', async () => {
  const registry = createRegistry({ role: 'coordinator' });
  const c = new CoordinatorMetrics(registry);
  recordCoordinator(c);
  c.workerFailed();
  c.stepDone(5);
  c.setWorld(3, 3);
  const json = await registry.getMetricsAsJSON();
  assert.equal(value(json, 'sigmatrain_world_size'), 3);
  assert.equal(value(json, 'sigmatrain_generation'), 3);
  assert.equal(value(json, 'sigmatrain_worker_failures_total'), 2);
  assert.equal(value(json, 'sigmatrain_job_steps_total'), 6);
  const C = 'sigmatrain_checkpoint_duration_seconds';
  assert.equal(value(json, C, {}, `${C}_count`), 1);
  assert.equal(value(json, C, {}, `${C}_sum`), 1.5);

  const wr = createRegistry({ role: 'worker', rank: 2 });
  new WorkerMetrics(wr, { perHead: false }).recordStep(step());
  assert.match(await wr.metrics(), /^sigmatrain_loss\{role="worker",rank="2"\} 2\.5$/m);
  setRank(wr, 'worker', 0);
  assert.match(await wr.metrics(), /^sigmatrain_loss\{role="worker",rank="0"\} 2\.5$/m);
  assert.throws(() => createRegistry({ role: 'worker', rank: 1.5 }), (e: unknown) => e instanceof SigmaError && e.code === 'SGT_METRICS' && /1\.5/.test(e.message));
});

test('default process metrics go into the given registry only', async () => {
  const registry = createRegistry({ role: 'worker', rank: 0, defaultMetrics: true });
  const names = (await registry.getMetricsAsJSON()).map((m) => m.name);
  assert.ok(names.includes('process_cpu_user_seconds_total'));
  const { register } = await import('prom-client');
  assert.equal(register.getSingleMetric('process_cpu_user_seconds_total'), undefined, 'global registry untouched');
});

/** Exposition text of our own series only: prom-client's nodejs_active_*_total gauges fail promtool's lint (ops.md). */
async function ownExposition(registry: Registry): Promise<string> {
  const names = (await registry.getMetricsAsJSON()).map((m) => m.name).filter((n) => n.startsWith('sigmatrain_'));
  const parts = await Promise.all(names.map((n) => registry.getSingleMetricAsString(n)));
  return parts.join('\n') + '\n';
}

test('promtool check metrics passes on our exposition (worker and coordinator)', async () => {
  const worker = createRegistry({ role: 'worker', rank: 0, defaultMetrics: true });
  recordEverything(new WorkerMetrics(worker, { perHead: true }));
  const coordinator = createRegistry({ role: 'coordinator', defaultMetrics: true });
  recordCoordinator(new CoordinatorMetrics(coordinator));

  for (const [role, registry] of [['worker', worker], ['coordinator', coordinator]] as const) {
    const text = await ownExposition(registry);
    assert.match(text, /^sigmatrain_/m);
    assert.doesNotMatch(text, /^(process|nodejs)_/m);
    const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
    if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') {
      assert.fail('promtool is not installed: .ci/run installs the Debian package `prometheus` (apt-get install -y prometheus), which ships promtool');
    }
    assert.equal(r.status, 0, `promtool check metrics (${role}) failed:\n${r.stdout}${r.stderr}\n--- exposition ---\n${text}`);
  }
});
