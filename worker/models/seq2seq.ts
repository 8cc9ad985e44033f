// Transformer encoder-decoder for translation (Vaswani et al. 2017) with σReparam on every linear, tied embeddings,
// pre/post/none/DeepNorm; the paper's base/big and deep (18L-18L … 100L-100L) settings by name; cached decoding.
import * as tf from '@tensorflow/tfjs';
import { Rng, mixSeed } from '../rng.js';
import { SpecBuilder, get, type TensorMap, type ParamSpec, type BufferSpec } from '../nn/params.js';
import type { LinearRef } from '../nn/linear.js';
import { deepNormEncoderDecoderConstants } from '../nn/layers.js';
import { powerUpdates } from './power.js';
import { SigmaError } from '../../shared/errors.js';
import { logSoftmax } from '../kernels/ops.js';
import type { IncrementalDecoder } from '../decode/beam.js';
import type { Model } from './model.js';
import {
  WIDTHS, applyStack, tidyObject, crossCaches, declareEmbedding, declareStack, embedTokens, maskOf, parseDepthVariant,
  sitesOf, stepStack, tiedLogits, type AttentionSite, type CrossCache, type ForwardResult, type ModelForwardOptions,
  type SelfCache, type StackOptions, type StackRef, type Width,
} from './transformer.js';

export interface Seq2SeqVariant extends Width {
  encoderLayers: number;
  decoderLayers: number;
}

/**
 * 'base', 'big' (6+6 layers), '<N>L-<M>L' at the paper's MT width (d512, FFN 2048, 8 heads: '18L-18L', '50L-50L',
 * '100L-100L'), '<width>-<N>L-<M>L' for another width (e.g. 'tiny-12L-12L'), and 'test' / 'tiny' / 'demo'.
 */
export function decodeSeq2SeqVariant(name: string): Seq2SeqVariant {
  const v = parseDepthVariant(name, true);
  if (!v) {
    throw new SigmaError('SGT_MODEL_VARIANT', `unknown seq2seq variant "${name}" (model.seq2seq.variant): use one of ${Object.keys(WIDTHS).join(', ')}, `
      + `"<N>L-<M>L" (d512/FFN 2048/8 heads, e.g. "18L-18L") or "<width>-<N>L-<M>L" (e.g. "tiny-12L-12L")`);
  }
  return { ...v.width, encoderLayers: v.encoder, decoderLayers: v.decoder };
}

export interface Seq2SeqOptions extends StackOptions {
  variant: string;
  seed: number;
}

/** Source batch state for incremental decoding: per layer self caches, cross keys/values, the source mask. */
export interface Seq2SeqCache {
  self: SelfCache[];
  cross: CrossCache[];
  /** [rows, S], 1 for a real source token. */
  srcMask: tf.Tensor2D;
  /** Positions decoded so far (the next token's position). */
  step: number;
}

export interface Seq2SeqModel extends Model {
  family: 'seq2seq';
  options: Readonly<Seq2SeqOptions>;
  arch: Seq2SeqVariant;
  /** Every linear layer (σReparam sites), in declaration order. */
  linears: LinearRef[];
  /** Encoder self ('self'), then decoder self ('causal'), then decoder cross ('cross'), each by layer. */
  attentionSites: AttentionSite[];
  /** inputs: src [B, S] int32, tgtIn [B, T] int32 (BOS-shifted), srcMask / tgtMask [B, ·] or srcLengths / tgtLengths [B]. */
  /** Encoder output [B, S, d] (evaluation mode). */
  encode(params: TensorMap, buffers: TensorMap, src: tf.Tensor2D, srcMask: tf.Tensor2D, temperature?: number): tf.Tensor3D;
  /** Encodes src once and returns a cached decoder over it (rows = sentences); dispose the cache's tensors when done. */
  incremental(params: TensorMap, buffers: TensorMap, src: tf.Tensor2D, srcMask: tf.Tensor2D, temperature?: number): { decoder: IncrementalDecoder<Seq2SeqCache>; cache: Seq2SeqCache };
}

export function buildSeq2Seq(o: Seq2SeqOptions): Seq2SeqModel {
  const arch = decodeSeq2SeqVariant(o.variant);
  const { dim, heads } = arch;
  const rng = new Rng(mixSeed(o.seed, 0x5e92));
  const b = new SpecBuilder();
  const linears: LinearRef[] = [];
  const embed = declareEmbedding(b, o, dim, rng);
  const dn = o.norm === 'deepnorm'
    ? deepNormEncoderDecoderConstants(arch.encoderLayers, arch.decoderLayers)
    : { encoder: { alpha: 1, beta: 1 }, decoder: { alpha: 1, beta: 1 } };
  const encoder: StackRef = declareStack(b, 'encoder', arch.encoderLayers, arch, o, false, dn.encoder, rng, linears);
  const decoder: StackRef = declareStack(b, 'decoder', arch.decoderLayers, arch, o, true, dn.decoder, rng, linears);
  const attentionSites = [...sitesOf(encoder, 'self', heads), ...sitesOf(decoder, 'causal', heads), ...sitesOf(decoder, 'cross', heads)];
  const evalRun = (temperature: number) => ({ training: false, temperature, dropout: 0, attnDropout: 0, seed: 0 });

  function encodeWith(params: TensorMap, buffers: TensorMap, src: tf.Tensor2D, srcMask: tf.Tensor2D, r: ModelForwardOptions) {
    const E = get(params, embed) as tf.Tensor2D;
    const x = embedTokens(E, src, 0, o.maxPositions);
    const xd = r.training && r.dropout > 0 ? tf.dropout(x, r.dropout, undefined, mixSeed(r.seed, 1) & 0x7fffffff) as tf.Tensor3D : x;
    return applyStack(encoder, o, params, buffers, xd, srcMask, false, r, mixSeed(r.seed, 2));
  }

  function forward(params: TensorMap, buffers0: TensorMap, inputs: Record<string, tf.Tensor>, f: ModelForwardOptions): ForwardResult {
    const src = inputs['src'] as tf.Tensor2D | undefined;
    const tgtIn = inputs['tgtIn'] as tf.Tensor2D | undefined;
    if (!src || src.rank !== 2 || !tgtIn || tgtIn.rank !== 2 || src.shape[0] !== tgtIn.shape[0]) {
      throw new Error(`seq2seq: expected inputs src [B, S] and tgtIn [B, T] int32, got src [${src?.shape}] and tgtIn [${tgtIn?.shape}]`);
    }
    const [B, S] = src.shape;
    const T = tgtIn.shape[1];
    // Training forwards take σReparam's power step first (u, v → new buffers, returned as updates).
    // The power step runs when the trainer asks (the first micro-batch of a step), as every family's does: ranks with
    // different micro-batch counts must still hold the same u/v.
    const { buffers, updates } = powerUpdates(linears, params, buffers0, f.training ? f.powerIterations ?? 0 : 0);
    const srcMask = maskOf(inputs, 'srcMask', 'srcLengths', B, S);
    const tgtMask = maskOf(inputs, 'tgtMask', 'tgtLengths', B, T);
    const enc = encodeWith(params, buffers, src, srcMask, f);
    const E = get(params, embed) as tf.Tensor2D;
    const y0 = embedTokens(E, tgtIn, 0, o.maxPositions);
    const y = f.training && f.dropout > 0 ? tf.dropout(y0, f.dropout, undefined, mixSeed(f.seed, 3) & 0x7fffffff) as tf.Tensor3D : y0;
    const dec = applyStack(decoder, o, params, buffers, y, tgtMask, true, f, mixSeed(f.seed, 4), enc.y, srcMask);
    return {
      outputs: { logits: tiedLogits(E, dec.y) },
      entropy: [...enc.diag.self, ...dec.diag.self, ...dec.diag.cross],
      maxTokenNorm: [...enc.diag.selfNorm, ...dec.diag.selfNorm, ...dec.diag.crossNorm],
      bufferUpdates: updates,
    };
  }

  function encode(params: TensorMap, buffers: TensorMap, src: tf.Tensor2D, srcMask: tf.Tensor2D, temperature = 1): tf.Tensor3D {
    return tf.tidy(() => encodeWith(params, buffers, src, tf.cast(srcMask, 'float32') as tf.Tensor2D, evalRun(temperature)).y);
  }

  function incremental(params: TensorMap, buffers: TensorMap, src: tf.Tensor2D, srcMask: tf.Tensor2D, temperature = 1) {
    const cache: Seq2SeqCache = tidyObject(() => {
      const mask = tf.cast(srcMask, 'float32') as tf.Tensor2D;
      const memory = encodeWith(params, buffers, src, mask, evalRun(temperature)).y;
      return { self: [], cross: crossCaches(decoder, params, buffers, memory), srcMask: mask, step: 0 };
    });
    const E = get(params, embed) as tf.Tensor2D;
    const dec: IncrementalDecoder<Seq2SeqCache> = {
      vocabSize: o.vocabSize,
      step: (c, tokens) => tidyObject(() => {
        const x = embedTokens(E, tokens.reshape([-1, 1]) as tf.Tensor2D, c.step, o.maxPositions); // [rows, 1, d]
        const r = stepStack(decoder, o, params, buffers, x, c.self, temperature, c.cross, c.srcMask);
        const logits = tiedLogits(E, r.y).reshape([-1, o.vocabSize]); // [rows, V]
        return { logProbs: logSoftmax(logits) as tf.Tensor2D, cache: { ...c, self: r.self, step: c.step + 1 } };
      }),
      reorder: (c, rows) => tidyObject(() => ({
        self: c.self.map((s) => ({ k: s.k && (tf.gather(s.k, rows) as tf.Tensor4D), v: s.v && (tf.gather(s.v, rows) as tf.Tensor4D) })),
        cross: c.cross.map((x) => ({ k: tf.gather(x.k, rows) as tf.Tensor4D, v: tf.gather(x.v, rows) as tf.Tensor4D })),
        srcMask: tf.gather(c.srcMask, rows) as tf.Tensor2D,
        step: c.step,
      })),
      tensors: (c) => [
        ...c.self.flatMap((s) => [s.k, s.v].filter((t): t is tf.Tensor4D => !!t)),
        ...c.cross.flatMap((x) => [x.k, x.v]),
        c.srcMask,
      ],
    };
    return { decoder: dec, cache };
  }

  return {
    family: 'seq2seq',
    options: Object.freeze({ ...o }),
    arch,
    params: b.params,
    buffers: b.buffers,
    linears,
    attentionSites,
    forward,
    architecture: () => ({
      family: 'seq2seq', variant: o.variant, ...arch, vocabSize: o.vocabSize, padId: o.padId, norm: o.norm, reparam: o.reparam,
      gammaInit: o.gammaInit, qkv: o.qkv, activation: o.activation, maxPositions: o.maxPositions, tiedEmbeddings: true, positions: 'sinusoidal',
    }),
    encode,
    incremental,
  };
}
