// The named TrainState of a replica — parameters, buffers, optimizer and EMA slots, counters and the step digest —
// with ONE toNamed()/fromNamed() serving both checkpoints and the rank-0 broadcast of a new generation. The broadcast
// packs it into one Float32Array after a layout hash that every receiver checks before applying anything.
import { SigmaError } from '../../shared/errors.js';
import { parseSlotKey } from '../optim/optimizer.js';
import type { Trainer } from './trainer.js';
import { digestFromFloats, digestToFloats, hash64 } from './digest.js';

export interface NamedState {
  /** Parameters and buffers by name. */
  model: Map<string, Float32Array>;
  /** Optimizer slots "<slot>/<param>" and EMA slots "e/<param>". */
  slots: Map<string, Float32Array>;
  step: number;
  optimizerStep: number;
  /** EMA updates, null without an EMA. */
  emaUpdates: number | null;
  digest: string;
}

/** Copies the replica out (awaits one packed readback per group). */
export async function toNamed(trainer: Trainer): Promise<NamedState> {
  const step = trainer.step;
  const digest = trainer.digest;
  const [model, opt, ema] = await Promise.all([trainer.state.snapshot(), trainer.optimizer.getState(), trainer.ema?.getState()]);
  return { model, slots: new Map([...opt.slots, ...(ema?.slots ?? [])]), step, optimizerStep: opt.step, emaUpdates: ema?.step ?? null, digest };
}

/** Replaces the replica's state; every tensor must be known and fit its shape (callers check the architecture first). */
export function fromNamed(trainer: Trainer, s: NamedState): void {
  trainer.state.restore(s.model);
  const slots = new Map<string, Float32Array>();
  const emaSlots = new Map<string, Float32Array>();
  for (const [k, a] of s.slots) (parseSlotKey(k).slot === 'e' ? emaSlots : slots).set(k, a);
  trainer.optimizer.setState({ step: s.optimizerStep, slots }, trainer.state.shapes);
  if (trainer.ema) trainer.ema.setState({ step: s.emaUpdates ?? 0, slots: emaSlots }, trainer.state.shapes);
  trainer.step = s.step;
  trainer.digest = s.digest;
}

export interface StateLayout {
  /** Model tensors then slots, each with its float count. */
  entries: Array<{ group: 'model' | 'slots'; name: string; size: number }>;
  /** Hash of the names, sizes and order: replicas that would misread each other's buffer differ here. */
  hash: string;
  /** Floats of the broadcast buffer: [layout hash (4) | tensors… | step, optimizer step, EMA updates | digest (4)]. */
  total: number;
}

/** The broadcast layout of this replica (all slots of the optimizer and EMA, zeros where a slot is not yet kept). */
export function stateLayout(trainer: Trainer): StateLayout {
  const s = trainer.state;
  const entries: StateLayout['entries'] = [...s.params.keys(), ...s.buffers.keys()].map((name) => ({ group: 'model' as const, name, size: sizeOf(s.shapes.get(name)!) }));
  for (const slot of [...trainer.optimizer.slotNames, ...(trainer.ema ? ['e'] : [])]) {
    for (const p of s.order) entries.push({ group: 'slots', name: `${slot}/${p}`, size: sizeOf(s.shapes.get(p)!) });
  }
  const text = entries.map((e) => `${e.group}:${e.name}:${e.size}`).join('\n');
  const bytes = new TextEncoder().encode(text);
  const words = new Uint8Array(Math.ceil(bytes.length / 4) * 4);
  words.set(bytes);
  const hash = hash64(new Uint32Array(words.buffer));
  return { entries, hash, total: 4 + entries.reduce((a, e) => a + e.size, 0) + 3 + 4 };
}

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** NamedState → the broadcast buffer. */
export function packState(named: NamedState, layout: StateLayout, out: Float32Array = new Float32Array(layout.total)): Float32Array {
  let o = 0;
  for (const f of digestToFloats(layout.hash)) out[o++] = f;
  for (const e of layout.entries) {
    const arr = named[e.group].get(e.name);
    if (arr) out.set(arr, o);
    else out.fill(0, o, o + e.size);
    o += e.size;
  }
  out[o++] = named.step;
  out[o++] = named.optimizerStep;
  out[o++] = named.emaUpdates ?? 0;
  for (const f of digestToFloats(named.digest)) out[o++] = f;
  return out;
}

/** The broadcast buffer → NamedState, after checking that the sender's layout hash is ours. */
export function unpackState(buf: Float32Array, layout: StateLayout, withEma: boolean): NamedState {
  const theirs = digestFromFloats(buf.subarray(0, 4));
  if (theirs !== layout.hash || buf.length !== layout.total) {
    throw new SigmaError('SGT_STATE_LAYOUT', `the broadcast state has layout ${theirs} (${buf.length} floats), this replica expects ${layout.hash} (${layout.total}): the workers run different model, optimizer or EMA settings — start every worker with the same config`);
  }
  let o = 4;
  const named: NamedState = { model: new Map(), slots: new Map(), step: 0, optimizerStep: 0, emaUpdates: null, digest: '' };
  for (const e of layout.entries) {
    named[e.group].set(e.name, buf.slice(o, o + e.size));
    o += e.size;
  }
  named.step = buf[o++];
  named.optimizerStep = buf[o++];
  const ema = buf[o++];
  named.emaUpdates = withEma ? ema : null;
  named.digest = digestFromFloats(buf.subarray(o, o + 4));
  return named;
}
