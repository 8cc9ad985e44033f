// A token encoder Transformer (bidirectional self-attention, σReparam linears, a per-position vocabulary head): the
// small sequence family behind the toy `reverse` task. Inputs {tokens: int32 [B, T], mask: [B, T] (1 real, 0 pad)};
// outputs {logits: [B, T, vocab]}.
import * as tf from '@tensorflow/tfjs';
import { Rng, mixSeed } from '../rng.js';
import { SpecBuilder, get, type TensorMap } from '../nn/params.js';
import { declareLinear, applyLinear, type LinearRef, type ReparamMode } from '../nn/linear.js';
import { declareBlock, applyBlock, declareLayerNorm, applyLayerNorm, type BlockRef, type NormMode } from '../nn/layers.js';
import type { ForwardResult, Model, ModelForwardOptions } from './model.js';
import { blockSite } from './vit.js';
import { powerUpdates } from './power.js';

export interface EncoderOptions {
  dim: number;
  depth: number;
  heads: number;
  mlpDim: number;
  vocab: number;
  maxLength: number;
  reparam: ReparamMode;
  gammaInit: 'one' | 'spectral';
  qkv: 'joint' | 'separate';
  norm: NormMode;
  initStd: number;
  seed: number;
}

export interface EncoderModel extends Model {
  family: 'encoder';
  options: Readonly<EncoderOptions>;
  blocks: BlockRef[];
}

export function buildEncoder(o: EncoderOptions): EncoderModel {
  const rng = new Rng(mixSeed(o.seed, 0xe4c0));
  const b = new SpecBuilder();
  const lin = { reparam: o.reparam, gammaInit: o.gammaInit, initStd: o.initStd };
  const embInit = new Float32Array(o.vocab * o.dim);
  for (let i = 0; i < embInit.length; i++) embInit[i] = rng.truncNormal(0.02 * Math.sqrt(o.dim)); // ≈ unit-norm rows
  const embed = b.param('tok_embed', [o.vocab, o.dim], 'embed', embInit);
  const posInit = new Float32Array(o.maxLength * o.dim);
  for (let i = 0; i < posInit.length; i++) posInit[i] = rng.truncNormal(0.02 * Math.sqrt(o.dim));
  const pos = b.param('pos_embed', [o.maxLength, o.dim], 'embed', posInit);
  const linears: LinearRef[] = [];
  const blocks: BlockRef[] = [];
  for (let i = 0; i < o.depth; i++) {
    const blk = declareBlock(b, i, { dim: o.dim, heads: o.heads, mlpDim: o.mlpDim, qkv: o.qkv, norm: o.norm, depth: o.depth, dropPath: 0, linear: lin }, rng);
    blocks.push(blk);
    const a = blk.attn;
    linears.push(...[a.joint, a.q, a.k, a.v, a.proj].filter((x): x is LinearRef => !!x), blk.mlp.fc1, blk.mlp.fc2);
  }
  const finalNorm = o.norm === 'pre' ? declareLayerNorm(b, 'norm', o.dim) : undefined;
  const head = declareLinear(b, 'head', { ...lin, inFeatures: o.dim, outFeatures: o.vocab }, rng);
  linears.push(head);

  function forward(params: TensorMap, stored: TensorMap, inputs: Record<string, tf.Tensor>, f: ModelForwardOptions): ForwardResult {
    const tokens = inputs.tokens as tf.Tensor2D;
    const mask = inputs.mask as tf.Tensor2D;
    if (!tokens || tokens.rank !== 2 || !mask) throw new Error(`encoder: expected inputs.tokens and inputs.mask [B, T], got ${tokens ? `[${tokens.shape}]` : 'none'}`);
    const [B, T] = tokens.shape;
    if (T > o.maxLength) throw new Error(`encoder: sequence length ${T} exceeds maxLength ${o.maxLength}`);
    const { buffers, updates } = powerUpdates(linears, params, stored, f.training ? f.powerIterations ?? 0 : 0);
    // [B, T] → [B, T, dim]: token rows plus the first T position rows.
    let x = tf.add(tf.gather(get(params, embed), tokens.reshape([-1])).reshape([B, T, o.dim]), tf.slice(get(params, pos), [0, 0], [T, o.dim]).reshape([1, T, o.dim])) as tf.Tensor3D;
    const entropy: tf.Tensor1D[] = [];
    const maxTokenNorm: tf.Scalar[] = [];
    for (const blk of blocks) {
      const r = applyBlock(blk, params, buffers, x, {
        temperature: f.temperature, training: f.training, dropout: f.dropout, attnDropout: f.attnDropout,
        seed: mixSeed(f.seed, blk.index) & 0x7fffffff, keyMask: mask,
      });
      x = r.x;
      entropy.push(r.entropy);
      maxTokenNorm.push(r.maxTokenNorm);
    }
    if (finalNorm) x = applyLayerNorm(finalNorm, params, x) as tf.Tensor3D;
    const logits = applyLinear(head, params, buffers, x); // [B, T, vocab]
    return { outputs: { logits }, entropy, maxTokenNorm, bufferUpdates: updates };
  }

  return {
    family: 'encoder',
    options: Object.freeze({ ...o }),
    params: b.params,
    buffers: b.buffers,
    linears,
    blocks,
    attentionSites: blocks.map((blk) => blockSite(blk, o.maxLength)),
    architecture: () => ({ family: 'encoder', ...o, seed: undefined }),
    forward,
  };
}
