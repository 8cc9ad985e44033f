// `npm run experiment:deep-mt`: the paper's deep machine-translation comparison (Table 4) at small scale — post-LN,
// post-LN + σReparam and DeepNorm encoder-decoders of increasing depth on the generated En→De demo corpus, each through
// `sigmatrain run --workers 2`; writes <out>/report.html, report.md and results.json from the runs' own logs.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { TopLevelSpec } from 'vega-lite';
import { writeDemoCorpus } from '../../worker/data/wmt/demo_corpus.js';
import { downsample } from '../report/charts.js';
import { DIVERGED_RULE, FINAL_FRACTION, FINAL_MIN, stepMinEntropy, type RunOutcome } from './analyze.js';
import { configPath, parseArgs, runAll, writeResults, type DoneRun, type PlannedRun } from './harness.js';
import { f, writePage, type ChartSpec, type Page, type Table } from './page.js';
import { runCacheDir, targetUnigram, type UnigramBaseline } from './unigram.js';
import { loadConfig } from '../../shared/config/index.js';

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
  /** Seeds of every depth (model init and data order: the config key `seed`); the first is the config's. */
  seeds: number[];
  /** More seeds at some depths (where the outcome flips, as the paper's "some seeds"): depth → extra seeds. */
  extraSeeds: Record<number, number[]>;
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

/** d16 encoder-decoders of 2 to 24 layers each side at a learning rate that stresses depth (see deep-mt.yaml's header). */
export const FULL: DeepSetup = {
  config: 'deep-mt.yaml',
  width: 'test',
  depths: [2, 6, 12, 24],
  methods: METHODS,
  seeds: [0],
  // 6L: where post-LN left the unigram plateau late in the first seed's run (the paper: "diverged for some seeds").
  extraSeeds: { 6: [1, 2] },
  lr: 1e-2,
  warmupSteps: 10,
  corpus: { train: 3000, dev: 100, test: 100, maxNumber: 9999 },
  timeoutMs: 40 * 60_000,
};

/** The integration test's: one shallow depth per method, a few steps on a small corpus (code path and report only). */
export const QUICK: DeepSetup = {
  config: 'deep-mt-quick.yaml',
  width: 'test',
  depths: [2],
  methods: METHODS,
  seeds: [0],
  extraSeeds: {},
  lr: 3e-3,
  warmupSteps: 2,
  corpus: { train: 200, dev: 8, test: 8, maxNumber: 9999 },
  timeoutMs: 3 * 60_000,
};

/**
 * A run "trained" when its final NLL per target token is below this fraction of the unigram baseline (the entropy of
 * the training targets' token frequencies, the NLL of a model that ignores source and context), and it did not diverge.
 */
export const TRAINED_FRACTION = 0.75;
/** A run's attention "collapsed" when some head's entropy fell below this many nats at some step. */
export const COLLAPSED_NATS = 0.1;
export const TRAINED_RULE =
  `not diverged and final training NLL per target token (label smoothing off; mean over the same last steps as the final loss) below ${TRAINED_FRACTION} × the unigram baseline ` +
  '(the entropy of the training targets\' token frequencies, </s> included: the NLL of a model that predicts tokens by frequency alone, ignoring source and context)';
/** Steps averaged when finding the step at which a run's NLL first went below the trained level. */
const WINDOW = 10;
export const COLLAPSED_RULE = `"entropy collapsed": some head's mean attention entropy below ${COLLAPSED_NATS} nats at some step`;

export const variantOf = (s: DeepSetup, depth: number): string => `${s.width}-${depth}L-${depth}L`;

/** The seeds run at `depth`: the setup's seeds, then its extra seeds there. */
export const seedsAt = (s: DeepSetup, depth: number): number[] => [...new Set([...s.seeds, ...(s.extraSeeds[depth] ?? [])])];

/** A run's name: <arm>-<L>L for the first seed, <arm>-<L>L-s<seed> for the others. */
export const runName = (s: DeepSetup, method: string, depth: number, seed: number): string =>
  `${method}-${depth}L${seed === s.seeds[0] ? '' : `-s${seed}`}`;

export function plan(s: DeepSetup): PlannedRun[] {
  return s.depths.flatMap((depth) =>
    seedsAt(s, depth).flatMap((seed) =>
      s.methods.map((m) => ({
        name: runName(s, m.id, depth, seed),
        method: m.label,
        optimizer: 'adamw',
        lr: s.lr,
        warmupSteps: s.warmupSteps,
        numClasses: 0,
        tags: { depth, method: m.id, seed },
        flags: [
          ...m.flags, ['model.seq2seq.variant', variantOf(s, depth)], ['optim.lr', s.lr], ['optim.warmupSteps', s.warmupSteps], ['optim.timescale', s.warmupSteps],
          ['seed', seed],
        ] as [string, string | number][],
      })),
    ),
  );
}

/** One run's outcome with what the MT table needs: depth, seed, NLL against the unigram baseline, BLEU and status. */
export interface DeepOutcome extends RunOutcome {
  depth: number;
  seed: number;
  /** Mean per-token NLL (steps.jsonl metrics.nll) over the final-loss window; undefined without such steps. */
  finalNll?: number;
  /** finalNll / the unigram baseline. */
  nllRatio?: number;
  /** Last step of the first 10 consecutive steps whose mean NLL is below TRAINED_FRACTION × unigram; undefined if none. */
  trainedAtStep?: number;
  validBleu?: number;
  testBleu?: number;
  collapsed: boolean;
  status: 'trained' | 'stalled' | 'diverged';
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * Adds depth, seed, the final NLL and its ratio to `unigram` (nats), BLEU (from the runs' evals.jsonl: the last
 * valid_bleu, the test set's bleu), attention collapse and the status. Pure.
 */
export function deepOutcome(d: DoneRun, unigram: number): DeepOutcome {
  const o = d.outcome;
  const evals = d.run.evals;
  const lastWith = (k: string): number | undefined => {
    for (let i = evals.length - 1; i >= 0; i--) if (finite(evals[i]!.metrics[k])) return evals[i]!.metrics[k];
    return undefined;
  };
  // The window of analyze.ts's final loss: the last 10 % of the steps (at least FINAL_MIN), never inside warmup.
  const steps = d.run.steps;
  const after = steps.filter((r) => r.step >= o.warmupSteps && finite(r.loss));
  const nFinal = Math.min(after.length, Math.max(FINAL_MIN, Math.ceil(FINAL_FRACTION * steps.length)));
  const nlls = after.slice(after.length - nFinal).map((r) => r.metrics?.['nll']);
  const finalNll = nFinal > 0 && nlls.every(finite) ? nlls.reduce((a, b) => a + b, 0) / nFinal : undefined;
  const nllRatio = finalNll !== undefined ? finalNll / unigram : undefined;
  const trained = !o.diverged && nllRatio !== undefined && nllRatio < TRAINED_FRACTION;
  let trainedAtStep: number | undefined;
  for (let i = 0; i + WINDOW <= steps.length && trainedAtStep === undefined; i++) {
    const w = steps.slice(i, i + WINDOW).map((r) => r.metrics?.['nll']);
    if (w.every(finite) && w.reduce((a, b) => a + b, 0) / WINDOW < TRAINED_FRACTION * unigram) trainedAtStep = steps[i + WINDOW - 1]!.step;
  }
  return {
    ...o,
    // The eval's "valid_loss" is the validation set's; the runner's generic valLoss reads val_loss (classification).
    valLoss: lastWith('valid_loss'),
    depth: Number(o.tags['depth']),
    seed: Number(o.tags['seed'] ?? 0),
    finalNll,
    nllRatio,
    trainedAtStep,
    validBleu: lastWith('valid_bleu'),
    testBleu: lastWith('bleu'),
    collapsed: finite(o.minEntropy) && o.minEntropy < COLLAPSED_NATS,
    status: o.diverged ? 'diverged' : trained ? 'trained' : 'stalled',
  };
}

const statusText = (o: DeepOutcome): string =>
  (o.status === 'diverged' ? (o.nonFinite ? `diverged (NaN/∞ at step ${o.nonFiniteStep})` : 'diverged (loss > initial)') : o.status) +
  (o.collapsed ? ', entropy collapsed' : '');

const bleuText = (o: DeepOutcome): string => (o.testBleu === undefined ? '—' : o.testBleu.toFixed(1));

/** One run in a cell: NLL as a multiple of the unigram baseline (and status when not trained), test BLEU, lowest entropy. */
function runCell(o: DeepOutcome): string {
  if (o.nonFinite) return `NaN at step ${o.nonFiniteStep} · ent ${f.nats(o.minEntropy)}`;
  const mark = o.status === 'trained' && !o.collapsed ? '' : ` (${statusText(o)})`;
  const ratio = o.nllRatio === undefined ? '—' : o.nllRatio.toFixed(2);
  return `NLL ${ratio}× uni${mark} · BLEU ${bleuText(o)} · ent ${f.nats(o.minEntropy)}`;
}

/** One cell of the depth × method table: its runs (one per seed); several seeds are prefixed by how many trained. */
export function cell(runs: DeepOutcome | DeepOutcome[] | undefined): string {
  const rs = runs === undefined ? [] : Array.isArray(runs) ? runs : [runs];
  if (!rs.length) return '—';
  if (rs.length === 1) return runCell(rs[0]!);
  const ok = rs.filter((o) => o.status === 'trained').length;
  return `${ok}/${rs.length} trained: ${rs.map((o) => `s${o.seed} ${runCell(o)}`).join('; ')}`;
}

export function tables(outcomes: DeepOutcome[], width: string, unigram?: number): Table[] {
  const depths = [...new Set(outcomes.map((o) => o.depth))].sort((a, b) => a - b);
  const methods = [...new Set(outcomes.map((o) => o.method))];
  const grid: Table = {
    id: 'depths',
    title: 'Depth × method',
    columns: ['layers (enc-dec)', ...methods],
    rows: depths.map((L) => [`${L}L-${L}L`, ...methods.map((m) => cell(outcomes.filter((o) => o.depth === L && o.method === m)))]),
    note:
      `Width "${width}"; each cell: final training NLL per target token as a multiple of the unigram baseline${unigram === undefined ? '' : ` (${unigram.toFixed(3)} nats)`}, ` +
      'test BLEU (sacreBLEU 13a, greedy), lowest per-head attention entropy over all steps and sites (nats); with several seeds, one entry per seed (s<seed>). ' +
      `"trained": ${TRAINED_RULE}; "stalled": neither trained nor diverged; diverged: ${DIVERGED_RULE}; ${COLLAPSED_RULE}.`,
  };
  const perRun: Table = {
    id: 'runs',
    title: 'Per run',
    columns: ['run', 'method', 'layers', 'seed', 'steps', 'status', 'initial loss', 'final loss', 'final NLL', 'NLL / unigram', `NLL < ${TRAINED_FRACTION}× uni from step`, 'worst 10-step loss after warmup', 'valid loss', 'valid BLEU', 'test BLEU', 'min entropy (nats)', 'at step', 'wall s'],
    rows: outcomes.map((o) => [
      o.name, o.method, `${o.depth}L-${o.depth}L`, String(o.seed), o.plannedSteps !== undefined ? `${o.steps}/${o.plannedSteps}` : String(o.steps), statusText(o),
      f.loss(o.initialLoss), f.loss(o.finalLoss), f.loss(o.finalNll), o.nllRatio === undefined ? '—' : o.nllRatio.toFixed(3), f.int(o.trainedAtStep), f.loss(o.maxPostWarmupLoss), f.loss(o.valLoss),
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
      return downsample(rows, (r) => r.v, 150).map((r) => ({ method: o.method, run: o.name, depth: `${o.depth}L-${o.depth}L`, step: r.step, v: r.v }));
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
          detail: { field: 'run', type: 'nominal' },
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

/** Findings in words, computed from the outcomes: per method, the depths where every run trained and the first where one did not. */
export function findings(outcomes: DeepOutcome[]): string[] {
  const methods = [...new Set(outcomes.map((o) => o.method))];
  return methods.map((m) => {
    const rs = outcomes.filter((o) => o.method === m);
    const depths = [...new Set(rs.map((o) => o.depth))].sort((a, b) => a - b);
    const at = (L: number) => rs.filter((o) => o.depth === L);
    const good = depths.filter((L) => at(L).every((o) => o.status === 'trained'));
    const firstBad = depths.find((L) => !good.includes(L));
    if (firstBad === undefined) return `${m}: trained at every depth (${good.map((L) => `${L}L`).join(', ')}).`;
    const bad = at(firstBad).filter((o) => o.status !== 'trained');
    const runs = at(firstBad).length;
    const what = bad.map((o) => `${runs > 1 ? `seed ${o.seed}: ` : ''}${statusText(o)}, final NLL ${f.loss(o.finalNll)} = ${o.nllRatio?.toFixed(2) ?? '—'}× unigram`).join('; ');
    return (
      `${m}: trained at ${good.length ? good.map((L) => `${L}L`).join(', ') : 'no depth'}; ` +
      `at ${firstBad}L-${firstBad}L ${runs > 1 ? `${bad.length} of ${runs} seeds did not train` : 'it did not train'} (${what}).`
    );
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

/** The unigram baseline of the runs' training data: the config's vocabulary and token cache under `dataRoot`. */
export async function unigramOf(config: string, dataRoot: string): Promise<UnigramBaseline> {
  const c = loadConfig({ file: config, args: ['--data.root', dataRoot], env: {} });
  const w = c.data.wmt;
  return targetUnigram(await runCacheDir({ root: c.data.root, workDir: w.workDir, src: w.src, tgt: w.tgt, vocabSize: w.vocabSize }));
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
  const unigram = await unigramOf(configPath(s.config), dataRoot);
  console.log(`deep-mt: unigram baseline ${unigram.entropy.toFixed(4)} nats per target token (${unigram.tokens} tokens of ${unigram.types} types in ${unigram.pairs} pairs)`);
  const outcomes = done.map((d) => deepOutcome(d, unigram.entropy));
  const page: Page = {
    title: `Deep post-LN, σReparam and DeepNorm encoder-decoders${args.quick ? ' (quick)' : ''}`,
    intro: [
      `Zhai et al. (ICML 2023) Table 4 at small scale: ${plans.length} runs of \`sigmatrain run --workers ${args.workers}\` with \`configs/experiments/${s.config}\`, ` +
        `encoder-decoders of width "${s.width}" with ${s.depths.map((d) => `${d}L-${d}L`).join(', ')} layers on the generated En→De number-sentence corpus` +
        `${args.dataRoot ? ` under ${args.dataRoot}` : ` (${s.corpus.train} training pairs, numbers up to ${s.corpus.maxNumber})`}. ` +
        'Arms: post-LN with plain linear layers (`model.norm post`, `model.reparam none`), the same with σReparam on every linear (`model.reparam sigma`), and DeepNorm (`model.norm deepnorm`: residual scaled by α, β-scaled init). ' +
        `All runs of a seed share the initialisation seed and data order; every run has the same optimizer: AdamW β = (0.9, 0.98), peak lr ${s.lr} after ${s.warmupSteps} warmup steps, then inverse-sqrt. ` +
        `Seeds: ${s.depths.map((L) => `${L}L ${seedsAt(s, L).join(', ')}`).join('; ')}.`,
      `Unigram baseline: ${unigram.entropy.toFixed(3)} nats per target token, the entropy of the ${unigram.tokens} training target tokens (${unigram.types} types, </s> included) ` +
        `under the runs' vocabulary — the NLL of a model that predicts by frequency alone; a stuck model sits there (ratio ≈ 1).`,
      `Every number below is computed from the runs' own steps.jsonl and evals.jsonl (and a job log's SGT_NONFINITE_LOSS); per-run files are under \`runs/\`.`,
    ],
    tables: tables(outcomes, s.width, unigram.entropy),
    charts: charts(done, outcomes),
    notes: findings(outcomes),
    links: done.map((d) => ({ label: d.plan.name, href: `runs/${d.plan.name}/report.html` })),
  };
  const paths = await writePage(args.out, page);
  await writeResults(args.out, {
    experiment: 'deep-mt', quick: args.quick, config: s.config, workers: args.workers, width: s.width, depths: s.depths,
    lr: s.lr, warmupSteps: s.warmupSteps, seeds: s.seeds, extraSeeds: s.extraSeeds, unigram,
    trainedRule: TRAINED_RULE, divergedRule: DIVERGED_RULE, collapsedRule: COLLAPSED_RULE, findings: findings(outcomes), runs: outcomes,
  });
  console.log(`deep-mt: wrote ${paths.html} and ${paths.markdown}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error((e as Error).message);
    process.exit(1);
  });
}
