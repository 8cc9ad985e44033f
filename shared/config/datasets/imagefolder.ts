// An existing small ImageFolder (data.kind imagefolder, task classify): data.root/{train,val}/<class>/*, decoded once
// into memory at model.vit.imageSize.
import type { Fragment } from '../fragment.js';
import { imageKeys } from './images.js';

export const imagefolder = {
  ...imageKeys('imagefolder', { numClasses: 10, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] }),
} as const satisfies Fragment;
