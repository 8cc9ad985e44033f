// Parameter and buffer declarations: a model is a list of named specs plus a pure forward over named tensors.
import * as tf from '@tensorflow/tfjs';

/** What a parameter is, for optimizers (decay / LARS exclusion) and for export. */
export type ParamKind = 'weight' | 'bias' | 'gamma' | 'norm' | 'embed';

export interface ParamSpec {
  name: string;
  shape: number[];
  kind: ParamKind;
  init: Float32Array;
}

/** Non-trainable state saved with the parameters (σReparam's u and v). */
export interface BufferSpec {
  name: string;
  shape: number[];
  init: Float32Array;
}

/** Named tensors a forward reads; params may be tf.Variables or plain tensors (HVP passes tensors). */
export type TensorMap = ReadonlyMap<string, tf.Tensor>;

export class SpecBuilder {
  readonly params: ParamSpec[] = [];
  readonly buffers: BufferSpec[] = [];
  private readonly names = new Set<string>();

  param(name: string, shape: number[], kind: ParamKind, init: Float32Array): string {
    this.claim(name, shape, init);
    this.params.push({ name, shape, kind, init });
    return name;
  }

  buffer(name: string, shape: number[], init: Float32Array): string {
    this.claim(name, shape, init);
    this.buffers.push({ name, shape, init });
    return name;
  }

  private claim(name: string, shape: number[], init: Float32Array): void {
    if (this.names.has(name)) throw new Error(`duplicate parameter name ${name}`);
    const size = shape.reduce((a, b) => a * b, 1);
    if (init.length !== size) throw new Error(`parameter ${name}: init has ${init.length} values, shape ${shape} needs ${size}`);
    this.names.add(name);
  }
}

export function get(map: TensorMap, name: string): tf.Tensor {
  const t = map.get(name);
  if (!t) throw new Error(`missing tensor ${name}`);
  return t;
}

export function filled(n: number, value: number): Float32Array {
  return new Float32Array(n).fill(value);
}
