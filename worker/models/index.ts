// Model registry: one file per family, looked up by model.family; the Task passes the family its task-specific
// sizes (classes, vocabulary). Nothing outside models/ and tasks/ knows a family's options.
import { activeImageData, type Config } from '../../shared/config/index.js';
import { SigmaError } from '../../shared/errors.js';
import type { Model } from './model.js';
import { buildVit } from './vit.js';
import { buildEncoder } from './encoder.js';
import { buildLm } from './lm.js';
import { buildSeq2Seq } from './seq2seq.js';
import { buildSpeech, speechDefaults } from './speech.js';

export type { Model, AttentionSite, AttnKind, ForwardResult, ModelForwardOptions } from './model.js';

/** What a task tells the family about its data (sizes the config does not hold). */
export interface ModelTarget {
  /** Classes of a classifier head. */
  numClasses?: number;
  /** Token vocabulary of a sequence model (input and output). */
  vocab?: number;
  /** Longest sequence a sequence model sees. */
  maxLength?: number;
  /** Padding id of a token vocabulary (its embedding row starts at zero). */
  padId?: number;
  /** Input features per frame of a speech model (mel bins). */
  features?: number;
}

type Builder = (config: Readonly<Config>, target: ModelTarget) => Model;

const FAMILIES: Record<Config['model']['family'], Builder> = {
  vit: (config, t) => {
    const m = config.model;
    const v = m.vit;
    return buildVit({
      variant: v.variant, imageSize: v.imageSize, patchSize: v.patchSize, numClasses: t.numClasses ?? activeImageData(config).numClasses,
      reparam: m.reparam, gammaInit: m.gammaInit, qkv: m.qkv, norm: m.norm, initStd: m.initStd, patchInitGain: v.patchInitGain,
      posEmb: v.posEmb, pool: v.pool, dropPath: v.dropPath, seed: config.seed,
    });
  },
  encoder: (config, t) => {
    const m = config.model;
    if (!t.vocab || !t.maxLength) throw new SigmaError('SGT_CONFIG_INVALID', `model.family encoder needs a task with a token vocabulary (task: ${config.task})`);
    return buildEncoder({
      ...m.encoder, vocab: t.vocab, maxLength: t.maxLength, reparam: m.reparam, gammaInit: m.gammaInit, qkv: m.qkv, norm: m.norm,
      initStd: m.initStd, seed: config.seed,
    });
  },
  lm: (config, t) => {
    const m = config.model;
    if (!t.vocab) throw new SigmaError('SGT_CONFIG_INVALID', `model.family lm needs a task with a token vocabulary (task: ${config.task})`);
    // No padding id: LM blocks are full, and a shorter evaluation window is masked (padId −1 zeroes no row).
    return buildLm({
      ...m.lm, vocabSize: t.vocab, padId: -1, norm: m.norm, reparam: m.reparam, gammaInit: m.gammaInit, qkv: m.qkv, seed: config.seed,
    }) as Model;
  },
  seq2seq: (config, t) => {
    const m = config.model;
    if (!t.vocab) throw new SigmaError('SGT_CONFIG_INVALID', `model.family seq2seq needs a task with a token vocabulary (task: ${config.task})`);
    return buildSeq2Seq({
      variant: m.seq2seq.variant, activation: m.seq2seq.activation, maxPositions: m.seq2seq.maxPositions, vocabSize: t.vocab, padId: t.padId ?? 1,
      norm: m.norm, reparam: m.reparam, gammaInit: m.gammaInit, qkv: m.qkv, seed: config.seed,
    });
  },
  speech: (config, t) => {
    const m = config.model;
    const s = m.speech;
    if (!t.vocab || !t.features) throw new SigmaError('SGT_CONFIG_INVALID', `model.family speech needs a task with audio features and a token vocabulary (task: ${config.task})`);
    return buildSpeech({
      ...speechDefaults(s.variant, config.seed), features: t.features, vocab: t.vocab, kernel: s.kernel, stride: s.stride,
      frontend: s.frontEnd, positions: s.positions, layerDrop: s.layerDrop, blankBias: s.blankBias, reparam: m.reparam, gammaInit: m.gammaInit, qkv: m.qkv,
      norm: m.norm, initStd: m.initStd,
    });
  },
};

/** Builds config.model.family for a task's target sizes. */
export function buildModel(config: Readonly<Config>, target: ModelTarget = {}): Model {
  const build = FAMILIES[config.model.family];
  if (!build) throw new SigmaError('SGT_CONFIG_INVALID', `unknown model.family "${config.model.family}": one of ${Object.keys(FAMILIES).join(', ')}`);
  return build(config, target);
}
