// The paper experiments as a user runs them, shortened (`--quick`: tiny model, 2 lr × 2 warmup per method, a few
// steps): robustness.js and intervention.js spawn real `sigmatrain run --workers 2` jobs and write a report whose
// structure is checked here, and whose numbers are recomputed from the runs' own steps.jsonl / evals.jsonl.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from './helpers/job.js';

const EXPERIMENTS = fileURLToPath(new URL('../../coordinator/experiments/', import.meta.url));

function run(script: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(EXPERIMENTS, script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => resolve({ code: code ?? 1, out }));
  });
}

interface Step { step: number; loss: number | null; temperature: number; metrics: Record<string, number>; entropy: { heads: number[] }[] }
interface Eval { step: number; metrics: { val_top1: number } }

const jsonl = <T>(path: string): T[] =>
  readFileSync(path, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as T);

/** The markdown table under `## <title>` as header + rows of cells. */
function mdTable(md: string, title: string): { header: string[]; rows: string[][] } {
  const at = md.indexOf(`## ${title}\n`);
  assert.ok(at >= 0, `report.md has a "${title}" section`);
  const lines = md.slice(at).split('\n').slice(2);
  const table: string[] = [];
  for (const l of lines) {
    if (!l.startsWith('|')) break;
    table.push(l);
  }
  const cells = (l: string) => l.slice(1, -1).split(' | ').map((c) => c.trim());
  assert.match(table[1], /^\| ---( \| ---)* \|$/);
  return { header: cells(table[0]), rows: table.slice(2).map(cells) };
}

/** Checks report.html is one self-contained page with the given chart sections rendered as inline SVG. */
function checkHtml(html: string, chartIds: string[], tableIds: string[]): void {
  assert.match(html, /^<!DOCTYPE html>/);
  assert.doesNotMatch(html, /<script/i, 'no scripts');
  assert.doesNotMatch(html, /<link\b/i, 'no linked stylesheets');
  assert.doesNotMatch(html, /\bsrc\s*=/i, 'no external resources (src=)');
  assert.doesNotMatch(html, /url\(\s*['"]?https?:/i, 'no remote urls in CSS');
  for (const id of chartIds) {
    const at = html.indexOf(`<section class="chart" id="chart-${id}">`);
    assert.ok(at >= 0, `chart ${id}`);
    const end = html.indexOf('</section>', at);
    assert.match(html.slice(at, end), /<svg[\s\S]*<\/svg>/, `chart ${id} is an inline SVG`);
  }
  for (const id of tableIds) assert.ok(html.includes(`<table id="table-${id}">`), `table ${id}`);
}

const minEntropy = (steps: Step[]): number => Math.min(...steps.flatMap((s) => s.entropy.flatMap((x) => x.heads)));
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

test('robustness --quick: 2 × 2 grid per method through sigmatrain run, report numbers from the runs\' logs', { timeout: 240_000 }, async () => {
  const out = tempDir('exp-robustness');
  const t0 = Date.now();
  const r = await run('robustness.js', ['--quick', '--out', out]);
  assert.equal(r.code, 0, r.out.slice(-3000));
  console.log(`# robustness --quick: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  checkHtml(readFileSync(join(out, 'report.html'), 'utf8'), ['grid', 'loss', 'entropy', 'sharpness'], ['methods', 'runs']);

  const md = readFileSync(join(out, 'report.md'), 'utf8');
  const methods = mdTable(md, 'Per method');
  assert.deepEqual(methods.header.slice(0, 6), ['method', 'runs', 'diverged', 'non-finite', 'converged < 2× chance', 'val_top1 of converged (mean ± std)']);
  assert.deepEqual(methods.rows.map((x) => x[0]), ['baseline pre-LN · AdamW', 'σReparam no-LN · AdamW']);
  const runs = mdTable(md, 'Per run');
  assert.deepEqual(runs.header, ['run', 'method', 'lr', 'warmup', 'steps', 'status', 'initial loss', 'final loss', 'val_top1', 'min entropy (nats)', 'at step', 'max λ₁', 'threshold there', 'max λ₁/threshold', 'wall s']);
  const names = ['baseline-adamw', 'sigma-adamw'].flatMap((m) => ['1e-3', '3e-2'].flatMap((lr) => [0, 2].map((w) => `${m}-lr${lr}-wu${w}`)));
  assert.deepEqual(runs.rows.map((x) => x[0]), names);

  const col = (name: string) => runs.header.indexOf(name);
  const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { runs: { name: string; diverged: boolean; valTop1: number; minEntropy: number }[] };
  for (const row of runs.rows) {
    const dir = join(out, 'runs', row[0]);
    assert.ok(existsSync(join(dir, 'report.html')), `${row[0]}: the run's own report`);
    const steps = jsonl<Step>(join(dir, 'steps.jsonl'));
    const evals = jsonl<Eval>(join(dir, 'evals.jsonl'));
    assert.equal(row[col('steps')], `${steps.length}/8`);
    assert.equal(row[col('val_top1')], evals[evals.length - 1].metrics.val_top1.toFixed(3), `${row[0]} val_top1 from evals.jsonl`);
    assert.equal(row[col('min entropy (nats)')], minEntropy(steps).toFixed(3), `${row[0]} min entropy from steps.jsonl`);
    const initial = steps[0].loss as number;
    assert.equal(steps[0].step, 0);
    assert.equal(row[col('initial loss')], initial.toFixed(3), `${row[0]} initial loss (step 0) from steps.jsonl`);
    // Final loss: the post-warmup steps, at least 10 of them where there are (here: all after warmup).
    const warmup = Number(row[col('warmup')]);
    const final = mean(steps.filter((s) => s.step >= warmup).map((s) => s.loss as number));
    assert.equal(row[col('final loss')], final.toFixed(3), `${row[0]} final loss from steps.jsonl`);
    const diverged = final > initial;
    assert.equal(row[col('status')].startsWith('diverged'), diverged, `${row[0]} status`);
    const json = results.runs.find((x) => x.name === row[0])!;
    assert.equal(json.diverged, diverged);
    assert.equal(json.valTop1, evals[evals.length - 1].metrics.val_top1);
  }
  // Per-method counts agree with the per-run rows.
  for (const m of methods.rows) {
    const mine = runs.rows.filter((x) => x[1] === m[0]);
    assert.equal(m[1], String(mine.length));
    assert.equal(m[2], String(mine.filter((x) => x[col('status')].startsWith('diverged')).length));
    const ents = mine.map((x) => Number(x[col('min entropy (nats)')]));
    assert.equal(m[6], Math.min(...ents).toFixed(3));
  }
});

test('intervention --quick: τ → 0.1 early and late through sigmatrain run, switch and entropy read back from steps.jsonl', { timeout: 180_000 }, async () => {
  const out = tempDir('exp-intervention');
  const t0 = Date.now();
  const r = await run('intervention.js', ['--quick', '--out', out]);
  assert.equal(r.code, 0, r.out.slice(-3000));
  console.log(`# intervention --quick: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  checkHtml(readFileSync(join(out, 'report.html'), 'utf8'), ['entropy-mean', 'entropy-min', 'loss', 'sharpness', 'validation'], ['intervention', 'runs']);
  const md = readFileSync(join(out, 'report.md'), 'utf8');
  const t = mdTable(md, 'Around the switch');
  assert.equal(t.header[0], 'run');
  assert.deepEqual(t.rows.map((x) => x[0]), ['control (split at 2)', 'early-step2', 'control (split at 8)', 'late-step8']);
  const col = (name: string) => t.header.indexOf(name);
  for (const row of t.rows) {
    const name = row[0].split(' ')[0];
    const steps = jsonl<Step>(join(out, 'runs', name, 'steps.jsonl'));
    const split = Number(row[col('split')]);
    const sw = steps.find((s) => s.temperature !== 1);
    assert.equal(row[col('τ → 0.1 at step (steps.jsonl)')], sw ? String(sw.step) : 'none');
    if (name !== 'control') assert.equal(sw?.step, split, `${name}: τ switched at the planned step`);
    const after = steps.filter((s) => s.step >= split);
    const low = minEntropy(after);
    const at = after.find((s) => s.entropy.flatMap((x) => x.heads).includes(low))!.step;
    assert.equal(row[col('lowest entropy after (step)')], `${low.toFixed(3)} (${at})`);
  }
  // The intervention lowers the attention entropy below the control's over the same steps (τ = 0.1 multiplies logits by 10).
  const low = (i: number) => Number(t.rows[i][col('lowest entropy after (step)')].split(' ')[0]);
  assert.ok(low(1) < low(0), `early: ${low(1)} < control ${low(0)}`);
  assert.ok(low(3) < low(2), `late: ${low(3)} < control ${low(2)}`);
});

interface MtEval { step: number; metrics: Record<string, number> }

test('deep-mt --quick: post-LN, post-LN + σReparam and DeepNorm through sigmatrain run, report numbers from the runs\' logs', { timeout: 360_000 }, async () => {
  const out = tempDir('exp-deep-mt');
  const t0 = Date.now();
  const r = await run('deepmt.js', ['--quick', '--out', out]);
  assert.equal(r.code, 0, r.out.slice(-3000));
  console.log(`# deep-mt --quick: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  checkHtml(readFileSync(join(out, 'report.html'), 'utf8'), ['loss', 'entropy'], ['depths', 'runs']);
  const md = readFileSync(join(out, 'report.md'), 'utf8');
  const grid = mdTable(md, 'Depth × method');
  assert.deepEqual(grid.header, ['layers (enc-dec)', 'post-LN', 'post-LN + σReparam', 'DeepNorm']);
  assert.deepEqual(grid.rows.map((x) => x[0]), ['2L-2L']);
  const runs = mdTable(md, 'Per run');
  assert.deepEqual(runs.rows.map((x) => x[0]), ['postln-2L', 'postln-sigma-2L', 'deepnorm-2L']);
  const col = (name: string) => runs.header.indexOf(name);
  const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as {
    unigram: { entropy: number; tokens: number; pairs: number };
    runs: { name: string; status: string; testBleu: number; depth: number; finalNll: number }[];
  };
  // The unigram baseline: an entropy of a distribution over the 400-token vocabulary, from every training pair.
  assert.ok(results.unigram.entropy > 0 && results.unigram.entropy < Math.log(400), `unigram ${results.unigram.entropy}`);
  assert.ok(results.unigram.tokens > results.unigram.pairs);
  for (const [i, row] of runs.rows.entries()) {
    const dir = join(out, 'runs', row[0]);
    const steps = jsonl<Step>(join(dir, 'steps.jsonl'));
    const evals = jsonl<MtEval>(join(dir, 'evals.jsonl'));
    assert.equal(row[col('steps')], `${steps.length}/6`);
    assert.equal(steps[0].step, 0);
    const initial = steps[0].loss as number;
    assert.equal(row[col('initial loss')], initial.toFixed(3), `${row[0]} initial loss from steps.jsonl`);
    const final = mean(steps.filter((s) => s.step >= 2).map((s) => s.loss as number)); // after the 2 warmup steps
    assert.equal(row[col('final loss')], final.toFixed(3), `${row[0]} final loss from steps.jsonl`);
    const nll = mean(steps.filter((s) => s.step >= 2).map((s) => s.metrics.nll));
    assert.equal(row[col('final NLL')], nll.toFixed(3), `${row[0]} final NLL from steps.jsonl`);
    const status = final > initial ? 'diverged' : nll < 0.75 * results.unigram.entropy ? 'trained' : 'stalled';
    assert.ok(row[col('status')].startsWith(status), `${row[0]}: ${row[col('status')]} vs ${status}`);
    const bleu = evals.filter((e) => Number.isFinite(e.metrics.bleu)).at(-1)!.metrics.bleu;
    assert.equal(row[col('test BLEU')], bleu.toFixed(2), `${row[0]} test BLEU from evals.jsonl`);
    assert.equal(row[col('min entropy (nats)')], minEntropy(steps).toFixed(3), `${row[0]} min entropy from steps.jsonl`);
    // Entropy per site: encoder self, decoder causal and cross attention, 2 layers each.
    assert.deepEqual([...new Set(steps[0].entropy.map((e) => (e as { attn?: string }).attn))], ['self', 'causal', 'cross']);
    assert.equal(steps[0].entropy.length, 6);
    const json = results.runs.find((x) => x.name === row[0])!;
    assert.equal(json.status, status);
    assert.equal(json.testBleu, bleu);
    assert.equal(json.depth, 2);
    // The grid's cell shows the same final loss and BLEU.
    assert.ok(grid.rows[0][1 + i].includes(`NLL ${(nll / results.unigram.entropy).toFixed(2)}× uni`) || json.status === 'diverged', grid.rows[0][1 + i]);
  }
  // The three arms are different models: post-LN and DeepNorm have no σReparam γ, post-LN + σReparam has them.
  const params = (name: string) => Number(/"params":(\d+)/.exec(readFileSync(join(out, 'runs', `${name}.log`), 'utf8'))![1]);
  assert.ok(params('postln-sigma-2L') > params('postln-2L'), 'σReparam adds a γ per linear');
});
