// Vision Transformer with σReparam on every linear layer (patch embedding and head included), variants by name.
// Implements the Model seam (models/model.ts): inputs {images: [B, H, W, C]}, outputs {logits: [B, classes]}.
import * as tf from '@tensorflow/tfjs';
import { Rng, mixSeed } from '../rng.js';
import { SpecBuilder, get, type TensorMap, type ParamSpec, type BufferSpec } from '../nn/params.js';
import { declareLinear, applyLinear, type LinearRef, type ReparamMode } from '../nn/linear.js';
import { declareBlock, applyBlock, declareLayerNorm, applyLayerNorm, type BlockRef, type NormMode, type NormRef } from '../nn/layers.js';
import { SigmaError } from '../../shared/errors.js';
import type { AttentionSite, ForwardResult, Model, ModelForwardOptions } from './model.js';
import { powerUpdates } from './power.js';

export interface VitVariant {
  dim: number;
  depth: number;
  heads: number;
  mlpDim: number;
  patch: number;
}

/** ViT variants (Dosovitskiy et al.; Touvron et al. for Ti/S), plus small ones for tests, the demo and the bench. */
const WIDTHS: Record<string, Omit<VitVariant, 'patch'>> = {
  Ti: { dim: 192, depth: 12, heads: 3, mlpDim: 768 },
  S: { dim: 384, depth: 12, heads: 6, mlpDim: 1536 },
  B: { dim: 768, depth: 12, heads: 12, mlpDim: 3072 },
  L: { dim: 1024, depth: 24, heads: 16, mlpDim: 4096 },
  H: { dim: 1280, depth: 32, heads: 16, mlpDim: 5120 },
  test: { dim: 16, depth: 2, heads: 2, mlpDim: 32 },
  demo: { dim: 64, depth: 4, heads: 4, mlpDim: 128 },
  bench: { dim: 192, depth: 6, heads: 3, mlpDim: 768 },
};

/** "B/16" → width B, patch 16. */
export function decodeVariant(name: string): VitVariant {
  const m = /^([A-Za-z]+)\/(\d+)$/.exec(name);
  const width = m ? WIDTHS[m[1]] : undefined;
  if (!m || !width) {
    throw new SigmaError('SGT_MODEL_VARIANT', `unknown ViT variant "${name}" (model.vit.variant): use <width>/<patch> with width one of ${Object.keys(WIDTHS).join(', ')}, e.g. "B/16"`);
  }
  return { ...width, patch: Number(m[2]) };
}

export interface VitOptions {
  variant: string;
  imageSize: number;
  /** 0 keeps the variant's patch size. */
  patchSize?: number;
  channels?: number;
  numClasses: number;
  reparam: ReparamMode;
  gammaInit: 'one' | 'spectral';
  qkv: 'joint' | 'separate';
  norm: NormMode;
  initStd: number;
  /** Multiplies initStd for the patch embedding (default 1). */
  patchInitGain?: number;
  posEmb: 'learned' | 'sincos';
  pool: 'cls' | 'gap';
  dropPath: number;
  seed: number;
}

export interface VitModel extends Model {
  family: 'vit';
  options: Readonly<VitOptions>;
  arch: VitVariant & { tokens: number; patchDim: number };
  params: ParamSpec[];
  buffers: BufferSpec[];
  /** Every linear layer, in declaration order (σReparam power steps iterate over these). */
  linears: LinearRef[];
  blocks: BlockRef[];
}

/** The attention site of a block: one self-attention per layer over all tokens, Q/K from the joint or separate projections. */
export function blockSite(blk: BlockRef, tokens: number): AttentionSite {
  const a = blk.attn;
  const qk = a.joint
    ? { q: a.joint, qOffset: 0, k: a.joint, kOffset: a.dim, dim: a.dim, headDim: a.dim / a.heads }
    : { q: a.q!, qOffset: 0, k: a.k!, kOffset: 0, dim: a.dim, headDim: a.dim / a.heads };
  return { name: a.name, layer: blk.index, kind: 'self', heads: a.heads, tokens, qk };
}

/** Fixed 2-D sin-cos position embedding [gridH·gridW, dim] (MAE's construction), cls position all zeros. */
export function sincos2d(grid: number, dim: number): Float32Array {
  if (dim % 4 !== 0) throw new Error(`sincos position embedding needs dim divisible by 4, got ${dim}`);
  const quarter = dim / 4;
  const out = new Float32Array((grid * grid + 1) * dim);
  for (let y = 0; y < grid; y++) {
    for (let x = 0; x < grid; x++) {
      const o = (1 + y * grid + x) * dim;
      for (let i = 0; i < quarter; i++) {
        const omega = 1 / Math.pow(10000, i / quarter);
        out[o + i] = Math.sin(x * omega);
        out[o + quarter + i] = Math.cos(x * omega);
        out[o + 2 * quarter + i] = Math.sin(y * omega);
        out[o + 3 * quarter + i] = Math.cos(y * omega);
      }
    }
  }
  return out;
}

export function buildVit(o: VitOptions): VitModel {
  const v = decodeVariant(o.variant);
  const patch = o.patchSize && o.patchSize > 0 ? o.patchSize : v.patch;
  if (o.imageSize % patch !== 0) {
    throw new SigmaError('SGT_MODEL_VARIANT', `model.vit.imageSize ${o.imageSize} is not divisible by the patch size ${patch} (model.vit.patchSize / variant "${o.variant}")`);
  }
  const channels = o.channels ?? 3;
  const grid = o.imageSize / patch;
  const tokens = grid * grid + (o.pool === 'cls' ? 1 : 0);
  const patchDim = patch * patch * channels;
  const rng = new Rng(mixSeed(o.seed, 0x5eed));
  const b = new SpecBuilder();
  const linOpts = { reparam: o.reparam, gammaInit: o.gammaInit, initStd: o.initStd };
  const linears: LinearRef[] = [];
  const embed = declareLinear(b, 'patch_embed', { ...linOpts, inFeatures: patchDim, outFeatures: v.dim, initGain: o.patchInitGain ?? 1 }, rng);
  linears.push(embed);
  const cls = o.pool === 'cls' ? b.param('cls_token', [1, 1, v.dim], 'embed', new Float32Array(v.dim)) : undefined;
  let pos: string | undefined;
  let posConst: Float32Array | undefined;
  if (o.posEmb === 'learned') {
    const init = new Float32Array(tokens * v.dim);
    for (let i = 0; i < init.length; i++) init[i] = rng.truncNormal(0.02);
    pos = b.param('pos_embed', [1, tokens, v.dim], 'embed', init);
  } else {
    const full = sincos2d(grid, v.dim);
    posConst = o.pool === 'cls' ? full : full.subarray(v.dim);
  }
  const blocks: BlockRef[] = [];
  for (let i = 0; i < v.depth; i++) {
    const blk = declareBlock(
      b,
      i,
      {
        dim: v.dim, heads: v.heads, mlpDim: v.mlpDim, qkv: o.qkv, norm: o.norm, depth: v.depth,
        dropPath: v.depth > 1 ? (o.dropPath * i) / (v.depth - 1) : o.dropPath, linear: linOpts,
      },
      rng,
    );
    blocks.push(blk);
    const a = blk.attn;
    linears.push(...[a.joint, a.q, a.k, a.v, a.proj].filter((x): x is LinearRef => !!x), blk.mlp.fc1, blk.mlp.fc2);
  }
  const finalNorm: NormRef | undefined = o.norm === 'pre' ? declareLayerNorm(b, 'norm', v.dim) : undefined;
  const head = declareLinear(b, 'head', { ...linOpts, inFeatures: v.dim, outFeatures: o.numClasses }, rng);
  linears.push(head);

  function forward(params: TensorMap, stored: TensorMap, inputs: Record<string, tf.Tensor>, f: ModelForwardOptions): ForwardResult {
    const images = inputs.images as tf.Tensor4D;
    if (!images || images.rank !== 4) throw new Error(`vit: expected inputs.images [B, H, W, C], got ${images ? `[${images.shape}]` : 'none'}`);
    const { buffers, updates } = powerUpdates(linears, params, stored, f.training ? f.powerIterations ?? 0 : 0);
    const [B, H, W, C] = images.shape;
    if (H !== o.imageSize || W !== o.imageSize || C !== channels) {
      throw new Error(`vit: expected images [B, ${o.imageSize}, ${o.imageSize}, ${channels}], got [${images.shape}]`);
    }
    // [B, H, W, C] → [B, gh, p, gw, p, C] → [B, gh, gw, p, p, C] → [B, N, p·p·C]
    const patches = tf.transpose(images.reshape([B * grid, patch, grid, patch * C]), [0, 2, 1, 3]).reshape([B, grid * grid, patchDim]);
    let x = applyLinear(embed, params, buffers, patches) as tf.Tensor3D; // [B, N, dim]
    if (cls) x = tf.concat([tf.tile(get(params, cls), [B, 1, 1]), x], 1) as tf.Tensor3D;
    x = tf.add(x, pos ? get(params, pos) : tf.tensor3d(posConst!, [1, tokens, v.dim])) as tf.Tensor3D;
    const entropy: tf.Tensor1D[] = [];
    const maxTokenNorm: tf.Scalar[] = [];
    for (const blk of blocks) {
      const r = applyBlock(blk, params, buffers, x, {
        temperature: f.temperature, training: f.training, dropout: f.dropout, attnDropout: f.attnDropout,
        seed: mixSeed(f.seed, blk.index) & 0x7fffffff,
      });
      x = r.x;
      entropy.push(r.entropy);
      maxTokenNorm.push(r.maxTokenNorm);
    }
    if (finalNorm) x = applyLayerNorm(finalNorm, params, x) as tf.Tensor3D;
    const pooled = cls ? tf.squeeze(tf.slice(x, [0, 0, 0], [B, 1, v.dim]), [1]) : tf.mean(x, 1);
    const logits = applyLinear(head, params, buffers, pooled) as tf.Tensor2D;
    return { outputs: { logits }, entropy, maxTokenNorm, bufferUpdates: updates };
  }

  return {
    family: 'vit',
    attentionSites: blocks.map((blk) => blockSite(blk, tokens)),
    architecture: () => ({ family: 'vit', ...o, dropPath: undefined, seed: undefined, patch, tokens }),
    options: Object.freeze({ ...o }),
    arch: { ...v, patch, tokens, patchDim },
    params: b.params,
    buffers: b.buffers,
    linears,
    blocks,
    forward,
  };
}
