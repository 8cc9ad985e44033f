// Makes the configured dataset ready: generates the shapes ImageFolder if asked, indexes it and caches decoded splits.
import { activeImageData, type Config } from '../../shared/config/index.js';
import { SigmaError } from '../../shared/errors.js';
import { generateShapes } from './synthetic.js';
import { indexImageFolder, ImageCache, assertSameClasses } from './imagefolder.js';

export interface PreparedData {
  train: ImageCache;
  val: ImageCache;
  classes: string[];
  generated: boolean;
}

export async function prepareData(config: Readonly<Config>): Promise<PreparedData> {
  const d = config.data;
  const img = activeImageData(config);
  // Images are generated and decoded at the ViT's input side (the classify task's model).
  const size = config.model.vit.imageSize;
  let generated = false;
  if (d.kind === 'shapes') {
    const r = await generateShapes({
      root: d.root,
      size,
      classes: img.numClasses,
      trainPerClass: d.shapes.trainPerClass,
      valPerClass: d.shapes.valPerClass,
      seed: config.seed,
    });
    generated = r.created;
  }
  const [trainIdx, valIdx] = await Promise.all([indexImageFolder(d.root, 'train'), indexImageFolder(d.root, 'val')]);
  assertSameClasses(trainIdx, valIdx);
  if (trainIdx.classes.length !== img.numClasses) {
    throw new SigmaError(
      'SGT_DATA_INVALID',
      `data.${img.kind}.numClasses is ${img.numClasses} but ${d.root}/train has ${trainIdx.classes.length} class folders: set data.${img.kind}.numClasses to ${trainIdx.classes.length}`,
    );
  }
  const opts = { size, mean: img.mean, std: img.std };
  const [train, val] = await Promise.all([ImageCache.build(trainIdx, opts), ImageCache.build(valIdx, opts)]);
  return { train, val, classes: trainIdx.classes, generated };
}
