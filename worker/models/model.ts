// The Model seam: what every model family (ViT, seq2seq, speech, …) gives the trainer — named parameters and
// buffers, its σReparam sites, its attention sites, and a pure forward over named inputs.
import type * as tf from '@tensorflow/tfjs';
import type { BufferSpec, ParamSpec, TensorMap } from '../nn/params.js';
import type { LinearRef } from '../nn/linear.js';

import type { AttnKind } from '../../shared/sites.js';

export type { AttnKind };

/** Where a site's Q and K come from, for the Theorem 3.1 bound: columns [offset, offset + dim) of a linear's [in, out] weight. */
export interface QkSource {
  q: LinearRef;
  qOffset: number;
  k: LinearRef;
  kOffset: number;
  /** Model width entering the projections and the per-head width. */
  dim: number;
  headDim: number;
}

export interface AttentionSite {
  /** Parameter path of the attention, e.g. "blocks.3.attn". */
  name: string;
  layer: number;
  kind: AttnKind;
  heads: number;
  /** Key length for the Theorem 3.1 bound, when static. */
  tokens?: number;
  /** Q/K projections for the bound; absent: the site has no bound. */
  qk?: QkSource;
}

export interface ForwardResult {
  /** Family-specific: classification 'logits' [B, C]; sequence models 'logits' [B, T, V]. */
  outputs: Record<string, tf.Tensor>;
  /** One per attention site, same order as attentionSites: mean entropy per head [heads], nats. */
  entropy: tf.Tensor1D[];
  /** One per attention site: the largest token norm entering it. */
  maxTokenNorm: tf.Scalar[];
  /** Buffers this forward advanced (σReparam u/v in a training forward with power iterations): the caller stores them. */
  bufferUpdates: Map<string, tf.Tensor>;
}

export interface ModelForwardOptions {
  training: boolean;
  /** Global attention temperature τ. */
  temperature: number;
  dropout: number;
  attnDropout: number;
  /** Seed of this forward's random masks; derive from (seed, rank, step, micro-batch). */
  seed: number;
  /**
   * σReparam power-iteration steps in this forward (the first micro-batch of a training step; 0 keeps u/v, as for
   * later micro-batches, evaluation and Hessian-vector products). Default 0.
   */
  powerIterations?: number;
}

export interface Model {
  family: string;
  params: ParamSpec[];
  buffers: BufferSpec[];
  /** The σReparam (and stats) sites, in declaration order. */
  linears: LinearRef[];
  attentionSites: AttentionSite[];
  forward(params: TensorMap, buffers: TensorMap, inputs: Record<string, tf.Tensor>, options: ModelForwardOptions): ForwardResult;
  /** Fingerprint for checkpoint resume checks: everything that fixes the parameter layout and meaning. */
  architecture(): Record<string, unknown>;
}
