// msgpackr encoding of control messages with validation on receipt: garbage yields an error value, never a throw.
import { Packr } from 'msgpackr';
import { Message, MAX_MESSAGE_BYTES, PROTOCOL_VERSION, type Outgoing } from './messages.js';

// Plain maps (no records/structures): any peer that speaks MessagePack can read our messages.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

let nextId = 1;

export function encode(msg: Outgoing): Buffer {
  return packr.pack({ ...msg, v: PROTOCOL_VERSION, id: nextId++ });
}

export type Decoded = { ok: true; msg: Message } | { ok: false; error: string; id: number | null };

/** Decodes and validates one frame; every failure is described (size, MessagePack, version, schema). */
export function decode(frame: Uint8Array): Decoded {
  if (frame.byteLength > MAX_MESSAGE_BYTES) return { ok: false, error: `message of ${frame.byteLength} bytes exceeds the ${MAX_MESSAGE_BYTES}-byte limit`, id: null };
  let raw: unknown;
  try {
    raw = packr.unpack(frame);
  } catch (e) {
    return { ok: false, error: `not MessagePack: ${(e as Error).message}`, id: null };
  }
  const rid = raw && typeof raw === 'object' && typeof (raw as { id?: unknown }).id === 'number' ? (raw as { id: number }).id : null;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return { ok: false, error: 'message is not a map', id: rid };
  const v = (raw as { v?: unknown }).v;
  if (v !== PROTOCOL_VERSION) {
    return { ok: false, error: `protocol version ${JSON.stringify(v)} is not ${PROTOCOL_VERSION}: run the same sigmatrain version on coordinator and workers`, id: rid };
  }
  const parsed = Message.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const type = (raw as { type?: unknown }).type;
    return { ok: false, error: `invalid ${typeof type === 'string' ? type.slice(0, 40) : 'message'}: ${issue.path.join('.') || '(root)'}: ${issue.message}`, id: rid };
  }
  return { ok: true, msg: parsed.data };
}
