// The encoder-decoder translation family (model.seq2seq.*, task translate).
import type { Fragment } from '../fragment.js';

export const seq2seq = {
  variant: {
    doc: 'seq2seq: base, big, test, tiny, demo, "<N>L-<M>L" (the paper\'s deep MT models at d512/FFN 2048/8 heads, e.g. 18L-18L, 100L-100L) or "<width>-<N>L-<M>L" (e.g. tiny-12L-12L).',
    format: 'string',
    default: 'demo',
  },
  activation: { doc: 'seq2seq: FFN non-linearity (relu as Vaswani et al. and fairseq, or gelu).', format: ['relu', 'gelu'], default: 'relu' },
  maxPositions: { doc: 'seq2seq: longest source or target (subword tokens with </s>) the sinusoidal positions cover; longer training pairs are left out and counted, longer test sentences are cut (and logged).', format: 'positive-int', default: 256 },
} as const satisfies Fragment;
