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

let registered = false;

/** Registers the project's formats once per process (convict's registry is global). */
export function registerFormats(): void {
  if (registered) return;
  registered = true;
  convict.addFormats({
    'finite': { validate: (v: unknown) => checkFinite(v), coerce: toNumber },
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
    'triple': {
      validate: (v: unknown) => {
        if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
          throw new Error(`must be a list of 3 finite numbers, got ${JSON.stringify(v)}`);
        }
      },
      coerce: (v: unknown) => (typeof v === 'string' ? v.split(',').map((s) => Number(s)) : v),
    },
  });
}
