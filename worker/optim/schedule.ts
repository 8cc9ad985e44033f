// Learning-rate schedules as functions of the 0-based optimizer step: a linear warmup from an initial lr composed
// with a main schedule (constant, step decay, cosine to a floor, inverse square root).
import { SigmaError } from '../../shared/errors.js';

export type MainSchedule =
  /** lr. */
  | { kind: 'constant' }
  /**
   * lr·factorᵏ, k = number of milestones ≤ step. Milestones count from step 0 (warmup included), in optimizer steps,
   * or in epochs when unit = 'epochs' (milestone e is step e·stepsPerEpoch).
   */
  | { kind: 'step'; milestones: number[]; factor: number; unit?: 'steps' | 'epochs'; stepsPerEpoch?: number }
  /** Half-cosine from lr (end of warmup) to `floor` (an absolute lr) at totalSteps, then floor. */
  | { kind: 'cosine'; floor: number; totalSteps: number }
  /** lr/√(1 + τ/timescale), τ = steps since the end of warmup (big_vision's rsqrt; continuous at warmup's end). */
  | { kind: 'inverse-sqrt'; timescale: number };

export interface ScheduleSpec {
  /** Peak learning rate (reached at the last warmup step). */
  lr: number;
  /** Linear warmup over `steps` steps from `init` (default 0): step s < steps gets init + (lr − init)·(s+1)/steps. */
  warmup?: { steps: number; init?: number };
  main: MainSchedule;
}

export type Schedule = (step: number) => number;

/** A value as the user wrote it (NaN stays NaN, strings keep quotes). */
function show(v: unknown): string {
  return typeof v === 'number' ? String(v) : JSON.stringify(v) ?? String(v);
}

function bad(key: string, value: unknown, want: string): never {
  throw new SigmaError('SGT_CONFIG_INVALID', `schedule: ${key} = ${show(value)} is invalid: ${want}`);
}

function finite(key: string, v: unknown, ok: (x: number) => boolean, want: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) bad(key, v, want);
  return v;
}

function mainSchedule(lr: number, warmupSteps: number, m: MainSchedule): Schedule {
  switch (m.kind) {
    case 'constant':
      return () => lr;
    case 'step': {
      const factor = finite('main.factor', m.factor, (x) => x > 0, 'a number > 0');
      const unit = m.unit ?? 'steps';
      if (unit !== 'steps' && unit !== 'epochs') bad('main.unit', unit, "'steps' or 'epochs'");
      const per = unit === 'epochs'
        ? finite('main.stepsPerEpoch', m.stepsPerEpoch, (x) => x > 0 && Number.isInteger(x), 'a positive integer (needed with unit epochs)')
        : 1;
      if (!Array.isArray(m.milestones)) bad('main.milestones', m.milestones, 'a list of numbers');
      const at = m.milestones.map((x, i) => per * finite(`main.milestones[${i}]`, x, (y) => y >= 0, 'a number ≥ 0'));
      for (let i = 1; i < at.length; i++) if (at[i] <= at[i - 1]) bad('main.milestones', m.milestones, 'strictly increasing');
      return (step) => {
        let k = 0;
        while (k < at.length && step >= at[k]) k++;
        return lr * Math.pow(factor, k);
      };
    }
    case 'cosine': {
      const floor = finite('main.floor', m.floor, (x) => x >= 0, 'a number ≥ 0 (usually below lr)');
      const total = finite('main.totalSteps', m.totalSteps, (x) => x >= 0, 'a number ≥ 0');
      const span = Math.max(1, total - warmupSteps);
      return (step) => {
        const t = Math.min(1, (step - warmupSteps) / span);
        return floor + (lr - floor) * 0.5 * (1 + Math.cos(Math.PI * t));
      };
    }
    case 'inverse-sqrt': {
      const ts = finite('main.timescale', m.timescale, (x) => x > 0, 'a number > 0');
      return (step) => lr / Math.sqrt(1 + (step - warmupSteps) / ts);
    }
    default: {
      const never: never = m;
      return bad('main.kind', (never as { kind: unknown }).kind, "'constant', 'step', 'cosine' or 'inverse-sqrt'");
    }
  }
}

/** The schedule a spec describes; checks it once (SGT_CONFIG_INVALID naming the key) and returns step → lr. */
export function composeSchedule(spec: ScheduleSpec): Schedule {
  const lr = finite('lr', spec.lr, (x) => x > 0, 'a number > 0');
  const w = spec.warmup ?? { steps: 0 };
  const steps = finite('warmup.steps', w.steps, (x) => x >= 0 && Number.isInteger(x), 'an integer ≥ 0');
  const init = finite('warmup.init', w.init ?? 0, (x) => x >= 0, 'a number ≥ 0');
  if (typeof spec.main !== 'object' || spec.main === null) bad('main', spec.main, 'an object with a kind');
  const main = mainSchedule(lr, steps, spec.main);
  return (step) => (steps > 0 && step < steps ? init + ((lr - init) * (step + 1)) / steps : main(step));
}

/** The config's schedule shape (optim.*): linear warmup from 0, then constant or cosine to lr·minLrRatio. */
export interface ScheduleOptions {
  lr: number;
  warmupSteps: number;
  schedule: 'constant' | 'cosine';
  totalSteps: number;
  minLrRatio: number;
}

/** Learning rate for optimizer step `step` (0-based). */
export function learningRate(o: ScheduleOptions, step: number): number {
  const main: MainSchedule = o.schedule === 'constant'
    ? { kind: 'constant' }
    : { kind: 'cosine', floor: o.lr * o.minLrRatio, totalSteps: o.totalSteps };
  return composeSchedule({ lr: o.lr, warmup: { steps: o.warmupSteps, init: 0 }, main })(step);
}
