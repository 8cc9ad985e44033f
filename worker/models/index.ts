// Model registry: builds the configured family from the frozen Config (one file per family).
import type { Config } from '../../shared/config/index.js';
import { buildVit, type VitModel } from './vit.js';

export type Model = VitModel;

export function buildModel(config: Readonly<Config>): Model {
  const m = config.model;
  switch (m.family) {
    case 'vit':
      return buildVit({
        variant: m.variant,
        imageSize: m.imageSize,
        patchSize: m.patchSize,
        numClasses: config.data.numClasses,
        reparam: m.reparam,
        gammaInit: m.gammaInit,
        qkv: m.qkv,
        norm: m.norm,
        initStd: m.initStd,
        patchInitGain: m.patchInitGain,
        posEmb: m.posEmb,
        pool: m.pool,
        dropPath: m.dropPath,
        seed: config.seed,
      });
  }
}

/** A fingerprint of the architecture: resuming a checkpoint with another one is refused. */
export function architectureOf(config: Readonly<Config>): Record<string, unknown> {
  const { dropout, attnDropout, dropPath, temperature, temperatureSchedule, powerIterations, ...arch } = config.model;
  void dropout; void attnDropout; void dropPath; void temperature; void temperatureSchedule; void powerIterations;
  return { ...arch, numClasses: config.data.numClasses };
}
