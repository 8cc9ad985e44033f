// The named TrainState of a replica — parameters, buffers, optimizer and EMA slots, counters, the step digest and the
// plateau schedule's state (so a joining replica takes the same lr) —
// with ONE toNamed()/fromNamed() serving both checkpoints and the rank-0 broadcast of a new generation. The broadcast
// packs it into one Float32Array after a layout hash that every receiver checks before applying anything.
import { SigmaError } from '../../shared/errors.js';
import { parseSlotKey } from '../optim/optimizer.js';
import type { PlateauState } from '../optim/plateau.js';
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
  /** optim.schedule plateau: the schedule's state (lr, best, counters); null without one. */
  plateau: PlateauState | null;
}

/** Copies the replica out (awaits one packed readback per group). */
export async function toNamed(trainer: Trainer): Promise<NamedState> {
  const step = trainer.step;
  const digest = trainer.digest;
  const [model, opt, ema] = await Promise.all([trainer.state.snapshot(), trainer.optimizer.getState(), trainer.ema?.getState()]);
  return { model, slots: new Map([...opt.slots, ...(ema?.slots ?? [])]), step, optimizerStep: opt.step, emaUpdates: ema?.step ?? null, digest, plateau: trainer.plateau?.state() ?? null };
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
  if (trainer.plateau && s.plateau) trainer.plateau.restore(s.plateau);
}

export interface StateLayout {
  /** Model tensors then slots, each with its float count. */
  entries: Array<{ group: 'model' | 'slots'; name: string; size: number }>;
  /** Hash of the names, sizes and order: replicas that would misread each other's buffer differ here. */
  hash: string;
  /** Whether the buffer carries a plateau schedule state (PLATEAU_FLOATS after the digest). */
  plateau: boolean;
  /**
   * Floats of the broadcast buffer: [layout hash (4) | tensors… | step, optimizer step, EMA updates | digest (4) |
   * plateau state (PLATEAU_FLOATS, when there is a plateau schedule)].
   */
  total: number;
}

/** The broadcast layout of this replica (all slots of the optimizer and EMA, zeros where a slot is not yet kept). */
export function stateLayout(trainer: Trainer): StateLayout {
  const s = trainer.state;
  const entries: StateLayout['entries'] = [...s.params.keys(), ...s.buffers.keys()].map((name) => ({ group: 'model' as const, name, size: sizeOf(s.shapes.get(name)!) }));
  for (const slot of [...trainer.optimizer.slotNames, ...(trainer.ema ? ['e'] : [])]) {
    for (const p of s.order) entries.push({ group: 'slots', name: `${slot}/${p}`, size: sizeOf(s.shapes.get(p)!) });
  }
  const plateau = trainer.plateau !== undefined;
  const text = entries.map((e) => `${e.group}:${e.name}:${e.size}`).join('\n') + (plateau ? '\nplateau' : '');
  const bytes = new TextEncoder().encode(text);
  const words = new Uint8Array(Math.ceil(bytes.length / 4) * 4);
  words.set(bytes);
  const hash = hash64(new Uint32Array(words.buffer));
  return { entries, hash, plateau, total: 4 + entries.reduce((a, e) => a + e.size, 0) + 3 + 4 + (plateau ? PLATEAU_FLOATS : 0) };
}

/** The plateau state's six float64 fields (best: NaN for null), each as four 16-bit integers: exact in float32. */
const PLATEAU_FIELDS = ['lr', 'best', 'badEvaluations', 'cooldownLeft', 'reductions', 'evaluations'] as const;
export const PLATEAU_FLOATS = PLATEAU_FIELDS.length * 4;

function plateauToFloats(p: PlateauState): number[] {
  const v = new DataView(new ArrayBuffer(8));
  return PLATEAU_FIELDS.flatMap((k) => {
    v.setFloat64(0, k === 'best' ? (p.best ?? Number.NaN) : p[k]);
    return [0, 2, 4, 6].map((o) => v.getUint16(o));
  });
}

function plateauFromFloats(f: ArrayLike<number>): PlateauState {
  const v = new DataView(new ArrayBuffer(8));
  const x = PLATEAU_FIELDS.map((_, i) => {
    for (let j = 0; j < 4; j++) v.setUint16(2 * j, Math.round(f[4 * i + j]!));
    return v.getFloat64(0);
  });
  return { lr: x[0]!, best: Number.isNaN(x[1]!) ? null : x[1]!, badEvaluations: x[2]!, cooldownLeft: x[3]!, reductions: x[4]!, evaluations: x[5]! };
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
  if (layout.plateau) {
    if (!named.plateau) throw new Error('packState: the layout carries a plateau state, the named state has none');
    out.set(plateauToFloats(named.plateau), o);
  }
  return out;
}

/** The broadcast buffer → NamedState, after checking that the sender's layout hash is ours. */
export function unpackState(buf: Float32Array, layout: StateLayout, withEma: boolean): NamedState {
  const theirs = digestFromFloats(buf.subarray(0, 4));
  if (theirs !== layout.hash || buf.length !== layout.total) {
    throw new SigmaError('SGT_STATE_LAYOUT', `the broadcast state has layout ${theirs} (${buf.length} floats), this replica expects ${layout.hash} (${layout.total}): the workers run different model, optimizer or EMA settings — start every worker with the same config`);
  }
  let o = 4;
  const named: NamedState = { model: new Map(), slots: new Map(), step: 0, optimizerStep: 0, emaUpdates: null, digest: '', plateau: null };
  for (const e of layout.entries) {
    named[e.group].set(e.name, buf.slice(o, o + e.size));
    o += e.size;
  }
  named.step = buf[o++];
  named.optimizerStep = buf[o++];
  const ema = buf[o++];
  named.emaUpdates = withEma ? ema : null;
  named.digest = digestFromFloats(buf.subarray(o, o + 4));
  o += 4;
  if (layout.plateau) named.plateau = plateauFromFloats(buf.subarray(o, o + PLATEAU_FLOATS));
  return named;
}
