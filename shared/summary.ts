// What every run ends with — the one-process trainer's summary and the coordinator's job summary share it — and
// how its result reads in the final log line (every evaluation metric as name=value, e.g. `val_top1=0.978 val_top5=1.000`).

export interface RunResult {
  /** The config's task and its headline evaluation metric (shared/tasks.ts). */
  task: string;
  headline: string;
  steps: number;
  seconds: number;
  samplesPerSecond: number;
  finalLoss: number;
  /** The last evaluation's metrics, by the task's names ({} when none ran). */
  eval: Record<string, number>;
  /** The same on the EMA weights, when kept. */
  emaEval: Record<string, number> | null;
  minEntropy: number;
  /** Stopped (SIGTERM, guard) before the last step. */
  stoppedEarly: boolean;
}

const fixed = (v: number, digits: number): string => (Number.isFinite(v) ? v.toFixed(digits) : 'n/a');

/** Losses with 4 decimals, everything else (fractions) with 3. */
function value(name: string, v: number): string {
  return fixed(v, /loss/.test(name) ? 4 : 3);
}

/** "val_top1=0.978 val_top5=1.000 val_loss=0.0812[ ema_val_top1=…]" */
export function metricsText(metrics: Record<string, number>, ema: Record<string, number> | null = null): string {
  const parts = Object.entries(metrics).map(([k, v]) => `${k}=${value(k, v)}`);
  for (const [k, v] of Object.entries(ema ?? {})) parts.push(`ema_${k}=${value(k, v)}`);
  return parts.join(' ');
}

/** "final loss 0.1119; val_top1=0.978 val_top5=1.000 …; min entropy 0.381 nats" */
export function resultText(s: RunResult): string {
  const m = metricsText(s.eval, s.emaEval);
  return `final loss ${fixed(s.finalLoss, 4)}; ${m || 'no evaluation'}; min entropy ${fixed(s.minEntropy, 3)} nats`;
}
