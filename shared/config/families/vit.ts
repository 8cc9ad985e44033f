// The Vision Transformer family (model.vit.*, task classify): variant, input geometry, patch embedding and head.
// What every family shares (reparam, norm, qkv, init, dropout, temperature) stays directly under model.
import type { Fragment } from '../fragment.js';

export const vit = {
  variant: {
    doc: 'vit: variant by name: "Ti/16", "S/16", "B/16", "L/16", "H/14", or small ones "test/4", "demo/4", "bench/4".',
    format: 'string',
    default: 'demo/4',
  },
  imageSize: { doc: 'vit: input image side in pixels (square); the image data are resized or generated to it.', format: 'positive-int', default: 16 },
  patchSize: { doc: 'vit: patch side in pixels; 0 takes the variant\'s.', format: 'count', default: 0 },
  patchInitGain: { doc: 'vit: multiplies model.initStd for the patch embedding only (the σReparam reference code uses 0.125 for ViT-L).', format: 'positive', default: 1 },
  posEmb: { doc: 'vit: position embedding, learned or sincos (fixed 2-D).', format: ['learned', 'sincos'], default: 'learned' },
  pool: { doc: 'vit: classifier input, cls token or global average of the patch tokens (gap).', format: ['cls', 'gap'], default: 'cls' },
  dropPath: { doc: 'vit: stochastic-depth rate of the last block (linear in depth).', format: 'probability', default: 0 },
} as const satisfies Fragment;
