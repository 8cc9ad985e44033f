// The run's record on disk, written by the coordinator (never on a worker's step path): one JSONL file per kind,
// read by the run report (`sigmatrain report RUN_DIR`) and by tests that check numbers against the run's own logs.
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { SiteHeads } from '../shared/sites.js';

/** <runDir>/steps.jsonl: one line per completed step (first report wins). */
export interface StepRecord {
  step: number;
  epoch: number;
  generation: number;
  worldSize: number;
  /** Wall clock, ms since the Unix epoch. */
  time: number;
  loss: number;
  /** The task's per-step metrics (e.g. {accuracy}). */
  metrics: Record<string, number>;
  lr: number;
  gradNorm: number;
  temperature: number;
  /** Examples and batch units (in `unit`) of the step over all ranks. */
  samples: number;
  units: number;
  unit: string;
  samplesPerSecond: number;
  /** Mean attention entropy per head of each attention site, nats. */
  entropy: SiteHeads[];
  /** The reporting replica's chained step digest. */
  digest: string;
  /** Seconds per phase on the reporting rank. */
  seconds: Record<string, number>;
}

/** <runDir>/diagnostics.jsonl: every N steps. */
export interface DiagnosticsRecord {
  step: number;
  time: number;
  /** Top-k Hessian eigenvalues of the global-batch loss, descending. */
  sharpness?: number[];
  stabilityThreshold?: number;
  /** Theorem 3.1 lower bound per site and head, nats. */
  entropyBound?: SiteHeads[];
  spectral?: { name: string; sigma: number; gamma?: number }[];
}

/** <runDir>/evals.jsonl. */
export interface EvalRecord {
  step: number;
  epoch: number;
  time: number;
  /** The task's evaluation metrics (e.g. {val_top1, val_top5, val_loss}). */
  metrics: Record<string, number>;
  n: number;
  /** The same on the EMA weights, when kept. */
  ema?: Record<string, number>;
}

/** What the coordinator writes to events.jsonl (the run report reads exactly these). */
export const EVENT_KINDS = ['generation', 'failure', 'checkpoint', 'temperature', 'collapse', 'rollback'] as const;

/** <runDir>/events.jsonl: generations, failures, checkpoints, temperature changes, collapse alarms, rollbacks. */
export interface EventRecord {
  time: number;
  kind: (typeof EVENT_KINDS)[number];
  step?: number;
  message: string;
  [key: string]: unknown;
}

export class RunLog {
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  private append(file: string, record: object): void {
    appendFileSync(join(this.dir, file), JSON.stringify(record) + '\n');
  }

  step(r: StepRecord): void {
    this.append('steps.jsonl', r);
  }

  diagnostics(r: DiagnosticsRecord): void {
    this.append('diagnostics.jsonl', r);
  }

  evaluation(r: EvalRecord): void {
    this.append('evals.jsonl', r);
  }

  event(r: Omit<EventRecord, 'time'>): void {
    this.append('events.jsonl', { time: Date.now(), ...r });
  }
}
