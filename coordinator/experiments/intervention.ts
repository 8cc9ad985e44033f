// `npm run experiment:intervention`: the paper's Appendix B causal test at small scale — the same run three times
// (τ = 1 throughout; τ 1 → 0.1 at an early step; at a late step) through `sigmatrain run --workers 2`, with sharpness
// every few steps; writes <out>/report.html, report.md and results.json from the runs' own logs.
import { pathToFileURL } from 'node:url';
import type { TopLevelSpec } from 'vega-lite';
import { downsample } from '../report/charts.js';
import type { RunData } from '../report/load.js';
import { DIVERGED_RULE, stepMinEntropy, type RunOutcome } from './analyze.js';
import { configPath, parseArgs, runAll, writeResults, type DoneRun, type PlannedRun } from './harness.js';
import { f, writePage, type ChartSpec, type Page, type Table } from './page.js';

export interface Setup {
  /** configs/experiments/<config>: model, optimizer, run length and diagnostics interval. */
  config: string;
  numClasses: number;
  lr: number;
  early: number;
  late: number;
  /** τ after the switch. */
  tau: number;
  timeoutMs: number;
}

/** demo/4 pre-LN baseline, AdamW lr 1e-3, 315 steps; switches at step 10 (in the first 3 %) and 220 (70 %). */
export const FULL: Setup = { config: 'intervention.yaml', numClasses: 10, lr: 1e-3, early: 10, late: 220, tau: 0.1, timeoutMs: 20 * 60_000 };
export const QUICK: Setup = { config: 'intervention-quick.yaml', numClasses: 3, lr: 3e-3, early: 2, late: 8, tau: 0.1, timeoutMs: 3 * 60_000 };

export function plan(s: Setup): PlannedRun[] {
  const base = { method: 'baseline pre-LN · AdamW', optimizer: 'adamw', lr: s.lr, warmupSteps: 0, numClasses: s.numClasses };
  const sched = (step: number): string => JSON.stringify([{ fromStep: step, value: s.tau }]);
  return [
    { ...base, name: 'control', tags: { switch: 'none' }, flags: [] },
    { ...base, name: `early-step${s.early}`, tags: { switch: s.early }, flags: [['model.temperatureSchedule', sched(s.early)]] },
    { ...base, name: `late-step${s.late}`, tags: { switch: s.late }, flags: [['model.temperatureSchedule', sched(s.late)]] },
  ];
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const mean = (xs: number[]): number | undefined => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : undefined);
const meanEntropy = (e: number[][]): number | undefined => mean(e.flat().filter(finite));

/** What happened around one split step of one run; every value from its steps.jsonl, diagnostics.jsonl, evals.jsonl. */
export interface Around {
  run: string;
  /** The first step whose record has temperature ≠ 1 (from steps.jsonl), or undefined for the control. */
  switchStep?: number;
  /** Step the before/after columns split at (the switch, or for the control the intervention it is compared with). */
  split: number;
  /** Means over the 5 steps before the split. */
  entropyBefore?: number;
  lossBefore?: number;
  /** Lowest per-head entropy at or after the split, and where. */
  minEntropyAfter?: number;
  minEntropyAfterStep?: number;
  /** Mean entropy over heads and layers, mean of the last 5 steps. */
  entropyEnd?: number;
  /** Largest mean of 10 consecutive losses at or after the split. */
  peakLossAfter?: number;
  finalLoss?: number;
  valTop1?: number;
  maxSharpnessBefore?: number;
  maxSharpnessAfter?: number;
  threshold?: number;
  /** First diagnostics step at or after the split whose λ₁ exceeds its threshold. */
  firstAbove?: number;
  /** final loss ≤ loss before the split. */
  recovered?: boolean;
}

export function around(name: string, run: RunData, split: number): Around {
  const steps = run.steps;
  const sw = steps.find((s) => finite(s.temperature) && s.temperature !== 1);
  const before = steps.filter((s) => s.step < split).slice(-5);
  const after = steps.filter((s) => s.step >= split);
  let minAfter: { v: number; step: number } | undefined;
  for (const s of after) {
    const v = stepMinEntropy(s.entropy.map((x) => x.heads));
    if (v !== undefined && (minAfter === undefined || v < minAfter.v)) minAfter = { v, step: s.step };
  }
  let peak: number | undefined;
  const al = after.map((s) => s.loss).filter(finite);
  for (let i = 0; i + 10 <= al.length; i++) {
    const m = mean(al.slice(i, i + 10))!;
    if (peak === undefined || m > peak) peak = m;
  }
  const diag = run.diagnostics.filter((d) => finite(d.sharpness?.[0]));
  const maxOf = (xs: number[]): number | undefined => (xs.length ? Math.max(...xs) : undefined);
  const dAfter = diag.filter((d) => d.step >= split);
  const above = dAfter.find((d) => finite(d.stabilityThreshold) && d.sharpness![0] > d.stabilityThreshold);
  const lossBefore = mean(before.map((s) => s.loss).filter(finite));
  const finalLoss = mean(steps.slice(-10).map((s) => s.loss).filter(finite));
  const last = run.evals[run.evals.length - 1];
  return {
    run: name,
    switchStep: sw?.step,
    split,
    entropyBefore: mean(before.map((s) => meanEntropy(s.entropy.map((x) => x.heads))).filter(finite)),
    lossBefore,
    minEntropyAfter: minAfter?.v,
    minEntropyAfterStep: minAfter?.step,
    entropyEnd: mean(steps.slice(-5).map((s) => meanEntropy(s.entropy.map((x) => x.heads))).filter(finite)),
    peakLossAfter: peak,
    finalLoss,
    valTop1: finite(last?.metrics.val_top1) ? last.metrics.val_top1 : undefined,
    maxSharpnessBefore: maxOf(diag.filter((d) => d.step < split).map((d) => d.sharpness![0])),
    maxSharpnessAfter: maxOf(dAfter.map((d) => d.sharpness![0])),
    threshold: dAfter.find((d) => finite(d.stabilityThreshold))?.stabilityThreshold ?? diag.find((d) => finite(d.stabilityThreshold))?.stabilityThreshold,
    firstAbove: above?.step,
    recovered: finalLoss !== undefined && lossBefore !== undefined ? finalLoss <= lossBefore : undefined,
  };
}

/** One row per intervention run at its switch, and the control at each intervention's step. */
export function rowsOf(done: DoneRun[], s: Setup): Around[] {
  const [control, early, late] = done;
  return [
    around(`${control.plan.name} (split at ${s.early})`, control.run, s.early),
    around(early.plan.name, early.run, s.early),
    around(`${control.plan.name} (split at ${s.late})`, control.run, s.late),
    around(late.plan.name, late.run, s.late),
  ];
}

export function table(rows: Around[], outcomes: RunOutcome[]): Table[] {
  const yes = (b: boolean | undefined): string => (b === undefined ? '—' : b ? 'yes' : 'no');
  return [
    {
      id: 'intervention',
      title: 'Around the switch',
      columns: ['run', 'τ → 0.1 at step (steps.jsonl)', 'split', 'mean entropy before', 'lowest entropy after (step)', 'mean entropy at end', 'loss before', 'peak loss after (10-step mean)', 'final loss (last 10 steps)', 'recovered (final ≤ before)', 'val_top1', 'max λ₁ before', 'max λ₁ after', 'threshold 38/η', 'first step λ₁ > threshold'],
      rows: rows.map((r) => [
        r.run, r.switchStep === undefined ? 'none' : String(r.switchStep), String(r.split), f.nats(r.entropyBefore),
        r.minEntropyAfter === undefined ? '—' : `${f.nats(r.minEntropyAfter)} (${r.minEntropyAfterStep})`, f.nats(r.entropyEnd),
        f.loss(r.lossBefore), f.loss(r.peakLossAfter), f.loss(r.finalLoss), yes(r.recovered), f.acc(r.valTop1),
        f.sci(r.maxSharpnessBefore), f.sci(r.maxSharpnessAfter), f.sci(r.threshold), r.firstAbove === undefined ? 'never' : String(r.firstAbove),
      ]),
      note:
        'Entropies in nats (uniform attention over T tokens: log T). "Before": mean of the 5 steps before the split; "after": at or after it; "at end", "final loss": mean of the last 5 / 10 steps. ' +
        'λ₁: top Hessian eigenvalue (Lanczos on the fixed diagnostic batch) at the diagnostics steps; the AdamW threshold (2+2β₁)/((1−β₁)η) strictly bounds the preconditioned sharpness, so λ₁(H) against it is indicative. ' +
        'The control rows split the τ = 1 run at the same steps for comparison.',
    },
    {
      id: 'runs',
      title: 'Per run',
      columns: ['run', 'steps', 'diverged', 'initial loss', 'final loss', 'val_top1', 'min entropy (nats)', 'at step', 'max λ₁', 'max λ₁/threshold', 'wall s'],
      rows: outcomes.map((o) => [
        o.name, o.plannedSteps !== undefined ? `${o.steps}/${o.plannedSteps}` : String(o.steps), o.diverged ? `yes: ${o.divergedReason}` : 'no',
        f.loss(o.initialLoss), f.loss(o.finalLoss), f.acc(o.valTop1), f.nats(o.minEntropy), f.int(o.minEntropyStep), f.sci(o.maxSharpness), f.sci(o.maxSharpnessRatio), f.int(o.seconds),
      ]),
      note: `Diverged: ${DIVERGED_RULE}.`,
    },
  ];
}

const RUN_COLORS = ['#4c78a8', '#e45756', '#f58518'];

export function charts(done: DoneRun[], s: Setup): ChartSpec[] {
  const names = done.map((d) => d.plan.name);
  const lastStep = Math.max(1, ...done.flatMap((d) => d.run.steps.map((x) => x.step)));
  const x = { field: 'step', type: 'quantitative', scale: { domain: [0, lastStep], nice: false } };
  const color = { field: 'run', type: 'nominal', title: null, scale: { domain: names, range: RUN_COLORS } };
  const rules = {
    data: { values: [{ step: s.early, label: `τ→${s.tau} (early)` }, { step: s.late, label: `τ→${s.tau} (late)` }] },
    layer: [
      { mark: { type: 'rule', strokeDash: [3, 2], color: '#777' }, encoding: { x } },
      { mark: { type: 'text', align: 'left', dx: 3, dy: -4, fontSize: 10, color: '#555' }, encoding: { x, y: { value: 0 }, text: { field: 'label' } } },
    ],
  };
  const chart = (values: object[], field: string, yTitle: string, yScale: object = { zero: false }, mark: object = { type: 'line', strokeWidth: 1.3 }, extra: object[] = []): TopLevelSpec =>
    ({
      width: 760,
      height: 200,
      config: { font: 'system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif', view: { stroke: '#ddd' }, legend: { orient: 'top' } },
      layer: [
        { data: { values }, mark, encoding: { x, y: { field, type: 'quantitative', title: yTitle, scale: yScale }, color } },
        ...extra,
        rules,
      ],
    }) as unknown as TopLevelSpec;
  const perStep = (value: (x: RunData['steps'][number]) => number | undefined) =>
    done.flatMap((d) => {
      const rows = d.run.steps.map((x) => ({ step: x.step, v: value(x) })).filter((r): r is { step: number; v: number } => finite(r.v));
      return downsample(rows, (r) => r.v, 400).map((r) => ({ run: d.plan.name, step: r.step, v: r.v }));
    });
  const sharp = done.flatMap((d) => d.run.diagnostics.filter((x) => finite(x.sharpness?.[0])).map((x) => ({ run: d.plan.name, step: x.step, v: x.sharpness![0] })));
  const thr = done.flatMap((d) => d.run.diagnostics.filter((x) => finite(x.stabilityThreshold)).map((x) => ({ step: x.step, v: x.stabilityThreshold! })));
  const thresholdLayer = thr.length
    ? [{ data: { values: thr }, mark: { type: 'line', strokeDash: [6, 4], color: '#7f7f7f' }, encoding: { x, y: { field: 'v', type: 'quantitative' } } }]
    : [];
  const evals = done.flatMap((d) => d.run.evals.filter((e) => finite(e.metrics.val_top1)).map((e) => ({ run: d.plan.name, step: e.step, v: e.metrics.val_top1 })));
  return [
    { id: 'entropy-mean', title: 'Mean attention entropy', caption: 'Per step, attention entropy averaged over every layer and head (nats), for the three runs; dashed rules: the τ switches. The runs share seed and data order, so each intervention run is identical to the control until its switch and hides it there.', spec: chart(perStep((x) => meanEntropy(x.entropy.map((e) => e.heads))), 'v', 'mean entropy (nats)') },
    { id: 'entropy-min', title: 'Lowest attention entropy', caption: 'Per step, the lowest per-head entropy over all layers and heads (nats).', spec: chart(perStep((x) => stepMinEntropy(x.entropy.map((e) => e.heads))), 'v', 'min entropy (nats)') },
    { id: 'loss', title: 'Training loss', caption: 'Per-step training loss (global batch).', spec: chart(perStep((x) => x.loss), 'v', 'train loss') },
    {
      id: 'sharpness',
      title: 'Sharpness vs the AdamW stability threshold',
      caption: 'λ₁ at each diagnostics step (points) and the threshold 38/η (grey dashes), log scale.',
      spec: chart(sharp, 'v', 'λ₁', { type: 'log' }, { type: 'line', point: true, strokeWidth: 1.3 }, thresholdLayer),
    },
    { id: 'validation', title: 'Validation accuracy', caption: 'val_top1 at each eval.', spec: chart(evals, 'v', 'val_top1', { domain: [0, 1] }, { type: 'line', point: true, strokeWidth: 1.5 }) },
  ];
}

export async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv, 'intervention');
  const s = args.quick ? QUICK : FULL;
  const plans = plan(s);
  const dataRoot = args.dataRoot ?? (args.quick ? `${args.out}/data/shapes` : undefined);
  const common: [string, string | number][] = [['optim.lr', s.lr], ...(dataRoot ? [['data.root', dataRoot] as [string, string]] : [])];
  console.log(`intervention: ${plans.length} runs (τ → ${s.tau} at steps ${s.early} and ${s.late}) into ${args.out}`);
  const done = await runAll(args, configPath(s.config), plans, common, s.timeoutMs);
  const rows = rowsOf(done, s);
  const outcomes = done.map((d) => d.outcome);
  const page: Page = {
    title: `Temperature intervention${args.quick ? ' (quick)' : ''}`,
    intro: [
      `Zhai et al. (ICML 2023) Appendix B at small scale: three runs of \`sigmatrain run --workers ${args.workers}\` with \`configs/experiments/${s.config}\` ` +
        `(pre-LN ViT with plain linear layers, AdamW lr ${s.lr}): τ = 1 throughout (control), and every attention's logits divided by τ = ${s.tau} from step ${s.early} (early) or from step ${s.late} (late) via \`model.temperatureSchedule\`.`,
      `Every number below is computed from the runs' own steps.jsonl, evals.jsonl and diagnostics.jsonl; per-run files are under \`runs/\`.`,
    ],
    tables: table(rows, outcomes),
    charts: charts(done, s),
    notes: [],
    links: done.map((d) => ({ label: d.plan.name, href: `runs/${d.plan.name}/report.html` })),
  };
  const paths = await writePage(args.out, page);
  await writeResults(args.out, { experiment: 'intervention', quick: args.quick, config: s.config, workers: args.workers, setup: s, around: rows, runs: outcomes });
  console.log(`intervention: wrote ${paths.html} and ${paths.markdown}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error((e as Error).message);
    process.exit(1);
  });
}
