// Every Prometheus metric of sigmatrain — name, type, help, label names, buckets — in one table (ARCHITECTURE.md,
// "Metric names (contract)"). Code never builds a name: it picks a definition from here and varies labels.

export const ATTN_TYPES = ['self', 'cross', 'causal'] as const;
export type AttnType = (typeof ATTN_TYPES)[number];

export const STEP_PHASES = ['data', 'forward_backward', 'allreduce', 'optimizer', 'diagnostics'] as const;
export type StepPhase = (typeof STEP_PHASES)[number];

/** Step phases and all-reduces: 1 ms … 5 min (a diagnostics step with Lanczos can take minutes). */
export const STEP_BUCKETS_SECONDS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
] as const;
/** Checkpoint writes: 10 ms … 30 min. */
export const CHECKPOINT_BUCKETS_SECONDS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800] as const;

export type MetricType = 'gauge' | 'counter' | 'histogram';

export interface MetricDef<L extends string = string> {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  readonly labelNames: readonly L[];
  readonly buckets?: readonly number[];
}

function def<const L extends string>(
  name: string, type: MetricType, help: string, labelNames: readonly L[], buckets?: readonly number[],
): MetricDef<L> {
  return buckets === undefined ? { name, type, help, labelNames } : { name, type, help, labelNames, buckets };
}

/** Exported by each worker process. Layer and head labels are 0-based indices as strings. */
export const WORKER_METRICS = {
  attentionEntropy: def('sigmatrain_attention_entropy_nats', 'gauge',
    'Attention entropy per layer and head, averaged over queries and batch (nats); per-head series from one rank only.',
    ['layer', 'head', 'attn']),
  attentionEntropyMin: def('sigmatrain_attention_entropy_min_nats', 'gauge',
    'Minimum attention entropy over all layers and heads of one attention type at the last step (nats).',
    ['attn']),
  attentionEntropyBound: def('sigmatrain_attention_entropy_bound_nats', 'gauge',
    'Theorem 3.1 lower bound on attention entropy from sigma(W_K W_Q^T) (nats).',
    ['layer', 'head', 'attn']),
  spectralNorm: def('sigmatrain_spectral_norm', 'gauge',
    'Spectral norm sigma(W) of a weight, from the sigmaReparam power iteration.', ['param']),
  reparamGamma: def('sigmatrain_reparam_gamma', 'gauge',
    'Learned sigmaReparam scale gamma of a weight.', ['param']),
  hessianSharpness: def('sigmatrain_hessian_sharpness', 'gauge',
    'Top-k Hessian eigenvalues of the loss (k = "1" is the sharpness).', ['k']),
  stabilityThreshold: def('sigmatrain_stability_threshold', 'gauge',
    'Sharpness above which the current optimizer at the current learning rate is unstable.', []),
  loss: def('sigmatrain_loss', 'gauge', 'Training loss of the last step on this worker\'s shard.', []),
  learningRate: def('sigmatrain_learning_rate', 'gauge', 'Learning rate of the last step.', []),
  gradNorm: def('sigmatrain_grad_norm', 'gauge', 'Global L2 norm of the averaged gradient before clipping.', []),
  attentionTemperature: def('sigmatrain_attention_temperature', 'gauge',
    'Global attention temperature tau dividing every attention logit.', []),
  samples: def('sigmatrain_samples_total', 'counter', 'Training samples processed by this worker.', []),
  tokens: def('sigmatrain_tokens_total', 'counter', 'Training tokens (or patches) processed by this worker.', []),
  steps: def('sigmatrain_steps_total', 'counter', 'Training steps completed by this worker.', []),
  stepPhaseDuration: def('sigmatrain_step_phase_duration_seconds', 'histogram',
    'Wall time of one phase of a training step.', ['phase'], STEP_BUCKETS_SECONDS),
  allreduceBytes: def('sigmatrain_allreduce_bytes_total', 'counter',
    'Gradient bytes all-reduced by this worker.', []),
  allreduceDuration: def('sigmatrain_allreduce_duration_seconds', 'histogram',
    'Wall time of one gradient all-reduce.', [], STEP_BUCKETS_SECONDS),
  dataSkipped: def('sigmatrain_data_skipped_total', 'counter', 'Unreadable samples (images) skipped by the loader.', []),
} as const;

/** Exported by the coordinator process. */
export const COORDINATOR_METRICS = {
  worldSize: def('sigmatrain_world_size', 'gauge', 'Workers in the current generation.', []),
  generation: def('sigmatrain_generation', 'gauge', 'Current membership generation.', []),
  workerFailures: def('sigmatrain_worker_failures_total', 'counter', 'Workers lost (missed heartbeats or failed all-reduce).', []),
  checkpointDuration: def('sigmatrain_checkpoint_duration_seconds', 'histogram',
    'Wall time of one checkpoint, from request to durable.', [], CHECKPOINT_BUCKETS_SECONDS),
  jobSteps: def('sigmatrain_job_steps_total', 'counter', 'Global training steps completed by the job.', []),
  // The guard runs in the coordinator, which sees every step's entropies.
  entropyCollapse: def('sigmatrain_entropy_collapse', 'gauge',
    '1 while the entropy-collapse guard judges the layer\'s attention entropy to be collapsing, else 0.',
    ['layer', 'attn']),
  entropyCollapseEvents: def('sigmatrain_entropy_collapse_events_total', 'counter',
    'Entropy-collapse onsets (0 to 1 transitions of sigmatrain_entropy_collapse).', []),
} as const;
