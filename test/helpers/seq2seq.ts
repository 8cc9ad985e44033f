// Builders shared by the seq2seq / LM / beam-search tests: tiny models with their parameter and buffer maps.
import * as tf from '@tensorflow/tfjs';
import { buildSeq2Seq, type Seq2SeqModel, type Seq2SeqOptions } from '../../worker/models/seq2seq.js';
import type { StackOptions } from '../../worker/models/transformer.js';

export const PAD = 0, BOS = 1, EOS = 2;

export function stackOptions(over: Partial<StackOptions> = {}): StackOptions {
  return { vocabSize: 13, padId: PAD, norm: 'post', reparam: 'sigma', gammaInit: 'one', qkv: 'separate', activation: 'relu', maxPositions: 64, ...over };
}

export interface Built<M> { model: M; params: Map<string, tf.Tensor>; buffers: Map<string, tf.Tensor> }

/** Parameter and buffer maps from a model's specs, optionally perturbing LayerNorm/γ away from their 1/0 init. */
export function tensorsOf<M extends { params: { name: string; shape: number[]; kind: string; init: Float32Array }[]; buffers: { name: string; shape: number[]; init: Float32Array }[] }>(model: M, perturb = 0): Built<M> {
  let k = 0;
  const params = new Map(model.params.map((p) => {
    const v = perturb && (p.kind === 'norm' || p.kind === 'gamma' || p.kind === 'bias') ? p.init.map((x) => x + perturb * Math.sin(++k * 1.7)) : p.init;
    return [p.name, tf.tensor(v, p.shape)];
  }));
  const buffers = new Map(model.buffers.map((b) => [b.name, tf.tensor(b.init, b.shape)]));
  return { model, params, buffers };
}

export function seq2seq(over: Partial<Seq2SeqOptions> = {}, perturb = 0.1): Built<Seq2SeqModel> {
  return tensorsOf(buildSeq2Seq({ ...stackOptions(), variant: 'test', seed: 3, ...over }), perturb);
}

export function disposeBuilt(b: Built<unknown>): void {
  for (const t of [...b.params.values(), ...b.buffers.values()]) t.dispose();
}

export const EVAL = { training: false, temperature: 1, dropout: 0, attnDropout: 0, seed: 0 };
