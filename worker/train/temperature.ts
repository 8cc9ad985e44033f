// The attention temperature τ at a step: base value, the configured schedule (by epoch or step), then a live
// override from `sigmatrain ctl set-temperature` — a pure function, so every rank applies it at the same step.
import type { Config } from '../../shared/config/index.js';

export interface TemperatureOverride {
  value: number;
  fromStep: number;
}

export function temperatureAt(model: Readonly<Config['model']>, step: number, stepsPerEpoch: number, override: TemperatureOverride | null = null): number {
  if (override && step >= override.fromStep) return override.value;
  let tau = model.temperature;
  let latest = -1;
  for (const e of model.temperatureSchedule) {
    const from = e.fromStep ?? (e.fromEpoch ?? 0) * stepsPerEpoch;
    if (step >= from && from >= latest) {
      tau = e.value;
      latest = from;
    }
  }
  return tau;
}
