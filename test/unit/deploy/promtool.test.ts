// promtool checks of deploy/prometheus: the scrape config, the rules, the rules' unit tests, and the shape of every
// alert (for:, severity, annotations naming the layer / process). Fails, never skips, when promtool is missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { promtool } from '../../integration/helpers/prometheus.js';
import { REPO_ROOT as ROOT, ruleFiles, ruleGroups } from '../../../deploy/k8s/generate.js';

const PROM = join(ROOT, 'deploy/prometheus');
const TESTS = readdirSync(join(PROM, 'tests'))
  .filter((f) => f.endsWith('.yml'))
  .map((f) => join(PROM, 'tests', f));

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
// Every rule file's groups (deploy/k8s/generate.ts reads the same files into the PrometheusRule).
const groups = ruleGroups() as unknown as Array<{ name: string; rules: Rule[] }>;
const alerts = groups.flatMap((g) => g.rules).filter((r) => r.alert !== undefined);

test('promtool is installed', () => {
  const r = promtool(['--version']); // throws "... .ci/run installs the Debian package" when absent
  assert.equal(r.status, 0, r.output);
});

test('promtool check config deploy/prometheus/prometheus.yml (and the rule files it names)', () => {
  const r = promtool(['check', 'config', join(PROM, 'prometheus.yml')]);
  assert.equal(r.status, 0, r.output);
  assert.match(r.output, /1 rule files found/, 'prometheus.yml must load rules/sigmatrain.rules.yml');
});

test('promtool check rules deploy/prometheus/rules/*.yml', () => {
  const r = promtool(['check', 'rules', ...ruleFiles()]);
  assert.equal(r.status, 0, r.output);
});

test('promtool test rules deploy/prometheus/tests/*.yml', () => {
  assert.ok(TESTS.length > 0, 'no rule unit tests found');
  const r = promtool(['test', 'rules', ...TESTS]);
  assert.equal(r.status, 0, r.output);
});

test('the required alerts exist', () => {
  const names = alerts.map((a) => a.alert);
  for (const required of [
    'SigmatrainEntropyCollapse',
    'SigmatrainEntropyDrop',
    'SigmatrainSharpnessAboveStabilityThreshold',
    'SigmatrainNoStepProgress',
    'SigmatrainWorkerLost',
    'SigmatrainWorldSizeShrunk',
    'SigmatrainNonFiniteLoss',
  ]) {
    assert.ok(names.includes(required), `missing alert ${required}`);
  }
  assert.equal(new Set(names).size, names.length, 'duplicate alert names');
});

test('every alert has for:, a severity and a summary/description that name the layer or process', () => {
  for (const a of alerts) {
    assert.match(a.for ?? '', /^\d+[smh]$/, `${a.alert}: for:`);
    assert.ok(['warning', 'critical'].includes(a.labels?.severity ?? ''), `${a.alert}: severity label`);
    for (const key of ['summary', 'description'] as const) {
      const text = a.annotations?.[key] ?? '';
      assert.match(text, /\$labels\.(instance|layer)/, `${a.alert}: ${key} must name the process or layer`);
    }
    if (/attention_entropy|entropy_collapse/.test(a.expr)) {
      assert.match(a.annotations!.summary!, /\$labels\.layer/, `${a.alert}: entropy alerts name the layer`);
    }
  }
});

test('every alert has a unit test where it fires and one where it must not', () => {
  const cases = TESTS.flatMap((f) => {
    const doc = parse(readFileSync(f, 'utf8')) as {
      tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts?: unknown[] }> }>;
    };
    return doc.tests.flatMap((t) => t.alert_rule_test ?? []);
  });
  for (const a of alerts) {
    const mine = cases.filter((c) => c.alertname === a.alert);
    assert.ok(mine.some((c) => (c.exp_alerts ?? []).length > 0), `${a.alert}: no test where it fires`);
    assert.ok(mine.some((c) => (c.exp_alerts ?? []).length === 0), `${a.alert}: no test where it must stay silent`);
  }
});
