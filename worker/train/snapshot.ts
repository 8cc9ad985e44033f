// The whole replica state as one flat Float32Array (parameters, σReparam buffers, AdamW moments, counters):
// what a new generation broadcasts from its most advanced rank so every replica continues bitwise identical.
import type { Trainer } from './trainer.js';

export interface StateLayout {
  names: string[];
  sizes: number[];
  /** Floats of each tensor by name. */
  sizeOf: ReadonlyMap<string, number>;
  /** Parameter names whose AdamW moments follow (m then v). */
  params: string[];
  total: number;
}

export function stateLayout(trainer: Trainer): StateLayout {
  const s = trainer.state;
  const names = [...s.params.keys(), ...s.buffers.keys()];
  const sizes = names.map((n) => s.shapes.get(n)!.reduce((a, b) => a * b, 1));
  const paramFloats = s.totalSize;
  const slots = trainer.optimizer.slotNames.length + (trainer.ema ? 1 : 0);
  const total = sizes.reduce((a, b) => a + b, 0) + slots * paramFloats + 3;
  return { names, sizes, sizeOf: new Map(names.map((n, i) => [n, sizes[i]])), params: s.order, total };
}

/** Writes [tensors… | optimizer slots (each over all parameters)… | EMA… | optimizer t | EMA updates | trainer step]. */
export function packState(trainer: Trainer, layout: StateLayout, out: Float32Array): Float32Array {
  const snap = trainer.state.snapshot();
  let o = 0;
  for (const n of layout.names) {
    out.set(snap.get(n)!, o);
    o += snap.get(n)!.length;
  }
  const opt = trainer.optimizer.getState();
  const ema = trainer.ema?.getState();
  const slotted: Array<[string, Map<string, Float32Array>]> = trainer.optimizer.slotNames.map((sl: string) => [sl, opt.slots]);
  if (ema) slotted.push(['e', ema.slots]);
  for (const [slot, map] of slotted) {
    for (const n of layout.params) {
      const size = layout.sizeOf.get(n)!;
      const arr = map.get(`${slot}/${n}`);
      if (arr) out.set(arr, o);
      else out.fill(0, o, o + size);
      o += size;
    }
  }
  out[o++] = opt.step;
  out[o++] = ema?.step ?? 0;
  out[o++] = trainer.step;
  return out;
}

export function unpackState(trainer: Trainer, layout: StateLayout, buf: Float32Array): void {
  let o = 0;
  const values = new Map<string, Float32Array>();
  for (let i = 0; i < layout.names.length; i++) {
    values.set(layout.names[i], buf.slice(o, o + layout.sizes[i]));
    o += layout.sizes[i];
  }
  trainer.state.restore(values);
  const slots = new Map<string, Float32Array>();
  const emaSlots = new Map<string, Float32Array>();
  const names = [...trainer.optimizer.slotNames, ...(trainer.ema ? ['e'] : [])];
  for (const slot of names) {
    for (const n of layout.params) {
      const size = layout.sizeOf.get(n)!;
      (slot === 'e' ? emaSlots : slots).set(`${slot}/${n}`, buf.slice(o, o + size));
      o += size;
    }
  }
  const optStep = buf[o++];
  const emaStep = buf[o++];
  trainer.step = buf[o++];
  trainer.optimizer.setState({ step: optStep, slots }, trainer.state.shapes);
  trainer.ema?.setState({ step: emaStep, slots: emaSlots }, trainer.state.shapes);
}
