// The Grafana dashboard: committed JSON = generated from deploy/grafana/dashboard.ts (type-checked against
// @grafana/schema at compile time), required panels present, sane layout, every PromQL query parses (promtool)
// and returns data from a real Prometheus scraping fake sigmatrain processes (which, healthy, fire no alert).
import { ruleFiles } from '../../../deploy/k8s/generate.js';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import type { Panel, RowPanel } from '@grafana/schema';
import { DASHBOARD_JSON_PATH, dashboard, renderDashboardJson } from '../../../deploy/grafana/dashboard.js';
import { checkPromql, serveExposition, startPrometheus } from '../../integration/helpers/prometheus.js';

// Compile-time check that the schema type has teeth: a panel without its `type` is rejected by tsc.
// @ts-expect-error -- Panel.type is required
const _noType = { title: 'x', targets: [] } satisfies Panel;
void _noType;

interface JsonPanel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type?: string; uid?: string };
  targets?: Array<{ refId: string; expr: string; legendFormat?: string; datasource?: { uid?: string } }>;
}
interface JsonVariable {
  type: string;
  name: string;
  query?: string;
}
const json = JSON.parse(readFileSync(DASHBOARD_JSON_PATH, 'utf8')) as {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: JsonPanel[];
  templating: { list: JsonVariable[] };
};
const panels = json.panels.filter((p) => p.type !== 'row');
const GRAFANA = fileURLToPath(new URL('../../../../deploy/grafana/', import.meta.url)); // from dist/test/unit/deploy/

test('committed dashboard JSON is the one deploy/grafana/dashboard.ts generates', () => {
  assert.equal(
    readFileSync(DASHBOARD_JSON_PATH, 'utf8'),
    renderDashboardJson(),
    'stale dashboard: run `npx tsc -p tsconfig.json && node dist/deploy/grafana/dashboard.js` and commit the JSON',
  );
});

test('dashboard identity and variables', () => {
  assert.match(json.uid, /^[a-zA-Z0-9_-]{8,40}$/);
  assert.ok(json.title.length > 0);
  assert.ok(json.schemaVersion >= 36, 'schemaVersion');
  const vars = new Map(json.templating.list.map((v) => [v.name, v]));
  assert.equal(vars.get('datasource')?.type, 'datasource');
  assert.equal(vars.get('datasource')?.query, 'prometheus');
  for (const name of ['job', 'instance', 'layer']) assert.equal(vars.get(name)?.type, 'query', `variable ${name}`);
});

test('the required panels are present', () => {
  const titles = panels.map((p) => p.title);
  for (const required of [
    'Attention entropy heatmap (layer × head)',
    'Minimum attention entropy per layer vs Theorem 3.1 bound',
    'Hessian sharpness vs stability threshold',
    'Loss and learning rate',
    'Samples per second',
    'Step phase breakdown',
    'All-reduce share of step time',
    'World size and generation',
    'Worker failures',
  ]) {
    assert.ok(titles.includes(required), `missing panel "${required}"`);
  }
  assert.equal(new Set(titles).size, titles.length, 'duplicate panel titles');
});

test('panels: unique ids, inside the 24-column grid, no overlaps, queries on the datasource variable', () => {
  const ids = json.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'duplicate panel ids');
  const cells = new Set<string>();
  for (const p of json.panels) {
    const { x, y, w, h } = p.gridPos;
    assert.ok(x >= 0 && w > 0 && h > 0 && x + w <= 24, `${p.title}: gridPos ${JSON.stringify(p.gridPos)}`);
    for (let i = x; i < x + w; i++) {
      for (let j = y; j < y + h; j++) {
        assert.ok(!cells.has(`${i},${j}`), `${p.title} overlaps another panel at ${i},${j}`);
        cells.add(`${i},${j}`);
      }
    }
  }
  for (const p of panels) {
    assert.equal(p.datasource?.uid, '${datasource}', `${p.title}: datasource`);
    assert.ok(p.targets && p.targets.length > 0, `${p.title}: no queries`);
    const refIds = p.targets.map((t) => t.refId);
    assert.equal(new Set(refIds).size, refIds.length, `${p.title}: duplicate refIds`);
    for (const t of p.targets) {
      assert.ok(t.expr.trim().length > 0, `${p.title}: empty query`);
      assert.equal(t.datasource?.uid, '${datasource}', `${p.title}: query datasource`);
    }
  }
});

/** Replaces Grafana's variables with concrete values (dashboard variables by `value`) so that the query runs. */
function substituteVariables(expr: string, value = 'sigmatrain-worker'): string {
  return expr
    .replace(/\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}/g, '5m')
    .replace(/\$__(range_s|interval_ms|range_ms)\b/g, '300')
    .replace(/\$\{(\w+)(:\w+)?\}|\[\[(\w+)\]\]|\$(\w+)/g, value);
}

/** Every PromQL text in the dashboard: panel queries and the selectors inside label_values(...) variables. */
function allQueries(): Array<{ where: string; expr: string }> {
  const out = panels.flatMap((p) => p.targets!.map((t) => ({ where: `${p.title} / ${t.refId}`, expr: t.expr })));
  for (const v of json.templating.list) {
    if (v.type !== 'query') continue;
    const m = /^label_values\((.*),\s*\w+\)$/.exec(v.query ?? '');
    assert.ok(m, `variable ${v.name}: expected label_values(selector, label), got ${v.query}`);
    out.push({ where: `variable ${v.name}`, expr: m[1]! });
  }
  return out;
}

test('variable substitution leaves no Grafana variable behind', () => {
  assert.equal(
    substituteVariables('rate(x{job=~"$job", a="${instance:regex}", b="[[layer]]"}[$__rate_interval]) + y[$__range]'),
    'rate(x{job=~"sigmatrain-worker", a="sigmatrain-worker", b="sigmatrain-worker"}[5m]) + y[5m]',
  );
  for (const q of allQueries()) assert.doesNotMatch(substituteVariables(q.expr), /\$|\[\[/, q.where);
});

test('every dashboard query is valid PromQL (promtool check rules)', () => {
  const queries = allQueries();
  assert.ok(queries.length >= 20, `only ${queries.length} queries found`);
  const r = checkPromql(queries.map((q) => substituteVariables(q.expr)));
  const index = queries.map((q, i) => `  expr_${i}: ${q.where}`).join('\n');
  assert.equal(r.status, 0, `${r.output}\nqueries:\n${index}`);
});

test('the PromQL check rejects a broken query', () => {
  const r = checkPromql(['sum(rate(sigmatrain_samples_total[5m])', 'sigmatrain_loss']);
  assert.notEqual(r.status, 0, 'an unbalanced parenthesis must fail');
  assert.match(r.output, /expr_0/);
});

test('the TypeScript source is the dashboard object (rows hold no nested panels)', () => {
  const rows = (dashboard.panels as Array<Panel | RowPanel>).filter((p): p is RowPanel => p.type === 'row');
  assert.ok(rows.length >= 3);
  for (const r of rows) assert.deepEqual(r.panels, [], `row ${r.title} is expanded: its panels follow it at top level`);
});

test('provisioning: Prometheus datasources for compose and localhost, a file provider for the dashboards', () => {
  const ds = parse(readFileSync(join(GRAFANA, 'provisioning/datasources/sigmatrain.yml'), 'utf8')) as {
    apiVersion: number;
    datasources: Array<{ uid: string; type: string; url: string; isDefault?: boolean }>;
  };
  assert.equal(ds.apiVersion, 1);
  assert.ok(ds.datasources.every((d) => d.type === 'prometheus'), 'the datasource variable lists type prometheus');
  assert.deepEqual(ds.datasources.map((d) => d.url).sort(), ['http://localhost:9090', 'http://prometheus:9090']);
  assert.equal(ds.datasources.filter((d) => d.isDefault).length, 1, 'exactly one default datasource');

  const dash = parse(readFileSync(join(GRAFANA, 'provisioning/dashboards/sigmatrain.yml'), 'utf8')) as {
    apiVersion: number;
    providers: Array<{ type: string; options: { path: string } }>;
  };
  assert.equal(dash.apiVersion, 1);
  assert.equal(dash.providers[0]?.type, 'file');
  assert.match(dash.providers[0]!.options.path, /^\//);
});

// Fake sigmatrain processes: every contract metric with the contract's labels; counters and histograms grow per scrape.
const PHASES = ['data', 'forward_backward', 'allreduce', 'optimizer', 'diagnostics'];

/** Cumulative histogram lines for `count` observations of `seconds` each (buckets 0.1, 1, +Inf). */
function histogram(name: string, labels: string, count: number, seconds: number): string[] {
  const sep = labels ? `${labels},` : '';
  return [
    `${name}_bucket{${sep}le="0.1"} ${seconds <= 0.1 ? count : 0}`,
    `${name}_bucket{${sep}le="1"} ${seconds <= 1 ? count : 0}`,
    `${name}_bucket{${sep}le="+Inf"} ${count}`,
    `${name}_sum{${labels}} ${count * seconds}`,
    `${name}_count{${labels}} ${count}`,
  ];
}

/** A worker (rank 0) after `n` scrapes: 2 layers × 2 heads of self attention, one σReparam weight. */
function workerExposition(n: number): string {
  const r = 'rank="0",role="worker"';
  const lines: string[] = [];
  for (const layer of [0, 1]) {
    for (const head of [0, 1]) {
      lines.push(`sigmatrain_attention_entropy_nats{${r},layer="${layer}",head="${head}",attn="self"} ${2 + 0.1 * head}`);
      lines.push(`sigmatrain_attention_entropy_bound_nats{${r},layer="${layer}",head="${head}",attn="self"} 0.5`);
    }
    lines.push(`sigmatrain_entropy_collapse{${r},layer="${layer}",attn="self"} 0`);
  }
  lines.push(
    `sigmatrain_attention_entropy_min_nats{${r},attn="self"} 2`,
    `sigmatrain_spectral_norm{${r},param="blocks.0.attn.qkv"} 3.5`,
    `sigmatrain_reparam_gamma{${r},param="blocks.0.attn.qkv"} 1.2`,
    `sigmatrain_hessian_sharpness{${r},k="1"} 120`,
    `sigmatrain_hessian_sharpness{${r},k="2"} 80`,
    `sigmatrain_stability_threshold{${r}} 380`,
    `sigmatrain_loss{${r}} 1.5`,
    `sigmatrain_learning_rate{${r}} 0.1`,
    `sigmatrain_grad_norm{${r}} 0.8`,
    `sigmatrain_attention_temperature{${r}} 1`,
    `sigmatrain_samples_total{${r}} ${64 * n}`,
    `sigmatrain_tokens_total{${r}} ${64 * 128 * n}`,
    `sigmatrain_steps_total{${r}} ${n}`,
    `sigmatrain_allreduce_bytes_total{${r}} ${4e6 * n}`,
    `sigmatrain_entropy_collapse_events_total{${r}} 0`,
    `sigmatrain_data_skipped_total{${r}} 0`,
    ...histogram('sigmatrain_allreduce_duration_seconds', r, n, 0.05),
    ...PHASES.flatMap((phase) => histogram('sigmatrain_step_phase_duration_seconds', `${r},phase="${phase}"`, n, 0.02)),
  );
  return `${lines.join('\n')}\n`;
}

/** The coordinator after `n` scrapes: 2 workers, generation 1, no failure yet, a checkpoint per scrape. */
function coordinatorExposition(n: number): string {
  const r = 'role="coordinator"';
  return `${[
    `sigmatrain_world_size{${r}} 2`,
    `sigmatrain_generation{${r}} 1`,
    `sigmatrain_worker_failures_total{${r}} 0`,
    `sigmatrain_job_steps_total{${r}} ${n}`,
    ...histogram('sigmatrain_checkpoint_duration_seconds', r, n, 0.5),
  ].join('\n')}\n`;
}

test('every dashboard query returns finite data from a real Prometheus scraping fake sigmatrain processes', async (t) => {
  const worker = await serveExposition(workerExposition);
  const coordinator = await serveExposition(coordinatorExposition);
  after(() => Promise.all([worker.close(), coordinator.close()]));
  const prom = await startPrometheus({
    targets: [
      { job: 'sigmatrain-worker', addresses: [worker.address] },
      { job: 'sigmatrain-coordinator', addresses: [coordinator.address] },
    ],
    scrapeIntervalSeconds: 1,
    ruleFiles: ruleFiles(),
  });
  after(() => prom.stop());
  // rate()/increase() need two samples of each process.
  const twoScrapes = (r: Array<{ value: [number, string] }>) => r.length === 2 && r.every((s) => Number(s.value[1]) > 0);
  await prom.waitFor('increase({__name__=~"sigmatrain_steps_total|sigmatrain_job_steps_total"}[5m])', twoScrapes, 20_000);

  const empty: string[] = [];
  for (const q of allQueries()) {
    const result = await prom.query(substituteVariables(q.expr, '.*')); // every variable on "All"
    if (result.length === 0) empty.push(`${q.where}: no data`);
    for (const s of result) {
      if (!Number.isFinite(Number(s.value[1]))) empty.push(`${q.where}: ${s.value[1]} for ${JSON.stringify(s.metric)}`);
    }
  }
  t.diagnostic(`${allQueries().length} queries run`);
  assert.deepEqual(empty, [], 'queries without finite data (wrong label or metric assumption?)');

  // The real Prometheus loads the rules too: the recording rule evaluates, and healthy processes raise no alert.
  await prom.waitFor('layer:sigmatrain_attention_entropy_nats:min', (r) => r.length === 2, 10_000);
  assert.deepEqual(await prom.query('ALERTS'), [], 'alerts (firing or pending) on a healthy job');
});
