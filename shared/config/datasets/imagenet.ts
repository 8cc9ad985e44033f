// ImageNet-1k as distributed (data.kind imagenet, task classify): train/<wnid>/*.JPEG and val/ (class folders or
// LOC_val_solution.csv), streamed through decode threads with the DeiT augmentations: data.imagenet.*.
import type { Fragment } from '../fragment.js';
import { imageKeys } from './images.js';

export const imagenet = {
  ...imageKeys('imagenet', { numClasses: 1000, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] }),
  valLabels: { doc: 'imagenet: path of LOC_val_solution.csv for a flat val/ ("" searches root, val/ and the Kaggle layout).', format: 'string', default: '' },
  interpolation: { doc: 'imagenet: resize interpolation.', format: ['bicubic', 'bilinear'], default: 'bicubic' },
  evalCropPct: { doc: 'imagenet: eval resize to model.vit.imageSize / evalCropPct, then centre crop model.vit.imageSize (224/256 = 0.875).', format: 'probability', default: 0.875 },
  augment: {
    scaleMin: { doc: 'imagenet: RandomResizedCrop smallest area fraction.', format: 'probability', default: 0.08 },
    ratioMin: { doc: 'imagenet: RandomResizedCrop smallest aspect ratio.', format: 'positive', default: 0.75 },
    ratioMax: { doc: 'imagenet: RandomResizedCrop largest aspect ratio.', format: 'positive', default: 1.3333333333333333 },
    hflip: { doc: 'imagenet: horizontal-flip probability.', format: 'probability', default: 0.5 },
    randAugment: { doc: 'imagenet: RandAugment spec (timm syntax, e.g. rand-m9-mstd0.5-inc1; "" = off).', format: 'string', default: 'rand-m9-mstd0.5-inc1' },
    erasing: { doc: 'imagenet: random-erasing probability.', format: 'probability', default: 0.25 },
  },
  mix: {
    mixupAlpha: { doc: 'imagenet: mixup Beta(α, α) (0: off).', format: 'non-negative', default: 0.8 },
    cutmixAlpha: { doc: 'imagenet: cutmix Beta(α, α) (0: off).', format: 'non-negative', default: 1.0 },
    switchProb: { doc: 'imagenet: probability of cutmix rather than mixup when both are on.', format: 'probability', default: 0.5 },
    prob: { doc: 'imagenet: probability a batch is mixed at all.', format: 'non-negative', default: 1 },
    labelSmoothing: { doc: 'imagenet: label smoothing folded into the soft targets (train.labelSmoothing is then not applied again).', format: 'probability', default: 0.1 },
  },
  repeats: { doc: 'imagenet: repeated augmentation — occurrences of each image per epoch.', format: 'positive-int', default: 1 },
  threads: { doc: 'imagenet: decode threads per worker (set UV_THREADPOOL_SIZE ≥ this in the environment).', format: 'count', default: 2 },
  prefetch: { doc: 'imagenet: batches decoded ahead.', format: 'count', default: 2 },
} as const satisfies Fragment;
