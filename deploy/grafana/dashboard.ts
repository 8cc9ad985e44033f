// Source of the Grafana dashboard deploy/grafana/dashboards/sigmatrain.json, type-checked against @grafana/schema.
// After editing: npx tsc -p tsconfig.json && node dist/deploy/grafana/dashboard.js   (rewrites the JSON;
// test/unit/deploy/dashboard.test.ts fails while the committed JSON differs from what this file generates).
import { fileURLToPath } from 'node:url';
import {
  AxisPlacement,
  BigValueColorMode,
  BigValueGraphMode,
  BigValueJustifyMode,
  BigValueTextMode,
  FieldColorModeId,
  GraphDrawStyle,
  LineInterpolation,
  MappingType,
  PercentChangeColorMode,
  ScaleDistribution,
  SortOrder,
  StackingMode,
  ThresholdsMode,
  TooltipDisplayMode,
  VisibilityMode,
  VizOrientation,
  type Dashboard,
  type DataSourceRef,
  type FieldConfigSource,
  type Panel,
  type RowPanel,
  type VariableModel,
} from '@grafana/schema';
import type * as StatCfg from '@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen';
import type * as StateTimelineCfg from '@grafana/schema/dist/esm/raw/composable/statetimeline/panelcfg/x/StateTimelinePanelCfg_types.gen';
import type * as StatusHistoryCfg from '@grafana/schema/dist/esm/raw/composable/statushistory/panelcfg/x/StatusHistoryPanelCfg_types.gen';
import type * as TimeSeriesCfg from '@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen';

/** Where the generated dashboard lives (this file compiles to dist/deploy/grafana/dashboard.js). */
export const DASHBOARD_JSON_PATH = fileURLToPath(new URL('../../../deploy/grafana/dashboards/sigmatrain.json', import.meta.url));

const DS: DataSourceRef = { type: 'prometheus', uid: '${datasource}' };
/** Label filter every query carries: the job/instance variables (both default to All = '.*'). */
const SEL = 'job=~"$job", instance=~"$instance"';
const LAYER_SEL = `${SEL}, layer=~"$layer"`;

interface Query {
  expr: string;
  legend: string;
  /** Instant query (stat panels); range otherwise. */
  instant?: boolean;
}

function targets(queries: Query[]): Array<Record<string, unknown>> {
  return queries.map((q, i) => ({
    datasource: DS,
    refId: String.fromCharCode(65 + i),
    editorMode: 'code',
    expr: q.expr,
    legendFormat: q.legend,
    range: !q.instant,
    instant: q.instant === true,
  }));
}

/** A panel before layout: ids and grid positions are assigned by `layout`. */
type PanelSpec = Omit<Panel, 'id' | 'gridPos'> & { size: { w: number; h: number } };

const legendBottom = { showLegend: true, placement: 'bottom' as const, calcs: [] as string[] };
const tooltipMulti = { mode: TooltipDisplayMode.Multi, sort: SortOrder.Descending };

interface TimeseriesOpts {
  unit?: string;
  min?: number;
  max?: number;
  stacked?: boolean;
  logScale?: boolean;
  stepped?: boolean;
  overrides?: FieldConfigSource['overrides'];
  w?: number;
  h?: number;
}

function timeseries(title: string, description: string, queries: Query[], o: TimeseriesOpts = {}): PanelSpec {
  const custom = {
    drawStyle: GraphDrawStyle.Line,
    lineInterpolation: o.stepped ? LineInterpolation.StepAfter : LineInterpolation.Linear,
    lineWidth: 1,
    fillOpacity: o.stacked ? 60 : 0,
    showPoints: VisibilityMode.Never,
    spanNulls: false,
    stacking: { mode: o.stacked ? StackingMode.Normal : StackingMode.None, group: 'A' },
    scaleDistribution: o.logScale ? { type: ScaleDistribution.Log, log: 10 } : { type: ScaleDistribution.Linear },
    axisPlacement: AxisPlacement.Auto,
  } satisfies TimeSeriesCfg.FieldConfig;
  const options = { legend: legendBottom, tooltip: tooltipMulti } satisfies TimeSeriesCfg.Options;
  return {
    type: 'timeseries',
    title,
    description,
    datasource: DS,
    targets: targets(queries),
    fieldConfig: {
      defaults: {
        unit: o.unit ?? 'short',
        ...(o.min !== undefined ? { min: o.min } : {}),
        ...(o.max !== undefined ? { max: o.max } : {}),
        color: { mode: FieldColorModeId.PaletteClassic },
        custom,
      },
      overrides: o.overrides ?? [],
    },
    options,
    size: { w: o.w ?? 12, h: o.h ?? 8 },
  };
}

/** Single-value panel; `bad` colours the value red above (events, failures) or below (progress) a level. */
function stat(
  title: string,
  description: string,
  query: Query,
  o: { unit?: string; bad: { above: number } | { below: number }; w?: number; h?: number },
): PanelSpec {
  const steps =
    'above' in o.bad
      ? [
          { color: 'green', value: null },
          { color: 'red', value: o.bad.above },
        ]
      : [
          { color: 'red', value: null },
          { color: 'green', value: o.bad.below },
        ];
  const options = {
    reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
    orientation: VizOrientation.Auto,
    colorMode: BigValueColorMode.Background,
    graphMode: BigValueGraphMode.None,
    justifyMode: BigValueJustifyMode.Auto,
    textMode: BigValueTextMode.Value,
    percentChangeColorMode: PercentChangeColorMode.Standard,
    showPercentChange: false,
    wideLayout: true,
  } satisfies StatCfg.Options;
  return {
    type: 'stat',
    title,
    description,
    datasource: DS,
    targets: targets([{ ...query, instant: true }]),
    fieldConfig: {
      defaults: {
        unit: o.unit ?? 'short',
        color: { mode: FieldColorModeId.Thresholds },
        thresholds: { mode: ThresholdsMode.Absolute, steps },
      },
      overrides: [],
    },
    options,
    size: { w: o.w ?? 4, h: o.h ?? 4 },
  };
}

/** Dashed red line for the series whose legend matches `regex` (bounds and thresholds drawn against data). */
function dashedOverride(regex: string): FieldConfigSource['overrides'][number] {
  return {
    matcher: { id: 'byRegexp', options: regex },
    properties: [
      { id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } },
      { id: 'color', value: { mode: FieldColorModeId.Fixed, fixedColor: 'red' } },
    ],
  };
}

/** Series whose legend matches `regex` go on a right-hand axis with their own unit. */
function rightAxisOverride(regex: string, unit: string): FieldConfigSource['overrides'][number] {
  return {
    matcher: { id: 'byRegexp', options: regex },
    properties: [
      { id: 'custom.axisPlacement', value: AxisPlacement.Right },
      { id: 'unit', value: unit },
    ],
  };
}

// ---- Attention entropy -------------------------------------------------------------------------------------

const entropyHeatmap: PanelSpec = {
  type: 'status-history',
  title: 'Attention entropy heatmap (layer × head)',
  description:
    'Mean attention entropy (nats) of every layer × head over time, averaged over the selected workers: one row per ' +
    'layer/head, red = low. A row turning red while others stay green is a head collapsing (Zhai et al. 2023).',
  datasource: DS,
  maxDataPoints: 120,
  targets: targets([
    {
      expr: `avg by (layer, head, attn) (sigmatrain_attention_entropy_nats{${LAYER_SEL}})`,
      legend: 'L{{layer}} H{{head}} {{attn}}',
    },
  ]),
  fieldConfig: {
    defaults: {
      unit: 'suffix: nats',
      min: 0,
      decimals: 2,
      color: { mode: FieldColorModeId.ContinuousRdYlGr },
      custom: { fillOpacity: 90, lineWidth: 0 } satisfies StatusHistoryCfg.FieldConfig,
    },
    overrides: [],
  },
  options: {
    showValue: VisibilityMode.Never,
    rowHeight: 0.95,
    colWidth: 1,
    legend: { ...legendBottom, showLegend: false },
    tooltip: { mode: TooltipDisplayMode.Single, sort: SortOrder.None },
  } satisfies StatusHistoryCfg.Options,
  size: { w: 24, h: 12 },
};

const entropyVsBound = timeseries(
  'Minimum attention entropy per layer vs Theorem 3.1 bound',
  'Solid: the lowest head entropy of each layer. Dashed: the lowest Theorem 3.1 lower bound among its heads ' +
    '(every head stays above its own bound, so the layer minimum stays above this line). The bound falls ' +
    'exponentially in σ = ‖W_K W_Qᵀ‖₂: a shrinking gap means σReparam is no longer holding σ down.',
  [
    { expr: `min by (layer, attn) (sigmatrain_attention_entropy_nats{${LAYER_SEL}})`, legend: 'L{{layer}} {{attn}} entropy' },
    { expr: `min by (layer, attn) (sigmatrain_attention_entropy_bound_nats{${LAYER_SEL}})`, legend: 'L{{layer}} {{attn}} bound' },
  ],
  { unit: 'suffix: nats', min: 0, overrides: [dashedOverride('.* bound$')] },
);

const entropyCollapse: PanelSpec = {
  type: 'state-timeline',
  title: 'Entropy collapse by layer',
  description: 'sigmatrain_entropy_collapse per layer: red while the trainer flags the layer as collapsing.',
  datasource: DS,
  targets: targets([
    { expr: `max by (layer, attn) (sigmatrain_entropy_collapse{${LAYER_SEL}})`, legend: 'L{{layer}} {{attn}}' },
  ]),
  fieldConfig: {
    defaults: {
      color: { mode: FieldColorModeId.Thresholds },
      thresholds: {
        mode: ThresholdsMode.Absolute,
        steps: [
          { color: 'green', value: null },
          { color: 'red', value: 1 },
        ],
      },
      mappings: [
        {
          type: MappingType.ValueToText,
          options: { '0': { text: 'ok', color: 'green' }, '1': { text: 'collapsing', color: 'red' } },
        },
      ],
      custom: { fillOpacity: 80, lineWidth: 0 } satisfies StateTimelineCfg.FieldConfig,
    },
    overrides: [],
  },
  options: {
    showValue: VisibilityMode.Never,
    rowHeight: 0.9,
    mergeValues: true,
    legend: legendBottom,
    tooltip: { mode: TooltipDisplayMode.Single, sort: SortOrder.None },
  } satisfies StateTimelineCfg.Options,
  size: { w: 18, h: 8 },
};

const entropyMinByKind = timeseries(
  'Minimum attention entropy by attention kind',
  'sigmatrain_attention_entropy_min_nats: the lowest entropy over all layers and heads, per attention kind, ' +
    'with the global attention temperature τ on the right axis (τ < 1 sharpens every attention).',
  [
    { expr: `min by (attn) (sigmatrain_attention_entropy_min_nats{${SEL}})`, legend: '{{attn}} min entropy' },
    { expr: `max(sigmatrain_attention_temperature{${SEL}})`, legend: 'temperature τ' },
  ],
  { unit: 'suffix: nats', min: 0, overrides: [rightAxisOverride('^temperature', 'none')] },
);

// ---- Stability ---------------------------------------------------------------------------------------------

const sharpness = timeseries(
  'Hessian sharpness vs stability threshold',
  'Top-k Hessian eigenvalues (Lanczos on the global batch) against the edge of stability of the current optimizer ' +
    'and learning rate (2/η GD, (2+2β)/η momentum, 38/η AdamW). Above the dashed line training is unstable.',
  [
    { expr: `max by (k) (sigmatrain_hessian_sharpness{${SEL}})`, legend: 'λ{{k}}' },
    { expr: `min(sigmatrain_stability_threshold{${SEL}})`, legend: 'stability threshold' },
  ],
  { logScale: true, overrides: [dashedOverride('^stability threshold$')] },
);

const gradNorm = timeseries(
  'Gradient norm',
  'Global gradient norm after the all-reduce (before clipping), per worker.',
  [{ expr: `max by (instance) (sigmatrain_grad_norm{${SEL}})`, legend: '{{instance}}' }],
  { logScale: true },
);

const spectralNorm = timeseries(
  'Spectral norm σ(W), top 10 parameters',
  'σ(W) from the power iteration of σReparam, for the ten weights with the largest σ at each point in time.',
  [{ expr: `topk(10, max by (param) (sigmatrain_spectral_norm{${SEL}}))`, legend: '{{param}}' }],
);

const gamma = timeseries(
  'σReparam γ, top 10 parameters',
  'The learned scale γ of Ŵ = (γ/σ(W)) W, for the ten weights with the largest γ; γ sets the effective spectral norm.',
  [{ expr: `topk(10, max by (param) (sigmatrain_reparam_gamma{${SEL}}))`, legend: '{{param}}' }],
);

// ---- Training throughput -----------------------------------------------------------------------------------

const lossAndLr = timeseries(
  'Loss and learning rate',
  'Training loss averaged over the workers (each reports its shard), and the learning rate on the right axis.',
  [
    { expr: `avg by (job) (sigmatrain_loss{${SEL}})`, legend: 'loss ({{job}})' },
    { expr: `max by (job) (sigmatrain_learning_rate{${SEL}})`, legend: 'learning rate ({{job}})' },
  ],
  { overrides: [rightAxisOverride('^learning rate', 'short')] },
);

const samplesPerSecond = timeseries(
  'Samples per second',
  'Training throughput summed over the workers: rate of sigmatrain_samples_total (tokens/s on the right axis, text models).',
  [
    { expr: `sum by (job) (rate(sigmatrain_samples_total{${SEL}}[$__rate_interval]))`, legend: 'samples/s ({{job}})' },
    { expr: `sum by (job) (rate(sigmatrain_tokens_total{${SEL}}[$__rate_interval]))`, legend: 'tokens/s ({{job}})' },
  ],
  { min: 0, overrides: [rightAxisOverride('^tokens/s', 'short')] },
);

const phaseBreakdown = timeseries(
  'Step phase breakdown',
  'Mean seconds per step spent in each phase (rate of the histogram _sum over rate of _count, all selected workers); ' +
    'the stack is the mean step time.',
  [
    {
      expr:
        `sum by (phase) (rate(sigmatrain_step_phase_duration_seconds_sum{${SEL}}[$__rate_interval]))` +
        ` / sum by (phase) (rate(sigmatrain_step_phase_duration_seconds_count{${SEL}}[$__rate_interval]))`,
      legend: '{{phase}}',
    },
  ],
  { unit: 's', min: 0, stacked: true },
);

const allreduceShare = timeseries(
  'All-reduce share of step time',
  'Fraction of each worker’s step time spent in the gradient all-reduce phase. High values mean communication-bound training.',
  [
    {
      expr:
        `sum by (instance) (rate(sigmatrain_step_phase_duration_seconds_sum{${SEL}, phase="allreduce"}[$__rate_interval]))` +
        ` / sum by (instance) (rate(sigmatrain_step_phase_duration_seconds_sum{${SEL}}[$__rate_interval]))`,
      legend: '{{instance}}',
    },
  ],
  { unit: 'percentunit', min: 0, max: 1 },
);

const allreduceThroughput = timeseries(
  'All-reduce throughput',
  'Bytes sent through the ring all-reduce per second, per worker.',
  [{ expr: `sum by (instance) (rate(sigmatrain_allreduce_bytes_total{${SEL}}[$__rate_interval]))`, legend: '{{instance}}' }],
  { unit: 'Bps', min: 0 },
);

const allreduceLatency = timeseries(
  'All-reduce latency',
  'Median and 95th percentile of one all-reduce, over the selected workers (histogram sigmatrain_allreduce_duration_seconds).',
  [
    {
      expr: `histogram_quantile(0.5, sum by (le) (rate(sigmatrain_allreduce_duration_seconds_bucket{${SEL}}[$__rate_interval])))`,
      legend: 'p50',
    },
    {
      expr: `histogram_quantile(0.95, sum by (le) (rate(sigmatrain_allreduce_duration_seconds_bucket{${SEL}}[$__rate_interval])))`,
      legend: 'p95',
    },
  ],
  { unit: 's', min: 0 },
);

// ---- Job (coordinator) -------------------------------------------------------------------------------------

const worldSize = timeseries(
  'World size and generation',
  'Workers in the current generation and the generation number (coordinator). A step down in world size with a ' +
    'new generation is a lost worker; a step up is a worker (re)joining.',
  [
    { expr: `max(sigmatrain_world_size{${SEL}})`, legend: 'world size' },
    { expr: `max(sigmatrain_generation{${SEL}})`, legend: 'generation' },
  ],
  { min: 0, stepped: true, w: 8 },
);

const workerFailures = stat(
  'Worker failures',
  'Workers lost (missed heartbeats or failed all-reduce) within the dashboard time range.',
  { expr: `round(sum(increase(sigmatrain_worker_failures_total{${SEL}}[$__range])))`, legend: 'failures' },
  { bad: { above: 1 } },
);

const jobSteps = stat(
  'Job steps per second',
  'Steps completed by the whole job per second (coordinator, sigmatrain_job_steps_total).',
  { expr: `sum(rate(sigmatrain_job_steps_total{${SEL}}[$__rate_interval]))`, legend: 'steps/s' },
  { bad: { below: 0.001 } },
);

const collapseEvents = stat(
  'Entropy collapse events',
  'Entropy collapse events flagged by the workers within the dashboard time range.',
  { expr: `round(sum(increase(sigmatrain_entropy_collapse_events_total{${SEL}}[$__range])))`, legend: 'events' },
  { bad: { above: 1 }, w: 6, h: 8 },
);

const dataSkipped = stat(
  'Samples skipped by the loader',
  'Unreadable or undecodable samples the data loader skipped within the dashboard time range.',
  { expr: `round(sum(increase(sigmatrain_data_skipped_total{${SEL}}[$__range])))`, legend: 'skipped' },
  { bad: { above: 1 } },
);

const checkpointDuration = stat(
  'Mean checkpoint duration',
  'Mean time to write a checkpoint within the dashboard time range (coordinator histogram).',
  {
    expr:
      `sum(increase(sigmatrain_checkpoint_duration_seconds_sum{${SEL}}[$__range]))` +
      ` / sum(increase(sigmatrain_checkpoint_duration_seconds_count{${SEL}}[$__range]))`,
    legend: 'mean',
  },
  { unit: 's', bad: { above: 60 } },
);

// ---- Layout ------------------------------------------------------------------------------------------------

/** Rows of panels, laid out left to right and wrapped at Grafana's 24-column grid. */
function layout(rows: Array<{ title: string; panels: PanelSpec[] }>): Array<Panel | RowPanel> {
  const out: Array<Panel | RowPanel> = [];
  let id = 1;
  let y = 0;
  for (const row of rows) {
    out.push({ type: 'row', id: id++, title: row.title, collapsed: false, panels: [], gridPos: { x: 0, y: y++, w: 24, h: 1 } });
    let x = 0;
    let rowHeight = 0;
    for (const { size, ...panel } of row.panels) {
      if (x + size.w > 24) {
        y += rowHeight;
        x = 0;
        rowHeight = 0;
      }
      out.push({ ...panel, id: id++, gridPos: { x, y, w: size.w, h: size.h } });
      x += size.w;
      rowHeight = Math.max(rowHeight, size.h);
    }
    y += rowHeight;
  }
  return out;
}

function queryVariable(name: string, label: string, query: string, sortNumeric = false): VariableModel {
  return {
    type: 'query',
    name,
    label,
    datasource: DS,
    query,
    refresh: 2, // on time range change: new workers and layers appear without a reload
    sort: sortNumeric ? 3 : 1,
    multi: true,
    includeAll: true,
    allValue: '.*',
    current: { text: 'All', value: '$__all' },
    options: [],
    regex: '',
  };
}

/** Series present on every sigmatrain process: workers count steps_total, the coordinator job_steps_total. */
const ANY_PROCESS = '{__name__=~"sigmatrain_steps_total|sigmatrain_job_steps_total"';

export const dashboard = {
  uid: 'sigmatrain-training',
  title: 'sigmatrain — σReparam training',
  description:
    'Attention entropy (and its Theorem 3.1 bound), sharpness against the stability threshold, loss, throughput ' +
    'and the distributed job of a sigmatrain run. Metric names: ARCHITECTURE.md; alerts: deploy/prometheus/rules.',
  tags: ['sigmatrain', 'training'],
  editable: true,
  graphTooltip: 1, // shared crosshair
  schemaVersion: 39,
  version: 1,
  refresh: '10s',
  time: { from: 'now-1h', to: 'now' },
  timezone: 'browser',
  fiscalYearStartMonth: 0,
  liveNow: false,
  links: [],
  annotations: {
    list: [
      {
        builtIn: 1,
        datasource: { type: 'grafana', uid: '-- Grafana --' },
        enable: true,
        hide: true,
        iconColor: 'rgba(0, 211, 255, 1)',
        name: 'Annotations & Alerts',
        type: 'dashboard',
      },
    ],
  },
  templating: {
    list: [
      {
        type: 'datasource',
        name: 'datasource',
        label: 'Data source',
        query: 'prometheus',
        options: [],
        refresh: 1,
        regex: '',
        hide: 0,
      },
      queryVariable('job', 'Job', `label_values(${ANY_PROCESS}}, job)`),
      queryVariable('instance', 'Instance', `label_values(${ANY_PROCESS}, job=~"$job"}, instance)`),
      queryVariable('layer', 'Layer', `label_values(sigmatrain_attention_entropy_nats{${SEL}}, layer)`, true),
    ],
  },
  panels: layout([
    { title: 'Attention entropy', panels: [entropyHeatmap, entropyVsBound, entropyMinByKind, entropyCollapse, collapseEvents] },
    { title: 'Stability', panels: [sharpness, gradNorm, spectralNorm, gamma] },
    { title: 'Training', panels: [lossAndLr, samplesPerSecond, phaseBreakdown, allreduceShare, allreduceThroughput, allreduceLatency] },
    { title: 'Job', panels: [worldSize, workerFailures, jobSteps, dataSkipped, checkpointDuration] },
  ]),
} satisfies Dashboard;

/** The dashboard as committed: 2-space JSON with a trailing newline. */
export function renderDashboardJson(): string {
  return `${JSON.stringify(dashboard, null, 2)}\n`;
}
