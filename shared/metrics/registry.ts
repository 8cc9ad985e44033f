// Registry factory (one per process, passed to whoever records metrics — never the global one) and typed
// constructors that build a prom-client metric from a definition in names.ts.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { SigmaError } from '../errors.js';
import type { MetricDef } from './names.js';

export interface RegistryOptions {
  role: 'coordinator' | 'worker';
  /** Worker rank in the current generation; becomes a `rank` label on every series. */
  rank?: number;
  /** prom-client's process_* and nodejs_* metrics, collected into this registry (not the global one). */
  defaultMetrics?: boolean;
}

/** A fresh Registry with `role` (and, for workers, `rank`) as default labels. Never sets job/instance. */
export function createRegistry(opts: RegistryOptions): Registry {
  const registry = new Registry();
  registry.setDefaultLabels(defaultLabels(opts.role, opts.rank));
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * Relabels every series of `registry` with a new rank (ranks are reassigned at each generation).
 * Default labels are applied at exposition time, so this takes effect at the next scrape.
 */
export function setRank(registry: Registry, role: RegistryOptions['role'], rank: number): void {
  registry.setDefaultLabels(defaultLabels(role, rank));
}

function defaultLabels(role: RegistryOptions['role'], rank: number | undefined): Record<string, string> {
  if (rank === undefined) return { role };
  if (!Number.isInteger(rank) || rank < 0) {
    throw new SigmaError('SGT_METRICS', `metrics rank must be a non-negative integer, got ${String(rank)}`);
  }
  return { role, rank: String(rank) };
}

function checkType(def: MetricDef, type: MetricDef['type']): void {
  if (def.type !== type) throw new SigmaError('SGT_METRICS', `${def.name} is a ${def.type}, not a ${type}`);
}

/** `collect`, when given, runs at each scrape (point-in-time values computed off the step path). */
export function gaugeOf<L extends string>(registry: Registry, def: MetricDef<L>, collect?: () => void): Gauge<L> {
  checkType(def, 'gauge');
  return new Gauge<L>({
    name: def.name, help: def.help, labelNames: def.labelNames, registers: [registry], ...(collect ? { collect } : {}),
  });
}

export function counterOf<L extends string>(registry: Registry, def: MetricDef<L>): Counter<L> {
  checkType(def, 'counter');
  return new Counter<L>({ name: def.name, help: def.help, labelNames: def.labelNames, registers: [registry] });
}

export function histogramOf<L extends string>(registry: Registry, def: MetricDef<L>): Histogram<L> {
  checkType(def, 'histogram');
  return new Histogram<L>({
    name: def.name, help: def.help, labelNames: def.labelNames, registers: [registry],
    ...(def.buckets ? { buckets: [...def.buckets] } : {}),
  });
}
