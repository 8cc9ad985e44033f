// Learning-rate schedules: linear warmup from 0, then constant or cosine to a floor.

export interface ScheduleOptions {
  lr: number;
  warmupSteps: number;
  schedule: 'constant' | 'cosine';
  totalSteps: number;
  minLrRatio: number;
}

/** Learning rate for optimizer step `step` (0-based). */
export function learningRate(o: ScheduleOptions, step: number): number {
  if (o.warmupSteps > 0 && step < o.warmupSteps) return (o.lr * (step + 1)) / o.warmupSteps;
  if (o.schedule === 'constant') return o.lr;
  const span = Math.max(1, o.totalSteps - o.warmupSteps);
  const t = Math.min(1, (step - o.warmupSteps) / span);
  const floor = o.lr * o.minLrRatio;
  return floor + (o.lr - floor) * 0.5 * (1 + Math.cos(Math.PI * t));
}
