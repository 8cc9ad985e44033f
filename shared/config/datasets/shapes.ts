// The generated shapes ImageFolder (data.kind shapes, task classify): data.shapes.*. The images are made at
// model.vit.imageSize under data.root on first use and then read like any ImageFolder.
import type { Fragment } from '../fragment.js';
import { imageKeys } from './images.js';

export const shapes = {
  ...imageKeys('shapes', { numClasses: 10, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] }),
  trainPerClass: { doc: 'shapes: generated training images per class.', format: 'positive-int', default: 400 },
  valPerClass: { doc: 'shapes: generated validation images per class.', format: 'positive-int', default: 60 },
} as const satisfies Fragment;
