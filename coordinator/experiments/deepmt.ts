// `npm run experiment:deep-mt`: the paper's deep machine-translation comparison (Table 4) at small scale — post-LN,
// post-LN + σReparam and DeepNorm encoder-decoders of increasing depth on the generated En→De demo corpus, each through
// `sigmatrain run --workers 2`; writes <out>/report.html, report.md and results.json from the runs' own logs.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { TopLevelSpec } from 'vega-lite';
import { writeDemoCorpus } from '../../worker/data/wmt/demo_corpus.js';
import { downsample } from '../report/charts.js';
import { DIVERGED_RULE, stepMinEntropy, type RunOutcome } from './analyze.js';
import { configPath, parseArgs, runAll, writeResults, type DoneRun, type PlannedRun } from './harness.js';
import { f, writePage, type ChartSpec, type Page, type Table } from './page.js';

export interface DeepMethod {
  id: string;
  label: string;
  flags: [string, string | number][];
}

export interface DeepSetup {
  /** configs/experiments/<config>: data, optimizer, run length and evaluation every run shares. */
  config: string;
  /** Width name of model.seq2seq.variant (worker/models/transformer.ts WIDTHS); depth L gives "<width>-<L>L-<L>L". */
  width: string;
  depths: number[];
  methods: DeepMethod[];
  /** Peak lr and warmup steps (inverse-sqrt after it), passed to every run. */
  lr: number;
  warmupSteps: number;
  /** The demo corpus the runner generates when --data-root is not given. */
  corpus: { train: number; dev: number; test: number; maxNumber: number };
  timeoutMs: number;
}

/** The paper's three MT arms (its Table 4 rows without the 100L models): fairseq post-LN, the same with σReparam, DeepNorm. */
export const METHODS: DeepMethod[] = [
  { id: 'postln', label: 'post-LN', flags: [['model.norm', 'post'], ['model.reparam', 'none']] },
  { id: 'postln-sigma', label: 'post-LN + σReparam', flags: [['model.norm', 'post'], ['model.reparam', 'sigma']] },
  { id: 'deepnorm', label: 'DeepNorm', flags: [['model.norm', 'deepnorm'], ['model.reparam', 'none']] },
];

/** d32 (tiny) encoder-decoders of 2 to 12 layers each side, 120 steps at a learning rate that stresses post-LN. */
export const FULL: DeepSetup = {
  config: 'deep-mt.yaml',
  width: 'tiny',
  depths: [2, 6, 12],
  methods: METHODS,
  lr: 3e-3,
  warmupSteps: 20,
  corpus: { train: 3000, dev: 100, test: 100, maxNumber: 9999 },
  timeoutMs: 40 * 60_000,
};

/** The integration test's: one shallow depth per method, a few steps on a small corpus (code path and report only). */
export const QUICK: DeepSetup = {
  config: 'deep-mt-quick.yaml',
  width: 'test',
  depths: [2],
  methods: METHODS,
  lr: 3e-3,
  warmupSteps: 2,
  corpus: { train: 200, dev: 8, test: 8, maxNumber: 9999 },
  timeoutMs: 3 * 60_000,
};

/** A run "trained" when its final loss is below this fraction of its initial loss (and it did not diverge). */
export const TRAINED_FRACTION = 0.6;
export const TRAINED_RULE =
  `not diverged and final training loss below ${TRAINED_FRACTION} × the initial loss (at initialisation the loss is about ln V; ` +
  'in these runs it fell below 0.8 × initial within the first 20 steps, when the model had learned little beyond the target words\' frequencies)';

export const variantOf = (s: DeepSetup, depth: number): string => `${s.width}-${depth}L-${depth}L`;

export function plan(s: DeepSetup): PlannedRun[] {
  return s.depths.flatMap((depth) =>
    s.methods.map((m) => ({
      name: `${m.id}-${depth}L`,
      method: m.label,
      optimizer: 'adamw',
      lr: s.lr,
      warmupSteps: s.warmupSteps,
      numClasses: 0,
      tags: { depth, method: m.id },
      flags: [
        ...m.flags, ['model.seq2seq.variant', variantOf(s, depth)], ['optim.lr', s.lr], ['optim.warmupSteps', s.warmupSteps], ['optim.timescale', s.warmupSteps],
      ] as [string, string | number][],
    })),
  );
}

/** One run's outcome with what the MT table needs: depth, BLEU on the validation and test sets, and its status. */
export interface DeepOutcome extends RunOutcome {
  depth: number;
  validBleu?: number;
  testBleu?: number;
  status: 'trained' | 'stalled' | 'diverged';
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Adds depth, BLEU (from the runs' evals.jsonl: the last valid_bleu, the test set's bleu) and the status. Pure. */
export function deepOutcome(d: DoneRun): DeepOutcome {
  const o = d.outcome;
  const evals = d.run.evals;
  const lastWith = (k: string): number | undefined => {
    for (let i = evals.length - 1; i >= 0; i--) if (finite(evals[i]!.metrics[k])) return evals[i]!.metrics[k];
    return undefined;
  };
  const trained = !o.diverged && finite(o.finalLoss) && finite(o.initialLoss) && o.finalLoss < TRAINED_FRACTION * o.initialLoss;
  return {
    ...o,
    // The eval's "valid_loss" is the validation set's; the runner's generic valLoss reads val_loss (classification).
    valLoss: lastWith('valid_loss'),
    depth: Number(o.tags['depth']),
    validBleu: lastWith('valid_bleu'),
    testBleu: lastWith('bleu'),
    status: o.diverged ? 'diverged' : trained ? 'trained' : 'stalled',
  };
}

const statusText = (o: DeepOutcome): string =>
  o.status === 'diverged' ? (o.nonFinite ? `diverged (NaN/∞ at step ${o.nonFiniteStep})` : 'diverged (loss > initial)') : o.status;

/** One cell of the depth × method table: status, final loss, test BLEU, lowest head entropy. */
export function cell(o: DeepOutcome | undefined): string {
  if (!o) return '—';
  if (o.nonFinite) return `NaN at step ${o.nonFiniteStep} · ent ${f.nats(o.minEntropy)}`;
  const mark = o.status === 'trained' ? '' : ` (${o.status})`;
  return `loss ${f.loss(o.finalLoss)}${mark} · BLEU ${o.testBleu === undefined ? '—' : o.testBleu.toFixed(1)} · ent ${f.nats(o.minEntropy)}`;
}

export function tables(outcomes: DeepOutcome[], width: string): Table[] {
  const depths = [...new Set(outcomes.map((o) => o.depth))].sort((a, b) => a - b);
  const methods = [...new Set(outcomes.map((o) => o.method))];
  const grid: Table = {
    id: 'depths',
    title: 'Depth × method',
    columns: ['layers (enc-dec)', ...methods],
    rows: depths.map((L) => [`${L}L-${L}L`, ...methods.map((m) => cell(outcomes.find((o) => o.depth === L && o.method === m)))]),
    note:
      `Width "${width}"; each cell: final training loss (mean of the last 10 % of steps), test BLEU (sacreBLEU 13a, greedy), lowest per-head attention entropy over all steps and sites (nats). ` +
      `"trained": ${TRAINED_RULE}; "stalled": neither trained nor diverged; diverged: ${DIVERGED_RULE}.`,
  };
  const perRun: Table = {
    id: 'runs',
    title: 'Per run',
    columns: ['run', 'method', 'layers', 'steps', 'status', 'initial loss', 'final loss', 'worst 10-step loss after warmup', 'valid loss', 'valid BLEU', 'test BLEU', 'min entropy (nats)', 'at step', 'wall s'],
    rows: outcomes.map((o) => [
      o.name, o.method, `${o.depth}L-${o.depth}L`, o.plannedSteps !== undefined ? `${o.steps}/${o.plannedSteps}` : String(o.steps), statusText(o),
      f.loss(o.initialLoss), f.loss(o.finalLoss), f.loss(o.maxPostWarmupLoss), f.loss(o.valLoss),
      o.validBleu === undefined ? '—' : o.validBleu.toFixed(2), o.testBleu === undefined ? '—' : o.testBleu.toFixed(2),
      f.nats(o.minEntropy), f.int(o.minEntropyStep), f.int(o.seconds),
    ]),
  };
  return [grid, perRun];
}

const METHOD_COLORS = ['#e45756', '#4c78a8', '#54a24b'];

/** Loss and lowest-entropy curves, one panel per depth, one colour per method. */
export function charts(done: DoneRun[], outcomes: DeepOutcome[]): ChartSpec[] {
  const methods = [...new Set(outcomes.map((o) => o.method))];
  const depths = [...new Set(outcomes.map((o) => o.depth))].sort((a, b) => a - b);
  const series = (value: (s: DoneRun['run']['steps'][number]) => number | undefined) =>
    done.flatMap((d, i) => {
      const o = outcomes[i]!;
      const rows = d.run.steps.map((s) => ({ step: s.step, v: value(s) })).filter((r): r is { step: number; v: number } => finite(r.v));
      return downsample(rows, (r) => r.v, 150).map((r) => ({ method: o.method, depth: `${o.depth}L-${o.depth}L`, step: r.step, v: r.v }));
    });
  const panels = (values: object[], yTitle: string, yScale: object): TopLevelSpec =>
    ({
      config: { font: 'system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif', view: { stroke: '#ddd' }, legend: { orient: 'top' } },
      hconcat: depths.map((L) => ({
        title: { text: `${L}L-${L}L`, fontSize: 12 },
        data: { values: values.filter((v) => (v as { depth: string }).depth === `${L}L-${L}L`) },
        width: 190,
        height: 160,
        mark: { type: 'line', strokeWidth: 1.2 },
        encoding: {
          x: { field: 'step', type: 'quantitative' },
          y: { field: 'v', type: 'quantitative', title: yTitle, scale: yScale },
          color: { field: 'method', type: 'nominal', title: null, scale: { domain: methods, range: METHOD_COLORS } },
        },
      })),
      resolve: { scale: { y: 'shared' } },
    }) as unknown as TopLevelSpec;
  return [
    { id: 'loss', title: 'Training loss by depth', caption: 'Per-step training loss (global batch, label-smoothed, per target token); one panel per depth.', spec: panels(series((s) => s.loss), 'train loss', { zero: false }) },
    {
      id: 'entropy',
      title: 'Lowest attention entropy by depth',
      caption: 'Per step, the lowest per-head attention entropy over encoder self, decoder causal and cross attention (nats); collapse shows as a fall towards 0.',
      spec: panels(series((s) => stepMinEntropy(s.entropy.map((x) => x.heads))), 'min entropy (nats)', { zero: true }),
    },
  ];
}

/** Findings in words, computed from the outcomes: the shallowest depth at which each method stopped training. */
export function findings(outcomes: DeepOutcome[]): string[] {
  const methods = [...new Set(outcomes.map((o) => o.method))];
  return methods.map((m) => {
    const rs = outcomes.filter((o) => o.method === m).sort((a, b) => a.depth - b.depth);
    const firstBad = rs.find((o) => o.status !== 'trained');
    const trained = rs.filter((o) => o.status === 'trained').map((o) => `${o.depth}L`);
    return firstBad
      ? `${m}: trained at ${trained.length ? trained.join(', ') : 'no depth'}; ${firstBad.status} from ${firstBad.depth}L-${firstBad.depth}L on (${statusText(firstBad)}, final loss ${f.loss(firstBad.finalLoss)}).`
      : `${m}: trained at every depth (${trained.join(', ')}).`;
  });
}

/**
 * `--depths 2,6` and `--methods postln,deepnorm` run only those depths / arms of the setup: several such processes on
 * one --out share the machine's cores; each writes the report of the runs it covered, so a last call with the union
 * (or without them) finds the finished jobs (the harness reuses a job whose .job.json exists) and reports them all.
 */
export function splitSubset(argv: string[]): { rest: string[]; depths?: number[]; methods?: string[] } {
  let rest = argv;
  const take = (flag: string): string | undefined => {
    const i = rest.indexOf(flag);
    if (i < 0) return undefined;
    const v = rest[i + 1];
    if (!v || v.startsWith('--')) throw new Error(`${flag} needs a comma-separated list`);
    rest = [...rest.slice(0, i), ...rest.slice(i + 2)];
    return v;
  };
  const d = take('--depths');
  const m = take('--methods');
  const depths = d?.split(',').map(Number);
  if (depths?.some((x) => !Number.isInteger(x) || x < 1)) throw new Error(`--depths needs comma-separated layer counts, got "${d}"`);
  return { rest, ...(depths ? { depths } : {}), ...(m ? { methods: m.split(',') } : {}) };
}

export async function main(argv: string[]): Promise<void> {
  const { rest, depths, methods } = splitSubset(argv);
  const args = parseArgs(rest, 'deep-mt');
  const setup = args.quick ? QUICK : FULL;
  const unknown = [...(depths?.filter((d) => !setup.depths.includes(d)) ?? []), ...(methods?.filter((m) => !setup.methods.some((x) => x.id === m)) ?? [])];
  if (unknown.length) {
    throw new Error(`${unknown.join(', ')}: not among the setup's depths (${setup.depths.join(', ')}) or methods (${setup.methods.map((m) => m.id).join(', ')})`);
  }
  const s = { ...setup, depths: depths ?? setup.depths, methods: methods ? setup.methods.filter((m) => methods.includes(m.id)) : setup.methods };

  const plans = plan(s);
  let dataRoot = args.dataRoot;
  if (!dataRoot) {
    // The demo corpus (shorter numbers than the demo's default), generated once under the output folder; the first
    // run learns its vocabulary (under a lock), the others reuse it.
    dataRoot = `${args.out}/data/mt`;
    if (!existsSync(join(dataRoot, 'dev'))) await writeDemoCorpus(dataRoot, { seed: 1, ...s.corpus });
  }
  console.log(`deep-mt: ${plans.length} runs (${s.methods.map((m) => m.id).join(', ')} × ${s.depths.map((d) => `${d}L`).join(', ')}) into ${args.out}`);
  const done = await runAll(args, configPath(s.config), plans, [['data.root', dataRoot]], s.timeoutMs);
  const outcomes = done.map(deepOutcome);
  const page: Page = {
    title: `Deep post-LN, σReparam and DeepNorm encoder-decoders${args.quick ? ' (quick)' : ''}`,
    intro: [
      `Zhai et al. (ICML 2023) Table 4 at small scale: ${plans.length} runs of \`sigmatrain run --workers ${args.workers}\` with \`configs/experiments/${s.config}\`, ` +
        `encoder-decoders of width "${s.width}" with ${s.depths.map((d) => `${d}L-${d}L`).join(', ')} layers on the generated En→De number-sentence corpus` +
        `${args.dataRoot ? ` under ${args.dataRoot}` : ` (${s.corpus.train} training pairs, numbers up to ${s.corpus.maxNumber})`}. ` +
        'Arms: post-LN with plain linear layers (`model.norm post`, `model.reparam none`), the same with σReparam on every linear (`model.reparam sigma`), and DeepNorm (`model.norm deepnorm`: residual scaled by α, β-scaled init). ' +
        `All runs share the seed, data order and optimizer: AdamW β = (0.9, 0.98), peak lr ${s.lr} after ${s.warmupSteps} warmup steps, then inverse-sqrt.`,
      `Every number below is computed from the runs' own steps.jsonl and evals.jsonl (and a job log's SGT_NONFINITE_LOSS); per-run files are under \`runs/\`.`,
    ],
    tables: tables(outcomes, s.width),
    charts: charts(done, outcomes),
    notes: findings(outcomes),
    links: done.map((d) => ({ label: d.plan.name, href: `runs/${d.plan.name}/report.html` })),
  };
  const paths = await writePage(args.out, page);
  await writeResults(args.out, {
    experiment: 'deep-mt', quick: args.quick, config: s.config, workers: args.workers, width: s.width, depths: s.depths,
    trainedRule: TRAINED_RULE, divergedRule: DIVERGED_RULE, findings: findings(outcomes), runs: outcomes,
  });
  console.log(`deep-mt: wrote ${paths.html} and ${paths.markdown}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error((e as Error).message);
    process.exit(1);
  });
}
