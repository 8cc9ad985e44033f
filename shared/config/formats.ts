// Strict convict formats: numbers that reject NaN, truncation and junk strings, so a bad value fails with its key.
import convict from 'convict';

function toNumber(v: unknown): unknown {
  if (typeof v === 'string' && v.trim() !== '') return Number(v);
  return v;
}

function show(v: unknown): string {
  return typeof v === 'number' ? String(v) : JSON.stringify(v);
}

function checkFinite(v: unknown): asserts v is number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`must be a finite number, got ${show(v)}`);
}

/** Parameter kinds optim.excludeFromAdaptation can name. */
export type ParamKind = 'weight' | 'bias' | 'gamma' | 'norm' | 'embed';

/** One entry of model.temperatureSchedule. */
export interface TemperatureEntry { fromEpoch?: number; fromStep?: number; value: number }

/** The TypeScript type of each format's value: the Config type is derived from the schema through this map. */
export interface FormatTypes {
  'positive': number;
  'non-negative': number;
  'probability': number;
  'count': number;
  'positive-int': number;
  'string': string;
  'bool': boolean;
  'temperature-schedule': TemperatureEntry[];
  'int-list': number[];
  'name-list': string[];
  'param-kinds': ParamKind[];
  'triple': [number, number, number];
}

interface FormatCheck {
  validate: (v: unknown) => void;
  coerce?: (v: unknown) => unknown;
}

let registered = false;

/** Registers the project's formats once per process (convict's registry is global). */
export function registerFormats(): void {
  if (registered) return;
  registered = true;
  // Typed by FormatTypes' keys: a format registered here without a type there (or the reverse) does not compile.
  const formats: Record<keyof FormatTypes, FormatCheck> = {
    'positive': {
      validate: (v: unknown) => { checkFinite(v); if (v <= 0) throw new Error(`must be > 0, got ${v}`); },
      coerce: toNumber,
    },
    'non-negative': {
      validate: (v: unknown) => { checkFinite(v); if (v < 0) throw new Error(`must be ≥ 0, got ${v}`); },
      coerce: toNumber,
    },
    'probability': {
      validate: (v: unknown) => { checkFinite(v); if (v < 0 || v >= 1) throw new Error(`must be in [0, 1), got ${v}`); },
      coerce: toNumber,
    },
    'count': {
      validate: (v: unknown) => {
        checkFinite(v);
        if (!Number.isInteger(v) || v < 0) throw new Error(`must be a non-negative integer, got ${v}`);
      },
      coerce: toNumber,
    },
    'positive-int': {
      validate: (v: unknown) => {
        checkFinite(v);
        if (!Number.isInteger(v) || v < 1) throw new Error(`must be a positive integer, got ${v}`);
      },
      coerce: toNumber,
    },
    'string': {
      validate: (v: unknown) => { if (typeof v !== 'string') throw new Error(`must be a string, got ${JSON.stringify(v)}`); },
    },
    'bool': {
      validate: (v: unknown) => { if (typeof v !== 'boolean') throw new Error(`must be true or false, got ${JSON.stringify(v)}`); },
      coerce: (v: unknown) => (v === 'true' ? true : v === 'false' ? false : v),
    },
    'temperature-schedule': {
      validate: (v: unknown) => {
        if (!Array.isArray(v)) throw new Error(`must be a list of {fromEpoch | fromStep, value}, got ${show(v)}`);
        v.forEach((e, i) => {
          if (!e || typeof e !== 'object') throw new Error(`entry ${i} must be a mapping, got ${show(e)}`);
          const keys = Object.keys(e);
          const bad = keys.filter((k) => !['fromEpoch', 'fromStep', 'value'].includes(k));
          if (bad.length) throw new Error(`entry ${i} has unknown key ${bad[0]} (allowed: fromEpoch, fromStep, value)`);
          const { fromEpoch, fromStep, value } = e as Record<string, unknown>;
          if ((fromEpoch === undefined) === (fromStep === undefined)) throw new Error(`entry ${i} needs exactly one of fromEpoch, fromStep`);
          const at = fromEpoch ?? fromStep;
          if (typeof at !== 'number' || !Number.isInteger(at) || at < 0) throw new Error(`entry ${i}: start must be a non-negative integer, got ${show(at)}`);
          if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new Error(`entry ${i}: value must be a positive number, got ${show(value)}`);
        });
      },
      coerce: (v: unknown) => {
        if (typeof v !== 'string') return v;
        try {
          return JSON.parse(v);
        } catch {
          return v;
        }
      },
    },
    'int-list': {
      validate: (v: unknown) => {
        if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0)) {
          throw new Error(`must be a list of non-negative integers, got ${show(v)}`);
        }
      },
      coerce: (v: unknown) => (typeof v === 'string' ? (v.trim() === '' ? [] : v.split(',').map((x) => Number(x))) : v),
    },
    'name-list': {
      validate: (v: unknown) => {
        if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'string' && /^[^\s,/\\]+$/.test(x))) {
          throw new Error(`must be a non-empty list of names (no spaces, commas or slashes), e.g. dev-clean,dev-other; got ${show(v)}`);
        }
      },
      coerce: (v: unknown) => (typeof v === 'string' ? v.split(',').map((x) => x.trim()).filter((x) => x !== '') : v),
    },
    'param-kinds': {
      validate: (v: unknown) => {
        const kinds: ParamKind[] = ['weight', 'bias', 'gamma', 'norm', 'embed'];
        if (!Array.isArray(v) || !v.every((x) => kinds.includes(x as ParamKind))) throw new Error(`must be a list of ${kinds.join(', ')}, got ${show(v)}`);
      },
      coerce: (v: unknown) => (typeof v === 'string' ? (v.trim() === '' ? [] : v.split(',').map((x) => x.trim())) : v),
    },
    'triple': {
      validate: (v: unknown) => {
        if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
          throw new Error(`must be a list of 3 finite numbers, got ${JSON.stringify(v)}`);
        }
      },
      coerce: (v: unknown) => (typeof v === 'string' ? v.split(',').map((s) => Number(s)) : v),
    },
  };
  convict.addFormats(formats);
}
