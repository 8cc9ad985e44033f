// The README's experiment and measurement tables, generated from the committed results (configs/experiments/results/
// *.json) with the reports' own table code: `npm run readme:tables` rewrites them, a test fails while they differ.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunOutcome } from './analyze.js';
import { tables } from './robustness.js';
import { tables as deepTables, type DeepOutcome } from './deepmt.js';
import { table as interventionTables, type Around } from './intervention.js';
import { f, tableMarkdown, type Table } from './page.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface Results {
  experiment: string;
  numClasses?: number;
  runs: RunOutcome[];
}

/** results.json of `npm run experiment:intervention`: the rows around each switch and the per-run summaries. */
export interface InterventionResults extends Results {
  /** τ, the switch steps, the config (intervention.ts Setup). */
  setup: Record<string, unknown>;
  around: Around[];
}

export function loadResults(name: 'intervention', root?: string): InterventionResults;
export function loadResults(name: string, root?: string): Results;
export function loadResults(name: string, root = ROOT): Results {
  return JSON.parse(readFileSync(join(root, 'configs', 'experiments', 'results', `${name}.json`), 'utf8')) as Results;
}

/** One cell of the AdamW grid: final val_top1 (marked at chance) · lowest head entropy. */
function cell(o: RunOutcome | undefined): string {
  if (!o) return '—';
  const acc = o.nonFinite ? 'NaN' : `${f.acc(o.valTop1)}${o.learned ? '' : ' (chance)'}`;
  return `${acc} · ${o.minEntropy === undefined ? '—' : o.minEntropy.toFixed(2)}`;
}

/** One row of `npm run bench:allreduce -- --peer gloo`'s `comparison` array (test/bench/allreduce.ts). */
interface AllreduceComparison {
  plane: string;
  transport: string;
  worldSize: number;
  sizeMB: number;
  busbwGBps: { ours: number; gloo: number };
  ratio: number;
  ratioMedianOfRepetitions: number;
  cpuSecondsPerRank: { ours: number; gloo: number };
  contextSwitchesPerRank: { ours: number; gloo: number };
}

/** The ring against PyTorch gloo, per data plane × transport × size, from a committed bench:allreduce JSON. */
export function allreduceTable(r: { comparison: AllreduceComparison[] }): Table {
  const ms = (s: number): string => (s * 1000).toFixed(s < 0.01 ? 2 : 1);
  return {
    id: 'allreduce-gloo', title: '',
    columns: ['data plane · transport', 'size', 'busbw ours / gloo (GB/s)', 'ours ÷ gloo (median of repetitions)', 'CPU ms per rank ours / gloo', 'context switches ours / gloo'],
    rows: r.comparison.map((c) => [
      `${c.plane} · ${c.transport}`, `${c.sizeMB} MB`, `${c.busbwGBps.ours.toFixed(2)} / ${c.busbwGBps.gloo.toFixed(2)}`,
      `**${c.ratio.toFixed(2)}×** (${c.ratioMedianOfRepetitions.toFixed(2)}×)`, `${ms(c.cpuSecondsPerRank.ours)} / ${ms(c.cpuSecondsPerRank.gloo)}`,
      `${c.contextSwitchesPerRank.ours} / ${c.contextSwitchesPerRank.gloo}`,
    ]),
  };
}

/** The generated blocks, by marker id. */
export function readmeBlocks(root = ROOT): Map<string, string> {
  const r = loadResults('robustness', root);
  const [methods] = tables(r.runs, r.numClasses ?? 10);
  const adamw = r.runs.filter((o) => o.optimizer === 'adamw');
  const methodsOf = [...new Set(adamw.map((o) => o.method))];
  const keys = [...new Set(adamw.map((o) => `${o.lr}|${o.warmupSteps}`))]
    .map((k) => k.split('|').map(Number) as [number, number])
    .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const grid = tableMarkdown({
    id: 'cells', title: '',
    columns: ['AdamW lr', 'warmup', ...methodsOf.map((m) => m.replace(/ · AdamW$/, ''))],
    rows: keys.map(([lr, wu]) => [f.lr(lr), String(wu), ...methodsOf.map((m) => cell(adamw.find((o) => o.method === m && o.lr === lr && o.warmupSteps === wu)))]),
  });
  const deep = loadResults('deep-mt', root) as unknown as { width: string; unigram?: { entropy: number }; runs: DeepOutcome[] };
  const [depths] = deepTables(deep.runs, deep.width, deep.unigram?.entropy);
  const iv = loadResults('intervention', root);
  const [aroundSwitch] = interventionTables(iv.around, iv.runs);
  const allreduce = loadResults('allreduce-gloo', root) as unknown as { comparison: AllreduceComparison[] };
  return new Map([
    ['robustness:methods', tableMarkdown(methods)],
    ['robustness:cells', grid],
    ['intervention:around', tableMarkdown(aroundSwitch)],
    ['deep-mt:depths', tableMarkdown(depths!)],
    ['allreduce:gloo', tableMarkdown(allreduceTable(allreduce))],
  ]);
}

const block = (id: string) => new RegExp(`(<!-- BEGIN ${id} [^\\n]*-->\\n)([\\s\\S]*?)(\\n<!-- END ${id} -->)`);

/** The README with every generated block replaced; throws when a block's markers are missing. */
export function renderReadme(readme: string, blocks: Map<string, string>): string {
  let out = readme;
  for (const [id, text] of blocks) {
    if (!block(id).test(out)) throw new Error(`README.md has no <!-- BEGIN ${id} … --> … <!-- END ${id} --> block`);
    out = out.replace(block(id), (_m, a: string, _b: string, c: string) => `${a}${text}${c}`);
  }
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const path = join(ROOT, 'README.md');
  const before = readFileSync(path, 'utf8');
  const after = renderReadme(before, readmeBlocks());
  if (after !== before) writeFileSync(path, after);
  console.log(after === before ? 'README.md tables are up to date' : 'README.md tables rewritten from configs/experiments/results/*.json');
}
