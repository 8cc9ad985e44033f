// The keys every image data kind has (data.<kind>.numClasses, mean, std): each kind keeps its own, with defaults
// that fit it (ImageNet's statistics for imagenet), and activeImageData picks the configured kind's.
import { SigmaError } from '../../errors.js';
import type { Fragment } from '../fragment.js';
import type { Config } from '../schema.js';

/** numClasses / mean / std of one image kind, documented under its name. */
export function imageKeys<const D extends { numClasses: number; mean: readonly [number, number, number]; std: readonly [number, number, number] }>(kind: string, d: D) {
  return {
    numClasses: { doc: `${kind}: number of classes (must match the class folders of train/ and val/).`, format: 'positive-int', default: d.numClasses },
    mean: { doc: `${kind}: per-channel mean subtracted after scaling pixels to [0, 1].`, format: 'triple', default: d.mean },
    std: { doc: `${kind}: per-channel std dividing after the mean.`, format: 'triple', default: d.std },
  } as const satisfies Fragment;
}

/** The image kinds (task classify) and the numClasses / mean / std of the configured one. */
export const IMAGE_KINDS = ['shapes', 'imagefolder', 'imagenet'] as const;
export type ImageKind = (typeof IMAGE_KINDS)[number];

export interface ImageData {
  kind: ImageKind;
  numClasses: number;
  mean: [number, number, number];
  std: [number, number, number];
}

/** numClasses, mean and std of data.kind; an error naming data.kind when it is not an image kind. */
export function activeImageData(config: Readonly<Config>): ImageData {
  const kind = config.data.kind;
  if (!(IMAGE_KINDS as readonly string[]).includes(kind)) {
    throw new SigmaError('SGT_CONFIG_INVALID', `task ${config.task} reads images, but data.kind is ${kind}: set data.kind to one of ${IMAGE_KINDS.join(', ')}`);
  }
  const d = config.data[kind as ImageKind];
  return { kind: kind as ImageKind, numClasses: d.numClasses, mean: [...d.mean], std: [...d.std] };
}
