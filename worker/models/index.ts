// Model registry: one file per family, looked up by model.family; the Task passes the family its task-specific
// sizes (classes, vocabulary). Nothing outside models/ and tasks/ knows a family's options.
import type { Config } from '../../shared/config/index.js';
import { SigmaError } from '../../shared/errors.js';
import type { Model } from './model.js';
import { buildVit } from './vit.js';
import { buildEncoder } from './encoder.js';

export type { Model, AttentionSite, AttnKind, ForwardResult, ModelForwardOptions } from './model.js';

/** What a task tells the family about its data (sizes the config does not hold). */
export interface ModelTarget {
  /** Classes of a classifier head. */
  numClasses?: number;
  /** Token vocabulary of a sequence model (input and output). */
  vocab?: number;
  /** Longest sequence a sequence model sees. */
  maxLength?: number;
}

type Builder = (config: Readonly<Config>, target: ModelTarget) => Model;

const FAMILIES: Record<Config['model']['family'], Builder> = {
  vit: (config, t) => {
    const m = config.model;
    return buildVit({
      variant: m.variant, imageSize: m.imageSize, patchSize: m.patchSize, numClasses: t.numClasses ?? config.data.numClasses,
      reparam: m.reparam, gammaInit: m.gammaInit, qkv: m.qkv, norm: m.norm, initStd: m.initStd, patchInitGain: m.patchInitGain,
      posEmb: m.posEmb, pool: m.pool, dropPath: m.dropPath, seed: config.seed,
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
};

/** Builds config.model.family for a task's target sizes. */
export function buildModel(config: Readonly<Config>, target: ModelTarget = {}): Model {
  const build = FAMILIES[config.model.family];
  if (!build) throw new SigmaError('SGT_CONFIG_INVALID', `unknown model.family "${config.model.family}": one of ${Object.keys(FAMILIES).join(', ')}`);
  return build(config, target);
}
