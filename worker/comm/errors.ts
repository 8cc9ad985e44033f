// CommError: the one error type of the data plane (code SGT_COMM). It names who failed, in which generation and
// where in the collective, so elastic recovery can decide what to re-form without parsing messages.

import { SigmaError } from '../../shared/errors.js';

/**
 * Why a collective failed. `timeout` (no progress for timeoutMs) and `lost` (net data plane: a neighbour's connection
 * closed or was reset, which a killed process causes at once) are what a dead or stuck peer produces; the others are
 * bugs or misuse.
 */
export type CommFailure = 'timeout' | 'lost' | 'protocol' | 'closed' | 'socket' | 'usage';

export interface CommErrorDetails {
  reason: CommFailure;
  /** Rank of the process that raised the error. */
  rank: number;
  generation: number;
  /** The peer that was being waited on (predecessor when receiving, successor when sending), when there is one. */
  peer?: number;
  /** Collective name ('allreduce' | 'broadcast' | 'barrier' | 'hello' | 'bye') and its sequence number in this ring. */
  op?: string;
  seq?: number;
  step?: number;
  chunk?: number;
}

export class CommError extends SigmaError {
  readonly details: CommErrorDetails;
  constructor(details: CommErrorDetails, message: string, cause?: unknown) {
    super('SGT_COMM', message, cause === undefined ? undefined : { cause });
    this.name = 'CommError';
    this.details = details;
  }
  get reason(): CommFailure {
    return this.details.reason;
  }
  get rank(): number {
    return this.details.rank;
  }
  get generation(): number {
    return this.details.generation;
  }
}
