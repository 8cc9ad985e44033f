// The CTC acoustic-model family (model.speech.*, task asr).
import type { Fragment } from '../fragment.js';

export const speech = {
  variant: { doc: 'speech: variant by name: paper (d768, 36 layers), bench (d256, 6), demo (d128, 4), test (d32, 2).', format: 'string', default: 'demo' },
  positions: { doc: 'speech: cape (the paper: CAPE, random shifts and scaling in training) or sinusoidal.', format: ['cape', 'sinusoidal'], default: 'cape' },
  frontEnd: { doc: 'speech: front-end convolution with a GLU (2·dim channels gated, wav2letter) or linear.', format: ['glu', 'linear'], default: 'glu' },
  kernel: { doc: 'speech: front-end convolution kernel in frames (paper 7).', format: 'positive-int', default: 7 },
  stride: { doc: 'speech: front-end stride in frames (paper 3: 30 ms per output frame).', format: 'positive-int', default: 3 },
  blankBias: { doc: 'speech: initial bias of the CTC head\'s blank logit (0: none; e.g. 3–4, the log-odds of the blank prior, shortens the all-blank phase).', format: 'non-negative', default: 0 },
  layerDrop: { doc: 'speech: probability of skipping an encoder layer in a training forward (LayerDrop).', format: 'probability', default: 0 },
} as const satisfies Fragment;
