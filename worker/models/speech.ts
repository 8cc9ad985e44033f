// The paper's CTC acoustic model (Zhai et al. 2023, Appendix E): a strided 1-D convolution front-end over log-mel
// frames, a Transformer encoder (post | pre | none normalisation, σReparam on every linear), CAPE or sinusoidal
// positions, a linear CTC head over 28 letter tokens + blank. Variants by name; forward is pure.
import * as tf from '@tensorflow/tfjs';

import { SigmaError } from '../../shared/errors.js';
import { declareLinear, applyLinear, type LinearRef, type ReparamMode } from '../nn/linear.js';
import {
  declareBlock, applyBlock, declareLayerNorm, applyLayerNorm, type BlockRef, type NormMode, type NormRef,
} from '../nn/layers.js';
import { SpecBuilder, get, type TensorMap, type ParamSpec, type BufferSpec } from '../nn/params.js';
import { Rng, mixSeed } from '../rng.js';
import { powerUpdates } from './power.js';
import type { AttentionSite, ForwardResult, Model, ModelForwardOptions, QkSource } from './model.js';
import { BLANK } from '../decode/ctc.js';

export interface SpeechVariant {
  dim: number;
  depth: number;
  heads: number;
  mlpDim: number;
}

/** 'paper': the LibriSpeech model of Appendix E; 'bench': its shape scaled down for CPU timing; 'demo', 'test': small. */
export const SPEECH_VARIANTS: Readonly<Record<string, SpeechVariant>> = Object.freeze({
  paper: { dim: 768, depth: 36, heads: 4, mlpDim: 3072 },
  bench: { dim: 256, depth: 6, heads: 4, mlpDim: 1024 },
  demo: { dim: 128, depth: 4, heads: 4, mlpDim: 512 },
  test: { dim: 32, depth: 2, heads: 2, mlpDim: 64 },
});

export function decodeSpeechVariant(name: string): SpeechVariant {
  const v = SPEECH_VARIANTS[name];
  if (!v) {
    throw new SigmaError('SGT_MODEL_VARIANT',
      `unknown speech variant "${name}" (model.speech.variant): use one of ${Object.keys(SPEECH_VARIANTS).join(', ')}`);
  }
  return v;
}

/** CAPE for audio (Likhomanenko et al. 2021), positions in seconds; defaults are the paper's LibriSpeech values. */
export interface CapeOptions {
  /** Global shift Δ ~ U[−g, g] seconds per utterance (60). */
  maxGlobalShift: number;
  /** Local shift ε ~ U[−l·h/2, l·h/2] per frame, h the frame stride in seconds (1: order is kept). */
  maxLocalShift: number;
  /** Global scaling: log λ ~ U[−log s, log s] per utterance (1.1). */
  maxGlobalScaling: number;
  /** Frequencies are freqScale·10000^(−2i/d) (30: 30 ms resolution over long inputs). */
  freqScale: number;
}

export const DEFAULT_CAPE: Readonly<CapeOptions> = Object.freeze({
  maxGlobalShift: 60, maxLocalShift: 1, maxGlobalScaling: 1.1, freqScale: 30,
});

export interface SpeechOptions {
  variant: string;
  /** Input features per frame (80 log-mel bins). */
  features: number;
  /** Output classes including the blank (29: blank, word boundary, apostrophe, a–z). */
  vocab: number;
  /** Front-end convolution: kernel 7 and stride 3 in the paper; frames are 10 ms apart. */
  kernel: number;
  stride: number;
  /** Input frame shift in seconds (CAPE positions), 0.01. */
  frameSeconds: number;
  /** glu: the convolution outputs 2·dim channels gated to dim (wav2letter's arrangement); linear: dim channels. */
  frontend: 'glu' | 'linear';
  reparam: ReparamMode;
  gammaInit: 'one' | 'spectral';
  qkv: 'joint' | 'separate';
  norm: NormMode;
  initStd: number;
  positions: 'cape' | 'sinusoidal';
  cape: CapeOptions;
  /** Probability of skipping a whole encoder layer in a training forward (LayerDrop, Fan et al. 2019). */
  layerDrop: number;
  /**
   * Initial bias of the blank logit (0: none). Most CTC frames are blank, so a positive start, e.g. the log-odds of the
   * blank prior, saves the first steps spent learning to emit blank everywhere.
   */
  blankBias: number;
  seed: number;
}

// The Model seam's types (worker/models/model.ts), re-exported for this family's callers.
export type { AttnKind, QkSource, AttentionSite, ModelForwardOptions, ForwardResult } from './model.js';

export interface SpeechModel extends Model {
  family: 'speech';
  options: Readonly<SpeechOptions>;
  arch: SpeechVariant;
  params: ParamSpec[];
  buffers: BufferSpec[];
  linears: LinearRef[];
  attentionSites: AttentionSite[];
  blocks: BlockRef[];
  /** inputs: features [B, T, features] float32, lengths [B] (frames). */
  forward(params: TensorMap, buffers: TensorMap, inputs: Record<string, tf.Tensor>, options: ModelForwardOptions): ForwardResult;
  architecture(): Record<string, unknown>;
  /** ⌈frames / stride⌉: the CTC input length of an utterance of `frames` frames. */
  outputLength(frames: number): number;
}

/** Sinusoid of positions [B, T] (any real values) → [B, T, dim]: even channels sin(p·ω_i), odd cos(p·ω_i). */
function sinusoid(pos: tf.Tensor2D, dim: number, freqScale: number): tf.Tensor3D {
  const half = dim / 2;
  const freq = Float32Array.from({ length: half }, (_, i) => freqScale * Math.exp((-2 * i * Math.log(1e4)) / dim));
  const [B, T] = pos.shape;
  const phase = tf.mul(pos.reshape([B, T, 1]), tf.tensor3d(freq, [1, 1, half])); // [B, T, half]
  return tf.stack([tf.sin(phase), tf.cos(phase)], 3).reshape([B, T, dim]) as tf.Tensor3D;
}

/**
 * 1-D convolution windows as reshapes (wasm has no conv backprop): x [B, T, F] → [B, ⌈T/stride⌉, kernel·F], window j
 * holding frames stride·j − ⌊(kernel−1)/2⌋ … + kernel − 1 (centred; zeros outside [0, T)), frame-major. Pads to whole
 * stride groups, so window j is groups j … j + ⌈kernel/stride⌉ − 1 concatenated, cut to its first kernel frames.
 */
export function unfold1d(x: tf.Tensor3D, kernel: number, stride: number): tf.Tensor3D {
  const [B, T, F] = x.shape;
  const Tp = Math.ceil(T / stride);
  const pad = Math.floor((kernel - 1) / 2);
  const span = Math.ceil(kernel / stride); // stride groups a window touches (padded window j starts at group j)
  const nGroups = Math.max(Tp - 1 + span, Math.ceil((pad + T) / stride));
  const grouped = tf.pad(x, [[0, 0], [pad, stride * nGroups - pad - T], [0, 0]]).reshape([B, nGroups, stride * F]) as tf.Tensor3D;
  const parts: tf.Tensor3D[] = [];
  for (let g = 0; g < span; g++) parts.push(tf.slice(grouped, [0, g, 0], [B, Tp, stride * F]));
  const windows = parts.length > 1 ? tf.concat(parts, 2) : parts[0]; // [B, Tp, span·stride·F]
  return (span * stride > kernel ? tf.slice(windows, [0, 0, 0], [B, Tp, kernel * F]) : windows) as tf.Tensor3D;
}

/**
 * CAPE positions in seconds [B, Tp]: frame j of utterance b sits at h·j − h·(n_b − 1)/2 (centred on its own n_b real
 * frames, h seconds apart); in training, + Δ_b ~ U[−g, g], + ε_bj ~ U[−l·h/2, l·h/2], then × λ_b, log λ_b ~ U[±log s].
 * Random draws come from `seed` (tf.randomUniform), so a forward stays a function of its seed.
 */
export function capePositions(
  outLengths: tf.Tensor1D, Tp: number, h: number, c: CapeOptions, training: boolean, seed: number,
): tf.Tensor2D {
  const B = outLengths.shape[0];
  const idx = tf.range(0, Tp, 1, 'float32').reshape([1, Tp]);
  const centre = tf.mul(tf.sub(tf.cast(outLengths, 'float32'), 1), h / 2).reshape([B, 1]);
  let pos = tf.sub(tf.mul(idx, h), centre) as tf.Tensor2D; // [B, Tp]
  if (!training) return pos;
  const draw = (k: number) => mixSeed(seed, 0xca9e, k) & 0x7fffffff;
  const shift = tf.randomUniform([B, 1], -c.maxGlobalShift, c.maxGlobalShift, 'float32', draw(1));
  const eps = (h * c.maxLocalShift) / 2;
  const local = eps > 0 ? tf.randomUniform([B, Tp], -eps, eps, 'float32', draw(2)) : tf.zeros([B, Tp]);
  const logScale = Math.log(c.maxGlobalScaling);
  const scale = tf.exp(tf.randomUniform([B, 1], -logScale, logScale, 'float32', draw(3)));
  pos = tf.mul(tf.add(tf.add(pos, shift), local), scale) as tf.Tensor2D;
  return pos;
}

export function buildSpeech(o: SpeechOptions): SpeechModel {
  const v = decodeSpeechVariant(o.variant);
  if (!Number.isInteger(o.kernel) || o.kernel < 1 || !Number.isInteger(o.stride) || o.stride < 1) {
    throw new SigmaError('SGT_CONFIG_INVALID', `speech front-end: kernel ${o.kernel} and stride ${o.stride} must be integers ≥ 1`);
  }
  if (v.dim % 2 !== 0) throw new SigmaError('SGT_MODEL_VARIANT', `speech: sinusoidal positions need an even dim, got ${v.dim}`);
  if (!Number.isFinite(o.blankBias)) {
    throw new SigmaError('SGT_CONFIG_INVALID', `speech: blankBias ${o.blankBias} (model.speech.blankBias) must be a finite number`);
  }
  if (!(o.layerDrop >= 0 && o.layerDrop < 1)) {
    throw new SigmaError('SGT_CONFIG_INVALID', `speech: layerDrop ${o.layerDrop} must be in [0, 1)`);
  }
  const rng = new Rng(mixSeed(o.seed, 0x5eec));
  const b = new SpecBuilder();
  const lin = { reparam: o.reparam, gammaInit: o.gammaInit, initStd: o.initStd };
  const linears: LinearRef[] = [];
  const K = o.kernel;
  const s = o.stride;
  const F = o.features;
  const conv = declareLinear(b, 'frontend.conv', { ...lin, inFeatures: K * F, outFeatures: o.frontend === 'glu' ? 2 * v.dim : v.dim }, rng);
  linears.push(conv);
  const blocks: BlockRef[] = [];
  const attentionSites: AttentionSite[] = [];
  for (let i = 0; i < v.depth; i++) {
    const blk = declareBlock(b, i, {
      dim: v.dim, heads: v.heads, mlpDim: v.mlpDim, qkv: o.qkv, norm: o.norm, depth: v.depth, dropPath: 0, linear: lin,
    }, rng);
    blocks.push(blk);
    const a = blk.attn;
    linears.push(...[a.joint, a.q, a.k, a.v, a.proj].filter((x): x is LinearRef => !!x), blk.mlp.fc1, blk.mlp.fc2);
    const qk: QkSource = a.joint
      ? { q: a.joint, qOffset: 0, k: a.joint, kOffset: v.dim, dim: v.dim, headDim: v.dim / v.heads }
      : { q: a.q!, qOffset: 0, k: a.k!, kOffset: 0, dim: v.dim, headDim: v.dim / v.heads };
    attentionSites.push({ name: a.name, layer: i, kind: 'self', heads: v.heads, qk });
  }
  const finalNorm: NormRef | undefined = o.norm === 'pre' ? declareLayerNorm(b, 'norm', v.dim) : undefined;
  const head = declareLinear(b, 'head', { ...lin, inFeatures: v.dim, outFeatures: o.vocab }, rng);
  linears.push(head);
  if (o.blankBias !== 0) b.params.find((p) => p.name === head.bias)!.init[BLANK] = o.blankBias;

  function forward(params: TensorMap, buffers: TensorMap, inputs: Record<string, tf.Tensor>, f: ModelForwardOptions): ForwardResult {
    const features = inputs['features'];
    const lengths = inputs['lengths'];
    if (!features || features.rank !== 3 || features.shape[2] !== F) {
      throw new Error(`speech: inputs.features must be [B, T, ${F}], got ${features ? `[${features.shape}]` : 'nothing'}`);
    }
    const [B, T] = features.shape;
    if (!lengths || lengths.rank !== 1 || lengths.shape[0] !== B) {
      throw new Error(`speech: inputs.lengths must be [${B}], got ${lengths ? `[${lengths.shape}]` : 'nothing'}`);
    }
    // σReparam's power step, off the gradient tape (models/power.ts).
    const { buffers: bufs, updates: bufferUpdates } = powerUpdates(linears, params, buffers, f.powerIterations ?? 0);
    const Tp = Math.ceil(T / s);
    const len = tf.cast(lengths, 'int32') as tf.Tensor1D;
    const outLengths = tf.floorDiv(tf.add(len, s - 1), s) as tf.Tensor1D; // ⌈len / s⌉
    // Padding frames are zeroed so that a window reaching past an utterance's end sees what it would see alone.
    const inMask = tf.cast(tf.less(tf.range(0, T, 1, 'int32').reshape([1, T]), len.reshape([B, 1])), 'float32'); // [B, T]
    const x0 = tf.mul(features, inMask.reshape([B, T, 1])) as tf.Tensor3D;
    const windows = unfold1d(x0, K, s); // [B, Tp, K·F]
    let x = applyLinear(conv, params, bufs, windows) as tf.Tensor3D; // [B, Tp, dim | 2·dim]
    if (o.frontend === 'glu') {
      const [a, gate] = tf.split(x, 2, 2);
      x = tf.mul(a, tf.sigmoid(gate)) as tf.Tensor3D;
    }
    const outMask = tf.cast(tf.less(tf.range(0, Tp, 1, 'int32').reshape([1, Tp]), outLengths.reshape([B, 1])), 'float32'); // [B, Tp]
    x = tf.add(x, positions(B, Tp, outLengths, f)) as tf.Tensor3D;
    const mask3 = outMask.reshape([B, Tp, 1]);
    if (f.training && f.dropout > 0) x = tf.dropout(x, f.dropout, undefined, mixSeed(f.seed, 0xd0) & 0x7fffffff) as tf.Tensor3D;
    x = tf.mul(x, mask3) as tf.Tensor3D;
    const entropy: tf.Tensor1D[] = [];
    const maxTokenNorm: tf.Scalar[] = [];
    for (const blk of blocks) {
      if (f.training && o.layerDrop > 0 && new Rng(mixSeed(f.seed, 0x1d, blk.index)).next() < o.layerDrop) {
        entropy.push(tf.fill([v.heads], Number.NaN) as tf.Tensor1D);
        maxTokenNorm.push(tf.scalar(Number.NaN));
        continue;
      }
      const r = applyBlock(blk, params, bufs, x, {
        temperature: f.temperature, training: f.training, dropout: f.dropout, attnDropout: f.attnDropout,
        seed: mixSeed(f.seed, blk.index) & 0x7fffffff, keyMask: outMask as tf.Tensor2D,
      });
      x = tf.mul(r.x, mask3) as tf.Tensor3D; // keep padding frames at 0 (a post-LN shift would otherwise leak in)
      entropy.push(r.entropy);
      maxTokenNorm.push(r.maxTokenNorm);
    }
    if (finalNorm) x = applyLayerNorm(finalNorm, params, x) as tf.Tensor3D;
    const logits = applyLinear(head, params, bufs, x) as tf.Tensor3D; // [B, Tp, vocab]
    return { outputs: { logits, outLengths }, entropy, maxTokenNorm, bufferUpdates };
  }

  /** [B, Tp, dim]: sinusoidal over frame indices, or CAPE over mean-centred seconds (augmented when training). */
  function positions(B: number, Tp: number, outLengths: tf.Tensor1D, f: ModelForwardOptions): tf.Tensor3D {
    const idx = tf.range(0, Tp, 1, 'float32').reshape([1, Tp]);
    if (o.positions === 'sinusoidal') return tf.tile(sinusoid(idx as tf.Tensor2D, v.dim, 1), [B, 1, 1]);
    const pos = capePositions(outLengths, Tp, o.frameSeconds * s, o.cape, f.training, f.seed);
    return sinusoid(pos, v.dim, o.cape.freqScale);
  }

  const options = Object.freeze({ ...o, cape: Object.freeze({ ...o.cape }) });
  return {
    family: 'speech',
    options,
    arch: v,
    params: b.params,
    buffers: b.buffers,
    linears,
    attentionSites,
    blocks,
    forward,
    architecture: () => ({
      family: 'speech', ...v, features: F, vocab: o.vocab, kernel: K, stride: s, frontend: o.frontend, reparam: o.reparam,
      gammaInit: o.gammaInit, qkv: o.qkv, norm: o.norm, positions: o.positions, blankBias: o.blankBias,
    }),
    outputLength: (frames: number) => Math.ceil(frames / s),
  };
}

/** The paper's defaults around a variant (σReparam, post-LN off, CAPE, GLU front-end): tests and configs start here. */
export function speechDefaults(variant: string, seed = 0): SpeechOptions {
  return {
    variant, features: 80, vocab: 29, kernel: 7, stride: 3, frameSeconds: 0.01, frontend: 'glu', reparam: 'sigma',
    gammaInit: 'one', qkv: 'joint', norm: 'none', initStd: 0.02, positions: 'cape', cape: { ...DEFAULT_CAPE }, layerDrop: 0,
    blankBias: 0, seed,
  };
}
