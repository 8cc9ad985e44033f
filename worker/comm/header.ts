// Data-plane frame header: [header (msgpackr map), payload (raw bytes)?]. Encoding, and validation of what a
// peer sent, kept pure so a malformed frame is a named error and never a crash.

import { Packr } from 'msgpackr';

export const OPS = ['hello', 'allreduce', 'broadcast', 'barrier', 'bye'] as const;
export type OpName = (typeof OPS)[number];

export interface FrameHeader {
  /** Ring generation; frames of any other generation are dropped by the receiver. */
  gen: number;
  op: OpName;
  /** Collective sequence number within the ring (the same on all ranks: collectives are called in the same order). */
  seq: number;
  /** Step within the collective (all-reduce: 0..2(N-1)-1; broadcast: 0 data, 1 acknowledgement; barrier: 0..N-2). */
  step: number;
  chunk: number;
  /** Sender's rank (must be the receiver's predecessor). */
  from: number;
  /** Length of the whole collective's array (elements for all-reduce, bytes for broadcast); ranks must agree. */
  len: number;
}

// Plain maps, no record extension: any msgpack reader can decode a header captured off the wire.
const packr = new Packr({ useRecords: false });

/** Headers are < 128 bytes, which zeromq copies at send(), so the returned Buffer need not outlive the call. */
export function encodeHeader(h: FrameHeader): Buffer {
  return packr.pack(h);
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Decode and validate; returns a reason string instead of throwing for a malformed header. */
export function decodeHeader(frame: Uint8Array): FrameHeader | string {
  let v: unknown;
  try {
    v = packr.unpack(frame);
  } catch (e) {
    return `undecodable header (${frame.byteLength} bytes): ${(e as Error).message}`;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return `header is not a map: ${JSON.stringify(v)}`;
  const h = v as Record<string, unknown>;
  for (const k of ['gen', 'seq', 'step', 'chunk', 'from', 'len'] as const) {
    if (!isInt(h[k])) return `header field ${k}=${JSON.stringify(h[k])} is not a non-negative integer`;
  }
  if (!OPS.includes(h.op as OpName)) return `header field op=${JSON.stringify(h.op)} is not one of ${OPS.join('|')}`;
  return h as unknown as FrameHeader;
}
