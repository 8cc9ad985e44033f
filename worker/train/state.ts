// Training state of one replica: parameters as tf.Variables, σReparam buffers, and name-ordered flat views.
import * as tf from '@tensorflow/tfjs';
import { readNamed } from './readback.js';
import type { ParamSpec, BufferSpec } from '../nn/params.js';

export class ReplicaState {
  readonly params = new Map<string, tf.Variable>();
  readonly buffers = new Map<string, tf.Tensor>();
  /** Parameter names in a fixed order: gradients are flattened and all-reduced in this order. */
  readonly order: string[];
  readonly shapes = new Map<string, number[]>();
  readonly sizes: number[];
  readonly totalSize: number;

  constructor(params: ParamSpec[], buffers: BufferSpec[]) {
    for (const p of params) {
      this.params.set(p.name, tf.variable(tf.tensor(p.init, p.shape), true));
      this.shapes.set(p.name, p.shape);
    }
    for (const b of buffers) {
      this.buffers.set(b.name, tf.tensor(b.init, b.shape));
      this.shapes.set(b.name, b.shape);
    }
    this.order = params.map((p) => p.name);
    this.sizes = params.map((p) => p.init.length);
    this.totalSize = this.sizes.reduce((a, b) => a + b, 0);
  }

  setBuffer(name: string, t: tf.Tensor): void {
    const old = this.buffers.get(name);
    if (!old) throw new Error(`unknown buffer ${name}`);
    this.buffers.set(name, t);
    if (old !== t) old.dispose();
  }

  /** Copies every parameter and buffer out (name → values; parameters first), in one packed readback. */
  snapshot(): Promise<Map<string, Float32Array>> {
    return readNamed(new Map<string, tf.Tensor>([...this.params, ...this.buffers]));
  }

  /** Replaces values from a snapshot; every name must be known and shapes must match. */
  restore(values: ReadonlyMap<string, Float32Array>): void {
    for (const [n, arr] of values) {
      const shape = this.shapes.get(n);
      if (!shape) throw new Error(`state names unknown tensor ${n}`);
      const size = shape.reduce((a, b) => a * b, 1);
      if (arr.length !== size) throw new Error(`tensor ${n}: ${arr.length} values, expected ${size} for shape [${shape}]`);
      const p = this.params.get(n);
      if (p) {
        const t = tf.tensor(arr, shape);
        p.assign(t);
        t.dispose();
      } else this.setBuffer(n, tf.tensor(arr, shape));
    }
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
    for (const t of this.buffers.values()) t.dispose();
  }
}
