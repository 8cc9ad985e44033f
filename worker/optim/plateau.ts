// Reduce-on-plateau: multiply the learning rate by `factor` (halve it) when the validation metric (WER) has not
// improved for `patience` evaluations in a row. A small stateful object whose state goes into checkpoints as JSON.
import { SigmaError } from '../../shared/errors.js';

export interface PlateauOptions {
  /** Learning rate before any reduction. */
  lr: number;
  /** Multiplier per reduction, in (0, 1); 0.5 halves. */
  factor: number;
  /**
   * Reduce at the patience-th consecutive evaluation without improvement (≥ 1). PyTorch's ReduceLROnPlateau reduces
   * one evaluation later: its patience p is our p + 1.
   */
  patience: number;
  /** min: lower is better (WER, loss); max: higher is better (accuracy, BLEU). */
  mode: 'min' | 'max';
  /** An evaluation improves when it beats the best by more than this: relative (rel: best·(1 ∓ threshold)) or absolute. */
  threshold: number;
  thresholdMode: 'rel' | 'abs';
  /** Evaluations after a reduction during which no new reduction happens (their bad count still resets to 0). */
  cooldown: number;
  /** The learning rate never goes below this. */
  minLr: number;
}

export const PLATEAU_DEFAULTS: Readonly<Omit<PlateauOptions, 'lr'>> = Object.freeze({
  factor: 0.5, patience: 1, mode: 'min', threshold: 0, thresholdMode: 'rel', cooldown: 0, minLr: 0,
});

/** What a checkpoint stores (plain JSON: best is null before the first evaluation). */
export interface PlateauState {
  lr: number;
  best: number | null;
  badEvaluations: number;
  cooldownLeft: number;
  reductions: number;
  evaluations: number;
}

export interface PlateauStep {
  lr: number;
  improved: boolean;
  reduced: boolean;
}

function invalid(key: string, value: unknown, want: string): never {
  throw new SigmaError('SGT_CONFIG_INVALID', `plateau schedule: ${key} = ${JSON.stringify(value) ?? String(value)} is invalid: ${want}`);
}

function checkOptions(o: PlateauOptions): void {
  const num = (key: keyof PlateauOptions, ok: (x: number) => boolean, want: string) => {
    const v = o[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) invalid(key, v, want);
  };
  num('lr', (x) => x > 0, 'a number > 0');
  num('factor', (x) => x > 0 && x < 1, 'a number in (0, 1), e.g. 0.5 to halve');
  num('patience', (x) => Number.isInteger(x) && x >= 1, 'an integer ≥ 1 (evaluations without improvement)');
  num('threshold', (x) => x >= 0, 'a number ≥ 0');
  num('cooldown', (x) => Number.isInteger(x) && x >= 0, 'an integer ≥ 0');
  num('minLr', (x) => x >= 0 && x <= o.lr, `a number in [0, lr = ${o.lr}]`);
  if (o.mode !== 'min' && o.mode !== 'max') invalid('mode', o.mode, "'min' or 'max'");
  if (o.thresholdMode !== 'rel' && o.thresholdMode !== 'abs') invalid('thresholdMode', o.thresholdMode, "'rel' or 'abs'");
}

export class PlateauSchedule {
  readonly options: Readonly<PlateauOptions>;
  private s: PlateauState;

  constructor(options: Partial<PlateauOptions> & { lr: number }, state?: PlateauState) {
    const o = { ...PLATEAU_DEFAULTS, ...options };
    checkOptions(o);
    this.options = Object.freeze(o);
    this.s = { lr: o.lr, best: null, badEvaluations: 0, cooldownLeft: 0, reductions: 0, evaluations: 0 };
    if (state !== undefined) this.restore(state);
  }

  /** The learning rate to use now. */
  get lr(): number {
    return this.s.lr;
  }

  /** lr ÷ the initial lr: a multiplier for a base schedule (warmup) the optimizer also follows. */
  get scale(): number {
    return this.s.lr / this.options.lr;
  }

  /** Feeds one evaluation's metric; returns the learning rate from now on and what happened. */
  observe(metric: number): PlateauStep {
    if (typeof metric !== 'number' || !Number.isFinite(metric)) {
      throw new SigmaError('SGT_DATA_INVALID',
        `plateau schedule: evaluation ${this.s.evaluations + 1} gave metric ${String(metric)}, not a finite number (an empty evaluation set?)`);
    }
    const s = this.s;
    s.evaluations += 1;
    const improved = s.best === null || this.better(metric, s.best);
    if (improved) {
      s.best = metric;
      s.badEvaluations = 0;
    } else {
      s.badEvaluations += 1;
    }
    if (s.cooldownLeft > 0) {
      s.cooldownLeft -= 1;
      s.badEvaluations = 0;
    }
    let reduced = false;
    if (s.badEvaluations >= this.options.patience) {
      const next = Math.max(s.lr * this.options.factor, this.options.minLr);
      reduced = next < s.lr;
      s.lr = next;
      if (reduced) s.reductions += 1;
      s.badEvaluations = 0;
      s.cooldownLeft = this.options.cooldown;
    }
    return { lr: s.lr, improved, reduced };
  }

  private better(a: number, best: number): boolean {
    const { mode, threshold, thresholdMode } = this.options;
    if (mode === 'min') return thresholdMode === 'rel' ? a < best * (1 - threshold) : a < best - threshold;
    return thresholdMode === 'rel' ? a > best * (1 + threshold) : a > best + threshold;
  }

  /** A copy of the state, JSON-serialisable. */
  state(): PlateauState {
    return { ...this.s };
  }

  /** Puts back a state from state() (a checkpoint); refuses one that does not fit these options. */
  restore(state: PlateauState): void {
    const bad = (key: string, want: string): never => {
      throw new SigmaError('SGT_CHECKPOINT_INVALID',
        `plateau schedule state: ${key} = ${JSON.stringify((state as unknown as Record<string, unknown>)?.[key])} is invalid: ${want}`);
    };
    if (typeof state !== 'object' || state === null) bad('(state)', 'an object from PlateauSchedule.state()');
    const o = this.options;
    if (!(typeof state.lr === 'number' && state.lr > 0 && state.lr <= o.lr && state.lr >= o.minLr)) bad('lr', `a number in [minLr, lr = ${o.lr}]`);
    if (!(state.best === null || (typeof state.best === 'number' && Number.isFinite(state.best)))) bad('best', 'null or a finite number');
    for (const key of ['badEvaluations', 'cooldownLeft', 'reductions', 'evaluations'] as const) {
      if (!(Number.isInteger(state[key]) && state[key] >= 0)) bad(key, 'an integer ≥ 0');
    }
    this.s = {
      lr: state.lr, best: state.best, badEvaluations: state.badEvaluations, cooldownLeft: state.cooldownLeft,
      reductions: state.reductions, evaluations: state.evaluations,
    };
  }
}
