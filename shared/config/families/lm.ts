// The decoder-only language-model family (model.lm.*, task lm).
import type { Fragment } from '../fragment.js';

export const lm = {
  variant: {
    doc: 'lm: a width (test, tiny, demo, base = 6 layers of d512, big), "<M>L" at d512/FFN 2048/8 heads (e.g. "32L", the paper\'s WikiText-103 depth) or "<width>-<M>L" (e.g. "tiny-4L"). Norm, σReparam and Q/K/V split come from model.norm, model.reparam, model.qkv.',
    format: 'string',
    default: 'tiny',
  },
  maxPositions: { doc: 'lm: longest sequence the sinusoidal position table covers; at least data.wikitext.blockSize.', format: 'positive-int', default: 512 },
  activation: { doc: 'lm: FFN non-linearity (relu as fairseq\'s transformer_lm, or gelu).', format: ['relu', 'gelu'], default: 'relu' },
} as const satisfies Fragment;
