// The whole replica state as one flat Float32Array (parameters, σReparam buffers, AdamW moments, counters):
// what a new generation broadcasts from its most advanced rank so every replica continues bitwise identical.
import type { Trainer } from './trainer.js';

export interface StateLayout {
  names: string[];
  sizes: number[];
  /** Parameter names whose AdamW moments follow (m then v). */
  params: string[];
  total: number;
}

export function stateLayout(trainer: Trainer): StateLayout {
  const s = trainer.state;
  const names = [...s.params.keys(), ...s.buffers.keys()];
  const sizes = names.map((n) => s.shapes.get(n)!.reduce((a, b) => a * b, 1));
  const paramFloats = s.totalSize;
  const total = sizes.reduce((a, b) => a + b, 0) + 2 * paramFloats + 2;
  return { names, sizes, params: s.order, total };
}

/** Writes [tensors… | m… | v… | adam t | trainer step] into out. */
export function packState(trainer: Trainer, layout: StateLayout, out: Float32Array): Float32Array {
  const snap = trainer.state.snapshot();
  let o = 0;
  for (const n of layout.names) {
    out.set(snap.get(n)!, o);
    o += snap.get(n)!.length;
  }
  const opt = trainer.optimizer.getState();
  for (const slot of ['m', 'v']) {
    for (const n of layout.params) {
      const size = trainer.state.shapes.get(n)!.reduce((a, b) => a * b, 1);
      const arr = opt.slots.get(`${slot}/${n}`);
      if (arr) out.set(arr, o);
      else out.fill(0, o, o + size);
      o += size;
    }
  }
  out[o++] = opt.step;
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
  for (const slot of ['m', 'v']) {
    for (const n of layout.params) {
      const size = trainer.state.shapes.get(n)!.reduce((a, b) => a * b, 1);
      slots.set(`${slot}/${n}`, buf.slice(o, o + size));
      o += size;
    }
  }
  const adamStep = buf[o++];
  trainer.step = buf[o++];
  trainer.optimizer.setState({ step: adamStep, slots }, trainer.state.shapes);
}
