// The reverse task's generated token sequences (data.reverse.*; the task makes its own data, data.kind is not read).
import type { Fragment } from '../fragment.js';

export const reverse = {
  vocab: { doc: 'reverse: vocabulary size including the padding token 0.', format: 'positive-int', default: 16 },
  minLength: { doc: 'reverse: shortest sequence.', format: 'positive-int', default: 4 },
  maxLength: { doc: 'reverse: longest sequence (the padded length).', format: 'positive-int', default: 8 },
  trainSize: { doc: 'reverse: training sequences, drawn from the seed.', format: 'positive-int', default: 4096 },
  valSize: { doc: 'reverse: validation sequences, drawn from the seed.', format: 'positive-int', default: 512 },
} as const satisfies Fragment;
