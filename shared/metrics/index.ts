// Public API of shared/metrics: registry factory, the metric table, the worker and coordinator recorders, /metrics server.
export { createRegistry, setRank, gaugeOf, counterOf, histogramOf, type RegistryOptions } from './registry.js';
export {
  WORKER_METRICS, COORDINATOR_METRICS, ATTN_TYPES, STEP_PHASES, STEP_BUCKETS_SECONDS, CHECKPOINT_BUCKETS_SECONDS,
  type AttnType, type StepPhase, type MetricDef, type MetricType,
} from './names.js';
export { WorkerMetrics, type WorkerMetricsOptions, type StepRecord, type SpectralRecord } from './worker.js';
export { CoordinatorMetrics } from './coordinator.js';
export { serveMetrics, type ServeOptions, type MetricsServer } from './server.js';
