// Decoder-only Transformer language model: the seq2seq decoder stack without cross attention (causal), tied
// embeddings, sinusoidal positions, σReparam on every linear; cached incremental decoding for generation.
import * as tf from '@tensorflow/tfjs';
import { Rng, mixSeed } from '../rng.js';
import { SpecBuilder, get, type TensorMap, type ParamSpec, type BufferSpec } from '../nn/params.js';
import type { LinearRef } from '../nn/linear.js';
import { deepNormConstants } from '../nn/layers.js';
import { SigmaError } from '../../shared/errors.js';
import { logSoftmax } from '../kernels/ops.js';
import { powerUpdates } from './power.js';
import type { IncrementalDecoder } from '../decode/beam.js';
import type { Model } from './model.js';
import {
  WIDTHS, applyStack, tidyObject, declareEmbedding, declareStack, embedTokens, maskOf, parseDepthVariant, sitesOf,
  stepStack, tiedLogits, type AttentionSite, type ForwardResult, type ModelForwardOptions, type SelfCache,
  type StackOptions, type Width,
} from './transformer.js';

export interface LmVariant extends Width {
  decoderLayers: number;
}

/**
 * A width name ('test', 'tiny', 'demo', 'base' = 6 layers of d512, 'big'), '<M>L' at d512/FFN 2048/8 heads (e.g.
 * '32L', the paper's WikiText-103 depth), or '<width>-<M>L'.
 */
export function decodeLmVariant(name: string): LmVariant {
  const v = parseDepthVariant(name, false);
  if (!v) {
    throw new SigmaError('SGT_MODEL_VARIANT', `unknown language-model variant "${name}" (model.lm.variant): use one of ${Object.keys(WIDTHS).join(', ')}, `
      + `"<M>L" (d512/FFN 2048/8 heads, e.g. "32L") or "<width>-<M>L" (e.g. "tiny-4L")`);
  }
  return { ...v.width, decoderLayers: v.decoder };
}

export interface LmOptions extends StackOptions {
  variant: string;
  seed: number;
}

export interface LmCache {
  self: SelfCache[];
  step: number;
}

export interface LmModel extends Model {
  family: 'lm';
  options: Readonly<LmOptions>;
  arch: LmVariant;
  linears: LinearRef[];
  /** One causal site per layer. */
  attentionSites: AttentionSite[];
  /** inputs: tokens [B, T] int32, optional mask [B, T] or lengths [B] → outputs.logits [B, T, V] (position t predicts t+1). */
  /** A cached decoder starting from an empty prefix (feed the first token, e.g. BOS, at step 0). */
  incremental(params: TensorMap, buffers: TensorMap, temperature?: number): { decoder: IncrementalDecoder<LmCache>; cache: LmCache };
}

export function buildLm(o: LmOptions): LmModel {
  const arch = decodeLmVariant(o.variant);
  const rng = new Rng(mixSeed(o.seed, 0x1a9));
  const b = new SpecBuilder();
  const linears: LinearRef[] = [];
  const embed = declareEmbedding(b, o, arch.dim, rng);
  // Decoder-only DeepNorm uses the encoder-only constants (the stack has one kind of layer): α = (2M)^¼, β = (8M)^−¼.
  const dn = o.norm === 'deepnorm' ? deepNormConstants(arch.decoderLayers) : { alpha: 1, beta: 1 };
  const decoder = declareStack(b, 'decoder', arch.decoderLayers, arch, o, false, dn, rng, linears);

  function forward(params: TensorMap, buffers0: TensorMap, inputs: Record<string, tf.Tensor>, f: ModelForwardOptions): ForwardResult {
    const tokens = inputs['tokens'] as tf.Tensor2D | undefined;
    if (!tokens || tokens.rank !== 2) throw new Error(`lm: expected input tokens [B, T] int32, got [${tokens?.shape}]`);
    const [B, T] = tokens.shape;
    // σReparam's power step only where the trainer asks for it (the first micro-batch of a step): a later
    // micro-batch that advanced u/v again would leave replicas with different micro-batch counts out of step.
    const { buffers, updates } = powerUpdates(linears, params, buffers0, f.training ? f.powerIterations ?? 0 : 0);
    const mask = maskOf(inputs, 'mask', 'lengths', B, T);
    const E = get(params, embed) as tf.Tensor2D;
    const x0 = embedTokens(E, tokens, 0, o.maxPositions);
    const x = f.training && f.dropout > 0 ? tf.dropout(x0, f.dropout, undefined, mixSeed(f.seed, 1) & 0x7fffffff) as tf.Tensor3D : x0;
    const dec = applyStack(decoder, o, params, buffers, x, mask, true, f, mixSeed(f.seed, 2));
    return { outputs: { logits: tiedLogits(E, dec.y) }, entropy: dec.diag.self, maxTokenNorm: dec.diag.selfNorm, bufferUpdates: updates };
  }

  function incremental(params: TensorMap, buffers: TensorMap, temperature = 1) {
    // The cache starts empty: its row count is set by the first step's tokens.
    const E = get(params, embed) as tf.Tensor2D;
    const dec: IncrementalDecoder<LmCache> = {
      vocabSize: o.vocabSize,
      step: (c, tokens) => tidyObject(() => {
        const x = embedTokens(E, tokens.reshape([-1, 1]) as tf.Tensor2D, c.step, o.maxPositions);
        const r = stepStack(decoder, o, params, buffers, x, c.self, temperature);
        return { logProbs: logSoftmax(tiedLogits(E, r.y).reshape([-1, o.vocabSize])) as tf.Tensor2D, cache: { self: r.self, step: c.step + 1 } };
      }),
      reorder: (c, idx) => tidyObject(() => ({
        self: c.self.map((s) => ({ k: s.k && (tf.gather(s.k, idx) as tf.Tensor4D), v: s.v && (tf.gather(s.v, idx) as tf.Tensor4D) })),
        step: c.step,
      })),
      tensors: (c) => c.self.flatMap((s) => [s.k, s.v].filter((t): t is tf.Tensor4D => !!t)),
    };
    return { decoder: dec, cache: { self: [], step: 0 } };
  }

  return {
    family: 'lm',
    options: Object.freeze({ ...o }),
    arch,
    params: b.params,
    buffers: b.buffers,
    linears,
    attentionSites: sitesOf(decoder, 'causal', arch.heads),
    forward,
    architecture: () => ({
      family: 'lm', variant: o.variant, ...arch, vocabSize: o.vocabSize, padId: o.padId, norm: o.norm, reparam: o.reparam,
      gammaInit: o.gammaInit, qkv: o.qkv, activation: o.activation, maxPositions: o.maxPositions, tiedEmbeddings: true, positions: 'sinusoidal',
    }),
    incremental,
  };
}
