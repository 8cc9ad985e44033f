// Run report (coordinator/report.ts) on a hand-built run dir: 2 layers × 2 heads, 30 steps, a generation change, diagnostics
// every 10 steps, 2 evals and a torn last line; the page is self-contained and its numbers are the run's own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CHART_TITLES, chartSpecs, downsample, loadRun, markers, summarizeRun, writeReport,
} from '../../../coordinator/report.js';
import type { DiagnosticsRecord, EvalRecord, EventRecord, StepRecord } from '../../../coordinator/runlog.js';
import { SigmaError } from '../../../shared/errors.js';

const root = mkdtempSync(join(tmpdir(), 'sgt-report-'));
const T0 = Date.UTC(2026, 10, 27, 12, 0, 0);

interface Fixture {
  dir: string;
  steps: StepRecord[];
  diagnostics: DiagnosticsRecord[];
  evals: EvalRecord[];
  events: EventRecord[];
}

const jsonl = (records: object[]): string => records.map((r) => JSON.stringify(r) + '\n').join('');

/** Step s of generation 1 (steps 0–14, 2 workers) or 2 (15–…, 1 worker); entropy [layer][head] falls with depth. */
function stepRecord(step: number, nLayers = 2, nHeads = 2): StepRecord {
  const generation = step < 15 ? 1 : 2;
  const entropy = Array.from({ length: nLayers }, (_, l) => ({
    attn: 'self' as const, layer: l,
    heads: Array.from({ length: nHeads }, (_, h) => (step === 12 && l === 0 && h === 1 ? 0.2 : 2 - 0.03 * step * (l + 1) + 0.1 * h)),
  }));
  return {
    step, epoch: Math.floor(step / 10), generation, worldSize: generation === 1 ? 2 : 1,
    time: T0 + step * 500 + (generation === 2 ? 4000 : 0),
    loss: 2.3 * Math.exp(-step / 20) + 0.1 + 0.01 * Math.sin(step), metrics: { accuracy: Math.min(1, step / 30) },
    lr: 1e-3 * Math.min(1, (step + 1) / 5), gradNorm: 1 + 0.1 * Math.cos(step), temperature: step < 20 ? 1 : 0.5,
    samples: 64, units: 64, unit: 'samples', samplesPerSecond: 100 + step, entropy, digest: step.toString(16).padStart(16, '0'), seconds: { forward: 0.1, backward: 0.2, allreduce: 0.05 },
  };
}

function writeFixture(name: string, nSteps = 30): Fixture {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const steps = Array.from({ length: nSteps }, (_, s) => stepRecord(s));
  const diagnostics: DiagnosticsRecord[] = [0, 10, 20].map((step) => ({
    step, time: T0 + step * 500 + 100,
    sharpness: [5 * (1 + step / 10), 2.5, 1], stabilityThreshold: 2 / stepRecord(step).lr,
    entropyBound: [{ attn: 'self', layer: 0, heads: [0.1, 0.12] }, { attn: 'self', layer: 1, heads: [0.05, 0.06] }],
    spectral: [{ name: 'block0.attn.qkv', sigma: 1.2, gamma: 1.1 }],
  }));
  const evals: EvalRecord[] = [
    { step: 14, epoch: 1, time: T0 + 7600, metrics: { val_top1: 0.4375, val_loss: 1.5 }, n: 256 },
    { step: 29, epoch: 2, time: T0 + 19000, metrics: { val_top1: 0.8125, val_loss: 0.7 }, n: 256 },
  ];
  const events: EventRecord[] = [
    { time: T0 - 10, kind: 'generation', step: 0, message: 'generation 1 with 2 workers', generation: 1, worldSize: 2 },
    { time: T0 + 5100, kind: 'checkpoint', step: 10, message: '/ckpt/step-10', seconds: 0.3 },
    { time: T0 + 7600, kind: 'failure', step: 15, message: 'w1 lost' },
    { time: T0 + 11400, kind: 'generation', step: 15, message: 'generation 2 with 1 workers', generation: 2, worldSize: 1 },
    { time: T0 + 14000, kind: 'temperature', step: 20, message: 'temperature 1 → 0.5 <from ctl>' },
  ];
  // A crash mid-append: the last line of steps.jsonl is cut off.
  const torn = JSON.stringify(stepRecord(nSteps)).slice(0, 57);
  writeFileSync(join(dir, 'steps.jsonl'), jsonl(steps) + torn);
  writeFileSync(join(dir, 'diagnostics.jsonl'), jsonl(diagnostics));
  writeFileSync(join(dir, 'evals.jsonl'), jsonl(evals));
  writeFileSync(join(dir, 'events.jsonl'), jsonl(events));
  writeFileSync(join(dir, 'ledger.jsonl'), jsonl(steps.map((s) => ({ step: s.step, epoch: s.epoch, generation: s.generation, worldSize: s.worldSize, samples: s.samples, loss: s.loss }))));
  writeFileSync(join(dir, 'coordinator.json'), JSON.stringify({ generation: 2, totalSteps: nSteps, configHash: 'abc', done: true }));
  return { dir, steps, diagnostics, evals, events };
}

/** The markdown table as key → value cell. */
function mdTable(md: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of md.split('\n')) {
    const m = /^\| ([a-z_0-9]+) \| (.*?) \| .* \|$/.exec(line);
    if (m && m[1] !== 'metric') out.set(m[1], m[2]);
  }
  return out;
}

/** Asserts a formatted cell holds `value` at exactly `decimals` decimals. */
function assertFormatted(cell: string | undefined, value: number, decimals: number, what: string): void {
  assert.ok(cell !== undefined, `${what} row missing`);
  assert.match(cell, new RegExp(`^-?\\d+\\.\\d{${decimals}}$`), `${what}: ${cell} should have ${decimals} decimals`);
  assert.ok(Math.abs(Number(cell) - value) <= 0.5 * 10 ** -decimals + 1e-12, `${what}: ${cell} vs ${value}`);
}

const fx = writeFixture('full');

test('report.html is one self-contained page with every chart', async (t) => {
  const t0 = performance.now();
  const paths = await writeReport(fx.dir, { title: 'fixture run' });
  const ms = performance.now() - t0;
  assert.equal(paths.html, join(fx.dir, 'report.html'));
  assert.equal(paths.markdown, join(fx.dir, 'report.md'));
  const html = readFileSync(paths.html, 'utf8');
  assert.ok(html.startsWith('<!DOCTYPE html>'));
  assert.doesNotMatch(html, /<script/i, 'no scripts at all');
  assert.doesNotMatch(html, /<link\b|@import|@font-face|\bsrc\s*=|url\(/i, 'no external stylesheets, fonts, images');
  const withoutXmlns = html.replace(/\sxmlns(:\w+)?="[^"]*"/g, '');
  assert.doesNotMatch(withoutXmlns, /https?:\/\//, 'no URLs except SVG namespace attributes');
  assert.ok((html.match(/<svg/g) ?? []).length >= 6, 'one SVG per chart');
  for (const title of [...Object.values(CHART_TITLES), 'Events']) assert.ok(html.includes(`<h2>${title}</h2>`), `chart "${title}"`);
  assert.ok(!html.includes('No data:'), 'the full fixture has data for every chart');
  // The event table, escaped; and the torn line is reported, not fatal.
  assert.ok(html.includes('w1 lost'));
  assert.ok(html.includes('temperature 1 → 0.5 &lt;from ctl&gt;'));
  assert.match(html, /steps\.jsonl:31 \(torn last line/);
  t.diagnostic(`report for ${fx.steps.length} steps rendered in ${ms.toFixed(0)} ms, ${(html.length / 1024).toFixed(0)} KiB`);
});

test("report.md's numbers are the fixture's own, computed here from its records", async () => {
  const { markdown } = await writeReport(fx.dir);
  const md = readFileSync(markdown, 'utf8');
  const cells = mdTable(md);
  const minEntropy = Math.min(...fx.steps.flatMap((s) => s.entropy.flatMap((x) => x.heads)));
  const last = fx.steps.reduce((a, b) => (b.step > a.step ? b : a));
  const lastEval = fx.evals.reduce((a, b) => (b.step >= a.step ? b : a));
  assert.equal(cells.get('steps'), String(new Set(fx.steps.map((s) => s.step)).size));
  assert.equal(cells.get('failures'), String(fx.events.filter((e) => e.kind === 'failure').length));
  assert.equal(cells.get('generations'), String(Math.max(...fx.steps.map((s) => s.generation))));
  assertFormatted(cells.get('final_loss'), last.loss, 4, 'final loss');
  assertFormatted(cells.get('val_top1'), lastEval.metrics.val_top1, 3, 'val_top1');
  assertFormatted(cells.get('min_entropy'), minEntropy, 3, 'min entropy');
  assertFormatted(cells.get('samples_per_second'), last.samplesPerSecond, 1, 'samples/s');
  assert.match(md, /layer 0 head 1 at step 12/, 'says where the minimum entropy was');
  // The page's header cards print the same strings.
  const html = readFileSync(join(fx.dir, 'report.html'), 'utf8');
  for (const [key, value] of cells) {
    const m = new RegExp(`data-key="${key}"><div class="label">[^<]*</div><div class="value">([^<]*)</div>`).exec(html);
    assert.ok(m, `card ${key}`);
    assert.equal(m[1].replace(/&gt;/g, '>'), value, `card ${key} matches report.md`);
  }
});

test('summarizeRun and loadRun: deduplicated steps, torn line skipped, headline numbers as data', async () => {
  const run = await loadRun(fx.dir);
  assert.equal(run.steps.length, 30);
  assert.deepEqual(run.skipped, [{ file: 'steps.jsonl', line: 31, reason: 'torn last line (not valid JSON)' }]);
  const s = await summarizeRun(fx.dir);
  assert.equal(s.steps, 30);
  assert.equal(s.lastStep, 29);
  assert.equal(s.generations, 2);
  assert.equal(s.failures, 1);
  assert.equal(s.finalLoss, fx.steps[29].loss);
  assert.equal(s.lastValTop1, 0.8125);
  assert.deepEqual(s.minEntropy, { nats: 0.2, step: 12, layer: 0, head: 1 });
  assert.equal(s.startTime, T0 - 10);
  // Event rules: generation 2 and the failure at step 15, temperature at 20; checkpoints are not rules.
  const ms = markers(run).map((m) => `${m.kind}@${m.step}`);
  assert.deepEqual(ms, ['generation@0', 'failure@15', 'generation@15', 'temperature@20']);
});

test('a run dir with only steps.jsonl still gets a report; absent charts say why', async () => {
  const dir = join(root, 'steps-only');
  mkdirSync(dir);
  const steps = Array.from({ length: 30 }, (_, s) => stepRecord(s));
  writeFileSync(join(dir, 'steps.jsonl'), jsonl(steps));
  await writeReport(dir);
  const html = readFileSync(join(dir, 'report.html'), 'utf8');
  assert.ok((html.match(/<svg/g) ?? []).length >= 4, 'entropy, loss, lr, throughput');
  assert.match(html, /No data: no diagnostics\.jsonl in this run/);
  assert.match(html, /No data: no evals\.jsonl in this run/);
  const cells = mdTable(readFileSync(join(dir, 'report.md'), 'utf8'));
  assert.equal(cells.get('val_top1'), '—');
  assert.equal(cells.get('failures'), '0');
  // Without events.jsonl the generation and temperature changes are read off the steps.
  assert.deepEqual(markers(await loadRun(dir)).map((m) => `${m.kind}@${m.step}`), ['generation@15', 'temperature@20']);
});

test('a run dir with only the ledger (written before steps.jsonl existed) reports steps and loss from it', async () => {
  const dir = join(root, 'ledger-only');
  mkdirSync(dir);
  const entries = Array.from({ length: 12 }, (_, s) => ({ step: s, epoch: 0, generation: 1, worldSize: 2, samples: 64, loss: 2 - s / 10 }));
  writeFileSync(join(dir, 'ledger.jsonl'), jsonl(entries));
  const s = await summarizeRun(dir);
  assert.equal(s.stepSource, 'ledger.jsonl');
  assert.equal(s.steps, 12);
  assert.equal(s.finalLoss, entries[11].loss);
  await writeReport(dir);
  const html = readFileSync(join(dir, 'report.html'), 'utf8');
  assert.equal((html.match(/<svg/g) ?? []).length, 1, 'the loss chart');
  assert.match(html, /No data: no steps\.jsonl in this run/);
});

test('a missing, non-directory or empty run dir is SGT_REPORT naming the path', async () => {
  const missing = join(root, 'no-such-run');
  await assert.rejects(writeReport(missing), (e: unknown) => e instanceof SigmaError && e.code === 'SGT_REPORT' && e.message.includes(missing) && /does not exist/.test(e.message));
  const file = join(root, 'a-file');
  writeFileSync(file, 'x');
  await assert.rejects(summarizeRun(file), (e: unknown) => e instanceof SigmaError && e.code === 'SGT_REPORT' && e.message.includes(file) && /not a directory/.test(e.message));
  const empty = join(root, 'empty');
  mkdirSync(empty);
  await assert.rejects(loadRun(empty), (e: unknown) => e instanceof SigmaError && e.code === 'SGT_REPORT' && e.message.includes(empty) && /steps\.jsonl/.test(e.message));
});

test('downsample keeps ≤ max points in order, the ends, and every bucket extreme', () => {
  const rows = Array.from({ length: 5000 }, (_, i) => ({ i, v: i === 3333 ? -100 : i === 4444 ? 100 : Math.sin(i / 50) }));
  const out = downsample(rows, (r) => r.v, 2000);
  assert.ok(out.length <= 2000 && out.length > 1900, `${out.length} points`);
  assert.equal(out[0].i, 0);
  assert.equal(out[out.length - 1].i, 4999);
  assert.ok(out.every((r, k) => k === 0 || r.i > out[k - 1].i), 'strictly in order');
  assert.ok(out.some((r) => r.i === 3333) && out.some((r) => r.i === 4444), 'spikes survive');
  assert.equal(downsample(rows.slice(0, 10), (r) => r.v, 2000).length, 10);
});

test('a 5000-step run: every chart series has ≤ 2000 points and the report stays small', async (t) => {
  const big = writeFixture('big', 5000);
  const run = await loadRun(big.dir);
  for (const chart of chartSpecs(run)) {
    const spec = chart.spec as unknown as { layer: { data: { values: Record<string, unknown>[] } }[] };
    for (const layer of spec.layer) {
      const series = new Map<string, number>();
      for (const r of layer.data.values) {
        const key = String(r.layer ?? r.series ?? r.kind ?? '');
        series.set(key, (series.get(key) ?? 0) + 1);
      }
      for (const [key, n] of series) assert.ok(n <= 2000, `${chart.id} series ${key}: ${n} points`);
    }
  }
  const t0 = performance.now();
  await writeReport(big.dir);
  const ms = performance.now() - t0;
  const kib = readFileSync(join(big.dir, 'report.html')).length / 1024;
  t.diagnostic(`report for 5000 steps rendered in ${ms.toFixed(0)} ms, ${kib.toFixed(0)} KiB`);
  // Size, not time: the downsampling is what keeps a long run's report usable, and its size does not depend on load.
  assert.ok(kib < 1024, `report.html is ${kib.toFixed(0)} KiB for 5000 steps (downsampling should keep it under 1 MiB)`);
});
