// Error catalogue: stable codes grouped by subsystem; every message names the offending value and what to do.

export type ErrorCode =
  | 'SGT_CONFIG_INVALID'
  | 'SGT_CONFIG_FILE'
  | 'SGT_BACKEND_UNAVAILABLE'
  | 'SGT_MODEL_VARIANT'
  | 'SGT_DATA_INVALID'
  // text corpora (worker/data/wmt): mismatched sides, undecodable bytes, empty or missing files, vocabulary, cache
  | 'SGT_CORPUS_MISMATCH'
  | 'SGT_CORPUS_ENCODING'
  | 'SGT_CORPUS_EMPTY'
  | 'SGT_CORPUS_NOT_FOUND'
  | 'SGT_CORPUS_FORMAT'
  | 'SGT_VOCAB'
  | 'SGT_BATCH_BUDGET'
  | 'SGT_NONFINITE_LOSS'
  | 'SGT_CTC_SECOND_ORDER'
  | 'SGT_CHECKPOINT_INVALID'
  | 'SGT_PROTOCOL'
  | 'SGT_COMM'
  | 'SGT_REPLICA_MISMATCH'
  | 'SGT_STATE_LAYOUT'
  | 'SGT_STEP_DIGEST'
  | 'SGT_CLI_USAGE'
  | 'SGT_METRICS'
  | 'SGT_REPORT';

export class SigmaError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.code = code;
    this.name = 'SigmaError';
  }
}

/**
 * Codes that name bad input (config, flags, data, files): the same process started again fails the same way, so a
 * supervisor must not restart it. Every other code (comm, protocol, digests, non-finite loss) may pass on a restart.
 */
const INPUT_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'SGT_CONFIG_INVALID', 'SGT_CONFIG_FILE', 'SGT_BACKEND_UNAVAILABLE', 'SGT_MODEL_VARIANT', 'SGT_DATA_INVALID',
  'SGT_CORPUS_MISMATCH', 'SGT_CORPUS_ENCODING', 'SGT_CORPUS_EMPTY', 'SGT_CORPUS_NOT_FOUND', 'SGT_CORPUS_FORMAT',
  'SGT_VOCAB', 'SGT_BATCH_BUDGET', 'SGT_CTC_SECOND_ORDER', 'SGT_CLI_USAGE',
]);

/** Exit status of a worker stopped by bad input (sysexits' EX_CONFIG): `launch` and `run` do not restart it. */
export const EXIT_INPUT_ERROR = 78;

/** Whether `e` is bad input that a restart cannot cure. */
export function isInputError(e: unknown): e is SigmaError {
  return e instanceof SigmaError && INPUT_CODES.has(e.code);
}

export function fail(code: ErrorCode, message: string, cause?: unknown): never {
  throw new SigmaError(code, message, cause === undefined ? undefined : { cause });
}
