// Every sigmatrain_* name used by the Prometheus rules, their unit tests, the scrape config and the Grafana
// dashboard is a contract name (ARCHITECTURE.md "Metric names"): a typo in a query must fail here, not show an empty panel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url)); // dist/test/unit/deploy/ → repo root

/** The contract (without the sigmatrain_ prefix). Histograms are listed separately: only they have _bucket/_sum/_count. */
const GAUGES = [
  'attention_entropy_nats',
  'attention_entropy_min_nats',
  'attention_entropy_bound_nats',
  'spectral_norm',
  'reparam_gamma',
  'hessian_sharpness',
  'stability_threshold',
  'loss',
  'learning_rate',
  'grad_norm',
  'attention_temperature',
  'entropy_collapse',
  'world_size',
  'generation',
];
const COUNTERS = [
  'samples_total',
  'tokens_total',
  'steps_total',
  'allreduce_bytes_total',
  'entropy_collapse_events_total',
  'data_skipped_total',
  'worker_failures_total',
  'job_steps_total',
];
const HISTOGRAMS = ['step_phase_duration_seconds', 'allreduce_duration_seconds', 'checkpoint_duration_seconds'];
const CONTRACT = new Set([...GAUGES, ...COUNTERS, ...HISTOGRAMS].map((n) => `sigmatrain_${n}`));
const HISTOGRAM_NAMES = new Set(HISTOGRAMS.map((n) => `sigmatrain_${n}`));

/** Metric names a text uses, histogram series (_bucket/_sum/_count) reduced to their histogram's name. */
function metricNames(text: string): Set<string> {
  const out = new Set<string>();
  for (const [name] of text.matchAll(/sigmatrain_[A-Za-z0-9_]+/g)) {
    const base = name.replace(/_(bucket|sum|count)$/, '');
    out.add(base !== name && HISTOGRAM_NAMES.has(base) ? base : name);
  }
  return out;
}

function unknownNames(text: string): string[] {
  return [...metricNames(text)].filter((n) => !CONTRACT.has(n));
}

const files = [
  'deploy/prometheus/prometheus.yml',
  ...readdirSync(join(ROOT, 'deploy/prometheus/rules')).map((f) => `deploy/prometheus/rules/${f}`),
  ...readdirSync(join(ROOT, 'deploy/prometheus/tests')).map((f) => `deploy/prometheus/tests/${f}`),
  ...readdirSync(join(ROOT, 'deploy/grafana/dashboards')).map((f) => `deploy/grafana/dashboards/${f}`),
];

test('the name extractor catches typos and misuse of histogram suffixes', () => {
  assert.deepEqual(unknownNames('rate(sigmatrain_samples_total[1m]) / sigmatrain_los'), ['sigmatrain_los']);
  assert.deepEqual(unknownNames('sigmatrain_loss_sum'), ['sigmatrain_loss_sum'], 'loss is a gauge, it has no _sum');
  assert.deepEqual(unknownNames('sigmatrain_step_phase_duration_seconds_bucket{le="1"}'), []);
  assert.deepEqual(unknownNames('layer:sigmatrain_attention_entropy_nats:min'), [], 'recording rule names');
  assert.deepEqual(unknownNames('sigmatrain_Loss'), ['sigmatrain_Loss']);
});

for (const file of files) {
  test(`${file} uses only contract metric names`, () => {
    const text = readFileSync(join(ROOT, file), 'utf8');
    assert.deepEqual(unknownNames(text), [], `names outside the contract in ${file}`);
  });
}

test('rules and dashboard together cover the metrics an operator needs', () => {
  const used = new Set(files.flatMap((f) => [...metricNames(readFileSync(join(ROOT, f), 'utf8'))]));
  const unused = [...CONTRACT].filter((n) => !used.has(n));
  assert.deepEqual(unused, [], 'contract metrics that no rule or panel shows');
});
