// `npm run experiment:robustness`: the paper's §4.1 robustness grid at small scale — learning rate × warmup (× optimizer)
// for a pre-LN plain-linear ViT against σReparam without LayerNorm — through `sigmatrain run --workers 2`; writes
// <out>/report.html, report.md and results.json from the runs' own logs.
import { pathToFileURL } from 'node:url';
import type { TopLevelSpec } from 'vega-lite';
import { downsample } from '../report/charts.js';
import { DIVERGED_RULE, LEARNED_FACTOR, stepMinEntropy, summarizeMethods, type RunOutcome } from './analyze.js';
import { configPath, parseArgs, runAll, writeResults, type DoneRun, type PlannedRun } from './harness.js';
import { f, writePage, type ChartSpec, type Page, type Table } from './page.js';

export interface Method {
  id: string;
  label: string;
  optimizer: 'adamw' | 'lars' | 'sgd';
  lrs: number[];
  warmups: number[];
  flags: [string, string | number][];
}

export interface Grid {
  /** configs/experiments/<config>: the model, data and run length every run shares. */
  config: string;
  numClasses: number;
  methods: Method[];
  timeoutMs: number;
}

const BASELINE: [string, string | number][] = [['model.reparam', 'none'], ['model.norm', 'pre']];
const SIGMA: [string, string | number][] = [['model.reparam', 'sigma'], ['model.norm', 'none']];

/**
 * The full grid (≈ 30 min on 2 shared cores): AdamW lr ∈ {3e-4 (the demo's tuned value), 1e-3, 3e-3, 1e-2} × warmup
 * ∈ {0, 50} steps for both models; σReparam also with LARS (no LayerNorm, the paper's ViT recipe) at lr ∈ {1, 3, 10} (trust coefficient 0.001, so ≈ 0.1–1 % of ‖w‖ per step) × warmup ∈ {0, 50}.
 */
export const FULL: Grid = {
  config: 'robustness.yaml',
  numClasses: 10,
  timeoutMs: 15 * 60_000,
  methods: [
    { id: 'baseline-adamw', label: 'baseline pre-LN · AdamW', optimizer: 'adamw', lrs: [3e-4, 1e-3, 3e-3, 1e-2], warmups: [0, 50], flags: [...BASELINE, ['optim.name', 'adamw']] },
    { id: 'sigma-adamw', label: 'σReparam no-LN · AdamW', optimizer: 'adamw', lrs: [3e-4, 1e-3, 3e-3, 1e-2], warmups: [0, 50], flags: [...SIGMA, ['optim.name', 'adamw'], ['optim.gammaLrScale', 10]] },
    { id: 'sigma-lars', label: 'σReparam no-LN · LARS', optimizer: 'lars', lrs: [1, 3, 10], warmups: [0, 50], flags: [...SIGMA, ['optim.name', 'lars'], ['optim.gammaLrScale', 0.01]] },
  ],
};

/** The shortened grid of the test: tiny model, 2 lr × 2 warmup for both models, a few steps. */
export const QUICK: Grid = {
  config: 'robustness-quick.yaml',
  numClasses: 3,
  timeoutMs: 3 * 60_000,
  methods: [
    { id: 'baseline-adamw', label: 'baseline pre-LN · AdamW', optimizer: 'adamw', lrs: [1e-3, 3e-2], warmups: [0, 2], flags: [...BASELINE, ['optim.name', 'adamw']] },
    { id: 'sigma-adamw', label: 'σReparam no-LN · AdamW', optimizer: 'adamw', lrs: [1e-3, 3e-2], warmups: [0, 2], flags: [...SIGMA, ['optim.name', 'adamw'], ['optim.gammaLrScale', 10]] },
  ],
};

const lrName = (lr: number): string => lr.toExponential().replace('+', '').replace('.', 'p');

export function plan(grid: Grid): PlannedRun[] {
  return grid.methods.flatMap((m) =>
    m.lrs.flatMap((lr) =>
      m.warmups.map((w) => ({
        name: `${m.id}-lr${lrName(lr)}-wu${w}`,
        method: m.label,
        optimizer: m.optimizer,
        lr,
        warmupSteps: w,
        numClasses: grid.numClasses,
        flags: [...m.flags, ['optim.lr', lr], ['optim.warmupSteps', w]] as [string, string | number][],
      })),
    ),
  );
}

const status = (o: RunOutcome): string => (o.nonFinite ? 'diverged (NaN/∞)' : o.diverged ? 'diverged (loss > initial)' : o.learned ? 'converged' : 'converged, < 2× chance');

export function tables(outcomes: RunOutcome[], numClasses: number): Table[] {
  const summary: Table = {
    id: 'methods',
    title: 'Per method',
    columns: ['method', 'runs', 'diverged', 'non-finite', 'converged < 2× chance', 'val_top1 of converged (mean ± std)', 'lowest min entropy (nats)', 'mean min entropy (nats)', 'max λ₁/threshold', 'runs with λ₁ > threshold'],
    rows: summarizeMethods(outcomes).map((m) => [
      m.method, f.int(m.runs), f.int(m.diverged), f.int(m.nonFinite), f.int(m.notLearned), f.pm(m.accMean, m.accStd, m.converged),
      f.nats(m.minEntropy), f.nats(m.meanMinEntropy), f.sci(m.maxSharpnessRatio), f.int(m.aboveThreshold),
    ]),
    note:
      `Diverged: ${DIVERGED_RULE}. "< 2× chance": did not diverge but ended with val_top1 < ${LEARNED_FACTOR}/${numClasses}; the val_top1 mean includes them. ` +
      'Entropy: the lowest per-head attention entropy over all steps of a run (uniform attention over T tokens has log T). ' +
      'λ₁: top Hessian eigenvalue at the diagnostics steps; threshold: the optimizer\'s stability threshold at that step\'s lr (AdamW (2+2β₁)/((1−β₁)η) = 38/η, which strictly bounds the preconditioned sharpness, so λ₁ against it is indicative). ' +
      'For LARS the runtime reads LARS as momentum SGD, (2+2β)/η with the global η, but LARS scales each layer\'s step by its trust ratio (coefficient 0.001 · ‖w‖/‖g‖), so its λ₁/threshold is not comparable and is not evidence of instability.',
  };
  const perRun: Table = {
    id: 'runs',
    title: 'Per run',
    columns: ['run', 'method', 'lr', 'warmup', 'steps', 'status', 'initial loss', 'final loss', 'val_top1', 'min entropy (nats)', 'at step', 'max λ₁', 'threshold there', 'max λ₁/threshold', 'wall s'],
    rows: outcomes.map((o) => [
      o.name, o.method, f.lr(o.lr), String(o.warmupSteps), o.plannedSteps !== undefined ? `${o.steps}/${o.plannedSteps}` : String(o.steps), status(o),
      f.loss(o.initialLoss), f.loss(o.finalLoss), f.acc(o.valTop1), f.nats(o.minEntropy), f.int(o.minEntropyStep),
      f.sci(o.maxSharpness), f.sci(o.thresholdAtMax), f.sci(o.maxSharpnessRatio), f.int(o.seconds),
    ]),
  };
  return [summary, perRun];
}

const WIDTH = 250;

/** Charts of the grid: final accuracy per cell, loss and lowest entropy per step, sharpness over threshold. */
export function charts(done: DoneRun[], methods: string[]): ChartSpec[] {
  const lrDomain = [...new Set(done.map((d) => f.lr(d.plan.lr)))];
  const lrOrder = (l: string): number => Number(l);
  lrDomain.sort((a, b) => lrOrder(a) - lrOrder(b));
  // One panel per method side by side (hconcat, not facet: each method keeps its own lr axis and colour legend).
  const panels = (values: { method: string }[], panel: (values: object[], lrs: string[]) => object, shareY = false): TopLevelSpec =>
    ({
      config: { font: 'system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif', view: { stroke: '#ddd' } },
      hconcat: methods.map((m) => {
        const vs = values.filter((v) => v.method === m);
        const lrs = lrDomain.filter((l) => vs.some((v) => (v as { lr?: string }).lr === l));
        return { title: { text: m, fontSize: 12 }, ...panel(vs, lrs) };
      }),
      resolve: { scale: { color: 'independent', x: 'independent', y: shareY ? 'shared' : 'independent' } },
    }) as unknown as TopLevelSpec;
  const cells = done.map((d) => ({
    method: d.outcome.method,
    lr: f.lr(d.plan.lr),
    warmup: String(d.plan.warmupSteps),
    acc: d.outcome.valTop1 ?? 0,
    label: d.outcome.nonFinite ? 'NaN' : `${d.outcome.valTop1 === undefined ? '—' : d.outcome.valTop1.toFixed(2)}${d.outcome.diverged ? ' D' : ''}`,
  }));
  const grid = panels(cells, (values, lrs) => ({
    data: { values },
    width: { step: 52 },
    height: { step: 36 },
    encoding: { x: { field: 'lr', type: 'ordinal', sort: lrs, title: 'peak lr' }, y: { field: 'warmup', type: 'ordinal', title: 'warmup steps' } },
    layer: [
      { mark: 'rect', encoding: { color: { field: 'acc', type: 'quantitative', title: 'val_top1', scale: { domain: [0, 1], scheme: 'viridis' } } } },
      { mark: { type: 'text', fontSize: 11 }, encoding: { text: { field: 'label' }, color: { condition: { test: 'datum.acc > 0.5', value: 'black' }, value: 'white' } } },
    ],
  }));
  const series = (value: (s: DoneRun['run']['steps'][number]) => number | undefined, field: string) =>
    done.flatMap((d) => {
      const rows = d.run.steps
        .map((s) => ({ step: s.step, v: value(s) }))
        .filter((r): r is { step: number; v: number } => typeof r.v === 'number' && Number.isFinite(r.v));
      return downsample(rows, (r) => r.v, 160).map((r) => ({ method: d.outcome.method, run: d.plan.name, lr: f.lr(d.plan.lr), warmup: `warmup ${d.plan.warmupSteps}`, step: r.step, [field]: r.v }));
    });
  const lineChart = (values: { method: string }[], field: string, yTitle: string, yScale: object = { zero: false }, mark: object = { type: 'line', strokeWidth: 1.2 }, shareY = false): TopLevelSpec =>
    panels(values, (vs, lrs) => ({
      data: { values: vs },
      width: WIDTH,
      height: 170,
      mark,
      encoding: {
        x: { field: 'step', type: 'quantitative' },
        y: { field, type: 'quantitative', title: yTitle, scale: yScale },
        color: { field: 'lr', type: 'ordinal', sort: lrs, title: 'peak lr', scale: { scheme: 'plasma', domain: lrs } },
        strokeDash: { field: 'warmup', type: 'nominal', title: null },
        detail: { field: 'run', type: 'nominal' },
      },
    }), shareY);
  const sharp = done.flatMap((d) =>
    d.run.diagnostics
      .filter((x) => Number.isFinite(x.sharpness?.[0]) && Number.isFinite(x.stabilityThreshold) && (x.stabilityThreshold ?? 0) > 0)
      .map((x) => ({ method: d.outcome.method, run: d.plan.name, lr: f.lr(d.plan.lr), warmup: `warmup ${d.plan.warmupSteps}`, step: x.step, ratio: x.sharpness![0] / x.stabilityThreshold! })),
  );
  const out: ChartSpec[] = [
    { id: 'grid', title: 'Final validation accuracy over the grid', caption: 'val_top1 of the last eval per (lr, warmup) cell; "D" marks a diverged run, "NaN" one stopped by a non-finite loss.', spec: grid },
    { id: 'loss', title: 'Training loss', caption: 'Per-step training loss (global batch), one line per run; colour: peak lr; dash: warmup.', spec: lineChart(series((s) => s.loss, 'loss'), 'loss', 'train loss') },
    {
      id: 'entropy',
      title: 'Lowest attention entropy',
      caption: 'Per step, the lowest per-head attention entropy over all layers and heads (nats); entropy collapse shows as a fall towards 0.',
      spec: lineChart(series((s) => stepMinEntropy(s.entropy.map((x) => x.heads)), 'entropy'), 'entropy', 'min entropy (nats)', { zero: true }, undefined, true),
    },
  ];
  if (sharp.length) {
    out.push({
      id: 'sharpness',
      title: 'Sharpness over the stability threshold',
      caption: 'λ₁ (top Hessian eigenvalue, Lanczos on the diagnostic batch) divided by the optimizer\'s stability threshold at each diagnostics step (log scale); above 1 is past the threshold.',
      spec: lineChart(sharp, 'ratio', 'λ₁ / threshold', { type: 'log' }, { type: 'line', point: true, strokeWidth: 1.2 }, true),
    });
  }
  return out;
}

export async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv, 'robustness');
  const grid = args.quick ? QUICK : FULL;
  const plans = plan(grid);
  const dataRoot = args.dataRoot ?? (args.quick ? `${args.out}/data/shapes` : undefined);
  const common: [string, string | number][] = dataRoot ? [['data.root', dataRoot]] : [];
  console.log(`robustness: ${plans.length} runs (${grid.methods.map((m) => `${m.id}: ${m.lrs.length * m.warmups.length}`).join(', ')}) into ${args.out}`);
  const done = await runAll(args, configPath(grid.config), plans, common, grid.timeoutMs);
  const outcomes = done.map((d) => d.outcome);
  const methods = grid.methods.map((m) => m.label);
  const page: Page = {
    title: `σReparam robustness grid${args.quick ? ' (quick)' : ''}`,
    intro: [
      `Zhai et al. (ICML 2023) §4.1 at small scale: ${plans.length} runs of \`sigmatrain run --workers ${args.workers}\` with \`configs/experiments/${grid.config}\`, one per (method, lr, warmup). ` +
        'Baseline: plain linear layers (`model.reparam none`) with pre-LN (`model.norm pre`); σReparam: every linear reparametrised (`model.reparam sigma`) and no LayerNorm (`model.norm none`); both pool by global average (`model.vit.pool gap`). ' +
        'All runs share one generated dataset root, seed, model size and step count.',
      `Every number below is computed from the runs' own steps.jsonl, evals.jsonl and diagnostics.jsonl (and a job log's SGT_NONFINITE_LOSS); per-run files are under \`runs/\`.`,
    ],
    tables: tables(outcomes, grid.numClasses),
    charts: charts(done, methods),
    notes: [],
    links: done.map((d) => ({ label: d.plan.name, href: `runs/${d.plan.name}/report.html` })),
  };
  const paths = await writePage(args.out, page);
  await writeResults(args.out, { experiment: 'robustness', quick: args.quick, config: grid.config, workers: args.workers, divergedRule: DIVERGED_RULE, methods: summarizeMethods(outcomes), runs: outcomes });
  console.log(`robustness: wrote ${paths.html} and ${paths.markdown}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error((e as Error).message);
    process.exit(1);
  });
}
