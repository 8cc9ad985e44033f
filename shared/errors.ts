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

export function fail(code: ErrorCode, message: string, cause?: unknown): never {
  throw new SigmaError(code, message, cause === undefined ? undefined : { cause });
}
