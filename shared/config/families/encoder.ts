// The encoder family (model.encoder.*): a σReparam Transformer encoder over token sequences (the reverse task).
import type { Fragment } from '../fragment.js';

export const encoder = {
  dim: { doc: 'encoder: model width.', format: 'positive-int', default: 64 },
  depth: { doc: 'encoder: blocks.', format: 'positive-int', default: 2 },
  heads: { doc: 'encoder: attention heads (dim must divide by it).', format: 'positive-int', default: 4 },
  mlpDim: { doc: 'encoder: MLP hidden width.', format: 'positive-int', default: 128 },
} as const satisfies Fragment;
