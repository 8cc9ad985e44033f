// The run report's charts as Vega-Lite specs built from a loaded run (pure), and their rendering to SVG strings with
// vega's headless 'none' renderer (no canvas, no network: every spec carries its data inline).
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { TopLevelSpec } from 'vega-lite';
import type { RunData } from './load.js';

export const CHART_TITLES = {
  entropy: 'Attention entropy per layer',
  loss: 'Loss',
  lr: 'Learning rate',
  sharpness: 'Sharpness vs stability threshold',
  throughput: 'Throughput',
  validation: 'Validation accuracy',
} as const;

export type ChartId = keyof typeof CHART_TITLES;

export interface Chart {
  id: ChartId;
  title: string;
  /** What is plotted, in a sentence. */
  caption: string;
  /** Undefined when the run has no data for this chart; `empty` says which file was missing or empty. */
  spec?: TopLevelSpec;
  empty?: string;
}

/** A vertical rule on every step chart. */
export interface Marker {
  step: number;
  kind: MarkerKind;
  label: string;
}

export const MARKER_COLORS = {
  generation: '#6a3d9a',
  failure: '#e31a1c',
  temperature: '#ff7f00',
  rollback: '#8c510a',
  collapse: '#111111',
} as const;

export type MarkerKind = keyof typeof MARKER_COLORS;

export interface ChartOptions {
  /** Most points per plotted series (default 2000). */
  maxPoints?: number;
  /** Chart width in px (default 760). */
  width?: number;
}

type Row = Record<string, number | string>;

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const mean = (xs: unknown[]): number | undefined => {
  const ok = xs.filter(finite);
  return ok.length ? ok.reduce((a, b) => a + b, 0) / ok.length : undefined;
};

/**
 * At most `max` rows in their original order: the first and last rows plus, per bucket of consecutive rows, the
 * rows holding the bucket's smallest and largest value (min-max decimation keeps spikes and entropy dips visible,
 * which averaging would hide).
 */
export function downsample<T>(rows: T[], value: (r: T) => number, max: number): T[] {
  if (rows.length <= max || max < 4) return rows.length <= max ? rows : rows.slice(0, max);
  const inner = rows.length - 2;
  const buckets = Math.floor((max - 2) / 2);
  const keep: number[] = [0];
  for (let b = 0; b < buckets; b++) {
    const lo = 1 + Math.floor((b * inner) / buckets);
    const hi = 1 + Math.floor(((b + 1) * inner) / buckets);
    if (hi <= lo) continue;
    let iMin = lo;
    let iMax = lo;
    for (let i = lo; i < hi; i++) {
      const v = value(rows[i]);
      if (v < value(rows[iMin])) iMin = i;
      if (v > value(rows[iMax])) iMax = i;
    }
    keep.push(Math.min(iMin, iMax));
    if (iMax !== iMin) keep.push(Math.max(iMin, iMax));
  }
  keep.push(rows.length - 1);
  return keep.map((i) => rows[i]);
}

/** Splits rows by `key`, downsamples each series on `y`, and concatenates them again. */
function perSeries(rows: Row[], key: string, y: string, max: number): Row[] {
  const groups = new Map<string | number, Row[]>();
  for (const r of rows) {
    const g = groups.get(r[key]);
    if (g) g.push(r);
    else groups.set(r[key], [r]);
  }
  return [...groups.values()].flatMap((g) => downsample(g, (r) => r[y] as number, max));
}

/** The step of the first step record at or after `time` (events logged without a step). */
function stepAtTime(run: RunData, time: number): number | undefined {
  const s = run.steps.find((r) => finite(r.time) && r.time >= time);
  return s?.step ?? run.steps[run.steps.length - 1]?.step;
}

/**
 * Rules for generation changes, failures, temperature changes, rollbacks and collapse alarms: from events.jsonl,
 * and — where that file has none of a kind — generation and temperature changes read off the step records.
 */
export function markers(run: RunData): Marker[] {
  const out: Marker[] = [];
  const seen = new Set<string>();
  const add = (step: number | undefined, kind: MarkerKind, label: string): void => {
    if (!finite(step) || seen.has(`${kind}@${step}`)) return;
    seen.add(`${kind}@${step}`);
    out.push({ step, kind, label });
  };
  for (const e of run.events) {
    if (!(e.kind in MARKER_COLORS)) continue;
    add(finite(e.step) ? e.step : finite(e.time) ? stepAtTime(run, e.time) : undefined, e.kind as MarkerKind, e.message);
  }
  const derive = (kind: 'generation' | 'temperature', field: 'generation' | 'temperature', cap: number): void => {
    if (out.some((m) => m.kind === kind)) return;
    const changes: Marker[] = [];
    for (let i = 1; i < run.steps.length; i++) {
      const [a, b] = [run.steps[i - 1][field], run.steps[i][field]];
      if (finite(a) && finite(b) && a !== b) changes.push({ step: run.steps[i].step, kind, label: `${field} ${a} → ${b}` });
    }
    if (changes.length <= cap) for (const c of changes) add(c.step, c.kind, c.label);
  };
  derive('generation', 'generation', 200);
  derive('temperature', 'temperature', 50);
  return out.sort((a, b) => a.step - b.step);
}

interface Frame {
  width: number;
  height: number;
  domain: [number, number];
  rules: Marker[];
}

const CONFIG = {
  font: 'system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif',
  view: { stroke: '#ddd' },
  axis: { gridColor: '#eee', labelColor: '#444', titleColor: '#333', titleFontWeight: 'normal' as const },
  // A fixed y-axis gutter and legends above the plot give every chart the same plot box, so steps line up vertically.
  axisY: { minExtent: 56, maxExtent: 56 },
  legend: { orient: 'top' as const, direction: 'horizontal' as const, labelLimit: 260, titleOrient: 'left' as const, symbolType: 'stroke', symbolStrokeWidth: 2 },
  line: { strokeWidth: 1.5 },
};

/** A step-axis chart: the given layers plus the event rules, on a shared x domain so charts line up. */
function stepChart(f: Frame, layers: object[], yTitle: string, yScale: object = {}): TopLevelSpec {
  const x = { field: 'step', type: 'quantitative', title: 'step', scale: { domain: f.domain, nice: false, zero: false } };
  const withX = layers.map((l) => {
    const layer = l as { encoding?: Record<string, unknown> };
    const enc = layer.encoding ?? {};
    return { ...layer, encoding: { x, ...enc, y: enc.y ? { title: yTitle, scale: yScale, ...(enc.y as object) } : undefined } };
  });
  const rules = f.rules.length
    ? [
        {
          data: { values: f.rules },
          mark: { type: 'rule', strokeWidth: 1.2, opacity: 0.75, strokeDash: [3, 2] },
          encoding: {
            x,
            stroke: {
              field: 'kind',
              type: 'nominal',
              scale: { domain: Object.keys(MARKER_COLORS), range: Object.values(MARKER_COLORS) },
              legend: null,
            },
          },
        },
      ]
    : [];
  return {
    width: f.width,
    height: f.height,
    config: CONFIG,
    layer: [...withX, ...rules],
    resolve: { scale: { stroke: 'independent' } },
  } as unknown as TopLevelSpec;
}

function colorFor(domain: string[], range?: string[]): object {
  return range ? { scale: { domain, range } } : { scale: { domain } };
}

/** Log scale when every value is positive and they span at least a decade; otherwise linear. */
function autoScale(values: number[]): object {
  const pos = values.filter((v) => v > 0);
  if (pos.length === values.length && pos.length > 0 && Math.max(...pos) / Math.min(...pos) >= 10) return { type: 'log' };
  return { zero: false };
}

/** Builds every chart's spec; a chart whose data is absent comes back with `empty` set instead. */
export function chartSpecs(run: RunData, opts: ChartOptions = {}): Chart[] {
  const max = opts.maxPoints ?? 2000;
  const steps = run.steps;
  const allSteps = [...(steps.length ? steps : run.ledger).map((s) => s.step), ...run.evals.map((e) => e.step), ...run.diagnostics.map((d) => d.step)];
  const lo = allSteps.length ? Math.min(...allSteps) : 0;
  const hi = allSteps.length ? Math.max(...allSteps) : 1;
  const f: Frame = { width: opts.width ?? 760, height: 200, domain: [lo, hi > lo ? hi : lo + 1], rules: markers(run) };
  const noSteps = run.files.includes('steps.jsonl') ? 'steps.jsonl has no step records' : 'no steps.jsonl in this run';
  const charts: Chart[] = [];

  // Entropy: (layer) mean over heads of each self-attention site per step; bound: the same reduction of diagnostics' entropyBound.
  const entropyRows: Row[] = [];
  for (const s of steps) {
    s.entropy.forEach(({ attn, layer, heads }) => {
      const m = attn === 'self' && Array.isArray(heads) ? mean(heads) : undefined;
      if (m !== undefined) entropyRows.push({ step: s.step, layer, nats: m });
    });
  }
  const boundRows: Row[] = [];
  for (const d of run.diagnostics) {
    d.entropyBound?.forEach(({ attn, layer, heads }) => {
      const m = attn === 'self' && Array.isArray(heads) ? mean(heads) : undefined;
      if (m !== undefined) boundRows.push({ step: d.step, layer, nats: m });
    });
  }
  const nLayers = new Set([...entropyRows, ...boundRows].map((r) => r.layer)).size;
  const layerColor = { field: 'layer', type: 'ordinal', title: 'layer', scale: { scheme: nLayers > 10 ? 'viridis' : 'tableau10' } };
  charts.push({
    id: 'entropy',
    title: CHART_TITLES.entropy,
    caption:
      'Mean attention entropy over heads, one line per layer (nats)' +
      (boundRows.length ? '; dashed with dots: the Theorem 3.1 lower bound from diagnostics, averaged over heads the same way.' : '; no entropy bound in diagnostics.'),
    ...(entropyRows.length
      ? {
          spec: stepChart(
            f,
            [
              { data: { values: perSeries(entropyRows, 'layer', 'nats', max) }, mark: { type: 'line' }, encoding: { y: { field: 'nats', type: 'quantitative' }, color: layerColor } },
              ...(boundRows.length
                ? [
                    {
                      data: { values: perSeries(boundRows, 'layer', 'nats', max) },
                      mark: { type: 'line', strokeDash: [6, 4], point: { size: 16 } },
                      encoding: { y: { field: 'nats', type: 'quantitative' }, color: layerColor },
                    },
                  ]
                : []),
            ],
            'entropy (nats)',
          ),
        }
      : { empty: noSteps }),
  });

  // Loss: train per step, val per eval.
  const lossRows: Row[] = (steps.length ? steps : run.ledger).filter((s) => finite(s.loss)).map((s) => ({ step: s.step, loss: s.loss, series: 'train' }));
  const valLossRows: Row[] = run.evals.filter((e) => finite(e.metrics.val_loss)).map((e) => ({ step: e.step, loss: e.metrics.val_loss, series: 'val' }));
  const lossColor = { field: 'series', type: 'nominal', title: null, ...colorFor(['train', 'val'], ['#1f77b4', '#d62728']) };
  charts.push({
    id: 'loss',
    title: CHART_TITLES.loss,
    caption: 'Training loss per step' + (valLossRows.length ? ' and validation loss per eval (points).' : '.'),
    ...(lossRows.length
      ? {
          spec: stepChart(
            f,
            [
              { data: { values: downsample(lossRows, (r) => r.loss as number, max) }, mark: { type: 'line' }, encoding: { y: { field: 'loss', type: 'quantitative' }, color: lossColor } },
              ...(valLossRows.length
                ? [{ data: { values: valLossRows }, mark: { type: 'line', point: true }, encoding: { y: { field: 'loss', type: 'quantitative' }, color: lossColor } }]
                : []),
            ],
            'loss',
            { zero: false },
          ),
        }
      : { empty: noSteps }),
  });

  const lrRows: Row[] = steps.filter((s) => finite(s.lr)).map((s) => ({ step: s.step, lr: s.lr }));
  charts.push({
    id: 'lr',
    title: CHART_TITLES.lr,
    caption: 'Learning rate applied at each step.',
    ...(lrRows.length
      ? { spec: stepChart(f, [{ data: { values: downsample(lrRows, (r) => r.lr as number, max) }, mark: { type: 'line', color: '#2ca02c' }, encoding: { y: { field: 'lr', type: 'quantitative', axis: { format: '.2~e' } } } }], 'learning rate') }
      : { empty: noSteps }),
  });

  // Sharpness: top-1 Hessian eigenvalue against the stability threshold, both from diagnostics.
  const sharpRows: Row[] = [];
  for (const d of run.diagnostics) {
    if (finite(d.sharpness?.[0])) sharpRows.push({ step: d.step, value: d.sharpness[0], series: 'top-1 eigenvalue' });
    if (finite(d.stabilityThreshold)) sharpRows.push({ step: d.step, value: d.stabilityThreshold, series: 'stability threshold' });
  }
  const sharpScale = autoScale(sharpRows.map((r) => r.value as number));
  charts.push({
    id: 'sharpness',
    title: CHART_TITLES.sharpness,
    caption:
      'Top Hessian eigenvalue of the global-batch loss against the stability threshold, from diagnostics' +
      ((sharpScale as { type?: string }).type === 'log' ? ' (log scale).' : '.'),
    ...(sharpRows.length
      ? {
          spec: stepChart(
            f,
            [
              {
                data: { values: perSeries(sharpRows, 'series', 'value', max) },
                mark: { type: 'line', point: true },
                encoding: {
                  y: { field: 'value', type: 'quantitative', axis: { format: '~s' } },
                  color: { field: 'series', type: 'nominal', title: null, ...colorFor(['top-1 eigenvalue', 'stability threshold'], ['#9467bd', '#7f7f7f']) },
                  strokeDash: { field: 'series', type: 'nominal', title: null, scale: { domain: ['top-1 eigenvalue', 'stability threshold'], range: [[1, 0], [6, 4]] } },
                },
              },
            ],
            'eigenvalue',
            sharpScale,
          ),
        }
      : { empty: run.files.includes('diagnostics.jsonl') ? 'diagnostics.jsonl has no sharpness or stability threshold' : 'no diagnostics.jsonl in this run' }),
  });

  // Throughput: the coordinator's logged rate (since its start) and a rate over the last W steps from record times.
  const W = 10;
  const tpRows: Row[] = steps.filter((s) => finite(s.samplesPerSecond)).map((s) => ({ step: s.step, rate: s.samplesPerSecond, series: 'logged (since coordinator start)' }));
  for (let i = W; i < steps.length; i++) {
    const dt = (steps[i].time - steps[i - W].time) / 1000;
    let n = 0;
    for (let j = i - W + 1; j <= i; j++) n += finite(steps[j].samples) ? steps[j].samples : 0;
    if (finite(dt) && dt > 0) tpRows.push({ step: steps[i].step, rate: n / dt, series: `over last ${W} steps` });
  }
  charts.push({
    id: 'throughput',
    title: CHART_TITLES.throughput,
    caption: `Samples per second: as logged by the coordinator (averaged since it started), and over the last ${W} steps from record times (dips show re-forming and stalls).`,
    ...(tpRows.length
      ? {
          spec: stepChart(
            f,
            [
              {
                data: { values: perSeries(tpRows, 'series', 'rate', max) },
                mark: { type: 'line' },
                encoding: {
                  y: { field: 'rate', type: 'quantitative' },
                  color: { field: 'series', type: 'nominal', title: null, ...colorFor(['logged (since coordinator start)', `over last ${W} steps`], ['#17becf', '#bcbd22']) },
                },
              },
            ],
            'samples/s',
          ),
        }
      : { empty: noSteps }),
  });

  // Validation accuracy per eval, with the per-step training accuracy faintly behind it for comparison.
  // Every eval metric that is not a loss (the task's names: val_top1 and val_top5, val_token_acc, …) is a series.
  const valRows: Row[] = run.evals.flatMap((e) => Object.entries(e.metrics ?? {}).filter(([k, v]) => !/loss/.test(k) && finite(v)).map(([k, v]) => ({ step: e.step, acc: v, series: k })));
  const valNames = [...new Set(valRows.map((r) => r.series as string))];
  const trainAcc: Row[] = steps.filter((s) => finite(s.metrics?.accuracy)).map((s) => ({ step: s.step, acc: s.metrics.accuracy, series: 'train (per step)' }));
  const accColor = { field: 'series', type: 'nominal', title: null, ...colorFor([...valNames, 'train (per step)'], [...valNames.map((_, i) => ['#d62728', '#9467bd', '#2ca02c', '#ff7f0e'][i % 4]), '#aec7e8']) };
  charts.push({
    id: 'validation',
    title: CHART_TITLES.validation,
    caption: 'Every non-loss evaluation metric (fractions, by the task\'s names) at each eval; per-step training accuracy behind it.',
    ...(valRows.length
      ? {
          spec: stepChart(
            f,
            [
              ...(trainAcc.length ? [{ data: { values: downsample(trainAcc, (r) => r.acc as number, max) }, mark: { type: 'line', strokeWidth: 1 }, encoding: { y: { field: 'acc', type: 'quantitative' }, color: accColor } }] : []),
              { data: { values: valRows }, mark: { type: 'line', point: { size: 40 }, strokeWidth: 2 }, encoding: { y: { field: 'acc', type: 'quantitative' }, color: accColor } },
            ],
            'top-1',
            { domain: [0, 1] },
          ),
        }
      : { empty: run.files.includes('evals.jsonl') ? 'evals.jsonl has no evals' : 'no evals.jsonl in this run' }),
  });
  return charts;
}

/** Renders one Vega-Lite spec to a standalone SVG string. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
