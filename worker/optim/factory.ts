// Builds an optimizer from a plain spec object (what the config holds) and a parameter-kind lookup: checks the spec,
// derives each parameter's group (weight decay, lr multiplier, LARS/LAMB exclusion) from its kind.
import { SigmaError } from '../../shared/errors.js';
import type { ParamKind } from '../nn/params.js';
import { Adagrad } from './adagrad.js';
import { AdamW } from './adamw.js';
import { Lamb } from './lamb.js';
import { Lars } from './lars.js';
import type { GroupFn, Optimizer, OptimizerName, ParamGroup } from './optimizer.js';
import { Sgd } from './sgd.js';

export const OPTIMIZER_NAMES: readonly OptimizerName[] = ['sgd', 'adamw', 'lars', 'lamb', 'adagrad'];
const KINDS: readonly ParamKind[] = ['weight', 'bias', 'gamma', 'norm', 'embed'];
/** Kinds LARS and LAMB leave out of trust-ratio adaptation and weight decay unless the spec says otherwise. */
export const DEFAULT_EXCLUDE_KINDS: readonly ParamKind[] = ['bias', 'gamma', 'norm'];

/**
 * An optimizer as plain data. Every field but `name` is optional; a field that the chosen optimizer does not use is
 * ignored (so one config block can switch optimizers by name). Unknown fields, NaN and wrong types are errors.
 */
export interface OptimizerSpec {
  /** Which optimizer. */
  name: OptimizerName;
  /** sgd, lars: momentum μ ∈ [0, 1). 0 = none. Default 0 for sgd (PyTorch), 0.9 for lars. */
  momentum?: number;
  /** sgd, lars: Nesterov momentum (needs momentum > 0). Default false. */
  nesterov?: boolean;
  /** adamw, lamb: first-moment decay β₁ ∈ [0, 1). Default 0.9. */
  beta1?: number;
  /** adamw, lamb: second-moment decay β₂ ∈ [0, 1). Default 0.999. */
  beta2?: number;
  /**
   * ε > 0 (lars may take 0). adamw: added to √v̂ (default 1e-8); lamb: same (default 1e-6); adagrad: added to
   * √accumulator (default 1e-10); lars: added to the trust ratio's denominator (default 1e-8).
   */
  eps?: number;
  /**
   * Weight-decay coefficient ≥ 0 (default 0), applied to parameters whose kind is in decayKinds (and, for lars/lamb,
   * not in the excluded kinds). adamw: decoupled, p·(1 − lr·wd); lamb: decoupled, wd·p added to the Adam direction
   * before the trust ratio; sgd, lars, adagrad: L2, wd·p added to the gradient (PyTorch's weight_decay).
   */
  weightDecay?: number;
  /** Kinds that get weight decay. Default ['weight'] (no decay on biases, γ, norms, embeddings' cls/pos). */
  decayKinds?: ParamKind[];
  /** lars: trust coefficient η in η‖w‖/(‖g‖ + wd‖w‖ + ε). Default 0.001. */
  trustCoefficient?: number;
  /** adagrad: initial accumulator value s₀ ≥ 0 (PyTorch's initial_accumulator_value). Default 0. */
  initialAccumulator?: number;
  /** Learning-rate multiplier > 0 of σReparam's γ parameters (kind 'gamma', their own group). Default 1. */
  gammaLrScale?: number;
  /** lars: kinds with no trust-ratio adaptation and no weight decay. Default ['bias', 'gamma', 'norm']. */
  lars?: { excludeKinds?: ParamKind[] };
  /** lamb: kinds with no trust-ratio adaptation and no weight decay. Default ['bias', 'gamma', 'norm']. */
  lamb?: { excludeKinds?: ParamKind[] };
}

const SPEC_KEYS = new Set<string>([
  'name', 'momentum', 'nesterov', 'beta1', 'beta2', 'eps', 'weightDecay', 'decayKinds', 'trustCoefficient',
  'initialAccumulator', 'gammaLrScale', 'lars', 'lamb',
]);

/** A value as the user wrote it (NaN stays NaN, strings keep quotes). */
function show(v: unknown): string {
  return typeof v === 'number' ? String(v) : JSON.stringify(v) ?? String(v);
}

function bad(key: string, value: unknown, want: string): never {
  throw new SigmaError('SGT_CONFIG_INVALID', `optimizer spec: ${key} = ${show(value)} is invalid: ${want}`);
}

function num(spec: OptimizerSpec, key: keyof OptimizerSpec, dflt: number, ok: (x: number) => boolean, want: string): number {
  const v = (spec as unknown as Record<string, unknown>)[key];
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) bad(key, v, want);
  return v;
}

function kinds(key: string, v: unknown, dflt: readonly ParamKind[]): Set<ParamKind> {
  if (v === undefined) return new Set(dflt);
  if (!Array.isArray(v)) bad(key, v, `a list of parameter kinds (${KINDS.join(', ')})`);
  for (const k of v) if (!KINDS.includes(k as ParamKind)) bad(key, v, `unknown kind ${JSON.stringify(k)}; kinds are ${KINDS.join(', ')}`);
  return new Set(v as ParamKind[]);
}

function excludeKinds(spec: OptimizerSpec, which: 'lars' | 'lamb'): Set<ParamKind> {
  const block = spec[which];
  if (block === undefined) return new Set(DEFAULT_EXCLUDE_KINDS);
  if (typeof block !== 'object' || block === null || Array.isArray(block)) bad(which, block, 'an object { excludeKinds }');
  for (const k of Object.keys(block)) if (k !== 'excludeKinds') bad(`${which}.${k}`, (block as Record<string, unknown>)[k], 'unknown key; the only one is excludeKinds');
  return kinds(`${which}.excludeKinds`, block.excludeKinds, DEFAULT_EXCLUDE_KINDS);
}

/** Throws SGT_CONFIG_INVALID naming the key and value for unknown keys, wrong types, NaN and out-of-range values. */
export function validateOptimizerSpec(spec: OptimizerSpec): void {
  if (typeof spec !== 'object' || spec === null) bad('spec', spec, 'an object');
  for (const k of Object.keys(spec)) {
    if (!SPEC_KEYS.has(k)) bad(k, (spec as unknown as Record<string, unknown>)[k], `unknown key; known keys are ${[...SPEC_KEYS].join(', ')}`);
  }
  if (!OPTIMIZER_NAMES.includes(spec.name)) bad('name', spec.name, `one of ${OPTIMIZER_NAMES.join(', ')}`);
  const unit = (x: number) => x >= 0 && x < 1;
  num(spec, 'momentum', 0, unit, 'a number in [0, 1)');
  num(spec, 'beta1', 0, unit, 'a number in [0, 1)');
  num(spec, 'beta2', 0, unit, 'a number in [0, 1)');
  num(spec, 'eps', 0, (x) => (spec.name === 'lars' ? x >= 0 : x > 0), spec.name === 'lars' ? 'a number ≥ 0' : 'a number > 0');
  num(spec, 'weightDecay', 0, (x) => x >= 0, 'a number ≥ 0');
  num(spec, 'trustCoefficient', 0, (x) => x > 0, 'a number > 0');
  num(spec, 'initialAccumulator', 0, (x) => x >= 0, 'a number ≥ 0');
  num(spec, 'gammaLrScale', 1, (x) => x > 0, 'a number > 0');
  if (spec.nesterov !== undefined && typeof spec.nesterov !== 'boolean') bad('nesterov', spec.nesterov, 'true or false');
  kinds('decayKinds', spec.decayKinds, ['weight']);
  excludeKinds(spec, 'lars');
  excludeKinds(spec, 'lamb');
  const usesMomentum = spec.name === 'sgd' || spec.name === 'lars';
  const momentum = spec.momentum ?? (spec.name === 'lars' ? 0.9 : 0);
  if (usesMomentum && spec.nesterov === true && momentum === 0) {
    bad('nesterov', true, `Nesterov needs momentum > 0 (momentum is ${momentum})`);
  }
}

/**
 * Each parameter's group from its kind: lrScale = gammaLrScale for 'gamma' else 1; weightDecay = spec.weightDecay for
 * kinds in decayKinds that lars/lamb do not exclude, else 0; excludeFromAdaptation for lars/lamb's excluded kinds.
 * Results are cached by name.
 */
export function paramGroups(spec: OptimizerSpec, kindOf: (name: string) => ParamKind): GroupFn {
  validateOptimizerSpec(spec);
  const decay = kinds('decayKinds', spec.decayKinds, ['weight']);
  const exclude = spec.name === 'lars' || spec.name === 'lamb' ? excludeKinds(spec, spec.name) : new Set<ParamKind>();
  const wd = spec.weightDecay ?? 0;
  const gammaLrScale = spec.gammaLrScale ?? 1;
  const cache = new Map<string, ParamGroup>();
  return (name) => {
    let g = cache.get(name);
    if (g) return g;
    const kind = kindOf(name);
    if (!KINDS.includes(kind)) {
      throw new SigmaError('SGT_CONFIG_INVALID', `parameter ${name} has kind ${JSON.stringify(kind)}; kinds are ${KINDS.join(', ')}`);
    }
    const excluded = exclude.has(kind);
    g = Object.freeze({
      lrScale: kind === 'gamma' ? gammaLrScale : 1,
      weightDecay: decay.has(kind) && !excluded ? wd : 0,
      excludeFromAdaptation: excluded,
    });
    cache.set(name, g);
    return g;
  };
}

/** The optimizer a spec names, with groups from `kindOf` (e.g. `(n) => kinds.get(n)!` over model.params). */
export function createOptimizer(spec: OptimizerSpec, kindOf: (name: string) => ParamKind): Optimizer {
  const groups = paramGroups(spec, kindOf);
  switch (spec.name) {
    case 'sgd':
      return new Sgd({ momentum: spec.momentum ?? 0, nesterov: spec.nesterov ?? false, groups });
    case 'adamw':
      return new AdamW({ beta1: spec.beta1 ?? 0.9, beta2: spec.beta2 ?? 0.999, eps: spec.eps ?? 1e-8, groups });
    case 'lars':
      return new Lars({
        momentum: spec.momentum ?? 0.9,
        nesterov: spec.nesterov ?? false,
        trustCoefficient: spec.trustCoefficient ?? 0.001,
        eps: spec.eps ?? 1e-8,
        groups,
      });
    case 'lamb':
      return new Lamb({ beta1: spec.beta1 ?? 0.9, beta2: spec.beta2 ?? 0.999, eps: spec.eps ?? 1e-6, groups });
    case 'adagrad':
      return new Adagrad({ initialAccumulator: spec.initialAccumulator ?? 0, eps: spec.eps ?? 1e-10, groups });
    default: {
      const never: never = spec.name;
      return bad('name', never, `one of ${OPTIMIZER_NAMES.join(', ')}`);
    }
  }
}
