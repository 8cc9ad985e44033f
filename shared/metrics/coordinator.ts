// Metrics of the coordinator process: membership (world size, generation, failures), checkpoints, global steps,
// and the entropy-collapse guard's verdicts.
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { counterOf, gaugeOf, histogramOf } from './registry.js';
import { COORDINATOR_METRICS as M, type AttnType } from './names.js';

export class CoordinatorMetrics {
  private readonly worldSize: Gauge;
  private readonly generation: Gauge;
  private readonly failures: Counter;
  private readonly checkpointSeconds: Histogram;
  private readonly jobSteps: Counter;
  private readonly collapse: Gauge<'layer' | 'attn'>;
  private readonly collapseEvents: Counter;
  private readonly collapsing = new Map<string, boolean>();

  constructor(registry: Registry) {
    this.worldSize = gaugeOf(registry, M.worldSize);
    this.generation = gaugeOf(registry, M.generation);
    this.failures = counterOf(registry, M.workerFailures);
    this.checkpointSeconds = histogramOf(registry, M.checkpointDuration);
    this.jobSteps = counterOf(registry, M.jobSteps);
    this.collapse = gaugeOf(registry, M.entropyCollapse);
    this.collapseEvents = counterOf(registry, M.entropyCollapseEvents);
  }

  /** A generation started with `size` workers. */
  setWorld(size: number, generation: number): void {
    this.worldSize.set(size);
    this.generation.set(generation);
  }

  workerFailed(): void {
    this.failures.inc();
  }

  /** A checkpoint became durable after `seconds`. */
  checkpoint(seconds: number): void {
    if (Number.isFinite(seconds) && seconds >= 0) this.checkpointSeconds.observe(seconds);
  }

  /** `n` global steps completed (dropped unless a positive finite number: a counter never goes down). */
  stepDone(n = 1): void {
    if (Number.isFinite(n) && n > 0) this.jobSteps.inc(n);
  }

  /** Entropy-collapse guard verdict for one layer; each 0→1 transition counts one event. */
  recordCollapse(layer: number, collapsing: boolean, attn: AttnType = 'self'): void {
    const key = `${attn}/${layer}`;
    if (collapsing && !this.collapsing.get(key)) this.collapseEvents.inc();
    this.collapsing.set(key, collapsing);
    this.collapse.set({ layer: String(layer), attn }, collapsing ? 1 : 0);
  }
}
