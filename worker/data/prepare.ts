// Makes the configured dataset ready: generates the shapes ImageFolder if asked, indexes it and caches decoded splits.
import type { Config } from '../../shared/config/index.js';
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
  let generated = false;
  if (d.kind === 'shapes') {
    const r = await generateShapes({
      root: d.root,
      size: config.model.imageSize,
      classes: d.numClasses,
      trainPerClass: d.shapes.trainPerClass,
      valPerClass: d.shapes.valPerClass,
      seed: config.seed,
    });
    generated = r.created;
  }
  const [trainIdx, valIdx] = await Promise.all([indexImageFolder(d.root, 'train'), indexImageFolder(d.root, 'val')]);
  assertSameClasses(trainIdx, valIdx);
  if (trainIdx.classes.length !== d.numClasses) {
    throw new SigmaError(
      'SGT_DATA_INVALID',
      `data.numClasses is ${d.numClasses} but ${d.root}/train has ${trainIdx.classes.length} class folders: set data.numClasses to ${trainIdx.classes.length}`,
    );
  }
  const opts = { size: config.model.imageSize, mean: [...d.mean] as [number, number, number], std: [...d.std] as [number, number, number] };
  const [train, val] = await Promise.all([ImageCache.build(trainIdx, opts), ImageCache.build(valIdx, opts)]);
  return { train, val, classes: trainIdx.classes, generated };
}
