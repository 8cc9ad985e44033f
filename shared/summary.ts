// What every run ends with — the one-process trainer's summary and the coordinator's job summary share it — and
// how its result reads in the final log line (`val_top1=0.953 val_top5=0.998`, fractions).

export interface RunResult {
  steps: number;
  seconds: number;
  samplesPerSecond: number;
  finalLoss: number;
  valTop1: number;
  valTop5: number;
  valLoss: number;
  emaValTop1: number | null;
  minEntropy: number;
  /** Stopped (SIGTERM, guard) before the last step. */
  stoppedEarly: boolean;
}

const fixed = (v: number, digits: number): string => (Number.isFinite(v) ? v.toFixed(digits) : 'n/a');

/** "final loss 0.1119; val_top1=0.978 val_top5=1.000[ ema_val_top1=…]; min entropy 0.381 nats" */
export function resultText(s: RunResult): string {
  const ema = s.emaValTop1 !== null ? ` ema_val_top1=${fixed(s.emaValTop1, 3)}` : '';
  return `final loss ${fixed(s.finalLoss, 4)}; val_top1=${fixed(s.valTop1, 3)} val_top5=${fixed(s.valTop5, 3)}${ema}; min entropy ${fixed(s.minEntropy, 3)} nats`;
}
